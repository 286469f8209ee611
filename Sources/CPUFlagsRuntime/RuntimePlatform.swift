import Atomics
import CPUFlags
import Glibc

/// Why a runtime call failed: a timeout naming the worker, or a system call's errno.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The protocol core on real threads: the core's cells on real atomics (a
/// `HardwarePlatform`, to which every memory access is forwarded: one implementation of
/// the orderings), plus what a kernel does around the core with IPIs, done here with a
/// thread-directed real-time signal:
///
/// - `sendInterrupts` marks the kinds in the target's mailbox, takes a ticket and sends
///   the signal (`pthread_kill`); the handler (`SignalHandler`) runs the core's own
///   `irqEnter`, `runHandler` and `irqExit` on the target thread, then publishes the
///   ticket it served; `waitForInterrupts` waits for the tickets, with a timeout that
///   names the worker.
/// - `waitUntil` (grace periods, the entry's wait for pinners) spins; a requester's copy
///   gives up after its timeout with an error naming the worker it waited for.
///
/// A value type holding raw pointers only: copying it (every `CPUFlags` holds one)
/// costs no reference counting, and nothing here allocates, so the signal handler can
/// use it (see `SignalHandler` for what async-signal-safety requires).
public struct RuntimePlatform: Platform, @unchecked Sendable {
    public typealias Interrupt = RuntimeError

    public let hw: HardwarePlatform
    /// Per-slot cells beside the core's, one 64-byte line per slot (`Extra`).
    @usableFromInline let extra: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
    /// Requester-private (under the runtime's requester lock): the ticket each target
    /// must reach, and the expedited-RCU report count seen before the signal.
    @usableFromInline let owedTickets: UnsafeMutablePointer<UInt64>
    @usableFromInline let qsBaseline: UnsafeMutablePointer<UInt64>
    /// The signal, and how long a requester waits (nil: forever, the workers' copies).
    public let signal: Int32
    @usableFromInline let timeoutNs: UInt64?

    /// The extra cells of a slot.
    enum Extra: Int {
        /// Kinds waiting for the signal handler (a bit per `WorkKind` index).
        case mailbox = 0
        /// Tickets taken by requesters that signalled this slot.
        case requested = 1
        /// The last ticket the slot's handler served.
        case served = 2
        /// Quiescent states the slot reported from an expedited grace period's signal.
        case qsReports = 3
        /// The slot's thread (`pthread_t`), 0 while no worker holds the slot.
        case thread = 4
        /// 1 while the worker runs a transition of the core: its "interrupts off"
        /// (the kernel runs its exit and entry paths with IRQs disabled). Owner-only,
        /// read by its own signal handler.
        case masked = 5
        /// 1 when a signal arrived while masked: the worker handles it when it unmasks.
        case deferredSignal = 6
    }

    @usableFromInline static let extraWords = 8

    /// Allocates everything for `slots` CPUs (workers plus the requester slot).
    init(slots: Int, signal: Int32, onCallbacks: @escaping @Sendable (UInt64, Int, Int) -> Void) {
        hw = HardwarePlatform(cpuCount: slots, onCallbacks: onCallbacks)
        let n = slots * Self.extraWords
        extra = .allocate(capacity: n)
        extra.initialize(repeating: .init(0), count: n)
        owedTickets = .allocate(capacity: slots)
        owedTickets.initialize(repeating: 0, count: slots)
        qsBaseline = .allocate(capacity: slots)
        qsBaseline.initialize(repeating: 0, count: slots)
        self.signal = signal
        timeoutNs = nil
    }

    private init(copying p: RuntimePlatform, timeoutNs: UInt64?) {
        hw = p.hw
        extra = p.extra
        owedTickets = p.owedTickets
        qsBaseline = p.qsBaseline
        signal = p.signal
        self.timeoutNs = timeoutNs
    }

    /// The same memory, for a requester that gives up after `ns`.
    func withTimeout(_ ns: UInt64) -> RuntimePlatform { RuntimePlatform(copying: self, timeoutNs: ns) }

