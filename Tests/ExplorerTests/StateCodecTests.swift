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
        let codec = StateCodec(cpuCount: scenario.cpuCount, memoryCount: AddressMap(scenario).count, weak: model == .rc11)
        var byEncoding: [[UInt8]: MachineState] = [:]
        var buffered = 0
        walkStates(scenario, model, limit: 3_000) { s in
            let bytes = codec.encoded(s)
            let back = bytes.withUnsafeBytes { codec.decodeFromBytes($0) }
            #expect(back == s, "\(scenario.name) \(model): a state does not decode to itself")
            let decoded = bytes.withUnsafeBytes { codec.decode($0) }
            #expect(decoded.state == s)
            // Encoding again with itself as the parent (every component reused) gives
            // the same bytes.
            #expect(codec.encoded(s, parent: decoded) == bytes)
            if let other = byEncoding.updateValue(s, forKey: bytes) {
                #expect(other == s, "\(scenario.name) \(model): two different states share an encoding")
            }
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
