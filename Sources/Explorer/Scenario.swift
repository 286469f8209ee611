import Atomics
import CPUFlags

/// One step of a CPU's bounded program. Each op calls the protocol core; the explorer
/// interleaves at every shared access inside it. IRQs and IPIs are taken only between
/// ops (entry and exit paths run with IRQs off); NMIs arrive between any two accesses.
public enum Op: Hashable, Sendable, CustomStringConvertible {
    // The isolated CPU's side.
    /// Exit to user: USER under the strict policy, INDETERMINATE under lazy/adaptive.
    case exitToUser
    /// Syscall or exception from user: the entry transition.
    case enterFromUser
    /// Read kernel data in vmalloc space through the TLB.
    case kernelAccess
    /// Execute patchable kernel text.
    case runText
    case enterIdle(polling: Bool)
    /// Wait in a polling idle loop for a WAKE bit (or an IPI).
    case pollIdle
    case exitIdle
    /// The task on this CPU is switched out (the adaptive policy's promotion ends).
    case contextSwitch
    /// §2.12 (per-task words): switch this CPU, in the kernel, to task `task` once that
    /// task is off every CPU (the scheduler's `on_cpu` handshake): a migration when the
    /// task ran elsewhere. The task this CPU ran is then free for another CPU.
    case switchTo(task: Int)
    /// An RCU read-side critical section that dereferences the pointer, uses the
    /// object, and (with `write`) writes a field of it.
    case rcuReader(write: Bool)

    // The housekeeping side.
    /// Change the kernel PTE, then flush every other CPU's TLB (on_each_cpu), deferring
    /// where the core allows, and wait for the interrupted ones.
    case flushKernelTLB
    /// Patch kernel text, then sync_core everywhere (one round of text_poke_bp's three).
    case patchText
    /// Queue a callback for `target` and ask for it (deferred or IPI).
    case queueCallback(target: Int, id: Int)
    /// Queue a callback for `target`, then pin it and run it on its behalf; IPI if the
    /// pin fails.
    case runOnBehalf(target: Int, id: Int)
    /// Wake a polling idle CPU by bit, or IPI it.
    case wake(target: Int)
    /// Send `target` work of `kind` through the core's routing (a must-interrupt kind
    /// such as a user-mm TLB flush always interrupts).
    case interrupt(target: Int, kind: WorkKind)
    /// Unpublish RCU object 0 (point to object 1), wait for a grace period, check what
    /// readers wrote is visible, free object 0.
    case synchronizeRCU

    // Litmus ops, for testing the memory models themselves (cells x = 0, y = 1, both 0
    // at the start).
    /// Store `value` (1 to 3) with `ordering` (relaxed, release or seq_cst).
    case litmusStore(cell: Int, value: Int = 1, ordering: LitmusOrdering = .relaxed)
    /// Load the cell with `ordering` (relaxed, acquire or seq_cst) and remember the value
    /// as this CPU's next observation.
    case litmusLoad(cell: Int, ordering: LitmusOrdering = .relaxed)
    /// fetch_add(1) with `ordering`; the value it read is the next observation.
    case litmusAdd(cell: Int, ordering: LitmusOrdering = .relaxed)
    /// A seq_cst fence (smp_mb, mfence).
    case litmusFence

    /// Work a housekeeping CPU does for others (flushes, patches, pins, wakes, RCU).
    public var isHousekeeping: Bool {
        switch self {
        case .flushKernelTLB, .patchText, .queueCallback, .runOnBehalf, .wake, .interrupt, .synchronizeRCU: return true
        default: return false
        }
    }

