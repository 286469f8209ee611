import Atomics

/// A C11/RC11-style memory model in which a load may read an older store: the
/// explorer's `--model rc11`. Operational, in the style of loom and of the "view"
/// semantics of C11Tester and the promising semantics, restricted to what a model
/// checker of small machines needs:
///
/// - **Modification order.** Each location keeps its stores in modification order
///   (`history`), newest last. A store is placed at the end of the order when it
///   executes (so the order agrees with execution order: no load buffering, which RC11
///   forbids too), an RMW reads the newest store and places its own right after it.
/// - **Coherence.** Each CPU has a view: per location, the oldest store it may still
///   read (it has read or written that one or a later one, or synchronized with a CPU
///   that had). A load may read any store from its view on, newest included: this is
///   the choice the explorer branches on (`Move.step(c, choice:)`, 0 = newest).
///   CoRR, CoWR, CoRW and CoWW hold by construction.
/// - **Release/acquire.** A release store (or RMW) carries the storing CPU's view; an
///   acquire load that reads it joins that view into its own (synchronizes-with).
///   An RMW continues the release sequence of the store it read (its message carries
///   that store's view too). Relaxed accesses carry and join nothing, except through
///   fences: a release fence makes later relaxed stores carry the view at the fence,
///   an acquire fence joins the views of the stores earlier relaxed loads read.
/// - **seq_cst.** A seq_cst fence is an acquire-release fence that also joins and
///   publishes one global view (`sc`): two seq_cst fences are ordered one way or the
///   other, which forbids SB with fences. A seq_cst load, store or RMW is a
///   release/acquire access that also joins the global view before it and publishes
///   its view after it (so SB and IRIW with seq_cst accesses are forbidden), without
///   a fence's effect on the CPU's relaxed accesses. That is **stronger** than RC11's
///   `psc` (one total order over all seq_cst operations is simulated by execution
///   order, and each publishes everything its CPU has seen), so the model may miss a
///   bug that needs a seq_cst access weaker than that; it never reports an outcome
///   RC11 forbids there.
/// - **Bounded histories.** A location keeps its last `Limits.historyMax` stores; a
///   load may not read an older one even if coherence allows it. Like loom's bound:
///   a pass is exhaustive only up to that bound, and the report says so.
///
/// What it is not: not the Linux kernel memory model (no address, data or control
/// dependencies: a dependent load may read as old a store as an independent one, so
/// code relying on dependency ordering, as `READ_ONCE` of a pointer does, looks weaker
/// here than under LKMM; `smp_mb` is the seq_cst fence), no out-of-thin-air or load
/// buffering (execution-order modification order), no mixed-size accesses, and no
/// consume. GenMC and CDSChecker explore RC11 (and IMM) executions exactly, with
/// unbounded histories, by revisiting reads; this model enumerates interleavings and
/// read choices and stores views in the state.
///
/// The other models leave `WeakMemory` empty; under this one `MachineState.memory` is
/// always the newest store of each location (what the ghost checks and end-state checks
/// look at), and store buffers stay empty.
struct WeakMemory: Hashable {
    /// One store in a location's modification order: its value, and the view it
    /// carries for an acquire that reads it (empty: none).
    struct Message: Hashable {
        var value: UInt64
        var view: [UInt16]
    }

    /// Per location: its last stores in modification order, oldest first. Every view
    /// indexes into these windows (index 0 = the oldest store kept), so two states
    /// whose windows and views agree are one state, however many older stores each
    /// forgot: nothing can read those any more.
    var history: [[Message]] = []
    /// Per CPU, per location: the oldest store (by index) the CPU may read.
    var views: [[UInt16]] = []
    /// Per CPU: the join of the views of the stores its relaxed loads read, for its
    /// next acquire fence.
    var fenceAcquire: [[UInt16]] = []
    /// Per CPU: its view at its last release fence (empty: none), carried by its later
    /// relaxed stores.
    var fenceRelease: [[UInt16]] = []
    /// The view the seq_cst fences publish to each other.
    var sc: [UInt16] = []

