import CPUFlags

/// A way of handling cross-CPU work: Linux today, the context-tracking series, or a
/// cpu_flags policy. The enum is the name a user gives (`--policy`); each case's
/// behaviour has one home, a `PolicyModel` in its own file in this folder. All of them
/// run the same protocol core for the CPUs' words.
///
/// Adding a policy: a case here, its file (a `PolicyModel`), and its line in `model`.
public enum Policy: String, CaseIterable, Codable, Hashable, Sendable {
    case linux
    case ctDefer = "ct-defer"
    case catchUp = "catch-up"
    case cpuflags
    case cpuflagsLazy = "cpuflags-lazy"
    case cpuflagsAdaptive = "cpuflags-adaptive"
    case hwBroadcast = "hw-broadcast"

    /// What this policy decides and charges.
    var model: any PolicyModel {
        switch self {
        case .linux: return LinuxToday()
        case .ctDefer: return ContextTrackingDefer()
        case .catchUp: return CatchUpAtEntry()
        case .hwBroadcast: return HardwareBroadcast()
        case .cpuflags: return CPUFlagsPolicy(exitPolicy: .strict)
        case .cpuflagsLazy: return CPUFlagsPolicy(exitPolicy: .lazy)
        case .cpuflagsAdaptive: return CPUFlagsPolicy(exitPolicy: .adaptive)
        }
    }

    /// The core's configuration for the isolated CPUs.
    var config: ProtocolConfig { model.coreConfig }

    /// True for the policies built on context tracking (their transitions cost
    /// `contextTrackingAtomicsPerRoundTrip`, a model input); the others are charged the
    /// atomics the core actually makes.
    var usesContextTracking: Bool { model.usesContextTracking }

    /// Where this policy's atomics per user round trip come from.
    public var atomicsSource: String {
        usesContextTracking ? "model input (costs.contextTrackingAtomicsPerRoundTrip)" : "counted from the core's calls"
    }

    public var summary: String { model.summary }
}

/// What the simulator asks a policy: how it routes each piece of work to each target,
/// and what it charges at an isolated CPU's entry.
protocol PolicyModel {
    var summary: String { get }
    /// The core's configuration for the isolated CPUs.
    var coreConfig: ProtocolConfig { get }
    var usesContextTracking: Bool { get }
    /// The delivery of `kind` to each of `targets` (the requester `core.cpu` skipped),
    /// in order. `machine` says which CPUs are isolated. Default: the core's routes for
    /// what Linux routes by mode today, `route(_:to:core:machine:)` for the rest.
    func routes(_ kind: WorkKind, to targets: [Int], core: CPUFlags<SimPlatform>, machine: RoutingContext)
        -> [(target: Int, delivery: Delivery)]
    /// A baseline policy's own decision for one target (not called for the kinds Linux
    /// routes by mode, nor by policies that take every route from the core).
    func route(_ kind: WorkKind, to target: Int, core: CPUFlags<SimPlatform>, machine: RoutingContext) -> Delivery
    /// Work an isolated CPU's entry does whatever it owes (the v8 catch-up sequence, the
    /// RFC's COALESCE_TLBI flush), ns.
    func unconditionalEntryWorkNs(_ config: MachineConfig) -> Double
}

/// What a policy may look at besides the words: the machine's shape and options.
struct RoutingContext {
    var isolated: [Bool]
    var config: MachineConfig
}

extension PolicyModel {
    func unconditionalEntryWorkNs(_ config: MachineConfig) -> Double { 0 }

    func routes(_ kind: WorkKind, to targets: [Int], core: CPUFlags<SimPlatform>, machine: RoutingContext)
        -> [(target: Int, delivery: Delivery)] {
        if routedByModeToday(kind) { return coreRoutes(kind, to: targets, core: core) }
        return targets.filter { $0 != core.cpu }.map { ($0, route(kind, to: $0, core: core, machine: machine)) }
    }

    /// The core's own routes: what cpu_flags does, and what every policy does for the
    /// kinds Linux already routes by mode today (RCU's EQS skip, the polling-idle wake
    /// of `set_nr_if_polling`).
    func coreRoutes(_ kind: WorkKind, to targets: [Int], core: CPUFlags<SimPlatform>) -> [(target: Int, delivery: Delivery)] {
        core.submit(kind, to: targets, delivery: .decideOnly).map { ($0.target, Delivery($0.route)) }
    }

    /// True for the kinds Linux already routes by the target's mode.
    func routedByModeToday(_ kind: WorkKind) -> Bool {
        kind.workClass == .rcuIdleSkips || kind.workClass == .wakesByBit
    }
}
