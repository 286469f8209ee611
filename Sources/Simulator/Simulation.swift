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
        Int64(min(-log(unit()) / perSecond * 1e9, 1e17))
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
    /// Interruptions of isolated CPUs, in all and by cause.
    public var interruptions: Int
    public var interruptionsByCause: [String: Int]
    public var interruptionsPerCPUPerSecond: Double
    /// Interrupts that found an isolated CPU idle (counted in `interruptions`; they cost
    /// no task time, so they are not in the lost time or the cost distribution).
    public var idleInterruptions: Int
    /// Housekeeping CPUs exit to user lazily under every policy here (cpu_flags is
    /// strict on isolated CPUs only; context tracking is off on housekeeping CPUs):
    /// 0 atomics per round trip. Not simulated per event.
    public var housekeepingAtomicsPerRoundTrip: Double
    /// Time the isolated tasks lost to interruptions, per CPU per second (ns).
    public var lostNsPerCPUPerSecond: Double
    /// Cost of one interruption of an isolated CPU (ns).
    public var interruptionCost: Percentiles
    /// Deferrals, skips, on-behalf runs and hardware flushes that replaced interrupts.
    public var deliveries: [String: Int]
    /// Requests each housekeeping source made (a text-patch batch counts once).
    public var requests: [String: Int]
    /// User round trips of isolated CPUs (syscalls and interrupts from user).
    public var roundTrips: Int
    public var atomicsPerRoundTrip: Double
    public var entryOverheadNsPerRoundTrip: Double
    /// Latency of each on_each_cpu-style call (ns).
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

/// A discrete-event simulation of one machine under one policy.
public final class Simulation {
    public let config: MachineConfig
    public let policy: Policy
    let isolated: [Bool]
    let isolatedList: [Int]
    let housekeeping: [Int]
    let platform: SimPlatform
    var rng: SplitMix64
    var now: Int64 = 0
    var queue = Heap<Event>()
    var seq = 0
    /// Until when each CPU runs kernel code for a syscall (isolated CPUs).
    var busyUntil: [Int64]
    /// In a syscall: between its entry and its `.syscallExit` (the word says KERNEL).
    var inSyscall: [Bool]
    /// Isolated CPUs in an idle period, and when it ends.
    var idle: [Bool]
    var idleExitAt: [Int64]

