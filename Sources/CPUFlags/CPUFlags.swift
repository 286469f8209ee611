import Atomics

/// The cpu_flags protocol: every transition of BRIEF §2, once, generic over the memory
/// it runs on. Read this file first (the state, exit to user, entry from user), then
/// CPUFlags+IdleAndInterrupts.swift, CPUFlags+Routing.swift (the remote side and the
/// one route for every piece of work) and CPUFlags+PinningAndRCU.swift.
///
/// A `CPUFlags` value is one CPU's view of the machine: `cpu` is the CPU executing the
/// calls. Owner-side transitions (`exitToUser`, `enterFromUser`, idle, IRQ, NMI) act on
/// `cpu`'s own word; remote-side calls (`request`, `tryPin`, RCU sampling) act on other
/// CPUs' words. In the §2.12 variant (`WordPlacement.perTask`) the word is the running
/// task's (`task`), and remotes find it through the target's `current` (`word(of:)`).
///
/// The promise to the kernel: work deferred to a CPU is run by that CPU before any
/// ordinary kernel code runs there (`Platform.kernelCodeBegins`), at the cost of one
/// atomic read-modify-write per user round trip.
public struct CPUFlags<P: Platform> {
    public let platform: P
    public let cpu: Int
    /// Whose word the owner-side transitions use: `cpu` itself in the per-CPU design;
    /// in the §2.12 variant the task running on `cpu` (the kernel's `current`, which
    /// only `cpu` changes: `switchTask`).
    public let task: Int
    public let config: ProtocolConfig

    /// `task`: the task running on `cpu`, for `WordPlacement.perTask` only (default:
    /// the CPU's own word).
    @inlinable public init(platform: P, cpu: Int, task: Int? = nil, config: ProtocolConfig = ProtocolConfig()) {
        precondition(cpu >= 0 && cpu < platform.cpuCount, "cpu \(cpu) out of range")
        precondition(task == nil || config.placement == .perTask, "a task's word outside the per-task placement")
        precondition(config.placement == .perCPU || cpu < CPUWord.taggableCPUs, "cpu \(cpu) cannot be named in a CPU tag")
        assert(CPUWord.layoutIsTiled)
        self.platform = platform
        self.cpu = cpu
        self.task = task ?? cpu
        self.config = config
    }

    @inlinable var own: Location { Location(.word, task) }
    @inlinable func has(_ m: Mutations) -> Bool { config.mutations.contains(m) }

    /// The owner's status (RCU counter), read from its private copy instead of the
    /// shared word: a load of the word right after the entry's locked RMW costs the
    /// round trip about 1.9x on x86, and a one-byte store of the mode alone (no counter needed)
    /// about 2.6x (a partial store the next 64-bit RMW cannot forward from); measured
    /// by Benchmarks/layout-costs.c. Only this CPU (task, IRQ, NMI) touches the copy; it
    /// changes only where the counter does (leaving an EQS) and at a task switch.
    /// Returned as a KERNEL status: counter and CPU tag (`CPUWord.status` builds the
    /// next word from it). The tag is 0 in the per-CPU design and this CPU's
    /// in the §2.12 variant, so the exit writes "USER on this CPU" at no extra cost.
    @inlinable @inline(__always) func ownStatus() throws(P.Interrupt) -> CPUWord {
        CPUWord(raw: try platform.loadPrivate(Location(.counter, cpu))).status(.kernel)
    }

    /// The private cell also keeps the adaptive policy's promotion (bit 0): set when an
    /// IPI interrupted lazy user mode, cleared at a context switch. Only the adaptive
    /// policy reads or writes it, so the strict path pays nothing.
    @inlinable var promotedBit: UInt64 { 1 }

    /// Records a new KERNEL status (counter and tag) in the private copy, keeping the
    /// adaptive promotion.
    @inlinable @inline(__always) func storeOwnStatus(_ status: CPUWord) throws(P.Interrupt) {
        var value = status.status(.kernel).raw
        if config.exitPolicy == .adaptive {
            value |= try platform.loadPrivate(Location(.counter, cpu)) & promotedBit
        }
        try platform.storePrivate(value, at: Location(.counter, cpu))
    }

    @inlinable @inline(__always) func isPromoted() throws(P.Interrupt) -> Bool {
        guard config.exitPolicy == .adaptive else { return false }
        return try platform.loadPrivate(Location(.counter, cpu)) & promotedBit != 0
    }

    @inlinable func setPromoted(_ on: Bool) throws(P.Interrupt) {
        let v = try platform.loadPrivate(Location(.counter, cpu))
        try platform.storePrivate(on ? v | promotedBit : v & ~promotedBit, at: Location(.counter, cpu))
    }

