import Atomics

/// A per-CPU shared cell the protocol touches. Every shared access in the core names one.
public enum Cell: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
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

    public var description: String {
        switch self {
        case .word: return "word"
        case .pinCount: return "pins"
        case .callbacks: return "cbq"
        case .counter: return "ctr"
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
    /// Checks an invariant of the protocol on the value at `at`, as this CPU sees it.
    /// Debug builds only on hardware (`assert`); in the explorer, checked once per step
    /// and reported as a violation with its counterexample. Never a scheduling point,
    /// and nothing may depend on it but the check.
    func check(_ at: Location, _ holds: (UInt64) -> Bool, _ message: @autoclosure () -> String) throws(Interrupt)
    /// A limit the core relies on was exceeded (for example CAS retries). The message
    /// says which limit and what to do.
    func limitExceeded(_ message: String) throws(Interrupt) -> Never
}
