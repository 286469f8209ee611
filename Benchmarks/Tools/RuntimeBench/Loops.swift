// The loops under measurement, each its own function for callgrind's toggle
// (`--toggle-collect=*workerStretchRoundTrips*`); the core's and the hand-written loops are
// Tools/RoundTrips's, the same machine code the benchmark suite measures.

import Atomics
import CPUFlags
import CPUFlagsRuntime
import Glibc
import RoundTrips

/// A registered worker's user round trips: `enterUserStretch()` then
/// `leaveUserStretch()`, with the runtime's masking and precondition checks.
@inline(never)
func workerStretchRoundTrips(_ w: Worker, count: Int) {
    for _ in 0..<count {
        w.enterUserStretch()
        w.leaveUserStretch()
    }
}

/// Context tracking's round trip: two `lock xadd` (atomic_add_return on exit and on
/// entry), the results used so that the compiler keeps the xadd form.
@inline(never)
func lockXaddPairs(_ a: UnsafeAtomic<Int>, count: Int) -> Int {
    var sum = 0
    for _ in 0..<count {
        sum &+= a.loadThenWrappingIncrement(ordering: .sequentiallyConsistent)
        sum &+= a.loadThenWrappingIncrement(ordering: .sequentiallyConsistent)
    }
    return sum
}

@_optimize(none) func sink<T>(_ x: T) {}

/// Every round trip runtime-bench times or counts.
enum RoundTripLoop: String, CaseIterable {
    case runtimeStrict = "runtime-strict"
    case coreStrict = "core-strict"
    case handWritten = "hand-written"
    case lockXaddPair = "lock-xadd-pair"
    case runtimeLazy = "runtime-lazy"
    case coreLazy = "core-lazy"

    var policy: ExitPolicy? {
        switch self {
        case .runtimeStrict: return .strict
        case .runtimeLazy: return .lazy
        default: return nil
        }
    }
}

/// What a loop runs on: the round-trip fixture, a lock-xadd word, and for the runtime's
/// loops a runtime with the calling thread registered as its worker (made per call:
/// one runtime per process at a time).
final class LoopFixture {
    let roundTrips = RoundTripFixture()
    let xadd = UnsafeAtomic<Int>.create(0)
    deinit { xadd.destroy() }

    /// Runs `count` round trips of `loop` on the calling thread; for the runtime's loops
    /// `timed` gets the loop alone (not the runtime's setup).
    func run(_ loop: RoundTripLoop, count: Int, timed: (() -> Void) -> Void = { $0() }) {
        if let policy = loop.policy {
            var o = IsolationRuntime.Options()
            o.workersMax = 1
            o.exitPolicy = policy
            let rt = must("IsolationRuntime") { () throws(RuntimeError) in try IsolationRuntime(o) }
            let w = must("register") { () throws(RuntimeError) in try rt.register() }
            timed { workerStretchRoundTrips(w, count: count) }
            rt.unregister(w)
            rt.shutdown()
            return
        }
        timed {
            switch loop {
            case .coreStrict: sink(roundTrips.run(.coreStrict, count: count))
            case .handWritten: sink(roundTrips.run(.handWritten, count: count))
            case .coreLazy: sink(roundTrips.run(.coreLazy, count: count))
            case .lockXaddPair: sink(lockXaddPairs(xadd, count: count))
            case .runtimeStrict, .runtimeLazy: break
            }
        }
    }
}

/// Section 1: median ns per round trip of `runs` interleaved runs of `count` each.
func roundTripSection(count: Int, runs: Int) -> JSON {
    pin(0, "the round-trip thread")
    let fixture = LoopFixture()
    var samples: [RoundTripLoop: [Double]] = [:]
    for loop in RoundTripLoop.allCases { fixture.run(loop, count: count / 10) }  // warm-up
    for _ in 0..<runs {
        for loop in RoundTripLoop.allCases {
            fixture.run(loop, count: count) { body in
                let t0 = nowNs()
                body()
                samples[loop, default: []].append(Double(nowNs() - t0) / Double(count))
            }
        }
    }
    func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
    let hand = median(samples[.handWritten]!)
    var rows: [(String, JSON)] = []
    for loop in RoundTripLoop.allCases {
        let m = median(samples[loop]!)
        rows.append((loop.rawValue, .object([
            ("ns", .number(m)), ("min ns", .number(samples[loop]!.min()!)),
            ("ratio to hand-written", .number(m / hand)),
        ])))
    }
    return .object([("runs", .int(runs)), ("round trips per run", .int(count)), ("cpu", .int(0)), ("loops", .object(rows))])
}
