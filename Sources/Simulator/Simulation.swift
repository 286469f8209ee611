import CPUFlags
import Foundation
import HeapModule
import Histogram

/// Deterministic random numbers (SplitMix64): the same seed gives the same run.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    mutating func unit() -> Double { (Double(next() >> 11) + 1) / Double(1 << 53) }
    /// Exponential inter-arrival time for `perSecond`, in ns.
    mutating func exponentialNs(perSecond: Double) -> Int64 {
        // Clamped far beyond any run's end (3600 s) so that tiny rates cannot overflow.
        Simulation.nanoseconds(-log(unit()) / perSecond * 1e9, max: 1e17)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// The results of one policy on one machine.
public struct PolicyResult: Codable, Sendable {
    public struct Percentiles: Codable, Sendable {
        public var count: UInt64
        public var p50: UInt64
        public var p99: UInt64
        public var p9999: UInt64
        public var max: UInt64
        init(_ h: Histogram<UInt64>) {
            count = h.totalCount
            p50 = h.totalCount == 0 ? 0 : h.valueAtPercentile(50)
            p99 = h.totalCount == 0 ? 0 : h.valueAtPercentile(99)
            p9999 = h.totalCount == 0 ? 0 : h.valueAtPercentile(99.99)
            max = h.totalCount == 0 ? 0 : h.max
        }
    }
    public var policy: Policy
    public var isolatedCPUs: Int
    /// Simulated seconds covered (less than asked for when the run is incomplete).
    public var seconds: Double
    /// Interruptions of isolated CPUs (handlers that began within the run), in all and
    /// by cause. The cause keys are the housekeeping sources' names in kebab-case,
    /// the same keys as `requests`: `kernel-tlb-flush`, `text-patch` (its sync_core
    /// rounds), `rcu-expedited`, `user-tlb-shootdown`, `wakeup`, `cache-drain`,
    /// `page-table-free`; plus `rcu-force-quiescent` for the interrupts of a normal
    /// grace period's forced-quiescent-state scan (its request is `rcu-normal`).
    public var interruptions: Int
    public var interruptionsByCause: [String: Int]
    public var interruptionsPerCPUPerSecond: Double
    /// Interrupts that found an isolated CPU idle (counted in `interruptions`; they cost
    /// no task time, so they are not in the lost time or the cost distribution).
    public var idleInterruptions: Int
    /// Time the isolated tasks lost to interruptions and entry overhead, per CPU per
    /// second (ns). A CPU handles one thing at a time, so this is at most 1e9.
    public var lostNsPerCPUPerSecond: Double
    /// Cost of one interruption of an isolated CPU from user mode (ns).
    public var interruptionCost: Percentiles
    /// Deferrals, skips, on-behalf runs and hardware flushes that replaced interrupts.
    public var deliveries: [String: Int]
    /// Requests each housekeeping source made (a text-patch batch counts once), keyed
    /// as `interruptionsByCause`.
    public var requests: [String: Int]
    /// User round trips of isolated CPUs (syscalls, idle periods and interrupts from user).
    public var roundTrips: Int
    /// Atomics and ns of entry overhead (atomics plus the work the entry ran) per user
    /// round trip; nil when there was no round trip (no figure over zero round trips).
    public var atomicsPerRoundTrip: Double?
    public var entryOverheadNsPerRoundTrip: Double?
    /// Latency of each on_each_cpu-style call (ns), from its start until its last
    /// target finished the handler (targets busy with other work make it wait).
    public var requesterLatency: Percentiles
    public var gracePeriodNormal: Percentiles
    public var gracePeriodExpedited: Percentiles
    public var events: Int
    /// Set when the run stopped at `eventsMax` before the simulated time was over.
    public var incomplete: String?
    public var violation: String?
    /// The events that led to the violation, oldest first.
    public var violationEvents: [String]?
}

extension PolicyResult {
    /// As synthesized, except that the per-round-trip figures are written as `null`
    /// when there was no round trip (rather than left out), so that a reader sees
    /// "no figure" rather than a missing field.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(policy, forKey: .policy)
        try c.encode(isolatedCPUs, forKey: .isolatedCPUs)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(interruptions, forKey: .interruptions)
        try c.encode(interruptionsByCause, forKey: .interruptionsByCause)
        try c.encode(interruptionsPerCPUPerSecond, forKey: .interruptionsPerCPUPerSecond)
        try c.encode(idleInterruptions, forKey: .idleInterruptions)
        try c.encode(lostNsPerCPUPerSecond, forKey: .lostNsPerCPUPerSecond)
        try c.encode(interruptionCost, forKey: .interruptionCost)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(requests, forKey: .requests)
        try c.encode(roundTrips, forKey: .roundTrips)
        try c.encode(atomicsPerRoundTrip, forKey: .atomicsPerRoundTrip)
        try c.encode(entryOverheadNsPerRoundTrip, forKey: .entryOverheadNsPerRoundTrip)
        try c.encode(requesterLatency, forKey: .requesterLatency)
        try c.encode(gracePeriodNormal, forKey: .gracePeriodNormal)
        try c.encode(gracePeriodExpedited, forKey: .gracePeriodExpedited)
        try c.encode(events, forKey: .events)
        try c.encodeIfPresent(incomplete, forKey: .incomplete)
        try c.encodeIfPresent(violation, forKey: .violation)
        try c.encodeIfPresent(violationEvents, forKey: .violationEvents)
    }
}

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
    var queue = Heap<Event>()
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
    var recent: [(Int64, Event.Kind)?] = Array(repeating: nil, count: Simulation.recentMax)

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

    struct Event: Comparable {
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
        static func < (a: Event, b: Event) -> Bool { (a.time, a.seq) < (b.time, b.seq) }
        static func == (a: Event, b: Event) -> Bool { a.time == b.time && a.seq == b.seq }
    }

    /// The housekeeping sources; `key` names them in results (requests and causes).
    enum Source: String, CaseIterable {
        case kernelTLBFlush = "kernel-tlb-flush"
        case textPatch = "text-patch"
        case rcuExpedited = "rcu-expedited"
        case rcuNormal = "rcu-normal"
        case userTLBShootdown = "user-tlb-shootdown"
        case wakeup
        case cacheDrain = "cache-drain"
        case pageTableFree = "page-table-free"
        var key: String { rawValue }
        func rate(_ w: Workload) -> Double {
            switch self {
            case .kernelTLBFlush: return w.kernelTLBFlushPerSec
            case .textPatch: return w.textPatchBatchesPerSec
            case .rcuExpedited: return w.rcuExpeditedPerSec
            case .rcuNormal: return w.rcuNormalPerSec
            case .userTLBShootdown: return w.userTLBShootdownPerSec
            case .wakeup: return w.wakeupsPerSec
            case .cacheDrain: return w.cacheDrainsPerSec
            case .pageTableFree: return w.pageTableFreeSyncsPerSec
            }
        }
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

    func schedule(_ at: Int64, _ kind: Event.Kind) {
        seq += 1
        queue.insert(Event(time: at, seq: seq, kind: kind))
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

    // MARK: Requests

    /// What the policy does with `kind` for target `t`, asked by `r` (one target of
    /// `routes`; for tests).
    func deliver(_ kind: WorkKind, to t: Int, from r: Int) -> Delivery {
        routes(kind, to: [t], from: r)[0].delivery
    }

    /// The policy's routes of `kind` from `r` to `targets` (`r` skipped).
    func routes(_ kind: WorkKind, to targets: [Int], from r: Int) -> [(target: Int, delivery: Delivery)] {
        model.routes(kind, to: targets, core: core(r), machine: RoutingContext(isolated: isolated, config: config))
    }

    /// on_each_cpu(kind) from housekeeping CPU `r` (a random one if nil) to `targets`.
    /// It completes when every interrupted target has run the handler: the interrupted
    /// isolated CPUs are simulated (they may be busy), the others take `ipiLatencyNs`
    /// plus the handler. `then` says what follows completion.
    func broadcast(_ kind: WorkKind, to targets: [Int], cause: String, from requester: Int? = nil, then: Then = .nothing) {
        let r = requester ?? housekeeping[rng.below(housekeeping.count)]
        var worst = 0.0
        var anyIPI = false
        var onBehalfNs = 0.0
        let id = callCount
        callCount += 1
        var outstanding = 0
        for (t, d) in routes(kind, to: targets, from: r) {
            deliveries[d.rawValue, default: 0] += 1
            if isolated[t] && d != .interrupted {
                trace("\(d.rawValue): \(cause)", cpu: t, args: ["from": "cpu\(r)", "mode": "\(platform.word(t).mode)"])
            }
            switch d {
            case .interrupted:
                anyIPI = true
                if isolated[t] {
                    outstanding += 1
                    schedule(after(config.costs.ipiLatencyNs), .interrupt(t, PendingInterrupt(cause: cause, kind: kind, call: id)))
                } else {
                    worst = max(worst, config.costs.ipiLatencyNs + config.costs.handlerNs(kind))
                }
            case .hardware:
                worst = max(worst, config.costs.hardwareFlushNs)
            case .onBehalf:
                // The pinner runs the drain itself, one target after another.
                onBehalfNs += config.costs.cacheDrainNs
            case .wokenByBit:
                // A polling idle CPU leaves idle now (its wakeup is the bit).
                idleExitAt[t] = now
                schedule(now, .idleExit(t))
            case .deferred, .skipped:
                break
            }
        }
        let call = Call(id: id, start: now, requester: r, cause: cause, kind: kind, outstanding: outstanding, latestNs: after(worst),
                        requesterNs: (anyIPI ? config.costs.ipiSendNs : 0) + onBehalfNs, then: then)
        if outstanding == 0 { complete(call) } else { calls[id] = call }
    }

    /// One interrupted target of call `id` has finished its handler (now).
    func targetDone(_ id: Int) {
        guard var call = calls[id] else { return }
        call.outstanding -= 1
        call.latestNs = max(call.latestNs, now)
        if call.outstanding > 0 { calls[id] = call; return }
        calls[id] = nil
        complete(call)
    }

    func complete(_ call: Call) {
        let done = call.latestNs + Simulation.nanoseconds(call.requesterNs)
        let latency = Double(done - call.start)
        record(&requesterLatency, latency)
        if case .expeditedGracePeriod = call.then { record(&gpExpedited, latency) }
        if tracing(call.start), let sink = traceSink {
            // Async slices: calls from one housekeeping CPU may overlap (independent
            // sources), which "X" slices on one track must not.
            let name = "on_each_cpu: \(call.cause)"
            _ = sink.emit(TraceEvent(name: name, ph: "b", ts: Double(call.start) / 1000, pid: 0, tid: call.requester,
                                     cat: "on_each_cpu", id: "\(call.id)", args: ["kind": call.kind.rawValue]))
            _ = sink.emit(TraceEvent(name: name, ph: "e", ts: Double(done) / 1000, pid: 0, tid: call.requester,
                                     cat: "on_each_cpu", id: "\(call.id)"))
        }
        if case .nextTextPatchRound(let left) = call.then {
            if left > 0 {
                // The next round starts when this one has completed on every target.
                schedule(max(done, now), .textPatchRound(requester: call.requester, roundsLeft: left - 1))
            } else if textPatchesWaiting > 0 {
                // The batch is over: the next one takes text_mutex.
                textPatchesWaiting -= 1
                schedule(max(done, now), .textPatchRound(requester: housekeeping[rng.below(housekeeping.count)], roundsLeft: 2))
            } else {
                textPatchInProgress = false
            }
        }
    }

    func fire(_ s: Source) {
        requests[s.key, default: 0] += 1
        let all = Array(0..<config.cpus)
        switch s {
        case .kernelTLBFlush:
            broadcast(.kernelTLBFlush, to: all, cause: s.key)
        case .textPatch:
            // Round 1 of 3; the others follow it (see Then.nextTextPatchRound). Under
            // text_mutex: a batch waits for the one in progress.
            if textPatchInProgress { textPatchesWaiting += 1; return }
            textPatchInProgress = true
            broadcast(.syncCore, to: all, cause: s.key, then: .nextTextPatchRound(roundsLeft: 2))
        case .rcuExpedited:
            broadcast(.rcuExpedited, to: all, cause: s.key, then: .expeditedGracePeriod)
        case .rcuNormal:
            record(&gpNormal, normalGracePeriod())
        case .userTLBShootdown:
            broadcast(.userTLBFlush, to: [isolatedList[rng.below(isolatedList.count)]], cause: s.key)
        case .wakeup:
            // A polling idle target is woken by the WAKE bit under every policy (Linux's
            // set_nr_if_polling), others by a reschedule IPI: the core's route.
            broadcast(.reschedule, to: [isolatedList[rng.below(isolatedList.count)]], cause: s.key)
        case .cacheDrain:
            broadcast(.cacheDrain, to: all, cause: s.key)
        case .pageTableFree:
            broadcast(.tlbRemoveTableSync, to: all, cause: s.key)
        }
    }

    /// A normal grace period: CPUs in an EQS are done; housekeeping CPUs report within a
    /// tick; an isolated CPU in a syscall reports at its exit; a lazy isolated CPU in
    /// user mode is interrupted by the forced-quiescent-state scan.
    func normalGracePeriod() -> Double {
        let r = housekeeping[rng.below(housekeeping.count)]
        var latency = 0.0
        // The core's first half of a grace period (its fence, then a sample of every
        // other CPU): the CPUs it must wait for.
        for (t, _) in core(r).gracePeriodStart() {
            if !isolated[t] {
                latency = max(latency, config.costs.housekeepingQuiescentNs)
            } else if inSyscall[t] {
                latency = max(latency, Double(busyUntil[t] - now))
            } else {
                latency = max(latency, config.costs.rcuForceQuiescentNs)
                schedule(after(config.costs.rcuForceQuiescentNs), .interrupt(t, PendingInterrupt(cause: Simulation.rcuForceQuiescentCause, kind: .rcuExpedited, call: nil)))
            }
        }
        return latency
    }

    // MARK: Isolated CPUs

    /// The cost of the work an entry ran (deferred flushes and serializations), and the
    /// unconditional catch-up work, for `t`'s last entry.
    func entryWorkNs(_ t: Int) -> Double {
        let ns = Double(platform.flushes[t]) * config.costs.kernelTLBFlushNs
            + Double(platform.serializations[t]) * config.costs.syncCoreNs
        platform.flushes[t] = 0
        platform.serializations[t] = 0
        return ns + model.unconditionalEntryWorkNs(config)
    }

    /// The atomics a round trip is charged: what context tracking makes, or what the
    /// core made (`coreAtomics`, counted by the platform).
    func atomicsNs(coreAtomics: Int) -> (count: Double, ns: Double) {
        let n = policy.usesContextTracking ? config.costs.contextTrackingAtomicsPerRoundTrip : Double(coreAtomics)
        return (n, n * config.costs.atomicNs)
    }

    /// The isolated task blocks: the CPU enters the kernel, then polling idle. A task
    /// that is not running user code (in a syscall, interrupted) does not block now.
    func idleEnter(_ t: Int) {
        guard !inSyscall[t], !idle[t], running[t] == nil else { return }
        let before = platform.atomics[t]
        let f = core(t)
        f.enterFromUser()
        f.contextSwitch()
        f.enterIdle(polling: true)
        idle[t] = true
        idleExitAt[t] = after(config.workload.isolatedIdleNs)
        schedule(idleExitAt[t], .idleExit(t))
        chargeRoundTrip(t, coreAtomics: platform.atomics[t] - before, work: entryWorkNs(t))
        traceMode(t)
    }

    /// The task wakes (its timer, or a wakeup by bit): idle exit runs what was deferred,
    /// and the CPU returns to user mode once that work is done. A CPU busy with an
    /// interrupt in idle leaves idle when the handler is done.
    func idleExit(_ t: Int) {
        guard idle[t], idleExitAt[t] <= now else { return }
        if running[t] != nil {
            schedule(runningEnd[t], .idleExit(t))
            return
        }
        let before = platform.atomics[t]
        let f = core(t)
        f.exitIdle()
        let work = entryWorkNs(t)
        idle[t] = false
        let overhead = chargeRoundTrip(t, coreAtomics: platform.atomics[t] - before, work: work)
        let end = after(overhead)
        if end > now {
            // KERNEL while the deferred work runs; interrupts wait behind it.
            traceMode(t)
            running[t] = .idleExitWork(begin: now)
            runningEnd[t] = end
            schedule(end, .runningEnds(t))
        } else {
            f.exitToUser()
            trace("idle exit", cpu: t)
            traceMode(t)
        }
    }

    /// Charges the entry overhead of a user round trip of `t` starting now: atomics and
    /// the work its entry ran. It is time the task loses too (`lostNs`).
    @discardableResult
    func chargeRoundTrip(_ t: Int, coreAtomics: Int, work: Double) -> Double {
        let a = atomicsNs(coreAtomics: coreAtomics)
        roundTrips += 1
        roundTripAtomics += a.count
        roundTripOverheadNs += a.ns + work
        lose(t, from: now, a.ns + work)
        return a.ns + work
    }

    /// Atomics a round trip's exit made (`coreAtomics`), charged at the exit (now). Context
    /// tracking's round trips were charged their fixed count at the entry.
    func chargeExit(_ t: Int, coreAtomics: Int) {
        guard !policy.usesContextTracking, coreAtomics > 0 else { return }
        let ns = Double(coreAtomics) * config.costs.atomicNs
        roundTripAtomics += Double(coreAtomics)
        roundTripOverheadNs += ns
        lose(t, from: now, ns)
    }

    /// The isolated task makes a syscall. Closed loop: the task's next syscall comes an
    /// exponential user-mode stretch after this one returns, so there is never more than
    /// one per CPU and none can start while the CPU is busy.
    func syscall(_ t: Int) {
        if idle[t] {
            // Blocked: no syscall now; the next one after a user stretch.
            schedule(now + rng.exponentialNs(perSecond: config.workload.isolatedSyscallsPerSec), .syscall(t))
            return
        }
        if running[t] != nil {
            // Interrupted: the task makes its syscall when the CPU is back in user mode.
            schedule(runningEnd[t], .syscall(t))
            return
        }
        inSyscall[t] = true
        let before = platform.atomics[t]
        core(t).enterFromUser()
        let work = entryWorkNs(t)
        busyUntil[t] = after(config.costs.syscallKernelNs + work)
        syscallStretchStart[t] = now
        schedule(busyUntil[t], .syscallExit(t))
        traceMode(t)
        chargeRoundTrip(t, coreAtomics: platform.atomics[t] - before, work: work)
    }

    func syscallExit(_ t: Int) {
        // Interrupts in the syscall pushed its end back: not yet.
        if busyUntil[t] > now { schedule(busyUntil[t], .syscallExit(t)); return }
        if running[t] != nil { schedule(runningEnd[t], .syscallExit(t)); return }
        trace("syscall", cpu: t, from: syscallStretchStart[t], to: now)
        inSyscall[t] = false
        let before = platform.atomics[t]
        core(t).exitToUser()
        chargeExit(t, coreAtomics: platform.atomics[t] - before)
        traceMode(t)
        schedule(now + rng.exponentialNs(perSecond: config.workload.isolatedSyscallsPerSec), .syscall(t))
    }

    /// An interrupt reaches isolated CPU `t`: it begins now if `t` is free, else it
    /// waits for what `t` is doing (the IPI stays pending until the handler in progress
    /// returns, as with IRQs off in a handler).
    func arrive(_ t: Int, _ p: PendingInterrupt) {
        if running[t] != nil {
            pending[t].append(p)
        } else {
            begin(t, p)
        }
    }

    /// Handler of `p` begins on `t` now: the core's IRQ entry (running what was
    /// deferred), then the handler; the exit is at `runningEnds`.
    func begin(_ t: Int, _ p: PendingInterrupt) {
        interruptions += 1
        byCause[p.cause, default: 0] += 1
        let handler = config.costs.handlerNs(p.kind)
        if inSyscall[t] {
            // In the kernel already (a syscall): the handler only, and the syscall
            // ends that much later.
            if now > syscallStretchStart[t] { trace("syscall", cpu: t, from: syscallStretchStart[t], to: now) }
            core(t).runHandler(p.kind)
            _ = platform.takeEffects(t)
            record(&interruptionCost, handler)
            lose(t, from: now, handler)
            let end = after(handler)
            busyUntil[t] += end - now
            running[t] = .interrupt(p, frame: nil, begin: now, fromUser: false)
            runningEnd[t] = end
            schedule(end, .runningEnds(t))
            return
        }
        let f = core(t)
        // Atomics of the entry and exit only, not of the handler's own work.
        let before = platform.atomics[t]
        let frame = f.irqEnter()
        let entryAtomics = platform.atomics[t] - before
        let work = entryWorkNs(t)
        // The kind's own work, as the core defines it; its cost is the handler's
        // (CostModel.handlerNs), not entry work.
        f.runHandler(p.kind)
        _ = platform.takeEffects(t)
        traceMode(t)
        let duration: Double
        let fromUser = !idle[t]
        if idle[t] {
            // Idle: nobody's time is lost, but the CPU is busy while it handles it.
            idleInterruptions += 1
            duration = handler + work
        } else {
            let overhead = chargeRoundTrip(t, coreAtomics: entryAtomics, work: work)
            duration = handler + config.costs.interruptEntryExitNs + overhead
            record(&interruptionCost, duration)
            lose(t, from: now, duration)
        }
        running[t] = .interrupt(p, frame: frame, begin: now, fromUser: fromUser)
        runningEnd[t] = after(duration)
        schedule(runningEnd[t], .runningEnds(t))
    }

    /// What `t` was busy with ends now: the handler returns (the core's IRQ exit), or
    /// the idle exit's work is done (exit to user); then the next waiting interrupt.
    func runningEnds(_ t: Int) {
        guard let r = running[t], runningEnd[t] == now else { return }
        running[t] = nil
        switch r {
        case .interrupt(let p, let frame, let begin, let fromUser):
            if let frame {
                let before = platform.atomics[t]
                core(t).irqExit(frame, wasIPI: true)
                if fromUser { chargeExit(t, coreAtomics: platform.atomics[t] - before) }
                let name = fromUser ? "IPI: \(p.cause)" : "IPI in idle: \(p.cause)"
                trace(name, cpu: t, from: begin, to: now, args: ["from mode": "\(frame.interrupted)", "back to": "\(platform.word(t).mode)"])
            } else {
                trace("IPI in kernel: \(p.cause)", cpu: t, from: begin, to: now)
                syscallStretchStart[t] = now
            }
            traceMode(t)
            if let id = p.call { targetDone(id) }
        case .idleExitWork(let begin):
            core(t).exitToUser()
            trace("idle exit", cpu: t, from: begin, to: now)
            traceMode(t)
        }
        if pendingHead[t] < pending[t].count {
            let next = pending[t][pendingHead[t]]
            pendingHead[t] += 1
            if pendingHead[t] == pending[t].count {
                pending[t].removeAll(keepingCapacity: true)
                pendingHead[t] = 0
            }
            begin(t, next)
        }
    }

    func result() -> PolicyResult {
        let n = Double(max(isolatedList.count, 1))
        let stopped = events >= SimulatorLimits.eventsMax
        // Rates are per simulated second actually covered.
        let seconds = stopped ? max(Double(now) / 1e9, 1e-9) : config.seconds
        return PolicyResult(
            policy: policy, isolatedCPUs: isolatedList.count, seconds: seconds,
            interruptions: interruptions, interruptionsByCause: byCause,
            interruptionsPerCPUPerSecond: Double(interruptions) / n / seconds,
            idleInterruptions: idleInterruptions,
            lostNsPerCPUPerSecond: lostNs / n / seconds,
            interruptionCost: .init(interruptionCost), deliveries: deliveries, requests: requests,
            roundTrips: roundTrips,
            // No figure over zero round trips (not even context tracking's model input).
            atomicsPerRoundTrip: roundTrips == 0 ? nil : roundTripAtomics / Double(roundTrips),
            entryOverheadNsPerRoundTrip: roundTrips == 0 ? nil : roundTripOverheadNs / Double(roundTrips),
            requesterLatency: .init(requesterLatency), gracePeriodNormal: .init(gpNormal),
            gracePeriodExpedited: .init(gpExpedited), events: events,
            incomplete: stopped ? String(format: "stopped after eventsMax = %d events at %.3f simulated s; lower the rates or the duration", SimulatorLimits.eventsMax, seconds) : nil,
            violation: platform.violation,
            violationEvents: platform.violation == nil ? nil : recentEvents())
    }
}
