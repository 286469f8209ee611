/// Outcomes of moves, remembered by the leaves they touched: LTSmin's transition
/// caching (Blom, van de Pol and Weber's PINS "short vectors"), with read sets measured
/// as the move runs instead of a static dependency matrix.
///
/// Why it is sound. A move is deterministic, and everything it reads of the state it
/// marks in its footprint (`Machine.touched`, Footprint.swift): every memory access goes
/// through the model platform, every ghost hook marks the CPUs and global groups it uses,
/// and every move marks its own CPU. Run from two states that agree on every leaf its
/// footprint touches, a move reads the same values in the same order, so it touches the
/// same leaves, writes the same values into them and ends the same way (a successor, or
/// blocked): the leaves it did not touch it leaves alone. So the outcome measured at one
/// state holds at every state that agrees with it on those leaves. Which leaves a move
/// touches depends on what it read; a move keeps the few leaf sets (masks) it has been
/// seen to touch, and a lookup tries each: any entry that matches is the outcome, since
/// the run it recorded would be repeated exactly. Violations are not remembered (the
/// search stops at the first). What would break it is a read the footprint does not
/// mark; `Limits.checkTransitionCache` (on in the tests) runs every move it answers and
/// reports the first difference (`Report.transitionCacheMismatch`), over every standard
/// scenario under SC, TSO and PSO, every named mutant and generated scenarios.
///
/// A cache, not a store: a fixed table of slots, a new entry overwrites the one in its
/// slot, and the table doubles (keeping what fits) while it churns, up to
/// `Limits.transitionCacheEntries`. Not under rc11 (a load's choice of store is a move
/// of its own, `moreChoices`).
final class TransitionCache {
    /// Leaves per state (CPUs, the global leaf): at most 8, so a mask is a byte.
    let leafCount: Int
    /// Per footprint bit (Components): the leaves that component lives in.
    private let leavesOf: [UInt8]
    /// Per packed move: the leaf masks it has been seen to touch (`masksPerMoveMax`
    /// slots each, `maskCounts` of them used). A move seen to touch more leaf sets
    /// than that is answered for the first ones only (a miss costs a run, not a wrong
    /// answer).
    private let masks: UnsafeMutablePointer<UInt8>
    private let maskCounts: UnsafeMutablePointer<UInt8>
    static let masksPerMoveMax = 8
    /// The slots: per entry a tag (valid bit, move, mask), the outcome, the operations
    /// of the core it reached, then the key's leaf ids and the outcome's (`leafCount`
    /// each; only the mask's positions mean anything). Raw memory: the lookup is the
    /// depth-first search's inner loop, and an array's bounds checks and reference
    /// count were a third of it.
    private var slots: UnsafeMutablePointer<UInt32>
    private var capacity: Int
    private let capacityMax: Int
    private let entryWords: Int
    private var storesSinceGrowth = 0

    private(set) var hits = 0
    private(set) var misses = 0

    enum Outcome: UInt32 { case next = 1, blocked = 2 }

    static let capacityMin = Limits.transitionCacheEntriesRange.lowerBound

    /// `entries`: the most slots (rounded down to a power of two).
    init(codec: StateCodec, components: Components, entries: Int) {
        precondition(codec.leafCount <= 8 && !codec.weak, "transition cache: at most 8 leaves, not under rc11")
        precondition(entries >= TransitionCache.capacityMin, "transition cache: at least \(TransitionCache.capacityMin) entries")
        leafCount = codec.leafCount
        let g = UInt8(1) << UInt8(codec.cpuCount)
        // A component not placed below (one added to `Components` later) counts as
        // living in every leaf: keys that hold the whole state are never wrong, only
        // never reused. Placing it in too few leaves would give wrong answers.
        let every = UInt8(truncatingIfNeeded: (1 << leafCount) - 1)
        var of = [UInt8](repeating: every, count: 64)
        func bit(_ b: UInt64) -> Int { b.trailingZeroBitCount }
        for leaf in 0...codec.cpuCount {
            for a in codec.cellsOf[leaf] { of[bit(components.memory(a))] = 1 << UInt8(leaf) }
        }
        for c in 0..<codec.cpuCount {
            // A CPU's ghost component is its CPUState (its leaf) and its fields of
            // GlobalGhost (the global leaf); its buffer and pending IPIs are in its leaf;
            // the IPIs it waits for (`outstanding`) are global ghost.
            of[bit(components.ghost(c))] = 1 << UInt8(c) | g
            of[bit(components.buffer(c))] = 1 << UInt8(c)
            of[bit(components.pending(c))] = 1 << UInt8(c)
            of[bit(components.acks(c))] = g
        }
        for b in [components.flushDone, components.patchDone, components.gracePeriod] { of[bit(b)] = g }
        leavesOf = of
        masks = .allocate(capacity: (1 << 16) * TransitionCache.masksPerMoveMax)
        masks.initialize(repeating: 0, count: (1 << 16) * TransitionCache.masksPerMoveMax)
        maskCounts = .allocate(capacity: 1 << 16)
        maskCounts.initialize(repeating: 0, count: 1 << 16)
        capacityMax = 1 << (Int.bitWidth - 1 - entries.leadingZeroBitCount)
        capacity = min(capacityMax, TransitionCache.capacityMin)
        entryWords = 3 + 2 * leafCount
        slots = .allocate(capacity: capacity * entryWords)
        slots.initialize(repeating: 0, count: capacity * entryWords)
    }