    func deallocate() {
        hw.deallocate()
        extra.deallocate()
        owedTickets.deallocate()
        qsBaseline.deallocate()
    }

    func cell(_ e: Extra, _ slot: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: extra + (slot * Self.extraWords + e.rawValue))
    }

    /// The kinds by mailbox bit. A stored table (`allCases` builds an array on each
    /// use, an allocation the signal handler must not make); touched by `install`
    /// before any handler can run, so its lazy initialization is done by then.
    static let kinds: [WorkKind] = WorkKind.allCases

    /// The bit of `kind` in a mailbox.
    static func mailboxBit(_ kind: WorkKind) -> UInt64 { UInt64(1) << UInt64(kinds.firstIndex(of: kind)!) }

    public var cpuCount: Int { hw.cpuCount }

    // MARK: Memory: the hardware platform's, unchanged.

    @inlinable public func load(_ at: Location, ordering: AtomicLoadOrdering) -> UInt64 { hw.load(at, ordering: ordering) }
    @inlinable public func store(_ value: UInt64, at: Location, ordering: AtomicStoreOrdering) {
        hw.store(value, at: at, ordering: ordering)
    }
    @inlinable public func loadPrivate(_ at: Location) -> UInt64 { hw.loadPrivate(at) }
    @inlinable public func storePrivate(_ value: UInt64, at: Location) { hw.storePrivate(value, at: at) }
    @inlinable public func exchange(_ value: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 {
        hw.exchange(value, at: at, ordering: ordering)
    }
    @inlinable public func compareExchange(expected: UInt64, desired: UInt64, at: Location, ordering: AtomicUpdateOrdering)
        -> (exchanged: Bool, original: UInt64) {
        hw.compareExchange(expected: expected, desired: desired, at: at, ordering: ordering)
    }
    @inlinable public func fetchAdd(_ delta: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 {
        hw.fetchAdd(delta, at: at, ordering: ordering)
    }
    @inlinable public func fetchOr(_ bits: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 {
        hw.fetchOr(bits, at: at, ordering: ordering)
    }
    @inlinable public func fullFence() { hw.fullFence() }

    /// Spins until `condition` holds. A requester's copy gives up after its timeout
    /// (a grace period or a pin waiting on a worker that never comes back); a worker's
    /// copy (the entry waiting for its pinners) waits as long as it takes.
    @inlinable public func waitUntil(_ at: Location, ordering: AtomicLoadOrdering, _ condition: (UInt64) -> Bool)
        throws(RuntimeError) -> UInt64 {
        var spins = 0
        var deadline: UInt64 = 0
        while true {
            let v = hw.load(at, ordering: ordering)
            if condition(v) { return v }
            spins += 1
            if spins & 1023 == 0, let t = timeoutNs {
                let now = Clock.nowNs()
                if deadline == 0 { deadline = now + t } else if now > deadline {
                    throw RuntimeError("timed out after \(Double(t) / 1e9) s waiting for worker \(at.cpu) (its \(at.cell)): it has not passed a quiescent state or left its kernel stretch; is its thread blocked or gone?")
                }
                sched_yield()
            }
        }
    }

    // MARK: CPU-local effects: none on a thread (no TLB, no instruction stream to sync).

    @inlinable public func switchAddressSpace(cpu: Int, toKernel: Bool, flushTLB: Bool) {}
    @inlinable public func serialize(cpu: Int) {}
    @inlinable public func runCallbacks(_ ids: UInt64, of target: Int, on runner: Int) { hw.runCallbacks(ids, of: target, on: runner) }
    @inlinable public func kernelCodeBegins(cpu: Int, context: KernelContext) {}
    @inlinable public func idleBegins(cpu: Int) {}
    @inlinable public func kernelCodeEnds(cpu: Int, entering: Mode) {}
    @inlinable public func rcuWaits(on target: Int, snapshot: UInt64) {}
    @inlinable public func onBehalf(of target: Int, by runner: Int, begins: Bool) {}
    @inlinable public func callbackQueued(_ id: Int, for target: Int) {}
    @inlinable public func routed(_ kind: WorkKind, to target: Int, by requester: Int, _ route: Route) {}
    @inlinable public func reached(_ operation: CoreOperation) {}
    @inlinable public func check(_ at: Location, _ holds: (UInt64) -> Bool, _ message: @autoclosure () -> String) {
        hw.check(at, holds, message())
    }
    public func limitExceeded(_ message: String) throws(RuntimeError) -> Never { throw RuntimeError(message) }

    // MARK: Interrupts: real-time signals

    /// Signals each target. Per target, in this order: the expedited-RCU baseline (read
    /// before the signal can be handled), the kind's mailbox bit (fetch-or, acq_rel:
    /// a locked RMW, so also the full barrier that publishes the requester's prior
    /// stores, as Linux's llist_add + IPI is), then a ticket (fetch-add, acq_rel: the
    /// handler that acquires a ticket at or past ours also sees our mailbox bit, or the
    /// bit was taken by an earlier handler of that thread, which has finished), then the
    /// signal. A slot with no thread has nobody to run the work: an error.
    public func sendInterrupts(_ targets: [Int], kind: WorkKind, from requester: Int) throws(RuntimeError) {
        let bit = Self.mailboxBit(kind)
        for t in targets {
            let thread = cell(.thread, t).load(ordering: .acquiring)
            guard thread != 0 else {
                throw RuntimeError("worker \(t) is not registered, yet the core found it outside an extended quiescent state (an unregistered slot is idle)")
            }
            if kind == .rcuExpedited { qsBaseline[t] = cell(.qsReports, t).load(ordering: .acquiring) }
            _ = cell(.mailbox, t).loadThenBitwiseOr(with: bit, ordering: .acquiringAndReleasing)
            owedTickets[t] = cell(.requested, t).loadThenWrappingIncrement(ordering: .acquiringAndReleasing) &+ 1
            let r = pthread_kill(pthread_t(thread), signal)
            guard r == 0 else {
                throw RuntimeError("cannot signal worker \(t) (pthread_kill: \(String(cString: strerror(r)))); did its thread exit without unregistering?")
            }
        }
    }

    /// Waits until every target signalled since the last wait has served its ticket.
    public func waitForInterrupts(from requester: Int) throws(RuntimeError) {
        for t in 0..<cpuCount where owedTickets[t] != 0 {
            let ticket = owedTickets[t]
            owedTickets[t] = 0
            var spins = 0
            var deadline: UInt64 = 0
            // Acquire: pairs with the handler's release store of `served`, so what the
            // work did is visible to the requester when it returns.
            while cell(.served, t).load(ordering: .acquiring) < ticket {
                spins += 1
                if spins & 1023 == 0 {
                    let now = Clock.nowNs()
                    if let limit = timeoutNs {
                        if deadline == 0 { deadline = now + limit } else if now > deadline {
                            throw RuntimeError("timed out after \(Double(limit) / 1e9) s waiting for worker \(t) to handle its signal: is the signal blocked on its thread, or the thread stuck?")
                        }
                    }
                    sched_yield()
                }
            }
        }
    }

    /// In the handler: an expedited grace period's signal is a quiescent state report.
    /// Release: pairs with the requester's acquire in `quiescentStateReported`, so the
    /// worker's accesses before the report are visible to the code after the grace
    /// period (rcu_exp_handler's report).
    public func interruptWork(_ kind: WorkKind, index: Int, on cpu: Int) {
        if kind == .rcuExpedited { _ = cell(.qsReports, cpu).loadThenWrappingIncrement(ordering: .releasing) }
    }

    public func quiescentStateReported(by target: Int) -> Bool {
        cell(.qsReports, target).load(ordering: .acquiring) > qsBaseline[target]
    }
}

/// Monotonic nanoseconds (vDSO: no system call, async-signal-safe).
@usableFromInline enum Clock {
    @usableFromInline static func nowNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
