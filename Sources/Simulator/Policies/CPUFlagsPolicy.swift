import CPUFlags

/// The cpu_flags design with one of the core's exit policies on the isolated CPUs:
/// strict (USER: every deferrable kind deferred, drains pinned), lazy (INDETERMINATE:
/// no atomic on entry, interrupts as today) or adaptive (INDETERMINATE, promoted to USER
/// after an IPI hits user mode). Every route is the core's (`CPUFlags.route`).
struct CPUFlagsPolicy: PolicyModel {
    var exitPolicy: ExitPolicy

    var summary: String {
        switch exitPolicy {
        case .strict: return "strict USER on isolated CPUs: every deferrable kind deferred, drains pinned"
        case .lazy: return "INDETERMINATE everywhere: no atomic on entry, interrupts as today"
        case .adaptive: return "INDETERMINATE, promoted to USER after an IPI hits user mode"
        }
    }
    var coreConfig: ProtocolConfig { ProtocolConfig(exitPolicy: exitPolicy) }
    var usesContextTracking: Bool { false }

    func routes(_ kind: WorkKind, to targets: [Int], core: CPUFlags<SimPlatform>, machine: RoutingContext)
        -> [(target: Int, delivery: Delivery)] {
        coreRoutes(kind, to: targets, core: core)
    }

    func route(_ kind: WorkKind, to target: Int, core: CPUFlags<SimPlatform>, machine: RoutingContext) -> Delivery {
        // Every route is the core's; one target at a time is the same call.
        coreRoutes(kind, to: [target], core: core)[0].delivery
    }
}
