import Foundation
import Testing

@testable import Simulator

/// A scratch directory and a way to load a config text from a file in it.
private struct Scratch {
    let dir: URL
    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpuflags-inputs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    func file(_ name: String, _ contents: Data) -> String {
        let path = dir.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: path, contents: contents)
        return path
    }
    /// The error text of loading `json`, or "ok".
    func load(_ json: String) -> String {
        let path = file("c.json", Data(json.utf8))
        do { _ = try MachineConfig.load(path: path); return "ok" } catch { return "\(error)" }
    }
    func remove() { try? FileManager.default.removeItem(at: dir) }
}

private func problem(_ mc: MachineConfig) -> String? {
    do { _ = try mc.validate(); return nil } catch { return "\(error)" }
}

/// Item 3: the simulator's limits are constants, not config fields.
@Test func limitsAreNotConfigFields() throws {
    let s = try Scratch()
    defer { s.remove() }
    for name in ["cpusMax", "deliveriesMax", "eventsMax", "ratePerSecondMax", "costNsMax", "traceEventsMax"] {
        let e = s.load("{\"\(name)\": 1}")
        #expect(e.contains("unknown field '\(name)'"), "\(name): \(e)")
        #expect(e.contains("expected one of: costs, cpus, ctDeferKernelTLB, isolated, seconds, seed, workload"), "\(e)")
    }
    #expect(!MachineConfig.fields.contains { $0.path.hasSuffix("Max") })
    let json = String(decoding: try JSONEncoder().encode(MachineConfig()), as: UTF8.self)
    #expect(!json.contains("Max\""), "\(json)")
    // The limit holds whatever the config says.
    var mc = MachineConfig()
    mc.cpus = 20_000_000
    #expect(problem(mc)?.contains("cpus: 20000000: expected a whole number from 2 to \(SimulatorLimits.cpusMax)") == true)
}

/// Item 4: a run shorter than the model's resolution is refused, naming the range.
@Test func runsShorterThanTheResolutionAreRefused() {
    var mc = MachineConfig()
    mc.seconds = 1e-12
    let e = problem(mc) ?? ""
    #expect(e.contains("seconds: 1e-12: expected a number of seconds from 0.001 to 3600"), "\(e)")
    mc.seconds = SimulatorLimits.secondsMin
    #expect(problem(mc) == nil)
    mc.seconds = .nan
    #expect(problem(mc)?.contains("seconds") == true)
}