    /// Whether the op runs with IRQs on, so that IPIs and timer IRQs may be taken between
    /// its accesses. Entry, exit and idle transitions run with IRQs off; ordinary kernel
    /// code (housekeeping work, RCU readers, waits for IPIs) and polling idle with IRQs on.
    public var irqsOn: Bool {
        switch self {
        case .exitToUser, .enterFromUser, .enterIdle, .exitIdle, .kernelAccess, .runText, .contextSwitch, .switchTo: return false
        case .litmusStore, .litmusLoad, .litmusAdd, .litmusFence: return false
        case .pollIdle, .rcuReader, .flushKernelTLB, .patchText, .queueCallback, .runOnBehalf, .wake, .interrupt, .synchronizeRCU:
            return true
        }
    }

    public var description: String {
        switch self {
        case .exitToUser: return "exit_to_user"
        case .enterFromUser: return "enter_from_user"
        case .kernelAccess: return "kernel_access"
        case .runText: return "run_text"
        case .enterIdle(let p): return p ? "enter_idle(poll)" : "enter_idle"
        case .pollIdle: return "poll_idle"
        case .exitIdle: return "exit_idle"
        case .contextSwitch: return "context_switch"
        case .switchTo(let t): return "switch_to(task\(t))"
        case .rcuReader(let w): return w ? "rcu_reader(write)" : "rcu_reader"
        case .flushKernelTLB: return "flush_kernel_tlb"
        case .patchText: return "patch_text"
        case .queueCallback(let t, let id): return "queue_callback(cpu\(t),#\(id))"
        case .runOnBehalf(let t, let id): return "run_on_behalf(cpu\(t),#\(id))"
        case .wake(let t): return "wake(cpu\(t))"
        case .interrupt(let t, let k): return "interrupt(cpu\(t),\(k.rawValue))"
        case .synchronizeRCU: return "synchronize_rcu"
        case .litmusStore(let c, let v, let o): return "store \(LitmusOutcome.cellName(c)) = \(v)\(o == .relaxed ? "" : " (\(o.rawValue))")"
        case .litmusLoad(let c, let o): return "load \(LitmusOutcome.cellName(c))\(o == .relaxed ? "" : " (\(o.rawValue))")"
        case .litmusAdd(let c, let o): return "fetch_add \(LitmusOutcome.cellName(c))\(o == .relaxed ? "" : " (\(o.rawValue))")"
        case .litmusFence: return "smp_mb"
        }
    }
}

/// What an NMI handler does in a scenario.
public enum NMIBody: String, Hashable, Sendable, Codable {
    case kernelAccess
    case rcuReader
}

/// A small machine and a bounded program per CPU.
public struct Scenario: Hashable, Sendable {
    public var name: String
    public var summary: String
    public var programs: [[Op]]
    /// Mode each CPU starts in (KERNEL, USER, INDETERMINATE or IDLE).
    public var start: [Mode]
    public var pti: Bool
    public var config: ProtocolConfig
    /// NMIs and timer IRQs each CPU may receive, anywhere they are allowed.
    public var nmis: [Int]
    /// Machine checks (#MC) each CPU may receive: on the NMI's path
    /// (`irqentry_nmi_enter`), anywhere an NMI may land and also inside an NMI handler
    /// (nested once: an NMI-path handler may be interrupted by a machine check).
    public var mces: [Int]
    public var irqs: [Int]
    public var nmiBody: NMIBody
    /// BRIEF §2 items this scenario exercises.
    public var covers: [Int]
    /// Grace periods interrupt the CPUs they find outside an EQS (expedited RCU,
    /// `rcu_exp_handler`), which then report a quiescent state unless in a reader.
    public var expeditedRCU: Bool = false
    /// For litmus tests: the outcome that counts as a violation when an execution ends
    /// with it.
    public var litmusForbidden: LitmusOutcome?

    public var cpuCount: Int { programs.count }
    /// Tasks whose words the machine has: none of its own under per-CPU words; under
    /// per-task words (§2.12) task c starts on CPU c, and one more starts off every CPU
    /// (so that a CPU can switch away from a task that migrates).
    public var taskCount: Int { config.placement == .perTask ? cpuCount + 1 : 0 }

