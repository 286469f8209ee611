import CPUFlags

/// Linux 6.x: every `on_each_cpu` target is interrupted (kernel flushes and text
/// patching pass no condition); RCU skips CPUs context tracking shows in an extended
/// quiescent state, and a polling idle CPU is woken by a flag.
struct LinuxToday: PolicyModel {
    var summary: String { "every on_each_cpu target interrupted; RCU skips EQS CPUs" }
    var coreConfig: ProtocolConfig { ProtocolConfig(exitPolicy: .strict) }
    var usesContextTracking: Bool { true }

    func route(_ kind: WorkKind, to t: Int, core: CPUFlags<SimPlatform>, machine: RoutingContext) -> Delivery {
        .interrupted
    }
}
