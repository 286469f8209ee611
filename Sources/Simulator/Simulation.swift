import CPUFlags
import Foundation
import HeapModule
import Histogram

/// A discrete-event simulation of one machine under one policy.
///
/// Each isolated CPU does one thing at a time: an interrupt handler, the work of an
/// idle exit, or a syscall's body. An interrupt that arrives while the CPU handles
/// another one (or runs an idle exit's deferred work) waits in a per-CPU FIFO and
/// begins when the CPU is free; an interrupt that arrives in a syscall's body preempts
/// it and pushes the syscall's end back by the handler's time. The word says KERNEL
/// from a handler's entry to its exit, so requests made meanwhile see KERNEL.
public final class Simulation {
    public let config: MachineConfig
    public let policy: Policy
    /// The policy's behaviour (its file in Policies/), looked up once.
    let model: any PolicyModel
    let isolated: [Bool]
    let isolatedList: [Int]
    let housekeeping: [Int]
    let platform: SimPlatform
    var rng: SplitMix64
    var now: Int64 = 0
    /// The simulated end of the run (ns).
    let endNs: Int64
    var queue = Heap<ScheduledEvent>()
    var seq = 0
    /// Until when each CPU runs kernel code for a syscall (isolated CPUs); interrupts
    /// in the syscall push it back.
    var busyUntil: [Int64]
    /// In a syscall: between its entry and its `.syscallExit` (the word says KERNEL).
    var inSyscall: [Bool]
    /// Where the syscall's current stretch (between interrupts) began, for the trace.
    var syscallStretchStart: [Int64]
    /// Isolated CPUs in an idle period, and when it ends.
    var idle: [Bool]
    var idleExitAt: [Int64]
    /// What each isolated CPU is busy with (an interrupt handler or an idle exit's
    /// work), until `runningEnd`; nil when it is free to take the next interrupt.
    var running: [Running?]
    var runningEnd: [Int64]
    /// Interrupts that arrived while their CPU was busy, oldest first (from `pendingHead`).
    var pending: [[PendingInterrupt]]
    var pendingHead: [Int]
    /// on_each_cpu-style calls waiting for their interrupted targets, by id.
    var calls: [Int: Call] = [:]
    var callCount = 0
    /// text_mutex: one text-patch batch at a time; batches that come meanwhile wait
    /// (a count: they are all alike).
    var textPatchInProgress = false
    var textPatchesWaiting = 0

    /// An interrupt on its way to, or queued at, an isolated CPU.
    struct PendingInterrupt {
        var cause: String
        var kind: WorkKind
        /// The call that waits for this handler to finish, if any.
        var call: Int?
    }

    /// What an isolated CPU is busy with.
    enum Running {
        /// A handler. `frame` is nil for one that preempted a syscall (the CPU was in
        /// the kernel already: no entry, no exit); `begin` is when it started.
        case interrupt(PendingInterrupt, frame: CPUFlags<SimPlatform>.IRQFrame?, begin: Int64, fromUser: Bool)
        /// The deferred work an idle exit runs before returning to user.
        case idleExitWork(begin: Int64)
    }

    /// What happens when a call's last target is done.
    enum Then {
        case nothing
        case expeditedGracePeriod
        /// A text-patch batch (text_poke_bp_batch): INT3, sync, tail bytes, sync, first
        /// byte, sync; each round waits for every target (on_each_cpu(..., wait=1)).
        case nextTextPatchRound(roundsLeft: Int)
    }

    /// One on_each_cpu-style call: it completes when the last interrupted isolated
    /// target has run the handler, or at `latestNs` for the targets not simulated
    /// one by one (housekeeping CPUs, hardware flushes).
    struct Call {
        var id: Int
        var start: Int64
        var requester: Int
        var cause: String
        var kind: WorkKind
        var outstanding: Int
        var latestNs: Int64
        /// Requester-side time added to the completion: sending the IPIs, and the
        /// drains it ran on behalf of pinned targets.
        var requesterNs: Double
        var then: Then
    }

