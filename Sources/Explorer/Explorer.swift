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
    /// Set when states were stored as fingerprints (`Limits.hashCompact`): a pass is
    /// then probable, not exhaustive; the text bounds the chance of a missed state.
    public var probable: String?
    public var violation: Violation?
    /// Verdict per invariant of BRIEF §4: "ok", "VIOLATED", or "unknown" (the run stopped
    /// at another invariant's violation, or at a limit, before it was exhaustive).
    public var invariants: [String: String] = [:]
    public var counterexample: Counterexample?
    /// The core's operations this run reached (`Platform.reached`), by name.
    public var operationsReached: [String] = []
    /// Exact search: the mean length of a stored state's packed encoding, in bytes.
    public var encodingBytesPerState: Double?
    /// Bytes held per stored state: the visited set (encodings or fingerprints, and
    /// its table) and the parent links; the breadth-first frontier aside.
    public var storedBytesPerState: Double?
    /// Distinct CPU-local and ghost states in the collapse tables (StateCodec).
    public var componentStates: Int?

    public var passed: Bool { violation == nil && incomplete == nil }
    /// Passed and every state was stored exactly: a proof over this scenario.
    public var exhaustive: Bool { passed && probable == nil }
    public var statesPerSecond: Double { seconds > 0 ? Double(states) / seconds : 0 }

    static func verdicts(violation: Violation?, incomplete: String?, probable: Bool = false) -> [String: String] {
        var out: [String: String] = [:]
        for inv in Violation.Invariant.allCases where inv != .litmusOutcome {
            if let v = violation {
                out[inv.rawValue] = v.invariant == inv ? "VIOLATED" : "unknown"
            } else {
                out[inv.rawValue] = incomplete != nil ? "unknown" : probable ? "probable" : "ok"
            }
        }
        return out
    }
}

