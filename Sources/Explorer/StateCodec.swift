import CPUFlags

/// The packed encoding of a `MachineState`: the bytes the explorer stores for every
/// visited state (and holds for its frontier), instead of the nested arrays the
/// machine runs on. Fixed-order fields, small integers as LEB128 varints (almost every
/// value is below 128: one byte), flags packed into bytes, no lengths where the
/// scenario fixes them (memory cells, CPUs). Equal states encode to equal bytes and
/// different states to different bytes (the encoding is decoded back exactly: tests
/// check `decode(encode(s)) == s` on every state of the standard scenarios), so the
/// visited set compares bytes.
///
/// Why not `Hashable` on the structs: hashing nested arrays through `Hasher` and
/// copying them (retain/release of every frame and replay log) was about half of the
/// search's instructions, and each stored state cost ~840 bytes of heap objects.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always) mutating func u8(_ v: UInt8) { bytes.append(v) }
    @inline(__always) mutating func i8(_ v: Int8) { bytes.append(UInt8(bitPattern: v)) }
    @inline(__always) mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    @inline(__always) mutating func count(_ n: Int) { varint(UInt64(n)) }
    /// A 64-bit value whose set bits are few and far apart (a CPU word: mode in byte 0,
    /// work bits in byte 4, counter in bytes 5-7): below 128 one byte; otherwise a
    /// header (0x80 | which of bytes 1-7 are non-zero), byte 0, and those bytes. A
    /// word with a counter is 3 bytes instead of a varint's 7.
    @inline(__always) mutating func sparse(_ v: UInt64) {
        if v < 0x80 {
            bytes.append(UInt8(v))
            return
        }
        var mask: UInt8 = 0
        for i in 1..<8 where (v >> UInt64(8 * i)) & 0xFF != 0 { mask |= 1 << UInt8(i - 1) }
        bytes.append(0x80 | mask)
        bytes.append(UInt8(truncatingIfNeeded: v))
        for i in 1..<8 where mask & (1 << UInt8(i - 1)) != 0 { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(8 * i))) }
    }
}

/// Reads what `ByteWriter` wrote. The bytes come from this process's own encoder, so a
/// malformed encoding is a bug in the codec: it traps (precondition), never guesses.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always) mutating func u8() -> UInt8 {
        precondition(index < bytes.count, "state encoding truncated")
        let v = bytes[index]
        index += 1
        return v
    }
    @inline(__always) mutating func i8() -> Int8 { Int8(bitPattern: u8()) }
    @inline(__always) mutating func varint() -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = u8()
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
            precondition(shift < 64, "state encoding: varint too long")
        }
    }
    @inline(__always) mutating func count() -> Int { Int(varint()) }
    @inline(__always) mutating func sparse() -> UInt64 {
        let h = u8()
        if h < 0x80 { return UInt64(h) }
        var v = UInt64(u8())
        for i in 1..<8 where h & (1 << UInt8(i - 1)) != 0 { v |= UInt64(u8()) << UInt64(8 * i) }
        return v
    }
}

/// Packs the machine's states for the visited set and the frontier, with component
/// collapse (SPIN's -DCOLLAPSE): a state is a fixed vector of leaf ids, each leaf
/// interned in a table of its own. Leaf c (one per CPU) holds the CPU's memory cells
/// (its word, pin count, callbacks, counter, pin lock, current task), its store buffer
/// and its local state (frames, ghost fields); the next leaf holds the machine's other
/// cells (pte, text, the RCU pointer and objects, a spare task's word, on_cpu) and the
/// global ghost state; under rc11 the last leaf holds the modification orders and
/// views. A machine's CPUs run through far fewer local states than the machine has
/// states, so the leaves are few and shared; the exact search folds the vector into a
/// tree of pairs (`TreeStore`).
///
/// This class holds the leaf tables (bytes), shared by the search's workers; each
/// worker decodes and encodes through a `LeafCache` of its own. While workers expand
/// states the tables are only read; new leaves are interned between batches.
final class StateCodec {
    let cpuCount: Int
    let memoryCount: Int
    /// Leaves per state: one per CPU, the global leaf, and under rc11 the views.
    let leafCount: Int
    /// Per leaf (CPUs, then the global leaf): the memory addresses it holds, in order.
    let cellsOf: [[Int]]
    /// Under rc11: the modification orders and views, a leaf of their own.
    let weak: Bool
    private var tables: [StateStore]

