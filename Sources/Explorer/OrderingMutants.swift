import CPUFlags

/// One ordering of the core weakened one step (`OrderingSite`, `Weakening`): the
/// mutants that check the ordering arguments in the core's comments. Unlike the named
/// mutants (Mutants.swift), nobody decided beforehand which scenario catches each:
/// `verdict` runs the standard scenarios, smallest first, until one breaks an
/// invariant, under each memory model. A mutant no run rejects is reported as such:
/// either the ordering is not needed under that model, or no scenario here needs it
/// (the verdict says which runs were exhaustive).
public struct OrderingMutant: Sendable, Hashable, CustomStringConvertible {
    public var site: OrderingSite
    public var step: Weakening.Step

    public var name: String { "\(site.name)/\(step.rawValue)" }
    public var description: String { name }
    public var weakening: Weakening { Weakening(site, step) }

    /// Every site, weakened each way its declared ordering allows.
    public static let all: [OrderingMutant] = OrderingSite.allCases.flatMap { s in
        s.declared.weakenings.map { OrderingMutant(site: s, step: $0) }
    }

    public static func named(_ name: String) -> OrderingMutant? { all.first { $0.name == name } }

    /// What the runs of one model showed.
    public struct Verdict: Sendable, Hashable, Codable {
        public var model: MemoryModel
        /// The first scenario (in the order run) whose run broke an invariant, and which.
        public var rejectedBy: String?
        public var invariant: String?
        /// Runs explored to the end without a violation, and runs stopped at a limit.
        public var exhaustive: Int
        public var incomplete: Int
        public var seconds: Double

        public var rejected: Bool { rejectedBy != nil }
    }

    /// The standard scenarios, smallest first (by their states under SC), so that a
    /// rejection is found by the cheapest run that shows it.
    public static let scenarioOrder: [String] = [
        "rcu-idle", "text-patch", "tlb-flush", "tlb-flush-nopti", "pin", "rcu", "pin-dekker", "task-migration", "pin-lock", "rcu-lazy", "idle-wake",
        "lazy-adaptive", "adaptive-switch", "irq-ipi", "pin-nmi", "nmi", "mce-nmi", "rcu-nmi", "four-cpus", "three-cpus",
        "four-cpus-pin-rcu", "isolated-mix",
    ]

    /// Runs the scenarios with this weakening under `model`, stopping at the first
    /// violation.
    public func verdict(model: MemoryModel, scenarios: [Scenario], limits: Limits) -> Verdict {
        let start = ContinuousClock.now
        var v = Verdict(model: model, rejectedBy: nil, invariant: nil, exhaustive: 0, incomplete: 0, seconds: 0)
        for var s in scenarios {
            s.config.weakening.formUnion(weakening)
            let r = Explorer(scenario: s, model: model, limits: limits).run()
            if let x = r.violation {
                v.rejectedBy = s.name
                v.invariant = x.invariant.rawValue
                break
            }
            if r.incomplete != nil { v.incomplete += 1 } else { v.exhaustive += 1 }
        }
        v.seconds = (ContinuousClock.now - start).seconds
        return v
    }
}
