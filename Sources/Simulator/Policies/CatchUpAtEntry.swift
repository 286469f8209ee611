import CPUFlags

/// The March 2026 RFC v8: an unconditional catch-up sequence (kernel TLB flush and
/// serialization) at every isolated CPU's entry, so kernel flushes and text-patch syncs
/// skip isolated CPUs outside the kernel.
struct CatchUpAtEntry: PolicyModel {
    var summary: String { "v8 RFC: unconditional flush + serialize at every isolated entry" }
    var coreConfig: ProtocolConfig { ProtocolConfig(exitPolicy: .strict) }
    var usesContextTracking: Bool { true }

    func route(_ kind: WorkKind, to t: Int, core: CPUFlags<SimPlatform>, machine: RoutingContext) -> Delivery {
        // USER or IDLE: the entry (or idle exit) flushes and serializes anyway.
        let kernelOnly = kind == .kernelTLBFlush || kind == .syncCore
        return machine.isolated[t] && kernelOnly && core.platform.word(t).mode.defersWork ? .skipped : .interrupted
    }

    func unconditionalEntryWorkNs(_ config: MachineConfig) -> Double { config.costs.kernelTLBFlushNs + config.costs.syncCoreNs }
}
