import Atomics

/// How a CPU's accesses reach memory under one memory model: the model platform
/// (`Machine`) calls only these for the shared cells and the harness's addresses. Each
/// model is one file in this folder; a new model (one where loads may read older stores,
/// say) plugs in here and in `MemoryModel.system`.
///
/// Every access carries its ordering, as the core gave it. The store-buffer models
/// ignore the orderings of loads and read-modify-writes: a load acts as an acquire
/// (loads are never reordered with each other or with later stores) and an RMW as a
/// full fence (it drains the CPU's store buffer first, as locked instructions do on
/// x86). So they can show that a store needs a release or a fence, not that a load
/// needs an acquire. The rc11 model (ViewOrder.swift) uses every ordering; it keeps
/// modification orders and views instead of store buffers, so it has an interface of
/// its own, called by the machine where these are (Machine.read/write/rmw/drainAll).
/// The machine switches over the model rather than calling through an existential:
/// that cost the explorer about a quarter of its throughput.
protocol MemorySystem {
    /// What `cpu` reads at `a` with `ordering` (the harness's plain loads: `.relaxed`).
    static func read(_ s: inout MachineState, cpu: Int, _ a: Int, ordering: AtomicLoadOrdering) -> UInt64
    /// A store by `cpu`; `seqCst` (or an SC model) makes it take effect at once.
    /// Throws `.blocked` when the store buffer is full (`bufferMax`): the move is not
    /// enabled until a drain makes room.
    static func write(_ s: inout MachineState, cpu: Int, _ e: BufferedStore, seqCst: Bool, bufferMax: Int) throws(Suspend)
    /// The entries of `cpu`'s store buffer that may drain to memory now (each a move).
    static func drainable(_ s: inout MachineState, cpu: Int) -> [Int]
}

extension MemorySystem {
    /// Drains all of `cpu`'s buffer, oldest first.
    static func drainAll(_ s: inout MachineState, cpu: Int) {
        for e in s.buffers[cpu] { s.apply(e) }
        s.buffers[cpu].removeAll()
    }

    /// A read-modify-write with `ordering`: drains first, then reads and writes memory in
    /// one step (fully ordered whatever `ordering` says, in every model so far).
    static func rmw(_ s: inout MachineState, cpu: Int, _ a: Int, ordering: AtomicUpdateOrdering, _ f: (UInt64) -> UInt64) -> UInt64 {
        drainAll(&s, cpu: cpu)
        let old = s.memory[a]
        s.memory[a] = f(old)
        return old
    }
}

/// The models with per-CPU store buffers (TSO, PSO): a load forwards from the CPU's
/// newest buffered store to the same address, a plain or release store waits in the
/// buffer, a seq_cst store drains it and takes effect.
protocol StoreBuffered: MemorySystem {}

extension StoreBuffered {
    static func read(_ s: inout MachineState, cpu: Int, _ a: Int, ordering: AtomicLoadOrdering) -> UInt64 {
        for e in s.buffers[cpu].reversed() where Int(e.address) == a { return e.value }
        return s.memory[a]
    }

    static func write(_ s: inout MachineState, cpu: Int, _ e: BufferedStore, seqCst: Bool, bufferMax: Int) throws(Suspend) {
        if seqCst {
            drainAll(&s, cpu: cpu)
            s.apply(e)
            return
        }
        if s.buffers[cpu].count >= bufferMax { throw .blocked("store buffer full (\(bufferMax) entries)") }
        s.buffers[cpu].append(e)
    }
}
