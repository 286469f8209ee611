import Foundation
import Testing

/// Every block of program output in the README that is marked
///
///     <!-- output of: cpuflags ARGS... -->
///     ```
///     ...
///     ```
///
/// is checked against what the program prints for those arguments now: the block's lines
/// must appear in the output in order and contiguously, except where the block has a line
/// `...` (an elision: any lines may stand there). Only deterministic outputs are marked
/// (timelines, tables of counts); figures that depend on the machine (times, states per
/// second) are not, and say which command measured them.
struct ReadmeBlock: CustomStringConvertible {
    var line: Int
    var arguments: [String]
    var text: [String]
    var description: String { "README.md:\(line): cpuflags \(arguments.joined(separator: " "))" }

    static var readme: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
    }

    static func all() throws -> [ReadmeBlock] {
        let lines = try String(contentsOf: readme, encoding: .utf8).components(separatedBy: "\n")
        var out: [ReadmeBlock] = []
        var i = 0
        while i < lines.count {
            let l = lines[i].trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("<!-- output of: cpuflags "), l.hasSuffix("-->") {
                let args = l.dropFirst("<!-- output of: cpuflags ".count).dropLast(3)
                    .split(separator: " ").map(String.init)
                var j = i + 1
                precondition(j < lines.count && lines[j].hasPrefix("```"), "README.md:\(i + 1): the marker must precede a fenced block")
                j += 1
                var text: [String] = []
                while j < lines.count && !lines[j].hasPrefix("```") { text.append(lines[j]); j += 1 }
                out.append(ReadmeBlock(line: i + 1, arguments: args, text: text))
                i = j
            }
            i += 1
        }
        return out
    }

    /// Whether `output` shows this block (in order, `...` lines standing for any lines).
    func matches(_ output: String) -> (Bool, String) {
        func norm(_ s: String) -> String { s.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        let got = output.components(separatedBy: "\n").map(norm)
        let chunks = text.map(norm).split(separator: "...", omittingEmptySubsequences: true).map(Array.init)
        var from = 0
        for chunk in chunks {
            guard let first = chunk.first else { continue }
            var found = false
            var k = from
            while k + chunk.count <= got.count {
                if got[k] == first && Array(got[k..<(k + chunk.count)]) == chunk { found = true; break }
                k += 1
            }
            if !found { return (false, "not in the output:\n" + chunk.joined(separator: "\n")) }
            from = k + chunk.count
        }
        return (true, "")
    }
}

@Test func readmeHasCheckedBlocks() throws {
    #expect(try ReadmeBlock.all().count >= 3)
}

@Test(arguments: try ReadmeBlock.all())
func readmeOutputIsWhatTheProgramPrints(_ block: ReadmeBlock) throws {
    let r = try CLI.run(block.arguments)
    let (ok, why) = block.matches(r.stdout)
    #expect(ok, "\(block): \(why)\n--- the program printed:\n\(r.stdout)")
}
