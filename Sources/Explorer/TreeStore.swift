/// The visited set of an exact search, tree-compressed (Laarman, van de Pol and Weber,
/// "Parallel recursive state compression for free", SPIN 2011; LTSmin's `--state=tree`).
///
/// A state is a fixed vector of leaf ids (`StateCodec`: one interned component per CPU,
/// holding its memory cells, store buffer and local state, then the machine's global
/// cells with the ghost state, then the rc11 views). The vector is folded pairwise into
/// a fixed binary tree: every inner node is a pair of child ids interned in a
/// `PairTable` of its own, and the root's id is the state's id. A move changes one or
/// two leaves, so a new state usually costs one new root pair (8 bytes, plus its slot
/// in the hash index) and reuses every inner node below: the packed store (`StateStore`)
/// held the whole encoding, ~45 bytes, per state.
///
/// Limits (each named and checked): a table holds at most 2^32 - 2 pairs (ids are
/// 32-bit), so a run stores at most that many states.
final class TreeStore {
    /// One inner node of the tree: its two children, each a leaf (its index in the
    /// vector) or an inner node (its index in `nodes`, which lists children first).
    struct Node {
        var left: Int
        var leftIsLeaf: Bool
        var right: Int
        var rightIsLeaf: Bool
    }

    let leafCount: Int
    private let nodes: [Node]
    private let tables: [PairTable]
    /// Without ids (a depth-first search): the root pairs in a `RootSet` instead of the
    /// root's `PairTable`: 7-byte slots at a load between 1/2 and 3/4, 9-14 bytes a
    /// state instead of 13-19.
    private let roots: RootSet?
    /// Per node: its id while a vector is folded (scratch of the one writer).
    private var value: [UInt32]
    /// Inner nodes (scratch arrays for `leaves(of:into:scratch:)` have this size).
    var nodeCount: Int { nodes.count }

    /// `ids`: states get ids that `leaves(of:into:scratch:)` unfolds (a breadth-first
    /// search keeps them in its frontier and parent links). Without, `insert` says only
    /// whether a state is new.
    init(leaves k: Int, ids: Bool = true) {
        precondition(k >= 2, "tree store: a state of \(k) leaves (at least 2: a CPU and the global leaf)")
        leafCount = k
        // Split in halves top-down (the root's children each hold about half the
        // leaves, so each has far fewer distinct values than there are states: the
        // root pair is then the only pair most new states add). Children first.
        var built: [Node] = []
        func build(_ range: Range<Int>) -> (Int, Bool) {
            if range.count == 1 { return (range.lowerBound, true) }
            let mid = range.lowerBound + range.count / 2
            let l = build(range.lowerBound..<mid)
            let r = build(mid..<range.upperBound)
            built.append(Node(left: l.0, leftIsLeaf: l.1, right: r.0, rightIsLeaf: r.1))
            return (built.count - 1, false)
        }
        _ = build(0..<k)
        nodes = built
        tables = built.map { _ in PairTable() }
        roots = ids ? nil : RootSet()
        value = Array(repeating: 0, count: built.count)
    }

    /// States stored (pairs in the root's table).
    var count: Int { roots?.count ?? tables[tables.count - 1].count }
    /// Bytes held by every table (pairs and indexes).
    var bytes: Int { tables.reduce(0) { $0 + $1.bytes } + (roots?.bytes ?? 0) }
    /// Pairs stored below the root (shared by many states).
    var innerPairs: Int { tables.dropLast().reduce(0) { $0 + $1.count } }

    /// Stores the state whose leaf ids are `leaves` unless it is stored: its id (-1
    /// without ids), and whether it is new.
    func insert(_ leaves: UnsafeBufferPointer<UInt32>) -> (id: Int, inserted: Bool) {
        precondition(leaves.count == leafCount, "tree store: \(leaves.count) leaves, expected \(leafCount)")
        var last = (id: 0, inserted: false)
        for j in nodes.indices {
            let n = nodes[j]
            let l = n.leftIsLeaf ? leaves[n.left] : value[n.left]
            let r = n.rightIsLeaf ? leaves[n.right] : value[n.right]
            if j == nodes.count - 1, let roots {
                return (-1, roots.insert(UInt64(l) << 32 | UInt64(r)))
            }
            last = tables[j].insert(UInt64(l) << 32 | UInt64(r))
            value[j] = UInt32(last.id)
        }
        return last
    }