    deinit {
        masks.deallocate()
        maskCounts.deallocate()
        slots.deallocate()
    }

    /// Bytes the table holds now.
    var bytes: Int { capacity * entryWords * 4 + (1 << 16) * (TransitionCache.masksPerMoveMax + 1) }

    /// The leaves a footprint touches, and the mover's own.
    func mask(_ f: Footprint, mover: Int) -> UInt8 {
        var m = UInt8(1) << UInt8(mover)
        var bits = f.reads | f.writes
        while bits != 0 {
            m |= leavesOf[bits.trailingZeroBitCount]
            bits &= bits - 1
        }
        return m
    }

    @inline(__always)
    private func slot(_ move: UInt16, _ mask: UInt8, _ ids: UnsafeBufferPointer<UInt32>) -> Int {
        var h = UInt64(move) << 8 | UInt64(mask)
        var m = mask
        while m != 0 {
            let l = m.trailingZeroBitCount
            h = (h ^ UInt64(ids[l])) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            m &= m - 1
        }
        h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
        h ^= h >> 32
        return Int(truncatingIfNeeded: h) & (capacity - 1)
    }

    @inline(__always)
    private func tag(_ move: UInt16, _ mask: UInt8) -> UInt32 { 1 << 31 | UInt32(move) << 8 | UInt32(mask) }

    /// The remembered outcome of `move` at the state with leaf ids `ids`, or nil. On
    /// `.next`, `out` holds the successor's leaf ids and `reached` the core operations
    /// the move reached.
    func lookup(_ move: UInt16, _ ids: UnsafeBufferPointer<UInt32>, into out: inout [UInt32], reached: inout UInt32) -> Outcome? {
        precondition(ids.count == leafCount, "transition cache: \(ids.count) leaf ids, expected \(leafCount)")
        let base = Int(move) * TransitionCache.masksPerMoveMax
        for i in 0..<Int(maskCounts[Int(move)]) {
            let mask = masks[base + i]
            let e = slot(move, mask, ids) * entryWords
            guard slots[e] == tag(move, mask) else { continue }
            var m = mask
            var same = true
            while m != 0 {
                let l = m.trailingZeroBitCount
                if slots[e + 3 + l] != ids[l] { same = false; break }
                m &= m - 1
            }
            guard same else { continue }
            hits += 1
            let outcome = Outcome(rawValue: slots[e + 1])!
            reached |= slots[e + 2]
            if outcome == .next {
                if out.count != leafCount { out = Array(repeating: 0, count: leafCount) }
                for l in 0..<leafCount {
                    out[l] = mask & (1 << UInt8(l)) != 0 ? slots[e + 3 + leafCount + l] : ids[l]
                }
            }
            return outcome
        }
        misses += 1
        return nil
    }

    /// Remembers that `move` at `ids`, touching `mask`, ended in `outcome` (for `.next`,
    /// the successor's ids `out`), reaching `reached`.
    func store(_ move: UInt16, mask: UInt8, _ ids: UnsafeBufferPointer<UInt32>, _ outcome: Outcome, out: [UInt32], reached: UInt32) {
        precondition(mask >> UInt8(leafCount) == 0, "transition cache: mask \(mask) beyond \(leafCount) leaves")
        let base = Int(move) * TransitionCache.masksPerMoveMax
        let n = Int(maskCounts[Int(move)])
        if !(0..<n).contains(where: { masks[base + $0] == mask }) {
            guard n < TransitionCache.masksPerMoveMax else { return }
            masks[base + n] = mask
            maskCounts[Int(move)] = UInt8(n + 1)
        }
        storesSinceGrowth += 1
        if storesSinceGrowth > capacity && capacity < capacityMax { grow() }
        let e = slot(move, mask, ids) * entryWords
        slots[e] = tag(move, mask)
        slots[e + 1] = outcome.rawValue
        slots[e + 2] = reached
        for l in 0..<leafCount {
            slots[e + 3 + l] = ids[l]
            slots[e + 3 + leafCount + l] = outcome == .next ? out[l] : 0
        }
    }

    /// Doubles the table, moving every entry to its slot in the new one (two that
    /// land in one slot: the later stays).
    private func grow() {
        let old = slots
        let oldWords = capacity * entryWords
        defer { old.deallocate() }
        capacity *= 2
        storesSinceGrowth = 0
        slots = .allocate(capacity: capacity * entryWords)
        slots.initialize(repeating: 0, count: capacity * entryWords)
        var key = [UInt32](repeating: 0, count: leafCount)
        for e in stride(from: 0, to: oldWords, by: entryWords) where old[e] & (1 << 31) != 0 {
            let move = UInt16(truncatingIfNeeded: old[e] >> 8)
            let mask = UInt8(truncatingIfNeeded: old[e])
            for l in 0..<leafCount { key[l] = old[e + 3 + l] }
            let n = key.withUnsafeBufferPointer { slot(move, mask, $0) } * entryWords
            for w in 0..<entryWords { slots[n + w] = old[e + w] }
        }
    }
}
