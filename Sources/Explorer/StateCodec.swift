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
final class StateCodec {
    let cpuCount: Int
    let memoryCount: Int
    /// Leaves per state: one per CPU, the global leaf, and under rc11 the views.
    let leafCount: Int
    /// Per leaf (CPUs, then the global leaf): the memory addresses it holds, in order.
    let cellsOf: [[Int]]
    private var tables: [StateStore]
    /// The leaves themselves, by id (there are few: isolated-mix with a fourth CPU has
    /// about 8,000 CPU-local states in its first 2 million states), so that decoding a
    /// state is a lookup per leaf.
    private var cpuCache: [[(buffer: [BufferedStore], cpu: CPUState, cells: [UInt64])]]
    private var globalCache: [(ghost: GlobalGhost, cells: [UInt64])] = []
    /// Under rc11: the modification orders and views, a leaf of their own.
    let weak: Bool
    private var weakCache: [WeakMemory] = []
    private var part = ByteWriter()

    /// A decoded state and its leaf ids (CPUs, the global leaf, the views), so that a
    /// successor can reuse the ids of the leaves its move did not change.
    struct Decoded {
        var state: MachineState
        var ids: [UInt32]
    }

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
        cpuCache = Array(repeating: [], count: cpuCount)
    }

    /// Bytes held by the leaf tables.
    var tableBytes: Int { tables.reduce(0) { $0 + $1.bytes } }
    /// Entries in the leaf tables (CPU leaves; the global leaves with the rc11 views).
    var tableEntries: (cpu: Int, ghost: Int) {
        (tables.prefix(cpuCount).reduce(0) { $0 + $1.count }, tables.dropFirst(cpuCount).reduce(0) { $0 + $1.count })
    }

    @inline(__always)
    private func sameCells(_ leaf: Int, _ a: MachineState, _ b: MachineState) -> Bool {
        for x in cellsOf[leaf] where a.memory[x] != b.memory[x] { return false }
        return true
    }

    /// Writes the leaf ids of `s` into `out` (`leafCount` of them). With `parent` (the
    /// state `s` was reached from), leaves equal to the parent's keep its ids without
    /// being encoded again: a move changes one CPU's state, and unchanged ones still
    /// share the parent's storage, so the comparison is usually an identity check.
    func encode(_ s: MachineState, into out: inout [UInt32], parent: Decoded? = nil) {
        if out.count != leafCount { out = Array(repeating: 0, count: leafCount) }
        for c in 0..<cpuCount {
            if let p = parent, s.cpus[c] == p.state.cpus[c], s.buffers[c] == p.state.buffers[c], sameCells(c, s, p.state) {
                out[c] = p.ids[c]
                continue
            }
            part.reset()
            for a in cellsOf[c] { part.sparse(s.memory[a]) }
            part.count(s.buffers[c].count)
            for e in s.buffers[c] {
                part.varint(UInt64(e.address) << 1 | (e.release ? 1 : 0))
                part.sparse(e.value)
            }
            s.cpus[c].encode(into: &part)
            let (id, new) = part.bytes.withUnsafeBytes { tables[c].insert($0) }
            if new { cpuCache[c].append((s.buffers[c], s.cpus[c], cellsOf[c].map { s.memory[$0] })) }
            out[c] = UInt32(id)
        }
        let g = cpuCount
        if let p = parent, s.ghost == p.state.ghost, sameCells(g, s, p.state) {
            out[g] = p.ids[g]
        } else {
            part.reset()
            for a in cellsOf[g] { part.sparse(s.memory[a]) }
            s.ghost.encode(into: &part, cpuCount: cpuCount)
            let (id, new) = part.bytes.withUnsafeBytes { tables[g].insert($0) }
            if new { globalCache.append((s.ghost, cellsOf[g].map { s.memory[$0] })) }
            out[g] = UInt32(id)
        }
        guard weak else {
            precondition(s.weak.isEmpty, "state codec: rc11 views in a state of another model")
            return
        }
        if let p = parent, s.weak == p.state.weak {
            out[g + 1] = p.ids[g + 1]
            return
        }
        part.reset()
        s.weak.encode(into: &part)
        let (id, new) = part.bytes.withUnsafeBytes { tables[g + 1].insert($0) }
        if new { weakCache.append(s.weak) }
        out[g + 1] = UInt32(id)
    }

    /// Decodes what `encode` wrote (leaves from the cache).
    func decode(_ ids: [UInt32]) -> Decoded {
        precondition(ids.count == leafCount, "state codec: \(ids.count) leaf ids, expected \(leafCount)")
        var memory = [UInt64](repeating: 0, count: memoryCount)
        var buffers: [[BufferedStore]] = []
        var cpus: [CPUState] = []
        buffers.reserveCapacity(cpuCount)
        cpus.reserveCapacity(cpuCount)
        for c in 0..<cpuCount {
            let (buffer, cpu, cells) = cpuCache[c][Int(ids[c])]
            buffers.append(buffer)
            cpus.append(cpu)
            for (i, a) in cellsOf[c].enumerated() { memory[a] = cells[i] }
        }
        let (ghost, cells) = globalCache[Int(ids[cpuCount])]
        for (i, a) in cellsOf[cpuCount].enumerated() { memory[a] = cells[i] }
        var state = MachineState(memory: memory, buffers: buffers, cpus: cpus, ghost: ghost)
        if weak { state.weak = weakCache[Int(ids[cpuCount + 1])] }
        return Decoded(state: state, ids: ids)
    }

    /// Decodes from the leaf tables' bytes, not the cache (tests: the bytes alone
    /// determine the state, so equal leaf ids mean equal states).
    func decodeFromBytes(_ ids: [UInt32]) -> MachineState {
        precondition(ids.count == leafCount, "state codec: \(ids.count) leaf ids, expected \(leafCount)")
        var memory = [UInt64](repeating: 0, count: memoryCount)
        var buffers: [[BufferedStore]] = []
        var cpus: [CPUState] = []
        for c in 0..<cpuCount {
            var p = ByteReader(tables[c].bytes(of: Int(ids[c])))
            for a in cellsOf[c] { memory[a] = p.sparse() }
            buffers.append((0..<p.count()).map { _ in
                let a = p.varint()
                return BufferedStore(address: Int32(a >> 1), value: p.sparse(), release: a & 1 != 0)
            })
            cpus.append(CPUState(decoding: &p))
            precondition(p.index == p.bytes.count, "state codec: bytes left over in cpu\(c)'s leaf")
        }
        var g = ByteReader(tables[cpuCount].bytes(of: Int(ids[cpuCount])))
        for a in cellsOf[cpuCount] { memory[a] = g.sparse() }
        let ghost = GlobalGhost(decoding: &g, cpuCount: cpuCount)
        precondition(g.index == g.bytes.count, "state codec: bytes left over in the global leaf")
        var state = MachineState(memory: memory, buffers: buffers, cpus: cpus, ghost: ghost)
        if weak {
            var v = ByteReader(tables[cpuCount + 1].bytes(of: Int(ids[cpuCount + 1])))
            state.weak = WeakMemory(decoding: &v, locations: memoryCount, cpuCount: cpuCount)
        }
        return state
    }

    /// The leaf ids of `s`, as a fresh array (tests).
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