    // Metrics.
    var interruptions = 0
    var byCause: [String: Int] = [:]
    var lostNs: Double = 0
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
        let v = UInt64(max(0, min(ns, Double(Simulation.histogramNsMax))))
        if ns > Double(Simulation.histogramNsMax) { clampedValues += 1 }
        _ = h.record(v)
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
            case .source(let s): what = "housekeeping \(s)"
            case .syscall(let c): what = "cpu\(c) syscall"
            case .syscallExit(let c): what = "cpu\(c) syscall exit"
            case .idleEnter(let c): what = "cpu\(c) idle"
            case .idleExit(let c): what = "cpu\(c) idle exit"
            case .interrupt(let c, let cause, _): what = "cpu\(c) interrupted: \(cause)"
            }
            return String(format: "%12.3f us  ", Double(t) / 1000) + what
        }
    }
    /// Called about once a second of wall time on long runs, with the simulated time.
    public var progress: ((Int64) -> Void)?
    /// Chrome trace events for the window, if one is set.
    public var traceWindowNs: ClosedRange<Int64>?
    public private(set) var traceEvents: [TraceEvent] = []

    /// Set when the trace reached `traceEventsMax` and stopped recording.
    public private(set) var traceTruncated = false

    func traceRoom() -> Bool {
        if traceEvents.count < SimulatorLimits.traceEventsMax { return true }
        traceTruncated = true
        return false
    }

    func trace(_ name: String, cpu: Int, durNs: Double? = nil, args: [String: String]? = nil) {
        guard let w = traceWindowNs, w.contains(now), traceRoom() else { return }
        traceEvents.append(TraceEvent(name: name, ph: durNs == nil ? "i" : "X", ts: Double(now) / 1000,
                                      dur: durNs.map { $0 / 1000 }, pid: 0, tid: cpu, s: durNs == nil ? "t" : nil, args: args))
    }

    /// A counter track per isolated CPU with its mode (KERNEL 0, USER 1, IDLE 2, INDET 3).
    func traceMode(_ cpu: Int) {
        guard let w = traceWindowNs, w.contains(now), traceRoom() else { return }
        let m = platform.word(cpu).mode
        traceEvents.append(TraceEvent(name: "mode cpu\(cpu) (0 KERNEL, 1 USER, 2 IDLE, 3 INDET)", ph: "C",
                                      ts: Double(now) / 1000, pid: 0, tid: cpu, counter: ["mode": Double(m.rawValue)]))
    }

    struct Event: Comparable {
        var time: Int64
        var seq: Int
        var kind: Kind
        enum Kind {
            case source(Source)
            case syscall(Int)
            case syscallExit(Int)
            case idleEnter(Int)
            case idleExit(Int)
            case interrupt(Int, cause: String, kind: WorkKind)
        }
        static func < (a: Event, b: Event) -> Bool { (a.time, a.seq) < (b.time, b.seq) }
        static func == (a: Event, b: Event) -> Bool { a.time == b.time && a.seq == b.seq }
    }

    enum Source: CaseIterable {
        case kernelTLBFlush, textPatch, rcuExpedited, rcuNormal, userTLBShootdown, wakeup, cacheDrain, pageTableFree
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

    public enum SetupError: Error, CustomStringConvertible {
        case bad(String)
        public var description: String { if case .bad(let s) = self { return s }; return "" }
    }

    public init(config: MachineConfig, policy: Policy) throws {
        let list = try config.validate()
        self.config = config
        self.policy = policy
        var iso = Array(repeating: false, count: config.cpus)
        for c in list.cpus { iso[c] = true }
        isolated = iso
        isolatedList = list.cpus
        housekeeping = (0..<config.cpus).filter { !iso[$0] }
        platform = SimPlatform(cpuCount: config.cpus)
        rng = SplitMix64(state: config.seed)
        busyUntil = Array(repeating: 0, count: config.cpus)
        inSyscall = Array(repeating: false, count: config.cpus)
        idle = Array(repeating: false, count: config.cpus)
        idleExitAt = Array(repeating: 0, count: config.cpus)
        for c in isolatedList {
            platform.setInitial(c, mode: policy.config.exitPolicy == .strict ? .user : .indeterminate)
        }
    }

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
        let end = Int64(config.seconds * 1e9)
        for s in Source.allCases where s.rate(config.workload) > 0 {
            schedule(rng.exponentialNs(perSecond: s.rate(config.workload)), .source(s))
        }
        for c in isolatedList { traceMode(c) }
        if config.workload.isolatedIdlePeriodsPerSec > 0 {
            for c in isolatedList { schedule(rng.exponentialNs(perSecond: config.workload.isolatedIdlePeriodsPerSec), .idleEnter(c)) }
        }
        if config.workload.isolatedSyscallsPerSec > 0 {
            for c in isolatedList { schedule(rng.exponentialNs(perSecond: config.workload.isolatedSyscallsPerSec), .syscall(c)) }
        }
        while let e = queue.popMin(), e.time <= end, platform.violation == nil, events < SimulatorLimits.eventsMax {
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
            case .syscall(let c):
                syscall(c)
                schedule(now + rng.exponentialNs(perSecond: config.workload.isolatedSyscallsPerSec), .syscall(c))
            case .syscallExit(let c):
                inSyscall[c] = false
                _ = core(c).exitToUser()
                traceMode(c)
            case .idleEnter(let c):
                idleEnter(c)
                schedule(now + rng.exponentialNs(perSecond: config.workload.isolatedIdlePeriodsPerSec), .idleEnter(c))
            case .idleExit(let c):
                idleExit(c)
            case .interrupt(let t, let cause, let kind):
                interrupt(t, cause: cause, kind: kind)
            }
        }
        return result()
    }

    // MARK: Requests

    /// What the policy does with `kind` for target `t`, asked by `r`.
    func deliver(_ kind: WorkKind, to t: Int, from r: Int) -> Delivery {
        let f = core(r)
        let word = platform.word(t)
        if kind == .rcuExpedited {
            return f.inExtendedQuiescentState(f.rcuSample(t)) ? .skipped : .interrupted
        }
        switch policy {
        case .linux:
            return .interrupted
        case .ctDefer:
            if kind == .syncCore, case .deferred = f.request(.syncCore, of: t) {
                platform.owed[t].insert(.syncCore)
                return .deferred
            }
            // The RFC's COALESCE_TLBI: isolated CPUs outside the kernel are skipped and
            // flush unconditionally at their next entry (charged in entryWorkNs).
            if kind == .kernelTLBFlush && config.ctDeferKernelTLB && isolated[t] && word.mode.defersWork {
                return .skipped
            }
            return .interrupted
        case .catchUp:
            // USER or IDLE: the entry (or idle exit) flushes and serializes anyway.
            let kernelOnly = kind == .kernelTLBFlush || kind == .syncCore
            return isolated[t] && kernelOnly && word.mode.defersWork ? .skipped : .interrupted
        case .hwBroadcast:
            return kind == .kernelTLBFlush ? .hardware : .interrupted
        case .cpuflags, .cpuflagsLazy, .cpuflagsAdaptive:
            switch kind.workClass {
            case .deferrable:
                let bit = kind.bit!
                if case .deferred = f.request(bit, of: t) {
                    platform.owed[t].formUnion(bit)
                    return .deferred
                }
                return .interrupted
            case .onBehalf:
                f.enqueueCallback(0, for: t)
                return f.runOnBehalf(of: t) ? .onBehalf : .interrupted
            case .mustInterrupt, .rcuIdleSkips:
                return .interrupted
            }
        }
    }

    /// on_each_cpu(kind) from a random housekeeping CPU to `targets`; returns its latency.
    @discardableResult
    func broadcast(_ kind: WorkKind, to targets: [Int], cause: String) -> Double {
        let r = housekeeping[rng.below(housekeeping.count)]
        var worst = 0.0
        var anyIPI = false
        var onBehalfNs = 0.0
        for t in targets where t != r {
            let d = deliver(kind, to: t, from: r)
            deliveries[d.rawValue, default: 0] += 1
            if isolated[t] && d != .interrupted {
                trace("\(d.rawValue): \(cause)", cpu: t, args: ["from": "cpu\(r)", "mode": "\(platform.word(t).mode)"])
            }
            switch d {
            case .interrupted:
                // Deferral is real: a cpu_flags policy never interrupts a CPU it may
                // defer to for deferrable work.
                if !policy.usesContextTracking && kind.workClass == .deferrable && platform.word(t).mode.defersWork
                    && platform.violation == nil {
                    platform.violation = "deferral is real: cpu\(r) interrupted cpu\(t) in \(platform.word(t).mode) for \(kind.rawValue)"
                }
                anyIPI = true
                let at = now + Int64(config.costs.ipiLatencyNs)
                var handling = config.costs.ipiLatencyNs + config.costs.handlerNs(kind)
                if isolated[t] && !inSyscall[t] && !idle[t] { handling += config.costs.interruptEntryExitNs }
                worst = max(worst, handling)
                if isolated[t] { schedule(at, .interrupt(t, cause: cause, kind: kind)) }
            case .hardware:
                worst = max(worst, config.costs.hardwareFlushNs)
            case .onBehalf:
                // The pinner runs the drain itself, one target after another.
                onBehalfNs += config.costs.cacheDrainNs
            case .deferred, .skipped:
                break
            }
        }
        let latency = (anyIPI ? config.costs.ipiSendNs : 0) + worst + onBehalfNs
        record(&requesterLatency, latency)
        trace("on_each_cpu: \(cause)", cpu: r, durNs: max(latency, 1))
        return latency
    }

    func fire(_ s: Source) {
        requests["\(s)", default: 0] += 1
        let all = Array(0..<config.cpus)
        switch s {
        case .kernelTLBFlush:
            broadcast(.kernelTLBFlush, to: all, cause: "kernel TLB flush")
        case .textPatch:
            for _ in 0..<3 { broadcast(.syncCore, to: all, cause: "sync_core") }
        case .rcuExpedited:
            record(&gpExpedited, broadcast(.rcuExpedited, to: all, cause: "rcu expedited"))
        case .rcuNormal:
            record(&gpNormal, normalGracePeriod())
        case .userTLBShootdown:
            broadcast(.userTLBFlush, to: [isolatedList[rng.below(isolatedList.count)]], cause: "user TLB shootdown")
        case .wakeup:
            let t = isolatedList[rng.below(isolatedList.count)]
            if idle[t] {
                // Every policy wakes a polling idle CPU by a bit (set_nr_if_polling
                // today, the WAKE bit here): the same core call.
                let r = housekeeping[rng.below(housekeeping.count)]
                if case .deferred = core(r).wake(t) {
                    deliveries[Delivery.deferred.rawValue, default: 0] += 1
                    trace("woken by bit", cpu: t, args: ["from": "cpu\(r)"])
                    idleExitAt[t] = now
                    schedule(now, .idleExit(t))
                    return
                }
            }
            broadcast(.reschedule, to: [t], cause: "wakeup")
        case .cacheDrain:
            broadcast(.cacheDrain, to: all, cause: "cache drain")
        case .pageTableFree:
            broadcast(.tlbRemoveTableSync, to: all, cause: "page-table free sync")
        }
    }

    /// A normal grace period: CPUs in an EQS are done; housekeeping CPUs report within a
    /// tick; an isolated CPU in a syscall reports at its exit; a lazy isolated CPU in
    /// user mode is interrupted by the forced-quiescent-state scan.
    func normalGracePeriod() -> Double {
        let r = housekeeping[rng.below(housekeeping.count)]
        let f = core(r)
        var latency = 0.0
        for t in 0..<config.cpus where t != r {
            if f.inExtendedQuiescentState(f.rcuSample(t)) { continue }
            if !isolated[t] {
                latency = max(latency, config.costs.housekeepingQuiescentNs)
            } else if inSyscall[t] {
                latency = max(latency, Double(busyUntil[t] - now))
            } else {
                latency = max(latency, config.costs.rcuForceQuiescentNs)
                schedule(now + Int64(config.costs.rcuForceQuiescentNs), .interrupt(t, cause: "rcu force-quiescent", kind: .rcuExpedited))
            }
        }
        return latency
    }

    // MARK: Isolated CPUs

    /// The cost of the work an entry ran (deferred flushes and serializations), and the
    /// unconditional catch-up work, for `t`'s last entry.
    func entryWorkNs(_ t: Int) -> Double {
        var ns = Double(platform.flushes[t]) * config.costs.kernelTLBFlushNs
            + Double(platform.serializations[t]) * config.costs.syncCoreNs
        platform.flushes[t] = 0
        platform.serializations[t] = 0
        if policy == .catchUp { ns += config.costs.kernelTLBFlushNs + config.costs.syncCoreNs }
        if policy == .ctDefer && config.ctDeferKernelTLB { ns += config.costs.kernelTLBFlushNs }
        return ns
    }

    /// The atomics a round trip is charged: what context tracking makes, or what the
    /// core made (`coreAtomics`, counted by the platform).
    func atomicsNs(coreAtomics: Int) -> (count: Double, ns: Double) {
        let n = policy.usesContextTracking ? config.costs.contextTrackingAtomicsPerRoundTrip : Double(coreAtomics)
        return (n, n * config.costs.atomicNs)
    }

    /// The isolated task blocks: the CPU enters the kernel, then polling idle.
    func idleEnter(_ t: Int) {
        guard !inSyscall[t], !idle[t] else { return }
        let before = platform.atomics[t]
        let f = core(t)
        f.enterFromUser()
        f.contextSwitch()
        f.enterIdle(polling: true)
        idle[t] = true
        idleExitAt[t] = now + Int64(config.workload.isolatedIdleNs)
        schedule(idleExitAt[t], .idleExit(t))
        chargeRoundTrip(coreAtomics: platform.atomics[t] - before, work: entryWorkNs(t))
        traceMode(t)
    }

    /// The task wakes (its timer, or a wakeup by bit): idle exit runs what was deferred,
    /// and the CPU returns to user mode.
    func idleExit(_ t: Int) {
        guard idle[t], idleExitAt[t] <= now else { return }
        let before = platform.atomics[t]
        let f = core(t)
        f.exitIdle()
        let work = entryWorkNs(t)
        f.exitToUser()
        idle[t] = false
        chargeRoundTrip(coreAtomics: platform.atomics[t] - before, work: work)
        trace("idle exit", cpu: t, durNs: max(work, 1))
        traceMode(t)
    }

    /// Charges a user round trip's entry/exit overhead: atomics and the work its entry
    /// ran. It is time the task loses too (`lostNs`).
    @discardableResult
    func chargeRoundTrip(coreAtomics: Int, work: Double) -> Double {
        let a = atomicsNs(coreAtomics: coreAtomics)
        roundTrips += 1
        roundTripAtomics += a.count
        roundTripOverheadNs += a.ns + work
        lostNs += a.ns + work
        return a.ns + work
    }

    func syscall(_ t: Int) {
        guard !inSyscall[t], !idle[t] else { return }
        inSyscall[t] = true
        let before = platform.atomics[t]
        core(t).enterFromUser()
        let work = entryWorkNs(t)
        busyUntil[t] = now + Int64(config.costs.syscallKernelNs + work)
        schedule(busyUntil[t], .syscallExit(t))
        trace("syscall", cpu: t, durNs: config.costs.syscallKernelNs + work, args: work > 0 ? ["deferred work ns": String(format: "%.0f", work)] : nil)
        traceMode(t)
        // The exit's atomics (none: a plain store) are made at .syscallExit.
        chargeRoundTrip(coreAtomics: platform.atomics[t] - before, work: work)
    }

    /// An interrupt reaches isolated CPU `t`: the core's IRQ entry (running what was
    /// deferred), the handler, the IRQ exit.
    func interrupt(_ t: Int, cause: String, kind: WorkKind) {
        interruptions += 1
        byCause[cause, default: 0] += 1
        let handler = config.costs.handlerNs(kind)
        if inSyscall[t] {
            // In the kernel already (a syscall): the handler only.
            record(&interruptionCost, handler)
            lostNs += handler
            trace("IPI in kernel: \(cause)", cpu: t, durNs: handler)
            return
        }
        let f = core(t)
        // Atomics of the entry and exit only, not of the handler's own work.
        let before = platform.atomics[t]
        let frame = f.irqEnter()
        let entryAtomics = platform.atomics[t] - before
        if kind == .cacheDrain { f.runQueuedCallbacks(of: t) }
        let beforeExit = platform.atomics[t]
        f.irqExit(frame, wasIPI: true)
        let work = entryWorkNs(t)
        traceMode(t)
        if idle[t] {
            // Idle: nobody's time is lost, but the CPU still wakes for it.
            idleInterruptions += 1
            trace("IPI in idle: \(cause)", cpu: t, durNs: handler)
            return
        }
        let coreAtomics = entryAtomics + platform.atomics[t] - beforeExit
        let overhead = chargeRoundTrip(coreAtomics: coreAtomics, work: work)
        let cost = handler + config.costs.interruptEntryExitNs + overhead
        record(&interruptionCost, cost)
        lostNs += cost - overhead  // the overhead was charged by chargeRoundTrip
        trace("IPI: \(cause)", cpu: t, durNs: cost, args: ["from mode": "\(frame.interrupted)", "back to": "\(platform.word(t).mode)"])
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
            idleInterruptions: idleInterruptions, housekeepingAtomicsPerRoundTrip: 0,
            lostNsPerCPUPerSecond: lostNs / n / seconds,
            interruptionCost: .init(interruptionCost), deliveries: deliveries, requests: requests,
            roundTrips: roundTrips,
            atomicsPerRoundTrip: roundTrips == 0 ? (policy.usesContextTracking ? config.costs.contextTrackingAtomicsPerRoundTrip : 0) : roundTripAtomics / Double(roundTrips),
            entryOverheadNsPerRoundTrip: roundTrips == 0 ? 0 : roundTripOverheadNs / Double(roundTrips),
            requesterLatency: .init(requesterLatency), gracePeriodNormal: .init(gpNormal),
            gracePeriodExpedited: .init(gpExpedited), events: events,
            incomplete: stopped ? String(format: "stopped after eventsMax = %d events at %.3f simulated s; lower the rates or the duration", SimulatorLimits.eventsMax, seconds) : nil,
            violation: platform.violation,
            violationEvents: platform.violation == nil ? nil : recentEvents())
    }
}
