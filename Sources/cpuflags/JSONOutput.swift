import ArgumentParser
import Foundation

/// `--json` output for every command. An encoding failure (a non-finite number, say)
/// is a bug in this tool, not a verdict: it exits 70 (EX_SOFTWARE) with the reason,
/// never 1, which means "a violation or an incomplete run" everywhere in cpuflags.
enum JSONOutput {
    static let encodingFailed = ExitCode(70)

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            return String(decoding: try enc.encode(value), as: UTF8.self)
        } catch {
            FileHandle.standardError.write("cpuflags: cannot encode the JSON output: \(error)\n".data(using: .utf8)!)
            throw encodingFailed
        }
    }

    static func print<T: Encodable>(_ value: T) throws {
        Swift.print(try encode(value))
    }
}
