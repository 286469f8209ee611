import Atomics
import CPUFlags

/// Why the explorer stopped running a CPU's op in the middle of a step.
enum Suspend: Error {
    /// The op reached its next shared access: the end of this step.
    case yield
    /// The access cannot happen in this state (a wait whose condition is false, a full
    /// store buffer): the move is not enabled.
    case blocked(String)
    /// An invariant failed.
    case violation(Violation)
}

/// An invariant of BRIEF §4 and how it failed.
public struct Violation: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Invariant: String, Hashable, Sendable, Codable, CaseIterable {
        case noLostWork = "no lost work"
        case noStaleTranslation = "no stale translation"
        case noStaleText = "no stale text"
        case pinExclusion = "pin exclusion"
        case rcuSafety = "RCU safety"
        case deferralIsReal = "deferral is real"
        case progress = "progress"
        /// An assertion inside the protocol core (`Platform.check`) failed.
        case coreAssertion = "core assertion"
        /// Only for litmus tests of the memory models.
        case litmusOutcome = "litmus outcome"
    }
    public var invariant: Invariant
    public var message: String
    public var description: String { "\(invariant.rawValue): \(message)" }
}

/// One recorded event of a traced execution (for counterexamples).
public struct TimelineEvent: Hashable, Sendable, Codable {
    public var step: Int
    public var cpu: Int
    public var frame: String
    public var op: String
    public var action: String
    /// The CPU's store buffer after the event (TSO/PSO), oldest first.
    public var storeBuffer: [String]
}

/// The model `Platform`: runs the core's code against `MachineState`, one shared access
/// per step. The core is suspended between accesses by re-running the current op with
/// its earlier accesses answered from the frame's replay log (so every CPU's position is
/// a plain value: hashable, copyable, replayable).
final class Machine: Platform {
    typealias Interrupt = Suspend

    let scenario: Scenario
    let model: MemoryModel
    let limits: Limits
    let map: AddressMap
    var state: MachineState
    /// The state's components, and what the move in progress read and wrote of them
    /// (for the sleep sets: Footprint.swift, SleepSets.swift). Every memory access marks
    /// its cell here; every ghost hook marks the CPUs whose ghost state it uses.
    let components: Components
    var touched = Footprint()

    // The step in progress.
    var cpu = 0
    var replay: [UInt64] = []
    var position = 0
    var performedLive = false
    var recorded: [UInt64] = []
    var opName = ""
    var frameName = ""
    /// The access being attempted is a wait with IRQs on (csd_lock_wait): the op may be
    /// interrupted while suspended in front of it.
    var attemptingInterruptible = false
    var suspendedInterruptible = false

    /// The core's operations the runs of this machine reached (kept across states: it
    /// is not part of any state).
    var operationsReached: UInt32 = 0

    // rc11 (Memory/ViewOrder.swift): which store the step's load reads (0: the newest),
    // and how many it could read (the search then tries the others as moves of their
    // own). Only the step's first live read chooses; a second one in the same access
    // reads the newest.
    var choice = 0
    var readChoices = 1
    var choiceUsed = false

    // Tracing, for counterexamples only.
    var tracing = false
    /// Say why a move is blocked (end-state messages only: building the text on every
    /// blocked try costs more than the try).
    var explaining = false
    var events: [TimelineEvent] = []
    var stepNumber = 0

    var cpuCount: Int { scenario.cpuCount }

    init(scenario: Scenario, model: MemoryModel, limits: Limits, state: MachineState) {
        self.scenario = scenario
        self.model = model
        self.limits = limits
        self.map = AddressMap(scenario)
        self.components = Components(map)
        self.state = state
    }

    /// The move in progress reads or writes the ghost state of CPU `c` (a ghost
    /// component is read and written as one).
    @inline(__always) func touchGhost(_ c: Int) { touched.writes |= components.ghost(c) }
    /// ... reads a global ghost group, or writes it.
    @inline(__always) func touchGlobal(_ group: UInt64, write: Bool) {
        if write { touched.writes |= group } else { touched.reads |= group }
    }
    /// ... may drain this CPU's store buffer: writes every buffered cell.
    @inline(__always) func touchBuffered() {
        touched.writes |= components.buffer(cpu)
        for e in state.buffers[cpu] { touched.writes |= components.memory(Int(e.address)) }
    }

    /// Ghost effects run once: in the step that performs the access before them.
    var ghostLive: Bool { performedLive || replay.isEmpty }

