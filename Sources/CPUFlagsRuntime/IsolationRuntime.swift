import Atomics
import CPUFlags
import Glibc
import Synchronization

/// The cpu_flags protocol on real threads: latency-critical worker threads play the
/// isolated CPUs, housekeeping threads the requesters, a real-time signal the IPI.
///
/// A worker registers on its own thread, says when it enters its isolated user stretch
/// (`Worker.enterUserStretch`) and when it comes back (`leaveUserStretch`), and may
/// idle. Housekeeping code asks workers to run work (`request`, `requestAll`): a worker
/// in its user stretch gets a bit in its word and runs the work when it comes back,
/// before anything else; the others get the signal (all at once), whose handler runs the
/// work, and the requester waits for them. `runOnBehalf` pins a worker in its user
/// stretch and runs the work on the requester's thread instead; `synchronize()` is an
/// RCU-like grace period on the same words. Every decision and transition is the
/// protocol core's (`CPUFlags`), on `RuntimePlatform`.
///
/// One runtime per process at a time (the signal handler is process-wide).
public final class IsolationRuntime: @unchecked Sendable {
    public struct Options: Sendable {
        /// Worker slots (1 to 63; each is a CPU of the core).
        public var workersMax = 8
        /// How workers exit to their user stretch (BRIEF §2.7).
        public var exitPolicy: ExitPolicy = .strict
        /// The signal standing in for the IPI (default SIGRTMIN+4: glibc keeps the first
        /// real-time signals for itself).
        public var signal: Int32 = __libc_current_sigrtmin() + 4
        /// How long a requester waits for a worker (a signal handled, a grace period, a
        /// pin) before it gives up with an error naming the worker.
        public var timeout: Duration = .seconds(5)
        public init() {}
    }

    public let options: Options
    /// Work kinds the user defined, by id (0..<64): the core's queued callbacks.
    let works: UnsafeMutablePointer<Unmanaged<WorkBox>?>
    /// Requests of each work id not run yet, per slot (slot * 64 + id). The core's
    /// callback queue is a set of ids (a second request of a work still queued adds
    /// nothing to it), so the count is what makes every request run exactly once: the
    /// requester adds one before queueing, the runner takes them all and runs as many.
    let pending: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    let workCount = Atomic<Int>(0)
    let platform: RuntimePlatform
    let requesterPlatform: RuntimePlatform
    let config: ProtocolConfig
    /// The requester slot: the core's CPU that requesters act as, one at a time.
    var requesterSlot: Int { options.workersMax }
    /// Serializes requesters (and registration changes against them).
    let requesterLock = Mutex<Void>(())
    private let shutDown = Atomic<Bool>(false)

    final class WorkBox {
        let run: @Sendable (Int) -> Void
        init(_ run: @escaping @Sendable (Int) -> Void) { self.run = run }
    }

    /// An id for a piece of work defined with `defineWork`.
    public struct WorkID: Hashable, Sendable {
        public let id: Int
    }

    public init(_ options: Options = Options()) throws(RuntimeError) {
        guard options.workersMax >= 1 && options.workersMax <= 63 else {
            throw RuntimeError("workersMax \(options.workersMax): expected 1 to 63")
        }
        self.options = options
        config = ProtocolConfig(exitPolicy: options.exitPolicy)
        let works = UnsafeMutablePointer<Unmanaged<WorkBox>?>.allocate(capacity: 64)
        works.initialize(repeating: nil, count: 64)
        self.works = works
        let pending = UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>.allocate(capacity: (options.workersMax + 1) * 64)
        pending.initialize(repeating: .init(0), count: (options.workersMax + 1) * 64)
        self.pending = pending
        // The core runs queued callbacks through this: `ids` is a set of work ids,
        // `target` the worker they were queued for. No allocation, no retain of the
        // boxes (they live until the runtime ends).
        // Shared by every thread that runs callbacks; written only by defineWork (under
        // the requester lock, before any request names the id) and at shutdown.
        nonisolated(unsafe) let table = works, counts = pending
        platform = RuntimePlatform(slots: options.workersMax + 1, signal: options.signal) { ids, target, _ in
            var bits = ids
            while bits != 0 {
                let i = bits.trailingZeroBitCount
                bits &= bits - 1
                // Acquire: pairs with the requester's release increment, so the work
                // sees what the requester did before asking.
                let n = UnsafeAtomic<Int>(at: counts + (target * 64 + i)).exchange(0, ordering: .acquiring)
                for _ in 0..<n { table[i]?._withUnsafeGuaranteedRef { $0.run(target) } }
            }
        }
        requesterPlatform = platform.withTimeout(UInt64(options.timeout.components.seconds) * 1_000_000_000
            + UInt64(options.timeout.components.attoseconds / 1_000_000_000))
        // Every worker slot starts idle (an extended quiescent state, so grace periods
        // and requests need nothing from a slot nobody holds); the requester slot is in
        // the kernel. Before any thread can see the cells.
        for s in 0..<options.workersMax {
            let cells = CPUWord.initialCells(.idle)
            platform.store(cells.word, at: Location(.word, s), ordering: .relaxed)
            platform.storePrivate(cells.counter, at: Location(.counter, s))
        }
        do {
            try SignalHandler.install(.init(platform: platform, config: config, workers: options.workersMax))
        } catch {
            // deinit runs after a throwing init of a class: it must not free these again.
            shutDown.store(true, ordering: .relaxed)
            platform.deallocate()
            works.deallocate()
            pending.deallocate()
            throw error
        }
    }

