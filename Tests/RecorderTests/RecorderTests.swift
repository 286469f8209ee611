import Foundation
import Testing
@testable import Recorder

// MARK: cpulist

@Suite struct CPUSetTests {
    @Test(arguments: [
        ("1", [1]), ("1,3-5", [1, 3, 4, 5]), (" 2 , 0 ", [0, 2]), ("0-7:2/4", [0, 1, 4, 5]),
        ("3-3", [3]), ("5,1,5", [1, 5]),
        // The kernel's parser (and so CPUList) takes repeated separators.
        ("1,,2", [1, 2]),
    ])
    func parses(_ text: String, _ cpus: [Int]) throws {
        #expect(try CPUSet(parsing: text).cpus == cpus)
    }

    @Test(arguments: ["", " ", "a", "1-", "-1", "3-1", "1-2-3", "1:2/3", "0-7:3/2", "0-7:0/0", "1.5", "8192", "99999999999999999999"])
    func rejects(_ text: String) {
        #expect(throws: CPUSet.ParseError.self) { try CPUSet(parsing: text) }
    }

    @Test func showsRanges() {
        #expect(CPUSet([0, 1, 2, 3, 8, 10, 11]).description == "0-3,8,10-11")
        #expect(CPUSet([4]).description == "4")
    }

    @Test func offlineCPUsAreNamed() throws {
        let online = CPUSet([0, 1, 2, 3])
        let set = try CPUSet(parsing: "2-5")
        let error = #expect(throws: CPUSet.ParseError.self) { try set.checkOnline(online, input: "2-5") }
        #expect(error?.description.contains("not online: 4-5") == true)
        #expect(error?.description.contains("online: 0-3") == true)
    }
}

// MARK: options

@Suite struct OptionTests {
    let online = CPUSet([0, 1, 2, 3])

    func parse(isolated: String? = nil, duration: String? = nil, output: String? = "/dev/null", workload: String? = nil,
               command: [String] = []) throws(OptionError) -> RecordOptions {
        try RecordOptions.parse(isolated: isolated, duration: duration, output: output, workload: workload, command: command,
                                online: online, path: "/usr/bin:/bin")
    }

    func failure(isolated: String? = nil, duration: String? = nil, output: String? = "/dev/null", workload: String? = nil,
                 command: [String] = []) -> OptionError? {
        do {
            _ = try parse(isolated: isolated, duration: duration, output: output, workload: workload, command: command)
            return nil
        } catch { return error }
    }

    @Test func defaults() throws {
        let o = try parse(output: nil)
        #expect(o.isolated == CPUSet([3]))
        #expect(o.housekeeping == CPUSet([0, 1, 2]))
        #expect(o.duration == 10)
        #expect(o.output == "cpuflags-trace.txt")
        #expect(o.workload == nil && o.command.isEmpty)
    }

    @Test func workloadAndCPUs() throws {
        let o = try parse(isolated: "1,3", duration: "2.5", workload: "mprotect")
        #expect(o.isolated == CPUSet([1, 3]) && o.housekeeping == CPUSet([0, 2]))
        #expect(o.duration == 2.5 && o.workload == .mprotect)
        #expect(try parse(output: "-").output == "-")
    }

    @Test func commandRunsUntilItExitsUnlessDurationIsGiven() throws {
        #expect(try parse(command: ["sh", "-c", "true"]).duration == nil)
        #expect(try parse(duration: "3", command: ["sh"]).duration == 3)
    }

    @Test(arguments: ["0", "-1", "abc", "", "nan", "inf", "-0.5", "1e9"])
    func badDuration(_ text: String) {
        let e = failure(duration: text)
        #expect(e?.option == "--duration")
        #expect(e?.message.contains("expected a number of seconds greater than 0") == true)
    }

    @Test func badCPULists() {
        #expect(failure(isolated: "1-x")?.option == "--isolated")
        #expect(failure(isolated: "1-x")?.message.contains("cpulist such as 1 or 1,3-5") == true)
        #expect(failure(isolated: "7")?.message.contains("not online: 7") == true)
        let all = failure(isolated: "0-3")
        #expect(all?.option == "--isolated")
        #expect(all?.message.contains("covers every online CPU") == true)
        #expect(all?.message.contains("housekeeping") == true)
    }

