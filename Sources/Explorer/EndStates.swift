import CPUFlags

/// The checks of a state with no enabled move: progress (a deadlock), the one accepted
/// end state of a grace period, and the invariants that hold at the end (owed work
/// still in the word, no on-behalf work left open). The ghost checks made along the way
/// are in Invariants.swift.
extension Explorer {
    /// Checks a state with no enabled move.
    func checkTerminal(_ s: MachineState, on m: Machine) -> Violation? {
        var blocked: [String] = []
        var blockedCPUs: [Int] = []
        for c in 0..<scenario.cpuCount {
            let cpu = s.cpus[c]
            let top = cpu.frames[cpu.frames.count - 1]
            if cpu.frames.count > 1 || Int(top.pc) < ops(top.kind, cpu: c) {
                var reason = "blocked"
                m.explaining = true
                if case .blocked(let why) = apply(.step(c), to: s, on: m) { reason = why }
                m.explaining = false
                let op = top.kind == .task ? scenario.programs[c][Int(top.pc)].description : "\(top.kind) handler"
                blocked.append("cpu\(c) stuck in \(op): \(reason)")
                blockedCPUs.append(c)
            }
        }
        // Requirement (3) for every CPU the grace period sampled and has not credited
        // yet, including ones it has not started waiting on: an EQS entered since the
        // sample must be enough (buffers are empty here: drains are always enabled).
        let map = AddressMap(scenario)
        for t in 0..<scenario.cpuCount where s.ghost.gpSample[t] >= 0 && s.cpus[t].eqsEntries != s.ghost.gpSample[t] {
            let now = CPUWord(raw: s.memory[map.address(Location(.word, t))])
            if !m.core(t).stoppedSince(CPUWord(raw: s.ghost.gpSnapshot[t]), now: now) {
                return Violation(invariant: .rcuSafety, message: "grace period not credited: cpu\(t) entered an extended quiescent state since it was sampled (\(CPUWord(raw: s.ghost.gpSnapshot[t]))), and its word \(now) still does not credit it (requirement 3)")
            }
        }
        if blocked.count == 1 && s.ghost.gpWaitingOn >= 0 {
            // The one accepted end state: a grace period still waiting on a CPU whose
            // program ended in the kernel and that has not entered an EQS since the
            // sample: its next quiescent state is the end of that kernel stretch,
            // beyond the scenario's end. A CPU that entered an EQS since the sample is
            // never excused (requirement 3, checked above and in
            // checkGracePeriodCanFinish). A CPU left in lazy user mode is not excused
            // either: INDETERMINATE is not RCU-idle, nothing credits it but an
            // interrupt (the expedited grace period's, or the tick and RCU's FQS IPI,
            // which the model does not have), and the explorer reports that as the
            // deadlock it is. Anything else is a deadlock too.
            let t = Int(s.ghost.gpWaitingOn)
            let word = CPUWord(raw: s.memory[map.address(Location(.word, t))])
            let outsideEQS = s.cpus[t].context == .kernel && word.mode == .kernel
            let waiter = s.cpus[blockedCPUs[0]].frames
            let gpBlocked = waiter.count == 1 && scenario.programs[blockedCPUs[0]][Int(waiter[0].pc)] == .synchronizeRCU
            if !outsideEQS || !gpBlocked {
                return Violation(invariant: .progress, message: "deadlock: " + blocked.joined(separator: "; "))
            }
            if s.cpus[t].eqsEntries != s.ghost.gpSample[t] {
                return Violation(invariant: .rcuSafety, message: "grace period not credited: cpu\(t) went through an extended quiescent state since it was sampled, yet the grace period still waits on it (requirement 3); \(blocked[0])")
            }
            return nil
        }
        if !blocked.isEmpty {
            return Violation(invariant: .progress, message: "deadlock: " + blocked.joined(separator: "; "))
        }
        if let forbidden = scenario.litmusForbidden,
           forbidden.loads.allSatisfy({ s.cpus[$0.key].litmusSeen == LitmusOutcome.packed($0.value) }),
           forbidden.final.allSatisfy({ s.memory[map.objectField($0.key)] == UInt64($0.value) }) {
            return Violation(invariant: .litmusOutcome, message: "outcome \(forbidden) reached")
        }
        for c in 0..<scenario.cpuCount {
            // The word of the task on c (c's own under per-CPU words).
            let word = CPUWord(raw: s.memory[map.address(Location(.word, Int(s.cpus[c].task)))])
            if let lost = s.ghost.owed.violationAtEnd(cpu: c, word: word) {
                return Violation(invariant: .noLostWork, message: lost)
            }
            // Every callback a housekeeper asked for ran, or is still announced by the
            // CALLBACKS bit of its CPU's word (that CPU runs it at its next entry).
            let unrun = s.ghost.requested[c] & ~s.ghost.ran[c]
            if unrun != 0 && !word.work.contains(.callbacks) {
                return Violation(invariant: .noLostWork, message: "callback(s) 0b\(String(unrun, radix: 2)) requested for cpu\(c) never ran, and its word \(word) does not announce them: lost")
            }
            if s.ghost.onBehalf[c] != 0 {
                return Violation(invariant: .pinExclusion, message: "cpu\(c) still marked as worked on behalf of at the end")
            }
        }
        return nil
    }
}
