import CPUFlags
import Testing

@testable import Explorer

func withoutReduction() -> Limits {
    var l = Limits()
    l.reduction = false
    return l
}

/// Sleep sets (SleepSets.swift) keep every state: with and without them the search
/// reaches the same states and end states, gives the same verdict per invariant and
/// reaches the same core operations, on every standard scenario, under SC and TSO (and
/// PSO on the 2-CPU ones); with them it tries fewer moves.
@Test(arguments: Scenario.standard)
func sleepSetsKeepEveryState(_ scenario: Scenario) {
    let models: [MemoryModel] = scenario.cpuCount == 2 ? [.sc, .tso, .pso] : [.sc, .tso]
    for model in models {
        let full = Explorer(scenario: scenario, model: model, limits: withoutReduction()).run()
        let reduced = Explorer(scenario: scenario, model: model).run()
        #expect(reduced.reduced && !full.reduced)
        #expect(full.exhaustive && reduced.exhaustive, "\(scenario.name) \(model)")
        #expect(reduced.states == full.states, "\(scenario.name) \(model): \(reduced.states) states, \(full.states) without sleep sets")
        #expect(reduced.executions == full.executions, "\(scenario.name) \(model)")
        #expect(reduced.invariants == full.invariants, "\(scenario.name) \(model)")
        #expect(Set(reduced.operationsReached) == Set(full.operationsReached), "\(scenario.name) \(model)")
        #expect(reduced.transitions <= full.transitions)
    }
}

/// The reduction is real where CPUs are independent. (The rule for a state reached
/// again after its expansion never fires on the standard set: there every path to a
/// state has the same length, so it is always still waiting in the frontier.)
@Test func sleepSetsSaveMovesOnTheFourCPUMachines() throws {
    let s = try #require(Scenario.named("four-cpus-pin-rcu"))
    let full = Explorer(scenario: s, model: .tso, limits: withoutReduction()).run()
    let reduced = Explorer(scenario: s, model: .tso).run()
    #expect(reduced.sleptMoves > 0)
    #expect(Double(reduced.transitions) < 0.6 * Double(full.transitions))
}

/// Every mutant is still rejected with sleep sets (the default), with the verdict and
/// the counterexample of the search without them: a shortest one.
@Test(arguments: MutantCase.catalog)
func sleepSetsStillRejectEveryMutant(_ m: MutantCase) throws {
    let reduced = m.run()
    let full = m.run(limits: withoutReduction())
    let v = try #require(reduced.violation, "\(m.name) not caught with sleep sets")
    #expect(v == full.violation)
    #expect(reduced.counterexample?.moves == full.counterexample?.moves)
    #expect(reduced.counterexampleNote?.hasPrefix("shortest") == true)
}

/// Moves the footprints call independent commute: at each of the first states of every
/// 2-CPU standard scenario and of three-cpus (TSO: drains are moves too), every pair of
/// enabled moves of different CPUs with non-conflicting footprints gives the same state
/// in both orders.
@Test(arguments: Scenario.standard.filter { $0.cpuCount == 2 || $0.name == "three-cpus" })
func independentMovesCommute(_ scenario: Scenario) {
    #expect(firstNonCommutingPair(scenario, .tso, limit: 5_000) == nil)
}

/// The check above can fail: with every footprint taken as empty (every pair called
/// independent), it finds a pair that does not commute.
@Test func aMissingFootprintIsCaught() {
    #expect(firstNonCommutingPair(Scenario.named("pin")!, .sc, limit: 5_000, emptyFootprints: true) != nil)
}

func firstNonCommutingPair(_ scenario: Scenario, _ model: MemoryModel, limit: Int, emptyFootprints: Bool = false) -> String? {
    let e = Explorer(scenario: scenario, model: model)
    let m = Machine(scenario: scenario, model: model, limits: e.limits, state: e.initialState())
    var found: String?
    walkStates(scenario, model, limit: limit) { s in
        guard found == nil else { return }
        var tried: [(Move, MachineState, Footprint)] = []
        for move in e.candidateMoves(s, on: m) {
            if case .next(let t) = e.apply(move, to: s, on: m) { tried.append((move, t, emptyFootprints ? .empty : m.touched)) }
        }
        for (a, sa, fa) in tried {
            for (b, sb, fb) in tried where b.cpu > a.cpu && fa.commutes(with: fb) {
                let ab = e.apply(b, to: sa, on: m)
                let ba = e.apply(a, to: sb, on: m)
                switch (ab, ba) {
                case (.next(let x), .next(let y)) where x == y: continue
                case (.violation(let x), .violation(let y)) where x.invariant == y.invariant: continue
                default:
                    found = "\(scenario.name) \(model): \(a) and \(b) are called independent and do not commute"
                    return
                }
            }
        }
    }
    return found
}

/// The footprints' write side is asserted on every move in debug builds
/// (`Explorer.apply`); this checks the diff it relies on sees what matters: a pinner's
/// moves change the pinned CPU's ghost state, and those changes are among its marks.
@Test func changedComponentsAreSeenAndMarked() throws {
    let s = try #require(Scenario.named("pin"))
    let e = Explorer(scenario: s, model: .sc)
    let m = Machine(scenario: s, model: .sc, limits: e.limits, state: e.initialState())
    var seen: UInt64 = 0
    walkStates(s, .sc, limit: 5_000) { st in
        for move in e.candidateMoves(st, on: m) where move.cpu == 0 {
            guard case .next(let t) = e.apply(move, to: st, on: m) else { continue }
            let changed = m.components.changed(from: st, to: t, mover: 0)
            #expect(changed & ~m.touched.writes == 0, "\(move)")
            seen |= changed
        }
    }
    #expect(seen & m.components.ghost(1) != 0, "no pinner move changed cpu1's ghost state")
}
