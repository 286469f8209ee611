import Atomics

/// A per-CPU shared cell the protocol touches. Every shared access in the core names one.
public enum Cell: UInt8, Hashable, Sendable, CaseIterable {
    /// The cpu_flags word (`CPUWord`).
    case word = 0
    /// How many pinners currently hold this CPU (BRIEF §2.11).
    case pinCount = 1
    /// Pending queued callbacks for this CPU: a set of callback ids, added with
    /// fetch-or and taken all at once with exchange (the `llist_add`/`llist_del_all`
    /// shape, over a bounded id space of 64).
    case callbacks = 2
    /// The owner's private copy of its RCU counter (as a word with that counter).
    /// Never read by another CPU.
    case counter = 3
    /// `countThenCheck`'s per-target pin lock: 0 free, 1 held. Pinners of this CPU
    /// take it around their update of its pin count.
    case pinLock = 4
    /// The task whose flags word is this CPU's (the kernel's `rq->curr`), for the §2.12
    /// variant (`WordPlacement.perTask`) only. Written by the CPU itself
    /// (`switchTask`), read by requesters to find the word.
    case current = 5

    public var description: String {
        switch self {
        case .word: return "word"
        case .pinCount: return "pins"
        case .callbacks: return "cbq"
        case .counter: return "ctr"
        case .pinLock: return "pinlock"
        case .current: return "current"
        }
    }
}

/// One shared location: a cell of one CPU.
public struct Location: Hashable, Sendable, CustomStringConvertible {
    public var cell: Cell
    public var cpu: Int
    @inlinable public init(_ cell: Cell, _ cpu: Int) {
        self.cell = cell
        self.cpu = cpu
    }
    public var description: String { "\(cell)[\(cpu)]" }
}

/// Where kernel code on a CPU runs from, for the platform's bookkeeping.
public enum KernelContext: UInt8, Hashable, Sendable {
    case task, irq, nmi
}

/// The memory and the CPU-local effects the protocol core is generic over.
///
/// Two conformers exist: `HardwarePlatform` (real atomics, empty hooks: the cost of a
/// hand-written version) and the explorer's model platform (every call a scheduling
/// point, hooks drive ghost state). The core calls nothing else, so the explorer checks
/// exactly the code that runs on hardware.
///
/// `Interrupt` is how a model suspends the core in the middle of a transition; on
/// hardware it is `Never` and every `try` compiles away.
public protocol Platform {
    associatedtype Interrupt: Error

    var cpuCount: Int { get }

    // MARK: Shared memory

    func load(_ at: Location, ordering: AtomicLoadOrdering) throws(Interrupt) -> UInt64
    func store(_ value: UInt64, at: Location, ordering: AtomicStoreOrdering) throws(Interrupt)
    /// Owner-private cells (`Cell.counter`): only the owning CPU reads or writes them,
    /// so plain accesses with no ordering. A model need not make them scheduling
    /// points: nothing else can observe them.
    func loadPrivate(_ at: Location) throws(Interrupt) -> UInt64
    func storePrivate(_ value: UInt64, at: Location) throws(Interrupt)
    func exchange(_ value: UInt64, at: Location, ordering: AtomicUpdateOrdering) throws(Interrupt) -> UInt64
    func compareExchange(
        expected: UInt64, desired: UInt64, at: Location, ordering: AtomicUpdateOrdering
    ) throws(Interrupt) -> (exchanged: Bool, original: UInt64)
    /// Wrapping add; returns the original value.
    func fetchAdd(_ delta: UInt64, at: Location, ordering: AtomicUpdateOrdering) throws(Interrupt) -> UInt64
    /// Bitwise or; returns the original value.
    func fetchOr(_ bits: UInt64, at: Location, ordering: AtomicUpdateOrdering) throws(Interrupt) -> UInt64
    /// A full fence (`smp_mb()`, `mfence`).
    func fullFence() throws(Interrupt)
    /// Spins until `condition` holds for the value at `at`, loading with `ordering`;
    /// returns the value that satisfied it. A model treats this as one load that is
    /// enabled only when the condition holds, which keeps spin loops finite.
    func waitUntil(
        _ at: Location, ordering: AtomicLoadOrdering, _ condition: (UInt64) -> Bool
    ) throws(Interrupt) -> UInt64

    // MARK: Effects on the executing CPU (empty on hardware, ghost state in the model)

