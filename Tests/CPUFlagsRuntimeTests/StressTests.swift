import Atomics
import CPUFlags
import Foundation
import Glibc
import Testing

@testable import CPUFlagsRuntime

/// Workers making random transitions (round trips of random length, polling idles,
/// context switches, busy kernel stretches) while a requester makes random requests
/// (one worker, all, on behalf), wakes and grace periods (normal and expedited).
/// Checked by counters, not timing:
/// - every request runs exactly once (runs == requests, at the end);
/// - before any of its kernel code, a worker has run every request the requester was
///   told was done or deferred (runs >= promised, checked on the worker right after each
///   entry: `leaveUserStretch`, `exitIdle`).
/// Seeded (printed; CPUFLAGS_STRESS_SEED replays the schedule of random choices, not the
/// threads' interleaving) and bounded (CPUFLAGS_STRESS_REQUESTS requests per policy).
extension RuntimeTests {
    @Test(arguments: ExitPolicy.allCases)
    func stress(_ policy: ExitPolicy) throws {
        let env = ProcessInfo.processInfo.environment
        let seed = UInt64(env["CPUFLAGS_STRESS_SEED"] ?? "") ?? 7
        let requests = Int(env["CPUFLAGS_STRESS_REQUESTS"] ?? "") ?? 3000
        print("stress \(policy): seed \(seed), \(requests) requests (CPUFLAGS_STRESS_SEED=\(seed) replays the choices)")
        let rt = try IsolationRuntime(Self.options(policy, timeout: .seconds(20)))
        defer { rt.shutdown() }
        let workers = 2
        let slots = rt.options.workersMax
        let ran = (0..<slots).map { _ in ManagedAtomic<Int>(0) }
        let promised = (0..<slots).map { _ in ManagedAtomic<Int>(0) }
        let early = ManagedAtomic<Int>(0)
        let stop = ManagedAtomic<Bool>(false)
        let work = try rt.defineWork { w in ran[w].wrappingIncrement(ordering: .sequentiallyConsistent) }
        var threads: [WorkerThread] = []
        for i in 0..<workers {
            threads.append(WorkerThread(rt) { w in
                var rng = SplitMix64(state: seed &+ UInt64(i + 1) &* 0x9E37_79B9)
                func checkAfterEntry() {
                    // Kernel code: everything promised so far has run here. Promised is
                    // read first: a signal landing between the two loads can only add
                    // runs (and then promises), never make this check see a promise
                    // whose run it missed.
                    let p = promised[w.slot].load(ordering: .sequentiallyConsistent)
                    if ran[w.slot].load(ordering: .sequentiallyConsistent) < p {
                        early.wrappingIncrement(ordering: .relaxed)
                    }
                }
                var spin = 0
                while !stop.load(ordering: .relaxed) {
                    switch rng.next() % 8 {
                    case 0..<5:
                        w.enterUserStretch(forceUser: rng.next() % 16 == 0)
                        for _ in 0..<Int(rng.next() % 4000) { spin &+= 1 }
                        w.leaveUserStretch()
                        checkAfterEntry()
                    case 5:
                        w.enterIdle(polling: true)
                        var n = 0
                        w.pollIdle { n += 1; return n > 2000 || stop.load(ordering: .relaxed) }
                        w.exitIdle()
                        checkAfterEntry()
                    case 6:
                        w.contextSwitch()
                    default:
                        for _ in 0..<Int(rng.next() % 2000) { spin &+= 1 }
                    }
                }
                _ = spin
            })
        }
        var rng = SplitMix64(state: seed)
        var made = 0
        let slotsInUse = threads.map(\.slot)
        while made < requests {
            let target = slotsInUse[Int(rng.next() % UInt64(slotsInUse.count))]
            switch rng.next() % 10 {
            case 0..<5:
                _ = try rt.request(work, on: target)
                promised[target].wrappingIncrement(ordering: .sequentiallyConsistent)
                made += 1
            case 5, 6:
                for (w, _) in try rt.requestAll(work) {
                    promised[w].wrappingIncrement(ordering: .sequentiallyConsistent)
                    made += 1
                }
            case 7:
                _ = try rt.runOnBehalf(work, of: target)
                promised[target].wrappingIncrement(ordering: .sequentiallyConsistent)
                made += 1
            case 8:
                _ = try rt.wake(target)
            default:
                try rt.synchronize(expedited: rng.next() % 2 == 0)
            }
        }
        stop.store(true, ordering: .relaxed)
        for t in threads { t.join() }
        // Unregistering ran what was still deferred or signalled.
        let runs = ran.reduce(0) { $0 + $1.load(ordering: .sequentiallyConsistent) }
        #expect(runs == made, "every request runs exactly once: \(made) requests, \(runs) runs")
        #expect(early.load(ordering: .relaxed) == 0, "a worker ran kernel code before work promised to it")
        for s in slotsInUse {
            #expect(ran[s].load(ordering: .sequentiallyConsistent) == promised[s].load(ordering: .sequentiallyConsistent), "worker \(s)")
        }
    }
}
