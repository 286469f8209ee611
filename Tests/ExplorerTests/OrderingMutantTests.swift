import Atomics
import CPUFlags
import Testing

@testable import Explorer

/// Ordering mutants whose verdict the sweep (`cpuflags mutants --orderings`) found,
/// pinned here: the scenario that rejects each, and the strongest model under which it
/// does. Each must be rejected there and under every weaker model, and pass that
/// scenario under every stronger one (for the store-buffer models, where a load is
/// always an acquire and an RMW a full fence, that is what "needs rc11" means).
struct PinnedOrderingMutant: Sendable, CustomStringConvertible {
    var mutant: String
    var scenario: String
    var caughtUnder: MemoryModel
    var invariant: Violation.Invariant
    var description: String { mutant }
}

let pinnedOrderingMutants: [PinnedOrderingMutant] = [
    .init(mutant: "exit-store/no-release", scenario: "rcu", caughtUnder: .pso, invariant: .rcuSafety),
    .init(mutant: "idle-store/no-release", scenario: "rcu-idle", caughtUnder: .pso, invariant: .rcuSafety),
    .init(mutant: "nmi-exit-store/no-release", scenario: "rcu-nmi", caughtUnder: .pso, invariant: .rcuSafety),
    .init(mutant: "pin-fence/no-fence", scenario: "pin-dekker", caughtUnder: .tso, invariant: .pinExclusion),
    .init(mutant: "grace-period-fence/no-fence", scenario: "rcu-idle", caughtUnder: .tso, invariant: .rcuSafety),
    // The count-then-check pin lock: its release under PSO, its acquire under rc11 (a
    // lost count update, then an unpin of a count that is already zero).
    .init(mutant: "pin-lock-release/no-release", scenario: "pin-lock", caughtUnder: .pso, invariant: .coreAssertion),
    .init(mutant: "pin-lock-acquire/no-acquire", scenario: "pin-lock", caughtUnder: .rc11, invariant: .coreAssertion),
    // Only rc11 can show these: loads that need their acquire, an RMW that needs seq_cst.
    .init(mutant: "entry-rmw/no-seq-cst", scenario: "rcu-idle", caughtUnder: .rc11, invariant: .rcuSafety),
    .init(mutant: "remote-cas/no-release", scenario: "text-patch", caughtUnder: .rc11, invariant: .noStaleText),
    .init(mutant: "rcu-sample/no-acquire", scenario: "rcu", caughtUnder: .rc11, invariant: .rcuSafety),
    .init(mutant: "grace-period-wait/no-acquire", scenario: "rcu", caughtUnder: .rc11, invariant: .rcuSafety),
]

@Test(arguments: pinnedOrderingMutants)
func orderingMutantIsRejectedWhereTheSweepFoundIt(_ p: PinnedOrderingMutant) throws {
    let m = try #require(OrderingMutant.named(p.mutant))
    var s = try #require(Scenario.named(p.scenario))
    s.config.weakening = m.weakening
    let order = MemoryModel.allCases  // strongest first: sc, tso, pso, rc11
    let from = try #require(order.firstIndex(of: p.caughtUnder))
    for (i, model) in order.enumerated() {
        let r = Explorer(scenario: s, model: model).run()
        if i >= from {
            let v = try #require(r.violation, "\(p.mutant) passes \(p.scenario) under \(model)")
            if model == p.caughtUnder {
                #expect(v.invariant == p.invariant, "\(p.mutant) under \(model): \(v)")
                #expect(r.counterexample.map { !$0.events.isEmpty } == true)
            }
        } else {
            #expect(r.violation == nil, "\(p.mutant) rejected in \(p.scenario) under \(model), a stronger model than \(p.caughtUnder)")
            #expect(r.incomplete == nil)
        }
    }
}

/// A weakening changes exactly the site it names: the catalog's declared orderings
/// match the call sites (debug builds assert it each time a site runs), and each
/// weakening goes one step down.
@Test func weakeningsGoOneStepDown() {
    #expect(OrderingMutant.all.count == OrderingSite.allCases.reduce(0) { $0 + $1.declared.weakenings.count })
    let w = Weakening(.remoteCAS, .dropRelease)
    #expect(w.update(.acquiringAndReleasing, .remoteCAS) == .acquiring)
    #expect(w.update(.acquiringAndReleasing, .pinCountAdd) == .acquiringAndReleasing)
    #expect(Weakening(.entryRMW, .dropSequentialConsistency).update(.sequentiallyConsistent, .entryRMW) == .acquiringAndReleasing)
    #expect(Weakening(.rcuSample, .dropAcquire).load(.acquiring, .rcuSample) == .relaxed)
    #expect(Weakening(.exitStore, .dropRelease).store(.releasing, .exitStore) == .relaxed)
    #expect(!Weakening(.pinFence, .dropFence).keepsFence(.pinFence))
    #expect(Weakening().keepsFence(.pinFence))
    #expect(Set(OrderingMutant.all.map(\.name)).count == OrderingMutant.all.count)
}

/// The named mutants that are weakenings go through the same sites: one mechanism.
@Test func namedOrderingMutantsAreWeakenings() {
    var both = Weakening(.exitStore, .dropRelease)
    both.formUnion(Weakening(.idleStore, .dropRelease))
    #expect(Mutations.exitStoreRelaxed.weakening == both)
    #expect(Mutations.pinNoFence.weakening == Weakening(.pinFence, .dropFence))
    #expect(Mutations.gracePeriodNoFence.weakening == Weakening(.gracePeriodFence, .dropFence))
    #expect(Mutations.entryExchange.weakening.isEmpty)
    // The configuration applies both sources, whichever is set last.
    var c = ProtocolConfig(mutations: .pinNoFence)
    c.weakening = Weakening(.rcuSample, .dropAcquire)
    #expect(!c.orderings.keepsFence(.pinFence))
    #expect(c.orderings.load(.acquiring, .rcuSample) == .relaxed)
    c.mutations = []
    #expect(c.orderings.keepsFence(.pinFence))
    #expect(c.orderings.load(.acquiring, .rcuSample) == .relaxed)
}
