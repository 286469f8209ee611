import CPUFlags
import Testing

@testable import Explorer

/// Walks up to `limit` states of a scenario breadth-first (its own walk, with the
/// states' `Hashable`, not the explorer's store) and hands each to `body`.
func walkStates(_ scenario: Scenario, _ model: MemoryModel, limit: Int, _ body: (MachineState) -> Void) {
    let e = Explorer(scenario: scenario, model: model)
    let m = Machine(scenario: scenario, model: model, limits: Limits(), state: e.initialState())
    var seen: Set<MachineState> = [e.initialState()]
    var frontier = [e.initialState()]
    while !frontier.isEmpty && seen.count < limit {
        var next: [MachineState] = []
        for s in frontier {
            body(s)
            var moves = e.candidateMoves(s, on: m)
            var i = 0
            var more: [Move] = []
            while i < moves.count {
                let move = moves[i]
                i += 1
                let r = e.apply(move, to: s, on: m)
                if e.moreChoices(after: move, on: m, into: &more) { moves += more }
                if case .next(let t) = r, seen.insert(t).inserted { next.append(t) }
            }
        }
        frontier = next
    }
}

/// The packed encoding decodes to the state it encodes, and two states share an
/// encoding only when they are equal: on the states of every standard scenario (the
/// first 3,000 of each, under TSO, where store buffers are non-empty) and of a litmus
/// test under PSO.
@Test(arguments: Scenario.standard)
func packedStatesDecodeExactly(_ scenario: Scenario) {
    for model in [MemoryModel.tso, .pso, .rc11] {
        let codec = StateCodec(map: AddressMap(scenario), weak: model == .rc11)
        let template = Explorer(scenario: scenario, model: model).initialState()
        let cache = LeafCache(codec, template: template)
        // A second worker's cache: it decodes leaves another one stored, from bytes.
        let other = LeafCache(codec, template: template)
        let tree = TreeStore(leaves: codec.leafCount)
        var byEncoding: [[UInt32]: MachineState] = [:]
        var buffered = 0
        walkStates(scenario, model, limit: 3_000) { s in
            let bytes = cache.encoded(s)
            let back = codec.decodeFromBytes(bytes, template: template)
            #expect(back == s, "\(scenario.name) \(model): a state does not decode to itself")
            let decoded = cache.decode(bytes)
            #expect(decoded.state == s)
            #expect(other.decode(bytes).state == s)
            // Encoding again with itself as the parent (every component reused) gives
            // the same bytes.
            #expect(cache.encoded(s, parent: decoded) == bytes)
            if let other = byEncoding.updateValue(s, forKey: bytes) {
                #expect(other == s, "\(scenario.name) \(model): two different states share an encoding")
            }
            // The tree of pairs gives equal leaf vectors one id and unfolds an id back
            // to its leaves.
            // (walkStates hands over each state once.)
            let (id, new) = bytes.withUnsafeBufferPointer { tree.insert($0) }
            #expect(new && id == tree.count - 1)
            let again = bytes.withUnsafeBufferPointer { tree.insert($0) }
            #expect(!again.inserted && again.id == id)
            var unfolded: [UInt32] = []
            var scratch: [UInt32] = []
            tree.leaves(of: id, into: &unfolded, scratch: &scratch)
            #expect(unfolded == bytes)
            if s.buffers.contains(where: { !$0.isEmpty }) { buffered += 1 }
        }
        #expect(byEncoding.count > 100)
        if model != .rc11 {
            #expect(buffered > 0, "\(scenario.name) \(model): no state with a buffered store was checked")
        }
    }
}

@Test func sparseValuesRoundTrip() {
    let values: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 1 << 40 | 1, 1 << 32 | 3 << 40 | 1, UInt64.max, 0x8000_0000_0000_0000]
    var w = ByteWriter()
    for v in values { w.sparse(v) }
    #expect(w.bytes.count < values.count * 9)
    w.bytes.withUnsafeBytes { b in
        var r = ByteReader(b)
        for v in values { #expect(r.sparse() == v) }
        #expect(r.index == b.count)
    }
    // A CPU word with a counter: 3 bytes, not a varint's 7.
    var word = ByteWriter()
    word.sparse(CPUWord(mode: .user, counter: 1).raw)
    #expect(word.bytes.count == 3)
}

/// The store finds what it stored, by content, across table growth and chunk changes.
@Test func theStateStoreFindsByContent() {
    let store = StateStore()
    var ids: [Int] = []
    for i in 0..<20_000 {
        let bytes = (0..<(i % 37 + 1)).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) } + [UInt8(i & 0xFF), UInt8(i >> 8)]
        let r = bytes.withUnsafeBytes { store.insert($0) }
        #expect(r.inserted)
        ids.append(r.id)
        let again = bytes.withUnsafeBytes { store.insert($0) }
        #expect(!again.inserted && again.id == r.id)
    }
    #expect(store.count == 20_000)
    #expect(Set(ids).count == 20_000)
    let first = [UInt8(0)] + [0, 0]
    #expect(store.bytes(of: 0).elementsEqual(first))
}

