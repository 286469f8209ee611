import Atomics
import Testing

@testable import CPUFlags

@Test func layoutTilesTheWord() {
    #expect(CPUWord.layoutIsTiled)
    let w = CPUWord(mode: .idle, counter: 12345, polling: true, work: [.kernelTLBFlush, .pinned])
    #expect(w.mode == .idle)
    #expect(w.counter == 12345)
    #expect(w.polling)
    #expect(w.work == [.kernelTLBFlush, .pinned])
    // The entry's fetch-add steps the counter by `counterUnit`; at its top the carry
    // falls off bit 63 and leaves the mode, polling and work bits alone.
    let top = CPUWord(mode: .kernel, counter: UInt32((1 << CPUWord.counterBits) - 1), work: [.callbacks])
    let wrapped = CPUWord(raw: top.raw &+ CPUWord.counterUnit)
    #expect(wrapped.counter == 0 && wrapped.mode == .kernel && wrapped.work == [.callbacks])
    for mode in Mode.allCases { #expect(CPUWord(mode: mode, counter: 7).mode == mode) }
}

@Test func workKindsHaveClasses() {
    #expect(WorkKind.kernelTLBFlush.workClass == .deferrable)
    #expect(WorkKind.syncCore.workClass == .deferrable)
    #expect(WorkKind.cacheDrain.workClass == .onBehalf)
    #expect(WorkKind.userTLBFlush.workClass == .mustInterrupt)
    #expect(WorkKind.reschedule.bit == nil)
    for k in WorkKind.allCases where k.workClass == .mustInterrupt { #expect(k.bit == nil) }
}

/// A machine of real atomics driven from one thread: the transitions' effects.
struct Rig {
    let p = HardwarePlatform(cpuCount: 3)
    func cpu(_ c: Int, _ config: ProtocolConfig = ProtocolConfig()) -> CPUFlags<HardwarePlatform> { CPUFlags(platform: p, cpu: c, config: config) }
}

@Test func roundTripDefersAndPicksUpWork() {
    let r = Rig()
    defer { r.p.deallocate() }
    let iso = r.cpu(1), hk = r.cpu(0)
    #expect(r.p.word(1).mode == .kernel)
    // In KERNEL the request must interrupt.
    #expect(hk.request(.kernelTLBFlush, of: 1) == .interrupt(observed: r.p.word(1).raw))
    iso.exitToUser()
    #expect(r.p.word(1).mode == .user)
    #expect(r.p.word(1).counter == 0, "the counter steps when the EQS is left, not entered")
    #expect(hk.request(.kernelTLBFlush, of: 1) == .deferred)
    #expect(hk.request(.syncCore, of: 1) == .deferred)
    #expect(r.p.word(1).work == [.kernelTLBFlush, .syncCore])
    let owed = iso.enterFromUser()
    #expect(owed == [.kernelTLBFlush, .syncCore])
    #expect(r.p.word(1) == CPUWord(mode: .kernel, counter: 1))
    // Nothing owed the second time; the counter moved once per EQS left.
    iso.exitToUser()
    #expect(iso.enterFromUser() == [])
    #expect(r.p.word(1).counter == 2)
}

@Test func lazyExitInterruptsAndKeepsCounter() {
    let r = Rig()
    defer { r.p.deallocate() }
    let iso = r.cpu(1, ProtocolConfig(exitPolicy: .lazy)), hk = r.cpu(0)
    iso.exitToUser()
    #expect(r.p.word(1).mode == .indeterminate)
    #expect(r.p.word(1).counter == 0)
    if case .deferred = hk.request(.kernelTLBFlush, of: 1) { Issue.record("INDETERMINATE must not defer") }
    #expect(iso.enterFromUser() == [])
    #expect(r.p.word(1).mode == .kernel)
}

@Test func adaptivePromotesAfterAnIPI() {
    let r = Rig()
    defer { r.p.deallocate() }
    let iso = r.cpu(1, ProtocolConfig(exitPolicy: .adaptive))
    iso.exitToUser()
    let frame = iso.irqEnter()
    #expect(frame.interrupted == .indeterminate)
    iso.irqExit(frame, wasIPI: true)
    #expect(r.p.word(1).mode == .user)
    let f2 = iso.irqEnter()
    iso.irqExit(f2, wasIPI: false)
    #expect(r.p.word(1).mode == .user, "a CPU interrupted in USER stays USER")
    // The promotion survives a syscall and ends at a context switch.
    iso.enterFromUser()
    iso.exitToUser()
    #expect(r.p.word(1).mode == .user, "promoted across a syscall")
    iso.enterFromUser()
    iso.contextSwitch()
    iso.exitToUser()
    #expect(r.p.word(1).mode == .indeterminate, "a context switch ends the promotion")
    let lazy = r.cpu(2, ProtocolConfig(exitPolicy: .lazy))
    lazy.exitToUser()
    let f3 = lazy.irqEnter()
    lazy.irqExit(f3, wasIPI: true)
    #expect(r.p.word(2).mode == .indeterminate)
}

@Test func explicitRequestForUser() {
    let r = Rig()
    defer { r.p.deallocate() }
    let lazy = r.cpu(1, ProtocolConfig(exitPolicy: .lazy))
    lazy.exitToUser(forceUser: true)
    #expect(r.p.word(1).mode == .user)
    if case .interrupt = r.cpu(0).request(.syncCore, of: 1) { Issue.record("USER must defer") }
    #expect(lazy.enterFromUser() == [.syncCore])
}

@Test func pollingIdleIsWokenByABit() {
    let r = Rig()
    defer { r.p.deallocate() }
    let iso = r.cpu(1), hk = r.cpu(0)
    iso.enterIdle(polling: false)
    if case .deferred = hk.wake(1) { Issue.record("non-polling idle must be interrupted") }
    _ = iso.exitIdle()
    iso.enterIdle(polling: true)
    #expect(hk.wake(1) == .deferred)
    iso.pollIdle()  // returns at once: WAKE is set
    #expect(iso.exitIdle() == [.wake])
    #expect(r.p.word(1).polling == false)
}

@Test func nmiRestoresTheWordItReplaced() {
    let r = Rig()
    defer { r.p.deallocate() }
    let iso = r.cpu(1), hk = r.cpu(0)
    iso.exitToUser()
    #expect(hk.queueCallback(3, for: 1) == .deferred)
    let before = r.p.word(1)
    let frame = iso.nmiEnter()
    #expect(r.p.word(1).mode == .kernel)
    if case .deferred = hk.request(.kernelTLBFlush, of: 1) { Issue.record("NMI in progress must not defer") }
    iso.nmiExit(frame)
    let after = r.p.word(1)
    #expect(after.mode == before.mode)
    #expect(after.work == before.work, "the callback bit the NMI could not run is still owed")
    #expect(after.counter == before.counter + 1, "the NMI was a non-idle stretch of its own")
}

@Test func pinningHoldsAndRunsOnBehalf() {
    let ran = ManagedAtomic<UInt64>(0)
    let p = HardwarePlatform(cpuCount: 2) { ids, target, runner in
        #expect(target == 1)
        #expect(runner == 0)
        ran.store(ids, ordering: .relaxed)
    }
    defer { p.deallocate() }
    let iso = CPUFlags(platform: p, cpu: 1), hk = CPUFlags(platform: p, cpu: 0)
    #expect(hk.tryPin(1) == false, "a CPU in KERNEL cannot be pinned")
    iso.exitToUser()
    hk.enqueueCallback(5, for: 1)
    #expect(hk.runOnBehalf(of: 1))
    #expect(ran.load(ordering: .relaxed) == 1 << 5)
    #expect(p.word(1).work.contains(.pinned))
    #expect(p.load(Location(.pinCount, 1), ordering: .relaxed) == 0)
    // The stale PINNED bit costs the next entry one look at a zero count.
    #expect(iso.enterFromUser() == [.pinned])
}

@Test func rcuCountsExtendedQuiescentStates() {
    let r = Rig()
    defer { r.p.deallocate() }
    let gp = r.cpu(0), iso = r.cpu(1)
    let snap = gp.rcuSample(1)
    #expect(!gp.inExtendedQuiescentState(snap))
    #expect(!gp.stoppedSince(snap, now: gp.rcuSample(1)), "same stretch (2a)")
    iso.enterIdle(polling: false)
    #expect(gp.stoppedSince(snap, now: gp.rcuSample(1)), "in an EQS now")
    _ = iso.exitIdle()
    #expect(gp.stoppedSince(snap, now: gp.rcuSample(1)), "flipped through idle: credited (3)")
    let noCounter = r.cpu(0, ProtocolConfig(mutations: .noRCUCounter))
    #expect(!noCounter.stoppedSince(snap, now: noCounter.rcuSample(1)), "the mutant misses the flip")
    // A grace period with every other CPU in an EQS returns at once.
    iso.exitToUser()
    r.cpu(2).enterIdle(polling: false)
    gp.gracePeriod()
}

@Test func submitRoutesEachTargetByItsWord() {
    let r = Rig()
    defer { r.p.deallocate() }
    r.cpu(1).exitToUser()
    // CPU 2 stays in KERNEL; the caller (CPU 0) is skipped.
    let routes = r.cpu(0).submit(.kernelTLBFlush, to: [0, 1, 2])
    #expect(routes.map(\.target) == [1, 2])
    #expect(routes[0].route == .deferred)
    #expect(routes[1].route == .interrupt(observed: r.p.word(2).raw))
    #expect(r.p.word(1).work == [.kernelTLBFlush])
    #expect(r.p.word(2).work == [])
}

/// Every class takes its routes, decided by the core from the target's word.
@Test func routesFollowTheClass() {
    let r = Rig()
    defer { r.p.deallocate() }
    let hk = r.cpu(0)
    r.cpu(1).exitToUser()
    // Must interrupt: nothing read, whatever the mode.
    #expect(hk.route(.userTLBFlush, to: 1) == .interrupt(observed: nil))
    // RCU: a CPU in USER is in an EQS and skipped; one in KERNEL must be interrupted.
    #expect(hk.route(.rcuExpedited, to: 1) == .skipped)
    if case .interrupt(let w?) = hk.route(.rcuExpedited, to: 2) { #expect(CPUWord(raw: w).mode == .kernel) } else {
        Issue.record("a CPU in KERNEL is not skipped")
    }
    // A reschedule wakes a polling idle CPU by the bit, and interrupts a CPU in USER.
    if case .interrupt = hk.route(.reschedule, to: 1) {} else { Issue.record("USER is not woken by a bit") }
    r.cpu(2).enterIdle(polling: true)
    #expect(hk.route(.reschedule, to: 2) == .wokenByBit)
    #expect(r.p.word(2).work.contains(.wake))
    // A queued callback is deferred with CALLBACKS; a cache drain is pinned and run here.
    #expect(hk.route(.queuedCallback, to: 1, callback: 1) == .deferred)
    #expect(r.p.word(1).work.contains(.callbacks))
}

/// The interrupt side: a kernel TLB flush arriving by IPI runs on the CR3 write, a
/// callback runs from the queue; the word is left as it was found.
@Test func handleInterruptRunsEachKind() {
    let ran = ManagedAtomic<UInt64>(0)
    let p = HardwarePlatform(cpuCount: 2) { ids, _, _ in ran.store(ids, ordering: .relaxed) }
    defer { p.deallocate() }
    let iso = CPUFlags(platform: p, cpu: 1), hk = CPUFlags(platform: p, cpu: 0)
    hk.enqueueCallback(2, for: 1)  // queued while CPU 1 is in KERNEL: an IPI must run it
    iso.exitToUser()
    let before = p.word(1)
    iso.handleInterrupt([.queuedCallback, .kernelTLBFlush])
    #expect(ran.load(ordering: .relaxed) == 1 << 2)
    #expect(p.word(1).mode == .user)
    #expect(p.word(1).counter == before.counter + 1, "the interrupt was a non-idle stretch")
}
