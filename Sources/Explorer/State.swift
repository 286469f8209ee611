import CPUFlags

/// What a CPU is running, for the ghost checks (not the protocol's mode: the truth).
enum GhostContext: UInt8, Hashable, Codable {
    /// User mode, or the late-exit / early-entry windows that count as user.
    case user
    /// Ordinary kernel code (after `kernelCodeBegins`).
    case kernel
    /// The idle loop.
    case idle
}

/// A frame on a CPU's stack: the task's program, or an interrupt handler nested on it.
enum FrameKind: UInt8, Hashable, Codable {
    case task, ipi, irq, nmi
}

/// An interrupt that a requester sent and the target has not taken yet.
struct PendingIPI: Hashable {
    var kind: WorkKind
    var from: Int8
}

/// One frame: which op it is at, the values its accesses returned so far in that op
/// (the replay log that lets the explorer suspend the core between any two accesses
/// and resume it by re-running the op), and its registers.
struct Frame: Hashable {
    var kind: FrameKind
    var pc: Int16 = 0
    var replay: [UInt64] = []
    /// Values carried from one op to the next (an IRQ frame, the IPIs to handle).
    var regs: [UInt64] = []
    /// For IPI frames: the interrupts being handled.
    var ipis: [PendingIPI] = []
    /// Suspended in front of a wait with IRQs on: IPIs may be taken here.
    var interruptible: Bool = false
    /// For NMI frames: the CR3 the paranoid entry saved.
    var savedUserCR3: Bool = false
}

/// A CPU: its frames and its ghost state.
struct CPUState: Hashable {
    var frames: [Frame]
    var context: GhostContext
    /// Under PTI: the user page tables are loaded.
    var userCR3: Bool
    /// The cached translation of `pte`: the version it was filled from, -1 if none.
    var tlb: Int8
    /// The text version this CPU's instruction stream saw at its last serialization.
    var textSeen: Int8
    var pendingIPIs: [PendingIPI] = []
    var nmisLeft: Int8
    /// Machine checks left (`Scenario.mces`).
    var mcesLeft: Int8 = 0
    var irqsLeft: Int8
    var inNMI: Bool = false
    /// RCU readers active on this CPU: at task/IRQ level and in an NMI. Value: 0 none,
    /// 1 began before the grace period started, 2 began after.
    var reader = ReaderLevels()
    /// Times this CPU entered an RCU extended quiescent state: wrote USER or IDLE into
    /// its own word (task level, IRQ exit or NMI exit), in program order (a store still
    /// in the store buffer counts: what is left for it is hardware, not the CPU's help).
    var eqsEntries: Int8 = 0
    /// Past its entry: this CPU (outside NMIs) wrote KERNEL into its own word and has
    /// not reached `kernelCodeEnds` since. From here on it may do nothing but the pin
    /// handshake while a pinner works on its behalf.
    var kernelSide: Bool = false
    /// Litmus tests: the values this CPU's litmus loads returned, as base-4 digits after
    /// a leading 1 (no loads: 1; loaded 1 then 0: 0b1_01_00 = 20). `LitmusOutcome.packed`.
    var litmusSeen: Int16 = 1
    /// Expedited RCU: this CPU reported a quiescent state from rcu_exp_handler, or
    /// will at the end of the reader the interrupt found it in.
    var qsReported: Bool = false
    var qsDeferred: Bool = false
    /// Set by a reschedule IPI: the next idle entry returns at once.
    var needResched: Bool = false
    /// The task this CPU runs, whose word its transitions use (per-task words, §2.12;
    /// equal to the CPU otherwise). Changed only at the end of a `switch_to` op, after
    /// its last access, so every replay of an op sees the task it started with.
    var task: Int8 = 0
}

/// A CPU's RCU readers by level (0: task or IRQ, 1: NMI), inline.
struct ReaderLevels: Hashable {
    var task: UInt8 = 0
    var nmi: UInt8 = 0

    subscript(level: Int) -> UInt8 {
        get { level == 0 ? task : nmi }
        set { if level == 0 { task = newValue } else { nmi = newValue } }
    }
}

/// Four values inline (the explorer's machines have two to four CPUs): per-CPU ghost
/// fields without an array's heap object, which every copy of a state retained and
/// released. Slots past the machine's CPU count keep their initial value.
struct PerCPU<T: Hashable>: Hashable {
    private var v0, v1, v2, v3: T

