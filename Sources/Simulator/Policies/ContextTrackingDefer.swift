import CPUFlags

/// Valentin Schneider's v7 series: `sync_core` for a CPU outside the kernel is deferred
/// through the context-tracking word (CT_WORK_SYNC, set by cmpxchg while the target is
/// not RCU-watching; modeled with the core's request on the same word). With the
/// config's `ctDeferKernelTLB`, the RFC patches' COALESCE_TLBI too: kernel TLB flushes
/// skip isolated CPUs outside the kernel, which flush unconditionally at every entry.
struct ContextTrackingDefer: PolicyModel {
    var summary: String { "v7 series: sync_core deferred through the context-tracking word" }
    var coreConfig: ProtocolConfig { ProtocolConfig(exitPolicy: .strict) }
    var usesContextTracking: Bool { true }
    func route(_ kind: WorkKind, to t: Int, core: CPUFlags<SimPlatform>, machine: RoutingContext) -> Delivery {
        if kind == .syncCore, case .deferred = core.request(.syncCore, of: t) {
            core.platform.owed.record(.deferred, kind: .syncCore, target: t)
            return .deferred
        }
        if kind == .kernelTLBFlush && machine.config.ctDeferKernelTLB && machine.isolated[t]
            && core.platform.word(t).mode.defersWork {
            return .skipped
        }
        return .interrupted
    }

    /// COALESCE_TLBI: the flush every isolated entry makes unconditionally.
    func unconditionalEntryWorkNs(_ config: MachineConfig) -> Double {
        config.ctDeferKernelTLB ? config.costs.kernelTLBFlushNs : 0
    }
}