    /// `map` says which memory cells are a CPU's (they go with its leaf).
    init(map: AddressMap, weak: Bool = false) {
        cpuCount = map.cpuCount
        memoryCount = map.count
        self.weak = weak
        leafCount = cpuCount + 1 + (weak ? 1 : 0)
        var cells: [[Int]] = Array(repeating: [], count: cpuCount + 1)
        for a in 0..<map.count {
            let owner = a < map.cells ? a % map.slots : cpuCount
            cells[owner < cpuCount ? owner : cpuCount].append(a)
        }
        cellsOf = cells
        tables = (0..<leafCount).map { _ in StateStore() }
    }

    /// Bytes held by the leaf tables.
    var tableBytes: Int { tables.reduce(0) { $0 + $1.bytes } }
    /// Entries in the leaf tables (CPU leaves; the global leaves with the rc11 views).
    var tableEntries: (cpu: Int, ghost: Int) {
        (tables.prefix(cpuCount).reduce(0) { $0 + $1.count }, tables.dropFirst(cpuCount).reduce(0) { $0 + $1.count })
    }
    func leaves(in leaf: Int) -> Int { tables[leaf].count }

    /// Leaf `leaf` of `s`, as bytes.
    func write(_ leaf: Int, of s: MachineState, into w: inout ByteWriter) {
        w.reset()
        if leaf < cpuCount {
            for a in cellsOf[leaf] { w.sparse(s.memory[a]) }
            w.count(s.buffers[leaf].count)
            for e in s.buffers[leaf] {
                w.varint(UInt64(e.address) << 1 | (e.release ? 1 : 0))
                w.sparse(e.value)
            }
            s.cpus[leaf].encode(into: &w)
        } else if leaf == cpuCount {
            for a in cellsOf[leaf] { w.sparse(s.memory[a]) }
            s.ghost.encode(into: &w, cpuCount: cpuCount)
        } else {
            s.weak.encode(into: &w)
        }
    }

    /// The id of a stored leaf (read only: safe while other workers read).
    func find(_ leaf: Int, _ bytes: UnsafeRawBufferPointer) -> Int? { tables[leaf].find(bytes) }
    /// Stores a leaf unless stored (between batches only: one writer, no readers).
    func intern(_ leaf: Int, _ bytes: UnsafeRawBufferPointer) -> (id: Int, inserted: Bool) { tables[leaf].insert(bytes) }

    /// Leaf `leaf` number `id`, decoded from its bytes into `s` (its cells, and its
    /// buffer and CPU, its ghost state, or its views).
    func read(_ leaf: Int, _ id: Int, into s: inout MachineState) {
        var r = ByteReader(tables[leaf].bytes(of: id))
        if leaf < cpuCount {
            for a in cellsOf[leaf] { s.memory[a] = r.sparse() }
            s.buffers[leaf] = (0..<r.count()).map { _ in
                let a = r.varint()
                return BufferedStore(address: Int32(a >> 1), value: r.sparse(), release: a & 1 != 0)
            }
            s.cpus[leaf] = CPUState(decoding: &r)
        } else if leaf == cpuCount {
            for a in cellsOf[leaf] { s.memory[a] = r.sparse() }
            s.ghost = GlobalGhost(decoding: &r, cpuCount: cpuCount)
        } else {
            s.weak = WeakMemory(decoding: &r, locations: memoryCount, cpuCount: cpuCount)
        }
        precondition(r.index == r.bytes.count, "state codec: bytes left over in leaf \(leaf) #\(id)")
    }

    /// Decodes from the leaf tables' bytes alone (tests: the bytes determine the state,
    /// so equal leaf ids mean equal states). `template` gives the shapes (any state of
    /// the machine: the initial one).
    func decodeFromBytes(_ ids: [UInt32], template: MachineState) -> MachineState {
        precondition(ids.count == leafCount, "state codec: \(ids.count) leaf ids, expected \(leafCount)")
        var s = template
        for leaf in 0..<leafCount { read(leaf, Int(ids[leaf]), into: &s) }
        return s
    }
}

