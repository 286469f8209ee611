import Foundation
import Testing

/// The trace window's checks (item 6) and the table's "-" (item 5), as a user meets them.
@Test func traceWindowNeedsTraceAndAWindowInTheRun() throws {
    let alone = try CLI.run(["simulate", "--trace-window", "0-5"])
    #expect(alone.status != 0)
    #expect(alone.stderr.contains("--trace-window needs --trace"), "\(alone.stderr)")
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("t.json").path
    let late = try CLI.run(["simulate", "--seconds", "0.5", "--trace", path, "--trace-window", "600-700"])
    #expect(late.status != 0)
    #expect(late.stderr.contains("--trace-window 600-700") && late.stderr.contains("500 ms"), "\(late.stderr)")
    let ok = try CLI.run(["simulate", "--seconds", "0.1", "--policy", "linux", "--trace", path, "--trace-window", "20-30"])
    #expect(ok.status == 0, "\(ok.stderr)")
    #expect(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) is [String: Any])
}

@Test func noRoundTripsShowADash() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let config = dir.appendingPathComponent("quiet.json")
    try #"{"workload": {"kernelTLBFlushPerSec": 0, "textPatchBatchesPerSec": 0, "rcuExpeditedPerSec": 0, "rcuNormalPerSec": 0, "userTLBShootdownPerSec": 0, "wakeupsPerSec": 0, "cacheDrainsPerSec": 0, "pageTableFreeSyncsPerSec": 0}}"#
        .write(to: config, atomically: true, encoding: .utf8)
    let r = try CLI.run(["simulate", "--config", config.path, "--policy", "linux"])
    #expect(r.status == 0, "\(r.stderr)")
    let row = r.stdout.split(separator: "\n").first { $0.hasPrefix("linux ") } ?? ""
    let cells = row.split(separator: " ")
    // policy irq/cpu irq/cpu/s lost cost p50 p99 p99.99 max atomics/rt entry ns/rt ...
    #expect(cells.count > 10 && cells[8] == "-" && cells[9] == "-", "\(row)")
    let json = try CLI.run(["simulate", "--config", config.path, "--policy", "linux", "--json"])
    #expect(json.stdout.contains("\"atomicsPerRoundTrip\" : null"), "\(json.stdout.prefix(300))")
}