    func trace(_ action: @autoclosure () -> String) {
        guard tracing else { return }
        let sb = state.buffers[cpu].map { e -> String in
            let a = Int(e.address)
            return "\(map.name(a))=\(map.render(a, e.value))\(e.release ? "(rel)" : "")"
        }
        events.append(TimelineEvent(step: stepNumber, cpu: cpu, frame: frameName, op: opName, action: action(), storeBuffer: sb))
    }

    /// The scheduling point: answer from the replay log, or perform `body` live (once
    /// per step), or suspend at the next access.
    @inline(__always)
    func access(_ body: () throws(Suspend) -> UInt64) throws(Suspend) -> UInt64 {
        if position < replay.count {
            let v = replay[position]
            position += 1
            return v
        }
        if performedLive {
            suspendedInterruptible = attemptingInterruptible
            throw .yield
        }
        // Every access checks this CPU's pin state and notes its own writes (ghost).
        touchGhost(cpu)
        let v = try body()
        performedLive = true
        recorded.append(v)
        position += 1
        return v
    }

    /// A ghost effect or check, run once, not a scheduling point.
    @inline(__always)
    func ghost(_ body: () throws(Suspend) -> Void) throws(Suspend) {
        if ghostLive { try body() }
    }

    func fail(_ invariant: Violation.Invariant, _ message: String) -> Suspend {
        .violation(Violation(invariant: invariant, message: message))
    }

    // MARK: Memory under the model (Memory/: one file per model)

    /// This CPU's view of address `a`, loaded with `ordering` (plain harness loads and
    /// ghost reads: `.relaxed`).
    @inline(__always) func read(_ a: Int, ordering: AtomicLoadOrdering = .relaxed) -> UInt64 {
        touched.reads |= components.memory(a) | components.buffer(cpu)
        switch model {
        case .sc: return SequentialConsistency.read(&state, cpu: cpu, a, ordering: ordering)
        case .tso: return TotalStoreOrder.read(&state, cpu: cpu, a, ordering: ordering)
        case .pso: return PartialStoreOrder.read(&state, cpu: cpu, a, ordering: ordering)
        case .rc11: return readChoosing(a, ordering: ordering)
        }
    }

    /// The move in progress reads and writes the rc11 views (a load moves its CPU's
    /// view forward): one component.
    @inline(__always) func touchWeak() {
        touched.reads |= components.weak
        touched.writes |= components.weak
    }

    /// An rc11 load: the step's choice of store, once per step (the search makes only
    /// choices below the count this records, and replays only paths it made).
    private func readChoosing(_ a: Int, ordering: AtomicLoadOrdering) -> UInt64 {
        touchWeak()
        if choiceUsed {
            return ViewOrder.read(&state.weak, cpu: cpu, a, ordering: ordering, choice: 0)
        }
        choiceUsed = true
        readChoices = state.weak.readable(a, by: cpu)
        if choice > 0 && choice < readChoices {
            trace("reads the \(Move.ordinal(choice)) newest store of \(map.name(a)) (\(readChoices) it may read)")
        }
        return ViewOrder.read(&state.weak, cpu: cpu, a, ordering: ordering, choice: choice)
    }

    /// A ghost look at `a` as this CPU would read it, without choosing (under rc11 the
    /// newest store).
    @inline(__always) func peek(_ a: Int) -> UInt64 { model == .rc11 ? state.memory[a] : read(a) }

    /// Either side of a ghost synchronization point under rc11 (an IPI sent or taken,
    /// its acknowledgement made or found, a quiescent-state report made or found): a
    /// seq_cst fence by CPU `c`, which joins what the other side's fence published.
    /// The store-buffer models need nothing here: their sending side drains
    /// (`drainAll`).
    func ghostFence(_ c: Int) {
        guard model == .rc11 else { return }
        touchWeak()
        ViewOrder.fence(&state.weak, cpu: c)
    }

    /// Drains this CPU's buffer (the same in every model).
    /// Under rc11: a seq_cst fence.
    func drainAll() {
        touchBuffered()
        if model == .rc11 {
            ghostFence(cpu)
            return
        }
        SequentialConsistency.drainAll(&state, cpu: cpu)
    }

    func write(_ a: Int, _ v: UInt64, release: Bool, seqCst: Bool) throws(Suspend) {
        let e = BufferedStore(address: Int32(a), value: v, release: release)
        let max = limits.storeBufferDepthMax
        touchBuffered()  // a seq_cst store drains it
        touched.writes |= components.memory(a)
        switch model {
        case .sc: try SequentialConsistency.write(&state, cpu: cpu, e, seqCst: seqCst, bufferMax: max)
        case .tso: try TotalStoreOrder.write(&state, cpu: cpu, e, seqCst: seqCst, bufferMax: max)
        case .pso: try PartialStoreOrder.write(&state, cpu: cpu, e, seqCst: seqCst, bufferMax: max)
        case .rc11:
            touchWeak()
            ViewOrder.write(&state, cpu: cpu, a, v, release: release, seqCst: seqCst, historyMax: limits.historyMax)
        }
    }