/// A worker's view of the leaf tables: the decoded leaves it has used (objects of its
/// own: two threads retaining and releasing the same arrays made a parallel search no
/// faster than one thread), and the new leaves it found during a batch, held until the
/// batch's states are stored (`resolve`).
final class LeafCache {
    let codec: StateCodec
    private var cpuLeaves: [[(buffer: [BufferedStore], cpu: CPUState, cells: [UInt64])?]]
    private var globalLeaves: [(ghost: GlobalGhost, cells: [UInt64])?] = []
    private var weakLeaves: [WeakMemory?] = []
    /// Leaves found in this batch and not yet in the tables: per leaf, their bytes (a
    /// small store of its own, so that one new leaf reached many times is held once)
    /// and the state they came from. Their provisional ids carry `pendingBit`.
    private var pendingBytes: [StateStore]
    private var pendingStates: [[MachineState]]
    private var part = ByteWriter()
    /// A provisional leaf id: pending leaf `id & ~pendingBit` (leaf ids stay below it).
    static let pendingBit: UInt32 = 1 << 31
    /// Where the state of a leaf shape comes from when a leaf is decoded from bytes.
    private let template: MachineState

    init(_ codec: StateCodec, template: MachineState) {
        self.codec = codec
        self.template = template
        cpuLeaves = Array(repeating: [], count: codec.cpuCount)
        pendingBytes = (0..<codec.leafCount).map { _ in StateStore() }
        pendingStates = Array(repeating: [], count: codec.leafCount)
    }

    /// A decoded state and its leaf ids (CPUs, the global leaf, the views), so that a
    /// successor can reuse the ids of the leaves its move did not change.
    struct Decoded {
        var state: MachineState
        var ids: [UInt32]
    }

    @inline(__always)
    private func sameCells(_ leaf: Int, _ a: MachineState, _ b: MachineState) -> Bool {
        for x in codec.cellsOf[leaf] where a.memory[x] != b.memory[x] { return false }
        return true
    }

    @inline(__always)
    private func unchanged(_ leaf: Int, _ s: MachineState, _ p: MachineState) -> Bool {
        if leaf < codec.cpuCount {
            return s.cpus[leaf] == p.cpus[leaf] && s.buffers[leaf] == p.buffers[leaf] && sameCells(leaf, s, p)
        }
        if leaf == codec.cpuCount { return s.ghost == p.ghost && sameCells(leaf, s, p) }
        return s.weak == p.weak
    }

    /// Writes the leaf ids of `s` into `out` (`leafCount` of them). With `parent` (the
    /// state `s` was reached from), leaves equal to the parent's keep its ids without
    /// being encoded again: a move changes one CPU's state, and unchanged ones still
    /// share the parent's storage, so the comparison is usually an identity check.
    /// With `provisional`, a leaf the tables do not hold gets a provisional id (the
    /// tables are only read); else it is stored at once.
    func encode(_ s: MachineState, into out: inout [UInt32], parent: Decoded? = nil, provisional: Bool = false) {
        if out.count != codec.leafCount { out = Array(repeating: 0, count: codec.leafCount) }
        if !codec.weak { precondition(s.weak.isEmpty, "state codec: rc11 views in a state of another model") }
        for leaf in 0..<codec.leafCount {
            if let p = parent, unchanged(leaf, s, p.state) {
                out[leaf] = p.ids[leaf]
                continue
            }
            codec.write(leaf, of: s, into: &part)
            if provisional {
                if let id = part.bytes.withUnsafeBytes({ codec.find(leaf, $0) }) {
                    out[leaf] = UInt32(id)
                } else {
                    let (k, new) = part.bytes.withUnsafeBytes { pendingBytes[leaf].insert($0) }
                    if new { pendingStates[leaf].append(s) }
                    out[leaf] = LeafCache.pendingBit | UInt32(k)
                }
                continue
            }
            let (id, new) = part.bytes.withUnsafeBytes { codec.intern(leaf, $0) }
            precondition(id < Int(LeafCache.pendingBit), "state codec: more than 2^31 leaves")
            out[leaf] = UInt32(id)
            if new { remember(leaf, id, from: s) }
        }
    }

