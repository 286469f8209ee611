import Atomics

/// The cpu_flags protocol: every transition of BRIEF §2, once, generic over the memory
/// it runs on. Read this file first.
///
/// A `CPUFlags` value is one CPU's view of the machine: `cpu` is the CPU executing the
/// calls. Owner-side transitions (`exitToUser`, `enterFromUser`, idle, IRQ, NMI) act on
/// `cpu`'s own word; remote-side calls (`request`, `tryPin`, RCU sampling) act on other
/// CPUs' words.
///
/// The promise to the kernel: work deferred to a CPU is run by that CPU before any
/// ordinary kernel code runs there (`Platform.kernelCodeBegins`), at the cost of one
/// atomic read-modify-write per user round trip.
public struct CPUFlags<P: Platform> {
    public let platform: P
    public let cpu: Int
    public let config: Config

    @inlinable public init(platform: P, cpu: Int, config: Config = Config()) {
        precondition(cpu >= 0 && cpu < platform.cpuCount, "cpu \(cpu) out of range")
        assert(CPUWord.layoutIsTiled)
        self.platform = platform
        self.cpu = cpu
        self.config = config
    }

    @inlinable var own: Location { Location(.word, cpu) }
    @inlinable func has(_ m: Mutations) -> Bool { config.mutations.contains(m) }

    /// The owner's RCU counter, read from its private copy instead of the shared word:
    /// a load of the word right after the entry's locked RMW costs the round trip
    /// about 1.9x on x86, and a one-byte store of the mode alone (no counter needed)
    /// about 2.6x (a partial store the next 64-bit RMW cannot forward from); measured
    /// by Benchmarks/layout-costs.c. Only this CPU (task, IRQ, NMI) touches the copy; it
    /// changes only where the counter does (leaving an EQS).
    @inlinable @inline(__always) func ownCounter() throws(P.Interrupt) -> UInt32 {
        CPUWord(raw: try platform.loadPrivate(Location(.counter, cpu))).counter
    }

    /// The private cell also keeps the adaptive policy's promotion (bit 0): set when an
    /// IPI interrupted lazy user mode, cleared at a context switch. Only the adaptive
    /// policy reads or writes it, so the strict path pays nothing.
    @inlinable var promotedBit: UInt64 { 1 }

