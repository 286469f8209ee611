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
            throw fail(.pinExclusion, "cpu\(c) runs kernel code while cpu\(p - 1) works on its behalf")
        }
    }

    /// On-behalf work never starts on a CPU that is running kernel code.
    func checkOnBehalfMayBegin(for target: Int, by runner: Int) throws(Suspend) {
        if state.cpus[target].context == .kernel {
            throw fail(.pinExclusion, "cpu\(runner) starts work on behalf of cpu\(target), which is running kernel code")
        }
    }

    /// Another CPU runs a CPU's callbacks only while holding it pinned.
    func checkCallbacksRunnerHoldsPin(of target: Int, on runner: Int) throws(Suspend) {
        if runner != target && state.ghost.onBehalf[target] != Int8(runner + 1) {
            throw fail(.pinExclusion, "cpu\(runner) ran cpu\(target)'s callbacks without holding it pinned")
        }
    }

    // MARK: RCU safety

    /// A grace period never ends while a reader that began before it still runs.
    func checkNoReaderOutlivesGracePeriod() throws(Suspend) {
        for (i, cpu) in state.cpus.enumerated() where cpu.reader.contains(1) {
            throw fail(.rcuSafety, "grace period ended while cpu\(i) is still in a reader that began before it")
        }
    }

    /// Requirement (1a): what readers of object 0 wrote before their CPUs went quiescent
    /// is visible to the code after the grace period (`field` is what that code read).
    func checkReadersWritesVisible(field: UInt64) throws(Suspend) {
        if state.ghost.written & 1 != 0 && field == 0 {
            throw fail(.rcuSafety, "a reader's write to object 0 is not visible after the grace period (requirement 1a)")
        }
    }

    /// A reader never uses an object a grace period freed.
    func checkNoUseAfterFree(_ c: Int, object p: Int) throws(Suspend) {
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
