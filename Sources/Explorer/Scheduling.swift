import CPUFlags

/// The machine's scheduling: which moves a state enables (a CPU's next access, a
/// store-buffer drain, an IPI, a timer IRQ, an NMI) and what a move does to a state.
/// The search (Explorer.swift) only walks the graph these define.
extension Explorer {
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

    /// Applies `move` to a copy of `state` on `machine`; `m.touched` is then the move's
    /// footprint (Footprint.swift).
    func apply(_ move: Move, to state: MachineState, on m: Machine) -> StepResult {
        let r = applyMove(move, to: state, on: m)
        // The footprint's write side: a move changes only components it marked
        // (debug builds only; the sleep sets rely on it).
        assert({
            guard case .next(let t) = r else { return true }
            let missing = m.components.changed(from: state, to: t, mover: move.cpu) & ~m.touched.writes
            return missing == 0
        }(), "footprint of \(move) misses components it changed: a ghost hook without touchGhost/touchGlobal")
        return r
    }

    private func applyMove(_ move: Move, to state: MachineState, on m: Machine) -> StepResult {
        m.state = state
        m.touched = .empty
        m.choice = 0
        m.readChoices = 1
        m.choiceUsed = false
        if case .drain = move {} else {
            // Any other move runs the CPU's own frames: its ghost state (context, pin
            // checks, pending IPIs, the NMI flag) is read and written.
            m.touchGhost(move.cpu)
        }
        switch move {
        case .drain(let c, let i):
            let e = m.state.buffers[c].remove(at: i)
            m.touched.writes |= m.components.memory(Int(e.address)) | m.components.buffer(c)
            m.state.apply(e)
            if m.tracing {
                m.cpu = c
                m.frameName = "memory"
                m.opName = "store buffer"
                m.trace("drain \(m.map.name(Int(e.address))) = \(m.map.render(Int(e.address), e.value)) to memory")
            }
            return .next(m.state)
        case .ipi(let c):
            m.touched.writes |= m.components.pending(c)
            let ipis = m.state.cpus[c].pendingIPIs
            m.state.cpus[c].pendingIPIs = []
            m.state.cpus[c].frames.append(Frame(kind: .ipi, ipis: ipis))
            // Taking an IPI synchronizes with its senders (the csd list's xchg: a full
            // barrier); the senders fenced when they sent (Machine.sendInterrupts).
            m.ghostFence(c)
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
        case .mce(let c):
            // The same handler frame as an NMI's (irqentry_nmi_enter, the body, the
            // exit), possibly on top of one.
            m.state.cpus[c].mcesLeft -= 1
            m.state.cpus[c].inNMI = true
            m.state.cpus[c].frames.append(Frame(kind: .nmi, savedUserCR3: m.state.cpus[c].userCR3))
            return stepTop(c, on: m, announce: "machine check arrives")
        case .step(let c, let k):
            m.choice = k
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
        var regs = frame.regs
        let op: Op? = frame.kind == .task ? scenario.programs[c][Int(frame.pc)] : nil
        m.attemptingInterruptible = op?.irqsOn ?? false
        if m.tracing {
            // Names for the timeline only: building them on every step was a fifth of
            // the search's instructions (string interpolation of an enum reflects).
            m.frameName = "\(frame.kind)"
            m.opName = op?.description ?? {
                switch frame.kind {
                case .ipi: return "ipi_handler"
                case .irq: return "timer_handler"
                case .nmi: return "nmi_handler(\(scenario.nmiBody.rawValue))"
                case .task: return ""
                }
            }()
        }
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
                    // Paranoid NMI exit: back to the CR3 the NMI entry found. Still in
                    // an NMI if a machine check's frame was on top of one.
                    m.state.cpus[c].inNMI = m.state.cpus[c].frames.contains { $0.kind == .nmi }
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
        candidateMoves(s, on: m, into: &moves)
        return moves
    }

    /// The same, into `moves` (emptied first; a worker reuses one array for every
    /// state). Reads the CPUs in place: copying a CPU or a frame out retains its arrays.
    func candidateMoves(_ s: MachineState, on m: Machine, into moves: inout [Move]) {
        moves.removeAll(keepingCapacity: true)
        m.state = s  // once: assigning a state releases the previous one
        for c in 0..<scenario.cpuCount { appendCandidateMoves(of: c, s, on: m, into: &moves) }
    }

    /// CPU `c`'s candidate moves at `s` (which must be `m.state`), appended to `moves`.
    /// They depend on the CPU's own leaf only (its frames, budgets and pending IPIs, its
    /// store buffer): the depth-first search remembers them per leaf.
    func appendCandidateMoves(of c: Int, _ s: MachineState, on m: Machine, into moves: inout [Move]) {
        let top = s.cpus[c].frames.count - 1
        let kind = s.cpus[c].frames[top].kind
        let running = Int(s.cpus[c].frames[top].pc) < ops(kind, cpu: c)
        if running { moves.append(.step(c)) }
        for i in m.drainable(c) { moves.append(.drain(cpu: c, index: i)) }
        // IRQs and IPIs: between ops of the task frame (IRQs on), not in an NMI.
        let inNMI = s.cpus[c].inNMI
        let atBoundary = kind == .task && (s.cpus[c].frames[top].replay.isEmpty || s.cpus[c].frames[top].interruptible) && !inNMI
        if atBoundary && !s.cpus[c].pendingIPIs.isEmpty { moves.append(.ipi(c)) }
        if atBoundary && s.cpus[c].irqsLeft > 0 { moves.append(.irq(c)) }
        if s.cpus[c].nmisLeft > 0 && !inNMI { moves.append(.nmi(c)) }
        // A machine check: anywhere, also in an NMI handler (one level: mces <= 1).
        if s.cpus[c].mcesLeft > 0 { moves.append(.mce(c)) }
    }
}