    public init(
        name: String, summary: String, programs: [[Op]], start: [Mode], pti: Bool = true,
        config: ProtocolConfig = ProtocolConfig(), nmis: [Int]? = nil, irqs: [Int]? = nil, mces: [Int]? = nil,
        nmiBody: NMIBody = .kernelAccess, covers: [Int], expeditedRCU: Bool = false, litmusForbidden: LitmusOutcome? = nil
    ) {
        self.expeditedRCU = expeditedRCU
        self.litmusForbidden = litmusForbidden
        self.name = name
        self.summary = summary
        self.programs = programs
        self.start = start
        self.pti = pti
        self.config = config
        self.nmis = nmis ?? Array(repeating: 0, count: programs.count)
        self.mces = mces ?? Array(repeating: 0, count: programs.count)
        self.irqs = irqs ?? Array(repeating: 0, count: programs.count)
        self.nmiBody = nmiBody
        self.covers = covers
    }

    /// Checks the scenario is well formed; returns what is wrong, or nil.
    public func problem() -> String? {
        if cpuCount < 2 || cpuCount > 4 { return "\(name): \(cpuCount) CPUs, expected 2 to 4" }
        if start.count != cpuCount { return "\(name): \(start.count) start modes for \(cpuCount) CPUs" }
        if nmis.count != cpuCount || irqs.count != cpuCount || mces.count != cpuCount { return "\(name): nmis/irqs/mces need one entry per CPU" }
        // A machine check inside a machine check's handler shuts the machine down.
        if let c = mces.firstIndex(where: { !(0...1).contains($0) }) { return "\(name): cpu\(c) mces=\(mces[c]): 0 or 1" }
        for (c, p) in programs.enumerated() {
            let observations = p.filter { if case .litmusLoad = $0 { return true }; if case .litmusAdd = $0 { return true }; return false }.count
            if observations > LitmusOutcome.loadsMax { return "\(name): cpu\(c) makes \(observations) litmus loads, at most \(LitmusOutcome.loadsMax)" }
        }
        if let f = litmusForbidden {
            for (c, values) in f.loads {
                if c < 0 || c >= cpuCount { return "\(name): litmus outcome names cpu\(c) of \(cpuCount)" }
                if values.contains(where: { !(0...LitmusOutcome.valueMax).contains($0) }) { return "\(name): litmus outcome values are 0 to \(LitmusOutcome.valueMax)" }
                if values.count > LitmusOutcome.loadsMax { return "\(name): litmus outcome of cpu\(c) has more than \(LitmusOutcome.loadsMax) values" }
            }
            for (cell, v) in f.final where !(0...1).contains(cell) || !(0...LitmusOutcome.valueMax).contains(v) {
                return "\(name): litmus final value \(v) of cell \(cell): cells x, y; values 0 to \(LitmusOutcome.valueMax)"
            }
        }
        let perTask = config.placement == .perTask
        var switchedTo = Set<Int>()
        for (c, p) in programs.enumerated() {
            for op in p {
                switch op {
                case .switchTo(let t):
                    if !perTask { return "\(name): cpu\(c) \(op): needs per-task words ('words per-task')" }
                    if t < 0 || t >= taskCount || t == c { return "\(name): cpu\(c) \(op): a task from 0 to \(taskCount - 1) other than the CPU's own first task \(c)" }
                    // One CPU takes a task over; two would race for it (the harness does
                    // not model the runqueue lock that serializes them).
                    if !switchedTo.insert(t).inserted { return "\(name): cpu\(c) \(op): task \(t) is switched to twice" }
                case .synchronizeRCU where perTask:
                    return "\(name): cpu\(c) \(op): RCU stays on per-CPU words; not modeled with per-task words"
                case .queueCallback(let t, let id), .runOnBehalf(let t, let id):
                    if t < 0 || t >= cpuCount || t == c { return "\(name): cpu\(c) \(op): bad target" }
                    if id < 0 || id >= 64 { return "\(name): cpu\(c) \(op): callback id outside 0..<64" }
                case .wake(let t), .interrupt(let t, _):
                    if t < 0 || t >= cpuCount || t == c { return "\(name): cpu\(c) \(op): bad target" }
                case .litmusStore(let cell, let v, let o):
                    if !(0...1).contains(cell) { return "\(name): cpu\(c) \(op): cell x or y" }
                    if !(1...LitmusOutcome.valueMax).contains(v) { return "\(name): cpu\(c) \(op): value 1 to \(LitmusOutcome.valueMax)" }
                    if o == .acquire { return "\(name): cpu\(c) \(op): a store is relaxed, release or seq_cst" }
                case .litmusLoad(let cell, let o):
                    if !(0...1).contains(cell) { return "\(name): cpu\(c) \(op): cell x or y" }
                    if o == .release { return "\(name): cpu\(c) \(op): a load is relaxed, acquire or seq_cst" }
                case .litmusAdd(let cell, _):
                    if !(0...1).contains(cell) { return "\(name): cpu\(c) \(op): cell x or y" }
                default: break
                }
            }
        }
        return nil
    }