    @Test func unknownWorkloadListsTheKnownOnes() {
        let e = failure(workload: "nope")
        #expect(e?.option == "--workload")
        #expect(e?.message.contains("static-keys, bpf-filters, thread-churn, mprotect") == true)
    }

    @Test func workloadAndCommandAreExclusive() {
        #expect(failure(workload: "static-keys", command: ["sh"])?.message.contains("give one, not both") == true)
    }

    @Test func missingCommand() {
        let e = failure(command: ["no-such-command-cpuflags"])
        #expect(e?.option == "COMMAND")
        #expect(e?.message.contains("not found") == true)
    }

    @Test func unwritableOutputFailsBeforeRecording() throws {
        #expect(failure(output: "/nonexistent-dir/t.txt")?.message.contains("ENOENT") == true)
        #expect(failure(output: NSTemporaryDirectory())?.message.contains("EISDIR") == true)
        #expect(failure(output: "/nonexistent-dir/t.txt")?.option == "-o/--output")
        // Nothing was created by the check.
        let path = NSTemporaryDirectory() + "cpuflags-check-\(getpid()).txt"
        _ = try parse(output: path)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func workloadsHaveOneLineEach() {
        for w in Workload.allCases {
            #expect(!w.summary.isEmpty && !w.summary.contains("\n"))
            #expect(w.perSecond > 0)
        }
        #expect(Workload.staticKeys.perSecond == 8)
    }

    @Test func bufferSizedForTheDuration() {
        #expect(Recorder.bufferKB(seconds: 1, cpus: 2, memAvailableKB: 16_000_000) == 4096)
        #expect(Recorder.bufferKB(seconds: 5, cpus: 2, memAvailableKB: 16_000_000) == 10240)
        #expect(Recorder.bufferKB(seconds: 10_000, cpus: 2, memAvailableKB: 16_000_000) == 262_144)
        // A quarter of the memory, shared by the CPUs.
        #expect(Recorder.bufferKB(seconds: 100, cpus: 4, memAvailableKB: 1_000_000) == 62_500)
    }
}

// MARK: a fake tracefs

/// A directory standing in for tracefs: the setting files, `trace`, an `instances/`
/// directory and `events/<sys>/<ev>/enable` for every event of a recording (less the
/// ones `missing`), plus one event of someone else's, enabled.
final class FakeTraceFS {
    let root: String
    static let initial: [String: String] = [
        "tracing_on": "1\n",
        "trace_clock": "[local] global counter uptime perf mono mono_raw boot tai x86-tsc\n",
        "buffer_size_kb": "7 (expanded: 1408)\n",
        "current_tracer": "nop\n",
        "trace": "# tracer: nop\n#\n# entries-in-buffer/entries-written: 3/3   #P:2\nold event\n",
    ]
    static let othersEvent = "sched/sched_wakeup"

    let missing: Set<String>

    init(missing: Set<String> = [], instances: Bool = true) throws {
        root = NSTemporaryDirectory() + "cpuflags-fake-tracefs-\(UUID().uuidString)"
        self.missing = missing
        try FakeTraceFS.populate(root, missing: missing)
        if instances { try FileManager.default.createDirectory(atPath: root + "/instances", withIntermediateDirectories: true) }
        try write(FakeTraceFS.othersEvent + "/enable", under: "events", "1\n")
    }

    static func populate(_ dir: String, missing: Set<String> = []) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (file, text) in initial { try text.write(toFile: "\(dir)/\(file)", atomically: false, encoding: .utf8) }
        for e in TraceEvent.all where !missing.contains(e.name) {
            try fm.createDirectory(atPath: "\(dir)/events/\(e.name)", withIntermediateDirectories: true)
            try "0\n".write(toFile: "\(dir)/events/\(e.name)/enable", atomically: false, encoding: .utf8)
        }
        for cpu in 0..<2 {
            try fm.createDirectory(atPath: "\(dir)/per_cpu/cpu\(cpu)", withIntermediateDirectories: true)
            try "entries: 0\noverrun: \(cpu == 1 ? 5 : 0)\ncommit overrun: 0\n".write(toFile: "\(dir)/per_cpu/cpu\(cpu)/stats", atomically: false, encoding: .utf8)
        }
    }

