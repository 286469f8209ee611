import CPUFlags
import Dispatch


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
    /// Under rc11: the stores each location kept for loads to read (`Limits.historyMax`);
    /// a pass is exhaustive up to that bound.
    public var historyMax: Int?
    public var violation: Violation?
    /// Verdict per invariant of BRIEF §4: "ok", "VIOLATED", or "unknown" (the run stopped
    /// at another invariant's violation, or at a limit, before it was exhaustive).
    public var invariants: [String: String] = [:]
    public var counterexample: Counterexample?
    /// The core's operations this run reached (`Platform.reached`), by name.
    public var operationsReached: [String] = []
    /// Exact search: bytes of the tree of pairs (`TreeStore`: root pairs, inner
    /// pairs, their indexes) per stored state, the leaf tables aside.
    public var encodingBytesPerState: Double?
    /// Bytes held per stored state: the visited set (encodings or fingerprints, and
    /// its table) and the parent links; the breadth-first frontier aside.
    public var storedBytesPerState: Double?
    /// Sleep sets were on (the exact breadth-first search, without --no-reduction).
    public var reduced: Bool = false
    /// Moves not tried because they were asleep (their outcome is reached another way).
    public var sleptMoves: Int = 0
    /// States reached again with fewer moves asleep than when expanded, and expanded
    /// again for the moves that woke up.
    public var reexpanded: Int = 0
    /// How the counterexample was found: shortest, or the reduced search's path.
    public var counterexampleNote: String?
    /// Distinct CPU-local and ghost states in the collapse tables (StateCodec).
    public var componentStates: Int?
    /// Threads that expanded the breadth-first levels (`Limits.threads`).
    public var threads: Int = 1
    /// Depth-first search: moves whose outcome the transition cache gave
    /// (TransitionCache.swift), and moves it could not give, which ran (nil: no cache).
    public var cachedMoves: Int?
    public var ranMoves: Int?
    /// With `Limits.checkTransitionCache`: the first move whose cached outcome differed
    /// from what it does when run (nil: none did, or no check).
    public var transitionCacheMismatch: String?

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

