import Atomics

/// The remote side: requests by CAS, the routing of every piece of work, the
/// handling of an arriving interrupt, queued callbacks (see CPUFlags.swift).
extension CPUFlags {
    // MARK: - Remote side (BRIEF §2.5)

    /// The answer to a remote request.
    public enum Outcome: Hashable, Sendable {
        /// The bit is set in the target's word; the target runs the work before any
        /// kernel code. The requester may consider the work done.
        case deferred
        /// The target must be interrupted; `observed` is the word that said so.
        case interrupt(observed: UInt64)
    }

    /// Ask `target` to do `bit` work: deferred by a CAS conditional on the target's mode
    /// being deferrable, or answered `.interrupt`.
    @inlinable
    public func request(_ bit: Work, of target: Int) throws(P.Interrupt) -> Outcome {
        platform.reached(.request)
        return try setBit(bit, of: target) { w in
            w.mode.defersWork || (has(.indeterminateDeferrable) && w.mode == .indeterminate)
        }
    }

    /// Wake `target` from polling idle by a bit instead of an IPI.
    @inlinable
    public func wake(_ target: Int) throws(P.Interrupt) -> Outcome {
        platform.reached(.wake)
        return try setBit(.wake, of: target) { w in w.mode == .idle && w.polling }
    }

    @inlinable
    func setBit(_ bit: Work, of target: Int, when deferrable: (CPUWord) -> Bool) throws(P.Interrupt) -> Outcome {
        let (added, w) = try casAdding(bit, to: target, while: deferrable, what: "request", plainStoreMutant: has(.remotePlainStore))
        return added ? .deferred : .interrupt(observed: w.raw)
    }

    /// The remote compare-and-swap loop, shared by requests, wakes and pins: add `bits`
    /// to `target`'s word as long as `allowed` holds for the word seen. Returns whether
    /// they were added, and the word that decided (the one the successful CAS replaced,
    /// or the one `allowed` refused).
    @inlinable
    func casAdding(
        _ bits: Work, to target: Int, while allowed: (CPUWord) -> Bool, what: String, plainStoreMutant: Bool = false
    ) throws(P.Interrupt) -> (added: Bool, observed: CPUWord) {
        let at = try word(of: target)
        // Relaxed: only a guess for the CAS below, which decides.
        var w = CPUWord(raw: try platform.load(at, ordering: .relaxed))
        for _ in 0..<config.casRetriesMax {
            // The CAS below succeeds only on this very word, so the tag it checks is
            // the tag at the moment the bit lands: the task is then in user mode (or
            // idle) on `target`, and leaves it only through an entry on `target`.
            guard allowed(w) && speaksFor(w, target) else { return (false, w) }
            if plainStoreMutant {
                // MUTANT: the owner's entry RMW between our load and this store is lost,
                // and its mode is overwritten with the stale one.
                try platform.store(w.adding(bits).raw, at: at, ordering: .releasing)
                return (true, w)
            }
            // The CAS succeeds only while `allowed` holds for the word as it is, so the
            // target's next entry RMW comes after it and returns these bits; a target
            // that left the mode in between makes it fail, and we decide again.
            // Release: our prior stores (the new PTE, the patched text, the queued
            // callback, a pinner's count increment) are visible to the target once its
            // entry RMW (acquire) returns the bits. We CAS even when the bits are already
            // set: the locked RMW is what publishes our own prior stores (under TSO they
            // may still sit in our store buffer), so an already-pending bit is not a
            // reason to skip it.
            // Acquire: a pinner's on-behalf work must see the per-CPU state the target
            // left, which the target published with the release of its exit/idle
            // store. (A request needs only the release; acq_rel costs nothing more on
            // x86 and keeps the pairings simple to state.)
            let r = try platform.compareExchange(
                expected: w.raw, desired: w.adding(bits).raw, at: at, ordering: ordered(.acquiringAndReleasing, .remoteCAS))
            if r.exchanged { return (true, w) }
            w = CPUWord(raw: r.original)
        }
        try platform.limitExceeded(
            "\(what) of CPU \(target) retried its CAS \(config.casRetriesMax) times; raise casRetriesMax")
    }

