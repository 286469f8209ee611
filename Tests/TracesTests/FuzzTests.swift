import CPUFlags
import Foundation
import Testing

@testable import Traces

/// A seeded mutator over the fixtures: the analyzer must answer every mutated input
/// with a report or an error, never a crash or a runtime trap (a trap kills this test
/// process, which fails the run). The seed is printed; the same seed replays exactly.
@Test func mutatedRecordingsNeverCrashTheAnalyzer() throws {
    let seed = UInt64(ProcessInfo.processInfo.environment["CPUFLAGS_FUZZ_SEED"] ?? "") ?? 20_261_207
    let iterations = Int(ProcessInfo.processInfo.environment["CPUFLAGS_FUZZ_ITERATIONS"] ?? "") ?? 300
    print("fuzz: seed \(seed), \(iterations) inputs (CPUFLAGS_FUZZ_SEED=\(seed) replays them)")
    var rng = SplitMix64(state: seed)
    let sources = ["static-keys-excerpt.txt", "tc-report-excerpt.txt", "small-raw.txt"].map {
        Array((try? Data(contentsOf: URL(fileURLWithPath: Fixture.path($0)))) ?? Data())
    }
    // Pieces that are likely to matter to the parser: separators, numbers at the edge,
    // field names with odd values.
    let tokens: [[UInt8]] = ["[", "]", ": ", "-", "=", " ==> ", "cpu=99999", "cpu=-1", "func=", "csd=", "state=4294967295",
                             "cpumask=0-8191", "cpumask=5-2", "prev_pid=", "next_pid=2147483648", "99999999999.999999999:",
                             "\n", "\r\n", "\0", "\u{FF}", "[LOST 99999999999999999999 EVENTS]", "#P:0", "cpus=0"].map { Array($0.utf8) }
    let s = try Scratch()
    defer { s.remove() }
    var outcomes = [String: Int]()
    for i in 0..<iterations {
        var bytes = sources[Int(rng.next() % UInt64(sources.count))]
        // Keep it small: a window of the source.
        let start = Int(rng.next() % UInt64(max(bytes.count - 20_000, 1)))
        bytes = Array(bytes[start..<min(bytes.count, start + 20_000)])
        for _ in 0..<(1 + Int(rng.next() % 20)) {
            guard !bytes.isEmpty else { break }
            let at = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 6 {
            case 0: bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            case 1: bytes.insert(contentsOf: tokens[Int(rng.next() % UInt64(tokens.count))], at: at)
            case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int(rng.next() % 64)))
            case 3:
                // Duplicate a run (events out of order, repeated requests).
                let n = min(bytes.count - at, Int(rng.next() % 400))
                bytes.insert(contentsOf: bytes[at..<(at + n)], at: Int(rng.next() % UInt64(bytes.count)))
            case 4:
                // A digit changed: times, CPUs, pids.
                if let d = bytes[at...].firstIndex(where: { $0 >= 48 && $0 <= 57 }) { bytes[d] = 48 + UInt8(rng.next() % 10) }
            default: bytes.removeSubrange(at...)
            }
        }
        let path = s.file("fuzz-\(i).txt", Data(bytes))
        let o = try analyze(path, badLinesMax: 50)
        outcomes[o.error == nil ? "report" : "error", default: 0] += 1
        try? FileManager.default.removeItem(atPath: path)
    }
    print("fuzz: \(outcomes)")
    #expect(outcomes.values.reduce(0, +) == iterations)
}