    /// The task on this CPU is switched out: the adaptive policy's promotion ends (the
    /// next task starts lazy again). A no-op under the other policies.
    @inlinable
    public func contextSwitch() throws(P.Interrupt) {
        platform.reached(.contextSwitch)
        if config.exitPolicy == .adaptive { try setPromoted(false) }
    }

    /// The §2.12 variant: switch this CPU (in the kernel) from `self.task` to `next`,
    /// a task that is off every CPU (the scheduler's `on_cpu` handshake, the caller's,
    /// made that so and ordered its word's last writes before us). Afterwards the
    /// caller makes a new `CPUFlags` with `task: next`.
    @inlinable
    public func switchTask(to next: Int) throws(P.Interrupt) {
        platform.reached(.switchTask)
        precondition(config.placement == .perTask, "switchTask needs per-task words")
        try contextSwitch()
        // Relaxed: nobody writes a switched-out task's word (it says KERNEL, so remotes
        // do not CAS it), and the scheduler's handshake ordered its last writes before
        // this load.
        let word = Location(.word, next)
        let w = CPUWord(raw: try platform.load(word, ordering: .relaxed))
        try platform.check(word, { CPUWord(raw: $0).mode == .kernel && CPUWord(raw: $0).work.isEmpty },
                           "switchTask on CPU \(cpu): task \(next)'s word is not {KERNEL, no work}")
        // The private copy takes the incoming task's counter and this CPU's tag: the
        // task's next exit writes "USER (or IDLE) on this CPU".
        try storeOwnStatus(CPUWord(mode: .kernel, counter: w.counter, onCPU: cpu))
        // rq->curr. Relaxed: a requester that reads the old task here finds a word that
        // is KERNEL or tagged with another CPU (or this one, if the task came back
        // here and is in user mode again, which is then true), so it interrupts or
        // defers correctly; the tag, checked by its CAS, is what makes a stale
        // `current` harmless. Nothing is published through this store.
        try platform.store(UInt64(next), at: Location(.current, cpu), ordering: .relaxed)
    }

    /// The owner's current word, for the paths that need its mode (lazy entry, idle
    /// exit, IRQ entry). Relaxed: the status bits are written only by this CPU, so the
    /// load returns what it last stored (forwarded from its store buffer if need be);
    /// remotes may be adding work bits, which these paths do not rely on. It orders
    /// nothing for anyone else.
    @inlinable @inline(__always) func ownWord() throws(P.Interrupt) -> CPUWord {
        CPUWord(raw: try platform.load(own, ordering: .relaxed))
    }

    /// The ownership rule, checked where the owner is about to overwrite its word with a
    /// plain store: the word says KERNEL (so no remote writes it), owes nothing (the
    /// entry cleared what it ran), and carries the counter of the private copy, which
    /// `next` (built from that copy) has. The CPU tag may differ: a task switched in
    /// (§2.12) still carries the tag of the CPU it left.
    @inlinable @inline(__always) func checkOwnedByUs(_ next: CPUWord, _ site: String) throws(P.Interrupt) {
        try platform.check(own, { raw in
            let w = CPUWord(raw: raw)
            return w.mode == .kernel && w.work.isEmpty && w.counter == next.counter
        }, "\(site) on CPU \(cpu): word is not {KERNEL, no work, counter \(next.counter)}")
    }

    // MARK: - Exit to user (BRIEF §2.3)

    /// Leave the kernel for user mode: to USER under the strict policy or when
    /// `forceUser` (deferrable work will be deferred, entry pays one atomic), otherwise
    /// to INDETERMINATE (entry is a plain store, remote work interrupts).
    /// `forceUser` is the explicit request of BRIEF §2.7 and the adaptive promotion.
    ///
    /// Precondition: the CPU is in KERNEL mode with IRQs off. Nothing after this call
    /// may touch vmalloc space or patchable text.
    @inlinable @inline(__always)
    public func exitToUser(forceUser: Bool = false) throws(P.Interrupt) {
        platform.reached(.exitToUser)
        let promoted = try isPromoted()
        let strict = forceUser || config.exitPolicy == .strict || promoted
        let next = try ownStatus().status(strict ? .user : .indeterminate)
        try checkOwnedByUs(next, "exitToUser")
        try platform.kernelCodeEnds(cpu: cpu, entering: next.mode)
        // A plain 64-bit store of the whole word, no read of it first. The counter is
        // unchanged (it steps when the CPU leaves the EQS) and the work bits are zero
        // (in KERNEL nobody sets them, and the entry cleared what it ran).
        // Release: everything this CPU did in the kernel (RCU read-side critical
        // sections included) is visible to any CPU that sees this mode with an acquire
        // load: RCU requirement (1a), paired with the acquire in `rcuSample`. A plain
        // store is enough (no RMW) because remotes add work only while the mode is
        // USER or IDLE, never while it is KERNEL as it is now. An NMI that lands
        // between the counter read and this store finds KERNEL and changes nothing.
        // The release also pairs with a pinner's acquire (tryPin): on-behalf work
        // sees what this CPU left in its per-CPU state.
        try platform.store(next.raw, at: own, ordering: ordered(.releasing, .exitStore))
        // --- late-exit window: counts as USER; NMIs may still arrive ---
        try platform.switchAddressSpace(cpu: cpu, toKernel: false, flushTLB: false)
    }