    /// `target`'s flags word: its own, or (§2.12) the word of the task its `current`
    /// names.
    @inlinable
    func word(of target: Int) throws(P.Interrupt) -> Location {
        guard config.placement == .perTask else { return Location(.word, target) }
        // rq->curr. Relaxed: the answer may be stale (the task may have left, even
        // migrated); the CPU tag in the word, checked by the CAS that decides,
        // makes that harmless (see switchTask).
        return Location(.word, Int(try platform.load(Location(.current, target), ordering: .relaxed)))
    }

    /// Whether `w`, found as `target`'s word, speaks for `target` (`CPUWord.isOn`).
    @inlinable
    func speaksFor(_ w: CPUWord, _ target: Int) -> Bool {
        w.isOn(target) || has(.taskWordWithoutCPU)  // MUTANT: trust any tag
    }

    // MARK: - Routing: one route for every piece of work

    /// How the requester delivers what `submit` decided.
    public enum Delivery: Hashable, Sendable {
        /// Send the interrupts at once, then wait until they are handled
        /// (on_each_cpu with wait = 1).
        case sendAndWait
        /// Send the interrupts and return (an expedited grace period waits for
        /// quiescent states instead).
        case send
        /// Decide only: the caller waits in its own way (a normal grace period).
        case decideOnly
    }

    /// Decide, for one target, which way `kind` goes to it: by the kind's class and
    /// the target's word. This is the one place that decides; every harness calls it
    /// (through `submit`).
    ///
    /// - deferrable: a work bit by CAS while the target is USER or IDLE, else interrupt;
    /// - on behalf: pin the target and run its queued callback here, else interrupt;
    /// - wakes by bit: WAKE for a polling idle target, else interrupt;
    /// - RCU-idle skips: skip a target in an extended quiescent state, else interrupt;
    /// - must interrupt: interrupt (nothing read).
    ///
    /// Kinds that carry a callback queue it for the target first (`callback` is its id).
    @inlinable
    public func route(_ kind: WorkKind, to target: Int, callback id: Int = 0) throws(P.Interrupt) -> Route {
        platform.reached(.route)
        precondition(target != cpu, "CPU \(cpu) routing \(kind.rawValue) to itself")
        if kind.queuesCallback { try enqueueCallback(id, for: target) }
        switch kind.workClass {
        case .deferrable:
            switch try request(kind.bit!, of: target) {
            case .deferred: return .deferred
            case .interrupt(let w): return .interrupt(observed: w)
            }
        case .onBehalf:
            let (pinned, observed) = try runOnBehalfObserving(of: target)
            return pinned ? .onBehalf : .interrupt(observed: observed.raw)
        case .wakesByBit:
            switch try wake(target) {
            case .deferred: return .wokenByBit
            case .interrupt(let w): return .interrupt(observed: w)
            }
        case .rcuIdleSkips:
            let w = try rcuSample(target)
            return inExtendedQuiescentState(w) ? .skipped : .interrupt(observed: w.raw)
        case .mustInterrupt:
            return .interrupt(observed: nil)
        }
    }

    /// Submit `kind` to `targets` (this CPU is skipped): route each target in turn,
    /// report each decision to the platform right after it, then interrupt the ones
    /// that need it all at once (one broadcast, not one IPI per target) and, with
    /// `.sendAndWait`, wait for their handlers. Returns every target's route, in order.
    ///
    /// For RCU (`rcuIdleSkips`) a full fence comes first: the caller's unpublishing
    /// stores are visible before any word is sampled, so a CPU that leaves its EQS
    /// after our sample (its entry RMW is seq_cst) reads the new pointer: requirement
    /// (1b). Pairs with the entry's RMW.
    @inlinable @discardableResult
    public func submit(
        _ kind: WorkKind, to targets: [Int], callback id: Int = 0, delivery: Delivery = .sendAndWait
    ) throws(P.Interrupt) -> [(target: Int, route: Route)] {
        platform.reached(.submit)
        if kind.workClass == .rcuIdleSkips { try fence(.gracePeriodFence) }
        var routes: [(target: Int, route: Route)] = []
        var interrupt: [Int] = []
        for t in targets where t != cpu {
            let r = try route(kind, to: t, callback: id)
            try platform.routed(kind, to: t, by: cpu, r)
            routes.append((t, r))
            if case .interrupt = r { interrupt.append(t) }
        }
        if !interrupt.isEmpty && delivery != .decideOnly {
            try platform.sendInterrupts(interrupt, kind: kind, from: cpu)
            if delivery == .sendAndWait { try platform.waitForInterrupts(from: cpu) }
        }
        return routes
    }