    /// Uninstalls the signal handler and frees the memory. Every worker must have
    /// unregistered (a precondition).
    public func shutdown() {
        guard !shutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for s in 0..<options.workersMax {
            precondition(platform.cell(.thread, s).load(ordering: .acquiring) == 0,
                         "IsolationRuntime.shutdown: worker \(s) is still registered; unregister every worker first")
        }
        SignalHandler.uninstall(signal: options.signal)
        for i in 0..<64 { works[i]?.release() }
        works.deallocate()
        pending.deallocate()
        platform.deallocate()
    }

    deinit { shutdown() }

    /// Defines a piece of work (at most 64). Each request of it runs `body` once (two
    /// requests before it ran: two runs, at the same point). `body(worker)` runs on the
    /// worker's thread
    /// before its next kernel stretch, in its signal handler, or on a requester's thread
    /// while the worker is pinned: it must be async-signal-safe (no allocation, no
    /// locks, no I/O other than write(2)) and touch only what the worker allows.
    public func defineWork(_ body: @escaping @Sendable (_ worker: Int) -> Void) throws(RuntimeError) -> WorkID {
        let id = requesterLock.withLock { _ in workCount.add(1, ordering: .acquiringAndReleasing).newValue - 1 }
        guard id < 64 else { throw RuntimeError("defineWork: at most 64 kinds of work per runtime") }
        // Release (the lock's): published before any request can name it.
        works[id] = Unmanaged.passRetained(WorkBox(body))
        return WorkID(id: id)
    }

    func core(_ slot: Int) -> CPUFlags<RuntimePlatform> { CPUFlags(platform: platform, cpu: slot, config: config) }
    var requester: CPUFlags<RuntimePlatform> { CPUFlags(platform: requesterPlatform, cpu: requesterSlot, config: config) }

    func checkWork(_ w: WorkID) {
        precondition(w.id >= 0 && w.id < workCount.load(ordering: .acquiring), "work id \(w.id) was not defined by this runtime")
    }

    /// One more request of `work` for each of `workers`, before it is queued. Release:
    /// what the requester did before is visible to the run (see `pending`).
    func count(_ work: WorkID, for workers: [Int]) {
        for w in workers { UnsafeAtomic<Int>(at: pending + (w * 64 + work.id)).wrappingIncrement(ordering: .releasing) }
    }

    func checkWorker(_ worker: Int) throws(RuntimeError) {
        guard worker >= 0 && worker < options.workersMax else {
            throw RuntimeError("worker \(worker): expected 0 to \(options.workersMax - 1)")
        }
    }

    // MARK: Requests

    /// Asks `worker` to run `work`: deferred to its next kernel stretch when it is in
    /// its user stretch (or idle), else by signal, and waited for. Returns the route.
    @discardableResult
    public func request(_ work: WorkID, on worker: Int) throws(RuntimeError) -> Route {
        try checkWorker(worker)
        return try submit(.queuedCallback, work, to: { [worker] })[0].route
    }

    /// Asks every registered worker to run `work`; the signals are sent at once.
    @discardableResult
    public func requestAll(_ work: WorkID) throws(RuntimeError) -> [(worker: Int, route: Route)] {
        try submit(.queuedCallback, work, to: registeredSlots).map { ($0.target, $0.route) }
    }

