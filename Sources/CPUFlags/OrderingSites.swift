import Atomics

/// Every place where the core asks for more than a relaxed access (an acquire, a
/// release, acq_rel, seq_cst, or a full fence), by name, so that each ordering argument
/// in the comments next to them can be checked: an ordering mutant weakens one site
/// (`Weakening`), and the explorer says under which memory model a run of the standard
/// scenarios then breaks an invariant, or that none does (`cpuflags mutants
/// --orderings`). Like `Mutations`, a weakening is a value in `ProtocolConfig`, never a
/// second copy of a transition; empty in every real use.
///
/// Mutant-only paths (the wrong entry variants, `remote-plain-store`, the stale NMI
/// restore) are not sites: weakening a wrong variant shows nothing.
public enum OrderingSite: UInt8, CaseIterable, Sendable, Hashable, Codable {
    /// exitToUser: the release store of USER (RCU 1a, a pinner's acquire).
    case exitStore
    /// enterIdle: the release store of IDLE.
    case idleStore
    /// enterFromUser / exit from idle: the seq_cst fetch-add that leaves the EQS.
    case entryRMW
    /// Entry with work owed: the release store that clears the work bits.
    case entryClearStore
    /// Entry: the acquire wait for the pin count to drop to zero.
    case pinnedWait
    /// pollIdle: the acquire wait on the own word (pairs with the waker's CAS).
    case pollIdleWait
    /// NMI exit: the release store back to the EQS.
    case nmiExitStore
    /// A remote request: the acq_rel compare-and-swap that sets a work bit.
    case remoteCAS
    /// countThenCheck pinning: the full fence between the count store and the mode load.
    case pinFence
    /// Pinning: the acquire load of the target's word.
    case pinWordLoad
    /// flagInWord pinning: the acq_rel fetch-add of the pin count.
    case pinCountAdd
    /// countThenCheck unpin: the release store of the count.
    case unpinCountStore
    /// flagInWord unpin: the release fetch-sub of the count.
    case unpinCountSub
    /// Grace period: the full fence after unpublishing, before sampling.
    case gracePeriodFence
    /// Grace period: the acquire sample of a CPU's word.
    case rcuSample
    /// Grace period: the acquire wait for a CPU's quiescent state.
    case gracePeriodWait
    /// Queueing a callback: the release fetch-or into the target's queue.
    case callbackEnqueue
    /// Taking the callbacks: the acquire exchange of the queue.
    case callbackTake
    /// The membarrier IPI handler's full fence.
    case membarrierFence
    /// countThenCheck: the acquire compare-and-swap that takes the per-target pin lock.
    case pinLockAcquire
    /// countThenCheck: the release store that frees the pin lock.
    case pinLockRelease

    /// The ordering the core declares there.
    public var declared: DeclaredOrdering {
        switch self {
        case .exitStore, .idleStore, .entryClearStore, .nmiExitStore, .unpinCountStore, .unpinCountSub, .callbackEnqueue, .pinLockRelease:
            return .release
        case .pinnedWait, .pollIdleWait, .pinWordLoad, .rcuSample, .gracePeriodWait, .callbackTake, .pinLockAcquire:
            return .acquire
        case .remoteCAS, .pinCountAdd: return .acquireRelease
        case .entryRMW: return .sequentiallyConsistent
        case .pinFence, .gracePeriodFence, .membarrierFence: return .fullFence
        }
    }

    /// The name used on the command line and in tables (`exit-store`).
    public var name: String {
        switch self {
        case .exitStore: return "exit-store"
        case .idleStore: return "idle-store"
        case .entryRMW: return "entry-rmw"
        case .entryClearStore: return "entry-clear-store"
        case .pinnedWait: return "pinned-wait"
        case .pollIdleWait: return "poll-idle-wait"
        case .nmiExitStore: return "nmi-exit-store"
        case .remoteCAS: return "remote-cas"
        case .pinFence: return "pin-fence"
        case .pinWordLoad: return "pin-word-load"
        case .pinCountAdd: return "pin-count-add"
        case .unpinCountStore: return "unpin-count-store"
        case .unpinCountSub: return "unpin-count-sub"
        case .gracePeriodFence: return "grace-period-fence"
        case .rcuSample: return "rcu-sample"
        case .gracePeriodWait: return "grace-period-wait"
        case .callbackEnqueue: return "callback-enqueue"
        case .callbackTake: return "callback-take"
        case .membarrierFence: return "membarrier-fence"
        case .pinLockAcquire: return "pin-lock-acquire"
        case .pinLockRelease: return "pin-lock-release"
        }
    }

    @inlinable var bit: UInt32 { 1 << UInt32(rawValue) }
}

/// What a site asks for.
public enum DeclaredOrdering: String, Sendable, Hashable, Codable {
    case acquire, release
    case acquireRelease = "acq_rel"
    case sequentiallyConsistent = "seq_cst"
    case fullFence = "full fence"

    /// The ways to weaken it, one step each.
    public var weakenings: [Weakening.Step] {
        switch self {
        case .acquire: return [.dropAcquire]
        case .release: return [.dropRelease]
        case .acquireRelease: return [.dropAcquire, .dropRelease]
        case .sequentiallyConsistent: return [.dropSequentialConsistency]
        case .fullFence: return [.dropFence]
        }
    }
}