    // Metrics.
    var interruptions = 0
    var byCause: [String: Int] = [:]
    var lostNs: Double = 0
    /// Per CPU, the end of the last stretch charged as lost: lost time is charged as
    /// intervals of simulated time, never twice for one instant, and never past the
    /// run's end, so a CPU never loses more than the run's length.
    var lostUntil: [Double]
    /// Histograms track up to `histogramNsMax`; larger values are recorded as it (and
    /// counted in `clampedValues`) rather than dropped.
    static let histogramNsMax: UInt64 = 10_000_000_000_000
    var clampedValues = 0
    var interruptionCost = Histogram<UInt64>(highestTrackableValue: Simulation.histogramNsMax)
    var deliveries: [String: Int] = [:]
    var requests: [String: Int] = [:]
    var roundTrips = 0
    var roundTripAtomics = 0.0
    var roundTripOverheadNs = 0.0
    var requesterLatency = Histogram<UInt64>(highestTrackableValue: Simulation.histogramNsMax)
    var gpNormal = Histogram<UInt64>(highestTrackableValue: Simulation.histogramNsMax)
    var gpExpedited = Histogram<UInt64>(highestTrackableValue: Simulation.histogramNsMax)

    func record(_ h: inout Histogram<UInt64>, _ ns: Double) {
        // NaN and negative values record as 0, values past the top as the top.
        let v = ns.isNaN ? 0 : UInt64(max(0, min(ns, Double(Simulation.histogramNsMax))))
        if ns > Double(Simulation.histogramNsMax) { clampedValues += 1 }
        _ = h.record(v)
    }

    /// The largest duration the simulator schedules (about 115 days: far past any
    /// run's end, and far from Int64's limit when added to any event time).
    static let durationNsMax = 1e16

    /// `ns` as whole nanoseconds, rounded up (so that something that takes 3.3 ns ends
    /// after, never before, the time it was charged), clamped to 0...`max`: every
    /// conversion of a user-controlled value to an integer goes through here, so no
    /// cost or rate can trap it (1e300, infinity and NaN included).
    static func nanoseconds(_ ns: Double, max: Double = durationNsMax) -> Int64 {
        guard ns.isFinite else { return ns == .infinity ? Int64(max) : 0 }
        return Int64(Swift.min(Swift.max(ns.rounded(.up), 0), max))
    }

    /// `now` plus a duration in ns.
    func after(_ ns: Double) -> Int64 { now + Simulation.nanoseconds(ns) }

    /// Charges `ns` of CPU `t`'s time from `start` as lost (see `lostUntil`).
    func lose(_ t: Int, from start: Int64, _ ns: Double) {
        guard ns > 0 else { return }
        let a = max(Double(start), lostUntil[t])
        let b = min(Double(start) + min(ns, Simulation.durationNsMax), Double(endNs))
        if b > a {
            lostNs += b - a
            lostUntil[t] = b
        }
    }
    var events = 0
    var idleInterruptions = 0
    /// The last events, printed when an invariant fails (a ring of `recentMax`).
    static let recentMax = 16
    var recent: [(Int64, ScheduledEvent.Kind)?] = Array(repeating: nil, count: Simulation.recentMax)

    func recentEvents() -> [String] {
        (1...recent.count).compactMap { i in recent[(events + i) % recent.count] }.map { t, k in
            let what: String
            switch k {
            case .source(let s): what = "housekeeping \(s.key)"
            case .textPatchRound(let r, let left): what = "cpu\(r) text-patch round (\(left) left after it)"
            case .syscall(let c): what = "cpu\(c) syscall"
            case .syscallExit(let c): what = "cpu\(c) syscall exit"
            case .idleEnter(let c): what = "cpu\(c) idle"
            case .idleExit(let c): what = "cpu\(c) idle exit"
            case .interrupt(let c, let p): what = "cpu\(c) interrupted: \(p.cause)"
            case .runningEnds(let c): what = "cpu\(c) handler or idle-exit work ends"
            }
            return String(format: "%12.3f us  ", Double(t) / 1000) + what
        }
    }
    /// Called about once a second of wall time on long runs, with the simulated time.
    public var progress: ((Int64) -> Void)?
    /// Chrome trace events for the window, if one is set, go to `traceSink` as they
    /// happen; the simulation keeps none of them.
    public var traceWindowNs: ClosedRange<Int64>?
    public var traceSink: ChromeTraceWriter?
    /// The mode last written to each CPU's counter track (nil: none yet), so that no
    /// sample repeats the one before it.
    var tracedMode: [Mode?]
    var traceWindowStarted = false

