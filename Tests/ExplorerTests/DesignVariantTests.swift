import CPUFlags
import Testing

@testable import Explorer

/// The parts of BRIEF §2 added last: two count-then-check pinners of one CPU under the
/// pin lock, the §2.12 per-task words with a migration, and machine checks nested in
/// NMIs. The standard-scenario tests check their verdicts; these check that the
/// situations each scenario is there for are actually reached, so that a passing
/// verdict is not a vacuous one.

/// Both count-then-check pinners hold cpu1 at once (the count reaches 2) in some state.
@Test func twoCountThenCheckPinnersHoldOneCPUAtOnce() throws {
    let s = try #require(Scenario.named("pin-lock"))
    #expect(s.config.pinProtocol == .countThenCheck)
    let map = AddressMap(s)
    var both = false, lockHeld = false
    walkStates(s, .sc, limit: 1_000_000) { state in
        if state.memory[map.address(Location(.pinCount, 1))] == 2 { both = true }
        if state.memory[map.address(Location(.pinLock, 1))] == 1 { lockHeld = true }
    }
    #expect(both, "no state with both pinners counted")
    #expect(lockHeld, "the pin lock is never taken")
}

/// In task-migration, task 1 reaches user mode on cpu2 with its word tagged for cpu2
/// while cpu1 runs the spare task: the state in which a requester holding a stale
/// `current` of cpu1 must interrupt. (The verdicts are the standard-set tests': the
/// core passes under every model, the mutant that defers there is rejected.)
@Test func aTaskMigratesAndReturnsToUserElsewhere() throws {
    let s = try #require(Scenario.named("task-migration"))
    let map = AddressMap(s)
    #expect(s.taskCount == 4)
    var migrated = false
    walkStates(s, .sc, limit: 1_000_000) { state in
        let w = CPUWord(raw: state.memory[map.address(Location(.word, 1))])
        if state.cpus[2].task == 1 && state.cpus[1].task == 3 && w.mode == .user && w.onCPU == 2 { migrated = true }
    }
    #expect(migrated)
}

/// A word tagged for one CPU speaks only for it; an untagged word (per-CPU design) for
/// any; the status of a word keeps counter and tag.
@Test func theCPUTagSaysWhichCPUAWordSpeaksFor() {
    let untagged = CPUWord(mode: .user, counter: 5)
    let tagged = CPUWord(mode: .user, counter: 5, onCPU: 2)
    #expect(untagged.onCPU == nil && untagged.isOn(0) && untagged.isOn(3))
    #expect(tagged.onCPU == 2 && tagged.isOn(2) && !tagged.isOn(1) && !tagged.isOn(3))
    let k = tagged.adding(.kernelTLBFlush).status(.kernel)
    #expect(k.mode == .kernel && k.counter == 5 && k.onCPU == 2 && k.work.isEmpty)
    #expect(CPUWord.layoutIsTiled)
    // Route.deferralViolation: interrupting a USER word tagged for another CPU is right.
    let other = Route.interrupt(observed: tagged.raw)
    #expect(other.deferralViolation(kind: .kernelTLBFlush, target: 1, requester: 0) == nil)
    #expect(other.deferralViolation(kind: .kernelTLBFlush, target: 2, requester: 0) != nil)
}

/// A machine check lands inside an NMI handler on cpu1 (two NMI-path frames at once),
/// and only with an `mces` budget.
@Test func aMachineCheckNestsInAnNMI() throws {
    let s = try #require(Scenario.named("mce-nmi"))
    func deepest(_ s: Scenario) -> Int {
        var depth = 0
        walkStates(s, .sc, limit: 1_000_000) { state in
            depth = max(depth, state.cpus[1].frames.filter { $0.kind == .nmi }.count)
        }
        return depth
    }
    #expect(deepest(s) == 2)
    var without = s
    without.mces = [0, 0]
    #expect(deepest(without) == 1)
}

/// A CPU of a per-task machine waits on its own task's word (polling idle in the spare
/// task, slot 4 of a 4-CPU machine): not a grace period's wait on another CPU's word.
/// The explorer used to take the task slot for a CPU there and trapped.
@Test func aPerTaskCPUPollsItsOwnTasksWord() throws {
    let s = try ScenarioFile.parse("""
        scenario pt-poll
        words per-task
        cpu 0 kernel: wake(1)
        cpu 1 kernel: switch_to(4) enter_idle(poll) poll_idle exit_idle
        cpu 2 kernel:
        cpu 3 kernel:
        """, source: "pt-poll")
    for model in [MemoryModel.sc, .tso] {
        let r = Explorer(scenario: s, model: model).run()
        #expect(r.passed, "\(model): \(r.violation?.message ?? "incomplete")")
    }
}
