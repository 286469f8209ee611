import CPUFlags

/// A named wrong variant of the protocol, the scenario that exposes it, the weakest
/// memory model under which it is caught, and the invariant it breaks. The tests check
/// every entry both ways: caught under `caughtUnder`, not caught under stronger models.
public struct MutantCase: Sendable, Hashable, CustomStringConvertible {
    /// The deviation itself; its name is the one `Mutations.named` gives it (one home).
    public var mutation: Mutations
    public var summary: String
    public var scenario: String
    public var caughtUnder: MemoryModel
    public var invariant: Violation.Invariant

    public var name: String { mutation.names.joined(separator: "+") }
    public var description: String { name }

    /// Runs the mutant's scenario with the mutation under `model` (default: the model
    /// that catches it).
    public func run(model: MemoryModel? = nil, limits: Limits = Limits()) -> Report {
        var s = (Scenario.named(scenario) ?? Generator.named(scenario))!
        s.config.mutations = mutation
        return Explorer(scenario: s, model: model ?? caughtUnder, limits: limits).run()
    }

    public static let catalog: [MutantCase] = [
        .init(mutation: .pinSketchLiteral, summary: "the thread's pin sketch as written: count, barrier, mode check, no flag in the word",
              scenario: "pin", caughtUnder: .sc, invariant: .pinExclusion),
        .init(mutation: .remotePlainStore, summary: "remote work set by load + plain store instead of compare-and-swap",
              scenario: "tlb-flush", caughtUnder: .sc, invariant: .noLostWork),
        .init(mutation: .entryLoadThenStore, summary: "entry as load then store instead of one read-modify-write",
              scenario: "tlb-flush", caughtUnder: .sc, invariant: .noLostWork),
        .init(mutation: .exitStoreRelaxed, summary: "exit-to-user and idle-entry stores relaxed instead of release",
              scenario: "rcu", caughtUnder: .pso, invariant: .rcuSafety),
        .init(mutation: .noRCUCounter, summary: "RCU compares modes only, no counter",
              scenario: "rcu-idle", caughtUnder: .sc, invariant: .rcuSafety),
        .init(mutation: .indeterminateDeferrable, summary: "requesters defer work to INDETERMINATE CPUs",
              scenario: "lazy-adaptive", caughtUnder: .sc, invariant: .noLostWork),
        .init(mutation: .workAfterKernelCode, summary: "owed work run after the entry's first kernel access",
              scenario: "tlb-flush", caughtUnder: .sc, invariant: .noStaleTranslation),
        .init(mutation: .nmiStaleRestore, summary: "NMI exit writes back the word it loaded before its RMW",
              scenario: "nmi", caughtUnder: .sc, invariant: .noLostWork),
        .init(mutation: .unpinBeforeWorkEnds, summary: "the pinner unpins before its on-behalf work ends",
              scenario: "pin", caughtUnder: .sc, invariant: .pinExclusion),
        .init(mutation: .pinNoFence, summary: "count-then-check pinning without its full fence",
              scenario: "pin-dekker", caughtUnder: .tso, invariant: .pinExclusion),
        .init(mutation: .gracePeriodNoFence, summary: "grace period samples without a full fence after unpublishing",
              scenario: "rcu", caughtUnder: .tso, invariant: .rcuSafety),
        .init(mutation: .pinFlagBeforeCount, summary: "PINNED set in the word before the pin count is raised",
              scenario: "pin", caughtUnder: .sc, invariant: .pinExclusion),
        .init(mutation: .indeterminateRCUIdle, summary: "grace periods treat INDETERMINATE as RCU-idle",
              scenario: "rcu-lazy", caughtUnder: .tso, invariant: .rcuSafety),
        .init(mutation: .entryExchange, summary: "the brief's entry: exchange to {KERNEL, work = 0}, owed work only in a register",
              scenario: "nmi", caughtUnder: .sc, invariant: .noLostWork),
        .init(mutation: .callbacksBeforePinWait, summary: "entry runs its queued callbacks before waiting for pinners",
              scenario: "gen-a/strict/cpu0:queue-callback,run-on-behalf/round-trip", caughtUnder: .sc, invariant: .pinExclusion),
        .init(mutation: .nmiExitDropsCounterStep, summary: "NMI exit drops its entry's counter step: the NMI's stretch aliases the next",
              scenario: "rcu-nmi", caughtUnder: .sc, invariant: .rcuSafety),
        .init(mutation: .pinWithoutLock, summary: "count-then-check pinners of one CPU update its pin count without the pin lock",
              scenario: "pin-lock", caughtUnder: .sc, invariant: .coreAssertion),
        .init(mutation: .taskWordWithoutCPU, summary: "§2.12 per-task words without the CPU number: USER in a migrated task's word is trusted",
              scenario: "task-migration", caughtUnder: .sc, invariant: .noStaleTranslation),
    ]
}