/// The tree of pairs against a dictionary: every vector gets one id, new vectors the
/// next one, and every id unfolds to its vector; over leaf counts whose trees carry an
/// odd leaf up, and past a pair table's first chunk (2^20 pairs) and index growth.
@Test(arguments: [2, 3, 5, 6])
func theTreeStoreFoldsAndUnfolds(_ k: Int) {
    let tree = TreeStore(leaves: k)
    var byVector: [[UInt32]: Int] = [:]
    var vectors: [[UInt32]] = []
    var rng = SplitMix64(state: UInt64(k))
    let n = k == 2 ? 1_200_000 : 60_000
    var wrong = 0
    for _ in 0..<n {
        // Few values per leaf (as the explorer's leaves), so pairs are shared.
        let v = (0..<k).map { i in UInt32(truncatingIfNeeded: rng.next() % UInt64(k == 2 ? 4_000 : 9 + i)) }
        let (id, new) = v.withUnsafeBufferPointer { tree.insert($0) }
        if let known = byVector[v] {
            if new || id != known { wrong += 1 }
        } else {
            if !new || id != vectors.count { wrong += 1 }
            byVector[v] = id
            vectors.append(v)
        }
    }
    #expect(wrong == 0, "\(wrong) of \(n) inserts returned a wrong id")
    #expect(tree.count == vectors.count)
    if k == 2 { #expect(tree.count > PairTable.chunkKeys) }
    var out: [UInt32] = []
    var scratch: [UInt32] = []
    var unfoldedWrong = 0
    for (id, v) in vectors.enumerated() where id % 7 == 0 || id == vectors.count - 1 {
        tree.leaves(of: id, into: &out, scratch: &scratch)
        if out != v { unfoldedWrong += 1 }
    }
    #expect(unfoldedWrong == 0)
}

/// The depth-first root set against `Set<UInt64>`: the same answer for every insert and
/// lookup, over keys shaped like root pairs (small ids, many sharing a half), the
/// extremes, and enough keys that every shard grows several times.
@Test func theRootSetIsASet() {
    let set = RootSet()
    var reference = Set<UInt64>()
    var rng = SplitMix64(state: 11)
    var wrong = 0
    func check(_ key: UInt64) {
        let new = set.insert(key)
        if new != reference.insert(key).inserted { wrong += 1 }
        if !set.contains(key) { wrong += 1 }
    }
    for key: UInt64 in [0, 1, 1 << 32, UInt64(UInt32.max - 1) << 32 | UInt64(UInt32.max - 1), 0, 1] { check(key) }
    for i in 0..<1_000_000 {
        let l = UInt64(rng.next() % (i % 3 == 0 ? 50 : 200_000))
        let r = UInt64(rng.next() % 70_000)
        check(l << 32 | r)
    }
    #expect(wrong == 0, "\(wrong) answers differ from Set's")
    #expect(set.count == reference.count)
    var absentWrong = 0
    for _ in 0..<100_000 {
        let key = UInt64(rng.next() % 300_000 + 300_000) << 32 | UInt64(rng.next() % 70_000)
        if set.contains(key) != reference.contains(key) { absentWrong += 1 }
    }
    #expect(absentWrong == 0)
    // About 7 bytes a slot at a load between 1/2 and 3/4 once shards have grown.
    let perKey = Double(set.bytes) / Double(set.count)
    #expect(perKey > 7 && perKey < 15, "\(perKey) bytes a key")
}

/// A tree store without ids (depth-first) says "new" exactly when the one with ids does.
@Test(arguments: [2, 5])
func aTreeStoreWithoutIDsAgrees(_ k: Int) {
    let withIDs = TreeStore(leaves: k)
    let without = TreeStore(leaves: k, ids: false)
    var rng = SplitMix64(state: UInt64(k) + 100)
    var wrong = 0
    for _ in 0..<300_000 {
        let v = (0..<k).map { i in UInt32(truncatingIfNeeded: rng.next() % UInt64(k == 2 ? 2_000 : 9 + i)) }
        let a = v.withUnsafeBufferPointer { withIDs.insert($0) }
        let b = v.withUnsafeBufferPointer { without.insert($0) }
        if a.inserted != b.inserted || b.id != -1 { wrong += 1 }
    }
    #expect(wrong == 0)
    #expect(without.count == withIDs.count)
}
