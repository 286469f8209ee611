import Foundation

/// One event of a Chrome trace-event file (loadable in Perfetto and chrome://tracing).
public struct TraceEvent: Sendable {
    public var name: String
    /// "X" complete (with dur), "i" instant, "C" counter, "M" metadata, "b"/"e" async.
    public var ph: String
    /// Microseconds.
    public var ts: Double
    public var dur: Double?
    public var pid: Int
    public var tid: Int
    /// Instant scope: "t" thread.
    public var s: String?
    /// Async events: category and id (a "b" and its "e" share both).
    public var cat: String?
    public var id: String?
    public var args: [String: String]?
    /// For counter events: numeric series (written as `args`).
    public var counter: [String: Double]?

    public init(name: String, ph: String, ts: Double, dur: Double? = nil, pid: Int, tid: Int, s: String? = nil,
                cat: String? = nil, id: String? = nil, args: [String: String]? = nil, counter: [String: Double]? = nil) {
        self.name = name
        self.ph = ph
        self.ts = ts
        self.dur = dur
        self.pid = pid
        self.tid = tid
        self.s = s
        self.cat = cat
        self.id = id
        self.args = args
        self.counter = counter
    }

    /// The event as one JSON object (keys in a fixed order; numbers finite).
    func json(pid: Int) -> String {
        var o = "{\"name\":" + TraceEvent.quote(name) + ",\"ph\":" + TraceEvent.quote(ph) + ",\"ts\":" + TraceEvent.number(ts)
        if let dur { o += ",\"dur\":" + TraceEvent.number(dur) }
        o += ",\"pid\":\(pid),\"tid\":\(tid)"
        if let s { o += ",\"s\":" + TraceEvent.quote(s) }
        if let cat { o += ",\"cat\":" + TraceEvent.quote(cat) }
        if let id { o += ",\"id\":" + TraceEvent.quote(id) }
        if let counter {
            o += ",\"args\":{" + counter.sorted { $0.key < $1.key }.map { TraceEvent.quote($0.key) + ":" + TraceEvent.number($0.value) }.joined(separator: ",") + "}"
        } else if let args {
            o += ",\"args\":{" + args.sorted { $0.key < $1.key }.map { TraceEvent.quote($0.key) + ":" + TraceEvent.quote($0.value) }.joined(separator: ",") + "}"
        }
        return o + "}"
    }