    // MARK: - An arriving interrupt

    /// Take an interrupt that brought `kinds` (an IPI with its CSDs, or a timer with
    /// none): the IRQ entry (from user or idle, a kernel entry that runs the owed work
    /// first), each kind's handler, the IRQ exit. `wasIPI` drives the adaptive policy.
    @inlinable
    public func handleInterrupt(_ kinds: [WorkKind], wasIPI: Bool = true) throws(P.Interrupt) {
        platform.reached(.handleInterrupt)
        let frame = try irqEnter()
        for (i, kind) in kinds.enumerated() {
            try runHandler(kind)
            try platform.interruptWork(kind, index: i, on: cpu)
        }
        try irqExit(frame, wasIPI: wasIPI)
    }

    /// What `kind` does when it arrives by interrupt, as far as the protocol is
    /// concerned; the CPU-local rest is `Platform.interruptWork`. Between `irqEnter` and
    /// `irqExit` (`handleInterrupt` does all three; a harness that spreads them over
    /// simulated time calls them one by one).
    @inlinable
    public func runHandler(_ kind: WorkKind) throws(P.Interrupt) {
        platform.reached(.runHandler)
        switch kind {
        case .kernelTLBFlush: try platform.switchAddressSpace(cpu: cpu, toKernel: true, flushTLB: true)
        case .syncCore: try platform.serialize(cpu: cpu)
        case .queuedCallback, .cacheDrain: try runQueuedCallbacks(of: cpu)
        // ipi_mb: the handler is a full barrier.
        case .membarrier: try fence(.membarrierFence)
        // Nothing at the protocol level: need_resched, rcu_exp_handler's report and the
        // user-mm flush are CPU-local; tlb_remove_table_smp_sync is the interrupt itself.
        case .userTLBFlush, .reschedule, .tlbRemoveTableSync, .rcuExpedited: break
        }
    }

    /// Put callback `id` (0..<64) on `target`'s queue without asking for it to run.
    @inlinable
    public func enqueueCallback(_ id: Int, for target: Int) throws(P.Interrupt) {
        platform.reached(.enqueueCallback)
        precondition(id >= 0 && id < 64, "callback id \(id) outside 0..<64")
        // Release: the callback's data is visible to whoever takes it (pairs with the
        // acquire exchange in runQueuedCallbacks).
        _ = try platform.fetchOr(1 << UInt64(id), at: Location(.callbacks, target), ordering: ordered(.releasing, .callbackEnqueue))
        try platform.callbackQueued(id, for: target)
    }

    /// Queue callback `id` for `target` and have it run there before any kernel code:
    /// deferred with the CALLBACKS bit, or by interrupt (sent, and waited for).
    @inlinable @discardableResult
    public func queueCallback(_ id: Int, for target: Int) throws(P.Interrupt) -> Route {
        platform.reached(.queueCallback)
        return try submit(.queuedCallback, to: [target], callback: id)[0].route
    }

    /// Take every queued callback of `target` and run them here (on `cpu`).
    @inlinable
    public func runQueuedCallbacks(of target: Int) throws(P.Interrupt) {
        platform.reached(.runQueuedCallbacks)
        // Acquire: pairs with the queuer's release fetch-or. Exchange with 0: each
        // callback is taken exactly once, by the owner at entry or by a pinner.
        let ids = try platform.exchange(0, at: Location(.callbacks, target), ordering: ordered(.acquiring, .callbackTake))
        if ids != 0 { try platform.runCallbacks(ids, of: target, on: cpu) }
    }
}
