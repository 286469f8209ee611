import Atomics

/// Pinning a remote CPU in user mode, and RCU on the same word (see CPUFlags.swift).
extension CPUFlags {
    // MARK: - Pinning (BRIEF §2.11)

    /// Try to pin `target` in USER (or IDLE) mode. On success the target's next entry
    /// waits until `unpin`; on failure (the target is in the kernel) interrupt it.
    @inlinable
    public func tryPin(_ target: Int) throws(P.Interrupt) -> Bool {
        try tryPinObserving(target).pinned
    }

    /// The same, also returning the word that decided.
    @inlinable
    func tryPinObserving(_ target: Int) throws(P.Interrupt) -> (pinned: Bool, observed: CPUWord) {
        platform.reached(.tryPin)
        let count = Location(.pinCount, target)
        if config.pinProtocol == .countThenCheck || has(.pinSketchLiteral) {
            // The count is a plain counter: pinners of one target bump it with a load
            // and a store under the target's pin lock (`addToPinCount`), so two
            // pinners of one CPU both count.
            try addToPinCount(target, 1, ordering: .relaxed)
            // Full fence: the count store must be visible before we read the mode
            // (Dekker with the entry's seq_cst RMW + count load). On x86 a plain store
            // can sit in the store buffer past the load below without it.
            try fence(.pinFence)
            // Acquire: pairs with the release of the target's exit/idle store, so the
            // on-behalf work sees the per-CPU state the target left.
            let w = CPUWord(raw: try platform.load(try word(of: target), ordering: ordered(.acquiring, .pinWordLoad)))
            if w.mode.defersWork && speaksFor(w, target) { return (true, w) }
            // Relaxed undo: the target is in the kernel and never waited on our pin.
            try addToPinCount(target, UInt64.max, ordering: .relaxed)
            return (false, w)
        }
        if !has(.pinFlagBeforeCount) {
            // Count first: an entry that sees PINNED must then see a non-zero count.
            // What publishes this increment to that entry is the release of the CAS
            // that sets PINNED (the entry's RMW acquires it); relaxed would do here.
            _ = try platform.fetchAdd(1, at: count, ordering: ordered(.acquiringAndReleasing, .pinCountAdd))
        }
        // PINNED by the shared CAS loop, conditional on USER or IDLE (see casAdding for
        // its orderings: release publishes the count, acquire the target's state).
        let (pinned, w) = try casAdding(.pinned, to: target, while: { $0.mode.defersWork }, what: "pin")
        if !pinned {
            if !has(.pinFlagBeforeCount) {
                // Undo. Relaxed: the target is in the kernel and saw no PINNED.
                _ = try platform.fetchAdd(UInt64.max, at: count, ordering: .relaxed)
            }
            return (false, w)
        }
        if has(.pinFlagBeforeCount) {
            // MUTANT: the count rises after PINNED is visible.
            _ = try platform.fetchAdd(1, at: count, ordering: .acquiringAndReleasing)
        }
        return (true, w)
    }

    /// `countThenCheck`: add `delta` (wrapping) to `target`'s pin count with a load and a
    /// plain store, under the target's pin lock, the sketch's "bump the count": the
    /// lock is what lets two pinners of one CPU count without an atomic add (without
    /// it, mutant `pin-without-lock`, two pinners can both store 1 and the first unpin
    /// releases the target while the second still works on its behalf). The lock is
    /// held only around the update: the fence and the mode check run outside it.
    @inlinable
    func addToPinCount(_ target: Int, _ delta: UInt64, ordering: AtomicStoreOrdering) throws(P.Interrupt) {
        let count = Location(.pinCount, target)
        let locked = !has(.pinWithoutLock)
        if locked { try lockPins(target) }
        // Relaxed: under the lock only pinners of this target write the count, and the
        // lock's acquire made the previous holder's store visible.
        let c = try platform.load(count, ordering: .relaxed)
        try platform.store(c &+ delta, at: count, ordering: ordering)
        if locked {
            // Release: our count store is visible to the next holder before it sees the
            // lock free (pairs with the acquire in lockPins). Without it the next
            // pinner may load the count we replaced and store over ours.
            try platform.store(0, at: Location(.pinLock, target), ordering: ordered(.releasing, .pinLockRelease))
        }
    }

