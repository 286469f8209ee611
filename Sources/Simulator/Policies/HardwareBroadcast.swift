import CPUFlags

/// Remote TLB invalidation in hardware (AMD INVLPGB, Intel RAR): kernel TLB flushes
/// interrupt nobody, the requester pays `hardwareFlushNs`; `sync_core` and the rest
/// still interrupt.
struct HardwareBroadcast: PolicyModel {
    var summary: String { "remote TLB invalidation in hardware; sync_core still by interrupt" }
    var coreConfig: ProtocolConfig { ProtocolConfig(exitPolicy: .strict) }
    var usesContextTracking: Bool { true }

    func route(_ kind: WorkKind, to t: Int, core: CPUFlags<SimPlatform>, machine: RoutingContext) -> Delivery {
        kind == .kernelTLBFlush ? .hardware : .interrupted
    }
}
