/// Reconstructs what each CPU was doing from the events of a recording: the mode
/// timeline (user, kernel, idle, in an interrupt), one event at a time, in constant
/// memory per CPU. The rules (README, "How modes are reconstructed"):
///
/// 1. `sys_enter`: the CPU was in user mode and enters the kernel; `sys_exit`: it
///    returns to user mode.
/// 2. `page_fault_user`: an entry from user mode and, right after, the return to it
///    (a user fault's end is not traced; a fault that sleeps shows a `sched_switch`).
/// 3. `cpu_idle state=N`: the idle loop (N = 0 is cpuidle's polling state);
///    `state=4294967295`: the idle loop is left (kernel, idle task).
/// 4. Interrupt entries (`local_timer_entry`, `call_function[_single]_entry`,
///    `reschedule_entry`, `irq_handler_entry`) open an interrupt over the mode they
///    find; their `_exit` events close it. Where a kind's exit is not recorded, the
///    interrupt ends at its last handler event: a call-function IPI at each
///    `csd_function_exit` (reopened by a following `csd_function_entry` in hardirq
///    context), a reschedule IPI or device IRQ at once.
/// 5. `sched_switch`: the task switched out keeps the context it will return to (user
///    if it was in user mode or in an interrupt over user mode, kernel if it was in a
///    syscall); the task switched in resumes there: user mode at the switch, or
///    kernel. A task never seen before resumes in an `unknown` mode, and the idle task
///    (pid 0) runs in the kernel until `cpu_idle`.
/// 6. Any other event on a CPU that these rules place in user mode or idle is kernel
///    code that ran there: an untraced interrupt (a softirq tail, an exception), taken
///    and returned from at that event. Counted per CPU (`untracedInterrupts`).
/// 7. Before a CPU's first decisive event its mode is `unknown`, never guessed.
public struct ModeTracker {
    public enum Base: Equatable, Sendable {
        case unknown, user, kernel
        case idle(polling: Bool)
    }

    public enum IRQKind: String, Sendable {
        case timer, callFunction = "call-function IPI", reschedule = "reschedule IPI", device, untraced
        /// The IPIs a request brings: a replayed policy sends its own (or none).
        public var isIPI: Bool { self == .callFunction || self == .reschedule }
    }

    /// What a mode change means for a CPU, in order.
    public enum Change {
        /// The CPU's mode outside interrupts is now `base`.
        case base(Base)
        case interruptBegins(IRQKind)
        case interruptEnds(IRQKind)
        /// The running task is switched out (the adaptive policy's promotion ends).
        case switchOut
    }

    /// The mode a request finds its target in (reported per request).
    public enum Observed: String, Sendable, Codable, CaseIterable {
        case user, kernel, idle, irq, unknown
        var index: Int {
            switch self {
            case .user: return 0
            case .kernel: return 1
            case .idle: return 2
            case .irq: return 3
            case .unknown: return 4
            }
        }
    }

    struct OpenIRQ {
        var kind: IRQKind
        var start: Int64
        var interrupted: Base
        /// Closed at its last handler event rather than by an exit event.
        var provisional: Bool
    }

    struct Track {
        var task: Int32 = -1
        var base: Base = .unknown
        var irq: OpenIRQ?
        /// A call-function IPI closed at a csd_function_exit, with nothing since: a
        /// following csd_function_entry in hardirq context belongs to it.
        var ipiJustClosed = false
        var since: Int64 = -1
        var first: Int64 = -1
        var last: Int64 = -1
        var nsIn: [Int64] = Array(repeating: 0, count: Observed.allCases.count)
        /// User-mode time of each task (bounded by `userTasksMax`).
        var userNs: [Int32: Int64] = [:]
        var comm: [Int32: String] = [:]
        var untracedInterrupts = 0
        var untracedReturns = 0
        var missedSwitches = 0
        /// Entries the recording shows: syscalls, user faults, idle periods.
        var syscalls = 0
        var userFaults = 0
        var idlePeriods = 0
    }