    /// Instances made and removed as tracefs does: a mkdir gives a full directory, with
    /// the events the top level has.
    var ops: TraceSession.InstanceOps {
        let missing = self.missing
        return TraceSession.InstanceOps(
        make: { (path: String) throws(RecorderError) in
            do { try FakeTraceFS.populate(path, missing: missing) } catch { throw RecorderError(.tracefs, path, "fake mkdir failed: \(error)") }
        },
        remove: { (path: String) throws(RecorderError) in
            do { try FileManager.default.removeItem(atPath: path) } catch { throw RecorderError(.tracefs, path, "fake rmdir failed: \(error)") }
        })
    }

    func write(_ file: String, under dir: String = "", _ text: String) throws {
        let path = dir.isEmpty ? "\(root)/\(file)" : "\(root)/\(dir)/\(file)"
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    func read(_ file: String) -> String { (try? String(contentsOfFile: "\(root)/\(file)", encoding: .utf8)) ?? "<missing>" }

    /// Each setting's value as it would be written back, and each event's enable.
    func settings() -> [String: String] {
        var s: [String: String] = [:]
        for f in ["tracing_on", "trace_clock", "buffer_size_kb", "current_tracer"] {
            s[f] = TraceFS.currentValue(ofSetting: read(f))
        }
        for e in TraceEvent.all + [TraceEvent(FakeTraceFS.othersEvent)] {
            s[e.name] = read("events/\(e.name)/enable").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return s
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct SessionTests {
    @Test func topLevelSettingsAreRestored() throws {
        let fake = try FakeTraceFS(instances: false)
        let before = fake.settings()
        var lines: [String] = []
        let s = TraceSession(root: fake.root, mode: .preferred, ops: fake.ops)
        try s.setup(bufferKB: 4096) { lines.append($0) }
        #expect(s.instance == nil && s.dir == fake.root)
        #expect(lines.contains { $0.contains("recording at the top level") })
        // During the recording: tracing off until start, our clock and size, our events on
        // and someone else's off (it would mix its lines into ours).
        #expect(fake.read("tracing_on") == "0")
        #expect(fake.read("trace_clock") == "mono")
        #expect(fake.read("buffer_size_kb") == "4096")
        #expect(fake.read("trace").isEmpty)
        for e in TraceEvent.all { #expect(fake.read("events/\(e.name)/enable") == "1", "\(e.name)") }
        #expect(fake.read("events/\(FakeTraceFS.othersEvent)/enable") == "0")
        try s.start()
        #expect(fake.read("tracing_on") == "1")
        try s.stop()

        #expect(s.restore().isEmpty)
        #expect(fake.settings() == before)
        // The unexpanded size comes back as the size the buffer expands to.
        #expect(fake.read("buffer_size_kb") == "1408")
        #expect(fake.read("trace").isEmpty, "the buffer used is cleared")
        #expect(s.restore().isEmpty, "restore is idempotent")
    }

    @Test func anErrorMidwayRestoresWhatWasChanged() throws {
        let fake = try FakeTraceFS(instances: false)
        let before = fake.settings()
        // An enable file that cannot be written (a directory): the 16th event fails,
        // after the clock, the size and 15 events were changed.
        let bad = "sched/sched_switch"
        try FileManager.default.removeItem(atPath: "\(fake.root)/events/\(bad)/enable")
        try FileManager.default.createDirectory(atPath: "\(fake.root)/events/\(bad)/enable", withIntermediateDirectories: false)
        let s = TraceSession(root: fake.root, mode: .topLevel)
        let error = #expect(throws: RecorderError.self) { try s.setup(bufferKB: 8192) }
        #expect(error?.kind == .tracefs)
        #expect(error?.subject == "\(fake.root)/events/\(bad)/enable")
        #expect(error?.errno == EISDIR)
        #expect(error?.description.contains("EISDIR") == true)
        var after = fake.settings()
        after[bad] = before[bad]
        #expect(after == before)
        #expect(s.journal.isEmpty)
    }

    @Test func aMissingEventIsReportedAndTheRestRecorded() throws {
        let fake = try FakeTraceFS(missing: ["tlb/tlb_flush", "irq_vectors/reschedule_exit"], instances: false)
        let s = TraceSession(root: fake.root, mode: .topLevel)
        try s.setup(bufferKB: 4096)
        #expect(s.missing.map(\.name) == ["tlb/tlb_flush"])
        #expect(s.missingOptional.map(\.name) == ["irq_vectors/reschedule_exit"])
        #expect(s.enabled.count == TraceEvent.all.count - 2)
        #expect(fake.read("events/csd/csd_queue_cpu/enable") == "1")
        s.restore()
        #expect(fake.read("events/csd/csd_queue_cpu/enable") == "0")
    }

    @Test func noEventsAtAllIsAnError() throws {
        let fake = try FakeTraceFS(missing: Set(TraceEvent.all.map(\.name)), instances: false)
        let before = fake.settings()
        let s = TraceSession(root: fake.root, mode: .topLevel)
        let error = #expect(throws: RecorderError.self) { try s.setup(bufferKB: 4096) }
        #expect(error?.kind == .noEvents)
        #expect(fake.settings() == before)
    }

    @Test func anInstanceLeavesTheTopLevelAlone() throws {
        let fake = try FakeTraceFS()
        let files = ["tracing_on", "trace_clock", "buffer_size_kb", "trace", "events/\(FakeTraceFS.othersEvent)/enable"]
        let before = files.map(fake.read)
        let s = TraceSession(root: fake.root, instanceName: "cpuflags-test", ops: fake.ops)
        try s.setup(bufferKB: 4096)
        #expect(s.instance == "cpuflags-test")
        #expect(s.dir == "\(fake.root)/instances/cpuflags-test")
        #expect(fake.read("instances/cpuflags-test/trace_clock") == "mono")
        #expect(fake.read("instances/cpuflags-test/events/csd/csd_queue_cpu/enable") == "1")
        #expect(files.map(fake.read) == before)
        #expect(s.restore().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(fake.root)/instances/cpuflags-test"))
        #expect(files.map(fake.read) == before)
    }

    @Test func staleInstancesOfDeadProcessesAreRemoved() throws {
        let fake = try FakeTraceFS()
        // pid_max is at most 4194304, so this pid cannot be running.
        let names = ["cpuflags-99999999", "cpuflags-99999999-keys", "cpuflags-\(getpid())", "someone-else", "cpuflags-1"]
        for n in names { try FileManager.default.createDirectory(atPath: "\(fake.root)/instances/\(n)", withIntermediateDirectories: false) }
        #expect(TraceSession.removeStaleInstances(root: fake.root) == ["cpuflags-99999999", "cpuflags-99999999-keys"])
        let left = try FileManager.default.contentsOfDirectory(atPath: "\(fake.root)/instances").sorted()
        #expect(left == ["cpuflags-1", "cpuflags-\(getpid())", "someone-else"].sorted())
    }

    @Test func instanceRequiredButUnavailable() throws {
        let fake = try FakeTraceFS(instances: false)
        let before = fake.settings()
        let s = TraceSession(root: fake.root, mode: .required)
        #expect(throws: RecorderError.self) { try s.setup(bufferKB: 4096) }
        #expect(fake.settings() == before)
    }

    @Test func recordOnAFakeTraceFS() throws {
        let fake = try FakeTraceFS(missing: ["tlb/tlb_flush"])
        let before = fake.settings()
        let out = NSTemporaryDirectory() + "cpuflags-record-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: out) }
        var o = RecordOptions(isolated: CPUSet([1]), online: CPUSet([0, 1]), duration: 0.2, output: out)
        o.tracefsRoot = fake.root
        o.instanceOps = fake.ops
        o.requireRoot = false
        o.trapSignals = false
        var lines: [String] = []
        let r = try record(o) { lines.append($0) }
        #expect(r.missingEvents == ["tlb/tlb_flush"])
        #expect(r.enabledEvents.count == TraceEvent.all.count - 1)
        #expect(r.usedInstance)
        #expect(r.output == out && FileManager.default.fileExists(atPath: out))
        #expect(lines.contains { $0.contains("tlb/tlb_flush") && $0.contains("do not exist") })
        #expect(lines.last == "wrote 0 events to \(out)")
        #expect(fake.settings() == before)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: fake.root + "/instances")) ?? ["?"]).isEmpty)
    }

    @Test func notRootIsSaidClearly() throws {
        #expect(Recorder.rootProblem(euid: 0) == nil)
        let e = Recorder.rootProblem(euid: 1000)
        #expect(e?.kind == .notRoot && e?.exitStatus == 77)
        #expect(e?.description.contains("needs root (effective uid 1000)") == true)
        #expect(e?.description.contains("sudo") == true)
    }
}

// MARK: the trace text

@Suite struct TraceTextTests {
    @Test func countsEventsAndLostEntries() {
        let text = """
            # tracer: nop
            #
            # entries-in-buffer/entries-written: 3/10   #P:2
            #
                        spin-1 [001] d.h1.   1.000001: local_timer_entry: vector=236
                        spin-1 [001] d.h1.   1.000002: local_timer_exit: vector=236
                  cpuflags-2 [000] ...1.   1.000003: csd_queue_cpu: cpu=1 callsite=x func=do_sync_core csd=0

            """
        let r = TraceSession.parse(Data(text.utf8))
        #expect(r.events == 3)
        #expect(r.entriesInBuffer == 3 && r.entriesWritten == 10)
        #expect(r.lost == 7)
    }

    @Test func perCPUOverrunsWhenThereIsNoHeader() {
        var r = TraceSession.parse(Data("a\nb\n".utf8))
        #expect(r.events == 2 && r.entriesInBuffer == nil)
        r.overrunPerCPU = [0: 2, 1: 3]
        #expect(r.lost == 5)
    }

    @Test func settingValues() {
        #expect(TraceFS.currentValue(ofSetting: "[local] global mono") == "local")
        #expect(TraceFS.currentValue(ofSetting: "local global [mono]") == "mono")
        #expect(TraceFS.currentValue(ofSetting: "7 (expanded: 1408)") == "1408")
        #expect(TraceFS.currentValue(ofSetting: "1410\n") == "1410")
    }
}

// MARK: real tracefs

enum RealTraceFS {
    /// Root, a mounted tracefs with instances, and at least two CPUs online (one for the
    /// spinner, one for the workload).
    static var usable: Bool {
        geteuid() == 0 && FileManager.default.fileExists(atPath: TraceFS.standardRoot + "/instances")
            && CPUSet.online().cpus.count >= 2
    }

    static func topLevel() -> [String] {
        let t = TraceFS.standardRoot
        var lines = ["tracing_on", "trace_clock", "buffer_size_kb", "current_tracer"].map { (try? TraceFS.readText("\(t)/\($0)")) ?? "?" }
        let events = (try? FileManager.default.subpathsOfDirectory(atPath: t + "/events")) ?? []
        for e in events.sorted() where e.hasSuffix("/enable") && e.split(separator: "/").count == 3 {
            if (try? TraceFS.readText("\(t)/events/\(e)")) == "1" { lines.append(e) }
        }
        return lines
    }
}

@Suite struct RealTraceFSTests {
    // Skipped (and said so by Swift Testing, with this comment) unless running as root
    // with tracefs mounted at /sys/kernel/tracing and at least 2 CPUs online.
    @Test(.enabled(if: RealTraceFS.usable, "needs root, tracefs at /sys/kernel/tracing with instances, and 2+ online CPUs"),
          .timeLimit(.minutes(1)))
    func recordsOneSecondOfStaticKeys() throws {
        let before = RealTraceFS.topLevel()
        let out = NSTemporaryDirectory() + "cpuflags-real-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: out) }
        var o = try RecordOptions.parse(isolated: nil, duration: "1", output: out, workload: "static-keys", command: [])
        o.trapSignals = false
        let r = try record(o) { _ in }
        #expect(r.usedInstance)
        #expect(r.events > 0)
        #expect(r.missingEvents.isEmpty, "events missing on this kernel: \(r.missingEvents)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.hasPrefix("# tracer: nop"))
        // The text patching of a static key flip sends do_sync_core to every other CPU,
        // the isolated one included.
        let cpu = o.isolated.cpus[0]
        let toIsolated = text.split(separator: "\n").filter { $0.contains("csd_queue_cpu: cpu=\(cpu) ") && $0.contains("func=do_sync_core") }
        #expect(toIsolated.count > 0)
        #expect(text.contains("spin-"))
        #expect(RealTraceFS.topLevel() == before)
    }
}
