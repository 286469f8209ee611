// Section 4, oslat-style: a worker pinned to CPU 1 reads the monotonic clock in a tight
// loop and records the gap between consecutive reads in an HdrHistogram, inside its user
// stretch (leaving and re-entering it every `leaveEveryMs` ms to run deferred work),
// while the housekeeping thread on CPU 0 calls `rt.request` at `rate` per second for
// `seconds`, with intervals drawn uniformly from [0.5, 1.5] / rate (SplitMix64, `seed`:
// no phase lock with the worker's period). Per case: the signals the worker took (the
// requests routed `.interrupt`), the max and p99.99 gap.

import Atomics
import CPUFlags
import CPUFlagsRuntime
import Glibc
import Histogram

enum IsolationCase: String, CaseIterable {
    /// No requester: the loop's own noise floor (strict policy, in its user stretch).
    case noRequests = "no requests"
    /// The worker never enters its user stretch: every request signals.
    case signalsAlways = "signals always"
    case strict, lazy, adaptive

    var policy: ExitPolicy {
        switch self {
        case .lazy: return .lazy
        case .adaptive: return .adaptive
        default: return .strict
        }
    }
    var userStretch: Bool { self != .signalsAlways }
}

final class GapResult: @unchecked Sendable {
    var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    var reads = 0
    var over10us = 0
    var over100us = 0
}

func measureIsolation(_ c: IsolationCase, seconds: Double, rate: Double, leaveEveryMs: Double, seed: UInt64) -> JSON {
    pin(0, "the housekeeping thread")
    let (rt, work, ran) = countingRuntime(c.policy)
    let ready = ManagedAtomic<Bool>(false), stop = ManagedAtomic<Bool>(false)
    let slot = ManagedAtomic<Int>(-1)
    let result = GapResult()
    let cpu = workerCPU(0)
    let leaveEveryNs = UInt64(leaveEveryMs * 1e6)
    let worker = BenchThread {
        let w = must("register") { () throws(RuntimeError) in try rt.register(pinTo: cpu) }
        slot.store(w.slot, ordering: .relaxed)
        var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var reads = 0, over10 = 0, over100 = 0
        if c.userStretch { w.enterUserStretch() }
        ready.store(true, ordering: .releasing)
        var prev = nowNs()
        var nextLeave = prev + leaveEveryNs
        while !stop.load(ordering: .relaxed) {
            let t = nowNs()
            let gap = t &- prev
            _ = h.record(gap)
            reads += 1
            if gap > 10_000 { over10 += 1; if gap > 100_000 { over100 += 1 } }
            if c.userStretch && t >= nextLeave {
                // Back to the kernel stretch (running what was deferred) and out again;
                // its cost lands in the next gap.
                w.leaveUserStretch()
                w.enterUserStretch()
                nextLeave = t + leaveEveryNs
            }
            prev = t
        }
        if c.userStretch { w.leaveUserStretch() }
        rt.unregister(w)
        result.histogram = h
        result.reads = reads
        result.over10us = over10
        result.over100us = over100
    }
    while !ready.load(ordering: .acquiring) {}
    let s = slot.load(ordering: .relaxed)
    var rng = SplitMix64(state: seed)
    var requests = 0, interrupts = 0, deferred = 0, other = 0
    var requesterNs: UInt64 = 0, requesterMax: UInt64 = 0
    let start = nowNs()
    let end = start + UInt64(seconds * 1e9)
    var next = start
    let interval = 1e9 / rate
    while true {
        // Uniform in [0.5, 1.5) intervals: the mean rate is `rate`.
        let u = Double(rng.next() >> 11) / Double(1 << 53)
        next += UInt64(interval * (0.5 + u))
        if next >= end { break }
        sleepUntil(next)
        if c == .noRequests { continue }
        let t0 = nowNs()
        switch must("request") { () throws(RuntimeError) in try rt.request(work, on: s) } {
        case .interrupt: interrupts += 1
        case .deferred: deferred += 1
        default: other += 1
        }
        let d = nowNs() - t0
        requesterNs += d
        requesterMax = max(requesterMax, d)
        requests += 1
    }
    sleepUntil(end)
    stop.store(true, ordering: .relaxed)
    worker.join()
    rt.shutdown()
    let h = result.histogram
    return .object([
        ("policy", .string("\(c.policy)")), ("user stretch", .bool(c.userStretch)),
        ("seconds", .number(seconds)), ("requests", .int(requests)),
        ("signals (routes interrupt)", .int(interrupts)), ("routes deferred", .int(deferred)), ("routes other", .int(other)),
        ("work runs", .int(ran.load(ordering: .acquiring))),
        ("requester mean ns", .number(requests > 0 ? Double(requesterNs) / Double(requests) : 0)),
        ("requester max ns", .int(Int(requesterMax))),
        ("reads", .int(result.reads)), ("min gap ns", .int(Int(h.min))),
        ("p50 gap ns", .int(Int(h.valueAtPercentile(50)))), ("p99.9 gap ns", .int(Int(h.valueAtPercentile(99.9)))),
        ("p99.99 gap ns", .int(Int(h.valueAtPercentile(99.99)))), ("max gap ns", .int(Int(h.max))),
        ("gaps over 10 us", .int(result.over10us)), ("gaps over 100 us", .int(result.over100us)),
    ])
}

func isolationSection(seconds: Double, rate: Double, leaveEveryMs: Double, seed: UInt64) -> JSON {
    var rows: [(String, JSON)] = []
    for c in IsolationCase.allCases {
        progress("  isolation: \(c.rawValue) (\(fmt(seconds, 1)) s)")
        rows.append((c.rawValue, measureIsolation(c, seconds: seconds, rate: rate, leaveEveryMs: leaveEveryMs, seed: seed)))
    }
    return .object([
        ("cpu", .int(workerCPU(0))), ("rate per s", .number(rate)), ("leave every ms", .number(leaveEveryMs)),
        ("seed", .string(String(seed))), ("cases", .object(rows)),
    ])
}
