#if canImport(Glibc)
import Glibc
#endif

/// Explicit limits on what the reader accepts.
public enum TraceLimits {
    /// A longer line is malformed (ftrace lines are a few hundred bytes at most).
    public static let lineBytesMax = 64 * 1024
    /// The largest CPU number accepted (Linux's NR_CPUS tops out at 8192).
    public static let cpuMax = 8191
    /// Malformed lines tolerated before the analysis stops with an error (default of
    /// `--max-bad-lines`).
    public static let badLinesDefault = 100
    /// Warnings printed one by one; the rest are counted.
    public static let warningsPrinted = 10
    /// Requests waiting for their delivery on the target at any time; past it the
    /// oldest is settled as "not seen delivered" (keeps memory bounded).
    public static let pendingRequestsMax = 100_000
    /// How long a request waits for its delivery before it is settled (trace time).
    public static let deliveryHorizonNs: Int64 = 1_000_000_000
    /// Tasks whose return context is remembered across switches.
    public static let tasksMax = 1_000_000
}

/// The events the analysis reads. Every other event in a recording is skipped.
public enum EventName: UInt8, CaseIterable, Sendable {
    case sysEnter, sysExit, pageFaultUser
    case csdQueueCPU, csdFunctionEntry, csdFunctionExit
    case ipiSendCPU, ipiSendCPUMask
    case callFunctionEntry, callFunctionExit, callFunctionSingleEntry, callFunctionSingleExit
    case rescheduleEntry, rescheduleExit, localTimerEntry, localTimerExit
    case irqHandlerEntry, irqHandlerExit
    case cpuIdle, schedSwitch, tlbFlush
    case other

    public var text: String {
        switch self {
        case .sysEnter: return "sys_enter"
        case .sysExit: return "sys_exit"
        case .pageFaultUser: return "page_fault_user"
        case .csdQueueCPU: return "csd_queue_cpu"
        case .csdFunctionEntry: return "csd_function_entry"
        case .csdFunctionExit: return "csd_function_exit"
        case .ipiSendCPU: return "ipi_send_cpu"
        case .ipiSendCPUMask: return "ipi_send_cpumask"
        case .callFunctionEntry: return "call_function_entry"
        case .callFunctionExit: return "call_function_exit"
        case .callFunctionSingleEntry: return "call_function_single_entry"
        case .callFunctionSingleExit: return "call_function_single_exit"
        case .rescheduleEntry: return "reschedule_entry"
        case .rescheduleExit: return "reschedule_exit"
        case .localTimerEntry: return "local_timer_entry"
        case .localTimerExit: return "local_timer_exit"
        case .irqHandlerEntry: return "irq_handler_entry"
        case .irqHandlerExit: return "irq_handler_exit"
        case .cpuIdle: return "cpu_idle"
        case .schedSwitch: return "sched_switch"
        case .tlbFlush: return "tlb_flush"
        case .other: return "other"
        }
    }

    /// Names by length, for a lookup without building a String per line.
    static let byLength: [[(bytes: [UInt8], name: EventName)]] = {
        var table = Array(repeating: [(bytes: [UInt8], name: EventName)](), count: 40)
        for n in EventName.allCases where n != .other {
            let b = Array(n.text.utf8)
            table[b.count].append((b, n))
        }
        return table
    }()