/// Items 6 and 7: each config problem names the field, the value and what was expected,
/// or the line and column of a syntax error, or the file's errno.
@Test func configFileMessagesNameTheProblem() throws {
    let s = try Scratch()
    defer { s.remove() }
    let cases: [(String, [String])] = [
        (#"{"seed":-1}"#, ["field 'seed': -1: expected a whole number from 0 to 18446744073709551615"]),
        (#"{"seed":1.5}"#, ["field 'seed': 1.5: expected a whole number from 0 to 18446744073709551615"]),
        (#"{"cpus":1e30}"#, ["field 'cpus': 1e+30: expected a whole number from 2 to 4096"]),
        (#"{"cpus":64.5}"#, ["field 'cpus': 64.5: expected a whole number from 2 to 4096"]),
        (#"{"cpus":"many"}"#, ["field 'cpus': \"many\": expected a whole number"]),
        (#"{"isolated":5}"#, ["field 'isolated': 5: expected a string"]),
        (#"{"ctDeferKernelTLB":1}"#, ["field 'ctDeferKernelTLB': 1: expected true or false"]),
        (#"{"workload":3}"#, ["field 'workload': 3: expected an object"]),
        ("null", ["expected a JSON object at the top level, found null"]),
        ("[1]", ["expected a JSON object at the top level, found an array"]),
        ("{\n  \"cpus\": 128,\n  oops\n}", ["not valid JSON at line 3, column 3"]),
        ("{\"cpus\": 128}}", ["not valid JSON at line 1, column 14"]),
        ("", ["the file is empty"]),
        (#"{"cpu": 128}"#, ["unknown field 'cpu'"]),
        (#"{"workload": {"wakeups": 1}}"#, ["unknown field 'workload.wakeups'", "wakeupsPerSec"]),
        (#"{"seconds": "long"}"#, ["field 'seconds'"]),
        (String(repeating: "[", count: 100_000), ["nested deeper than \(SimulatorLimits.configDepthMax) levels", "line 1, column 33"]),
        (String(repeating: "{\"a\":", count: 100_000), ["nested deeper than \(SimulatorLimits.configDepthMax) levels"]),
    ]
    for (json, expected) in cases {
        let e = s.load(json)
        for x in expected { #expect(e.contains(x), "\(json.prefix(40)): \(e)") }
        #expect(!e.contains("NSCocoaErrorDomain"))
    }
    // Right values of every type load.
    #expect(s.load(#"{"cpus": 128, "seed": 18446744073709551615, "ctDeferKernelTLB": true, "isolated": "16-N", "workload": {"wakeupsPerSec": 9}}"#) == "ok")
    let path = s.file("ok.json", Data(#"{"cpus": 128.0, "seed": 18446744073709551615}"#.utf8))
    let mc = try MachineConfig.load(path: path)
    #expect(mc.cpus == 128 && mc.seed == UInt64.max)
    // The file itself: a directory, a missing file, each with the errno and the path.
    func loadPath(_ p: String) -> String {
        do { _ = try MachineConfig.load(path: p); return "ok" } catch { return "\(error)" }
    }
    #expect(loadPath(s.dir.path).contains("\(s.dir.path): cannot read the file: EISDIR (Is a directory)"))
    #expect(loadPath(s.dir.path + "/none.json").contains("cannot read the file: ENOENT (No such file or directory)"))
}

/// Item 8: the config file's size is bounded before it is read, and so is what is read
/// from a file whose size is unknown.
@Test func configFileSizeIsBounded() throws {
    let s = try Scratch()
    defer { s.remove() }
    let start = ContinuousClock.now
    let big = s.file("big.json", Data(repeating: 0x20, count: SimulatorLimits.configBytesMax + 1))
    var e = ""
    do { _ = try MachineConfig.load(path: big) } catch { e = "\(error)" }
    #expect(e.contains("\(SimulatorLimits.configBytesMax + 1) bytes, more than the limit"), "\(e)")
    e = ""
    do { _ = try MachineConfig.load(path: "/dev/zero") } catch { e = "\(error)" }
    #expect(e.contains("more than the limit for a config file"), "\(e)")
    #expect(ContinuousClock.now - start < .seconds(10))
    // A long cpulist in a config is refused by its length, with a short message.
    let list = (0..<200_000).map(String.init).joined(separator: ",")
    var mc = MachineConfig()
    mc.isolated = list
    let p = problem(mc) ?? ""
    #expect(p.contains("at most \(CPUList.lengthMax) characters") && p.count < 400, "\(p.prefix(400))")
}

/// Item 10: one rule for the default isolated CPUs, whatever sets the size.
@Test func defaultIsolatedIsOneRule() throws {
    #expect(MachineConfig.defaultIsolated(cpus: 128) == "8-127")
    #expect(MachineConfig.defaultIsolated(cpus: 9) == "8-8")
    #expect(MachineConfig.defaultIsolated(cpus: 8) == "1-7")
    #expect(MachineConfig.defaultIsolated(cpus: 2) == "1-1")
    var mc = MachineConfig()
    mc.cpus = 128
    #expect(try mc.validate().description == "8-127")
    #expect(try MachineConfig().setting("cpus", to: 128).validate().description == "8-127")
    #expect(try MachineConfig().setting("cpus", to: 4).validate().description == "1-3")
    let s = try Scratch()
    defer { s.remove() }
    var fromFile = try MachineConfig.load(path: s.file("e.json", Data("{}".utf8)))
    fromFile.cpus = 128
    #expect(try fromFile.validate().description == "8-127", "a config file without 'isolated' keeps the rule")
    // Given explicitly, it is kept (and must fit).
    var given = try MachineConfig.load(path: s.file("i.json", Data(#"{"isolated": "2-5"}"#.utf8)))
    given.cpus = 128
    #expect(try given.validate().description == "2-5")
    given.cpus = 4
    #expect(problem(given)?.contains("isolated: cpulist '2-5'") == true)
}

/// Item 12: booleans are sweepable as 0 and 1; nothing listed as sweepable fails.
@Test func everySweepableParameterCanBeSet() throws {
    #expect(MachineConfig.sweepable.contains("ctDeferKernelTLB"))
    #expect(!MachineConfig.sweepable.contains("seed") && !MachineConfig.sweepable.contains("isolated"))
    #expect(try MachineConfig().setting("ctDeferKernelTLB", to: 1).ctDeferKernelTLB)
    #expect(try !MachineConfig().setting("ctDeferKernelTLB", to: 0).ctDeferKernelTLB)
    #expect(throws: FieldValueError.self) { try MachineConfig().setting("ctDeferKernelTLB", to: 2) }
    #expect(throws: FieldValueError.self) { try MachineConfig().setting("cpus", to: 64.5) }
    for p in MachineConfig.sweepable {
        let f = MachineConfig.fields.first { $0.path == p }!
        let v: Double = p == "cpus" ? 16 : (p == "seconds" ? 0.5 : 1)
        let c = try MachineConfig().setting(p, to: v)
        #expect(c.numericValue(at: p) == v, "\(p) (\(f.kind))")
    }
}

/// Item 13: values that once made Simulation convert a Double beyond Int64.max are
/// refused by the field's rule, naming the field.
@Test func hugeCostsAreRefusedNotTrapped() {
    var a = MachineConfig()
    a.costs.ipiLatencyNs = 1e20
    #expect(problem(a)?.contains("costs.ipiLatencyNs: 1e+20: expected a finite number from 0 to") == true)
    var b = MachineConfig()
    b.workload.isolatedIdleNs = 1e19
    b.workload.isolatedIdlePeriodsPerSec = 1
    #expect(problem(b)?.contains("workload.isolatedIdleNs") == true)
    #expect(throws: Simulation.SetupError.self) { try Simulation(config: b, policy: .linux) }
    // At the limit, every time Simulation converts stays far below Int64.max ns.
    #expect(SimulatorLimits.costNsMax + SimulatorLimits.secondsMax * 1e9 < Double(Int64.max) / 1000)
}

/// Item 14: the up-front estimate covers the events, and bounds what a run really does.
@Test func theEstimateCoversEveryEvent() throws {
    var idle = MachineConfig()
    idle.workload.isolatedIdlePeriodsPerSec = 1e6
    let e = problem(idle) ?? ""
    #expect(e.contains("events") && e.contains("eventsMax (\(SimulatorLimits.eventsMax))"), "\(e)")
    var mc = MachineConfig()
    mc.cpus = 8
    mc.isolated = "2-5"
    mc.workload.isolatedSyscallsPerSec = 2000
    mc.workload.isolatedIdlePeriodsPerSec = 100
    mc.workload.isolatedIdleNs = 100_000
    let estimate = mc.estimate(isolatedCount: 4)
    for p in Policy.allCases {
        let r = try Simulation(config: mc, policy: p).run()
        #expect(Double(r.events) <= estimate.events, "\(p): \(r.events) events, estimate \(estimate.events)")
        #expect(Double(r.events) >= estimate.events / 4, "\(p): the estimate is a bound, not a guess far off")
    }
}

/// Item 15: output files say why they cannot be written, with the path.
@Test func outputFileErrorsSayWhy() throws {
    let s = try Scratch()
    defer { s.remove() }
    func failure(_ body: () throws -> Void) -> String {
        do { try body(); return "ok" } catch { return "\(error)" }
    }
    let missing = s.dir.path + "/no/such/dir/x.svg"
    #expect(failure { _ = try OutputFile(creating: missing) } == "\(missing): cannot create the file: ENOENT (No such file or directory)")
    #expect(failure { _ = try OutputFile(creating: s.dir.path) }.contains("EISDIR"))
    #expect(failure { try OutputFile.write(Data("x".utf8), to: "/dev/full") } == "/dev/full: cannot write the file: ENOSPC (No space left on device)")
    #expect(failure { try OutputFile.checkWritable(missing) }.contains("ENOENT"))
    #expect(failure { try OutputFile.checkWritable(s.dir.path) }.contains("EISDIR"))
    let plain = s.file("plain", Data())
    #expect(failure { try OutputFile.checkWritable(plain + "/x.svg") }.contains("ENOTDIR"))
    #expect(failure { try OutputFile.checkWritable(s.dir.path + "/new.svg") } == "ok")
    #expect(!FileManager.default.fileExists(atPath: s.dir.path + "/new.svg"), "the check creates nothing")
    let out = s.dir.path + "/out.txt"
    #expect(failure { try OutputFile.write(Data("hello".utf8), to: out) } == "ok")
    #expect(try String(contentsOfFile: out, encoding: .utf8) == "hello")
}

/// JSON output of a non-finite number is an error that says so.
@Test func jsonOfNonFiniteNumbersIsAnError() {
    struct Bad: Encodable { var x = Double.nan }
    do {
        _ = try JSONText.render(Bad())
        Issue.record("NaN encoded")
    } catch {
        #expect(error.description.contains("'x'") && error.description.contains("not a finite number"), "\(error)")
    }
    #expect((try? JSONText.render(["a": 1.5])) != nil)
}