/// A visited state's fingerprint: two 64-bit hashes of its packed encoding under
/// different seeds (`Limits.hashCompact`).
struct Fingerprint: Hashable {
    var a: UInt64
    var b: UInt64
    init(_ encoding: UnsafeRawBufferPointer) {
        a = StateStore.hash(encoding, seed: 0x5EED_0001)
        b = StateStore.hash(encoding, seed: 0x5EED_0002)
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
                onBehalf: PerCPU(repeating: 0), outstanding: PerCPU(repeating: 0),
                owed: OwedWork(cpuCount: n),
                requested: PerCPU(repeating: 0),
                queued: PerCPU(repeating: 0), ran: PerCPU(repeating: 0),
                gpSample: PerCPU(repeating: -1), gpSnapshot: PerCPU(repeating: 0)))
    }

    /// Explores every interleaving; stops at the first violation.
    public func run() -> Report {
        let start = ContinuousClock.now
        var lastProgress = start
        let m = Machine(scenario: scenario, model: model, limits: limits, state: initialState())
        let initial = initialState()
        let memoryCount = initial.memory.count
        // Per state id: its parent and the move that led to it (for counterexamples),
        // 6 bytes per state.
        var parent: [Int32] = [-1]
        var via: [UInt16] = [Move.step(0).packed]
        // Visited states: their packed encodings (exact), or their fingerprints
        // (`Limits.hashCompact`).
        let store = StateStore()
        let codec = StateCodec(cpuCount: scenario.cpuCount, memoryCount: memoryCount)
        var fingerprints: Set<Fingerprint> = []
        var scratch = ByteWriter()
        var stored: Int { limits.hashCompact ? fingerprints.count : store.count }
        /// The new state's id, or nil if it was seen (or its fingerprint was). The
        /// encoding stays in `scratch`.
        func insert(_ t: MachineState, parent: StateCodec.Decoded? = nil) -> Int32? {
            scratch.reset()
            codec.encode(t, into: &scratch, parent: parent)
            return scratch.bytes.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> Int32? in
                if limits.hashCompact {
                    guard fingerprints.insert(Fingerprint(b)).inserted else { return nil }
                    return Int32(fingerprints.count - 1)
                }
                let (id, new) = store.insert(b)
                return new ? Int32(id) : nil
            }
        }
        _ = insert(initial)
        /// A level of the breadth-first search: state ids, and (hash-compact, where the
        /// store keeps no encodings) their encodings back to back.
        struct Level {
            var ids: [Int32] = []
            var bytes: [UInt8] = []
            var ends: [Int] = []
            var count: Int { ids.count }
        }
        func decode(_ level: Level, _ i: Int) -> StateCodec.Decoded {
            func decode(_ b: UnsafeRawBufferPointer) -> StateCodec.Decoded { codec.decode(b) }
            if !limits.hashCompact { return decode(store.bytes(of: Int(level.ids[i]))) }
            let start = i == 0 ? 0 : level.ends[i - 1]
            return level.bytes.withUnsafeBytes { decode(UnsafeRawBufferPointer(rebasing: $0[start..<level.ends[i]])) }
        }
        var frontier = Level(ids: [0])
        if limits.hashCompact {
            frontier.bytes = codec.encoded(initial)
            frontier.ends = [frontier.bytes.count]
        }
        var executions = 0
        var transitions = 0
        var depth = 0
        var report = Report(
            scenario: scenario.name, model: model, mutations: scenario.config.mutations.names,
            states: 1, executions: 0, transitions: 0, seconds: 0, depth: 0)

        func finish(_ v: Violation?, at id: Int32, extra: Move?, path given: [Move]? = nil) -> Report {
            var r = report
            r.states = stored
            if limits.hashCompact {
                // Two distinct states share a 128-bit fingerprint with probability at
                // most n^2 / 2^129 (birthday bound over n stored states).
                let n = Double(stored)
                r.probable = "hash-compact: \(stored) states stored as 128-bit fingerprints; a state missed by a collision with probability below \(n * n * 0x1p-129)"
            }
            r.executions = executions
            if !limits.hashCompact {
                r.encodingBytesPerState = Double(store.encodingBytes) / Double(max(1, store.count))
            }
            // What the visited set and the parent links hold (the frontier aside).
            let setBytes = (limits.hashCompact ? fingerprints.capacity * MemoryLayout<Fingerprint>.stride * 9 / 8 : store.bytes) + codec.tableBytes
            r.componentStates = codec.tableEntries.cpu + codec.tableEntries.ghost
            r.storedBytesPerState = Double(setBytes + parent.capacity * 4 + via.capacity * 2) / Double(max(1, stored))
            r.transitions = transitions
            r.depth = depth
            r.seconds = (ContinuousClock.now - start).seconds
            r.invariants = Report.verdicts(violation: v, incomplete: r.incomplete, probable: limits.hashCompact)
            r.operationsReached = CoreOperation.allCases.filter { m.operationsReached & $0.bit != 0 }.map(\.name)
            if let v {
                r.violation = v
                var path: [Move] = []
                if let given {
                    path = given
                } else {
                    var i = id
                    while i > 0 {
                        path.append(Move(packed: via[Int(i)]))
                        i = parent[Int(i)]
                    }
                    path.reverse()
                }
                if let e = extra { path.append(e) }
                r.counterexample = replayCounterexample(path, violation: v)
            }
            return r
        }

        if limits.depthFirst {
            // Depth-first: only the current path is held (states and the moves left at
            // each), plus the visited set; the counterexample is the path found, not a
            // shortest one. Each state's moves are computed when it is first reached.
            struct Frame {
                var state: MachineState
                var moves: [Move]
                var next = 0
                var any = false
                /// The move that led here (none for the root).
                var via: Move?
            }
            var stack = [Frame(state: initial, moves: candidateMoves(initial, on: m))]
            while !stack.isEmpty {
                let top = stack.count - 1
                depth = max(depth, top)
                if stack[top].next == stack[top].moves.count {
                    if !stack[top].any {
                        executions += 1
                        if let v = checkTerminal(stack[top].state, on: m) {
                            return finish(v, at: 0, extra: nil, path: stack.compactMap(\.via))
                        }
                    }
                    stack.removeLast()
                    continue
                }
                let move = stack[top].moves[stack[top].next]
                stack[top].next += 1
                switch apply(move, to: stack[top].state, on: m) {
                case .blocked:
                    continue
                case .violation(let v):
                    return finish(v, at: 0, extra: move, path: stack.compactMap(\.via))
                case .next(let t):
                    stack[top].any = true
                    transitions += 1
                    guard insert(t) != nil else { continue }
                    if stored >= limits.statesMax {
                        report.incomplete = "state limit \(limits.statesMax) reached (depth-first, at depth \(top + 1)); raise --states-max or shrink the scenario"
                        return finish(nil, at: 0, extra: nil)
                    }
                    if top + 1 >= limits.depthMax {
                        report.incomplete = "depth limit \(limits.depthMax) reached (depth-first) with \(stored) states stored: a program may not terminate; raise --depth-max"
                        return finish(nil, at: 0, extra: nil)
                    }
                    if stored & 0xFFFF == 0, let p = progress, ContinuousClock.now - lastProgress >= .seconds(1) {
                        lastProgress = ContinuousClock.now
                        p(stored, stack.count, top + 1)
                    }
                    stack.append(Frame(state: t, moves: candidateMoves(t, on: m), via: move))
                }
            }
            return finish(nil, at: 0, extra: nil)
        }

        while frontier.count > 0 {
            if depth >= limits.depthMax {
                report.incomplete = "depth limit \(limits.depthMax) reached with \(stored) states stored and a frontier of \(frontier.count): a program may not terminate; raise --depth-max"
                return finish(nil, at: 0, extra: nil)
            }
            var next = Level()
            for expanded in 0..<frontier.count {
                let id = frontier.ids[expanded]
                let decoded = decode(frontier, expanded)
                let s = decoded.state
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
                        if let tid = insert(t, parent: decoded) {
                            parent.append(id)
                            via.append(move.packed)
                            next.ids.append(tid)
                            if limits.hashCompact {
                                next.bytes.append(contentsOf: scratch.bytes)
                                next.ends.append(next.bytes.count)
                            }
                            if stored >= limits.statesMax {
                                report.incomplete = "state limit \(limits.statesMax) reached at depth \(depth + 1): \(expanded) of the \(frontier.count) states of depth \(depth) expanded, \(next.count) of depth \(depth + 1) found so far; raise --states-max or shrink the scenario"
                                return finish(nil, at: 0, extra: nil)
                            }
                            // Progress inside a level too: a big level takes minutes.
                            if stored & 0xFFFF == 0, let p = progress, ContinuousClock.now - lastProgress >= .seconds(1) {
                                lastProgress = ContinuousClock.now
                                p(stored, frontier.count - expanded + next.count, depth + 1)
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
                p(stored, frontier.count, depth)
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