    var isEmpty: Bool { history.isEmpty }

    init() {}

    /// Every location holds its initial value as its one store; every view is at it.
    init(memory: [UInt64], cpuCount: Int) {
        let n = memory.count
        history = memory.map { [Message(value: $0, view: [])] }
        views = Array(repeating: Array(repeating: 0, count: n), count: cpuCount)
        fenceAcquire = Array(repeating: [], count: cpuCount)
        fenceRelease = Array(repeating: [], count: cpuCount)
        sc = []
    }

    /// The index of the newest store to `a`.
    func newest(_ a: Int) -> Int { history[a].count - 1 }

    /// How many stores `cpu` may read at `a` (at least 1: the newest).
    func readable(_ a: Int, by cpu: Int) -> Int {
        // Coherence: a view never points past the newest store (views only take
        // indices of stores that exist, and shift down with the window).
        assert(Int(views[cpu][a]) <= newest(a), "rc11: cpu\(cpu)'s view of \(a) is past the newest store")
        return newest(a) - Int(views[cpu][a]) + 1
    }

    static func join(_ x: inout [UInt16], _ y: [UInt16]) {
        if y.isEmpty { return }
        if x.isEmpty { x = y; return }
        for i in x.indices where y[i] > x[i] { x[i] = y[i] }
    }
}

/// The operations of the rc11 model on `MachineState.weak` (see `WeakMemory`). The
/// machine calls these in place of the store-buffer models' read/write/rmw/fence.
enum ViewOrder {
    /// A seq_cst fence by `cpu` (also the machine's full barriers: `smp_mb`, and the
    /// ghost synchronization points of IPIs and RCU reports).
    static func fence(_ w: inout WeakMemory, cpu: Int) {
        // Acquire: what earlier relaxed loads read now synchronizes.
        WeakMemory.join(&w.views[cpu], w.fenceAcquire[cpu])
        w.fenceAcquire[cpu] = []
        // seq_cst: ordered with every other seq_cst fence, through one view.
        WeakMemory.join(&w.views[cpu], w.sc)
        w.sc = w.views[cpu]
        // Release: later relaxed stores carry this view.
        w.fenceRelease[cpu] = w.views[cpu]
    }

    /// The seq_cst half of a seq_cst load, store or RMW: before it, the CPU joins the
    /// view every seq_cst operation published; after it, it publishes its own. Unlike a
    /// fence, it does not turn the CPU's relaxed accesses into synchronizing ones (no
    /// `fenceAcquire`/`fenceRelease`): a relaxed store after a seq_cst RMW carries
    /// nothing, as in C11.
    static func joinSC(_ w: inout WeakMemory, cpu: Int) {
        WeakMemory.join(&w.views[cpu], w.sc)
    }

    static func publishSC(_ w: inout WeakMemory, cpu: Int) {
        w.sc = w.views[cpu]
    }

    /// A load by `cpu` at `a` reading the `choice`-th newest store it may read.
    static func read(_ w: inout WeakMemory, cpu: Int, _ a: Int, ordering: AtomicLoadOrdering, choice: Int) -> UInt64 {
        precondition(choice >= 0 && choice < w.readable(a, by: cpu),
                     "rc11: cpu\(cpu) reads the store \(choice) back at \(a), of \(w.readable(a, by: cpu)) it may read")
        let seqCst = ordering == .sequentiallyConsistent
        if seqCst { joinSC(&w, cpu: cpu) }
        defer { if seqCst { publishSC(&w, cpu: cpu) } }
        let index = w.newest(a) - choice
        let m = w.history[a][index]
        // Coherence: never read older than this store again.
        w.views[cpu][a] = max(w.views[cpu][a], UInt16(index))
        if ordering == .relaxed {
            WeakMemory.join(&w.fenceAcquire[cpu], m.view)
        } else {
            // Acquire: synchronizes with the release that wrote the message.
            WeakMemory.join(&w.views[cpu], m.view)
        }
        return m.value
    }

