#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The visited set of an exact search: every stored state's packed encoding
/// (`StateCodec.swift`) back to back in fixed-size chunks, an offset per state id, and
/// an open-addressing hash table of ids. About the encoding's length plus 12-16 bytes
/// per state; no heap object per state.
///
/// Limits (TigerBeetle style, each named and checked): `chunkBytes` per chunk (an
/// encoding never spans two: a state longer than a chunk is a bug), at most 2^32 - 2
/// states (ids are 32-bit).
final class StateStore {
    /// The largest chunk; chunks start at `chunkBytesMin` and double, so that the many
    /// small stores (component tables) stay small.
    static let chunkBytes = 1 << 24
    static let chunkBytesMin = 1 << 12
    /// Ids are stored as id + 1 (0 = empty slot).
    static let statesMax = Int(UInt32.max) - 1

    private var chunks: [UnsafeMutableRawPointer] = []
    private var chunkBytesHeld = 0
    private var lastChunkBytes = 0
    private var used = 0  // in the last chunk
    /// Per id: chunk index << 32 | offset in chunk; the length is kept in the first
    /// bytes of the encoding's slot (a varint).
    private var locations: [UInt64] = []
    private var index = IDIndex()

    /// States stored.
    var count: Int { locations.count }
    /// Bytes of the encodings themselves (with their length prefixes).
    private(set) var encodingBytes = 0

    /// Bytes held: encodings (whole chunks), locations, table.
    var bytes: Int { chunkBytesHeld + locations.capacity * 8 + index.bytes }

    init() {}

    deinit { for c in chunks { c.deallocate() } }

    /// A fast hash of bytes (64-bit multiply-xorshift over 8-byte words; not
    /// cryptographic: the table compares bytes on every hit).
    @inline(__always)
    static func hash(_ b: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h: UInt64 = (0x9E37_79B9_7F4A_7C15 &+ seed) ^ UInt64(b.count)
        var i = 0
        while i + 8 <= b.count {
            h = (h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < b.count {
            tail |= UInt64(b[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 29)
    }

    /// The encoding of state `id`.
    @inline(__always)
    func bytes(of id: Int) -> UnsafeRawBufferPointer {
        let loc = locations[id]
        let base = UnsafeRawPointer(chunks[Int(loc >> 32)] + Int(loc & 0xFFFF_FFFF))
        // Length prefix: a varint.
        var n = 0
        var shift = 0
        var i = 0
        while true {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            n |= Int(b & 0x7F) << shift
            i += 1
            if b < 0x80 { break }
            shift += 7
        }
        return UnsafeRawBufferPointer(start: base + i, count: n)
    }

    @inline(__always)
    private func equal(_ id: Int, _ encoding: UnsafeRawBufferPointer) -> Bool {
        let other = bytes(of: id)
        return other.count == encoding.count && memcmp(other.baseAddress!, encoding.baseAddress!, encoding.count) == 0
    }

    /// The id of a stored encoding equal to `encoding`, if any (reads only).
    func find(_ encoding: UnsafeRawBufferPointer) -> Int? {
        index.probe(StateStore.hash(encoding)) { equal($0, encoding) }.id
    }

    /// Stores `encoding` unless an equal one is stored: its id, and whether it is new.
    func insert(_ encoding: UnsafeRawBufferPointer) -> (id: Int, inserted: Bool) {
        let (slot, found) = index.probe(StateStore.hash(encoding)) { equal($0, encoding) }
        if let id = found { return (id, false) }
        precondition(count < StateStore.statesMax, "state store: more than \(StateStore.statesMax) states")
        let id = count
        append(encoding)
        index.set(slot, id, count: count) { StateStore.hash(bytes(of: $0)) }
        return (id, true)
    }

    private func append(_ encoding: UnsafeRawBufferPointer) {
        var prefixBytes = 1
        while encoding.count >> (7 * prefixBytes) != 0 { prefixBytes += 1 }
        let need = prefixBytes + encoding.count
        precondition(need <= StateStore.chunkBytes, "state store: a \(encoding.count)-byte state encoding does not fit a chunk")
        if used + need > lastChunkBytes {
            lastChunkBytes = min(StateStore.chunkBytes, max(StateStore.chunkBytesMin, 2 * lastChunkBytes))
            chunks.append(UnsafeMutableRawPointer.allocate(byteCount: lastChunkBytes, alignment: 16))
            chunkBytesHeld += lastChunkBytes
            used = 0
        }
        let base = chunks[chunks.count - 1] + used
        var n = encoding.count
        for i in 0..<prefixBytes {
            base.storeBytes(of: UInt8(n & 0x7F) | (i < prefixBytes - 1 ? 0x80 : 0), toByteOffset: i, as: UInt8.self)
            n >>= 7
        }
        (base + prefixBytes).copyMemory(from: encoding.baseAddress!, byteCount: encoding.count)
        locations.append(UInt64(chunks.count - 1) << 32 | UInt64(used))
        used += need
        encodingBytes += need
    }
}

/// An open-addressing hash index of ids (linear probing, load at most 3/4, doubling):
/// the one both the leaf stores (`StateStore`, keyed by bytes) and the tree's pair
/// tables (`PairTable`, keyed by 64-bit pairs) use. The keys stay with their owner,
/// which says how to hash and compare one by id. Ids are stored as id + 1 (0 = empty).
struct IDIndex {
    private var slots: [UInt32] = Array(repeating: 0, count: 1 << 6)
    private var mask = (1 << 6) - 1

    var bytes: Int { slots.count * 4 }

    /// The slot where the probe for `hash` ended, and the id found there if `matches`
    /// said it is the key (else the slot is empty, where the key would go).
    @inline(__always)
    func probe(_ hash: UInt64, matches: (Int) -> Bool) -> (slot: Int, id: Int?) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let e = slots[slot]
            if e == 0 { return (slot, nil) }
            if matches(Int(e - 1)) { return (slot, Int(e - 1)) }
            slot = (slot + 1) & mask
        }
    }

    /// Puts `id` in the empty `slot` a probe returned; `count` ids are then stored, and
    /// when the index grows each is placed again by `hashOf`.
    @inline(__always)
    mutating func set(_ slot: Int, _ id: Int, count: Int, hashOf: (Int) -> UInt64) {
        slots[slot] = UInt32(id + 1)
        // Load factor at most 3/4: linear probing stays short.
        if count * 4 > slots.count * 3 { grow(count: count, hashOf: hashOf) }
    }

    private mutating func grow(count: Int, hashOf: (Int) -> UInt64) {
        let size = slots.count * 2
        var t = [UInt32](repeating: 0, count: size)
        let m = size - 1
        for id in 0..<count {
            var slot = Int(truncatingIfNeeded: hashOf(id)) & m
            while t[slot] != 0 { slot = (slot + 1) & m }
            t[slot] = UInt32(id + 1)
        }
        slots = t
        mask = m
    }
}
