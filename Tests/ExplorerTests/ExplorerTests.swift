import CPUFlags
import Testing

@testable import Explorer

/// The correct protocol passes every standard scenario under every store-buffer model,
/// and under rc11 (`rc11ScenarioHolds`).
@Test(arguments: Scenario.standard, [MemoryModel.sc, .tso, .pso])
func standardScenarioHolds(_ scenario: Scenario, _ model: MemoryModel) {
    scenarioHolds(scenario, model)
}

/// The two biggest standard scenarios take 4 to 6 million states under rc11, minutes in a
/// debug build: `cpuflags verify --model rc11` runs them (README), the tests run the rest.
let rc11TestScenarios = Scenario.standard.filter { !["isolated-mix", "four-cpus-pin-rcu"].contains($0.name) }

@Test(arguments: rc11TestScenarios)
func rc11ScenarioHolds(_ scenario: Scenario) {
    scenarioHolds(scenario, .rc11)
}

func scenarioHolds(_ scenario: Scenario, _ model: MemoryModel) {
    let r = Explorer(scenario: scenario, model: model).run()
    #expect(r.violation == nil, "\(scenario.name) \(model): \(r.counterexample?.timeline() ?? "")")
    #expect(r.incomplete == nil)
    #expect(r.states > 1)
    #expect(r.executions >= 1)
    for (_, verdict) in r.invariants { #expect(verdict == "ok") }
}

let mutantCases = MutantCase.catalog

@Test func everyNamedMutantHasACase() {
    #expect(Set(mutantCases.map(\.name)) == Set(Mutations.named.map(\.name)))
    #expect(mutantCases.count >= 10)
}

/// Each mutant is rejected, with a counterexample, under the model named for it...
@Test(arguments: mutantCases)
func mutantIsRejected(_ m: MutantCase) throws {
    var s = try #require(Scenario.named(m.scenario) ?? Generator.named(m.scenario))
    s.config.mutations = m.mutation
    let r = m.run()
    let v = try #require(r.violation, "\(m.name) was not caught in \(m.scenario) under \(m.caughtUnder)")
    #expect(v.invariant == m.invariant, "\(m.name): \(v)")
    let cx = try #require(r.counterexample)
    #expect(!cx.events.isEmpty)
    #expect(cx.moves.count >= 2)
    let timeline = cx.timeline()
    #expect(timeline.contains("cpu0") && timeline.contains("cpu1"))
    #expect(timeline.contains(v.message))
    // The same scenario passes without the mutation under the same model.
    var clean = s
    clean.config.mutations = []
    #expect(Explorer(scenario: clean, model: m.caughtUnder).run().violation == nil)
}

/// ...and the ones that need a weaker model are not caught under a stronger one: this
/// is what "needs TSO" (or PSO) in the README means.
@Test(arguments: mutantCases.filter { $0.caughtUnder != .sc })
func mutantNeedsWeakerModel(_ m: MutantCase) throws {
    var s = try #require(Scenario.named(m.scenario) ?? Generator.named(m.scenario))
    s.config.mutations = m.mutation
    #expect(Explorer(scenario: s, model: .sc).run().violation == nil)
    if m.caughtUnder == .pso {
        #expect(Explorer(scenario: s, model: .tso).run().violation == nil)
    }
}

/// Counterexamples are shortest: breadth-first search finds no shorter path, so
/// removing the last move must leave a state where the violation has not happened.
@Test func counterexampleIsReplayable() throws {
    var s = try #require(Scenario.named("tlb-flush"))
    s.config.mutations = .entryLoadThenStore
    let a = Explorer(scenario: s, model: .sc).run()
    let b = Explorer(scenario: s, model: .sc).run()
    #expect(a.counterexample?.moves == b.counterexample?.moves)
    #expect(a.states == b.states)
}

@Test func resizedScenariosHold() throws {
    for name in ["tlb-flush", "pin", "rcu"] {
        let s = try #require(Scenario.named(name)).withCPUs(3)
        #expect(s.cpuCount == 3)
        #expect(s.problem() == nil)
        #expect(Explorer(scenario: s, model: .tso).run().violation == nil, "\(s.name)")
    }
}

@Test func limitsAreReported() throws {
    var limits = Limits()
    limits.statesMax = 10
    let r = Explorer(scenario: try #require(Scenario.named("nmi")), model: .sc, limits: limits).run()
    #expect(r.incomplete != nil)
    #expect(!r.passed)
}

@Test func malformedScenarioIsExplained() {
    let s = Scenario(name: "bad", summary: "", programs: [[.wake(target: 7)], []], start: [.kernel, .user], covers: [])
    #expect(s.problem()?.contains("bad target") == true)
}

/// A lazy CPU in user mode is never credited by sampling (INDETERMINATE is not an EQS
/// and its counter does not move): without the expedited interrupt, the grace period
/// waits forever, and the explorer says so instead of accepting the end state.
@Test func lazyCPUNeedsExpeditedGracePeriod() throws {
    var s = try #require(Scenario.named("rcu-lazy"))
    #expect(Explorer(scenario: s, model: .sc).run().violation == nil)
    s.expeditedRCU = false
    let v = try #require(Explorer(scenario: s, model: .sc).run().violation)
    #expect(v.invariant == .progress)
    #expect(v.message.contains("synchronize_rcu"))
}

/// Review finding: an interrupt taken in polling idle used to consume WAKE, and the idle
/// loop then polled forever. idle-wake now has a timer IRQ; this checks the scenario
/// still offers that interleaving (the IRQ budget is used) and holds.
@Test func interruptInPollingIdleKeepsTheWake() throws {
    let s = try #require(Scenario.named("idle-wake"))
    #expect(s.irqs[1] == 1)
    var noIRQ = s
    noIRQ.irqs = [0, 0]
    let with = Explorer(scenario: s, model: .tso).run()
    let without = Explorer(scenario: noIRQ, model: .tso).run()
    #expect(with.violation == nil)
    #expect(with.states > without.states)
}

/// Every public transition and composition of the core is reached by the standard set
/// (under SC): a part of the core the explorer never runs is a part it never checked.
@Test func theStandardSetReachesEveryCoreOperation() throws {
    var reached = Set<String>()
    for s in Scenario.standard {
        let r = Explorer(scenario: s, model: .sc).run()
        #expect(r.passed, "\(s.name)")
        reached.formUnion(r.operationsReached)
    }
    let missing = CoreOperation.allCases.map(\.name).filter { !reached.contains($0) }
    #expect(missing.isEmpty, "never explored: \(missing)")
}

/// rc11 is weaker than every other model here: each named mutant is rejected under it
/// too (by a violation of some invariant; a weaker model may find another one first).
@Test(arguments: mutantCases)
func mutantIsRejectedUnderRC11(_ m: MutantCase) throws {
    let r = m.run(model: .rc11)
    #expect(r.violation != nil, "\(m.name) passes \(m.scenario) under rc11")
}

/// The ordering mutants' sweep runs every standard scenario.
@Test func orderingSweepCoversTheStandardSet() {
    #expect(Set(OrderingMutant.scenarioOrder) == Set(Scenario.standard.map(\.name)))
    #expect(OrderingMutant.scenarioOrder.count == Scenario.standard.count)
}