/// The sites whose ordering is weakened, and how: bit `site.rawValue` of each mask.
public struct Weakening: Hashable, Sendable {
    /// One step down from what a site declares.
    public enum Step: String, CaseIterable, Sendable, Hashable, Codable {
        /// acquire → relaxed, acq_rel → release.
        case dropAcquire = "no-acquire"
        /// release → relaxed, acq_rel → acquire.
        case dropRelease = "no-release"
        /// seq_cst → acq_rel (or acquire for a load, release for a store).
        case dropSequentialConsistency = "no-seq-cst"
        /// A full fence → nothing.
        case dropFence = "no-fence"
    }

    @usableFromInline var acquire: UInt32 = 0
    @usableFromInline var release: UInt32 = 0
    @usableFromInline var sequential: UInt32 = 0

    @inlinable public init() {}

    /// One site weakened one step.
    @inlinable public init(_ site: OrderingSite, _ step: Step) {
        precondition(site.declared.weakenings.contains(step), "\(site.name) is \(site.declared.rawValue): \(step.rawValue) does not apply")
        switch step {
        case .dropAcquire: acquire = site.bit
        case .dropRelease: release = site.bit
        case .dropSequentialConsistency, .dropFence: sequential = site.bit
        }
    }

    @inlinable public var isEmpty: Bool { acquire | release | sequential == 0 }

    /// Both weakenings at once.
    @inlinable public mutating func formUnion(_ o: Weakening) {
        acquire |= o.acquire
        release |= o.release
        sequential |= o.sequential
    }

    // The weakened orderings. A load or store keeps what the site declares unless its
    // site's bit is set; the checks are a few bit tests on a value that is zero in every
    // real configuration.

    @inlinable public func load(_ o: AtomicLoadOrdering, _ s: OrderingSite) -> AtomicLoadOrdering {
        if isEmpty { return o }
        if o == .sequentiallyConsistent && sequential & s.bit != 0 { return .acquiring }
        if o == .acquiring && acquire & s.bit != 0 { return .relaxed }
        return o
    }

    @inlinable public func store(_ o: AtomicStoreOrdering, _ s: OrderingSite) -> AtomicStoreOrdering {
        if isEmpty { return o }
        if o == .sequentiallyConsistent && sequential & s.bit != 0 { return .releasing }
        if o == .releasing && release & s.bit != 0 { return .relaxed }
        return o
    }

    @inlinable public func update(_ o: AtomicUpdateOrdering, _ s: OrderingSite) -> AtomicUpdateOrdering {
        if isEmpty { return o }
        var o = o
        if o == .sequentiallyConsistent && sequential & s.bit != 0 { o = .acquiringAndReleasing }
        let dropA = acquire & s.bit != 0, dropR = release & s.bit != 0
        switch o {
        case .acquiringAndReleasing where dropA && dropR: return .relaxed
        case .acquiringAndReleasing where dropA: return .releasing
        case .acquiringAndReleasing where dropR: return .acquiring
        case .acquiring where dropA: return .relaxed
        case .releasing where dropR: return .relaxed
        default: return o
        }
    }

    @inlinable public func keepsFence(_ s: OrderingSite) -> Bool { sequential & s.bit == 0 }
}

extension Mutations {
    /// The named mutants that are ordering weakenings, as weakenings: each is one or
    /// two sites one step down, so the core has one mechanism for a weaker ordering
    /// (its sites) and no `has(...)` test beside any of them.
    @inlinable public var weakening: Weakening {
        var w = Weakening()
        if contains(.exitStoreRelaxed) {
            w.formUnion(Weakening(.exitStore, .dropRelease))
            w.formUnion(Weakening(.idleStore, .dropRelease))
        }
        if contains(.pinNoFence) { w.formUnion(Weakening(.pinFence, .dropFence)) }
        if contains(.gracePeriodNoFence) { w.formUnion(Weakening(.gracePeriodFence, .dropFence)) }
        return w
    }
}

extension CPUFlags {
    // The core's orderings, named by site (OrderingSite). Debug builds check that the
    // call site asks for what the catalog says it declares.

    @inlinable func ordered(_ o: AtomicLoadOrdering, _ s: OrderingSite) -> AtomicLoadOrdering {
        assert(o == (s.declared == .sequentiallyConsistent ? .sequentiallyConsistent : .acquiring), "\(s.name): catalog says \(s.declared.rawValue)")
        return config.orderings.load(o, s)
    }

    @inlinable func ordered(_ o: AtomicStoreOrdering, _ s: OrderingSite) -> AtomicStoreOrdering {
        assert(o == (s.declared == .sequentiallyConsistent ? .sequentiallyConsistent : .releasing), "\(s.name): catalog says \(s.declared.rawValue)")
        return config.orderings.store(o, s)
    }

    @inlinable func ordered(_ o: AtomicUpdateOrdering, _ s: OrderingSite) -> AtomicUpdateOrdering {
        assert({
            switch s.declared {
            case .acquire: return o == .acquiring
            case .release: return o == .releasing
            case .acquireRelease: return o == .acquiringAndReleasing
            case .sequentiallyConsistent: return o == .sequentiallyConsistent
            case .fullFence: return false
            }
        }(), "\(s.name): catalog says \(s.declared.rawValue)")
        return config.orderings.update(o, s)
    }

    /// A full fence at site `s` (kept unless weakened).
    @inlinable func fence(_ s: OrderingSite) throws(P.Interrupt) {
        assert(s.declared == .fullFence, "\(s.name): catalog says \(s.declared.rawValue)")
        if config.orderings.keepsFence(s) { try platform.fullFence() }
    }
}