    /// The same scenario with `n` CPUs: extra CPUs are isolated CPUs starting in USER
    /// and doing one round trip with a kernel access (or CPUs are dropped from the end,
    /// with the ops aimed at them).
    public func withCPUs(_ n: Int) -> Scenario {
        var s = self
        if n > cpuCount {
            for _ in cpuCount..<n {
                s.programs.append([.enterFromUser, .kernelAccess, .exitToUser])
                s.start.append(config.exitPolicy == .strict ? .user : .indeterminate)
                s.nmis.append(0)
                s.mces.append(0)
                s.irqs.append(0)
            }
        } else if n < cpuCount {
            s.programs = Array(programs.prefix(n)).map { p in
                p.filter { op in
                    switch op {
                    case .queueCallback(let t, _), .runOnBehalf(let t, _), .wake(let t), .interrupt(let t, _): return t < n
                    default: return true
                    }
                }
            }
            s.start = Array(start.prefix(n))
            s.nmis = Array(nmis.prefix(n))
            s.mces = Array(mces.prefix(n))
            s.irqs = Array(irqs.prefix(n))
        }
        s.name = n == cpuCount ? name : "\(name)@\(n)cpu"
        return s
    }
}

/// The ordering of a litmus access: the C11 orderings the core uses.
public enum LitmusOrdering: String, Hashable, Sendable, Codable, CaseIterable {
    case relaxed, acquire, release
    case seqCst = "seq_cst"

    var load: AtomicLoadOrdering {
        switch self {
        case .relaxed, .release: return .relaxed
        case .acquire: return .acquiring
        case .seqCst: return .sequentiallyConsistent
        }
    }
    var update: AtomicUpdateOrdering {
        switch self {
        case .relaxed: return .relaxed
        case .acquire: return .acquiring
        case .release: return .releasing
        case .seqCst: return .sequentiallyConsistent
        }
    }
}

/// A litmus test's outcome: what some CPUs' loads returned, in program order, and the
/// final values of some cells. Written `1:1,0 2:0 x=2` (CPU 1's loads returned 1 then 0,
/// CPU 2's returned 0, x ends as 2); unnamed CPUs and cells may be anything.
public struct LitmusOutcome: Hashable, Sendable, Codable, CustomStringConvertible {
    /// CPU -> the values of its litmus loads (and fetch_adds), in program order.
    public var loads: [Int: [Int]]
    /// Cell (0 = x, 1 = y) -> its final value.
    public var final: [Int: Int]

    public init(loads: [Int: [Int]] = [:], final: [Int: Int] = [:]) {
        self.loads = loads
        self.final = final
    }

    /// The most litmus loads a CPU may make (`CPUState.litmusSeen` holds two bits each).
    public static let loadsMax = 7
    /// Litmus values are 0 to 3.
    public static let valueMax = 3

