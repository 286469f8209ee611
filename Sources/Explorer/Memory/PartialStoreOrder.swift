/// Partial store order: like TSO, but a buffered store may drain before older stores
/// to other locations, unless it is a release store (which drains only when oldest) or
/// an older store is a release (nothing passes it). Not x86: it stands for what a
/// compiler or a weaker CPU may do with a relaxed store, and is the model under which a
/// missing `release` becomes visible.
enum PartialStoreOrder: StoreBuffered {
    static func drainable(_ s: inout MachineState, cpu: Int) -> [Int] {
        let b = s.buffers[cpu]
        var out: [Int] = []
        for i in b.indices {
            if b[i].release && i != 0 { continue }
            let blocked = b[..<i].contains { $0.address == b[i].address || $0.release }
            if !blocked { out.append(i) }
        }
        return out
    }
}
