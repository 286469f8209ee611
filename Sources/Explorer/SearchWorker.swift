import CPUFlags

/// A level of the breadth-first search: state ids, and (hash-compact, where the store
/// keeps no states) their leaf ids back to back.
struct Level {
    var ids: [Int32] = []
    var leaves: [UInt32] = []
    /// Sleep sets (SleepSets.swift): the moves asleep when each entry was reached (back
    /// to back: entry k's end is `sleepEnds[k]`; the state's `sleepBits` at the level's
    /// start, `bits`, filter them when it is expanded), and for an entry that
    /// re-expands a state reached again, the moves to try (else 0).
    var sleepers: [Sleeper] = []
    var sleepEnds: [Int32] = []
    var reexpand: [UInt32] = []
    var bits: [UInt32] = []

    mutating func append(_ id: Int32, asleep: ArraySlice<Sleeper>, reexpand r: UInt32) {
        ids.append(id)
        sleepers.append(contentsOf: asleep)
        sleepEnds.append(Int32(sleepers.count))
        reexpand.append(r)
    }

    func asleep(_ k: Int) -> [Sleeper] {
        let start = k == 0 ? 0 : Int(sleepEnds[k - 1])
        let b = bits[k]
        return sleepers[start..<Int(sleepEnds[k])].filter { b & $0.bit != 0 }
    }
    var count: Int { ids.count }
}

/// One thread's share of a breadth-first level: it expands a slice of a batch of
/// frontier entries with its own explorer, machine and decoded leaves, writing nothing
/// the other workers read, and records what it found in move order for the search to
/// store (`Explorer.search`).
final class SearchWorker: @unchecked Sendable {
    /// Frontier entries a worker expands between two stores (bounds the memory of a
    /// batch's results: about 2.5 successors an entry).
    static let batchEntriesPerWorker = 2048

    let explorer: Explorer
    let machine: Machine
    let leaves: LeafCache

    /// Per entry of the slice: where its events end, the moves it slept, and its end
    /// check (no move enabled).
    struct Entry {
        var eventsEnd: Int
        var slept: Int
        var terminal: Bool
        var terminalViolation: Violation?
    }
    /// A move's outcome: a violation, or a successor (its leaf ids, possibly
    /// provisional, from `leafStart`; its sleep set from `sleepStart`).
    struct Event {
        var move: Move
        var violation: Violation?
        var leafStart: Int
        var sleepStart: Int
        var sleepEnd: Int
        var childBits: UInt32
    }
    private(set) var entries: [Entry] = []
    private(set) var events: [Event] = []
    private var leafIDs: [UInt32] = []
    private var sleepers: [Sleeper] = []
    private var unfolded: [UInt32] = []
    private var scratch: [UInt32] = []
    private var treeScratch: [UInt32] = []
    private var resolved: [UInt32] = []

    init(explorer: Explorer, codec: StateCodec, template: MachineState) {
        self.explorer = explorer
        machine = Machine(scenario: explorer.scenario, model: explorer.model, limits: explorer.limits, state: template)
        leaves = LeafCache(codec, template: template)
    }

    /// Expands `slice` of `level` (nothing shared is written: the tree store and the
    /// leaf tables are read, new leaves get provisional ids).
    func expand(_ level: Level, _ slice: Range<Int>, store: TreeStore, sleeping: Bool, hashCompact: Bool) {
        entries.removeAll(keepingCapacity: true)
        events.removeAll(keepingCapacity: true)
        leafIDs.removeAll(keepingCapacity: true)
        sleepers.removeAll(keepingCapacity: true)
        let m = machine
        let k = leaves.codec.leafCount
        var moves: [Move] = []
        var choiceMoves: [Move] = []
        var done: [Sleeper] = []
        for i in slice {
            let decoded: LeafCache.Decoded
            if hashCompact {
                decoded = leaves.decode(Array(level.leaves[i * k..<(i + 1) * k]))
            } else {
                store.leaves(of: Int(level.ids[i]), into: &unfolded, scratch: &treeScratch)
                decoded = leaves.decode(unfolded)
            }
            let s = decoded.state
            let asleep = sleeping ? level.asleep(i) : []
            let asleepBits = asleep.reduce(0 as UInt32) { $0 | $1.bit }
            let only = sleeping ? level.reexpand[i] : 0
            done.removeAll(keepingCapacity: true)
            var any = false
            var slept = 0
            var stopped = false
            explorer.candidateMoves(s, on: m, into: &moves)
            var next = 0
            while next < moves.count {
                let move = moves[next]
                next += 1
                let bit = SleepSets.bit(move)
                if only != 0 {
                    guard let b = bit, only & b != 0 else { continue }
                } else if let b = bit, asleepBits & b != 0 {
                    // Asleep: enabled (independent moves do not disable it), and what
                    // it leads to is reached another way.
                    any = true
                    slept += 1
                    continue
                }
                let result = explorer.apply(move, to: s, on: m)
                if explorer.moreChoices(after: move, on: m, into: &choiceMoves) { moves += choiceMoves }
                switch result {
                case .blocked:
                    continue
                case .violation(let v):
                    events.append(Event(move: move, violation: v, leafStart: 0, sleepStart: 0, sleepEnd: 0, childBits: 0))
                    stopped = true
                case .next(let t):
                    any = true
                    let footprint = m.touched
                    let sleepStart = sleepers.count
                    var childBits: UInt32 = 0
                    if sleeping {
                        let childSleep = SleepSets.after(move, footprint, asleep: asleep, done: done)
                        childBits = childSleep.reduce(0 as UInt32) { $0 | $1.bit }
                        sleepers.append(contentsOf: childSleep)
                        if let b = bit { done.append(Sleeper(move: move, bit: b, footprint: footprint)) }
                    }
                    leaves.encode(t, into: &scratch, parent: decoded, provisional: true)
                    events.append(Event(move: move, violation: nil, leafStart: leafIDs.count,
                                        sleepStart: sleepStart, sleepEnd: sleepers.count, childBits: childBits))
                    leafIDs.append(contentsOf: scratch)
                }
                if stopped { break }
            }
            var entry = Entry(eventsEnd: events.count, slept: slept, terminal: false)
            if !stopped && !any && only == 0 {
                entry.terminal = true
                entry.terminalViolation = explorer.checkTerminal(s, on: m)
            }
            entries.append(entry)
        }
    }

    /// The successor's leaf ids with its provisional ids replaced by stored ones
    /// (storing the new leaves; called by the search between batches).
    func resolve(_ e: Event) -> [UInt32] {
        let k = leaves.codec.leafCount
        if resolved.count != k { resolved = Array(repeating: 0, count: k) }
        for i in 0..<k { resolved[i] = leafIDs[e.leafStart + i] }
        resolved.withUnsafeMutableBufferPointer { leaves.resolve($0) }
        return resolved
    }

    func sleepers(of e: Event) -> ArraySlice<Sleeper> { sleepers[e.sleepStart..<e.sleepEnd] }

    func endBatch() { leaves.endBatch() }
}

/// Hands a closure to `DispatchQueue.concurrentPerform`: the workers it calls write
/// only their own state while it runs, and the search reads their results after.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