    /// Replaces provisional ids in `ids` by stored ones, storing their leaves (between
    /// batches: the only writer of the tables).
    func resolve(_ ids: UnsafeMutableBufferPointer<UInt32>) {
        for leaf in 0..<ids.count where ids[leaf] & LeafCache.pendingBit != 0 {
            let k = Int(ids[leaf] & ~LeafCache.pendingBit)
            let (id, new) = codec.intern(leaf, pendingBytes[leaf].bytes(of: k))
            precondition(id < Int(LeafCache.pendingBit), "state codec: more than 2^31 leaves")
            ids[leaf] = UInt32(id)
            if new { remember(leaf, id, from: pendingStates[leaf][k]) }
        }
    }

    /// Forgets the batch's pending leaves (after `resolve` of every state that has one).
    func endBatch() {
        for leaf in pendingBytes.indices where pendingBytes[leaf].count > 0 {
            pendingBytes[leaf] = StateStore()
            pendingStates[leaf].removeAll(keepingCapacity: true)
        }
    }

    private func remember(_ leaf: Int, _ id: Int, from s: MachineState) {
        func put<T>(_ a: inout [T?], _ v: T) {
            while a.count <= id { a.append(nil) }
            a[id] = v
        }
        if leaf < codec.cpuCount {
            put(&cpuLeaves[leaf], (s.buffers[leaf], s.cpus[leaf], codec.cellsOf[leaf].map { s.memory[$0] }))
        } else if leaf == codec.cpuCount {
            put(&globalLeaves, (s.ghost, codec.cellsOf[leaf].map { s.memory[$0] }))
        } else {
            put(&weakLeaves, s.weak)
        }
    }

    /// Decodes leaf ids (stored ones) into a state: from this cache, or from the
    /// tables' bytes the first time this worker meets a leaf.
    func decode(_ ids: [UInt32]) -> Decoded {
        precondition(ids.count == codec.leafCount, "state codec: \(ids.count) leaf ids, expected \(codec.leafCount)")
        var memory = [UInt64](repeating: 0, count: codec.memoryCount)
        var buffers: [[BufferedStore]] = []
        var cpus: [CPUState] = []
        buffers.reserveCapacity(codec.cpuCount)
        cpus.reserveCapacity(codec.cpuCount)
        for leaf in 0..<codec.leafCount {
            let id = Int(ids[leaf])
            precondition(ids[leaf] & LeafCache.pendingBit == 0, "state codec: decoding a provisional leaf id")
            let cached: Bool
            if leaf < codec.cpuCount { cached = id < cpuLeaves[leaf].count && cpuLeaves[leaf][id] != nil }
            else if leaf == codec.cpuCount { cached = id < globalLeaves.count && globalLeaves[id] != nil }
            else { cached = id < weakLeaves.count && weakLeaves[id] != nil }
            if !cached {
                var s = template
                codec.read(leaf, id, into: &s)
                remember(leaf, id, from: s)
            }
        }
        for c in 0..<codec.cpuCount {
            let (buffer, cpu, cells) = cpuLeaves[c][Int(ids[c])]!
            buffers.append(buffer)
            cpus.append(cpu)
            for (i, a) in codec.cellsOf[c].enumerated() { memory[a] = cells[i] }
        }
        let (ghost, cells) = globalLeaves[Int(ids[codec.cpuCount])]!
        for (i, a) in codec.cellsOf[codec.cpuCount].enumerated() { memory[a] = cells[i] }
        var state = MachineState(memory: memory, buffers: buffers, cpus: cpus, ghost: ghost)
        if codec.weak { state.weak = weakLeaves[Int(ids[codec.cpuCount + 1])]! }
        return Decoded(state: state, ids: ids)
    }