    init(repeating x: T) { (v0, v1, v2, v3) = (x, x, x, x) }

    subscript(i: Int) -> T {
        get {
            switch i {
            case 0: return v0
            case 1: return v1
            case 2: return v2
            default: precondition(i == 3, "PerCPU: CPU \(i) of at most 4"); return v3
            }
        }
        set {
            switch i {
            case 0: v0 = newValue
            case 1: v1 = newValue
            case 2: v2 = newValue
            default: precondition(i == 3, "PerCPU: CPU \(i) of at most 4"); v3 = newValue
            }
        }
    }
}

/// State shared by the whole machine that only the explorer sees.
struct GlobalGhost: Hashable {
    /// The pte version whose flush a requester has completed.
    var flushCompleted: Int8 = 0
    /// The text version whose patch a requester has completed.
    var textCompleted: Int8 = 0
    /// For each CPU: the CPUs running work on its behalf (bit r = CPU r; two pinners
    /// of one CPU under flagInWord are allowed by the protocol).
    var onBehalf: PerCPU<UInt8>
    /// IPIs each requester still waits for.
    var outstanding: PerCPU<Int8>
    /// Deferred work that requesters were told is done and its CPU has not run yet.
    var owed: OwedWork
    /// Callback ids the harness asked for, per target (its own record, not the core's:
    /// a core that never queues a callback must not make the oracle forget it).
    var requested: PerCPU<UInt64>
    /// Queued callback ids per target (as the core reported them), and those that ran.
    var queued: PerCPU<UInt64>
    var ran: PerCPU<UInt64>
    var gracePeriodStarted: Bool = false
    /// Freed RCU objects (bit k = object k).
    var freed: UInt8 = 0
    /// Objects a reader wrote a field of (bit k = object k).
    var written: UInt8 = 0
    /// The CPU a grace period is waiting on (-1 none).
    var gpWaitingOn: Int8 = -1
    /// Per CPU: its `eqsEntries` when the grace period sampled it and found it outside
    /// an EQS, until the grace period credits it (-1: not sampled, or credited).
    var gpSample: PerCPU<Int8>
    /// Per CPU: the word that sample returned (the grace period's snapshot).
    var gpSnapshot: PerCPU<UInt64>
}

/// The whole machine: memory, store buffers, CPUs, ghost.
struct MachineState: Hashable {
    var memory: [UInt64]
    var buffers: [[BufferedStore]]
    var cpus: [CPUState]
    var ghost: GlobalGhost
    /// Under rc11 only: modification orders and views (Memory/ViewOrder.swift).
    var weak = WeakMemory()

    mutating func apply(_ e: BufferedStore) { memory[Int(e.address)] = e.value }
}

/// A choice the explorer makes at a state.
public enum Move: Hashable, Sendable, CustomStringConvertible {
    /// The CPU's top frame performs its next shared access (or finishes its op). Under
    /// rc11 a load may read one of several stores: `choice` says which (0: the newest).
    case step(Int, choice: Int = 0)
    /// Entry `index` of the CPU's store buffer drains to memory.
    case drain(cpu: Int, index: Int)
    /// The CPU takes its pending IPIs.
    case ipi(Int)
    /// A timer interrupt arrives at the CPU.
    case irq(Int)
    /// An NMI arrives at the CPU.
    case nmi(Int)
    /// A machine check on CPU c: the NMI's path, also inside an NMI handler.
    case mce(Int)

    public var description: String {
        switch self {
        case .step(let c, let k): return k == 0 ? "step cpu\(c)" : "step cpu\(c) reading the \(Move.ordinal(k)) newest store"
        case .drain(let c, let i): return "drain cpu\(c)[\(i)]"
        case .ipi(let c): return "ipi cpu\(c)"
        case .irq(let c): return "irq cpu\(c)"
        case .nmi(let c): return "nmi cpu\(c)"
        case .mce(let c): return "mce cpu\(c)"
        }
    }
}

extension Move {
    static func ordinal(_ k: Int) -> String {
        switch k + 1 {
        case 2: return "2nd"
        case 3: return "3rd"
        default: return "\(k + 1)th"
        }
    }
}

/// One store waiting in a store buffer.
struct BufferedStore: Hashable {
    var address: Int32
    var value: UInt64
    var release: Bool
}