    /// The leaf ids of state `id`, written into `out` (`leafCount` of them). Reads
    /// only (workers unfold states concurrently, each with its own `scratch`).
    func leaves(of id: Int, into out: inout [UInt32], scratch value: inout [UInt32]) {
        precondition(roots == nil, "tree store: a store without ids unfolds no state")
        precondition(id >= 0 && id < count, "tree store: no state \(id)")
        if out.count != leafCount { out = Array(repeating: 0, count: leafCount) }
        if value.count != nodes.count { value = Array(repeating: 0, count: nodes.count) }
        value[nodes.count - 1] = UInt32(id)
        for j in nodes.indices.reversed() {
            let n = nodes[j]
            let p = tables[j].pair(Int(value[j]))
            let l = UInt32(truncatingIfNeeded: p >> 32)
            let r = UInt32(truncatingIfNeeded: p)
            if n.leftIsLeaf { out[n.left] = l } else { value[n.left] = l }
            if n.rightIsLeaf { out[n.right] = r } else { value[n.right] = r }
        }
    }
}

/// Distinct 64-bit keys (pairs of 32-bit ids), each given the next id: the keys by id
/// in chunks that never move, and an open-addressing index of ids (load at most 3/4).
/// About 8 bytes a key plus 5-11 bytes of index.
final class PairTable {
    /// Keys per full chunk (8 MiB). The first chunk grows to this by doubling, so that
    /// the many small tables (inner nodes) stay small; later chunks are allocated full.
    static let chunkShift = 20
    static let chunkKeys = 1 << chunkShift
    /// Ids are 32-bit and stored in the index as id + 1 (0: empty slot).
    static let keysMax = Int(UInt32.max) - 1

    private var chunks: [UnsafeMutablePointer<UInt64>] = []
    private var firstCapacity = 0
    private(set) var count = 0
    private var index = IDIndex()

    init() {}

    deinit { for c in chunks { c.deallocate() } }

    var bytes: Int {
        (chunks.isEmpty ? 0 : firstCapacity * 8 + (chunks.count - 1) * PairTable.chunkKeys * 8) + index.bytes
    }

    @inline(__always)
    func pair(_ id: Int) -> UInt64 { chunks[id >> PairTable.chunkShift][id & (PairTable.chunkKeys - 1)] }

    @inline(__always)
    static func hash(_ k: UInt64) -> UInt64 {
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }

    func insert(_ key: UInt64) -> (id: Int, inserted: Bool) {
        let (slot, found) = index.probe(PairTable.hash(key)) { pair($0) == key }
        if let id = found { return (id, false) }
        precondition(count < PairTable.keysMax, "tree store: more than \(PairTable.keysMax) pairs in one table")
        let id = count
        append(key)
        index.set(slot, id, count: count) { PairTable.hash(pair($0)) }
        return (id, true)
    }

    private func append(_ key: UInt64) {
        let c = count >> PairTable.chunkShift
        let o = count & (PairTable.chunkKeys - 1)
        if c == 0 {
            if o == firstCapacity {
                // The first chunk doubles (copying) until it is full-size.
                let n = max(64, 2 * firstCapacity)
                let p = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
                if let old = chunks.first {
                    p.update(from: old, count: firstCapacity)
                    old.deallocate()
                    chunks[0] = p
                } else {
                    chunks.append(p)
                }
                firstCapacity = n
            }
        } else if c == chunks.count {
            chunks.append(UnsafeMutablePointer<UInt64>.allocate(capacity: PairTable.chunkKeys))
        }
        chunks[c][o] = key
        count += 1
    }
}
