/// The root level of the tree of pairs for a depth-first search: a set of 64-bit root
/// pairs, without ids (a depth-first search refers to no state by id: it keeps its path
/// as states, and a counterexample is that path), in about 7 bytes a slot instead of
/// `PairTable`'s 8-byte key plus 4-byte index slot.
///
/// How: each pair is first scrambled by a bijection (SplitMix64's finalizer: an odd
/// multiply and an xor-shift are each invertible, so distinct pairs stay distinct). The
/// top `shardBits` bits of the scrambled value pick a shard, and only the other 52 bits
/// are stored (plus one, so that 0 marks an empty slot), in 7 bytes: within a shard the
/// top bits are the same for every key, so the 52 bits identify the pair (Cleary's
/// quotienting, with the shard as the quotient). Each shard is an open-addressing table
/// with linear probing; a full one (load 3/4) grows by half again, by itself, so growing
/// never holds two copies of the whole set (a power-of-two table that doubles holds a
/// third of its memory empty on average and, while it grows, the old copy too).
///
/// Measured on `isolated-mix --cpus 4` (depth-first, exact): see the README, "Packed
/// states". Limits: a shard holds at most 2^32 slots; the set at most 2^32 - 2 keys (the
/// pair tables' limit, so that it is never the narrower one).
final class RootSet {
    static let shardBits = 12
    static let shards = 1 << shardBits
    static let slotBytes = 7
    static let firstSlots = 16
    static let keysMax = Int(UInt32.max) - 1

    private struct Shard {
        var slots: UnsafeMutableRawPointer?
        var capacity = 0
        var count = 0
    }

    private var shards = [Shard](repeating: Shard(), count: RootSet.shards)
    private(set) var count = 0
    private(set) var bytes = 0

    init() {}

    deinit { for s in shards { s.slots?.deallocate() } }

    /// SplitMix64's finalizer: a bijection of 64-bit values.
    @inline(__always)
    static func scramble(_ k: UInt64) -> UInt64 {
        var z = k
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The stored form of a scrambled key (its low 52 bits, plus one) and its shard.
    @inline(__always)
    static func split(_ key: UInt64) -> (shard: Int, stored: UInt64) {
        let z = scramble(key)
        return (Int(z >> UInt64(64 - shardBits)), (z & ((1 << UInt64(64 - shardBits)) - 1)) + 1)
    }

    /// The home slot of a stored value in a table of `capacity` slots (Lemire's
    /// multiply-shift range reduction: any capacity, no modulo).
    @inline(__always)
    static func home(_ stored: UInt64, capacity: Int) -> Int {
        // The top 32 of the 52 bits, scaled to the capacity (at most 2^32: no overflow).
        Int(truncatingIfNeeded: (((stored - 1) >> UInt64(32 - shardBits)) &* UInt64(capacity)) >> 32)
    }

    @inline(__always)
    private static func load(_ p: UnsafeMutableRawPointer, _ slot: Int) -> UInt64 {
        let b = p + slot * slotBytes
        // Bytes 0-3, then bytes 3-6 shifted down past byte 3: two loads, no loop.
        return UInt64(b.loadUnaligned(as: UInt32.self)) | (UInt64(b.loadUnaligned(fromByteOffset: 3, as: UInt32.self)) >> 8) << 32
    }

    @inline(__always)
    private static func store(_ p: UnsafeMutableRawPointer, _ slot: Int, _ v: UInt64) {
        let b = p + slot * slotBytes
        b.storeBytes(of: UInt32(truncatingIfNeeded: v), as: UInt32.self)
        b.storeBytes(of: UInt16(truncatingIfNeeded: v >> 32), toByteOffset: 4, as: UInt16.self)
        b.storeBytes(of: UInt8(truncatingIfNeeded: v >> 48), toByteOffset: 6, as: UInt8.self)
    }

    /// Linear probing from `stored`'s home slot: the slot holding it, or the empty slot
    /// where it would go.
    @inline(__always)
    private static func probe(_ p: UnsafeMutableRawPointer, capacity: Int, _ stored: UInt64) -> (slot: Int, found: Bool) {
        var slot = home(stored, capacity: capacity)
        while true {
            let e = load(p, slot)
            if e == 0 { return (slot, false) }
            if e == stored { return (slot, true) }
            slot += 1
            if slot == capacity { slot = 0 }
        }
    }

    /// Whether `key` is in the set.
    func contains(_ key: UInt64) -> Bool {
        let (s, v) = RootSet.split(key)
        guard let p = shards[s].slots else { return false }
        return RootSet.probe(p, capacity: shards[s].capacity, v).found
    }

    /// Adds `key`; false if it was there.
    func insert(_ key: UInt64) -> Bool {
        let (s, v) = RootSet.split(key)
        if shards[s].slots == nil { grow(s) }
        let p = shards[s].slots!
        let capacity = shards[s].capacity
        let (slot, found) = RootSet.probe(p, capacity: capacity, v)
        if found { return false }
        precondition(count < RootSet.keysMax, "root set: more than \(RootSet.keysMax) states")
        RootSet.store(p, slot, v)
        shards[s].count += 1
        count += 1
        // Load at most 3/4: linear probing stays short.
        if shards[s].count * 4 > capacity * 3 { grow(s) }
        return true
    }

    /// A new table for shard `s`, half again as large (16 slots at first), every
    /// stored value placed again.
    private func grow(_ s: Int) {
        let old = shards[s]
        let capacity = old.capacity == 0 ? RootSet.firstSlots : old.capacity + old.capacity / 2
        precondition(capacity <= Int(UInt32.max), "root set: a shard of more than 2^32 slots")
        let p = UnsafeMutableRawPointer.allocate(byteCount: capacity * RootSet.slotBytes, alignment: 8)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * RootSet.slotBytes)
        if let q = old.slots {
            var moved = 0
            for i in 0..<old.capacity {
                let v = RootSet.load(q, i)
                if v == 0 { continue }
                let (slot, found) = RootSet.probe(p, capacity: capacity, v)
                precondition(!found, "root set: a value twice in shard \(s)")
                RootSet.store(p, slot, v)
                moved += 1
            }
            // Every key of the shard moved, none lost or added: the set's contents are
            // the same, in a table that has an empty slot for every probe to stop at.
            precondition(moved == old.count && old.count * 4 <= capacity * 3, "root set: shard \(s) held \(old.count) keys, moved \(moved) into \(capacity) slots")
            q.deallocate()
        }
        bytes += (capacity - old.capacity) * RootSet.slotBytes
        shards[s].slots = p
        shards[s].capacity = capacity
    }
}
