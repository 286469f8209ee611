import CPUFlags

/// Remote TLB invalidation in hardware (AMD INVLPGB, Intel RAR): kernel TLB flushes
/// interrupt nobody, the requester pays `hardwareFlushNs`; `sync_core` and the rest
/// still interrupt.
struct HardwareBroadcast: PolicyModel {
    var summary: String { "remote TLB invalidation in hardware; sync_core still by interrupt" }
    var coreConfig: ProtocolConfig { ProtocolConfig(exitPolicy: .strict) }
    var usesContextTracking: Bool { true }

    func routes(_ kind: WorkKind, to targets: [Int], core: CPUFlags<SimPlatform>, machine: RoutingContext)
        -> [(target: Int, delivery: Delivery)] {
        if routedByModeToday(kind) { return coreRoutes(kind, to: targets, core: core) }
        return targets.filter { $0 != core.cpu }.map { ($0, kind == .kernelTLBFlush ? .hardware : .interrupted) }
    }
}