    /// Tasks per CPU whose user time is kept (for isolated-CPU detection).
    static let userTasksMax = 4096

    var tracks: [Track]
    /// Where each switched-out task resumes (user or kernel); dead tasks are dropped.
    var resume: [Int32: Base] = [:]
    /// Exit events seen, per interrupt kind: from then on that kind closes only by them.
    struct ExitKinds: OptionSet {
        let rawValue: UInt8
        static let callFunction = ExitKinds(rawValue: 1)
        static let reschedule = ExitKinds(rawValue: 2)
        static let irqHandler = ExitKinds(rawValue: 4)
    }
    var exitsSeen: ExitKinds = []
    public private(set) var tasksDropped = 0

    public init(cpuCount: Int) { tracks = Array(repeating: Track(), count: cpuCount) }

    public var cpuCount: Int { tracks.count }

    public func observed(_ cpu: Int) -> Observed {
        let t = tracks[cpu]
        if t.irq != nil { return .irq }
        return Self.observed(t.base)
    }

    static func observed(_ b: Base) -> Observed {
        switch b {
        case .unknown: return .unknown
        case .user: return .user
        case .kernel: return .kernel
        case .idle: return .idle
        }
    }

    /// The mode an open interrupt interrupted (nil outside interrupts).
    public func interrupted(_ cpu: Int) -> Observed? { tracks[cpu].irq.map { Self.observed($0.interrupted) } }
    /// Where `cpu`'s open interrupt began.
    public func interruptStart(_ cpu: Int) -> Int64? { tracks[cpu].irq?.start }
    public func interruptKind(_ cpu: Int) -> IRQKind? { tracks[cpu].irq?.kind }
    public func task(_ cpu: Int) -> Int32 { tracks[cpu].task }

    /// Handles one event, calling `emit` for each change in order.
    public mutating func handle(_ line: TraceLine, report: (Int, Change, Observed) -> Void) {
        let c = line.cpu
        Self.account(&tracks[c], until: line.time)
        // In place: copying a CPU's track out and back cost two array copies per event.
        Self.step(line, &tracks[c], &resume, &exitsSeen, &tasksDropped, report)
    }