    static func lookup(_ p: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> EventName {
        let len = to - from
        guard len > 0, len < byLength.count else { return .other }
        outer: for (bytes, name) in byLength[len] {
            for i in 0..<len where p[from + i] != bytes[i] { continue outer }
            return name
        }
        return .other
    }
}

/// One event line of a recording, parsed in place: the fields are offsets into the
/// line's bytes, valid only while the line is being handled.
///
/// Both text formats are accepted: raw ftrace (`trace`, `trace_pipe`):
///
///     spin-25775   [001] d.h1.   620.622336: call_function_single_entry: vector=251
///
/// and `trace-cmd report` (no flags column, the event name padded):
///
///     spin-25775   [001]   620.622336: call_function_single_entry: vector=251
public struct TraceLine {
    public let bytes: UnsafeBufferPointer<UInt8>
    public var cpu = 0
    public var pid: Int32 = 0
    /// The task's name: bytes [commStart, commEnd).
    var commStart = 0, commEnd = 0
    /// Nanoseconds on the recording's clock.
    public var time: Int64 = 0
    /// The irq-context column of the flags (`h` hardirq, `H` hardirq in softirq, `z`/`Z`
    /// NMI, `s` softirq, `.` none); nil when the line has no flags column.
    public var context: UInt8?
    public var name: EventName = .other
    /// The event's fields: bytes [fieldsStart, end).
    var fieldsStart = 0

    public var hasFlags: Bool { context != nil }
    /// In hard interrupt (or NMI) context, as the flags say; nil without flags.
    public var inHardIRQ: Bool? {
        guard let c = context else { return nil }
        return c == UInt8(ascii: "h") || c == UInt8(ascii: "H") || c == UInt8(ascii: "z") || c == UInt8(ascii: "Z")
    }

    public var comm: String { String(decoding: UnsafeBufferPointer(rebasing: bytes[commStart..<commEnd]), as: UTF8.self) }
    public var fields: String { String(decoding: UnsafeBufferPointer(rebasing: bytes[fieldsStart...]), as: UTF8.self) }

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 }

    /// Parses `bytes` (one line, no newline). Returns nil when it is not an event line.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> TraceLine? {
        var l = TraceLine(bytes: bytes)
        let n = bytes.count
        // The CPU column: the first "[digits]" followed by a space. A task name may hold
        // brackets too, but not this pattern followed by a timestamp.
        var i = 0
        var close = -1
        while i < n {
            // memchr finds each '[' (the task name before it is padded with spaces).
            guard let hit = memchr(bytes.baseAddress! + i, Int32(UInt8(ascii: "[")), n - i) else { break }
            i = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - bytes.baseAddress!
            if bytes[i] == UInt8(ascii: "[") {
                var j = i + 1
                var cpu = 0
                while j < n && isDigit(bytes[j]) && j - i <= 5 { cpu = cpu * 10 + Int(bytes[j] &- 48); j += 1 }
                if j > i + 1 && j + 1 < n && bytes[j] == UInt8(ascii: "]") && isSpace(bytes[j + 1]) {
                    l.cpu = cpu
                    close = j
                    break
                }
            }
            i += 1
        }
        guard close > 0, l.cpu <= TraceLimits.cpuMax else { return nil }
        // TASK-PID before it: the pid is the digits after the last '-'.
        var e = i - 1
        while e >= 0 && isSpace(bytes[e]) { e -= 1 }
        var s = e
        while s >= 0 && isDigit(bytes[s]) { s -= 1 }
        guard s < e, s >= 0, bytes[s] == UInt8(ascii: "-"), e - s <= 9 else { return nil }
        var pid: Int32 = 0
        for k in (s + 1)...e { pid = pid * 10 + Int32(bytes[k] &- 48) }
        l.pid = pid
        var cs = 0
        while cs < s && isSpace(bytes[cs]) { cs += 1 }
        l.commStart = cs
        l.commEnd = s
        // Flags (optional), then the timestamp "seconds.fraction:".
        i = close + 1
        while i < n && isSpace(bytes[i]) { i += 1 }
        var t = i
        while t < n && !isSpace(bytes[t]) { t += 1 }
        guard t < n else { return nil }
        if bytes[t - 1] != UInt8(ascii: ":") {
            // A flags token: 4 or 5 characters such as "d.h1." or "dnh..".
            guard t - i >= 4 && t - i <= 6 else { return nil }
            l.context = bytes[i + 2]
            i = t
            while i < n && isSpace(bytes[i]) { i += 1 }
        }
        var secs: Int64 = 0
        var digits = 0
        while i < n && isDigit(bytes[i]) { secs = secs &* 10 &+ Int64(bytes[i] &- 48); i += 1; digits += 1 }
        guard digits > 0, digits <= 10, i < n, bytes[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        var frac: Int64 = 0
        var fdigits = 0
        while i < n && isDigit(bytes[i]) {
            if fdigits < 9 { frac = frac * 10 + Int64(bytes[i] &- 48); fdigits += 1 }
            i += 1
        }
        guard fdigits > 0, i < n, bytes[i] == UInt8(ascii: ":") else { return nil }
        for _ in fdigits..<9 { frac *= 10 }
        l.time = secs * 1_000_000_000 + frac
        i += 1
        while i < n && isSpace(bytes[i]) { i += 1 }
        // The event name, up to ':'.
        let ns = i
        while i < n && bytes[i] != UInt8(ascii: ":") && !isSpace(bytes[i]) { i += 1 }
        guard i < n, i > ns, bytes[i] == UInt8(ascii: ":") else { return nil }
        l.name = EventName.lookup(bytes, ns, i)
        i += 1
        while i < n && isSpace(bytes[i]) { i += 1 }
        l.fieldsStart = i
        return l
    }

