import Foundation

/// One event of a Chrome trace-event file (loadable in Perfetto and chrome://tracing).
public struct TraceEvent: Encodable, Sendable {
    public var name: String
    /// "X" complete (with dur), "i" instant, "C" counter, "M" metadata.
    public var ph: String
    /// Microseconds.
    public var ts: Double
    public var dur: Double?
    public var pid: Int
    public var tid: Int
    /// Instant scope: "t" thread.
    public var s: String?
    public var args: [String: String]?
    /// For counter events: numeric series (written as `args`).
    public var counter: [String: Double]?

    enum CodingKeys: String, CodingKey { case name, ph, ts, dur, pid, tid, s, args }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(ph, forKey: .ph)
        try c.encode(ts, forKey: .ts)
        try c.encodeIfPresent(dur, forKey: .dur)
        try c.encode(pid, forKey: .pid)
        try c.encode(tid, forKey: .tid)
        try c.encodeIfPresent(s, forKey: .s)
        if let counter { try c.encode(counter, forKey: .args) } else { try c.encodeIfPresent(args, forKey: .args) }
    }
}

public enum ChromeTrace {
    /// A trace file with one process per policy and one thread per CPU, so that the
    /// policies can be compared side by side in Perfetto.
    public static func render(_ runs: [(policy: Policy, events: [TraceEvent])], isolated: Set<Int>, cpus: Int) throws -> Data {
        var all: [TraceEvent] = []
        for (i, run) in runs.enumerated() {
            all.append(TraceEvent(name: "process_name", ph: "M", ts: 0, pid: i + 1, tid: 0, args: ["name": run.policy.rawValue]))
            let used = Set(run.events.map(\.tid))
            for c in 0..<cpus where used.contains(c) {
                all.append(TraceEvent(name: "thread_name", ph: "M", ts: 0, pid: i + 1, tid: c,
                                      args: ["name": "cpu\(c) \(isolated.contains(c) ? "isolated" : "housekeeping")"]))
            }
            all += run.events.map { var e = $0; e.pid = i + 1; return e }
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        struct File: Encodable { var traceEvents: [TraceEvent]; var displayTimeUnit: String }
        return try enc.encode(File(traceEvents: all, displayTimeUnit: "ns"))
    }
}

/// Hand-written SVG charts (no plotting library in the package set).
public enum Charts {
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }

