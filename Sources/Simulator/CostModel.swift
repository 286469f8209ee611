import CPUFlags

/// What each thing costs, in nanoseconds. Every parameter names its source; "estimate"
/// means no measurement in BRIEF backs it and a config file should override it.
public struct CostModel: Codable, Hashable, Sendable {
    /// One locked RMW on the word (BRIEF §6: two `xchg` 6.6 ns on this VM).
    public var atomicNs: Double = 3.3
    /// Sender side of an IPI: CSD queueing + APIC write (estimate).
    public var ipiSendNs: Double = 300
    /// From the send to the handler starting on the target (estimate for bare metal;
    /// BRIEF §6's pthread_kill round trip, 6.6-9.7 µs, is the VM-inflated analog).
    public var ipiLatencyNs: Double = 1_000
    /// Entry + exit around an interrupt that hits user mode, with context tracking
    /// (estimate; BRIEF §1: "microseconds of entry, handler and exit").
    public var interruptEntryExitNs: Double = 1_500
    /// Kernel TLB flush, full or range, including refills (BRIEF §1: an unconditional
    /// flush on entry took getpid from 770 to 1340 ns on a Xeon E5-2699).
    public var kernelTLBFlushNs: Double = 570
    /// Serializing the instruction stream (estimate).
    public var syncCoreNs: Double = 150
    /// Draining a per-CPU cache (estimate).
    public var cacheDrainNs: Double = 2_000
    /// A user-mm TLB flush on the target (as kernelTLBFlushNs).
    public var userTLBFlushNs: Double = 570
    /// Scheduler work for a remote wakeup / resched (estimate).
    public var rescheduleNs: Double = 2_000
    /// rcu_exp_handler (estimate).
    public var rcuExpHandlerNs: Double = 200
    /// tlb_remove_table_smp_sync: nothing but the interrupt.
    public var emptyHandlerNs: Double = 50
    /// Remote TLB invalidation by INVLPGB/RAR, paid by the requester (estimate).
    public var hardwareFlushNs: Double = 1_000
    /// Kernel time of one syscall of an isolated task (estimate).
    public var syscallKernelNs: Double = 300
    /// Atomics context tracking makes per user round trip on a nohz_full CPU
    /// (kernel/context_tracking.c: atomic_add_return on exit and on entry).
    public var contextTrackingAtomicsPerRoundTrip: Double = 2
    /// Until a normal grace period's forced-quiescent-state scan interrupts a CPU that
    /// stays non-idle (jiffies_till_first_fqs; estimate 3 ms).
    public var rcuForceQuiescentNs: Double = 3_000_000
    /// Until a housekeeping CPU reports a quiescent state (one tick at HZ=1000).
    public var housekeepingQuiescentNs: Double = 1_000_000

    public init() {}

    func handlerNs(_ kind: WorkKind) -> Double {
        switch kind {
        case .kernelTLBFlush: return kernelTLBFlushNs
        case .syncCore: return syncCoreNs
        case .cacheDrain, .queuedCallback: return cacheDrainNs
        case .userTLBFlush: return userTLBFlushNs
        case .reschedule: return rescheduleNs
        case .tlbRemoveTableSync: return emptyHandlerNs
        case .membarrier: return emptyHandlerNs
        case .rcuExpedited: return rcuExpHandlerNs
        }
    }
}

/// Housekeeping load: each source is a Poisson process with a rate per second.
public struct Workload: Codable, Hashable, Sendable {
    /// vmalloc/BPF churn: kernel TLB flush of every CPU (on_each_cpu).
    public var kernelTLBFlushPerSec: Double = 20
    /// Text-patching batches; each is three sync_core broadcasts (text_poke_bp).
    public var textPatchBatchesPerSec: Double = 2
    /// Expedited RCU grace periods.
    public var rcuExpeditedPerSec: Double = 5
    /// Normal RCU grace periods.
    public var rcuNormalPerSec: Double = 10
    /// User-mm TLB shootdowns: one isolated CPU (the mm's) each; never deferrable.
    public var userTLBShootdownPerSec: Double = 2
    /// Remote wakeups of an isolated task (reschedule IPI).
    public var wakeupsPerSec: Double = 2
    /// Per-CPU cache drains of every CPU (candidates for pinning).
    public var cacheDrainsPerSec: Double = 2
    /// Page-table-freeing syncs (tlb_remove_table_smp_sync) to every CPU.
    public var pageTableFreeSyncsPerSec: Double = 5
    /// Syscalls (or page faults) per second of each isolated task (default: none).
    public var isolatedSyscallsPerSec: Double = 0
    /// Idle periods per second of each isolated CPU (the task blocks; the CPU polls in
    /// idle, woken by a bit where the policy allows), and how long each lasts.
    public var isolatedIdlePeriodsPerSec: Double = 0
    public var isolatedIdleNs: Double = 1_000_000

    public init() {}
}

/// What happened to one target of one request.
public enum Delivery: String, Codable, Hashable, Sendable {
    case interrupted, deferred, skipped, onBehalf, hardware, wokenByBit

    /// The simulator's name for a route the core decided.
    init(_ route: Route) {
        switch route {
        case .deferred: self = .deferred
        case .onBehalf: self = .onBehalf
        case .skipped: self = .skipped
        case .wokenByBit: self = .wokenByBit
        case .interrupt: self = .interrupted
        }
    }
}
