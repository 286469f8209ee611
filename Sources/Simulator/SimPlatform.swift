import Atomics
import CPUFlags

/// The protocol core on the simulator's memory: plain values, one transition at a time
/// (the simulator is a discrete-event loop on one thread, so every core call is atomic
/// with respect to the others). It counts the atomic read-modify-writes each CPU makes
/// and checks on the fly that deferred work runs before kernel code.
final class SimPlatform: Platform {
    typealias Interrupt = Never

    let cpuCount: Int
    // The per-CPU storage lives in buffers allocated once: a `let` buffer's elements are
    // read and written without the runtime exclusivity check a stored array property of
    // a class costs on every access (a third of the trace analyzer's instructions, by
    // callgrind, before this change). Only this class touches them, on one thread.
    private let memory: UnsafeMutableBufferPointer<UInt64>
    private let currentCell: UnsafeMutablePointer<Int>
    /// The CPU whose code is running (set by the simulator before each core call).
    var current: Int {
        get { currentCell.pointee }
        set { currentCell.pointee = newValue }
    }
    /// Locked read-modify-writes (and full fences) each CPU has made.
    let atomics: UnsafeMutableBufferPointer<Int>
    /// Deferred work each CPU was asked for and has not run yet (the shared ledger).
    var owed: OwedWork
    /// Effects the simulator charges time for, per CPU since last read.
    let flushes: UnsafeMutableBufferPointer<Int>
    let serializations: UnsafeMutableBufferPointer<Int>
    let callbacksRun: UnsafeMutableBufferPointer<Int>
    /// The first broken invariant, if any (the simulator stops the run on it).
    var violation: String? {
        get { violationCell.pointee }
        set { violationCell.pointee = newValue }
    }
    private let violationCell: UnsafeMutablePointer<String?>
    /// True once an invariant broke (checked after every replayed event: no String copy).
    var hasViolation: Bool { if case .none = violationCell.pointee { return false } else { return true } }