    static func step(_ line: TraceLine, _ t: inout Track, _ resume: inout [Int32: Base], _ exitsSeen: inout ExitKinds,
                     _ tasksDropped: inout Int, _ report: (Int, Change, Observed) -> Void) {
        let c = line.cpu
        /// Reports a change with the mode it leaves the CPU in.
        func emit(_ cpu: Int, _ change: Change) {
            report(cpu, change, t.irq != nil ? .irq : Self.observed(t.base))
        }
        func set(_ b: Base) {
            guard t.base != b else { return }
            t.base = b
            emit(c, .base(b))
        }
        func openIRQ(_ k: IRQKind, provisional: Bool) {
            t.irq = OpenIRQ(kind: k, start: line.time, interrupted: t.base, provisional: provisional)
            emit(c, .interruptBegins(k))
        }
        func closeIRQ() {
            guard let irq = t.irq else { return }
            t.irq = nil
            emit(c, .interruptEnds(irq.kind))
        }
        /// Rule 6: kernel code while user or idle is an untraced interrupt, a point.
        func kernelEvidence() {
            guard t.irq == nil else { return }
            switch t.base {
            case .user, .idle:
                t.untracedInterrupts += 1
                emit(c, .interruptBegins(.untraced))
                emit(c, .interruptEnds(.untraced))
            case .unknown, .kernel: break
            }
        }
        /// A user-mode event (sys_enter, a user fault) when the CPU was thought in the
        /// kernel: it went back to user mode at an untraced point.
        func fromUser() {
            closeIRQ()
            switch t.base {
            case .user: break
            case .unknown: set(.user)
            case .kernel, .idle:
                t.untracedReturns += 1
                set(.user)
            }
        }

        if t.task != line.pid && line.name != .schedSwitch {
            // At a CPU's first event, or where a switch was not recorded: the task
            // changed without its switch. It resumes where it was switched out, if
            // that is known; else its mode is unknown.
            if t.task >= 0 {
                closeIRQ()
                t.missedSwitches += 1
                set(line.pid == 0 ? .kernel : resume[line.pid] ?? .unknown)
            } else if line.pid == 0 {
                set(.kernel)
            }
            t.task = line.pid
        }
        if line.name != .csdFunctionEntry { t.ipiJustClosed = false }

        switch line.name {
        case .sysEnter:
            fromUser()
            set(.kernel)
            t.syscalls += 1
        case .sysExit:
            closeIRQ()
            set(.user)
            // execve (59) and execveat (322) rename the task: keep the new name.
            if line.syscallNumber == 59 || line.syscallNumber == 322, t.task > 0 { t.comm[t.task] = line.comm }
        case .pageFaultUser:
            t.userFaults += 1
            fromUser()
            set(.kernel)
            set(.user)
        case .cpuIdle:
            closeIRQ()
            let state = line.int("state") ?? -1
            let idle = !(state == 4_294_967_295 || state < 0)
            if idle, case .idle = t.base {} else if idle { t.idlePeriods += 1 }
            set(idle ? .idle(polling: state == 0) : .kernel)
        case .schedSwitch:
            let sw = SchedSwitch(line)
            // The switch runs in the kernel, at an interrupt's exit if one is open.
            let ret = t.irq?.interrupted ?? t.base
            closeIRQ()
            if let prev = sw?.prevPid ?? (t.task >= 0 ? t.task : nil), prev != 0 {
                if sw?.prevDead == true {
                    resume[prev] = nil
                } else if ret == .user || ret == .kernel {
                    if resume.count >= TraceLimits.tasksMax { resume.removeAll(); tasksDropped += 1 }
                    resume[prev] = ret
                } else {
                    resume[prev] = nil
                }
                emit(c, .switchOut)
            }
            set(.kernel)
            guard let sw else { set(.unknown); break }
            t.task = sw.nextPid
            if sw.nextPid == 0 {
                set(.kernel)
            } else {
                if t.comm.count < Self.userTasksMax, t.comm[sw.nextPid] == nil { t.comm[sw.nextPid] = sw.nextComm }
                set(resume[sw.nextPid] ?? .unknown)
            }
        case .localTimerEntry:
            closeIRQ()
            openIRQ(.timer, provisional: false)
        case .callFunctionEntry, .callFunctionSingleEntry:
            closeIRQ()
            openIRQ(.callFunction, provisional: !exitsSeen.contains(.callFunction))
        case .rescheduleEntry:
            closeIRQ()
            openIRQ(.reschedule, provisional: !exitsSeen.contains(.reschedule))
            if t.irq?.provisional == true { closeIRQ() }
        case .irqHandlerEntry:
            if t.irq == nil {
                openIRQ(.device, provisional: !exitsSeen.contains(.irqHandler))
                if t.irq?.provisional == true { closeIRQ() }
            }
        case .localTimerExit:
            if t.irq?.kind == .timer { closeIRQ() }
        case .callFunctionExit, .callFunctionSingleExit:
            exitsSeen.insert(.callFunction)
            if t.irq?.kind == .callFunction { closeIRQ() }
        case .rescheduleExit:
            exitsSeen.insert(.reschedule)
            if t.irq?.kind == .reschedule { closeIRQ() }
        case .irqHandlerExit:
            exitsSeen.insert(.irqHandler)
            if t.irq?.kind == .device { closeIRQ() }
        case .csdFunctionEntry:
            if t.irq == nil && (line.inHardIRQ == true || (line.inHardIRQ == nil && t.ipiJustClosed)) {
                // The next callback of the same IPI (its end was guessed too early).
                openIRQ(.callFunction, provisional: true)
            }
            t.ipiJustClosed = false
            kernelEvidence()
        case .csdFunctionExit:
            if let irq = t.irq, irq.kind == .callFunction, irq.provisional {
                closeIRQ()
                t.ipiJustClosed = true
            } else {
                kernelEvidence()
            }
        case .csdQueueCPU, .ipiSendCPU, .ipiSendCPUMask, .tlbFlush, .other:
            kernelEvidence()
        }
        t.last = line.time
    }

