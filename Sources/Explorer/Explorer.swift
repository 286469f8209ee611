import CPUFlags


/// The result of exploring one scenario under one memory model.
public struct Report: Sendable, Codable {
    public var scenario: String
    public var model: MemoryModel
    public var mutations: [String]
    /// Distinct states reached (after hashing).
    public var states: Int
    /// Executions: terminal states reached (complete runs, up to state merging).
    public var executions: Int
    /// Transitions taken (successor states computed).
    public var transitions: Int
    public var seconds: Double
    /// Length of the longest execution explored, in steps.
    public var depth: Int
    /// True when a limit stopped the exploration before it was exhaustive.
    public var incomplete: String?
    public var violation: Violation?
    /// Verdict per invariant of BRIEF §4: "ok", "VIOLATED", or "unknown" (the run stopped
    /// at another invariant's violation, or at a limit, before it was exhaustive).
    public var invariants: [String: String] = [:]
    public var counterexample: Counterexample?
    /// The core's operations this run reached (`Platform.reached`), by name.
    public var operationsReached: [String] = []

    public var passed: Bool { violation == nil && incomplete == nil }
    public var statesPerSecond: Double { seconds > 0 ? Double(states) / seconds : 0 }

    static func verdicts(violation: Violation?, incomplete: String?) -> [String: String] {
        var out: [String: String] = [:]
        for inv in Violation.Invariant.allCases where inv != .litmusOutcome {
            if let v = violation {
                out[inv.rawValue] = v.invariant == inv ? "VIOLATED" : "unknown"
            } else {
                out[inv.rawValue] = incomplete == nil ? "ok" : "unknown"
            }
        }
        return out
    }
}

/// Breadth-first, exhaustive exploration of every interleaving of a scenario, with
/// state hashing. Breadth-first so that the first violation found has a shortest
/// counterexample.
public struct Explorer {
    public var scenario: Scenario
    public var model: MemoryModel
    public var limits: Limits
    /// Called every ~second with (states, frontier, depth) on long runs.
    public var progress: ((Int, Int, Int) -> Void)?

    public init(scenario: Scenario, model: MemoryModel, limits: Limits = Limits(), progress: ((Int, Int, Int) -> Void)? = nil) {
        self.scenario = scenario
        self.model = model
        self.limits = limits
        self.progress = progress
    }

    func initialState() -> MachineState {
        let n = scenario.cpuCount
        let map = AddressMap(cpuCount: n)
        var memory = [UInt64](repeating: 0, count: map.count)
        var cpus: [CPUState] = []
        for c in 0..<n {
            let mode = scenario.start[c]
            let cells = CPUWord.initialCells(mode)
            memory[map.address(Location(.word, c))] = cells.word
            memory[map.address(Location(.counter, c))] = cells.counter
            let inUser = mode == .user || mode == .indeterminate
            cpus.append(CPUState(
                frames: [Frame(kind: .task)],
                context: inUser ? .user : (mode == .idle ? .idle : .kernel),
                userCR3: scenario.pti && inUser,
                tlb: 0, textSeen: 0,
                nmisLeft: Int8(scenario.nmis[c]), irqsLeft: Int8(scenario.irqs[c])))
        }
        return MachineState(
            memory: memory,
            buffers: Array(repeating: [], count: n),
            cpus: cpus,
            ghost: GlobalGhost(
                onBehalf: Array(repeating: 0, count: n), outstanding: Array(repeating: 0, count: n),
                owed: OwedWork(cpuCount: n),
                queued: Array(repeating: 0, count: n), ran: Array(repeating: 0, count: n)))
    }

    func ops(_ kind: FrameKind, cpu: Int) -> Int {
        kind == .task ? scenario.programs[cpu].count : 1
    }

    /// The outcome of trying one move.
    enum StepResult {
        case next(MachineState)
        /// The move is not enabled; the reason says what the CPU waits for.
        case blocked(String)
        case violation(Violation)
    }

