import Foundation
import Testing

/// What a user of `cpuflags simulate` sees: messages, exit codes, files.

private func simulate(_ args: [String]) throws -> CLI { try CLI.run(["simulate"] + args) }

/// A usage error: exit 64, simulate's own usage, every given fragment in the message,
/// and no Swift or Foundation internals.
private func expectUsageError(_ r: CLI, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status == 64, "status \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.stderr.contains("Usage: cpuflags simulate"), "\(r.stderr)", sourceLocation: sourceLocation)
    for f in fragments { #expect(r.stderr.contains(f), "'\(f)' not in: \(r.stderr)", sourceLocation: sourceLocation) }
    for leak in ["NSCocoaErrorDomain", "Fatal error", "Missing value"] {
        #expect(!r.stderr.contains(leak), "\(r.stderr)", sourceLocation: sourceLocation)
    }
}

private func json(_ r: CLI) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stderr)")
}

/// Item 1: sweeping cpus rescales the default isolated CPUs; an explicit list must fit.
@Test func sweepingCPUsRescalesTheIsolatedSet() throws {
    let r = try simulate(["--sweep", "cpus=64,128", "--policy", "linux", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let o = try json(r)
    #expect(o["isolated"] as? [String] == ["8-63", "8-127"])
    let results = try #require(o["results"] as? [[[String: Any]]])
    #expect(results.map { $0[0]["isolatedCPUs"] as? Int } == [56, 120], "the rows differ")
    #expect(try simulate(["--sweep", "cpus=2,64", "--policy", "linux"]).status == 0)
    expectUsageError(try simulate(["--isolated", "8-63", "--sweep", "cpus=2,64", "--policy", "linux"]),
                     ["cpus=2", "isolated '8-63' given explicitly", "below 2"])
}

/// Item 2: repeated --sweep is a cross product, bounded.
@Test func repeatedSweepsAreACrossProduct() throws {
    let r = try simulate(["--sweep", "cpus=16,32", "--sweep", "workload.isolatedSyscallsPerSec=0,100", "--policy", "linux", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let o = try json(r)
    #expect(o["parameters"] as? [String] == ["cpus", "workload.isolatedSyscallsPerSec"])
    #expect(o["values"] as? [[Double]] == [[16, 0], [16, 100], [32, 0], [32, 100]])
    let text = try simulate(["--sweep", "cpus=16,32", "--sweep", "workload.isolatedSyscallsPerSec=0,100", "--policy", "linux"])
    let header = text.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(2).first ?? ""
    #expect(header.contains("cpus") && header.contains("workload.isolatedSyscallsPerSec"), "\(text.stdout)")
    #expect(text.stdout.split(separator: "\n").filter { $0.hasPrefix("linux") }.count == 4)
    let many = (1...17).map(String.init).joined(separator: ",")
    expectUsageError(try simulate(["--sweep", "workload.wakeupsPerSec=\(many)", "--sweep", "workload.rcuNormalPerSec=\(many)"]),
                     ["more than 256"])
    expectUsageError(try simulate(["--sweep", "cpus=16", "--sweep", "cpus=32"]), ["'cpus' is swept twice"])
    expectUsageError(try simulate(["--cpus", "16", "--sweep", "cpus=32"]), ["--cpus and --sweep cpus"])
}

/// Items 3 and 13: the limits are not config fields, and the configs that once trapped
/// (exit 132) are usage errors naming the field.
@Test func configCannotRaiseLimitsOrTrap() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    func run(_ json: String) throws -> CLI {
        let path = dir.appendingPathComponent("c.json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return try simulate(["--config", path, "--policy", "linux"])
    }
    expectUsageError(try run(#"{"cpus": 20000000, "cpusMax": 30000000}"#), ["unknown field 'cpusMax'", "expected one of: costs, cpus"])
    expectUsageError(try run(#"{"costNsMax": -1}"#), ["unknown field 'costNsMax'"])
    expectUsageError(try run(#"{"costNsMax":1e300,"costs":{"ipiLatencyNs":1e20}}"#), ["unknown field 'costNsMax'"])
    expectUsageError(try run(#"{"costNsMax":1e300,"workload":{"isolatedIdleNs":1e19,"isolatedIdlePeriodsPerSec":1}}"#), ["unknown field 'costNsMax'"])
    expectUsageError(try run(#"{"costs":{"ipiLatencyNs":1e20}}"#), ["field 'costs.ipiLatencyNs': 1e+20: expected"])
    expectUsageError(try run(#"{"workload":{"isolatedIdleNs":1e19,"isolatedIdlePeriodsPerSec":1}}"#), ["field 'workload.isolatedIdleNs': 1e+19: expected"])
    expectUsageError(try run(#"{"cpus": 20000000}"#), ["field 'cpus': 20000000: expected a whole number from 2 to 4096"])
}

/// Item 4: too short a run is refused with the range.
@Test func tooShortARunIsRefused() throws {
    expectUsageError(try simulate(["--seconds", "1e-12"]), ["--seconds 1e-12: expected a number of seconds from 0.001 to 3600"])
    expectUsageError(try simulate(["--sweep", "seconds=1,1e-9"]), ["--sweep seconds=1e-09", "from 0.001"])
}

/// Items 5 and 8: the kernel's cpulist syntax at the CLI, errors at the character, bounded.
@Test func cpulistsAtTheCLI() throws {
    let r = try simulate(["--isolated", "8-63:2/4", "--policy", "linux"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("isolated 8-9,12-13,"))
    #expect(try simulate(["--cpus", "32", "--isolated", "4-N", "--policy", "linux"]).stdout.contains("isolated 4-31,"))
    expectUsageError(try simulate(["--isolated", "10-15:2"]), ["--isolated cpulist '10-15:2': at character 8"])
    let huge = (0..<10_000).map(String.init).joined(separator: ",")  // 48,890 characters (an argument is at most 128 KiB)
    let start = ContinuousClock.now
    let big = try simulate(["--isolated", huge])
    expectUsageError(big, ["at most 32768 characters"])
    #expect(big.stderr.count < 2000, "the message does not echo the whole list")
    #expect(ContinuousClock.now - start < .seconds(20))
}

/// Items 6 and 8: the config file's problems, as a user meets them.
@Test func configFileProblemsAtTheCLI() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    expectUsageError(try simulate(["--config", dir.path]), ["--config \(dir.path): cannot read the file: EISDIR"])
    expectUsageError(try simulate(["--config", dir.path + "/none.json"]), ["ENOENT", "none.json"])
    let path = dir.appendingPathComponent("c.json").path
    try "{\n  \"seed\": -1\n}".write(toFile: path, atomically: true, encoding: .utf8)
    expectUsageError(try simulate(["--config", path]), ["field 'seed': -1: expected a whole number from 0 to 18446744073709551615"])
    try "{\n  \"cpus\": 128,\n  x\n}".write(toFile: path, atomically: true, encoding: .utf8)
    expectUsageError(try simulate(["--config", path]), ["not valid JSON at line 3, column 3"])
    try String(repeating: "[", count: 100_000).write(toFile: path, atomically: true, encoding: .utf8)
    expectUsageError(try simulate(["--config", path]), ["nested deeper than 32 levels"])
    let large = Data(repeating: 0x20, count: 2 << 20)
    try large.write(to: URL(fileURLWithPath: path))
    expectUsageError(try simulate(["--config", path]), ["more than the limit for a config file (1048576 bytes"])
}

/// Items 9 and 10: the isolated CPUs are shown normalized everywhere, and the default
/// follows the machine's size with or without a config file.
@Test func isolatedIsNormalizedAndOneRule() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let svg = dir.appendingPathComponent("c.svg").path
    let r = try simulate(["--isolated", "8-63,8-63", "--policy", "linux", "--svg", svg])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("isolated 8-63, ") && !r.stdout.contains("8-63,8-63"), "\(r.stdout)")
    #expect(try String(contentsOfFile: svg, encoding: .utf8).contains("isolated 8-63, "))
    let j = try json(try simulate(["--isolated", "8-63,8-63", "--policy", "linux", "--json"]))
    #expect((j["config"] as? [String: Any])?["isolated"] as? String == "8-63")
    let empty = dir.appendingPathComponent("e.json").path
    try "{}".write(toFile: empty, atomically: true, encoding: .utf8)
    #expect(try simulate(["--cpus", "128", "--policy", "linux"]).stdout.contains("isolated 8-127,"))
    #expect(try simulate(["--cpus", "128", "--config", empty, "--policy", "linux"]).stdout.contains("isolated 8-127,"))
}

/// Item 11: every simulate error shows simulate's usage; `--cpus -1` is a value.
@Test func errorsShowSimulatesUsage() throws {
    expectUsageError(try simulate(["--cpus", "-1"]), ["--cpus -1: expected a whole number from 2 to 4096"])
    expectUsageError(try simulate(["--seed", "-1"]), ["--seed -1: expected a whole number from 0 to"])
    expectUsageError(try simulate(["--syscalls-per-sec", "-5"]), ["--syscalls-per-sec -5: expected a finite rate from 0"])
    expectUsageError(try simulate(["--sweep", "nope=1"]), ["unknown parameter 'nope'"])
    expectUsageError(try simulate(["--trace-window", "0-10"]), ["--trace-window needs --trace"])
}

/// Item 12: a policy given twice runs once; booleans sweep as 0 and 1.
@Test func duplicatesAndBooleanSweeps() throws {
    let o = try json(try simulate(["--policy", "linux", "--policy", "cpuflags", "--policy", "linux", "--json"]))
    #expect((o["results"] as? [[String: Any]])?.map { $0["policy"] as? String } == ["linux", "cpuflags"])
    let r = try simulate(["--sweep", "ctDeferKernelTLB=0,1", "--policy", "ct-defer", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let results = try #require(try json(r)["results"] as? [[[String: Any]]])
    let irq = results.map { $0[0]["interruptions"] as? Int }
    #expect(irq.count == 2 && irq[0] != irq[1], "COALESCE_TLBI changes the interruptions: \(irq)")
    expectUsageError(try simulate(["--sweep", "ctDeferKernelTLB=2"]), ["0 or 1"])
}

/// Item 14: the header says what was swept; runs that would stop at a limit and output
/// paths that cannot be written are refused before any work.
@Test func sweepHeaderAndUpFrontChecks() throws {
    let r = try simulate(["--sweep", "seconds=0.5,1", "--policy", "linux"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("seconds swept") && !r.stdout.contains("1.0 s simulated"), "\(r.stdout)")
    let start = ContinuousClock.now
    expectUsageError(try simulate(["--idle-per-sec", "1e6"]), ["eventsMax (50000000)", "events"])
    expectUsageError(try simulate(["--svg", "/nonexistent/x.svg"]), ["--svg /nonexistent/x.svg: cannot create the file: ENOENT"])
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    expectUsageError(try simulate(["--trace", dir.path]), ["--trace \(dir.path): cannot create the file: EISDIR"])
    #expect(ContinuousClock.now - start < .seconds(20), "refused at once, not after simulating")
}

/// Item 15: a write that fails after the run says why (here ENOSPC), with the path, and
/// does not exit 1 (that means a violation or an incomplete run).
@Test func writeErrorsSayWhy() throws {
    let r = try simulate(["--policy", "linux", "--svg", "/dev/full"])
    #expect(r.status == 74, "\(r.status): \(r.stderr)")
    #expect(r.stderr.contains("--svg /dev/full: cannot write the file: ENOSPC (No space left on device)"), "\(r.stderr)")
}

/// The defaults still run.
@Test func simulateRunsWithDefaults() throws {
    let r = try simulate([])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("machine: 64 CPUs, isolated 8-63, 1.0 s simulated, seed 1"))
}

/// Every policy is described, with where its atomics per round trip come from.
@Test func listPoliciesDescribesEveryPolicy() throws {
    let r = try CLI.run(["simulate", "--list-policies"])
    #expect(r.status == 0)
    for p in ["linux", "ct-defer", "catch-up", "cpuflags", "cpuflags-lazy", "cpuflags-adaptive", "hw-broadcast"] {
        #expect(r.stdout.contains("\n\(p) ") || r.stdout.hasPrefix("\(p) "), "\(p) missing")
    }
    #expect(r.stdout.contains("model input"))
    #expect(r.stdout.contains("counted from the core's calls"))
    let j = try CLI.run(["simulate", "--list-policies", "--json"])
    let rows = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [[String: String]]
    #expect(rows.count == 7)
    let refused = try CLI.run(["simulate", "--list-policies", "--seconds", "2"])
    #expect(refused.status == 64 && refused.stderr.contains("drop --seconds"))
}