    /// The leaf ids of `s`, as a fresh array, stored at once (tests).
    func encoded(_ s: MachineState, parent: Decoded? = nil) -> [UInt32] {
        var out: [UInt32] = []
        encode(s, into: &out, parent: parent)
        return out
    }
}

extension PendingIPI {
    static let kinds = WorkKind.allCases

    func encode(into w: inout ByteWriter) {
        w.u8(UInt8(PendingIPI.kinds.firstIndex(of: kind)!))
        w.i8(from)
    }

    init(decoding r: inout ByteReader) {
        kind = PendingIPI.kinds[Int(r.u8())]
        from = r.i8()
    }
}

extension Frame {
    func encode(into w: inout ByteWriter) {
        w.u8(kind.rawValue | (interruptible ? 0x10 : 0) | (savedUserCR3 ? 0x20 : 0))
        w.varint(UInt64(UInt16(bitPattern: pc)))
        w.count(replay.count)
        for v in replay { w.sparse(v) }
        w.count(regs.count)
        for v in regs { w.sparse(v) }
        w.count(ipis.count)
        for i in ipis { i.encode(into: &w) }
    }

    init(decoding r: inout ByteReader) {
        let k = r.u8()
        self.init(kind: FrameKind(rawValue: k & 0x0F)!)
        interruptible = k & 0x10 != 0
        savedUserCR3 = k & 0x20 != 0
        pc = Int16(bitPattern: UInt16(truncatingIfNeeded: r.varint()))
        replay = (0..<r.count()).map { _ in r.sparse() }
        regs = (0..<r.count()).map { _ in r.sparse() }
        ipis = (0..<r.count()).map { _ in PendingIPI(decoding: &r) }
    }
}

extension CPUState {
    func encode(into w: inout ByteWriter) {
        w.count(frames.count)
        for f in frames { f.encode(into: &w) }
        var flags: UInt8 = context.rawValue
        if userCR3 { flags |= 0x04 }
        if inNMI { flags |= 0x08 }
        if kernelSide { flags |= 0x10 }
        if qsReported { flags |= 0x20 }
        if qsDeferred { flags |= 0x40 }
        if needResched { flags |= 0x80 }
        w.u8(flags)
        w.i8(tlb)
        w.i8(textSeen)
        w.count(pendingIPIs.count)
        for i in pendingIPIs { i.encode(into: &w) }
        precondition((0..<16).contains(nmisLeft) && (0..<16).contains(irqsLeft), "interrupt budgets are packed in 4 bits each")
        w.u8(UInt8(bitPattern: nmisLeft) << 4 | UInt8(bitPattern: irqsLeft) & 0x0F)
        w.u8(reader[0] << 4 | reader[1])
        w.i8(eqsEntries)
        w.varint(UInt64(UInt16(bitPattern: litmusSeen)))
        w.i8(task)
        w.i8(mcesLeft)
    }

    init(decoding r: inout ByteReader) {
        frames = (0..<r.count()).map { _ in Frame(decoding: &r) }
        let flags = r.u8()
        context = GhostContext(rawValue: flags & 0x03)!
        userCR3 = flags & 0x04 != 0
        tlb = r.i8()
        textSeen = r.i8()
        pendingIPIs = (0..<r.count()).map { _ in PendingIPI(decoding: &r) }
        let budgets = r.u8()
        nmisLeft = Int8(budgets >> 4)
        irqsLeft = Int8(budgets & 0x0F)
        inNMI = flags & 0x08 != 0
        let readers = r.u8()
        reader = ReaderLevels(task: readers >> 4, nmi: readers & 0x0F)
        eqsEntries = r.i8()
        kernelSide = flags & 0x10 != 0
        litmusSeen = Int16(bitPattern: UInt16(truncatingIfNeeded: r.varint()))
        qsReported = flags & 0x20 != 0
        qsDeferred = flags & 0x40 != 0
        needResched = flags & 0x80 != 0
        task = r.i8()
        mcesLeft = r.i8()
    }
}