    // MARK: - Entry from user (BRIEF §2.4)

    /// Enter the kernel from user mode (syscall, exception, or interrupt from user).
    /// Runs the owed work, waits for pinners, and only then lets kernel code run.
    /// Returns the work that was owed.
    @discardableResult @inlinable @inline(__always)
    public func enterFromUser(context: KernelContext = .task) throws(P.Interrupt) -> Work {
        platform.reached(.enterFromUser)
        if config.exitPolicy == .strict && !has(.entryLoadThenStore) {
            // Under the strict policy every exit to user writes USER, and IRQ and NMI
            // exits restore it, so the mode here is known: no need to read anything.
            // (A CPU must therefore not be put in INDETERMINATE under this policy.)
            try platform.check(own, { CPUWord(raw: $0).mode == .user },
                               "strict entry on CPU \(cpu): mode is not USER")
            return try enterKernel(from: CPUWord(mode: .user, counter: 0), context: context)
        }
        let w = try ownWord()
        switch w.mode {
        case .indeterminate:
            // Lazy entry: nobody writes the word while it says INDETERMINATE, so a
            // plain store suffices and no work can be owed. Relaxed: no CPU acquires on
            // this value to learn anything (INDETERMINATE promised nothing, and KERNEL
            // only tells remotes to interrupt). No full barrier here, which is why
            // INDETERMINATE is not RCU-idle; and no counter step, since no EQS is left.
            try platform.store(w.status(.kernel).raw, at: own, ordering: .relaxed)
            try platform.switchAddressSpace(cpu: cpu, toKernel: true, flushTLB: false)
            try platform.kernelCodeBegins(cpu: cpu, context: context)
            return []
        case .user, .idle:
            return try enterKernel(from: w, context: context)
        case .kernel:
            preconditionFailure("enterFromUser on CPU \(cpu) already in KERNEL")
        }
    }

    /// The one read-modify-write of an entry: mode := KERNEL, returning what was owed.
    /// `w` must carry the mode and polling bits the word has now (only the owner
    /// writes them, so the caller knows them); its counter is not used.
    ///
    /// The brief's version exchanges the whole word to {KERNEL, work = 0}. The explorer
    /// found the hole in that (mutant `entryExchange`): between the exchange and the CR3
    /// write that performs the flush, the owed work exists only in a register; an NMI
    /// landing there sees KERNEL with no work and runs kernel code on stale
    /// translations. So the entry clears only the mode (a `fetch-add` of minus the
    /// mode bits), keeps the work bits visible while it runs them, and clears them with
    /// a plain store afterwards (only when there were any). An NMI in the window sees
    /// the bits and flushes too. Still one atomic per user round trip.
    // The user round trip (exitToUser, enterFromUser, enterKernel and their helpers) is
    // always inlined: the optimizer declines on size before the debug-only checks fold
    // away, and the calls cost the round trip 2x (Benchmarks/run.sh).
    @inlinable @inline(__always)
    func enterKernel(from w: CPUWord, context: KernelContext) throws(P.Interrupt) -> Work {
        let old: CPUWord
        if has(.entryLoadThenStore) {
            // MUTANT: a remote CAS between these two accesses is overwritten.
            let seen = try platform.load(own, ordering: .acquiring)
            try platform.store(
                CPUWord(raw: seen).with(work: []).raw &- (seen & CPUWord.statusByteMask) &+ CPUWord.counterUnit,
                at: own, ordering: .releasing)
            old = CPUWord(raw: seen)
        } else if has(.entryExchange) {
            // MUTANT (the brief's literal design): the owed work leaves the word here.
            old = CPUWord(raw: try platform.exchange(
                try ownStatus().raw &+ CPUWord.counterUnit, at: own, ordering: .sequentiallyConsistent))
        } else {
            old = try leaveEQS(w)
        }
        assert(old.mode == w.mode, "word mode changed under its owner: \(w.mode) -> \(old)")
        assert(old.polling == w.polling, "polling bit changed under its owner")
        // KERNEL, the stepped counter, the tag the word has (this CPU's: the task left
        // the kernel here).
        try platform.check(own, { CPUWord(raw: $0).isOn(cpu) },
                           "entry on CPU \(cpu) from a word tagged for CPU \(old.onCPU ?? -1)")
        let status = CPUWord(raw: old.status(.kernel).raw &+ CPUWord.counterUnit)
        // The private copy of the counter follows the word (plain: only this CPU
        // reads it, and an NMI landing before this store found KERNEL and left both
        // alone).
        try storeOwnStatus(status)
        let owed = old.work
        if has(.workAfterKernelCode) {
            // MUTANT: ordinary kernel code (kernel stack, vmalloc space) runs first.
            try platform.kernelCodeBegins(cpu: cpu, context: context)
        }
        let callbacksEarly = !owed.isEmpty && has(.callbacksBeforePinWait) && owed.contains(.callbacks)
        if callbacksEarly { try runQueuedCallbacks(of: cpu) }  // MUTANT: before the pin wait
        // Pinned: a pinner is running work on our behalf; hold here until it is done.
        try waitForPinners(owed: owed)
        // The deferred kernel TLB flush rides on the CR3 write (BRIEF §2.9).
        try platform.switchAddressSpace(
            cpu: cpu, toKernel: true, flushTLB: owed.contains(.kernelTLBFlush))
        if owed.contains(.syncCore) { try platform.serialize(cpu: cpu) }
        if owed.contains(.callbacks) && !callbacksEarly { try runQueuedCallbacks(of: cpu) }
        if !owed.isEmpty && !has(.entryExchange) && !has(.entryLoadThenStore) {
            // A plain store: the mode is KERNEL, so no remote writes the word and
            // nothing can be lost; the work it clears has just been done. Release (free
            // on x86) so that a grace period whose acquire sample reads this value and
            // credits the CPU by its counter still synchronizes with the exit store
            // before it: a relaxed store would end that release sequence.
            try platform.store(status.raw, at: own, ordering: ordered(.releasing, .entryClearStore))
        }
        if !has(.workAfterKernelCode) {
            try platform.kernelCodeBegins(cpu: cpu, context: context)
        }
        return owed
    }