    /// Records a new counter in the private copy, keeping the adaptive promotion.
    @inlinable @inline(__always) func storeOwnCounter(_ counter: UInt32) throws(P.Interrupt) {
        var value = CPUWord(mode: .kernel, counter: counter).raw
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
    /// entry cleared what it ran), and carries the counter of the private copy.
    @inlinable @inline(__always) func checkOwnedByUs(_ counter: UInt32, _ site: String) throws(P.Interrupt) {
        try platform.check(own, { raw in
            let w = CPUWord(raw: raw)
            return w.mode == .kernel && w.work.isEmpty && w.counter == counter
        }, "\(site) on CPU \(cpu): word is not {KERNEL, no work, counter \(counter)}")
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
        let next = CPUWord(mode: strict ? .user : .indeterminate, counter: try ownCounter())
        try checkOwnedByUs(next.counter, "exitToUser")
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
        try platform.store(next.raw, at: own, ordering: has(.exitStoreRelaxed) ? .relaxed : .releasing)
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
            try platform.store(CPUWord(mode: .kernel, counter: w.counter).raw, at: own, ordering: .relaxed)
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
                CPUWord(mode: .kernel, counter: try ownCounter() &+ 1).raw, at: own, ordering: .sequentiallyConsistent))
        } else {
            old = try leaveEQS(w)
        }
        assert(old.mode == w.mode, "word mode changed under its owner: \(w.mode) -> \(old)")
        assert(old.polling == w.polling, "polling bit changed under its owner")
        let status = CPUWord(mode: .kernel, counter: old.counter &+ 1)
        // The private copy of the counter follows the word (plain: only this CPU
        // reads it, and an NMI landing before this store found KERNEL and left both
        // alone).
        try storeOwnCounter(status.counter)
        let owed = old.work
        if has(.workAfterKernelCode) {
            // MUTANT: ordinary kernel code (kernel stack, vmalloc space) runs first.
            try platform.kernelCodeBegins(cpu: cpu, context: context)
        }
        // Pinned: a pinner is running work on our behalf; hold here until it is done.
        try waitForPinners(owed: owed)
        // The deferred kernel TLB flush rides on the CR3 write (BRIEF §2.9).
        try platform.switchAddressSpace(
            cpu: cpu, toKernel: true, flushTLB: owed.contains(.kernelTLBFlush))
        if owed.contains(.syncCore) { try platform.serialize(cpu: cpu) }
        if owed.contains(.callbacks) { try runQueuedCallbacks(of: cpu) }
        if !owed.isEmpty && !has(.entryExchange) && !has(.entryLoadThenStore) {
            // A plain store: the mode is KERNEL, so no remote writes the word and
            // nothing can be lost; the work it clears has just been done. Release (free
            // on x86) so that a grace period whose acquire sample reads this value and
            // credits the CPU by its counter still synchronizes with the exit store
            // before it: a relaxed store would end that release sequence.
            try platform.store(status.raw, at: own, ordering: .releasing)
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
            CPUWord.counterUnit &- statusBits, at: own, ordering: .sequentiallyConsistent))
    }

    @inlinable
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
        guard mustCheck else { return }
        // Acquire: pairs with the release in `unpin`, so the pinner's on-behalf work
        // (drained caches, run callbacks) is visible before our kernel code runs.
        // For countThenCheck this load also closes the Dekker pair with the pinner's
        // store + fence + mode check; the entry's RMW before it is our side's full
        // barrier.
        _ = try platform.waitUntil(Location(.pinCount, cpu), ordering: .acquiring) { $0 == 0 }
    }

    // MARK: - Idle (BRIEF §2.6)

    /// Enter the idle loop from the kernel. With `polling`, a remote may wake this CPU by
    /// setting WAKE instead of sending an IPI (like `set_nr_if_polling`).
    @inlinable
    public func enterIdle(polling: Bool) throws(P.Interrupt) {
        try enterIdle(polling: polling, wakePending: false)
    }

    /// `wakePending`: an interrupt taken in idle found WAKE set; it goes back into the
    /// word so that the idle loop still sees it (like need_resched surviving the IRQ).
    @inlinable
    func enterIdle(polling: Bool, wakePending: Bool) throws(P.Interrupt) {
        platform.reached(.enterIdle)
        let next = CPUWord(mode: .idle, counter: try ownCounter(), polling: polling,
                           work: wakePending ? .wake : [])
        try checkOwnedByUs(next.counter, "enterIdle")
        try platform.kernelCodeEnds(cpu: cpu, entering: .idle)
        // Release: RCU (1a) for the kernel stretch that ends here; a plain store for the
        // same reasons as in exitToUser.
        try platform.store(next.raw, at: own, ordering: has(.exitStoreRelaxed) ? .relaxed : .releasing)
        try platform.idleBegins(cpu: cpu)
    }

    /// A polling idle CPU waits for a WAKE bit (models the `mwait`/poll loop), or for
    /// `needResched` (set locally, by a reschedule IPI taken before idling).
    @inlinable
    public func pollIdle(orWhen needResched: () -> Bool = { false }) throws(P.Interrupt) {
        platform.reached(.pollIdle)
        // Acquire: pairs with the waker's release CAS.
        _ = try platform.waitUntil(own, ordering: .acquiring) {
            CPUWord(raw: $0).work.contains(.wake) || needResched()
        }
    }

    /// Leave the idle loop: the same one RMW as an entry from user. Returns the
    /// owed work (WAKE among it when woken by a bit).
    @discardableResult @inlinable
    public func exitIdle(context: KernelContext = .task) throws(P.Interrupt) -> Work {
        platform.reached(.exitIdle)
        let w = try ownWord()
        assert(w.mode == .idle, "exitIdle from \(w.mode)")
        return try enterKernel(from: w, context: context)
    }

    // MARK: - Interrupts (IRQ, IPI) from any mode

    /// What an interrupt found when it arrived; give it back to `irqExit`.
    public struct IRQFrame: Hashable, Sendable {
        public var interrupted: Mode
        public var polling: Bool
        /// The work the interrupt's entry found owed (and ran).
        public var owed: Work
        @inlinable public init(interrupted: Mode, polling: Bool, owed: Work = []) {
            self.interrupted = interrupted
            self.polling = polling
            self.owed = owed
        }
    }

    /// Enter an interrupt handler. From USER, IDLE or INDETERMINATE this is a kernel
    /// entry (owed work runs first); from KERNEL it nests and changes nothing.
    @inlinable
    public func irqEnter() throws(P.Interrupt) -> IRQFrame {
        platform.reached(.irqEnter)
        let w = try ownWord()
        var frame = IRQFrame(interrupted: w.mode, polling: w.polling)
        switch w.mode {
        case .kernel: break
        case .indeterminate: try enterFromUser(context: .irq)
        case .user, .idle: frame.owed = try enterKernel(from: w, context: .irq)
        }
        return frame
    }

    /// Leave an interrupt handler, returning to what it interrupted. `wasIPI` drives
    /// the adaptive policy: an IPI that interrupted lazy user mode promotes the next
    /// exit to USER, so at most one needless IPI per long user stretch.
    @inlinable
    public func irqExit(_ frame: IRQFrame, wasIPI: Bool) throws(P.Interrupt) {
        platform.reached(.irqExit)
        switch frame.interrupted {
        case .kernel: return
        case .user: try exitToUser(forceUser: true)
        case .indeterminate:
            // Promotion sticks until the next context switch: at most one needless IPI
            // per stretch of the task on this CPU, syscalls included.
            if config.exitPolicy == .adaptive && wasIPI { try setPromoted(true) }
            try exitToUser()
        case .idle:
            // A WAKE the entry consumed is not work to run but a signal to the idle
            // loop, which is still polling under this interrupt: hand it back.
            try enterIdle(polling: frame.polling, wakePending: frame.owed.contains(.wake))
        }
    }

    // MARK: - NMI from any mode, including the late-exit and early-entry windows

    /// What an NMI found; give it back to `nmiExit`.
    public struct NMIFrame: Hashable, Sendable {
        /// The word the NMI's RMW returned, or nil when it found KERNEL or INDETERMINATE
        /// and made no transition.
        public var replaced: UInt64?
        /// The word as first loaded (used only by the stale-restore mutant).
        public var firstSeen: UInt64
        @inlinable public init(replaced: UInt64?, firstSeen: UInt64) {
            self.replaced = replaced
            self.firstSeen = firstSeen
        }
    }

    /// Enter an NMI. From USER or IDLE the NMI makes itself a kernel entry: it takes
    /// the mode to KERNEL (so remotes interrupt rather than defer while it runs) and
    /// runs the NMI-safe owed work (TLB flush, sync_core) before any kernel code. From
    /// KERNEL it may have landed inside an entry that has not run its work yet: the
    /// bits are still in the word, so it runs the NMI-safe ones too. The bits stay set
    /// for the task-level entry (a second flush is harmless). NMI code does not wait
    /// for pinners: it must not touch what pinners touch.
    @inlinable
    public func nmiEnter() throws(P.Interrupt) -> NMIFrame {
        platform.reached(.nmiEnter)
        // Relaxed load of the shared word, not the private copy: the NMI needs the work
        // bits too (an entry it interrupted may not have run them yet). The status
        // part is stable: only this CPU writes it, and the code under the NMI is
        // stopped. A store of that code still in the store buffer is forwarded.
        let w = CPUWord(raw: try platform.load(own, ordering: .relaxed))
        var replaced: UInt64? = nil
        var owed = w.work
        if w.mode.defersWork {
            // The entry's RMW (leaveEQS): mode KERNEL, counter + 1, RCU (1b) for
            // readers in the NMI handler. It must be an RMW, not a store: work may
            // have been added since the load.
            let old = try leaveEQS(w)
            replaced = old.raw
            owed = old.work
            // The private counter follows (see enterKernel).
            try storeOwnCounter(old.counter &+ 1)
        }
        // Paranoid entry: kernel CR3, with the owed flush folded in.
        try platform.switchAddressSpace(cpu: cpu, toKernel: true, flushTLB: owed.contains(.kernelTLBFlush))
        if owed.contains(.syncCore) { try platform.serialize(cpu: cpu) }
        try platform.kernelCodeBegins(cpu: cpu, context: .nmi)
        return NMIFrame(replaced: replaced, firstSeen: w.raw)
    }

    /// Leave an NMI, restoring the mode and polling bit it replaced. The counter keeps
    /// the step the NMI's entry made: the NMI was a non-idle stretch of its own. The
    /// work bits stay as they are: the next entry runs them.
    @inlinable
    public func nmiExit(_ frame: NMIFrame) throws(P.Interrupt) {
        platform.reached(.nmiExit)
        guard let replaced = frame.replaced else { return }
        let old = CPUWord(raw: replaced)
        try platform.check(own, { CPUWord(raw: $0).mode == .kernel },
                           "nmiExit on CPU \(cpu): someone changed the mode under the NMI")
        let status = CPUWord(mode: old.mode, counter: old.counter &+ 1, polling: old.polling)
        if has(.nmiStaleRestore) {
            // MUTANT: writes back the whole word as loaded before the RMW, which lacks
            // work added between that load and the RMW (and rewinds the counter).
            try platform.store(frame.firstSeen, at: own, ordering: .releasing)
        } else {
            // Relaxed: the mode is KERNEL, so nobody else writes the word; this reads
            // back what the NMI's RMW left (the work bits it did not clear).
            let now = CPUWord(raw: try platform.load(own, ordering: .relaxed))
            // Release: the NMI's kernel accesses (RCU readers in NMI handlers) happen
            // before the CPU is seen RCU-idle again, requirement (4). A plain store
            // suffices for the reason above. The counter keeps the NMI's step, so the
            // NMI's stretch never aliases the next one (requirement 3).
            try platform.store(status.raw | (now.raw & CPUWord.workMask), at: own, ordering: .releasing)
        }
        // No CR3 write here: the paranoid NMI exit restores the CR3 its entry saved
        // (the NMI may have hit the late-exit window with the kernel CR3 still live).
    }

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
        let at = Location(.word, target)
        // Relaxed: only a guess for the CAS below, which decides.
        var w = CPUWord(raw: try platform.load(at, ordering: .relaxed))
        for _ in 0..<config.casRetriesMax {
            guard allowed(w) else { return (false, w) }
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
                expected: w.raw, desired: w.adding(bits).raw, at: at, ordering: .acquiringAndReleasing)
            if r.exchanged { return (true, w) }
            w = CPUWord(raw: r.original)
        }
        try platform.limitExceeded(
            "\(what) of CPU \(target) retried its CAS \(config.casRetriesMax) times; raise casRetriesMax")
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
        if kind.workClass == .rcuIdleSkips && !has(.gracePeriodNoFence) { try platform.fullFence() }
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
        case .membarrier: try platform.fullFence()
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
        _ = try platform.fetchOr(1 << UInt64(id), at: Location(.callbacks, target), ordering: .releasing)
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
        let ids = try platform.exchange(0, at: Location(.callbacks, target), ordering: .acquiring)
        if ids != 0 { try platform.runCallbacks(ids, of: target, on: cpu) }
    }

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
        let word = Location(.word, target)
        if config.pinProtocol == .countThenCheck || has(.pinSketchLiteral) {
            // Precondition: pins of one target are serialized by the caller (a
            // per-target pin lock, not modeled: the explorer's scenarios have one
            // pinner), so the count is ours to bump with plain accesses. Relaxed: only
            // pinners of this target write it, and we are the only one.
            let c = try platform.load(count, ordering: .relaxed)
            try platform.store(c + 1, at: count, ordering: .relaxed)
            // Full fence: the count store must be visible before we read the mode
            // (Dekker with the entry's seq_cst RMW + count load). On x86 a plain store
            // can sit in the store buffer past the load below without it.
            if !has(.pinNoFence) { try platform.fullFence() }
            // Acquire: pairs with the release of the target's exit/idle store, so the
            // on-behalf work sees the per-CPU state the target left.
            let w = CPUWord(raw: try platform.load(word, ordering: .acquiring))
            if w.mode.defersWork { return (true, w) }
            // Relaxed undo: the target is in the kernel and never waited on it.
            try platform.store(c, at: count, ordering: .relaxed)
            return (false, w)
        }
        if !has(.pinFlagBeforeCount) {
            // Count first: an entry that sees PINNED must then see a non-zero count.
            // What publishes this increment to that entry is the release of the CAS
            // that sets PINNED (the entry's RMW acquires it); relaxed would do here.
            _ = try platform.fetchAdd(1, at: count, ordering: .acquiringAndReleasing)
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

    /// Release a pin taken by `tryPin`.
    @inlinable
    public func unpin(_ target: Int) throws(P.Interrupt) {
        platform.reached(.unpin)
        let count = Location(.pinCount, target)
        try platform.check(count, { $0 > 0 }, "unpin of CPU \(target) that nobody pinned")
        if config.pinProtocol == .countThenCheck || has(.pinSketchLiteral) {
            let c = try platform.load(count, ordering: .relaxed)
            // Release: the on-behalf work happens before the target leaves its wait.
            try platform.store(c - 1, at: count, ordering: .releasing)
        } else {
            // Release: pairs with the entry's acquire wait (see waitForPinners). The
            // PINNED bit stays in the word; the target's next entry clears it and finds
            // a zero count, which costs one extra load, once.
            _ = try platform.fetchAdd(UInt64.max, at: count, ordering: .releasing)
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
        // Acquire: pairs with the release of exitToUser / enterIdle / nmiExit (and,
        // through the release sequence, the entry's RMW and its release store that
        // clears the work bits), so everything the target did before entering its EQS
        // is visible to the code after a sample that sees the EQS or a later counter:
        // requirements (1a) and (2b).
        return CPUWord(raw: try platform.load(Location(.word, target), ordering: .acquiring))
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
        try platform.rcuWaits(on: target, snapshot: snapshot.raw)
        // Acquire loads (pairing as in rcuSample) until the CPU has passed a
        // quiescent state.
        _ = try platform.waitUntil(Location(.word, target), ordering: .acquiring) {
            stoppedSince(snapshot, now: CPUWord(raw: $0)) || reported()
        }
    }
}