    /// Set when the trace's budget ran out during this run.
    public var traceTruncated: Bool { traceSink?.stoppedIn == policy }

    func tracing(_ at: Int64) -> Bool {
        guard let w = traceWindowNs, traceSink != nil else { return false }
        return w.contains(at)
    }

    /// A slice from `start` to `end` on `cpu`'s track ("X"), or an instant ("i").
    func trace(_ name: String, cpu: Int, from start: Int64? = nil, to end: Int64? = nil,
               args: [String: String]? = nil) {
        let ts = start ?? now
        guard tracing(ts), let sink = traceSink else { return }
        _ = sink.emit(TraceEvent(name: name, ph: end == nil ? "i" : "X", ts: Double(ts) / 1000,
                                 dur: end.map { Double($0 - ts) / 1000 }, pid: 0, tid: cpu, s: end == nil ? "t" : nil, args: args))
    }

    /// A counter track per isolated CPU with its mode (KERNEL 0, USER 1, IDLE 2, INDET 3),
    /// sampled when it changes (at `at`, default now).
    func traceMode(_ cpu: Int, at: Int64? = nil) {
        let ts = at ?? now
        guard tracing(ts), let sink = traceSink else { return }
        let m = platform.word(cpu).mode
        if tracedMode[cpu] == m { return }
        tracedMode[cpu] = m
        _ = sink.emit(TraceEvent(name: "mode cpu\(cpu) (0 KERNEL, 1 USER, 2 IDLE, 3 INDET)", ph: "C",
                                 ts: Double(ts) / 1000, pid: 0, tid: cpu, counter: ["mode": Double(m.rawValue)]))
    }

    /// Gives every counter track its value at the window's start, before the first
    /// event at or after it (or at the end of the run if there is none).
    func startTraceWindow(before t: Int64) {
        guard !traceWindowStarted, let w = traceWindowNs, t >= w.lowerBound else { return }
        traceWindowStarted = true
        for c in isolatedList { traceMode(c, at: w.lowerBound) }
    }

    struct ScheduledEvent: Comparable {
        var time: Int64
        var seq: Int
        var kind: Kind
        enum Kind {
            case source(Source)
            /// The next sync round of a text-patch batch from CPU `requester`.
            case textPatchRound(requester: Int, roundsLeft: Int)
            case syscall(Int)
            case syscallExit(Int)
            case idleEnter(Int)
            case idleExit(Int)
            /// An interrupt reaches isolated CPU `c` (it waits there if `c` is busy).
            case interrupt(Int, PendingInterrupt)
            /// The handler or idle-exit work `c` is busy with ends.
            case runningEnds(Int)
        }
        static func < (a: ScheduledEvent, b: ScheduledEvent) -> Bool { (a.time, a.seq) < (b.time, b.seq) }
        static func == (a: ScheduledEvent, b: ScheduledEvent) -> Bool { a.time == b.time && a.seq == b.seq }
    }

    /// The cause key of the interrupts a normal grace period's forced-quiescent-state
    /// scan sends (there is no source of that name: the request is `rcu-normal`).
    static let rcuForceQuiescentCause = "rcu-force-quiescent"
    /// Every cause key `interruptionsByCause` may have.
    public static let causeKeys: [String] = Source.allCases.filter { $0 != .rcuNormal }.map(\.key) + [rcuForceQuiescentCause]

    public enum SetupError: Error, CustomStringConvertible {
        case bad(String)
        public var description: String { if case .bad(let s) = self { return s }; return "" }
    }