    /// Runs `work` for `worker` on this thread while the worker is pinned in its user
    /// stretch (its next entry waits until it is done); a worker in its kernel stretch
    /// gets the signal instead, as with `request`.
    @discardableResult
    public func runOnBehalf(_ work: WorkID, of worker: Int) throws(RuntimeError) -> Route {
        try checkWorker(worker)
        return try submit(.cacheDrain, work, to: { [worker] })[0].route
    }

    /// One submission of `work` as `kind` (queued callback or on-behalf drain) to the
    /// workers `targets()` names under the requester lock: counted, then the core's
    /// `submit` (route each, signal those to interrupt at once, wait for them).
    func submit(_ kind: WorkKind, _ work: WorkID, to targets: () -> [Int]) throws(RuntimeError) -> [(target: Int, route: Route)] {
        checkWork(work)
        return try requesterLock.withLock { _ throws(RuntimeError) in
            let workers = targets()
            count(work, for: workers)
            return try requester.submit(kind, to: workers, callback: work.id)
        }
    }

    /// Wakes `worker` from idle: by its WAKE bit when it polls, else by the signal
    /// (which interrupts a blocking system call).
    @discardableResult
    public func wake(_ worker: Int) throws(RuntimeError) -> Route {
        try checkWorker(worker)
        return try requesterLock.withLock { _ throws(RuntimeError) in
            try requester.submit(.reschedule, to: [worker], delivery: .send)[0].route
        }
    }

    /// Waits until every worker has passed a quiescent state (its user stretch, idle, a
    /// kernel entry) after this call began: the core's grace period. `expedited`
    /// signals the workers found in their kernel stretch, which report at once.
    public func synchronize(expedited: Bool = false) throws(RuntimeError) {
        try requesterLock.withLock { _ throws(RuntimeError) in
            defer {
                // An expedited grace period does not wait for its signals' tickets.
                for s in 0..<platform.cpuCount { platform.owedTickets[s] = 0 }
            }
            try requester.gracePeriod(expedited: expedited)
        }
    }

    /// Whether a worker holds slot `worker` now.
    public func isRegistered(_ worker: Int) -> Bool {
        worker >= 0 && worker < options.workersMax && platform.cell(.thread, worker).load(ordering: .acquiring) != 0
    }

    func registeredSlots() -> [Int] {
        (0..<options.workersMax).filter { platform.cell(.thread, $0).load(ordering: .acquiring) != 0 }
    }

    // MARK: Workers

    /// Registers the calling thread as a worker (optionally pinned to `cpu` with
    /// sched_setaffinity). The worker starts in its kernel stretch, having run whatever
    /// was deferred to its slot while nobody held it.
    public func register(pinTo cpu: Int? = nil) throws(RuntimeError) -> Worker {
        let me = UInt64(pthread_self())
        for s in 0..<options.workersMax {
            precondition(platform.cell(.thread, s).load(ordering: .acquiring) != me,
                         "register: this thread is already worker \(s); a thread registers once")
        }
        if let cpu {
            let e = ThreadAffinity.pinCurrentThread(to: [cpu])
            guard e == 0 else { throw RuntimeError("register(pinTo: \(cpu)): sched_setaffinity failed: \(String(cString: strerror(e)))") }
        }
        try SignalHandler.unblock(options.signal)
        return try requesterLock.withLock { _ throws(RuntimeError) in
            for s in 0..<options.workersMax {
                // Relaxed CAS under the lock: only registration writes the thread cells
                // (from 0), and the lock orders it against requesters.
                if platform.cell(.thread, s).compareExchange(expected: 0, desired: me, ordering: .acquiringAndReleasing).exchanged {
                    // Idle to the kernel: the slot's one RMW, running what was deferred.
                    try SignalHandler.masked(platform, s) { () throws(RuntimeError) in _ = try core(s).exitIdle() }
                    return Worker(runtime: self, slot: s, thread: pthread_self())
                }
            }
            throw RuntimeError("register: all \(options.workersMax) worker slots are taken (Options.workersMax)")
        }
    }