    /// Write CR3 (under PTI the user or kernel page tables), flushing the TLB when
    /// `flushTLB` is set: the deferred kernel TLB flush folded into the one CR3 write.
    /// With PTI off, the switch is a no-op and the flush is an explicit one.
    func switchAddressSpace(cpu: Int, toKernel: Bool, flushTLB: Bool) throws(Interrupt)
    /// Serialize the instruction stream (`sync_core`).
    func serialize(cpu: Int) throws(Interrupt)
    /// Run the queued callbacks `ids` owed by `target`, on `runner` (the target itself,
    /// or a pinner working on its behalf).
    func runCallbacks(_ ids: UInt64, of target: Int, on runner: Int) throws(Interrupt)
    /// From here on, ordinary kernel code may run on `cpu` (instrumentable code that
    /// may touch vmalloc space, kernel stacks and patchable text).
    func kernelCodeBegins(cpu: Int, context: KernelContext) throws(Interrupt)
    /// `runner` starts (`begins`) or ends work on behalf of the pinned `target`.
    func onBehalf(of target: Int, by runner: Int, begins: Bool) throws(Interrupt)
    /// Ordinary kernel code ends on `cpu`: what follows is the exit path's late window
    /// (counts as `entering`, USER/INDETERMINATE/IDLE) and must not touch vmalloc space
    /// or patchable text.
    func kernelCodeEnds(cpu: Int, entering: Mode) throws(Interrupt)
    /// A grace period sampled `target`'s word and found it not RCU-idle: it now waits
    /// for a quiescent state (a tracepoint on hardware; the explorer checks (3) with it).
    func rcuWaits(on target: Int, snapshot: UInt64) throws(Interrupt)
    /// `cpu` is entering the idle loop: no kernel code until it exits.
    func idleBegins(cpu: Int) throws(Interrupt)

    // MARK: Routing and interrupts (what the harness does around a decision of the core)

    /// Callback `id` was queued for `target` (after the release fetch-or that queued it).
    func callbackQueued(_ id: Int, for target: Int) throws(Interrupt)
    /// `requester` decided `route` for `kind` to `target`, right after the access that
    /// decided it and before the next target's (a model records what each route
    /// promised at that point: the owed-work ledger, "deferral is real").
    func routed(_ kind: WorkKind, to target: Int, by requester: Int, _ route: Route) throws(Interrupt)
    /// Interrupt `targets` for `kind`, all at once (one broadcast of IPIs). Must be a
    /// full barrier for the requester's prior stores, as Linux's is: smp_call_function
    /// queues each CSD with a locked `llist_add`, and x2APIC IPI writes are preceded by
    /// `mfence` (`weak_wrmsr_fence`); the target's handler must see the new PTE.
    func sendInterrupts(_ targets: [Int], kind: WorkKind, from requester: Int) throws(Interrupt)
    /// Wait until every interrupt `requester` sent has been handled (on_each_cpu with
    /// wait = 1).
    func waitForInterrupts(from requester: Int) throws(Interrupt)
    /// The `index`-th kind an arriving interrupt brought to `cpu` has run its
    /// protocol-level part (`CPUFlags.runHandler`); this is the CPU-local rest: setting
    /// need_resched, rcu_exp_handler's report, a user TLB flush, and telling the sender
    /// that this one is done.
    func interruptWork(_ kind: WorkKind, index: Int, on cpu: Int) throws(Interrupt)
    /// Expedited RCU: `target` reported a quiescent state itself, from the interrupt an
    /// expedited grace period sent it (rcu_exp_handler), so the grace period need not
    /// wait for its word to change. Read inside a wait's condition: no access.
    func quiescentStateReported(by target: Int) -> Bool

    /// The core began `operation` (its public transitions and compositions). Not an
    /// access and not a scheduling point: a model records which operations its runs
    /// reached, so that a test can fail when one is never explored. Empty on hardware.
    func reached(_ operation: CoreOperation)

    /// Checks an invariant of the protocol on the value at `at`, as this CPU sees it.
    /// Debug builds only on hardware (`assert`); in the explorer, checked once per step
    /// and reported as a violation with its counterexample. Never a scheduling point,
    /// and nothing may depend on it but the check.
    func check(_ at: Location, _ holds: (UInt64) -> Bool, _ message: @autoclosure () -> String) throws(Interrupt)
    /// A limit the core relies on was exceeded (for example CAS retries). The message
    /// says which limit and what to do.
    func limitExceeded(_ message: String) throws(Interrupt) -> Never
}

/// The core's public transitions and compositions, for `Platform.reached`. Numbered
/// (a bit each) so that a model can record them in a mask: `reached` runs on every
/// replayed access of the explorer, and a set insert there cost it 8% of its
/// instructions.
public enum CoreOperation: UInt8, Hashable, Sendable, CaseIterable {
    case contextSwitch, exitToUser, enterFromUser, enterIdle, pollIdle, exitIdle
    case irqEnter, irqExit, nmiEnter, nmiExit
    case request, wake, route, submit, handleInterrupt, runHandler
    case enqueueCallback, queueCallback, runQueuedCallbacks
    case tryPin, unpin, runOnBehalf
    case rcuSample, gracePeriod, gracePeriodStart, expeditedGracePeriodStart, gracePeriodWait
    case switchTask

    @inlinable public var bit: UInt32 { 1 << UInt32(rawValue) }
    /// The case's name (an enum's default description).
    public var name: String { String(describing: self) }
}