    /// Take `target`'s pin lock (a test-and-test-and-set spin lock, as raw_spin_lock).
    @inlinable
    func lockPins(_ target: Int) throws(P.Interrupt) {
        let lock = Location(.pinLock, target)
        for _ in 0..<config.casRetriesMax {
            // Relaxed spin until the lock looks free: only a guess for the CAS.
            _ = try platform.waitUntil(lock, ordering: .relaxed) { $0 == 0 }
            // Acquire: pairs with the previous holder's release store of 0, so its
            // count store is visible to our load of the count.
            if try platform.compareExchange(expected: 0, desired: 1, at: lock, ordering: ordered(.acquiring, .pinLockAcquire)).exchanged {
                return
            }
        }
        try platform.limitExceeded("pin lock of CPU \(target): \(config.casRetriesMax) failed attempts (raise casRetriesMax, or a pinner holds it forever)")
    }

    /// Release a pin taken by `tryPin`.
    @inlinable
    public func unpin(_ target: Int) throws(P.Interrupt) {
        platform.reached(.unpin)
        let count = Location(.pinCount, target)
        try platform.check(count, { $0 > 0 }, "unpin of CPU \(target) that nobody pinned")
        if config.pinProtocol == .countThenCheck || has(.pinSketchLiteral) {
            // Release: the on-behalf work happens before the target leaves its wait.
            try addToPinCount(target, UInt64.max, ordering: ordered(.releasing, .unpinCountStore))
        } else {
            // Release: pairs with the entry's acquire wait (see waitForPinners). The
            // PINNED bit stays in the word; the target's next entry clears it and finds
            // a zero count, which costs one extra load, once.
            _ = try platform.fetchAdd(UInt64.max, at: count, ordering: ordered(.releasing, .unpinCountSub))
        }
    }

    /// Pin `target`, run its queued callbacks on its behalf, unpin. Returns false when
    /// the target could not be pinned (it is in the kernel: interrupt it instead).
    @inlinable
    public func runOnBehalf(of target: Int) throws(P.Interrupt) -> Bool {
        try runOnBehalfObserving(of: target).pinned
    }

    /// The same, also returning the word that decided (for `route`).
    @inlinable
    func runOnBehalfObserving(of target: Int) throws(P.Interrupt) -> (pinned: Bool, observed: CPUWord) {
        platform.reached(.runOnBehalf)
        let (pinned, observed) = try tryPinObserving(target)
        guard pinned else { return (false, observed) }
        if has(.unpinBeforeWorkEnds) { try unpin(target) }  // MUTANT
        try platform.onBehalf(of: target, by: cpu, begins: true)
        try runQueuedCallbacks(of: target)
        try platform.onBehalf(of: target, by: cpu, begins: false)
        if !has(.unpinBeforeWorkEnds) { try unpin(target) }
        return (true, observed)
    }

    // MARK: - RCU on the same word (BRIEF §2.8)

    /// Sample `target`'s word for RCU.
    @inlinable
    public func rcuSample(_ target: Int) throws(P.Interrupt) -> CPUWord {
        platform.reached(.rcuSample)
        precondition(config.placement == .perCPU, "RCU on per-task words is not modeled (§2.12 keeps RCU per CPU)")
        // Acquire: pairs with the release of exitToUser / enterIdle / nmiExit (and,
        // through the release sequence, the entry's RMW and its release store that
        // clears the work bits), so everything the target did before entering its EQS
        // is visible to the code after a sample that sees the EQS or a later counter:
        // requirements (1a) and (2b).
        return CPUWord(raw: try platform.load(Location(.word, target), ordering: ordered(.acquiring, .rcuSample)))
    }