    /// Unregisters `worker` (on its own thread, in its kernel stretch): it goes idle, so
    /// requests made from now on are deferred to the slot's next holder, and nothing
    /// queued is lost. Serialized with requesters: none is between a decision to signal
    /// this worker and its handler's end.
    public func unregister(_ worker: Worker) {
        worker.checkThread("unregister")
        precondition(worker.mode == .kernel, "unregister worker \(worker.slot): it is in \(worker.mode), expected its kernel stretch (call leaveUserStretch first)")
        requesterLock.withLock { _ in
            // What a requester signalled and this thread has not handled yet runs now
            // (the handler's body on this thread, the same core path), then idle.
            SignalHandler.masked(platform, worker.slot) {
                if let ctx = SignalHandler.context { SignalHandler.serve(worker.slot, ctx) }
                try? core(worker.slot).enterIdle(polling: false)
            }
            platform.cell(.thread, worker.slot).store(0, ordering: .releasing)
        }
    }
}

/// A registered worker: use it on its own thread only.
///
/// Its transitions are the core's, each run with the worker's interrupts masked
/// (`SignalHandler.masked`) after a check that the worker is in the state it leaves.
/// The core, the word and the mask cells are resolved once, at registration, and the
/// transitions are inlinable: the round trip is the core's plus the checks and the mask
/// (Benchmarks/runtime.sh counts the instructions).
public struct Worker {
    public let runtime: IsolationRuntime
    /// The worker's slot (its CPU in the core).
    public let slot: Int
    @usableFromInline let thread: pthread_t
    @usableFromInline let core: CPUFlags<RuntimePlatform>
    @usableFromInline let word: UnsafeAtomic<UInt64>
    @usableFromInline let mask: SignalHandler.Mask

    init(runtime: IsolationRuntime, slot: Int, thread: pthread_t) {
        self.runtime = runtime
        self.slot = slot
        self.thread = thread
        core = runtime.core(slot)
        word = runtime.platform.hw.atomic(Location(.word, slot))
        mask = SignalHandler.Mask(runtime.platform, slot)
    }

    /// The mode the worker's word says.
    @inlinable public var mode: Mode { CPUWord(raw: word.load(ordering: .relaxed)).mode }

    func checkThread(_ what: String) {
        precondition(pthread_equal(pthread_self(), thread) != 0, "\(what): worker \(slot) used from a thread other than its own")
    }

    /// Enters the isolated user stretch (exit to user): requests for deferrable work are
    /// deferred from now on under the strict policy. `forceUser` asks for USER under the
    /// lazy and adaptive policies too (BRIEF §2.7).
    @inlinable @inline(__always)
    public func enterUserStretch(forceUser: Bool = false) {
        precondition(mode == .kernel, "enterUserStretch on worker \(slot): it is in \(mode), expected its kernel stretch")
        mask.run { try! core.exitToUser(forceUser: forceUser) }
    }

    /// Leaves the user stretch (entry from user): the one atomic of the round trip; runs
    /// the work deferred meanwhile, and waits while a requester works on our behalf.
    @inlinable @inline(__always)
    public func leaveUserStretch() {
        let m = mode
        precondition(m == .user || m == .indeterminate, "leaveUserStretch on worker \(slot): it is in \(m), expected its user stretch")
        mask.run { _ = try! core.enterFromUser() }
    }

    /// The task on this worker changes (the adaptive policy's promotion ends).
    public func contextSwitch() {
        precondition(mode == .kernel, "contextSwitch on worker \(slot): expected its kernel stretch")
        mask.run { try! core.contextSwitch() }
    }

    /// Goes idle from the kernel stretch. A polling idle worker is woken by a bit
    /// (`pollIdle`); a blocking one by the signal (`IsolationRuntime.wake`).
    public func enterIdle(polling: Bool) {
        precondition(mode == .kernel, "enterIdle on worker \(slot): it is in \(mode), expected its kernel stretch")
        mask.run { try! core.enterIdle(polling: polling) }
    }

    /// Polls until woken by `IsolationRuntime.wake` (or `orWhen` holds). Not masked:
    /// interrupts are taken while polling, as in the kernel's idle loop.
    public func pollIdle(orWhen done: () -> Bool = { false }) {
        try! core.pollIdle(orWhen: done)
    }

    /// Leaves idle for the kernel stretch, running what was deferred meanwhile.
    public func exitIdle() {
        precondition(mode == .idle, "exitIdle on worker \(slot): it is in \(mode), expected idle")
        mask.run { _ = try! core.exitIdle() }
    }
}