    /// Adds the time since the track's last event to its current mode (and task).
    static func account(_ t: inout Track, until now: Int64) {
        if t.first < 0 { t.first = now; t.since = now; return }
        let dt = now - t.since
        guard dt > 0 else { return }
        let o: Observed = t.irq != nil ? .irq : Self.observed(t.base)
        t.nsIn[o.index] += dt
        if o == .user && t.task > 0 {
            if t.userNs[t.task] != nil || t.userNs.count < Self.userTasksMax { t.userNs[t.task, default: 0] += dt }
        }
        t.since = now
    }

    /// Closes every CPU's accounting at `end` (the recording's last timestamp).
    public mutating func finish(at end: Int64) {
        for c in tracks.indices where tracks[c].first >= 0 { Self.account(&tracks[c], until: end) }
    }

    // MARK: What the timeline says per CPU

    public struct Summary: Sendable, Codable {
        public var cpu: Int
        /// Seconds in each observed mode, from the CPU's first event to the end.
        public var seconds: [String: Double]
        /// The task with the most user-mode time, its share of the CPU's span.
        public var topTask: String?
        public var topTaskPid: Int32?
        public var topTaskUserFraction: Double
        public var untracedInterrupts: Int
        public var untracedReturns: Int
        public var seen: Bool
        public var syscalls: Int
        public var userFaults: Int
        public var idlePeriods: Int
    }

    public func summary(_ cpu: Int) -> Summary {
        let t = tracks[cpu]
        let span = t.nsIn.reduce(0, +)
        var secs: [String: Double] = [:]
        for (i, o) in Observed.allCases.enumerated() { secs[o.rawValue] = Double(t.nsIn[i]) / 1e9 }
        let top = t.userNs.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }
        return Summary(cpu: cpu, seconds: secs, topTask: top.flatMap { t.comm[$0.key] }, topTaskPid: top?.key,
                       topTaskUserFraction: span > 0 ? Double(top?.value ?? 0) / Double(span) : 0,
                       untracedInterrupts: t.untracedInterrupts, untracedReturns: t.untracedReturns, seen: t.first >= 0,
                       syscalls: t.syscalls, userFaults: t.userFaults, idlePeriods: t.idlePeriods)
    }
}

/// The fields of a `sched_switch` line, in either format: raw ftrace
/// ("prev_comm=a prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=b next_pid=2 ...")
/// or trace-cmd report ("a:1 [120] S ==> b:2 [120]").
struct SchedSwitch {
    var prevPid: Int32
    var prevDead: Bool
    var nextPid: Int32
    var nextComm: String

    init?(_ line: TraceLine) {
        if let p = line.int("prev_pid"), let n = line.int("next_pid") {
            prevPid = Int32(truncatingIfNeeded: p)
            nextPid = Int32(truncatingIfNeeded: n)
            let state = line.string("prev_state") ?? ""
            prevDead = state.contains("X") || state.contains("Z")
            nextComm = line.string("next_comm") ?? ""
            return
        }
        let f = line.fields
        guard let arrow = f.range(of: " ==> ") else { return nil }
        let left = f[..<arrow.lowerBound].split(separator: " ")
        let right = f[arrow.upperBound...].split(separator: " ")
        // "comm:pid [prio] STATE": the comm may hold ':' and spaces; the pid follows the last ':'.
        guard let prevTok = left.first(where: { $0.contains(":") }) ?? left.first,
              let p = prevTok.split(separator: ":").last.flatMap({ Int32($0) }),
              let nextTok = right.first, let colon = nextTok.lastIndex(of: ":"),
              let n = Int32(nextTok[nextTok.index(after: colon)...]) else { return nil }
        prevPid = p
        nextPid = n
        nextComm = String(nextTok[..<colon])
        let state = left.last.map(String.init) ?? ""
        prevDead = state.contains("X") || state.contains("Z")
    }
}