    /// The one read-modify-write that takes this CPU's word from USER or IDLE to
    /// KERNEL, shared by every entry (task, IRQ: `enterKernel`; NMI: `nmiEnter`).
    /// `w` carries the mode and polling bits the word has now. Returns the old word.
    @inlinable @inline(__always)
    func leaveEQS(_ w: CPUWord) throws(P.Interrupt) -> CPUWord {
        // Clearing the mode and polling bits by subtracting them (they are known
        // to be set: only the owner writes them; no borrow leaves the status byte)
        // and stepping the counter (its carry falls off bit 63), in one fetch-add:
        // a single `lock xadd` on x86, wait-free, where a fetch-and whose result is
        // used would be a `lock cmpxchg` loop. The counter steps here, on leaving
        // the EQS, so that entering one needs no read of the word at all.
        // Sequentially consistent (on x86 the same `lock xadd` as acq_rel):
        // - acquire pairs with the release of the remote CAS that set a work bit, so
        //   the requester's prior stores (new PTE, patched text, queued callback) are
        //   visible to the work we are about to run;
        // - seq_cst, not just acq_rel, orders this store before every later load of
        //   kernel data (C11 acq_rel does not order a store before later loads):
        //   RCU requirement (1b), pairing with the grace period's full fence, and
        //   the countThenCheck pin handshake, pairing with the pinner's fence;
        // - atomicity: a remote's CAS either lands before (we see its bit) or fails
        //   against KERNEL (it interrupts us instead). Nothing is lost in between.
        let statusBits = w.raw & CPUWord.statusByteMask
        return CPUWord(raw: try platform.fetchAdd(
            CPUWord.counterUnit &- statusBits, at: own, ordering: ordered(.sequentiallyConsistent, .entryRMW)))
    }

    // The decision is inlined into the round trip (it is a test of `owed` under the
    // default protocol); the wait itself is not, so that a platform whose wait can
    // throw (the runtime's timeout) does not make every entry call out.
    @inlinable @inline(__always)
    func waitForPinners(owed: Work) throws(P.Interrupt) {
        let mustCheck: Bool
        switch config.pinProtocol {
        case .flagInWord:
            mustCheck = owed.contains(.pinned)
        case .countThenCheck:
            // The literal sketch puts no flag in the word, and an entry that reads only
            // its word cannot know it is pinned.
            mustCheck = !has(.pinSketchLiteral)
        }
        guard _slowPath(mustCheck) else { return }
        // Acquire: pairs with the release in `unpin`, so the pinner's on-behalf work
        // (drained caches, run callbacks) is visible before our kernel code runs.
        // For countThenCheck this load also closes the Dekker pair with the pinner's
        // store + fence + mode check; the entry's RMW before it is our side's full
        // barrier.
        try waitWhilePinned()
    }

    @inlinable @inline(never)
    func waitWhilePinned() throws(P.Interrupt) {
        _ = try platform.waitUntil(Location(.pinCount, cpu), ordering: ordered(.acquiring, .pinnedWait)) { $0 == 0 }
    }
}
