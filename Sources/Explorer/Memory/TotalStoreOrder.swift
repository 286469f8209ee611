/// x86-TSO: per-CPU FIFO store buffers with store-to-load forwarding. Only the oldest
/// buffered store may drain, so stores reach memory in program order; a load may pass
/// an older store to another address (store buffering, the one reordering x86 allows).
enum TotalStoreOrder: StoreBuffered {
    static func drainable(_ s: inout MachineState, cpu: Int) -> [Int] { s.buffers[cpu].isEmpty ? [] : [0] }
}
