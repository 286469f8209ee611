import ArgumentParser
import Foundation
import Simulator

/// `--json` output for every command, through the one renderer (`JSONText`). An encoding
/// failure (a non-finite number, say) is a bug in this tool, not a verdict: it exits 70
/// (EX_SOFTWARE) with the reason, never 1, which means "a violation or an incomplete run"
/// everywhere in cpuflags.
enum JSONOutput {
    static let encodingFailed = ExitCode(70)

    static func print<T: Encodable>(_ value: T) throws {
        do { Swift.print(try JSONText.render(value)) } catch {
            FileHandle.standardError.write("Error: --json: \(error)\n".data(using: .utf8)!)
            throw encodingFailed
        }
    }
}