extension GlobalGhost {
    func encode(into w: inout ByteWriter, cpuCount n: Int) {
        w.i8(flushCompleted)
        w.i8(textCompleted)
        for c in 0..<n {
            w.u8(onBehalf[c])
            w.i8(outstanding[c])
            w.varint(UInt64(owed[c].rawValue))
            w.varint(requested[c])
            w.varint(queued[c])
            w.varint(ran[c])
            w.i8(gpSample[c])
            w.sparse(gpSnapshot[c])
        }
        w.u8(gracePeriodStarted ? 1 : 0)
        w.u8(freed)
        w.u8(written)
        w.i8(gpWaitingOn)
    }

    init(decoding r: inout ByteReader, cpuCount n: Int) {
        flushCompleted = r.i8()
        textCompleted = r.i8()
        onBehalf = PerCPU(repeating: 0); outstanding = PerCPU(repeating: 0)
        requested = PerCPU(repeating: 0); queued = PerCPU(repeating: 0); ran = PerCPU(repeating: 0)
        gpSample = PerCPU(repeating: -1); gpSnapshot = PerCPU(repeating: 0)
        var owing: [Work] = []
        for c in 0..<n {
            onBehalf[c] = r.u8()
            outstanding[c] = r.i8()
            owing.append(Work(rawValue: UInt32(r.varint())))
            requested[c] = r.varint()
            queued[c] = r.varint()
            ran[c] = r.varint()
            gpSample[c] = r.i8()
            gpSnapshot[c] = r.sparse()
        }
        owed = OwedWork(owing: owing)
        gracePeriodStarted = r.u8() != 0
        freed = r.u8()
        written = r.u8()
        gpWaitingOn = r.i8()
    }
}

extension WeakMemory {
    /// Per location its window of stores (count, then each store's value and view), per CPU its
    /// view and fence views, then the seq_cst view. A view is a count (0: none) and its
    /// indices.
    func encode(into w: inout ByteWriter) {
        func view(_ v: [UInt16]) {
            w.count(v.count)
            for x in v { w.varint(UInt64(x)) }
        }
        for a in history.indices {
            w.count(history[a].count)
            for m in history[a] {
                w.sparse(m.value)
                view(m.view)
            }
        }
        for c in views.indices {
            view(views[c])
            view(fenceAcquire[c])
            view(fenceRelease[c])
        }
        view(sc)
    }

    init(decoding r: inout ByteReader, locations n: Int, cpuCount: Int) {
        func view() -> [UInt16] { (0..<r.count()).map { _ in UInt16(r.varint()) } }
        self.init()
        for _ in 0..<n {
            history.append((0..<r.count()).map { _ in Message(value: r.sparse(), view: view()) })
        }
        for _ in 0..<cpuCount {
            views.append(view())
            fenceAcquire.append(view())
            fenceRelease.append(view())
        }
        sc = view()
    }
}

extension Move {
    /// A move in two bytes (the parent links of the breadth-first search keep one per
    /// stored state): kind in the top 3 bits, CPU in the next 5, store-buffer index in
    /// the low 8.
    var packed: UInt16 {
        switch self {
        case .step(let c, let k): return 0 << 13 | UInt16(c) << 8 | UInt16(k)
        case .drain(let c, let i): return 1 << 13 | UInt16(c) << 8 | UInt16(i)
        case .ipi(let c): return 2 << 13 | UInt16(c) << 8
        case .irq(let c): return 3 << 13 | UInt16(c) << 8
        case .nmi(let c): return 4 << 13 | UInt16(c) << 8
        case .mce(let c): return 5 << 13 | UInt16(c) << 8
        }
    }

    init(packed p: UInt16) {
        let c = Int(p >> 8 & 0x1F)
        switch p >> 13 {
        case 0: self = .step(c, choice: Int(p & 0xFF))
        case 1: self = .drain(cpu: c, index: Int(p & 0xFF))
        case 2: self = .ipi(c)
        case 3: self = .irq(c)
        case 4: self = .nmi(c)
        default: self = .mce(c)
        }
    }

    /// The CPU whose move this is.
    var cpu: Int {
        switch self {
        case .step(let c, _), .drain(let c, _), .ipi(let c), .irq(let c), .nmi(let c), .mce(let c): return c
        }
    }
}