    init(cpuCount: Int) {
        self.cpuCount = cpuCount
        func zeroed<T: FixedWidthInteger>(_ n: Int, _: T.Type) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: n)
            b.initialize(repeating: 0)
            return b
        }
        memory = zeroed(Cell.allCases.count * cpuCount, UInt64.self)
        currentCell = .allocate(capacity: 1)
        currentCell.initialize(to: 0)
        violationCell = .allocate(capacity: 1)
        violationCell.initialize(to: nil)
        atomics = zeroed(cpuCount, Int.self)
        owed = OwedWork(cpuCount: cpuCount)
        flushes = zeroed(cpuCount, Int.self)
        serializations = zeroed(cpuCount, Int.self)
        callbacksRun = zeroed(cpuCount, Int.self)
    }

    deinit {
        for b in [atomics, flushes, serializations, callbacksRun] { b.deallocate() }
        memory.deallocate()
        currentCell.deallocate()
        violationCell.deinitialize(count: 1)
        violationCell.deallocate()
    }

    func word(_ cpu: Int) -> CPUWord { CPUWord(raw: memory[index(Location(.word, cpu))]) }

    /// Puts `cpu` in `mode` at the start of a run (before any transition): its word and
    /// its private counter copy, as every harness starts a CPU.
    func setInitial(_ cpu: Int, mode: Mode) {
        let cells = CPUWord.initialCells(mode)
        memory[index(Location(.word, cpu))] = cells.word
        memory[index(Location(.counter, cpu))] = cells.counter
    }

    /// The effects counted since the last call for `cpu` (flushes, serializations), reset.
    func takeEffects(_ cpu: Int) -> (flushes: Int, serializations: Int) {
        defer { flushes[cpu] = 0; serializations[cpu] = 0 }
        return (flushes[cpu], serializations[cpu])
    }

    private func index(_ l: Location) -> Int { Int(l.cell.rawValue) * cpuCount + l.cpu }
    private func rmw(_ l: Location, _ f: (UInt64) -> UInt64) -> UInt64 {
        atomics[current] += 1
        let i = index(l)
        let old = memory[i]
        memory[i] = f(old)
        return old
    }

    func load(_ at: Location, ordering: AtomicLoadOrdering) -> UInt64 { memory[index(at)] }
    func store(_ value: UInt64, at: Location, ordering: AtomicStoreOrdering) {
        if ordering == .sequentiallyConsistent { atomics[current] += 1 }
        memory[index(at)] = value
    }
    func loadPrivate(_ at: Location) -> UInt64 { memory[index(at)] }
    func storePrivate(_ value: UInt64, at: Location) { memory[index(at)] = value }
    func exchange(_ value: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 { rmw(at) { _ in value } }
    func compareExchange(expected: UInt64, desired: UInt64, at: Location, ordering: AtomicUpdateOrdering)
        -> (exchanged: Bool, original: UInt64) {
        let old = rmw(at) { $0 == expected ? desired : $0 }
        return (old == expected, old)
    }
    func fetchAdd(_ delta: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 { rmw(at) { $0 &+ delta } }
    func fetchOr(_ bits: UInt64, at: Location, ordering: AtomicUpdateOrdering) -> UInt64 { rmw(at) { $0 | bits } }
    func fullFence() { atomics[current] += 1 }
    func waitUntil(_ at: Location, ordering: AtomicLoadOrdering, _ condition: (UInt64) -> Bool) -> UInt64 {
        // Pins are taken and released inside one simulator event, so nothing is ever
        // held when an entry looks: a false condition is a simulator bug.
        let v = memory[index(at)]
        precondition(condition(v), "simulator: CPU \(current) would spin on \(at) = \(v)")
        return v
    }

    func switchAddressSpace(cpu: Int, toKernel: Bool, flushTLB: Bool) {
        if flushTLB {
            flushes[cpu] += 1
            owed.ran(.kernelTLBFlush, on: cpu)
        }
    }
    func serialize(cpu: Int) {
        serializations[cpu] += 1
        owed.ran(.syncCore, on: cpu)
    }
    func runCallbacks(_ ids: UInt64, of target: Int, on runner: Int) {
        callbacksRun[runner] += ids.nonzeroBitCount
        owed.ran(.callbacks, on: target)
    }
    func kernelCodeBegins(cpu: Int, context: KernelContext) {
        if violation == nil, let lost = owed.violationIfKernelCodeBegins(on: cpu, context: context) {
            violation = "no lost work: " + lost
        }
    }
    func kernelCodeEnds(cpu: Int, entering: Mode) {}
    func rcuWaits(on target: Int, snapshot: UInt64) {}
    func idleBegins(cpu: Int) {}
    func onBehalf(of target: Int, by runner: Int, begins: Bool) {}
    func callbackQueued(_ id: Int, for target: Int) {}
    func routed(_ kind: WorkKind, to target: Int, by requester: Int, _ route: Route) {
        if violation == nil, let wrong = route.deferralViolation(kind: kind, target: target, requester: requester) {
            violation = "deferral is real: " + wrong
        }
        owed.record(route, kind: kind, target: target)
    }
    // The simulator decides only (`submit(..., delivery: .decideOnly)`) and schedules the
    // interrupts itself, on simulated time: nothing is sent or waited for here.
    func sendInterrupts(_ targets: [Int], kind: WorkKind, from requester: Int) {}
    func waitForInterrupts(from requester: Int) {}
    // What a kind costs on arrival is charged by the simulator (CostModel.handlerNs).
    func interruptWork(_ kind: WorkKind, index: Int, on cpu: Int) {}
    // Expedited grace periods complete when their interrupts are handled (Simulation).
    func quiescentStateReported(by target: Int) -> Bool { false }
    func reached(_ operation: CoreOperation) {}

    func check(_ at: Location, _ holds: (UInt64) -> Bool, _ message: @autoclosure () -> String) {
        if !holds(memory[index(at)]) && violation == nil { violation = "core assertion: " + message() }
    }
    func limitExceeded(_ message: String) -> Never { fatalError(message) }
}