    public init(config: MachineConfig, policy: Policy) throws {
        let list = try config.validate()
        self.config = config
        self.policy = policy
        self.model = policy.model
        var iso = Array(repeating: false, count: config.cpus)
        for c in list.cpus { iso[c] = true }
        isolated = iso
        isolatedList = list.cpus
        housekeeping = (0..<config.cpus).filter { !iso[$0] }
        platform = SimPlatform(cpuCount: config.cpus)
        rng = SplitMix64(state: config.seed)
        endNs = Simulation.nanoseconds(config.seconds * 1e9)
        busyUntil = Array(repeating: 0, count: config.cpus)
        inSyscall = Array(repeating: false, count: config.cpus)
        syscallStretchStart = Array(repeating: 0, count: config.cpus)
        idle = Array(repeating: false, count: config.cpus)
        idleExitAt = Array(repeating: 0, count: config.cpus)
        running = Array(repeating: nil, count: config.cpus)
        runningEnd = Array(repeating: 0, count: config.cpus)
        pending = Array(repeating: [], count: config.cpus)
        pendingHead = Array(repeating: 0, count: config.cpus)
        lostUntil = Array(repeating: 0, count: config.cpus)
        tracedMode = Array(repeating: nil, count: config.cpus)
        for c in isolatedList {
            platform.setInitial(c, mode: policy.config.exitPolicy == .strict ? .user : .indeterminate)
        }
    }

    /// The simulated length of a run of `config` (ns), for checking a trace window.
    public static func lengthNs(of config: MachineConfig) -> Int64 { nanoseconds(config.seconds * 1e9) }

    func schedule(_ at: Int64, _ kind: ScheduledEvent.Kind) {
        seq += 1
        queue.insert(ScheduledEvent(time: at, seq: seq, kind: kind))
    }

    func core(_ cpu: Int) -> CPUFlags<SimPlatform> {
        platform.current = cpu
        return CPUFlags(platform: platform, cpu: cpu, config: policy.config)
    }

    /// Runs the simulation to the end; deterministic for a given config and policy.
    var lastProgress = ContinuousClock.now

    public func run() -> PolicyResult {
        lastProgress = ContinuousClock.now
        let end = endNs
        for s in Source.allCases where s.rate(config.workload) > 0 {
            schedule(rng.exponentialNs(perSecond: s.rate(config.workload)), .source(s))
        }
        if config.workload.isolatedIdlePeriodsPerSec > 0 {
            for c in isolatedList { schedule(rng.exponentialNs(perSecond: config.workload.isolatedIdlePeriodsPerSec), .idleEnter(c)) }
        }
        if config.workload.isolatedSyscallsPerSec > 0 {
            for c in isolatedList { schedule(rng.exponentialNs(perSecond: config.workload.isolatedSyscallsPerSec), .syscall(c)) }
        }
        while let e = queue.popMin(), e.time <= end, platform.violation == nil, events < SimulatorLimits.eventsMax {
            startTraceWindow(before: e.time)
            now = e.time
            events += 1
            recent[events % recent.count] = (e.time, e.kind)
            if events & 0xFFFF == 0, let p = progress {
                let t = ContinuousClock.now
                if t - lastProgress >= .seconds(1) {
                    lastProgress = t
                    p(now)
                }
            }
            switch e.kind {
            case .source(let s):
                fire(s)
                schedule(now + rng.exponentialNs(perSecond: s.rate(config.workload)), .source(s))
            case .textPatchRound(let r, let roundsLeft):
                broadcast(.syncCore, to: Array(0..<config.cpus), cause: Source.textPatch.key, from: r,
                          then: .nextTextPatchRound(roundsLeft: roundsLeft))
            case .syscall(let c):
                syscall(c)
            case .syscallExit(let c):
                syscallExit(c)
            case .idleEnter(let c):
                idleEnter(c)
                schedule(now + rng.exponentialNs(perSecond: config.workload.isolatedIdlePeriodsPerSec), .idleEnter(c))
            case .idleExit(let c):
                idleExit(c)
            case .interrupt(let t, let p):
                arrive(t, p)
            case .runningEnds(let t):
                runningEnds(t)
            }
        }
        startTraceWindow(before: end)
        return result()
    }

}
