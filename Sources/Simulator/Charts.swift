import Foundation

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


extension Charts {
    /// Horizontal bar panels side by side, one row per policy, one panel per metric:
    /// `panels[i].values[j]` is policy `policies[j]`'s value in panel i (the trace
    /// analyzer's chart; the simulator's `comparison` adds causes and sweeps).
    public static func policyPanels(title: String, caption: String, policies: [Policy],
                                    panels: [(title: String, values: [Double])]) -> String {
        let rowH = 26.0, left = 150.0, panelW = 280.0, gap = 110.0, top = 78.0
        let plotBottom = top + rowH * Double(policies.count)
        let width = left + (panelW + gap) * Double(max(panels.count, 1)) + 60
        var svg = header(width: width, height: plotBottom + 60)
        svg += "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(esc(title))</text>\n"
        svg += "<text class=\"caption\" x=\"10\" y=\"40\">\(esc(caption))</text>\n"
        for (k, panel) in panels.enumerated() {
            let x0 = left + Double(k) * (panelW + gap)
            let t = ticks(upTo: panel.values.max() ?? 1)
            svg += "<text x=\"\(f(x0))\" y=\"\(f(top - 12))\" font-weight=\"bold\">\(esc(panel.title))</text>\n"
            svg += xAxis(t, x0: x0, width: panelW, yTop: top, yBottom: plotBottom)
            for (i, p) in policies.enumerated() {
                let y = top + rowH * Double(i)
                let v = i < panel.values.count ? panel.values[i] : 0
                let w = v <= 0 ? 0 : max(v / (t.last ?? 1) * panelW, minimumBarPx)
                let colour = policyColour(p)
                if k == 0 {
                    svg += "<text x=\"\(left - 18)\" y=\"\(y + 16)\" text-anchor=\"end\" fill=\"\(colour)\" font-weight=\"bold\">\(esc(p.rawValue))</text>\n"
                }
                svg += "<rect x=\"\(f(x0))\" y=\"\(f(y + 5))\" width=\"\(f(w))\" height=\"16\" fill=\"\(colour)\"/>\n"
                let label = v == v.rounded() && v < 1e9 ? String(format: "%.0f", v) : String(format: "%.1f", v)
                svg += "<text x=\"\(f(x0 + w + 4))\" y=\"\(f(y + 17))\">\(label)</text>\n"
            }
        }
        return svg + "</svg>\n"
    }
}
