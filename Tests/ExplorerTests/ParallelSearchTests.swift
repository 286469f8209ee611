import CPUFlags
import Testing

@testable import Explorer

/// What a run found, in every field that a different thread count must not change.
private func outcome(_ r: Report) -> [String] {
    [r.scenario, "\(r.model)", "states \(r.states)", "transitions \(r.transitions)", "executions \(r.executions)",
     "slept \(r.sleptMoves)", "reexpanded \(r.reexpanded)", "depth \(r.depth)", "\(r.invariants.sorted { $0.key < $1.key })",
     "\(r.operationsReached)", r.incomplete ?? "complete", r.violation.map { "\($0.invariant) \($0.message)" } ?? "no violation",
     r.counterexample.map { $0.moves.joined(separator: ",") } ?? "no counterexample"]
}

private func run(_ s: Scenario, _ model: MemoryModel, threads: Int, _ tweak: (inout Limits) -> Void = { _ in }) -> Report {
    var l = Limits()
    l.threads = threads
    tweak(&l)
    return Explorer(scenario: s, model: model, limits: l).run()
}

/// A breadth-first level expanded by several threads (`SearchWorker`) stores what one
/// thread stores, in the same order: the same states, transitions, executions, moves
/// slept, depth and verdicts, on standard scenarios under SC, TSO, PSO and rc11 (three
/// threads: uneven slices; the batches hold 2,048 entries a worker, so the bigger levels
/// span several batches).
@Test(arguments: ["three-cpus", "pin-nmi", "idle-wake", "rcu-lazy", "task-migration", "pin-lock", "tlb-flush", "mce-nmi"])
func threadsDoNotChangeTheSearch(_ name: String) throws {
    let s = try #require(Scenario.named(name))
    for model in [MemoryModel.sc, .tso, .pso, .rc11] {
        let one = run(s, model, threads: 1)
        #expect(one.passed, "\(name) \(model)")
        #expect(one.threads == 1)
        let three = run(s, model, threads: 3)
        #expect(three.threads == 3)
        #expect(outcome(three) == outcome(one), "\(name) \(model)")
    }
}

/// ...also with hash compaction, without sleep sets, and when a state limit stops the
/// run in the middle of a level (the same message: how far it got).
@Test func threadsDoNotChangeLimitsOrModes() throws {
    let s = try #require(Scenario.named("three-cpus"))
    for tweak in [{ (l: inout Limits) in l.hashCompact = true }, { $0.reduction = false }, { $0.statesMax = 20_000 }] {
        let one = run(s, .tso, threads: 1, tweak)
        let two = run(s, .tso, threads: 2, tweak)
        #expect(outcome(two) == outcome(one))
    }
    let capped = run(s, .tso, threads: 2) { $0.statesMax = 20_000 }
    #expect(capped.incomplete?.contains("state limit 20000 reached") == true)
}

/// Every named mutant is rejected with the same violation and the same counterexample
/// by two threads as by one (the first violation in the one-thread order wins, whatever
/// worker found it).
@Test(arguments: MutantCase.catalog)
func threadsFindTheSameCounterexample(_ m: MutantCase) throws {
    var one = Limits()
    one.threads = 1
    var two = Limits()
    two.threads = 2
    let a = m.run(limits: one)
    let b = m.run(limits: two)
    #expect(a.violation != nil, "\(m.name)")
    #expect(outcome(b) == outcome(a), "\(m.name)")
}