    static func cellName(_ c: Int) -> String { c == 0 ? "x" : "y" }

    /// The observations as `CPUState.litmusSeen` packs them: base-4 digits after a 1.
    static func packed(_ values: [Int]) -> Int16 {
        values.reduce(1) { $0 * 4 + Int16($1) }
    }

    public var description: String {
        (loads.keys.sorted().map { "\($0):\(loads[$0]!.map(String.init).joined(separator: ","))" }
            + final.keys.sorted().map { "\(LitmusOutcome.cellName($0))=\(final[$0]!)" }).joined(separator: " ")
    }
}

extension Scenario {
    public static func named(_ name: String) -> Scenario? { standard.first { $0.name == name } }
}

/// A scenario as data, for `cpuflags scenarios --json`: every field the explorer runs
/// it with (programs as lists of ops with their arguments, NMI and IRQ budgets, policy,
/// pin protocol, PTI), so that what a tool reads is what the explorer explores.
public struct ScenarioDescription: Codable, Sendable, Equatable {
    public struct OpDescription: Codable, Sendable, Equatable {
        public var op: String
        public var target: Int?
        public var id: Int?
        public var kind: String?
        public var polling: Bool?
        public var write: Bool?
        public var cell: Int?
        /// switch_to: the task.
        public var task: Int?
        /// Litmus stores: the value; litmus accesses: the ordering.
        public var value: Int?
        public var ordering: String?
    }
    public struct CPU: Codable, Sendable, Equatable {
        public var cpu: Int
        public var start: String
        public var housekeeping: Bool
        public var nmis: Int
        public var mces: Int
        public var irqs: Int
        public var program: [OpDescription]
    }
    public var name: String
    public var summary: String
    public var covers: [Int]
    public var exitPolicy: String
    public var pinProtocol: String
    /// per-cpu or per-task (§2.12).
    public var words: String
    public var pti: Bool
    public var expeditedRCU: Bool
    public var nmiBody: String
    public var mutations: [String]
    public var cpus: [CPU]
}

extension Op {
    var described: ScenarioDescription.OpDescription {
        // The op's name is its description up to the first parenthesis.
        let name = String(description.prefix { $0 != "(" })
        var d = ScenarioDescription.OpDescription(op: name)
        switch self {
        case .enterIdle(let p): d.polling = p
        case .rcuReader(let w): d.write = w
        case .queueCallback(let t, let id), .runOnBehalf(let t, let id): d.target = t; d.id = id
        case .wake(let t): d.target = t
        case .switchTo(let t): d.task = t
        case .interrupt(let t, let k): d.target = t; d.kind = k.rawValue
        case .litmusStore(let c, let v, let o): d.op = "litmus_store"; d.cell = c; d.value = v; d.ordering = o.rawValue
        case .litmusLoad(let c, let o): d.op = "litmus_load"; d.cell = c; d.ordering = o.rawValue
        case .litmusAdd(let c, let o): d.op = "litmus_add"; d.cell = c; d.ordering = o.rawValue
        case .litmusFence: d.op = "litmus_fence"
        default: break
        }
        return d
    }
}

extension Scenario {
    public var described: ScenarioDescription {
        ScenarioDescription(
            name: name, summary: summary, covers: covers, exitPolicy: config.exitPolicy.rawValue,
            pinProtocol: config.pinProtocol.rawValue, words: config.placement.rawValue, pti: pti, expeditedRCU: expeditedRCU, nmiBody: nmiBody.rawValue,
            mutations: Mutations.named.filter { config.mutations.contains($0.mutation) }.map(\.name),
            cpus: programs.indices.map { c in
                ScenarioDescription.CPU(cpu: c, start: "\(start[c])", housekeeping: programs[c].contains(where: \.isHousekeeping),
                                        nmis: nmis[c], mces: mces[c], irqs: irqs[c], program: programs[c].map(\.described))
            })
    }
}
