import CPUFlags
import Testing

@testable import Explorer

/// The generator: a fixed enumeration, well-formed machines, the combinations the
/// hand-written set never had, and a seeded sample that replays.

@Test func theEnumerationIsFixedAndWellFormed() {
    let one = Generator.scenarios(bound: 1)
    let two = Generator.scenarios(bound: 2)
    // The counts are part of what a bound means: a change to the generator shows here
    // (and in the README's figures) rather than silently.
    #expect(one.count == 250)
    #expect(two.count == 2358)
    #expect(Set(two.map(\.name)).count == two.count, "generated names are unique")
    for s in two { #expect(s.problem() == nil, "\(s.name): \(s.problem() ?? "")") }
    // Bound 1 is contained in bound 2.
    #expect(Set(one.map(\.name)).isSubset(of: Set(two.map(\.name))))
    // Every generated name resolves to the same scenario.
    for s in one.prefix(20) { #expect(Generator.named(s.name) == s) }
}

@Test func theGeneratorReachesTheCombinationsTheHandWrittenSetMissed() {
    let all = Generator.scenarios(bound: 2)
    // Pinning a lazy CPU, and under both pin protocols.
    #expect(all.contains { s in s.config.exitPolicy == .lazy && s.programs[0].contains { if case .runOnBehalf = $0 { return true }; return false } })
    #expect(all.contains { s in s.config.pinProtocol == .countThenCheck && s.config.exitPolicy == .adaptive })
    // A grace period over two other CPUs, normal and expedited.
    for expedited in [false, true] {
        #expect(all.contains { $0.cpuCount == 3 && $0.programs[0] == [.synchronizeRCU] && $0.expeditedRCU == expedited
                               && !$0.programs[1].isEmpty && !$0.programs[2].isEmpty })
    }
    // A queued callback and a pin of the same CPU, in one program and from two CPUs.
    #expect(all.contains { $0.programs[0] == [.queueCallback(target: 1, id: 0), .runOnBehalf(target: 1, id: 1)] })
    #expect(all.contains { $0.cpuCount == 3 && $0.programs[0] == [.queueCallback(target: 1, id: 0)] && $0.programs[2] == [.runOnBehalf(target: 1, id: 1)] })
    // Every housekeeping op meets every budget on a 2-CPU machine.
    let features = all.map(Coverage.features(of:))
    for op in ["flush", "patch", "queue-callback", "run-on-behalf", "wake", "interrupt", "grace-period", "gp-expedited"] {
        for budget in ["nmi", "timer-irq"] { #expect(features.contains { $0.contains(op) && $0.contains(budget) }, "\(op)+\(budget)") }
    }
}

@Test func aSampleReplaysFromItsSeed() {
    let a = Generator.sample(bound: 2, count: 30, seed: 42)
    let b = Generator.sample(bound: 2, count: 30, seed: 42)
    let c = Generator.sample(bound: 2, count: 30, seed: 43)
    #expect(a == b)
    #expect(a != c)
    #expect(Set(a.map(\.name)).count == 30)
    #expect(Generator.sample(bound: 1, count: 10_000, seed: 1).count == 250)
}

/// The generated sample CI keeps: a fixed seed and bound, explored exhaustively under
/// SC and TSO on the correct core, and its coverage computed from what ran.
@Test func aFixedGeneratedSampleHolds() {
    let sample = Generator.sample(bound: 2, count: 16, seed: 2025_11_01)
    var runs: [(scenario: Scenario, report: Report)] = []
    for s in sample {
        for model in [MemoryModel.sc, .tso] {
            let r = Explorer(scenario: s, model: model).run()
            #expect(r.passed, "\(s.name) \(model): \(r.violation?.description ?? r.incomplete ?? "")")
            runs.append((s, r))
        }
    }
    let coverage = Coverage(runs)
    #expect(coverage.runs == 32 && coverage.leftOut == 0)
    // The diagonal counts each feature's runs; a pair never exceeds either feature.
    for i in coverage.features.indices {
        for j in coverage.features.indices { #expect(coverage.pairs[i][j] <= coverage.pairs[i][i]) }
    }
}

/// Coverage counts only runs that explored everything: a violated run is left out.
@Test func coverageLeavesOutRunsThatStoppedEarly() throws {
    var s = try #require(Scenario.named("nmi"))
    s.config.mutations = .entryExchange
    let bad = Explorer(scenario: s, model: .sc).run()
    let good = Explorer(scenario: try #require(Scenario.named("tlb-flush")), model: .sc).run()
    let c = Coverage([(s, bad), (try #require(Scenario.named("tlb-flush")), good)])
    #expect(c.runs == 1 && c.leftOut == 1)
    let nmi = try #require(c.features.firstIndex(of: "nmi"))
    let flush = try #require(c.features.firstIndex(of: "flush"))
    #expect(c.pairs[nmi][nmi] == 0)
    #expect(c.pairs[flush][flush] == 1)
}

/// The sharper checks, each against the wrong core it exists for, in the smallest
/// scenario that shows it.
@Test func pinExclusionCoversTheEntryBeforeKernelCode() throws {
    let m = try #require(MutantCase.catalog.first { $0.mutation == .callbacksBeforePinWait })
    let r = m.run()
    let v = try #require(r.violation)
    #expect(v.invariant == .pinExclusion)
    #expect(v.message.contains("past its entry"))
}

@Test func requirementThreeIsNotExcusedByAnEndState() throws {
    // The NMI's stretch aliases the next kernel stretch: the CPU ends in the kernel with
    // the counter the grace period sampled, which the end-state rule alone accepts.
    var s = try #require(Generator.named("gen-a/strict/cpu0:grace-period/round-trip/nmi"))
    s.config.mutations = .nmiExitDropsCounterStep
    let v = try #require(Explorer(scenario: s, model: .sc).run().violation)
    #expect(v.invariant == .rcuSafety)
    #expect(v.message.contains("requirement 3"))
}