    /// A read-modify-write (the same in every model: drain, then one step on memory).
    func rmw(_ a: Int, ordering: AtomicUpdateOrdering, _ f: (UInt64) -> UInt64) -> UInt64 {
        touchBuffered()
        touched.writes |= components.memory(a)
        if model == .rc11 {
            touchWeak()
            return ViewOrder.rmw(&state, cpu: cpu, a, ordering: ordering, historyMax: limits.historyMax, f)
        }
        return SequentialConsistency.rmw(&state, cpu: cpu, a, ordering: ordering, f)
    }

    /// Entries of `c`'s store buffer that may drain now.
    func drainable(_ c: Int) -> [Int] {
        switch model {
        case .sc: return SequentialConsistency.drainable(&state, cpu: c)
        case .tso: return TotalStoreOrder.drainable(&state, cpu: c)
        case .pso: return PartialStoreOrder.drainable(&state, cpu: c)
        case .rc11: return []
        }
    }

    // MARK: Harness-level memory access by address (pte, text, RCU objects)

    func loadAddress(_ a: Int, ordering: AtomicLoadOrdering = .relaxed) throws(Suspend) -> UInt64 {
        try access { () throws(Suspend) -> UInt64 in
            let v = read(a, ordering: ordering)
            trace("load \(map.name(a)) -> \(map.render(a, v))")
            return v
        }
    }

    /// A wait on a harness cell: one load, enabled only when `condition` holds (as the
    /// core's `waitUntil`).
    func waitAddress(
        _ a: Int, ordering: AtomicLoadOrdering, _ what: @autoclosure () -> String, _ condition: (UInt64) -> Bool
    ) throws(Suspend) -> UInt64 {
        try access { () throws(Suspend) -> UInt64 in
            let v = read(a, ordering: ordering)
            guard condition(v) else { throw .blocked(explaining ? "waiting for \(what()) (\(map.name(a)) = \(v))" : "") }
            trace("wait \(map.name(a)) satisfied by \(v)")
            return v
        }
    }

    func storeAddress(_ a: Int, _ v: UInt64, release: Bool, seqCst: Bool = false) throws(Suspend) {
        _ = try access { () throws(Suspend) -> UInt64 in
            try write(a, v, release: release, seqCst: seqCst)
            trace("store \(map.name(a)) = \(map.render(a, v))\(release ? " (release)" : "")")
            return 0
        }
    }

    /// A wait on ghost state (a requester waiting for its IPIs): one access, enabled
    /// only when `condition` holds.
    func ghostWait(_ what: @autoclosure () -> String, _ condition: () -> Bool) throws(Suspend) {
        let was = attemptingInterruptible
        attemptingInterruptible = true
        defer { attemptingInterruptible = was }
        _ = try access { () throws(Suspend) -> UInt64 in
            guard condition() else { throw .blocked(explaining ? what() : "") }
            trace(what())
            return 0
        }
    }

    /// A ghost check that is also a scheduling point (a kernel access, running text).
    func ghostPoint(_ what: @autoclosure () -> String, _ body: () throws(Suspend) -> Void) throws(Suspend) {
        _ = try access { () throws(Suspend) -> UInt64 in
            trace(what())
            try body()
            return 0
        }
    }

    // MARK: Platform: shared memory