    /// Is the CPU in an RCU extended quiescent state?
    @inlinable
    public func inExtendedQuiescentState(_ w: CPUWord) -> Bool {
        w.mode.isRCUIdle || (has(.indeterminateRCUIdle) && w.mode == .indeterminate)
    }

    /// Has the CPU passed a quiescent state since `snapshot`? Yes if it is in an EQS
    /// now (2b), or if its counter moved: the counter steps each time the CPU leaves an
    /// EQS, so it went through one in between, even a quick one (3). The same counter
    /// in a non-idle mode is the same stretch (2a).
    @inlinable
    public func stoppedSince(_ snapshot: CPUWord, now: CPUWord) -> Bool {
        if inExtendedQuiescentState(now) { return true }
        if has(.noRCUCounter) { return false }
        return now.counter != snapshot.counter
    }

    /// Wait for a grace period: every other CPU passes a quiescent state after the
    /// caller's prior accesses. Call after unpublishing; free old data after return.
    /// `expedited` interrupts the CPUs found outside an EQS (rcu_exp_handler), which
    /// then report a quiescent state themselves (`Platform.quiescentStateReported`).
    @inlinable
    public func gracePeriod(expedited: Bool = false) throws(P.Interrupt) {
        platform.reached(.gracePeriod)
        let waiting = expedited ? try expeditedGracePeriodStart() : try gracePeriodStart()
        for (t, snapshot) in waiting {
            try gracePeriodWait(for: t, since: snapshot, orWhen: { expedited && platform.quiescentStateReported(by: t) })
        }
    }

    /// The first half of a grace period: a full fence, then a sample of every other
    /// CPU (`route` for `rcuExpedited`, deciding only). Returns the CPUs not in an
    /// extended quiescent state, with their snapshots.
    @inlinable
    public func gracePeriodStart() throws(P.Interrupt) -> [(cpu: Int, snapshot: CPUWord)] {
        platform.reached(.gracePeriodStart)
        return waitingCPUs(try submit(.rcuExpedited, to: Array(0..<platform.cpuCount), delivery: .decideOnly))
    }

    /// The first half of an expedited grace period: the same samples, and the CPUs
    /// not in an EQS interrupted at once (not waited for: the grace period waits for
    /// their quiescent states instead).
    @inlinable
    public func expeditedGracePeriodStart() throws(P.Interrupt) -> [(cpu: Int, snapshot: CPUWord)] {
        platform.reached(.expeditedGracePeriodStart)
        return waitingCPUs(try submit(.rcuExpedited, to: Array(0..<platform.cpuCount), delivery: .send))
    }

    @inlinable
    func waitingCPUs(_ routes: [(target: Int, route: Route)]) -> [(cpu: Int, snapshot: CPUWord)] {
        routes.compactMap { t, r in
            if case .interrupt(let w?) = r { return (t, CPUWord(raw: w)) }
            return nil
        }
    }

    /// The second half: wait until `target` has passed a quiescent state since
    /// `snapshot`, or until `reported()` says it reported one itself (from the
    /// interrupt an expedited grace period sent it).
    @inlinable
    public func gracePeriodWait(
        for target: Int, since snapshot: CPUWord, orWhen reported: () -> Bool = { false }
    ) throws(P.Interrupt) {
        platform.reached(.gracePeriodWait)
        precondition(config.placement == .perCPU, "RCU on per-task words is not modeled (§2.12 keeps RCU per CPU)")
        try platform.rcuWaits(on: target, snapshot: snapshot.raw)
        // Acquire loads (pairing as in rcuSample) until the CPU has passed a
        // quiescent state.
        _ = try platform.waitUntil(Location(.word, target), ordering: ordered(.acquiring, .gracePeriodWait)) {
            stoppedSince(snapshot, now: CPUWord(raw: $0)) || reported()
        }
    }
}
