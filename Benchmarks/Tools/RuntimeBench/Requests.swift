// Section 2: the requester's cost of `rt.request(work, on:)`, deferred (the worker spins
// in its user stretch: a bit in its word, no signal) vs signalled (the worker spins in
// its kernel stretch: mailbox, ticket, pthread_kill, the handler running the core's
// interrupt path and the work, the requester waiting for the ticket).

import Atomics
import CPUFlags
import CPUFlagsRuntime
import Glibc

/// Where the worker spins while requests come.
enum Stretch: String {
    case user = "user stretch"
    case kernel = "kernel stretch"
}

struct RequestStats {
    var nsPerRequest: Double  // median of the batches
    var minBatch: Double
    var requests: Int
    var deferred: Int
    var interrupts: Int
    var other: Int
    var workRuns: Int  // after the worker left its stretch: must equal `requests`
}

func measureRequests(_ stretch: Stretch, batches: Int, perBatch: Int) -> RequestStats {
    pin(0, "the requester")
    let (rt, work, ran) = countingRuntime(.strict)
    let ready = ManagedAtomic<Bool>(false), stop = ManagedAtomic<Bool>(false)
    let slot = ManagedAtomic<Int>(-1)
    let cpu = workerCPU(0)
    let worker = BenchThread {
        let w = must("register") { () throws(RuntimeError) in try rt.register(pinTo: cpu) }
        slot.store(w.slot, ordering: .relaxed)
        if stretch == .user { w.enterUserStretch() }
        ready.store(true, ordering: .releasing)
        while !stop.load(ordering: .relaxed) {}
        if stretch == .user { w.leaveUserStretch() }  // runs every deferred request
        rt.unregister(w)
    }
    while !ready.load(ordering: .acquiring) {}
    let s = slot.load(ordering: .relaxed)
    var stats = RequestStats(nsPerRequest: 0, minBatch: .infinity, requests: 0, deferred: 0, interrupts: 0, other: 0, workRuns: 0)
    var perBatchNs: [Double] = []
    func one() {
        switch must("request") { () throws(RuntimeError) in try rt.request(work, on: s) } {
        case .deferred: stats.deferred += 1
        case .interrupt: stats.interrupts += 1
        default: stats.other += 1
        }
    }
    for _ in 0..<(perBatch / 10) { one() }  // warm-up
    for _ in 0..<batches {
        let t0 = nowNs()
        for _ in 0..<perBatch { one() }
        perBatchNs.append(Double(nowNs() - t0) / Double(perBatch))
    }
    stop.store(true, ordering: .relaxed)
    worker.join()
    stats.requests = perBatch / 10 + batches * perBatch
    stats.workRuns = ran.load(ordering: .acquiring)
    rt.shutdown()
    let sorted = perBatchNs.sorted()
    stats.nsPerRequest = sorted[sorted.count / 2]
    stats.minBatch = sorted[0]
    return stats
}

func requestSection() -> JSON {
    let deferred = measureRequests(.user, batches: 11, perBatch: 200_000)
    let signalled = measureRequests(.kernel, batches: 11, perBatch: 5_000)
    func row(_ s: RequestStats) -> JSON {
        .object([
            ("ns per request", .number(s.nsPerRequest)), ("min batch ns", .number(s.minBatch)),
            ("requests", .int(s.requests)), ("routes deferred", .int(s.deferred)),
            ("routes interrupt (signals)", .int(s.interrupts)), ("routes other", .int(s.other)),
            ("work runs", .int(s.workRuns)),
        ])
    }
    return .object([
        ("deferred (worker in its user stretch)", row(deferred)),
        ("signal (worker in its kernel stretch)", row(signalled)),
        ("ratio signal / deferred", .number(signalled.nsPerRequest / deferred.nsPerRequest)),
    ])
}