/// A visited state's fingerprint: two 64-bit hashes of its leaf ids under different
/// seeds (`Limits.hashCompact`).
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
    /// Tests only: leaves taken out of every key the transition cache stores, to show
    /// that `Limits.checkTransitionCache` catches a key missing a leaf the move read.
    var cacheMaskDropped: UInt8 = 0

    public init(scenario: Scenario, model: MemoryModel, limits: Limits = Limits(), progress: ((Int, Int, Int) -> Void)? = nil) {
        self.scenario = scenario
        self.model = model
        self.limits = limits
        self.progress = progress
    }

    func initialState() -> MachineState {
        let n = scenario.cpuCount
        let map = AddressMap(scenario)
        var memory = [UInt64](repeating: 0, count: map.count)
        var cpus: [CPUState] = []
        let perTask = scenario.config.placement == .perTask
        if perTask {
            // The spare task: switched out (KERNEL), off every CPU, untagged until a CPU
            // takes it.
            memory[map.address(Location(.word, n))] = CPUWord.initialCells(.kernel).word
        }
        for c in 0..<n {
            let mode = scenario.start[c]
            // Per-task words: task c runs on CPU c, its word tagged with it.
            let cells = CPUWord.initialCells(mode, onCPU: perTask ? c : nil)
            memory[map.address(Location(.word, c))] = cells.word
            memory[map.address(Location(.counter, c))] = cells.counter
            if perTask {
                memory[map.address(Location(.current, c))] = UInt64(c)
                memory[map.onCPU(c)] = 1
            }
            let inUser = mode == .user || mode == .indeterminate
            cpus.append(CPUState(
                frames: [Frame(kind: .task)],
                context: inUser ? .user : (mode == .idle ? .idle : .kernel),
                userCR3: scenario.pti && inUser,
                tlb: 0, textSeen: 0,
                nmisLeft: Int8(scenario.nmis[c]), mcesLeft: Int8(scenario.mces[c]), irqsLeft: Int8(scenario.irqs[c]), task: Int8(c)))
        }
        var state = MachineState(
            memory: memory,
            buffers: Array(repeating: [], count: n),
            cpus: cpus,
            ghost: GlobalGhost(
                onBehalf: PerCPU(repeating: 0), outstanding: PerCPU(repeating: 0),
                owed: OwedWork(cpuCount: n),
                requested: PerCPU(repeating: 0),
                queued: PerCPU(repeating: 0), ran: PerCPU(repeating: 0),
                gpSample: PerCPU(repeating: -1), gpSnapshot: PerCPU(repeating: 0)))
        if model == .rc11 { state.weak = WeakMemory(memory: memory, cpuCount: n) }
        return state
    }

    /// Explores every interleaving (every reachable state: sleep sets skip only moves
    /// whose outcome is reached another way); stops at the first violation.
    public func run() -> Report {
        var r = search()
        guard limits.reduction, !limits.hashCompact, !limits.depthFirst, model != .rc11, r.violation != nil else { return r }
        // With sleep sets a state may first be reached by a longer path than the
        // shortest: look for a shortest counterexample without them, where it fits.
        var full = self
        full.limits.reduction = false
        full.limits.statesMax = min(limits.statesMax, Explorer.shortestSearchStatesMax)
        full.progress = nil
        let shortest = full.search()
        if let v = shortest.violation, let cx = shortest.counterexample {
            r.violation = v
            r.counterexample = cx
            r.invariants = Report.verdicts(violation: v, incomplete: nil)
            r.counterexampleNote = "shortest (found again without sleep sets, \(shortest.states) states)"
        } else {
            r.counterexampleNote = "the path found with sleep sets, not necessarily a shortest one (the search without them stopped at \(full.limits.statesMax) states)"
        }
        r.seconds += shortest.seconds
        return r
    }

    /// The most states the search for a shortest counterexample may store.
    static let shortestSearchStatesMax = 2_000_000

    func search() -> Report {
        let start = ContinuousClock.now
        var lastProgress = start
        let initial = initialState()
        // Per state id: its parent and the move that led to it (for counterexamples),
        // 6 bytes per state.
        var parent: [Int32] = [-1]
        var via: [UInt16] = [Move.step(0).packed]
        // Visited states: their leaf ids folded into a tree of pairs (exact), or their
        // fingerprints (`Limits.hashCompact`).
        let codec = StateCodec(map: AddressMap(scenario), weak: model == .rc11)
        // Depth-first: no state ids (the path is kept as states), so the root pairs go
        // in a `RootSet` (9-14 bytes a state instead of 13-19).
        let store = TreeStore(leaves: codec.leafCount, ids: !limits.depthFirst)
        var fingerprints: Set<Fingerprint> = []
        var stored: Int { limits.hashCompact ? fingerprints.count : store.count }
        /// The id `insert` found (exact search), new or not.
        var existingID: Int32 = 0
        /// The new state's id, or nil if it was seen (or its fingerprint was).
        func insert(_ leaves: [UInt32]) -> Int32? {
            if limits.hashCompact {
                guard leaves.withUnsafeBytes({ fingerprints.insert(Fingerprint($0)).inserted }) else { return nil }
                return Int32(fingerprints.count - 1)
            }
            let (id, new) = leaves.withUnsafeBufferPointer { store.insert($0) }
            existingID = Int32(id)
            return new ? Int32(id) : nil
        }
        // The workers: each with its own copy of the scenario, machine and decoded
        // leaves (threads that share objects contend on their reference counts).
        precondition((1...Limits.threadsMax).contains(limits.threads), "Limits.threads \(limits.threads): expected 1 to \(Limits.threadsMax)")
        let workers = (0..<limits.threads).map { _ in
            SearchWorker(explorer: self.isolatedCopy(), codec: codec, template: initial)
        }
        let m = workers[0].machine
        var reached: UInt32 { workers.reduce(0) { $0 | $1.machine.operationsReached } }
        let initialLeaves = workers[0].leaves.encoded(initial)
        _ = insert(initialLeaves)
        var frontier = Level(ids: [0], sleepEnds: [0], reexpand: [0])
        // Sleep sets: on in the exact breadth-first search unless --no-reduction.
        let sleeping = limits.reduction && !limits.hashCompact && !limits.depthFirst && model != .rc11
        /// Per state id: the moves asleep when it was (last) reached (`SleepSets.bit`).
        var sleepBits: [UInt32] = [0]
        /// Per state id, a bit: expanded already (a state reached again after that may
        /// need some of its moves tried again).
        var expandedBits: [UInt64] = [0]
        var slept = 0
        var reexpanded = 0
        if limits.hashCompact { frontier.leaves = initialLeaves }
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
            if model == .rc11 { r.historyMax = limits.historyMax }
            if !limits.hashCompact {
                r.encodingBytesPerState = Double(store.bytes) / Double(max(1, store.count))
            }
            // What the visited set and the parent links hold (the frontier aside).
            let setBytes = (limits.hashCompact ? fingerprints.capacity * MemoryLayout<Fingerprint>.stride * 9 / 8 : store.bytes) + codec.tableBytes
            r.componentStates = codec.tableEntries.cpu + codec.tableEntries.ghost
            r.storedBytesPerState = Double(setBytes + parent.capacity * 4 + via.capacity * 2) / Double(max(1, stored))
            r.transitions = transitions
            r.reduced = sleeping
            r.sleptMoves = slept
            r.reexpanded = reexpanded
            r.depth = depth
            r.threads = limits.depthFirst ? 1 : workers.count
            r.seconds = (ContinuousClock.now - start).seconds
            r.invariants = Report.verdicts(violation: v, incomplete: r.incomplete, probable: limits.hashCompact)
            let ops = reached
            r.operationsReached = CoreOperation.allCases.filter { ops & $0.bit != 0 }.map(\.name)
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
            // Depth-first: only the current path is held (per state its leaf ids, the
            // moves left at it, and the state itself once decoded), plus the visited
            // set; the counterexample is the path found, not a shortest one. Each
            // state's moves are computed when it is first reached. A move's outcome
            // comes from the transition cache when it has one (TransitionCache.swift);
            // otherwise the move runs on the decoded state. The path's leaf ids and
            // moves are kept in two flat stacks (`ids`, `moves`), not per frame: a
            // frame's arrays were allocated and freed at every state.
            struct Frame {
                /// The state: kept from the move that reached it, or decoded when a move
                /// the cache cannot answer has to run from it.
                var decoded: LeafCache.Decoded?
                /// This frame's moves are `moves[start..<end]` (start: the frame
                /// below's end); the next to try is `moves[next]`.
                var end: Int
                var next: Int
                var any = false
                /// The move that led here (none for the root).
                var via: Move?
            }
            let leaves = workers[0].leaves
            let k = codec.leafCount
            let cache = limits.transitionCacheEntries > 0 && model != .rc11
                ? TransitionCache(codec: codec, components: m.components, entries: limits.transitionCacheEntries) : nil
            var ran = 0
            /// `Limits.checkTransitionCache`: the first answer that differed from the run.
            var mismatch: String?
            // Per CPU, per leaf id: the CPU's candidate moves, which depend on its own
            // leaf only (`appendCandidateMoves`), packed, as a range of `movePool`
            // (start << 8 | count, plus 1; 0: not computed yet).
            var movePool: [UInt16] = []
            var movesOf: [[UInt64]] = Array(repeating: [], count: scenario.cpuCount)
            var ids: [UInt32] = []
            var moves: [UInt16] = []
            var scratchMoves: [Move] = []
            /// Pushes the candidate moves of the state whose leaf ids end `ids`.
            func pushCandidates(_ decoded: inout LeafCache.Decoded?) {
                let base = ids.count - k
                for c in 0..<scenario.cpuCount {
                    let id = Int(ids[base + c])
                    if id < movesOf[c].count, movesOf[c][id] != 0, !limits.checkTransitionCache {
                        let r = movesOf[c][id] - 1
                        let start = Int(r >> 8)
                        moves.append(contentsOf: movePool[start..<start + Int(r & 0xFF)])
                        continue
                    }
                    if decoded == nil { decoded = leaves.decode(Array(ids[base...])) }
                    m.state = decoded!.state
                    scratchMoves.removeAll(keepingCapacity: true)
                    appendCandidateMoves(of: c, decoded!.state, on: m, into: &scratchMoves)
                    let mine = scratchMoves.map(\.packed)
                    if id < movesOf[c].count, movesOf[c][id] != 0 {
                        let r = movesOf[c][id] - 1
                        let start = Int(r >> 8)
                        let known = Array(movePool[start..<start + Int(r & 0xFF)])
                        precondition(known == mine, "depth-first search: cpu\(c)'s moves at its leaf \(id) were \(known), now \(mine)")
                    } else {
                        precondition(mine.count < 256, "depth-first search: more than 255 moves for one CPU")
                        while movesOf[c].count <= id { movesOf[c].append(0) }
                        movesOf[c][id] = UInt64(movePool.count) << 8 | UInt64(mine.count) + 1
                        movePool += mine
                    }
                    moves += mine
                }
            }
            var scratch: [UInt32] = []
            var successor = [UInt32](repeating: 0, count: k)
            var root: LeafCache.Decoded? = LeafCache.Decoded(state: initial, ids: initialLeaves)
            ids = initialLeaves
            pushCandidates(&root)
            var stack = [Frame(decoded: root, end: moves.count, next: 0)]
            var choiceMoves: [Move] = []
            func finishDepthFirst(_ v: Violation?, extra: Move?, path: [Move]?) -> Report {
                var r = finish(v, at: 0, extra: extra, path: path)
                if let cache {
                    r.cachedMoves = cache.hits
                    r.ranMoves = ran
                    r.transitionCacheMismatch = mismatch
                }
                return r
            }
            func decodeTop() -> LeafCache.Decoded {
                if let d = stack[stack.count - 1].decoded { return d }
                let d = leaves.decode(Array(ids[(ids.count - k)...]))
                stack[stack.count - 1].decoded = d
                return d
            }
            while !stack.isEmpty {
                let top = stack.count - 1
                depth = max(depth, top)
                if stack[top].next == stack[top].end {
                    if !stack[top].any {
                        executions += 1
                        if let v = checkTerminal(decodeTop().state, on: m) {
                            return finishDepthFirst(v, extra: nil, path: stack.compactMap(\.via))
                        }
                    }
                    moves.removeLast(stack[top].end - (top == 0 ? 0 : stack[top - 1].end))
                    ids.removeLast(k)
                    stack.removeLast()
                    continue
                }
                let packed = moves[stack[top].next]
                let move = Move(packed: packed)
                stack[top].next += 1
                var outcome: TransitionCache.Outcome? = nil
                var cachedReached: UInt32 = 0
                if let cache {
                    outcome = ids.withUnsafeBufferPointer {
                        cache.lookup(packed, UnsafeBufferPointer(rebasing: $0[(top * k)..<(top * k + k)]), into: &successor, reached: &cachedReached)
                    }
                    m.operationsReached |= cachedReached
                }
                var reachedState: LeafCache.Decoded? = nil
                if outcome == nil || limits.checkTransitionCache {
                    // Run the move. Its footprint (`m.touched`) says which leaves it read
                    // and wrote: the cache's key.
                    ran += 1
                    let parent = decodeTop()
                    let before = m.operationsReached
                    m.operationsReached = 0
                    let result = apply(move, to: parent.state, on: m)
                    let reached = m.operationsReached
                    m.operationsReached = before | reached
                    if moreChoices(after: move, on: m, into: &choiceMoves) {
                        // The top frame's moves are the last on the stack.
                        moves += choiceMoves.map(\.packed)
                        stack[top].end = moves.count
                    }
                    let found: TransitionCache.Outcome
                    switch result {
                    case .violation(let v):
                        if outcome != nil && mismatch == nil {
                            mismatch = "\(move) at leaves \(parent.ids): the cache answered \(outcome!), the move ran into a violation (\(v))"
                        }
                        return finishDepthFirst(v, extra: move, path: stack.compactMap(\.via))
                    case .blocked:
                        found = .blocked
                    case .next(let t):
                        found = .next
                        leaves.encode(t, into: &scratch, parent: parent)
                        reachedState = LeafCache.Decoded(state: t, ids: scratch)
                    }
                    if let cache {
                        if let answered = outcome {
                            // Checking: the cache's answer is what the move does (the
                            // search goes on with what it does).
                            if mismatch == nil && !(answered == found && (found == .blocked || successor == scratch) && cachedReached == reached) {
                                mismatch = "\(move) at leaves \(parent.ids): the cache answered \(answered) \(answered == .next ? "\(successor)" : ""), the move ran to \(found) \(found == .next ? "\(scratch)" : "") (a read its footprint does not mark)"
                            }
                        } else {
                            let mask = cache.mask(m.touched, mover: move.cpu) & ~cacheMaskDropped
                            parent.ids.withUnsafeBufferPointer {
                                cache.store(packed, mask: mask, $0, found, out: scratch, reached: reached)
                            }
                        }
                    }
                    if found == .next {
                        for l in 0..<k { successor[l] = scratch[l] }
                    }
                    outcome = found
                }
                guard outcome == .next else { continue }
                stack[top].any = true
                transitions += 1
                guard insert(successor) != nil else { continue }
                if stored >= limits.statesMax {
                    report.incomplete = "state limit \(limits.statesMax) reached (depth-first, at depth \(top + 1)); raise --states-max or shrink the scenario"
                    return finishDepthFirst(nil, extra: nil, path: nil)
                }
                if top + 1 >= limits.depthMax {
                    report.incomplete = "depth limit \(limits.depthMax) reached (depth-first) with \(stored) states stored: a program may not terminate; raise --depth-max"
                    return finishDepthFirst(nil, extra: nil, path: nil)
                }
                if stored & 0xFFFF == 0, let p = progress, ContinuousClock.now - lastProgress >= .seconds(1) {
                    lastProgress = ContinuousClock.now
                    p(stored, stack.count, top + 1)
                }
                ids += successor
                let start = moves.count
                pushCandidates(&reachedState)
                stack.append(Frame(decoded: reachedState, end: moves.count, next: start, via: move))
            }
            return finishDepthFirst(nil, extra: nil, path: nil)
        }

        // Breadth-first, level by level; a level in batches. Each batch is expanded by
        // the workers in parallel (each a contiguous slice: decode, run every move,
        // encode the successors with provisional ids for new leaves; nothing shared is
        // written), then stored here in the order of a one-thread search (entries in
        // order, each entry's moves in order): the same states, ids, parents, limits,
        // counterexamples and figures whatever the number of threads.
        let batchEntries = SearchWorker.batchEntriesPerWorker * workers.count
        while frontier.count > 0 {
            if depth >= limits.depthMax {
                report.incomplete = "depth limit \(limits.depthMax) reached with \(stored) states stored and a frontier of \(frontier.count): a program may not terminate; raise --depth-max"
                return finish(nil, at: 0, extra: nil)
            }
            // Every entry of the level counts as expanded from the level's start, and is
            // expanded with the sleep set it had then: a state reached again during its
            // own level is then handled as any expanded state (the moves that woke up are
            // tried from it at the next level), whatever the order of the workers.
            frontier.bits = sleeping ? frontier.ids.map { sleepBits[Int($0)] } : []
            if sleeping {
                for (k, id) in frontier.ids.enumerated() where frontier.reexpand[k] == 0 {
                    expandedBits[Int(id) >> 6] |= 1 << UInt64(id & 63)
                }
            }
            var next = Level()
            var batchStart = 0
            while batchStart < frontier.count {
                let batchEnd = min(frontier.count, batchStart + batchEntries)
                let per = (batchEnd - batchStart + workers.count - 1) / workers.count
                let slices = (0..<workers.count).map { w in
                    min(batchEnd, batchStart + w * per)..<min(batchEnd, batchStart + (w + 1) * per)
                }
                let run = { (w: Int) in
                    workers[w].expand(frontier, slices[w], store: store, sleeping: sleeping, hashCompact: limits.hashCompact)
                }
                if workers.count == 1 {
                    run(0)
                } else {
                    let box = UncheckedBox(run)
                    DispatchQueue.concurrentPerform(iterations: workers.count) { w in box.value(w) }
                }
                for (w, worker) in workers.enumerated() {
                    var e = 0
                    for (k, expanded) in slices[w].enumerated() {
                        let id = frontier.ids[expanded]
                        let entry = worker.entries[k]
                        slept += entry.slept
                        while e < entry.eventsEnd {
                            let event = worker.events[e]
                            e += 1
                            if let v = event.violation { return finish(v, at: id, extra: event.move) }
                            transitions += 1
                            let leaves = worker.resolve(event)
                            if let tid = insert(leaves) {
                                parent.append(id)
                                via.append(event.move.packed)
                                let childSleep = worker.sleepers(of: event)
                                if sleeping {
                                    next.append(tid, asleep: childSleep, reexpand: 0)
                                    sleepBits.append(event.childBits)
                                    if Int(tid) >> 6 >= expandedBits.count { expandedBits.append(0) }
                                } else {
                                    next.ids.append(tid)
                                }
                                if limits.hashCompact { next.leaves.append(contentsOf: leaves) }
                                if stored >= limits.statesMax {
                                    report.incomplete = "state limit \(limits.statesMax) reached at depth \(depth + 1): \(expanded) of the \(frontier.count) states of depth \(depth) expanded, \(next.count) of depth \(depth + 1) found so far; raise --states-max or shrink the scenario"
                                    return finish(nil, at: 0, extra: nil)
                                }
                                // Progress inside a level too: a big level takes minutes.
                                if stored & 0xFFFF == 0, let p = progress, ContinuousClock.now - lastProgress >= .seconds(1) {
                                    lastProgress = ContinuousClock.now
                                    p(stored, frontier.count - expanded + next.count, depth + 1)
                                }
                            } else if sleeping {
                                // Reached again: only moves asleep on every path to it may
                                // stay asleep. Waiting to be expanded: its sleep set shrinks.
                                // Expanded already: the moves that were asleep then and are
                                // not now are tried from it (Godefroid's state-caching rule).
                                let tid = Int(existingID)
                                if expandedBits[tid >> 6] & (1 << UInt64(tid & 63)) == 0 {
                                    sleepBits[tid] &= event.childBits
                                } else {
                                    let awake = sleepBits[tid] & ~event.childBits
                                    if awake != 0 {
                                        reexpanded += 1
                                        sleepBits[tid] &= event.childBits
                                        next.append(existingID, asleep: worker.sleepers(of: event), reexpand: awake)
                                    }
                                }
                            }
                        }
                        if entry.terminal {
                            executions += 1
                            if let v = entry.terminalViolation { return finish(v, at: id, extra: nil) }
                        }
                    }
                    worker.endBatch()
                }
                batchStart = batchEnd
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

    /// A copy whose scenario shares no array with this one (a worker's own: reading a
    /// shared array from two threads contends on its reference count).
    func isolatedCopy() -> Explorer {
        var e = self
        e.scenario.programs = scenario.programs.map { p in p.map { $0 } }
        e.scenario.start = scenario.start.map { $0 }
        e.scenario.nmis = scenario.nmis.map { $0 }
        e.scenario.mces = scenario.mces.map { $0 }
        e.scenario.irqs = scenario.irqs.map { $0 }
        e.progress = nil
        return e
    }

    /// Under rc11: after a step that read with choice 0, the other stores its load could
    /// have read, as moves of their own (`Move.step(c, choice:)`). False otherwise.
    func moreChoices(after move: Move, on m: Machine, into out: inout [Move]) -> Bool {
        guard model == .rc11, case .step(let c, 0) = move, m.readChoices > 1 else { return false }
        out.removeAll(keepingCapacity: true)
        for k in 1..<m.readChoices { out.append(.step(c, choice: k)) }
        return true
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
