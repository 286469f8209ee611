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
                if case .blocked(let why) = apply(.step(c), to: s, on: m) { reason = why }
                let op = top.kind == .task ? scenario.programs[c][Int(top.pc)].description : "\(top.kind) handler"
                blocked.append("cpu\(c) stuck in \(op): \(reason)")
                blockedCPUs.append(c)
            }
        }
        if blocked.count == 1 && s.ghost.gpWaitingOn >= 0 {
            // The only thing left may be a grace period waiting on a CPU whose program
            // ended in the kernel. Fine if that CPU has been in one kernel stretch since
            // the sample (it reaches a quiescent state after the scenario's end). Not
            // fine if it went through an EQS since: requirement (3), it must be
            // credited. Anything else (the CPU ended in user mode, say) is a deadlock.
            let t = Int(s.ghost.gpWaitingOn)
            let word = CPUWord(raw: s.memory[AddressMap(cpuCount: scenario.cpuCount).address(Location(.word, t))])
            let inKernel = s.cpus[t].context == .kernel && word.mode == .kernel
            let waiter = s.cpus[blockedCPUs[0]].frames
            let gpBlocked = waiter.count == 1 && scenario.programs[blockedCPUs[0]][Int(waiter[0].pc)] == .synchronizeRCU
            if !inKernel || !gpBlocked {
                return Violation(invariant: .progress, message: "deadlock: " + blocked.joined(separator: "; "))
            }
            if s.cpus[t].eqsEntries != s.ghost.gpSampleEQS {
                return Violation(invariant: .rcuSafety, message: "grace period not credited: cpu\(t) went through an extended quiescent state since it was sampled, yet the grace period still waits on it (requirement 3); \(blocked[0])")
            }
            return nil
        }
        if !blocked.isEmpty {
            return Violation(invariant: .progress, message: "deadlock: " + blocked.joined(separator: "; "))
        }
        if let forbidden = scenario.litmusForbidden, s.cpus.map({ Int($0.litmusSeen) }) == forbidden {
            return Violation(invariant: .litmusOutcome, message: "outcome \(forbidden) reached")
        }
        let map = AddressMap(cpuCount: scenario.cpuCount)
        for c in 0..<scenario.cpuCount {
            let word = CPUWord(raw: s.memory[map.address(Location(.word, c))])
            if let lost = s.ghost.owed.violationAtEnd(cpu: c, word: word) {
                return Violation(invariant: .noLostWork, message: lost)
            }
            if s.ghost.onBehalf[c] != 0 {
                return Violation(invariant: .pinExclusion, message: "cpu\(c) still marked as worked on behalf of at the end")
            }
        }
        return nil
    }
}
