import Atomics

/// Sequential consistency: every access takes effect at once, in one global order.
/// No store buffers, nothing to drain.
enum SequentialConsistency: MemorySystem {
    static func read(_ s: inout MachineState, cpu: Int, _ a: Int, ordering: AtomicLoadOrdering) -> UInt64 { s.memory[a] }

    static func write(_ s: inout MachineState, cpu: Int, _ e: BufferedStore, seqCst: Bool, bufferMax: Int) throws(Suspend) {
        s.apply(e)
    }

    static func drainable(_ s: inout MachineState, cpu: Int) -> [Int] { [] }
}