    func load(_ at: Location, ordering: AtomicLoadOrdering) throws(Suspend) -> UInt64 {
        let a = map.address(at)
        return try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(cpu, touching: at)
            let v = read(a, ordering: ordering)
            trace("load \(at) -> \(map.render(a, v))")
            return v
        }
    }

    func store(_ value: UInt64, at: Location, ordering: AtomicStoreOrdering) throws(Suspend) {
        let a = map.address(at)
        _ = try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(cpu, touching: at)
            try write(a, value, release: ordering != .relaxed, seqCst: ordering == .sequentiallyConsistent)
            noteWrite(at, value)
            let o = ordering == .relaxed ? "relaxed" : ordering == .releasing ? "release" : "seq_cst"
            trace("store \(at) = \(map.render(a, value)) (\(o))")
            return 0
        }
    }

    /// Owner-private cells are not scheduling points (nobody else can observe them),
    /// but their values go through the replay log like any other access.
    func silent(_ body: () -> UInt64) -> UInt64 {
        if position < replay.count {
            let v = replay[position]
            position += 1
            return v
        }
        let v = body()
        recorded.append(v)
        position += 1
        return v
    }

    func loadPrivate(_ at: Location) throws(Suspend) -> UInt64 {
        silent {
            touched.reads |= components.memory(map.address(at))
            return state.memory[map.address(at)]
        }
    }

    func storePrivate(_ value: UInt64, at: Location) throws(Suspend) {
        _ = silent {
            touched.writes |= components.memory(map.address(at))
            state.memory[map.address(at)] = value
            return 0
        }
    }

    func exchange(_ value: UInt64, at: Location, ordering: AtomicUpdateOrdering) throws(Suspend) -> UInt64 {
        let a = map.address(at)
        return try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(cpu, touching: at)
            let old = rmw(a, ordering: ordering) { _ in value }
            noteWrite(at, value)
            trace("xchg \(at): \(map.render(a, old)) -> \(map.render(a, value))")
            return old
        }
    }

    func compareExchange(
        expected: UInt64, desired: UInt64, at: Location, ordering: AtomicUpdateOrdering
    ) throws(Suspend) -> (exchanged: Bool, original: UInt64) {
        let a = map.address(at)
        let old = try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(cpu, touching: at)
            let old = rmw(a, ordering: ordering) { $0 == expected ? desired : $0 }
            if old == expected { noteWrite(at, desired) }
            if old == expected {
                trace("cas \(at): \(map.render(a, old)) -> \(map.render(a, desired))")
            } else {
                trace("cas \(at) failed: expected \(map.render(a, expected)), saw \(map.render(a, old))")
            }
            return old
        }
        return (old == expected, old)
    }

    func fetchAdd(_ delta: UInt64, at: Location, ordering: AtomicUpdateOrdering) throws(Suspend) -> UInt64 {
        let a = map.address(at)
        return try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(cpu, touching: at)
            let old = rmw(a, ordering: ordering) { $0 &+ delta }
            noteWrite(at, old &+ delta)
            trace("fetch_add \(at): \(map.render(a, old)) -> \(map.render(a, old &+ delta))")
            return old
        }
    }

    func fetchOr(_ bits: UInt64, at: Location, ordering: AtomicUpdateOrdering) throws(Suspend) -> UInt64 {
        let a = map.address(at)
        return try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(cpu, touching: at)
            let old = rmw(a, ordering: ordering) { $0 | bits }
            noteWrite(at, old | bits)
            trace("fetch_or \(at): \(map.render(a, old)) -> \(map.render(a, old | bits))")
            return old
        }
    }

    func fullFence() throws(Suspend) {
        _ = try access { () throws(Suspend) -> UInt64 in
            drainAll()
            trace("mfence")
            return 0
        }
    }

    /// The CPU whose word `at` is, when it is another CPU's: a wait on it is a grace
    /// period's. Nil for the CPU's own word, for other cells, and under per-task words
    /// (§2.12), whose slots are tasks, not CPUs, and where grace periods are refused.
    func othersWord(_ at: Location) -> Int? {
        at.cell == .word && !map.perTask && at.cpu != cpu ? at.cpu : nil
    }

    func waitUntil(_ at: Location, ordering: AtomicLoadOrdering, _ condition: (UInt64) -> Bool) throws(Suspend) -> UInt64 {
        let a = map.address(at)
        return try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(cpu, touching: at)
            let v = read(a, ordering: ordering)
            guard condition(v) else {
                try checkGracePeriodCanFinish(waitingOn: at, condition)
                throw .blocked(explaining ? "waiting on \(at) = \(map.render(a, v))" : "")
            }
            if let t = othersWord(at) {
                touchGhost(t)
                state.ghost.gpSample[t] = -1  // credited
            }
            trace("wait \(at) satisfied by \(map.render(a, v))")
            return v
        }
    }

    // MARK: Platform: CPU-local effects, driving the ghost state

    func switchAddressSpace(cpu c: Int, toKernel: Bool, flushTLB: Bool) throws(Suspend) {
        // A CR3 write is a scheduling point: an NMI may land before it.
        _ = try access { () throws(Suspend) -> UInt64 in
            try checkPinnedCPUWaits(c, doing: "writes CR3")
            touchGhost(c)
            if flushTLB {
                state.cpus[c].tlb = -1
                state.ghost.owed.ran(.kernelTLBFlush, on: c)
            }
            if scenario.pti { state.cpus[c].userCR3 = !toKernel }
            if !toKernel && !state.cpus[c].inNMI { state.cpus[c].context = .user }
            trace(scenario.pti
                ? "CR3 := \(toKernel ? "kernel" : "user")\(flushTLB ? " + flush" : "")"
                : (flushTLB ? "flush TLB" : (toKernel ? "(kernel page tables)" : "(back to user)")))
            return 0
        }
    }

    func serialize(cpu c: Int) throws(Suspend) {
        _ = try access { () throws(Suspend) -> UInt64 in
            touchGhost(c)
            try checkPinnedCPUWaits(c, doing: "serializes (sync_core)")
            let v = read(map.text)
            state.cpus[c].textSeen = Int8(v)
            state.ghost.owed.ran(.syncCore, on: c)
            trace("sync_core (text v\(v))")
            return 0
        }
    }

    func runCallbacks(_ ids: UInt64, of target: Int, on runner: Int) throws(Suspend) {
        try ghost { () throws(Suspend) in
            touchGhost(target)
            touchGhost(runner)
            try checkCallbacksRunOnce(ids, of: target, on: runner)
            try checkCallbacksRunnerHoldsPin(of: target, on: runner)
            state.ghost.ran[target] |= ids
            settleCallbacks(of: target)
            trace("run callbacks 0b\(String(ids, radix: 2)) of cpu\(target)")
        }
    }

    func kernelCodeBegins(cpu c: Int, context: KernelContext) throws(Suspend) {
        try ghostPoint(context == .nmi ? "NMI kernel code begins" : "kernel code begins (touches kernel stack)") { () throws(Suspend) in
            touchGhost(c)
            try checkNoLostWork(kernelCodeOn: c, context: context)
            if context != .nmi {
                state.cpus[c].context = .kernel
                try checkPinExclusion(c)
            }
            try kernelDataAccess(c)
        }
    }

    func idleBegins(cpu c: Int) throws(Suspend) {
        try ghost { () throws(Suspend) in
            touchGhost(c)
            if !state.cpus[c].inNMI { state.cpus[c].context = .idle }
            trace("idle")
        }
    }

    func kernelCodeEnds(cpu c: Int, entering: Mode) throws(Suspend) {
        try ghost { () throws(Suspend) in
            touchGhost(c)
            state.cpus[c].context = .user
            if !state.cpus[c].inNMI { state.cpus[c].kernelSide = false }
            trace("kernel code ends")
        }
    }

    func rcuWaits(on target: Int, snapshot: UInt64) throws(Suspend) {
        try ghost { () throws(Suspend) in
            touchGlobal(components.gracePeriod, write: true)
            state.ghost.gpWaitingOn = Int8(target)
            trace("grace period waits on cpu\(target) (snapshot \(CPUWord(raw: snapshot)))")
        }
    }

    func onBehalf(of target: Int, by runner: Int, begins: Bool) throws(Suspend) {
        try ghost { () throws(Suspend) in
            touchGhost(target)
            touchGhost(runner)
            if begins {
                try checkOnBehalfMayBegin(for: target, by: runner)
                state.ghost.onBehalf[target] |= 1 << UInt8(runner)
                trace("on-behalf work for cpu\(target) begins")
            } else {
                state.ghost.onBehalf[target] &= ~(1 << UInt8(runner))
                trace("on-behalf work for cpu\(target) ends")
            }
        }
    }

    /// Ghost bookkeeping of a write that reached `at` (`value` is what it wrote): the
    /// owner writing its own word enters an EQS (USER or IDLE) or leaves user mode for
    /// the kernel (KERNEL, outside an NMI).
    func noteWrite(_ at: Location, _ value: UInt64) {
        guard at.cell == .word && at.cpu == Int(state.cpus[cpu].task) else { return }
        let mode = CPUWord(raw: value).mode
        if mode.isRCUIdle { state.cpus[cpu].eqsEntries &+= 1 }
        if mode == .kernel && !state.cpus[cpu].inNMI { state.cpus[cpu].kernelSide = true }
    }

    func check(_ at: Location, _ holds: (UInt64) -> Bool, _ message: @autoclosure () -> String) throws(Suspend) {
        // Only in the step that runs this point live: on replay the memory has moved on.
        try ghost { () throws(Suspend) in
            try checkCoreAssertion(holds(peek(map.address(at))), message())
        }
    }

    func limitExceeded(_ message: String) throws(Suspend) -> Never {
        throw fail(.progress, message)
    }
}
