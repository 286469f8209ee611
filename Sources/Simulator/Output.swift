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

    let handle: FileHandle
    let closesHandle: Bool
    let flushBytes: Int
    let isolated: Set<Int>
    var buffer: [UInt8] = []
    var pid = 0
    var policy: Policy?
    var namedThreads: Set<Int> = []
    var wroteAny = false
    var writeError: TraceFileError?
    var finished = false

    /// Writes to an already-open `handle` (not closed by `finish()`); `path` names it
    /// in errors.
    public init(handle: FileHandle, path: String = "trace", isolated: Set<Int>, eventsMax: Int = ChromeTraceWriter.defaultEventsMax,
                flushBytes: Int = 64 * 1024) throws {
        self.handle = handle
        self.closesHandle = false
        self.path = path
        self.isolated = isolated
        self.eventsMax = max(0, eventsMax)
        self.flushBytes = max(1, flushBytes)
        try start()
    }

    /// Creates (or truncates) the file at `path` and writes to it; `finish()` closes it.
    public init(path: String, isolated: Set<Int>, eventsMax: Int = ChromeTraceWriter.defaultEventsMax, flushBytes: Int = 64 * 1024) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TraceFileError(description: "\(path): cannot open for writing: \(String(cString: strerror(errno)))")
        }
        self.handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        self.closesHandle = true
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
            try handle.write(contentsOf: buffer)
        } catch {
            let e = TraceFileError(description: "\(path): cannot write: \(error.localizedDescription)")
            writeError = e
            throw e
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Starts the process of `policy`: the events emitted from now on belong to it.
    public func beginProcess(_ policy: Policy) {
        pid += 1
        self.policy = policy
        namedThreads = []
        _ = put(TraceEvent(name: "process_name", ph: "M", ts: 0, pid: pid, tid: 0, args: ["name": policy.rawValue]))
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

    /// Writes the footer and the rest of the buffer (and closes a file it opened).
    public func finish() throws {
        guard !finished else { return }
        finished = true
        append("\n]}\n")
        try flush()
        if closesHandle {
            do { try handle.close() } catch {
                throw TraceFileError(description: "\(path): cannot close: \(error.localizedDescription)")
            }
        }
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

/// Hand-written SVG charts (no plotting library in the package set). Every chart has
/// the machine's title; each policy has one colour in every chart (`policyColour`),
/// each cause one colour (`causeColour`); axes have round tick values and gridlines.
public enum Charts {
    /// One colour per policy, the same in every chart.
    public static func policyColour(_ p: Policy) -> String {
        switch p {
        case .linux: return "#d62728"
        case .ctDefer: return "#ff7f0e"
        case .catchUp: return "#8c564b"
        case .cpuflags: return "#1f77b4"
        case .cpuflagsLazy: return "#17becf"
        case .cpuflagsAdaptive: return "#2ca02c"
        case .hwBroadcast: return "#9467bd"
        }
    }

    /// One colour per interruption cause (the keys of `interruptionsByCause`), from a
    /// palette apart from the policies' one.
    public static func causeColour(_ cause: String) -> String {
        let palette = ["kernel-tlb-flush": "#4e79a7", "text-patch": "#f28e2b", "rcu-expedited": "#e15759",
                       "rcu-force-quiescent": "#ff9da7", "user-tlb-shootdown": "#76b7b2", "wakeup": "#59a14f",
                       "cache-drain": "#edc948", "page-table-free": "#b07aa1"]
        return palette[cause] ?? "#9d9d9d"
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

    /// Round tick values from 0 covering `maxValue`: steps of 1, 2 or 5 times a power of
    /// ten, about `count` of them.
    public static func ticks(upTo maxValue: Double, count: Int = 5) -> [Double] {
        let top = maxValue.isFinite && maxValue > 0 ? maxValue : 1
        let raw = top / Double(max(count, 1))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let n = Int((top / step).rounded(.up))
        return (0...max(n, 1)).map { Double($0) * step }
    }

    static func tickLabel(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e6 || abs(v) < 1e-3 { return String(format: "%.0e", v) }
        return v == v.rounded() ? String(format: "%.0f", v) : String(format: "%g", v)
    }

    /// A horizontal value axis from `x0` over `width` for `ticks`, with gridlines from
    /// `yTop` to `yBottom` and labels under it.
    static func xAxis(_ ticks: [Double], x0: Double, width: Double, yTop: Double, yBottom: Double) -> String {
        let top = ticks.last ?? 1
        var s = ""
        for t in ticks {
            let x = x0 + t / top * width
            s += "<line x1=\"\(f(x))\" y1=\"\(f(yTop))\" x2=\"\(f(x))\" y2=\"\(f(yBottom))\" stroke=\"#ddd\"/>\n"
            s += "<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(yBottom + 14))\" text-anchor=\"middle\">\(tickLabel(t))</text>\n"
        }
        s += "<line x1=\"\(f(x0))\" y1=\"\(f(yBottom))\" x2=\"\(f(x0 + width))\" y2=\"\(f(yBottom))\" stroke=\"black\"/>\n"
        return s
    }

    /// Non-zero bars are at least this wide, so that 0.1 next to 54 still shows; the
    /// value is printed beside every bar.
    static let minimumBarPx = 2.0

    static func header(width: Double, height: Double) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <style>.tick { font-size: 10px; fill: #555 } .caption { font-size: 11px; fill: #444 }</style>
        <rect width="100%" height="100%" fill="white"/>

        """
    }

    /// Three horizontal bar panels, one row per policy: interruptions per isolated CPU
    /// per second stacked by cause; time lost per CPU-second; entry overhead per user
    /// round trip (with the atomics per round trip, marked input or counted).
    public static func comparison(_ results: [PolicyResult], title: String) -> String {
        let causes = Set(results.flatMap { $0.interruptionsByCause.keys }).sorted()
        let rowH = 26.0, left = 150.0, panelW = 300.0, gap = 110.0, top = 78.0
        let plotBottom = top + rowH * Double(results.count)
        let height = plotBottom + 140
        // Room on the right for the last panel's labels ("727 (2.00 atomics, model input)").
        let width = left + panelW * 3 + gap * 2 + 210
        let irqTicks = ticks(upTo: results.map { $0.interruptionsPerCPUPerSecond }.max() ?? 1)
        let lostTicks = ticks(upTo: results.map { $0.lostNsPerCPUPerSecond / 1000 }.max() ?? 1)
        let entryTicks = ticks(upTo: results.compactMap { $0.entryOverheadNsPerRoundTrip }.max() ?? 1)
        let x1 = left, x2 = left + panelW + gap, x3 = left + 2 * (panelW + gap)
        var svg = header(width: width, height: height)
        svg += "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(esc(title))</text>\n"
        svg += "<text class=\"caption\" x=\"10\" y=\"40\">simulated outcomes per policy (same workload and seed); values are printed beside each bar</text>\n"
        svg += "<text x=\"\(x1)\" y=\"\(top - 12)\" font-weight=\"bold\">interruptions per isolated CPU per second</text>\n"
        svg += "<text x=\"\(x2)\" y=\"\(top - 12)\" font-weight=\"bold\">time lost, µs per isolated CPU per second</text>\n"
        svg += "<text x=\"\(x3)\" y=\"\(top - 12)\" font-weight=\"bold\">entry overhead, ns per user round trip</text>\n"
        svg += xAxis(irqTicks, x0: x1, width: panelW, yTop: top, yBottom: plotBottom)
        svg += xAxis(lostTicks, x0: x2, width: panelW, yTop: top, yBottom: plotBottom)
        svg += xAxis(entryTicks, x0: x3, width: panelW, yTop: top, yBottom: plotBottom)
        func barWidth(_ v: Double, _ ticks: [Double]) -> Double {
            v <= 0 ? 0 : max(v / (ticks.last ?? 1) * panelW, minimumBarPx)
        }
        for (i, r) in results.enumerated() {
            let y = top + rowH * Double(i)
            let colour = policyColour(r.policy)
            svg += "<rect x=\"\(left - 14)\" y=\"\(y + 7)\" width=\"10\" height=\"10\" fill=\"\(colour)\"/>\n"
            svg += "<text x=\"\(left - 18)\" y=\"\(y + 16)\" text-anchor=\"end\" fill=\"\(colour)\" font-weight=\"bold\">\(esc(r.policy.rawValue))</text>\n"
            // Stacked causes: each non-zero segment at least minimumBarPx wide.
            var x = x1
            let perCPU = Double(max(r.isolatedCPUs, 1)) * r.seconds
            for cause in causes {
                let v = Double(r.interruptionsByCause[cause] ?? 0) / perCPU
                let w = barWidth(v, irqTicks)
                if w > 0 {
                    svg += "<rect x=\"\(f(x, 2))\" y=\"\(y + 4)\" width=\"\(f(w, 2))\" height=\"\(rowH - 8)\" fill=\"\(causeColour(cause))\"><title>\(esc(cause)): \(f(v, 2))/s</title></rect>\n"
                }
                x += w
            }
            svg += "<text x=\"\(f(x + 4))\" y=\"\(y + 16)\">\(f(r.interruptionsPerCPUPerSecond, r.interruptionsPerCPUPerSecond < 1 ? 2 : 1))</text>\n"
            let lost = r.lostNsPerCPUPerSecond / 1000
            let lw = barWidth(lost, lostTicks)
            svg += "<rect x=\"\(x2)\" y=\"\(y + 4)\" width=\"\(f(lw, 2))\" height=\"\(rowH - 8)\" fill=\"\(colour)\"/>\n"
            svg += "<text x=\"\(f(x2 + lw + 4))\" y=\"\(y + 16)\">\(f(lost, lost < 1 ? 2 : 1))</text>\n"
            let atomics = r.atomicsPerRoundTrip.map { f($0, 2) } ?? "-"
            let how = r.policy.usesContextTracking ? "model input" : "counted"
            if let e = r.entryOverheadNsPerRoundTrip {
                let ew = barWidth(e, entryTicks)
                svg += "<rect x=\"\(x3)\" y=\"\(y + 4)\" width=\"\(f(ew, 2))\" height=\"\(rowH - 8)\" fill=\"\(colour)\" fill-opacity=\"0.7\"/>\n"
                svg += "<text x=\"\(f(x3 + ew + 4))\" y=\"\(y + 16)\">\(f(e, 0)) (\(atomics) atomics, \(how))</text>\n"
            } else {
                svg += "<text x=\"\(x3 + 4)\" y=\"\(y + 16)\">- (no user round trip)</text>\n"
            }
        }
        var ly = plotBottom + 40
        svg += "<text x=\"\(x1)\" y=\"\(ly)\" font-weight=\"bold\">causes:</text>\n"
        var lx = x1 + 60
        for cause in causes {
            if lx > width - 170 { lx = x1 + 60; ly += 18 }
            svg += "<rect x=\"\(lx)\" y=\"\(ly - 10)\" width=\"12\" height=\"12\" fill=\"\(causeColour(cause))\"/><text x=\"\(lx + 16)\" y=\"\(ly)\">\(esc(cause))</text>\n"
            lx += 165
        }
        ly += 26
        let ctInput = results.first { $0.policy.usesContextTracking }?.atomicsPerRoundTrip.map { f($0, 0) } ?? "the count"
        for line in entryCaption + [
            "Atomics per round trip: context tracking's \(ctInput) is a model input (costs.contextTrackingAtomicsPerRoundTrip); cpu_flags' are counted from the core's calls.",
            "Lost time: interruptions from user (entry, handler, exit) plus entry overhead; a CPU handles one thing at a time, so at most 1e6 µs per second.",
        ] {
            svg += "<text class=\"caption\" x=\"10\" y=\"\(ly)\">\(esc(line))</text>\n"
            ly += 15
        }
        return svg + "</svg>\n"
    }

    static let entryCaption = [
        "entry ns/rt: work the entry ran (deferred flushes and sync_cores, coalesced) plus the atomics, averaged over user round trips: few entries make it large.",
    ]

    /// A sweep: the metrics that depend on the swept parameter (interruptions per CPU
    /// per second, time lost per CPU per second, entry ns per round trip) against it,
    /// one line per policy in its colour. Atomics per round trip are constant per
    /// policy: they are in the legend, not plotted.
    public static func sweep(parameter: String, values: [Double], results: [[PolicyResult]], title: String) -> String {
        let policies = results.first?.map(\.policy) ?? []
        let panelW = 300.0, panelH = 220.0, left = 70.0, top = 80.0, gap = 80.0
        let legendX = left + (panelW + gap) * 3 - 20
        let width = legendX + 300, height = top + panelH + 100
        func panel(_ x0: Double, _ label: String, _ metric: (PolicyResult) -> Double?) -> String {
            let ys = results.flatMap { $0.compactMap(metric) }
            let yTicks = ticks(upTo: ys.max() ?? 1, count: 4)
            let yMax = yTicks.last ?? 1
            // Values are placed evenly in the order given (sweeps are often geometric).
            func px(_ i: Int) -> Double {
                x0 + (values.count <= 1 ? panelW / 2 : Double(i) / Double(values.count - 1) * panelW)
            }
            func py(_ v: Double) -> Double { top + panelH - v / yMax * panelH }
            var s = "<text x=\"\(x0)\" y=\"\(top - 14)\" font-weight=\"bold\">\(esc(label))</text>\n"
            for t in yTicks {
                s += "<line x1=\"\(x0)\" y1=\"\(f(py(t)))\" x2=\"\(x0 + panelW)\" y2=\"\(f(py(t)))\" stroke=\"#ddd\"/>\n"
                s += "<text class=\"tick\" x=\"\(x0 - 6)\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(tickLabel(t))</text>\n"
            }
            s += "<line x1=\"\(x0)\" y1=\"\(top + panelH)\" x2=\"\(x0 + panelW)\" y2=\"\(top + panelH)\" stroke=\"black\"/>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(top)\" x2=\"\(x0)\" y2=\"\(top + panelH)\" stroke=\"black\"/>\n"
            for i in values.indices {
                s += "<line x1=\"\(f(px(i)))\" y1=\"\(top)\" x2=\"\(f(px(i)))\" y2=\"\(top + panelH)\" stroke=\"#eee\"/>\n"
                s += "<text class=\"tick\" x=\"\(f(px(i)))\" y=\"\(top + panelH + 14)\" text-anchor=\"middle\">\(String(format: "%g", values[i]))</text>\n"
            }
            s += "<text class=\"caption\" x=\"\(x0 + panelW / 2)\" y=\"\(top + panelH + 32)\" text-anchor=\"middle\">\(esc(parameter)) (evenly spaced)</text>\n"
            for (pi, p) in policies.enumerated() {
                // A missing value (no round trip) breaks the line.
                var runs: [[String]] = [[]]
                for i in values.indices {
                    guard pi < results[i].count, let v = metric(results[i][pi]) else { runs.append([]); continue }
                    runs[runs.count - 1].append("\(f(px(i))),\(f(py(v)))")
                    s += "<circle cx=\"\(f(px(i)))\" cy=\"\(f(py(v)))\" r=\"3\" fill=\"\(policyColour(p))\"><title>\(esc(p.rawValue)): \(String(format: "%g", v))</title></circle>\n"
                }
                for r in runs where r.count > 1 {
                    s += "<polyline fill=\"none\" stroke=\"\(policyColour(p))\" stroke-width=\"2\" points=\"\(r.joined(separator: " "))\"/>\n"
                }
            }
            return s
        }
        var svg = header(width: width, height: height)
        svg += "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(esc(title))</text>\n"
        svg += "<text class=\"caption\" x=\"10\" y=\"40\">sweep of \(esc(parameter)): simulated outcomes, one line per policy</text>\n"
        svg += panel(left, "interruptions per isolated CPU per second", { $0.interruptionsPerCPUPerSecond })
        svg += panel(left + panelW + gap, "time lost, µs per isolated CPU per second", { $0.lostNsPerCPUPerSecond / 1000 })
        svg += panel(left + (panelW + gap) * 2, "entry overhead, ns per user round trip", { $0.entryOverheadNsPerRoundTrip })
        svg += "<text x=\"\(legendX)\" y=\"\(top - 14)\" font-weight=\"bold\">policy (atomics per round trip)</text>\n"
        for (pi, p) in policies.enumerated() {
            let y = top + Double(pi) * 20
            let atomics = results.compactMap { pi < $0.count ? $0[pi].atomicsPerRoundTrip : nil }
            let a: String
            if p.usesContextTracking {
                a = atomics.first.map { "\(f($0, 0)), model input" } ?? "-"
            } else if let lo = atomics.min(), let hi = atomics.max() {
                a = (lo == hi ? f(lo, 2) : "\(f(lo, 2))-\(f(hi, 2))") + ", counted"
            } else {
                a = "-"
            }
            svg += "<line x1=\"\(legendX)\" y1=\"\(y)\" x2=\"\(legendX + 20)\" y2=\"\(y)\" stroke=\"\(policyColour(p))\" stroke-width=\"3\"/><text x=\"\(legendX + 26)\" y=\"\(y + 4)\">\(esc(p.rawValue)) (\(a))</text>\n"
        }
        var ly = top + panelH + 60
        for line in entryCaption + ["Atomics per round trip are in the legend (their range over the sweep): context tracking's are a model input, cpu_flags' are counted from the core."] {
            svg += "<text class=\"caption\" x=\"10\" y=\"\(ly)\">\(esc(line))</text>\n"
            ly += 15
        }
        return svg + "</svg>\n"
    }
}