    /// A store by `cpu`, placed last in `a`'s modification order. `release` makes it
    /// carry the CPU's view; `seqCst` also joins the seq_cst view first and publishes its
    /// own after (`joinSC`, `publishSC`).
    static func write(_ s: inout MachineState, cpu: Int, _ a: Int, _ value: UInt64,
                      release: Bool, seqCst: Bool, historyMax: Int, carrying extra: [UInt16] = []) {
        s.memory[a] = value
        write(&s.weak, cpu: cpu, a, value, release: release, seqCst: seqCst, historyMax: historyMax, carrying: extra)
    }

    private static func write(_ w: inout WeakMemory, cpu: Int, _ a: Int, _ value: UInt64,
                              release: Bool, seqCst: Bool, historyMax: Int, carrying extra: [UInt16]) {
        if seqCst { joinSC(&w, cpu: cpu) }
        defer { if seqCst { publishSC(&w, cpu: cpu) } }
        let index = w.newest(a) + 1
        w.views[cpu][a] = UInt16(index)
        var view: [UInt16] = release || seqCst ? w.views[cpu] : w.fenceRelease[cpu]
        WeakMemory.join(&view, extra)
        w.history[a].append(.init(value: value, view: view))
        if w.history[a].count > historyMax {
            // Forget the oldest stores: every view's entry for `a` moves down with the
            // window (a view at a forgotten store is at the oldest kept one: nothing
            // older can be read).
            let drop = UInt16(w.history[a].count - historyMax)
            w.history[a].removeFirst(Int(drop))
            func shift(_ v: inout [UInt16]) { if !v.isEmpty { v[a] = v[a] > drop ? v[a] - drop : 0 } }
            for l in w.history.indices {
                for k in w.history[l].indices { shift(&w.history[l][k].view) }
            }
            for c in w.views.indices {
                shift(&w.views[c])
                shift(&w.fenceAcquire[c])
                shift(&w.fenceRelease[c])
            }
            shift(&w.sc)
        }
        assert(w.history[a].count <= historyMax && w.views[cpu][a] == UInt16(w.newest(a)),
               "rc11: a store is the newest of its location, in its CPU's view, inside the window")
    }

    /// A read-modify-write: reads the newest store (atomicity: nothing comes between it
    /// and its own store in modification order), stores `f(old)` after it, and carries
    /// the view of the store it read (the release sequence continues through RMWs).
    static func rmw(_ s: inout MachineState, cpu: Int, _ a: Int,
                    ordering: AtomicUpdateOrdering, historyMax: Int, _ f: (UInt64) -> UInt64) -> UInt64 {
        let (old, new, view) = rmwRead(&s.weak, cpu: cpu, a, ordering: ordering, f)
        let release = ordering == .releasing || ordering == .acquiringAndReleasing || ordering == .sequentiallyConsistent
        s.memory[a] = new
        write(&s.weak, cpu: cpu, a, new, release: release, seqCst: false, historyMax: historyMax, carrying: view)
        if ordering == .sequentiallyConsistent { publishSC(&s.weak, cpu: cpu) }
        return old
    }

    /// The read half of an RMW: the newest store, its value after `f`, and its view.
    private static func rmwRead(_ w: inout WeakMemory, cpu: Int, _ a: Int, ordering: AtomicUpdateOrdering,
                                _ f: (UInt64) -> UInt64) -> (old: UInt64, new: UInt64, view: [UInt16]) {
        let seqCst = ordering == .sequentiallyConsistent
        if seqCst { joinSC(&w, cpu: cpu) }
        let index = w.newest(a)
        let m = w.history[a][index]
        w.views[cpu][a] = max(w.views[cpu][a], UInt16(index))
        let acquire = ordering == .acquiring || ordering == .acquiringAndReleasing || seqCst
        if acquire {
            WeakMemory.join(&w.views[cpu], m.view)
        } else {
            WeakMemory.join(&w.fenceAcquire[cpu], m.view)
        }
        return (m.value, f(m.value), m.view)
    }
}
