import CPUFlags

/// A memory model the explorer runs the core under.
public enum MemoryModel: String, Hashable, Sendable, CaseIterable, Codable {
    /// Sequential consistency: every access takes effect at once, in one global order.
    case sc
    /// x86-TSO: per-CPU FIFO store buffers with store-to-load forwarding; locked
    /// read-modify-writes, full fences and seq_cst stores drain the buffer first.
    case tso
    /// Partial store order: like TSO, but a buffered store may drain before older
    /// stores to other locations unless it is a release store (or they are). Not x86;
    /// it stands for what a compiler or a weaker CPU may do with a relaxed store, and
    /// is the model under which a missing `release` becomes visible.
    case pso
    /// A C11/RC11-style model in which loads may read older stores, and load, store,
    /// RMW and fence orderings all matter (Memory/ViewOrder.swift says exactly what of
    /// RC11 it covers). Weaker than any hardware model here: it stands for arm64,
    /// POWER and RISC-V as far as the C11 orderings the core uses can say.
    case rc11

    public var description: String { self == .rc11 ? "RC11" : rawValue.uppercased() }
}

/// Named limits of the explorer (TigerBeetle style: every bound has a name).
public struct Limits: Hashable, Sendable, Codable {
    /// Entries a CPU's store buffer holds; a store into a full buffer waits for a drain.
    public var storeBufferDepthMax: Int = 4
    /// Under rc11: the stores each location keeps for loads to read (older ones can no
    /// longer be read: a pass is exhaustive up to this bound, as with loom's).
    public var historyMax: Int = 4
    /// Distinct states before the explorer gives up and says so (raise with --states-max).
    public var statesMax: Int = 10_000_000
    /// Steps in one execution (a longer one means a program did not terminate).
    public var depthMax: Int = 400
    /// Store 128-bit fingerprints of the visited states instead of the states (hash
    /// compaction, as SPIN's -DHC): far less memory per state, but two states with the
    /// same fingerprint are taken as one, so a passing run is probable, not a proof
    /// (`Report.probable` says how probable). Violations found are real (replayed).
    public var hashCompact = false
    /// Search depth-first instead of breadth-first: memory is the visited set and the
    /// current path only (no frontier, no parent links), and a counterexample is the
    /// path that found it, not a shortest one.
    public var depthFirst = false
    /// Sleep sets (SleepSets.swift) in the exact breadth-first search: the same states,
    /// fewer moves tried. Off with --no-reduction.
    public var reduction = true
    /// Threads expanding each breadth-first level (`SearchWorker`): the same states,
    /// ids, verdicts and counterexamples for any count; at most `threadsMax`. The
    /// depth-first search runs on one.
    public var threads = 1
    public static let threadsMax = 64
    /// The depth-first search's transition cache (TransitionCache.swift): the most
    /// entries it may hold (it starts at 4,096 and doubles while it churns; about 52
    /// bytes an entry with four CPUs). 0 turns it off (--no-transition-cache). Not
    /// under rc11.
    public var transitionCacheEntries = 1 << 22
    public static let transitionCacheEntriesRange = 4096...(1 << 28)
    /// Run every move the transition cache answers and report the first difference in
    /// `Report.transitionCacheMismatch` (tests: the check that footprints mark every
    /// read the cache's keys rely on); the search goes on with what the move does.
    public var checkTransitionCache = false
    public init() {}
}


/// Addresses of model memory: the core's per-CPU cells, then the harness's own.
struct AddressMap: Hashable {
    let cpuCount: Int
    /// Slots per cell kind: one per CPU, or one per task under per-task words (§2.12:
    /// the words are the tasks', `Scenario.taskCount`; the other cells stay per CPU and
    /// the extra slot is unused for them).
    let slots: Int
    let perTask: Bool

    init(cpuCount: Int, perTask: Bool = false) {
        self.cpuCount = cpuCount
        self.perTask = perTask
        slots = perTask ? cpuCount + 1 : cpuCount
    }

    init(_ s: Scenario) { self.init(cpuCount: s.cpuCount, perTask: s.config.placement == .perTask) }

    var cells: Int { Cell.allCases.count * slots }
    func address(_ l: Location) -> Int {
        assert(l.cpu >= 0 && l.cpu < (l.cell == .word ? slots : cpuCount), "\(l) outside the machine")
        return Int(l.cell.rawValue) * slots + l.cpu
    }
    /// The kernel page-table entry whose translation CPUs cache (its value = version).
    var pte: Int { cells }
    /// Patchable kernel text (its value = version).
    var text: Int { cells + 1 }
    /// The RCU-protected pointer (its value = the object id it points to).
    var rcuPointer: Int { cells + 2 }
    /// A field of RCU-protected object `k` (k in 0..<2) that readers write.
    func objectField(_ k: Int) -> Int { cells + 3 + k }
    /// Per-task words: whether task `t` is on a CPU (the scheduler's `p->on_cpu`, the
    /// handshake of a migration: released by the CPU that switched away from it,
    /// acquired by the one that takes it).
    func onCPU(_ t: Int) -> Int {
        precondition(perTask && t >= 0 && t < slots, "on_cpu of task \(t) without per-task words")
        return cells + 5 + t
    }
    var count: Int { cells + 5 + (perTask ? slots : 0) }

    func name(_ a: Int) -> String {
        if a < cells {
            let cell = Cell(rawValue: UInt8(a / slots))!
            if perTask && cell == .word { return "task\(a % slots).flags" }
            return Location(cell, a % slots).description
        }
        switch a - cells {
        case 0: return "pte"
        case 1: return "text"
        case 2: return "rcu_ptr"
        case 3, 4: return "obj\(a - cells - 3).field"
        default: return "task\(a - cells - 5).on_cpu"
        }
    }

    func render(_ a: Int, _ v: UInt64) -> String {
        if a < cells {
            switch Cell(rawValue: UInt8(a / slots))! {
            case .word: return CPUWord(raw: v).description
            case .counter: return "#\(CPUWord(raw: v).counter)"
            case .callbacks: return "0b" + String(v, radix: 2)
            case .pinCount: return String(v)
            case .pinLock: return v == 0 ? "free" : "held"
            case .current: return "task\(v)"
            }
        }
        return String(v)
    }
}
