import CPUFlags

/// Every ghost check of the explorer, each next to its definition (the invariants of
/// BRIEF §4). The model platform's hooks and the harness's ops call these at the points
/// named; the end-state checks are `Explorer.checkTerminal`. A check throws the
/// violation; it never changes the state.
extension Machine {
    // MARK: No lost work

    /// Every deferred request runs on the target before that target executes any
    /// kernel code the work protects: at `kernelCodeBegins` the CPU owes nothing (an NMI:
    /// nothing NMI-safe). The rule is the shared ledger's (`OwedWork`).
    func checkNoLostWork(kernelCodeOn c: Int, context: KernelContext) throws(Suspend) {
        if let lost = state.ghost.owed.violationIfKernelCodeBegins(on: c, context: context) {
            throw fail(.noLostWork, lost)
        }
    }

    /// Every queued callback runs exactly once: only callbacks that were queued, never
    /// one that already ran.
    func checkCallbacksRunOnce(_ ids: UInt64, of target: Int, on runner: Int) throws(Suspend) {
        let g = state.ghost
        if ids & ~g.queued[target] != 0 {
            throw fail(.noLostWork, "cpu\(runner) ran callbacks 0b\(String(ids, radix: 2)) never queued for cpu\(target)")
        }
        if ids & g.ran[target] != 0 {
            throw fail(.noLostWork, "cpu\(runner) ran callback(s) 0b\(String(ids & g.ran[target], radix: 2)) of cpu\(target) a second time")
        }
    }

    // MARK: No stale translation

    /// After a requester considers a kernel TLB flush complete, no CPU uses the old
    /// translation in kernel mode; under PTI a kernel access with the user CR3 loaded is
    /// a fault (detected), reported as such. The access fills the TLB from the PTE.
    func kernelDataAccess(_ c: Int) throws(Suspend) {
        if scenario.pti && state.cpus[c].userCR3 {
            throw fail(.noStaleTranslation, "cpu\(c) touched kernel memory with the user CR3 loaded: page fault (detected)")
        }
        if state.cpus[c].tlb < 0 {
            state.cpus[c].tlb = Int8(read(map.pte))
        }
        let v = state.cpus[c].tlb
        touchGlobal(components.flushDone, write: false)
        if v < state.ghost.flushCompleted {
            throw fail(.noStaleTranslation, "cpu\(c) used translation v\(v) after the flush of v\(state.ghost.flushCompleted) completed")
        }
    }

    /// Kernel data is touched only in kernel mode (NMIs aside, which enter themselves).
    func checkKernelAccessInKernelMode(_ c: Int) throws(Suspend) {
        if state.cpus[c].context != .kernel {
            throw fail(.noStaleTranslation, "cpu\(c) accesses kernel memory outside kernel mode (\(state.cpus[c].context))")
        }
    }

    // MARK: No stale text

    /// No CPU executes patched text without having serialized after the patch completed.
    func checkNoStaleText(_ c: Int) throws(Suspend) {
        touchGlobal(components.patchDone, write: false)
        let seen = state.cpus[c].textSeen
        if seen < state.ghost.textCompleted {
            throw fail(.noStaleText, "cpu\(c) executes text v\(seen) after the patch to v\(state.ghost.textCompleted) completed")
        }
    }

    // MARK: Pin exclusion

    /// While a pinner runs work on a CPU's behalf, that CPU runs no kernel code (task or
    /// IRQ level; NMI code must not touch what pinners touch and is exempt).
    func checkPinExclusion(_ c: Int) throws(Suspend) {
        let p = state.ghost.onBehalf[c]
        if p != 0 && !state.cpus[c].inNMI {
            throw fail(.pinExclusion, "cpu\(c) runs kernel code while \(runners(p)) works on its behalf")
        }
    }

    /// Pin exclusion on the pinned side, past the entry: from the write that makes its
    /// word KERNEL (the entry's RMW, at task or IRQ level) until `kernelCodeEnds`, a CPU
    /// whose pinner is working on its behalf makes no access but the pin handshake: its
    /// own word and its pin count. Its callback queue, its CR3, `sync_core`, kernel data,
    /// any other CPU's cells: all wait until the pinner is done. (NMIs are exempt: NMI
    /// code does not wait for pinners and must not touch what they touch.) This is
    /// wider than the check at `kernelCodeBegins`, which misses work the entry does on
    /// its own per-CPU state before that point.
    func checkPinnedCPUWaits(_ c: Int, touching at: Location) throws(Suspend) {
        if at.cell == .word && at.cpu == Int(state.cpus[c].task) { return }
        if at.cpu == c && (at.cell == .pinCount || at.cell == .counter) { return }
        try checkPinnedCPUWaits(c, doing: "touches \(at)")
    }

