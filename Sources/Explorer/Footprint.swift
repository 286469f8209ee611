import CPUFlags

/// What a move reads and writes of the machine's state, for the sleep sets
/// (SleepSets.swift): a bit per component (each memory cell; per CPU its ghost
/// state, its store buffer, the IPIs pending at it, the IPIs it waits for; three global
/// ghost groups). Measured as the move runs (`Machine.touched`): every memory access
/// goes through `Machine.read`/`write`/`rmw`/`drainAll`, every ghost hook marks the
/// CPUs and global groups it uses, and every move marks its own CPU's ghost state.
/// Over-approximating is safe (more moves count as dependent); missing a component is
/// not: the tests check that the search with sleep sets reaches exactly the states of
/// the search without, and that moves called independent commute.
struct Footprint: Equatable {
    var reads: UInt64 = 0
    var writes: UInt64 = 0

    static let empty = Footprint()

    /// True when neither writes what the other reads or writes.
    func commutes(with o: Footprint) -> Bool {
        writes & (o.reads | o.writes) == 0 && reads & o.writes == 0
    }
}

/// The components of a machine's state, as bits: the memory cells, then per CPU its
/// ghost state, store buffer, pending IPIs and awaited IPIs, then the global ghost
/// groups (at most 21 + 16 + 3 bits with four CPUs).
struct Components {
    let cpuCount: Int
    let map: AddressMap

    init(_ map: AddressMap) {
        self.cpuCount = map.cpuCount
        self.map = map
        precondition(map.count + 4 * cpuCount + 4 <= 64, "reduction: more state components than bits")
    }

    @inline(__always) func memory(_ a: Int) -> UInt64 { 1 << UInt64(a) }
    /// A CPU's ghost state (its context, translation and text seen, the ledger's debt,
    /// callbacks, on-behalf runners, grace-period sample): everything the ghost keeps
    /// about that CPU but two parts, kept apart so that the moves of a CPU (which all
    /// use its ghost state) do not depend on the IPIs others send it (`pending`) or
    /// acknowledge to it (`acks`).
    @inline(__always) func ghost(_ c: Int) -> UInt64 { 1 << UInt64(map.count + 4 * c) }
    @inline(__always) func buffer(_ c: Int) -> UInt64 { 1 << UInt64(map.count + 4 * c + 1) }
    /// The IPIs pending at CPU c and its need-resched flag (senders write them; c's
    /// IPI arrival and polling idle read them).
    @inline(__always) func pending(_ c: Int) -> UInt64 { 1 << UInt64(map.count + 4 * c + 2) }
    /// The IPIs CPU c sent and still waits for (the handlers on the targets write it).
    @inline(__always) func acks(_ c: Int) -> UInt64 { 1 << UInt64(map.count + 4 * c + 3) }
    /// Global ghost groups: the completed flush, the completed patch, grace-period state.
    var flushDone: UInt64 { 1 << UInt64(map.count + 4 * cpuCount) }
    var patchDone: UInt64 { 1 << UInt64(map.count + 4 * cpuCount + 1) }
    var gracePeriod: UInt64 { 1 << UInt64(map.count + 4 * cpuCount + 2) }
    /// Under rc11: the modification orders and views, as one component (the sleep sets
    /// are off under rc11; this keeps the footprint assertion honest).
    var weak: UInt64 { 1 << UInt64(map.count + 4 * cpuCount + 3) }
}

extension Components {
    /// The components whose value differs between `a` and `b`, the states before and
    /// after a move of CPU `mover` (the mover's own ghost state aside: every move of
    /// its CPU marks it). The footprints' write side, checked: `Explorer.apply`
    /// asserts (debug builds: every test) that a move changed nothing it did not mark.
    /// A diff cannot see a write of the value already there, nor reads: the tests of
    /// SleepSetTests cover those.
    func changed(from a: MachineState, to b: MachineState, mover: Int) -> UInt64 {
        var out: UInt64 = 0
        for i in a.memory.indices where a.memory[i] != b.memory[i] { out |= memory(i) }
        for c in 0..<cpuCount {
            if a.buffers[c] != b.buffers[c] { out |= buffer(c) }
            var x = a.cpus[c], y = b.cpus[c]
            if x.pendingIPIs != y.pendingIPIs || x.needResched != y.needResched { out |= pending(c) }
            (x.pendingIPIs, x.needResched) = (y.pendingIPIs, y.needResched)
            if c != mover && x != y { out |= ghost(c) }
            let g = a.ghost, h = b.ghost
            if g.outstanding[c] != h.outstanding[c] { out |= acks(c) }
            if c != mover && (g.onBehalf[c] != h.onBehalf[c] || g.owed[c] != h.owed[c] || g.requested[c] != h.requested[c]
                || g.queued[c] != h.queued[c] || g.ran[c] != h.ran[c] || g.gpSample[c] != h.gpSample[c]
                || g.gpSnapshot[c] != h.gpSnapshot[c]) {
                out |= ghost(c)
            }
        }
        if a.ghost.flushCompleted != b.ghost.flushCompleted { out |= flushDone }
        if a.ghost.textCompleted != b.ghost.textCompleted { out |= patchDone }
        if a.ghost.gracePeriodStarted != b.ghost.gracePeriodStarted || a.ghost.freed != b.ghost.freed
            || a.ghost.written != b.ghost.written || a.ghost.gpWaitingOn != b.ghost.gpWaitingOn {
            out |= gracePeriod
        }
        if a.weak != b.weak { out |= weak }
        return out
    }
}
