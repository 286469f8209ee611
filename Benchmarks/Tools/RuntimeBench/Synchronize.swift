// Section 3: `rt.synchronize()` latency with `workers` workers (pinned to CPUs 1, 2, ...)
// spinning in their user stretch, doing round trips, or spinning in their kernel stretch
// (expedited only: a plain grace period would wait for a quiescent state they never
// pass). The C peer measures liburcu QSBR's synchronize_rcu() the same way.

import Atomics
import CPUFlags
import CPUFlagsRuntime
import Glibc
import Histogram

enum SyncWorkerLoop: String {
    case userStretch = "user stretch"
    case roundTrips = "round trips"
    case kernelStretch = "kernel stretch"
}

func measureSynchronize(_ loop: SyncWorkerLoop, expedited: Bool, workers: Int, seconds: Double) -> JSON {
    pin(0, "the synchronizing thread")
    var o = IsolationRuntime.Options()
    o.workersMax = max(1, workers)
    o.exitPolicy = .strict
    let rt = must("IsolationRuntime") { () throws(RuntimeError) in try IsolationRuntime(o) }
    let ready = ManagedAtomic<Int>(0), stop = ManagedAtomic<Bool>(false)
    let trips = ManagedAtomic<Int>(0)
    var threads: [BenchThread] = []
    for i in 0..<workers {
        let cpu = workerCPU(i)
        threads.append(BenchThread {
            let w = must("register") { () throws(RuntimeError) in try rt.register(pinTo: cpu) }
            ready.wrappingIncrement(ordering: .releasing)
            var n = 0
            switch loop {
            case .userStretch:
                w.enterUserStretch()
                while !stop.load(ordering: .relaxed) {}
                w.leaveUserStretch()
            case .roundTrips:
                while !stop.load(ordering: .relaxed) {
                    w.enterUserStretch()
                    w.leaveUserStretch()
                    n += 1
                }
            case .kernelStretch:
                while !stop.load(ordering: .relaxed) {}
            }
            trips.wrappingIncrement(by: n, ordering: .relaxed)
            rt.unregister(w)
        })
    }
    while ready.load(ordering: .acquiring) < workers {}
    var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    var sum: UInt64 = 0
    for _ in 0..<100 { must("synchronize") { () throws(RuntimeError) in try rt.synchronize(expedited: expedited) } }
    let end = nowNs() + UInt64(seconds * 1e9)
    var t = nowNs()
    while t < end {
        must("synchronize") { () throws(RuntimeError) in try rt.synchronize(expedited: expedited) }
        let t1 = nowNs()
        _ = h.record(t1 - t)
        sum += t1 - t
        t = t1
    }
    stop.store(true, ordering: .relaxed)
    for th in threads { th.join() }
    rt.shutdown()
    let n = Int(h.totalCount)
    return .object([
        ("workers", .int(workers)), ("expedited", .bool(expedited)), ("calls", .int(n)),
        ("mean", .number(Double(sum) / Double(max(n, 1)))),
        ("p50", .int(Int(h.valueAtPercentile(50)))), ("p99", .int(Int(h.valueAtPercentile(99)))),
        ("max", .int(Int(h.max))), ("worker round trips", .int(trips.load(ordering: .relaxed))),
    ])
}

func synchronizeSection(workers: Int, seconds: Double) -> JSON {
    .object([
        ("synchronize, user stretch", measureSynchronize(.userStretch, expedited: false, workers: workers, seconds: seconds)),
        ("synchronize, round trips", measureSynchronize(.roundTrips, expedited: false, workers: workers, seconds: seconds)),
        ("synchronize expedited, round trips", measureSynchronize(.roundTrips, expedited: true, workers: workers, seconds: seconds)),
        ("synchronize expedited, kernel stretch", measureSynchronize(.kernelStretch, expedited: true, workers: workers, seconds: seconds)),
    ])
}