    /// Applies `move` to a copy of `state` on `machine`.
    func apply(_ move: Move, to state: MachineState, on m: Machine) -> StepResult {
        m.state = state
        switch move {
        case .drain(let c, let i):
            let e = m.state.buffers[c].remove(at: i)
            m.state.apply(e)
            if m.tracing {
                m.cpu = c
                m.frameName = "memory"
                m.opName = "store buffer"
                m.trace("drain \(m.map.name(Int(e.address))) = \(m.map.render(Int(e.address), e.value)) to memory")
            }
            return .next(m.state)
        case .ipi(let c):
            let ipis = m.state.cpus[c].pendingIPIs
            m.state.cpus[c].pendingIPIs = []
            m.state.cpus[c].frames.append(Frame(kind: .ipi, ipis: ipis))
            return stepTop(c, on: m, announce: "IPI arrives: \(ipis.map { $0.kind.rawValue }.joined(separator: ","))")
        case .irq(let c):
            m.state.cpus[c].irqsLeft -= 1
            m.state.cpus[c].frames.append(Frame(kind: .irq))
            return stepTop(c, on: m, announce: "timer IRQ arrives")
        case .nmi(let c):
            m.state.cpus[c].nmisLeft -= 1
            m.state.cpus[c].inNMI = true
            m.state.cpus[c].frames.append(Frame(kind: .nmi, savedUserCR3: m.state.cpus[c].userCR3))
            return stepTop(c, on: m, announce: "NMI arrives")
        case .step(let c):
            return stepTop(c, on: m, announce: nil)
        }
    }

    /// Runs the top frame of CPU `c` up to and including its next shared access.
    func stepTop(_ c: Int, on m: Machine, announce: String?) -> StepResult {
        let fi = m.state.cpus[c].frames.count - 1
        let frame = m.state.cpus[c].frames[fi]
        m.cpu = c
        m.replay = frame.replay
        m.position = 0
        m.performedLive = false
        m.recorded = frame.replay
        m.suspendedInterruptible = false
        m.frameName = "\(frame.kind)"
        var regs = frame.regs
        let op: Op? = frame.kind == .task ? scenario.programs[c][Int(frame.pc)] : nil
        m.attemptingInterruptible = op?.irqsOn ?? false
        m.opName = op?.description ?? {
            switch frame.kind {
            case .ipi: return "ipi_handler"
            case .irq: return "timer_handler"
            case .nmi: return "nmi_handler(\(scenario.nmiBody.rawValue))"
            case .task: return ""
            }
        }()
        if let a = announce { m.trace(a) }
        do throws(Suspend) {
            switch frame.kind {
            case .task: try m.run(op!, on: c, regs: &regs)
            case .ipi: try m.ipiHandler(on: c, ipis: frame.ipis)
            case .irq: try m.timerHandler(on: c)
            case .nmi: try m.nmiHandler(on: c)
            }
            // The op ran to completion.
            var f = m.state.cpus[c].frames[fi]
            f.pc += 1
            f.replay = []
            f.interruptible = false
            f.regs = regs
            if f.kind != .task && Int(f.pc) >= ops(f.kind, cpu: c) {
                m.state.cpus[c].frames.removeLast()
                if f.kind == .nmi {
                    // Paranoid NMI exit: back to the CR3 the NMI entry found.
                    m.state.cpus[c].inNMI = false
                    if scenario.pti { m.state.cpus[c].userCR3 = f.savedUserCR3 }
                }
            } else {
                m.state.cpus[c].frames[fi] = f
            }
            return .next(m.state)
        } catch {
            switch error {
            case .yield:
                m.state.cpus[c].frames[fi].replay = m.recorded
                m.state.cpus[c].frames[fi].interruptible = m.suspendedInterruptible
                return .next(m.state)
            case .blocked(let why):
                return .blocked(why)
            case .violation(let v):
                return .violation(v)
            }
        }
    }

    /// Every move that might be enabled at `s` (blocked ones are found by trying).
    func candidateMoves(_ s: MachineState, on m: Machine) -> [Move] {
        var moves: [Move] = []
        for c in 0..<scenario.cpuCount {
            let cpu = s.cpus[c]
            let top = cpu.frames[cpu.frames.count - 1]
            let running = Int(top.pc) < ops(top.kind, cpu: c)
            if running { moves.append(.step(c)) }
            m.state = s
            for i in m.drainable(c) { moves.append(.drain(cpu: c, index: i)) }
            // IRQs and IPIs: between ops of the task frame (IRQs on), not in an NMI.
            let atBoundary = top.kind == .task && (top.replay.isEmpty || top.interruptible) && !cpu.inNMI
            if atBoundary && !cpu.pendingIPIs.isEmpty { moves.append(.ipi(c)) }
            if atBoundary && cpu.irqsLeft > 0 { moves.append(.irq(c)) }
            if cpu.nmisLeft > 0 && !cpu.inNMI { moves.append(.nmi(c)) }
        }
        return moves
    }

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