    /// (`what` is built only for a violation: built on every access it was an eighth
    /// of the search's instructions.)
    func checkPinnedCPUWaits(_ c: Int, doing what: @autoclosure () -> String) throws(Suspend) {
        let cpu = state.cpus[c]
        let p = state.ghost.onBehalf[c]
        if p != 0 && cpu.kernelSide && !cpu.inNMI {
            throw fail(.pinExclusion, "cpu\(c) \(what()) past its entry while \(runners(p)) works on its behalf")
        }
    }

    /// The CPUs of an `onBehalf` mask, for messages.
    func runners(_ mask: UInt8) -> String {
        (0..<cpuCount).filter { mask & (1 << UInt8($0)) != 0 }.map { "cpu\($0)" }.joined(separator: " and ")
    }

    /// On-behalf work never starts on a CPU that is running kernel code.
    func checkOnBehalfMayBegin(for target: Int, by runner: Int) throws(Suspend) {
        touchGhost(target)
        if state.cpus[target].context == .kernel {
            throw fail(.pinExclusion, "cpu\(runner) starts work on behalf of cpu\(target), which is running kernel code")
        }
    }

    /// Another CPU runs a CPU's callbacks only while holding it pinned.
    func checkCallbacksRunnerHoldsPin(of target: Int, on runner: Int) throws(Suspend) {
        if runner != target && state.ghost.onBehalf[target] & (1 << UInt8(runner)) == 0 {
            throw fail(.pinExclusion, "cpu\(runner) ran cpu\(target)'s callbacks without holding it pinned")
        }
    }

    // MARK: RCU safety

    /// A grace period never ends while a reader that began before it still runs.
    func checkNoReaderOutlivesGracePeriod() throws(Suspend) {
        for c in state.cpus.indices { touchGhost(c) }
        for (i, cpu) in state.cpus.enumerated() where cpu.reader[0] == 1 || cpu.reader[1] == 1 {
            throw fail(.rcuSafety, "grace period ended while cpu\(i) is still in a reader that began before it")
        }
    }

    /// Requirement (1a): what readers of object 0 wrote before their CPUs went quiescent
    /// is visible to the code after the grace period (`field` is what that code read).
    func checkReadersWritesVisible(field: UInt64) throws(Suspend) {
        touchGlobal(components.gracePeriod, write: false)
        if state.ghost.written & 1 != 0 && field == 0 {
            throw fail(.rcuSafety, "a reader's write to object 0 is not visible after the grace period (requirement 1a)")
        }
    }

    /// RCU requirement (3), a property of its own: once a CPU has entered an extended
    /// quiescent state since a grace period sampled it outside one (it wrote USER or
    /// IDLE into its word after the sample: `eqsEntries` grew), that grace period can
    /// finish its wait on that CPU without any further step of the CPU: with the CPU's
    /// store buffer drained (hardware, not help), the wait's condition holds. Checked
    /// wherever the wait is found blocked, so no end state can excuse it; the end-state
    /// form for CPUs the grace period has not reached yet is in `checkTerminal`.
    func checkGracePeriodCanFinish(waitingOn at: Location, _ condition: (UInt64) -> Bool) throws(Suspend) {
        guard let t = othersWord(at) else { return }
        touchGhost(t)
        let sample = state.ghost.gpSample[t]
        guard sample >= 0 && state.cpus[t].eqsEntries != sample else { return }
        let a = map.address(at)
        touched.reads |= components.buffer(t) | components.memory(a)
        // What the waiter would read once t's buffered stores to its word drain.
        let drained = state.buffers[t].last(where: { Int($0.address) == a })?.value ?? state.memory[a]
        if !condition(drained) {
            throw fail(.rcuSafety, "grace period not credited: cpu\(t) entered an extended quiescent state since it was sampled (\(CPUWord(raw: state.ghost.gpSnapshot[t]))), yet the grace period still waits on it at \(CPUWord(raw: drained)) (requirement 3)")
        }
    }

    /// A reader never uses an object a grace period freed.
    func checkNoUseAfterFree(_ c: Int, object p: Int) throws(Suspend) {
        touchGlobal(components.gracePeriod, write: false)
        if state.ghost.freed & (1 << UInt8(p)) != 0 {
            throw fail(.rcuSafety, "cpu\(c) uses object \(p) after a grace period freed it")
        }
    }

    // MARK: Deferral is real, core assertions

    /// A USER or IDLE target is never interrupted for deferrable work (the rule is the
    /// core's `Route.deferralViolation`, shared with the simulator).
    func checkDeferralIsReal(_ route: Route, kind: WorkKind, target: Int, requester: Int) throws(Suspend) {
        if let wrong = route.deferralViolation(kind: kind, target: target, requester: requester) {
            throw fail(.deferralIsReal, wrong)
        }
    }

    /// The core's own assertions (`Platform.check`).
    func checkCoreAssertion(_ holds: Bool, _ message: @autoclosure () -> String) throws(Suspend) {
        if !holds { throw fail(.coreAssertion, message()) }
    }
}