    static func number(_ d: Double) -> String {
        // JSON has no infinity or NaN; the simulator never makes them, but a file that
        // does not parse would be worse than a clamped value.
        guard d.isFinite else { return d.isNaN ? "0" : (d > 0 ? "1e300" : "-1e300") }
        return "\(d)"
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

/// An error writing the trace file, naming the file and the cause.
public struct TraceFileError: Error, CustomStringConvertible {
    public var description: String
}

/// Writes a Chrome trace-event file as the simulations run: the JSON header at once,
/// then each event as it happens (buffered, written every `flushBytes`), then the
/// footer at `finish()`. One process per policy (`beginProcess`) and one thread per
/// CPU, so that the policies can be compared side by side in Perfetto. Memory stays
/// bounded whatever the run: nothing but the buffer and the set of named threads is kept.
///
/// `eventsMax` is one budget for the whole file (metadata included), not per policy:
/// when it runs out, the writer records where (`stoppedIn`, `stoppedAtUs`) and drops
/// every later event, and the file still ends with a valid footer.
public final class ChromeTraceWriter {
    /// The default budget: about 200 MB of JSON.
    public static let defaultEventsMax = 2_000_000
    public let eventsMax: Int
    public let path: String
    public private(set) var eventsWritten = 0
    /// The policy whose run was being written when the budget ran out, and the
    /// simulated time (µs) of the first event dropped.
    public private(set) var stoppedIn: Policy?
    public private(set) var stoppedAtUs: Double?
    public var truncated: Bool { stoppedAtUs != nil }

    let file: OutputFile
    let flushBytes: Int
    let isolated: Set<Int>
    var buffer: [UInt8] = []
    var pid = 0
    var policy: Policy?
    var namedThreads: Set<Int> = []
    var wroteAny = false
    var writeError: TraceFileError?
    var finished = false

    /// Creates (or truncates) the file at `path` and writes to it through the one file
    /// writer of the package (`OutputFile`: errors name the path and the errno);
    /// `finish()` closes it.
    public init(path: String, isolated: Set<Int>, eventsMax: Int = ChromeTraceWriter.defaultEventsMax, flushBytes: Int = 64 * 1024) throws {
        self.file = try OutputFile(creating: path)
        self.path = path
        self.isolated = isolated
        self.eventsMax = max(0, eventsMax)
        self.flushBytes = max(1, flushBytes)
        try start()
    }

    func start() throws {
        append("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")
        try flush()
    }

    func append(_ s: String) { buffer.append(contentsOf: s.utf8) }

    func flush() throws {
        if let writeError { throw writeError }
        guard !buffer.isEmpty else { return }
        do {
            try file.write(Data(buffer))
        } catch {
            let e = TraceFileError(description: "\(error)")
            writeError = e
            throw e
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Starts the process of `policy`: the events emitted from now on belong to it.
    public func beginProcess(_ policy: Policy) {
        beginProcess(named: policy.rawValue)
        self.policy = policy
    }

    /// Starts a process named `name` (a recording's timeline, say).
    public func beginProcess(named name: String) {
        pid += 1
        policy = nil
        namedThreads = []
        _ = put(TraceEvent(name: "process_name", ph: "M", ts: 0, pid: pid, tid: 0, args: ["name": name]))
    }

    /// Writes `event` under the current process (its `pid` is replaced); false once the
    /// budget is spent (or a write failed: `finish()` throws it).
    @discardableResult
    public func emit(_ event: TraceEvent) -> Bool {
        guard !truncated, writeError == nil else { return false }
        if !namedThreads.contains(event.tid) {
            // Name each CPU's track the first time it is used (two events: both or none).
            guard eventsWritten + 2 <= eventsMax else { return stop(at: event) }
            namedThreads.insert(event.tid)
            _ = put(TraceEvent(name: "thread_name", ph: "M", ts: 0, pid: pid, tid: event.tid,
                               args: ["name": "cpu\(event.tid) \(isolated.contains(event.tid) ? "isolated" : "housekeeping")"]))
        }
        return put(event)
    }

    func stop(at event: TraceEvent) -> Bool {
        // The first event dropped says where: later ones do not move it.
        if stoppedAtUs == nil {
            stoppedIn = policy
            stoppedAtUs = event.ts
        }
        return false
    }

    func put(_ event: TraceEvent) -> Bool {
        guard eventsWritten < eventsMax else { return stop(at: event) }
        if wroteAny { append(",\n") }
        wroteAny = true
        append(event.json(pid: pid))
        eventsWritten += 1
        if buffer.count >= flushBytes { try? flush() }
        return true
    }

    /// Writes the footer and the rest of the buffer, and closes the file.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        append("\n]}\n")
        try flush()
        do { try file.close() } catch { throw TraceFileError(description: "\(error)") }
    }
}

/// The trace window's checks, for the CLI.
public enum TraceWindow {
    /// Refuses a window that starts at or after the end of the simulated run (it would
    /// give an empty trace), naming the option, its value and the run's length.
    public static func check(_ window: ClosedRange<Int64>, text: String, config: MachineConfig) throws {
        let length = Simulation.lengthNs(of: config)
        if window.lowerBound >= length {
            throw TraceFileError(description: String(format: "--trace-window %@: starts at or after the end of the run, which is %g ms long (--seconds %g); expected FROM below %g",
                                                     text, Double(length) / 1e6, config.seconds, Double(length) / 1e6))
        }
    }
}