    /// Two horizontal bar panels: interruptions per isolated CPU per second, stacked by
    /// cause, and entry overhead per user round trip.
    public static func comparison(_ results: [PolicyResult], title: String) -> String {
        let causes = Set(results.flatMap { $0.interruptionsByCause.keys }).sorted()
        let rowH = 26.0, left = 150.0, panelW = 360.0, gap = 60.0, top = 60.0
        let height = top + rowH * Double(results.count) + 110
        let width = left + panelW * 2 + gap + 190
        let maxIrq = max(results.map { $0.interruptionsPerCPUPerSecond }.max() ?? 1, 1e-9)
        let maxEntry = max(results.map { $0.entryOverheadNsPerRoundTrip }.max() ?? 1, 1e-9)
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="10" y="22" font-size="15" font-weight="bold">\(esc(title))</text>
        <text x="\(left)" y="\(top - 10)" font-weight="bold">interruptions per isolated CPU per second</text>
        <text x="\(left + panelW + gap)" y="\(top - 10)" font-weight="bold">entry overhead per user round trip (ns)</text>

        """
        for (i, r) in results.enumerated() {
            let y = top + rowH * Double(i)
            svg += "<text x=\"\(left - 8)\" y=\"\(y + 16)\" text-anchor=\"end\">\(esc(r.policy.rawValue))</text>\n"
            var x = left
            let perCPU = Double(max(r.isolatedCPUs, 1)) * r.seconds
            for (ci, cause) in causes.enumerated() {
                let v = Double(r.interruptionsByCause[cause] ?? 0) / perCPU
                let w = v / maxIrq * panelW
                if w > 0 {
                    svg += "<rect x=\"\(x)\" y=\"\(y + 4)\" width=\(String(format: "\"%.2f\"", w)) height=\"\(rowH - 8)\" fill=\"\(palette[ci % palette.count])\"><title>\(esc(cause)): \(String(format: "%.2f", v))/s</title></rect>\n"
                }
                x += w
            }
            svg += "<text x=\"\(x + 4)\" y=\"\(y + 16)\">\(String(format: "%.1f", r.interruptionsPerCPUPerSecond))</text>\n"
            let ew = r.entryOverheadNsPerRoundTrip / maxEntry * panelW
            svg += "<rect x=\"\(left + panelW + gap)\" y=\"\(y + 4)\" width=\(String(format: "\"%.2f\"", ew)) height=\"\(rowH - 8)\" fill=\"#888\"/>\n"
            svg += "<text x=\"\(left + panelW + gap + ew + 4)\" y=\"\(y + 16)\">\(String(format: "%.0f", r.entryOverheadNsPerRoundTrip)) (\(String(format: "%.2f", r.atomicsPerRoundTrip)) atomics)</text>\n"
        }
        var lx = left, ly = top + rowH * Double(results.count) + 30
        for (ci, cause) in causes.enumerated() {
            if lx > width - 160 { lx = left; ly += 20 }
            svg += "<rect x=\"\(lx)\" y=\"\(ly - 10)\" width=\"12\" height=\"12\" fill=\"\(palette[ci % palette.count])\"/><text x=\"\(lx + 16)\" y=\"\(ly)\">\(esc(cause))</text>\n"
            lx += 170
        }
        return svg + "</svg>\n"
    }

    /// A sweep: interruptions per CPU-second and atomics per round trip against the
    /// swept parameter, one line per policy.
    public static func sweep(parameter: String, values: [Double], results: [[PolicyResult]]) -> String {
        let policies = results.first?.map(\.policy) ?? []
        let panelW = 380.0, panelH = 240.0, left = 70.0, top = 50.0, gap = 90.0
        let width = left + panelW * 2 + gap + 170, height = top + panelH + 70
        func panel(_ x0: Double, _ label: String, _ metric: (PolicyResult) -> Double) -> String {
            let ys = results.flatMap { $0.map(metric) }
            let yMax = max(ys.max() ?? 1, 1e-9)
            // Values are placed evenly in the order given (sweeps are often geometric).
            func px(_ v: Double) -> Double {
                let i = values.firstIndex(of: v) ?? 0
                return x0 + (values.count == 1 ? panelW / 2 : Double(i) / Double(values.count - 1) * panelW)
            }
            func py(_ v: Double) -> Double { top + panelH - v / yMax * panelH }
            var s = "<text x=\"\(x0)\" y=\"\(top - 12)\" font-weight=\"bold\">\(esc(label))</text>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(top + panelH)\" x2=\"\(x0 + panelW)\" y2=\"\(top + panelH)\" stroke=\"black\"/>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(top)\" x2=\"\(x0)\" y2=\"\(top + panelH)\" stroke=\"black\"/>\n"
            s += "<text x=\"\(x0 - 6)\" y=\"\(top + 4)\" text-anchor=\"end\">\(String(format: "%.3g", yMax))</text>\n"
            s += "<text x=\"\(x0 - 6)\" y=\"\(top + panelH)\" text-anchor=\"end\">0</text>\n"
            for v in values {
                s += "<text x=\"\(px(v))\" y=\"\(top + panelH + 16)\" text-anchor=\"middle\">\(String(format: "%g", v))</text>\n"
            }
            s += "<text x=\"\(x0 + panelW / 2)\" y=\"\(top + panelH + 36)\" text-anchor=\"middle\">\(esc(parameter)) (values evenly spaced)</text>\n"
            for (pi, _) in policies.enumerated() {
                let pts = values.indices.map { "\(String(format: "%.1f", px(values[$0]))),\(String(format: "%.1f", py(metric(results[$0][pi]))))" }
                s += "<polyline fill=\"none\" stroke=\"\(palette[pi % palette.count])\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            }
            return s
        }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>

        """
        svg += panel(left, "interruptions per isolated CPU per second", { $0.interruptionsPerCPUPerSecond })
        svg += panel(left + panelW + gap, "atomics per user round trip", { $0.atomicsPerRoundTrip })
        for (pi, p) in policies.enumerated() {
            let y = top + Double(pi) * 20
            let x = left + panelW * 2 + gap + 20
            svg += "<line x1=\"\(x)\" y1=\"\(y)\" x2=\"\(x + 20)\" y2=\"\(y)\" stroke=\"\(palette[pi % palette.count])\" stroke-width=\"3\"/><text x=\"\(x + 26)\" y=\"\(y + 4)\">\(esc(p.rawValue))</text>\n"
        }
        return svg + "</svg>\n"
    }
}
