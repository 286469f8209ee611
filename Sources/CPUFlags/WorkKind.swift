/// The kinds of cross-CPU work the kernel sends today (BRIEF §1), each with its class:
/// the one place that says how a kind may reach a CPU that is not in the kernel, and
/// what the kind does when it arrives by interrupt (`CPUFlags.runHandler`).
///
/// Adding a kind: a case here with its class, its work bit (if deferrable) and its
/// callback need; a line in `CPUFlags.runHandler` if it has a protocol-level effect on
/// arrival; and, only if it brings a new CPU-local effect, the platforms'
/// `interruptWork` hooks.
public enum WorkKind: String, Hashable, Sendable, CaseIterable, Codable {
    case kernelTLBFlush      // do_flush_tlb_all, do_kernel_range_flush
    case syncCore            // do_sync_core (text patching)
    /// A callback queued for the target that may wait for its next entry (per-CPU
    /// work the target runs itself, before any kernel code).
    case queuedCallback
    case cacheDrain          // per-CPU cache drains: run on behalf while pinned
    case userTLBFlush        // flush_tlb_func: user mm, touches the target's registers
    case reschedule          // sched_ttwu_pending, resched, nohz_csd_func
    case tlbRemoveTableSync  // tlb_remove_table_smp_sync: the interrupt itself is the sync
    case membarrier          // ipi_mb
    case rcuExpedited        // rcu_exp_handler

    /// How the work may reach a target that is not in the kernel.
    public var workClass: WorkClass {
        switch self {
        case .kernelTLBFlush, .syncCore, .queuedCallback, .tlbRemoveTableSync: return .deferrable
        case .cacheDrain: return .onBehalf
        case .userTLBFlush, .membarrier: return .mustInterrupt
        case .reschedule: return .wakesByBit
        case .rcuExpedited: return .rcuIdleSkips
        }
    }

    /// The work bit that defers this kind, if any.
    public var bit: Work? {
        switch self {
        case .kernelTLBFlush: return .kernelTLBFlush
        case .syncCore: return .syncCore
        case .queuedCallback: return .callbacks
        // GUP-fast cannot run on a CPU that is in user mode or idle, so there is nothing
        // to synchronize with: the request is satisfied without setting any bit (the
        // CAS still checks the mode and publishes the requester's stores).
        case .tlbRemoveTableSync: return []
        default: return nil
        }
    }

    /// The kind carries a callback that is queued for the target before it is routed
    /// (and run by the target, or by a pinner on its behalf).
    public var queuesCallback: Bool { self == .queuedCallback || self == .cacheDrain }
}

/// The class of a work kind: which routes it may take.
public enum WorkClass: String, Hashable, Sendable, Codable {
    /// Affects only kernel space: a USER or IDLE target gets a bit, not an interrupt.
    case deferrable
    /// Needs to synchronize with the target but not touch its registers: a pinner may
    /// run it on the target's behalf while the target is pinned in USER mode.
    case onBehalf
    /// Touches the target's architectural state: always interrupts.
    case mustInterrupt
    /// Scheduling work: a polling idle target is woken by the WAKE bit
    /// (`set_nr_if_polling`), any other target interrupted.
    case wakesByBit
    /// RCU: a CPU seen in an extended quiescent state is skipped, others interrupted.
    case rcuIdleSkips
}

/// Which way one piece of work went to one target (`CPUFlags.route`).
public enum Route: Hashable, Sendable, CustomStringConvertible {
    /// A work bit was set in the target's word (or, for a kind without a bit, the
    /// target's mode made the request moot); the target runs the work before any
    /// kernel code. The requester may consider it done.
    case deferred
    /// The target was pinned and the requester ran the work on its behalf.
    case onBehalf
    /// RCU: the target was in an extended quiescent state.
    case skipped
    /// A polling idle target was woken by the WAKE bit.
    case wokenByBit
    /// The target must be interrupted. `observed` is the word that said so, when the
    /// route read one (a must-interrupt kind reads nothing).
    case interrupt(observed: UInt64?)

    public var description: String {
        switch self {
        case .deferred: return "deferred"
        case .onBehalf: return "onBehalf"
        case .skipped: return "skipped"
        case .wokenByBit: return "wokenByBit"
        case .interrupt: return "interrupted"
        }
    }

    /// Deferral is real (BRIEF §4): a requester never decides to interrupt, for work
    /// it could have deferred, a target it saw in USER or IDLE. Returns what is wrong,
    /// or nil. Shared by every harness that checks it.
    public func deferralViolation(kind: WorkKind, target: Int, requester: Int) -> String? {
        guard case .interrupt(let observed?) = self, kind.workClass == WorkClass.deferrable || kind.workClass == WorkClass.onBehalf
        else { return nil }
        let m = CPUWord(raw: observed).mode
        // A word tagged for another CPU (§2.12: the task migrated) says nothing about
        // the target.
        guard m.defersWork && CPUWord(raw: observed).isOn(target) else { return nil }
        return "cpu\(requester) decided to interrupt cpu\(target) for \(kind.rawValue) although it saw \(m)"
    }
}