    // MARK: Fields

    /// The bytes of field `key` (as in "key=value"), up to the next space or comma.
    func fieldRange(_ key: StaticString) -> Range<Int>? {
        let k = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        let n = bytes.count
        var i = fieldsStart
        while i + k.count < n {
            // A key starts the fields or follows a space.
            if i == fieldsStart || Self.isSpace(bytes[i - 1]) {
                var match = true
                for j in 0..<k.count where bytes[i + j] != k[j] { match = false; break }
                if match && bytes[i + k.count] == UInt8(ascii: "=") {
                    let s = i + k.count + 1
                    var e = s
                    while e < n && !Self.isSpace(bytes[e]) && bytes[e] != UInt8(ascii: ",") { e += 1 }
                    return s..<e
                }
            }
            i += 1
        }
        return nil
    }

    public func string(_ key: StaticString) -> String? {
        fieldRange(key).map { String(decoding: UnsafeBufferPointer(rebasing: bytes[$0]), as: UTF8.self) }
    }

    /// A decimal field; nil when missing or not a number that fits.
    public func int(_ key: StaticString) -> Int? {
        guard let r = fieldRange(key), !r.isEmpty, r.count <= 18 else { return nil }
        var v = 0
        var neg = false
        for k in r {
            let c = bytes[k]
            if k == r.lowerBound && c == UInt8(ascii: "-") { neg = true; continue }
            guard Self.isDigit(c) else { return nil }
            v = v * 10 + Int(c &- 48)
        }
        return neg ? -v : v
    }

    /// The "NR n" of a sys_enter / sys_exit line.
    public var syscallNumber: Int? {
        let n = bytes.count
        var i = fieldsStart
        guard i + 3 < n, bytes[i] == UInt8(ascii: "N"), bytes[i + 1] == UInt8(ascii: "R"), bytes[i + 2] == 32 else { return nil }
        i += 3
        var v = 0
        var digits = 0
        while i < n && Self.isDigit(bytes[i]) && digits < 6 { v = v * 10 + Int(bytes[i] &- 48); i += 1; digits += 1 }
        return digits > 0 ? v : nil
    }

    /// A callback or function name with its offset dropped ("f+0x0/0x10" -> "f").
    public func symbol(_ key: StaticString) -> String? {
        guard let r = fieldRange(key) else { return nil }
        var e = r.lowerBound
        while e < r.upperBound && bytes[e] != UInt8(ascii: "+") { e += 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[r.lowerBound..<e]), as: UTF8.self)
    }

    /// The "[LOST N EVENTS]" lines ftrace and trace-cmd print where a buffer overflowed.
    static func lostEvents(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let s = String(decoding: bytes, as: UTF8.self)
        guard let r = s.range(of: "[LOST "), let e = s.range(of: " EVENTS]", range: r.upperBound..<s.endIndex) else { return nil }
        return Int(s[r.upperBound..<e.lowerBound])
    }
}