    /// Explores every interleaving; stops at the first violation.
    public func run() -> Report {
        let start = ContinuousClock.now
        var lastProgress = start
        let m = Machine(scenario: scenario, model: model, limits: limits, state: initialState())
        let initial = initialState()
        // Per state id: its parent and the move that led to it (for counterexamples).
        var parent: [Int32] = [-1]
        var via: [Move] = [.step(0)]
        var visited: [MachineState: Int32] = [initial: 0]
        var frontier: [(MachineState, Int32)] = [(initial, 0)]
        var executions = 0
        var transitions = 0
        var depth = 0
        var report = Report(
            scenario: scenario.name, model: model, mutations: scenario.config.mutations.names,
            states: 1, executions: 0, transitions: 0, seconds: 0, depth: 0)

        func finish(_ v: Violation?, at id: Int32, extra: Move?) -> Report {
            var r = report
            r.states = visited.count
            r.executions = executions
            r.transitions = transitions
            r.depth = depth
            r.seconds = (ContinuousClock.now - start).seconds
            r.invariants = Report.verdicts(violation: v, incomplete: r.incomplete)
            r.operationsReached = CoreOperation.allCases.filter { m.operationsReached & $0.bit != 0 }.map(\.name)
            if let v {
                r.violation = v
                var path: [Move] = []
                var i = id
                while i > 0 {
                    path.append(via[Int(i)])
                    i = parent[Int(i)]
                }
                path.reverse()
                if let e = extra { path.append(e) }
                r.counterexample = replayCounterexample(path, violation: v)
            }
            return r
        }

        while !frontier.isEmpty {
            if depth >= limits.depthMax {
                report.incomplete = "depth limit \(limits.depthMax) reached: a program may not terminate; raise --depth-max"
                return finish(nil, at: 0, extra: nil)
            }
            var next: [(MachineState, Int32)] = []
            for (s, id) in frontier {
                var any = false
                for move in candidateMoves(s, on: m) {
                    switch apply(move, to: s, on: m) {
                    case .blocked:
                        continue
                    case .violation(let v):
                        return finish(v, at: id, extra: move)
                    case .next(let t):
                        any = true
                        transitions += 1
                        if visited[t] == nil {
                            let tid = Int32(parent.count)
                            visited[t] = tid
                            parent.append(id)
                            via.append(move)
                            next.append((t, tid))
                            if visited.count >= limits.statesMax {
                                report.incomplete = "state limit \(limits.statesMax) reached; raise --states-max or shrink the scenario"
                                return finish(nil, at: 0, extra: nil)
                            }
                        }
                    }
                }
                if !any {
                    executions += 1
                    if let v = checkTerminal(s, on: m) { return finish(v, at: id, extra: nil) }
                }
            }
            frontier = next
            depth += 1
            let now = ContinuousClock.now
            if let p = progress, now - lastProgress >= .seconds(1) {
                lastProgress = now
                p(visited.count, frontier.count, depth)
            }
        }
        return finish(nil, at: 0, extra: nil)
    }

    /// Re-runs `path` from the initial state with tracing on.
    func replayCounterexample(_ path: [Move], violation: Violation) -> Counterexample {
        let m = Machine(scenario: scenario, model: model, limits: limits, state: initialState())
        m.tracing = true
        var s = initialState()
        for (i, move) in path.enumerated() {
            m.stepNumber = i + 1
            switch apply(move, to: s, on: m) {
            case .next(let t): s = t
            case .blocked, .violation: break
            }
        }
        return Counterexample(
            scenario: scenario.name, model: model, mutations: scenario.config.mutations.names,
            cpuCount: scenario.cpuCount, violation: violation, moves: path.map(\.description), events: m.events)
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
