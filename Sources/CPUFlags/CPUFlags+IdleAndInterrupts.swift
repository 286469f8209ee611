import Atomics

/// Idle, IRQ and NMI transitions of the owning CPU (see CPUFlags.swift).
extension CPUFlags {
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
        let next = try ownStatus().status(.idle, polling: polling, work: wakePending ? .wake : [])
        try checkOwnedByUs(next, "enterIdle")
        try platform.kernelCodeEnds(cpu: cpu, entering: .idle)
        // Release: RCU (1a) for the kernel stretch that ends here; a plain store for the
        // same reasons as in exitToUser.
        try platform.store(next.raw, at: own, ordering: ordered(.releasing, .idleStore))
        try platform.idleBegins(cpu: cpu)
    }

    /// A polling idle CPU waits for a WAKE bit (models the `mwait`/poll loop), or for
    /// `needResched` (set locally, by a reschedule IPI taken before idling).
    @inlinable
    public func pollIdle(orWhen needResched: () -> Bool = { false }) throws(P.Interrupt) {
        platform.reached(.pollIdle)
        // Acquire: pairs with the waker's release CAS.
        _ = try platform.waitUntil(own, ordering: ordered(.acquiring, .pollIdleWait)) {
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
            try storeOwnStatus(CPUWord(raw: old.status(.kernel).raw &+ CPUWord.counterUnit))
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
        // MUTANT nmiExitDropsCounterStep: the counter as before the NMI.
        let step: UInt32 = has(.nmiExitDropsCounterStep) ? 0 : 1
        let status = CPUWord(raw: old.status(old.mode, polling: old.polling).raw &+ UInt64(step) &* CPUWord.counterUnit)
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
            try platform.store(status.raw | (now.raw & CPUWord.workMask), at: own, ordering: ordered(.releasing, .nmiExitStore))
        }
        // No CR3 write here: the paranoid NMI exit restores the CR3 its entry saved
        // (the NMI may have hit the late-exit window with the kernel CR3 still live).
    }
}
