import ArgumentParser
import CPUFlags
import Foundation
import Simulator
import TextTable
import Traces

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay the IPIs of a real ftrace recording through every policy.",
        discussion: """
            Reads raw ftrace text (tracefs 'trace' or 'trace_pipe') or 'trace-cmd report' \
            text, plain, .xz or .gz, or a trace-cmd .dat (through 'trace-cmd report'); '-' \
            reads standard input. Reconstructs each CPU's modes, matches every IPI request \
            with its target, and routes each request through every policy at its timestamp \
            with the protocol core. Isolated CPUs are given by --isolated or detected as the \
            CPUs whose busiest task ran in user mode at least half the time.
            """)

    @Argument(help: "The recording: a file, or - for standard input.") var file: String
    @Option(name: .long, help: "Isolated CPUs as a kernel cpulist (e.g. 1 or 2-7); default: detected.") var isolated: String?
    @Option(name: .long, help: "A callback catalog of your own (lines 'CALLBACK KIND NOTE'), added to the built-in one.") var catalog: String?
    @Option(name: .long, help: "Policy to replay (repeatable; default all).") var policy: [Policy] = []
    @Flag(name: .long, help: "Print JSON (schema in the README).") var json = false
    @Option(name: .long, help: "Write a Chrome trace-event file of the modes and IPIs with each policy's verdict (open in ui.perfetto.dev).") var trace: String?
    @Option(name: .long, help: "Write an SVG chart of interruptions and lost time per policy.") var svg: String?
    @Option(name: .long, help: "Write every request as one JSON object per line to this file.") var requests: String?
    @Option(name: .long, help: "Malformed lines tolerated before stopping with an error.") var maxBadLines = TraceLimits.badLinesDefault
    @Flag(name: .long, help: "No progress or warnings on stderr.") var quiet = false
    @Option(name: .long, help: "Replay with a wrong variant of the core (repeatable; see 'cpuflags mutants'): shows that a replay catches it.")
    var mutation: [String] = []

    func validate() throws {
        if let isolated { _ = try parseIsolated(isolated) }
        for m in mutation where !Mutations.named.contains(where: { $0.name == m }) {
            throw ValidationError("--mutation '\(m)': unknown; expected one of: \(Mutations.named.map(\.name).joined(separator: ", "))")
        }
        guard maxBadLines >= 0 else { throw ValidationError("--max-bad-lines \(maxBadLines): expected 0 or more") }
        for (option, path) in [("svg", svg), ("trace", trace), ("requests", requests)] {
            guard let path else { continue }
            do { try OutputFile.checkWritable(path) } catch { throw ValidationError("--\(option) \(error)") }
        }
    }

    func parseIsolated(_ text: String) throws -> [Int] {
        do {
            let list = try CPUList(parsing: text, cpuCount: min(TraceLimits.cpuMax + 1, SimulatorLimits.cpusMax))
            return list.cpus
        } catch { throw ValidationError("--isolated '\(text)': \(error)") }
    }

    func stderr(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

    func run() throws {
        var cat: CallbackCatalog
        do {
            cat = try CallbackCatalog.builtIn()
            if let catalog { try cat.add(file: catalog) }
        } catch { stderr("Error: \(error)"); throw ExitCode(2) }
        var options = Analysis.Options()
        options.isolated = try isolated.map(parseIsolated)
        if !policy.isEmpty { options.policies = policy }
        options.badLinesMax = maxBadLines
        for m in mutation { if let named = Mutations.named.first(where: { $0.name == m }) { options.mutations.insert(named.mutation) } }
        let analysis = Analysis(options: options, catalog: cat)
        if !quiet {
            analysis.onWarning = { stderr("warning: \($0)") }
            let start = ContinuousClock.now
            analysis.onProgress = { bytes, lines in
                let s = Double((ContinuousClock.now - start).components.attoseconds) / 1e18 + Double((ContinuousClock.now - start).components.seconds)
                stderr(String(format: "analyze: %d lines, %.0f MB, %.0f MB/s", lines, Double(bytes) / 1e6, Double(bytes) / 1e6 / max(s, 1e-9)))
            }
        }
        var timeline: PerfettoTimeline?
        var requestsFile: OutputFile?
        do {
            if let trace { timeline = try PerfettoTimeline(path: trace, isolated: Set(options.isolated ?? [])) }
            if let requests { requestsFile = try OutputFile(creating: requests) }
        } catch { stderr("Error: \(error)"); throw ExitCode(2) }
        analysis.timeline = timeline
        let requestLines = requestsFile.map { RequestLines(file: $0, policies: analysis.policies.map(\.rawValue)) }
        if let requestLines { analysis.onRequest = { requestLines.add($0) } }
        let input: TraceInput
        do {
            input = try TraceInput(file)
            try analysis.run(input)
        } catch {
            stderr("Error: \(error)")
            throw ExitCode(1)
        }
        let report = analysis.report(input: file)
        do {
            try timeline?.finish(at: Int64(report.lastSeconds * 1e9))
            try requestLines?.flush()
            try requestsFile?.close()
        } catch { stderr("Error: \(error)"); throw ExitCode(2) }
        if let svg {
            let iso = report.targets.filter(\.isolated)
            let shown = iso.isEmpty ? report.targets : iso
            let ps = analysis.policies
            let panels: [(title: String, values: [Double])] = [
                ("interruptions of the task", ps.map { p in Double(shown.reduce(0) { $0 + ($1.byPolicy[p.rawValue]?.taskInterruptions ?? 0) }) }),
                ("time the task lost, µs", ps.map { p in shown.reduce(0.0) { $0 + ($1.byPolicy[p.rawValue]?.lostMicroseconds ?? 0) } }),
            ]
            let cpus = shown.map { "cpu\($0.cpu)" }.joined(separator: ",")
            let chart = Charts.policyPanels(
                title: "\(URL(fileURLWithPath: file).lastPathComponent): IPIs replayed through each policy",
                caption: "\(iso.isEmpty ? "all CPUs" : "isolated \(cpus)") over \(String(format: "%.1f", report.lastSeconds - report.firstSeconds)) s of recording",
                policies: ps, panels: panels)
            do { try OutputFile.write(chart.data(using: .utf8)!, to: svg) } catch { stderr("Error: \(error)"); throw ExitCode(2) }
        }
        if json {
            try JSONOutput.print(report)
        } else {
            print(Analyze.render(report))
        }
        if !report.violations.isEmpty { throw ExitCode(1) }
    }

    /// The `--requests` file: one JSON object per settled request, written in blocks.
    final class RequestLines {
        let file: OutputFile
        let policies: [String]
        var buffer = Data()
        var failure: OutputFile.Failure?
        init(file: OutputFile, policies: [String]) { self.file = file; self.policies = policies }
        func add(_ r: IPIRequest) {
            buffer.append(Analyze.jsonLine(r, policies: policies).data(using: .utf8)!)
            if buffer.count > 1 << 16 { try? flush() }
        }
        func flush() throws {
            if let failure { throw failure }
            do { try file.write(buffer) } catch { failure = error; throw error }
            buffer.removeAll(keepingCapacity: true)
        }
    }

    static func jsonLine(_ r: IPIRequest, policies: [String]) -> String {
        struct Line: Encodable {
            var id: Int, sender: Int, target: Int, callback: String, callsite: String, seconds: Double, line: Int
            var targetMode: String, targetInterrupted: String?, kind: String?, ipiSent: Bool, seen: String
            var costMicroseconds: Double?, verdicts: [String: String]
        }
        let l = Line(id: r.id, sender: r.sender, target: r.target, callback: r.callback, callsite: r.callsite,
                     seconds: Double(r.time) / 1e9, line: r.line, targetMode: r.targetMode.rawValue,
                     targetInterrupted: r.targetInterrupted?.rawValue, kind: r.kind?.rawValue, ipiSent: r.ipiSent,
                     seen: r.seen.rawValue, costMicroseconds: r.costNs.map { Double($0) / 1000 },
                     verdicts: Dictionary(uniqueKeysWithValues: policies.enumerated().map { ($1, r.verdicts[$0]?.rawValue ?? "interrupted (unknown callback)") }))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(l)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    // MARK: Tables

    static func render(_ r: AnalysisReport) -> String {
        var out = "cpuflags analyze: \(r.input) (\(r.container), \(r.format) text): \(r.events) events on \(r.cpus) CPUs, "
            + String(format: "%.3f s (%.6f to %.6f)\n", r.lastSeconds - r.firstSeconds, r.firstSeconds, r.lastSeconds)
        let w = r.warnings
        if w.malformedLines + w.outOfOrderEvents + w.lostEvents + (w.headerLostEvents ?? 0) > 0 {
            out += "warnings: \(w.malformedLines) malformed lines, \(w.outOfOrderEvents) events out of order, \(w.lostEvents + (w.headerLostEvents ?? 0)) events lost by the kernel\n"
        }
        out += "isolated CPUs: \(r.isolated.cpus.isEmpty ? "none" : r.isolated.cpus.map(String.init).joined(separator: ",")) (\(r.isolated.source))\n"
        for d in r.isolated.detection {
            out += String(format: "  cpu%d: busiest task %@ in user mode %.0f%% of the time -> %@\n", d.cpu,
                          "\(d.task ?? "-")\(d.pid.map { " (pid \($0))" } ?? "")", d.userFraction * 100,
                          d.isolated ? "isolated" : "housekeeping")
        }
        if r.isolated.source == "detected" {
            out += "  (while replaying, the policies treat every CPU as isolated; give --isolated to change that)\n"
        }
        out += "\nreconstructed modes (seconds) per CPU:\n"
        let modes = TextTable<AnalysisReport.Target> { t in
            [Column(title: "cpu", value: "cpu\(t.cpu)\(t.isolated ? " (isolated)" : "")")]
                + ModeTracker.Observed.allCases.map { m in Column(title: m.rawValue, value: String(format: "%.3f", t.modeSeconds[m.rawValue] ?? 0), align: .right) }
                + [Column(title: "untraced irqs", value: t.untracedInterrupts, align: .right),
                   Column(title: "requests", value: t.requests, align: .right)]
        }
        out += modes.string(for: r.targets) ?? ""
        out += "\nIPI requests per target and callback, and how many each policy would deliver by interrupt:\n"
        let rows = TextTable<AnalysisReport.Callback> { c in
            let modes = ModeTracker.Observed.allCases.compactMap { m in c.modeAtRequest[m.rawValue].map { "\(m.rawValue) \($0)" } }.joined(separator: ", ")
            return [
                Column(title: "target", value: "cpu\(c.target)"),
                Column(title: "callback", value: c.callback),
                Column(title: "class", value: c.class ?? "unknown"),
                Column(title: "requests", value: c.requests, align: .right),
                Column(title: "target mode at request", value: modes),
                Column(title: "irq seen", value: c.seen["interrupt"] ?? 0, align: .right),
                Column(title: "cost us", value: c.measuredCostMeanMicroseconds.map { String(format: "%.1f", $0) } ?? "-", align: .right),
            ] + r.policies.map { p in
                let pc = c.byPolicy[p]
                let n = (pc?.deliveries["interrupted"] ?? 0) + (pc?.deliveries["interrupted (unknown callback)"] ?? 0)
                let other = pc?.deliveries.filter { !$0.key.hasPrefix("interrupted") && $0.value > 0 }.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ",")
                return Column(title: p, value: other?.isEmpty == false ? "\(n) (\(other!))" : "\(n)", align: .right)
            }
        }
        out += rows.string(for: r.callbacks) ?? ""
        out += "\nper target CPU: interruptions of its task / time it would have lost (µs; modelled part in the JSON):\n"
        let totals = TextTable<AnalysisReport.Target> { t in
            [Column(title: "cpu", value: "cpu\(t.cpu)\(t.isolated ? " (isolated)" : "")")]
                + r.policies.map { p in
                    let pt = t.byPolicy[p]
                    return Column(title: p, value: "\(pt?.taskInterruptions ?? 0) / \(String(format: "%.1f", pt?.lostMicroseconds ?? 0))", align: .right)
                }
        }
        out += totals.string(for: r.targets.filter { $0.requests > 0 }) ?? ""
        if !r.unknownCallbacks.isEmpty {
            out += "\ncallbacks not in the catalog (counted as interrupting under every policy): \(r.unknownCallbacks.joined(separator: ", "))\n"
        }
        if r.violations.isEmpty {
            out += "\nreplay: no violation (deferred work always ran before kernel code on its target, under every policy)\n"
        } else {
            for v in r.violations {
                out += "\nVIOLATION under \(v.policy) at line \(v.line): \(v.message)\n  around it:\n"
                out += v.context.map { "    " + $0 }.joined(separator: "\n") + "\n"
            }
        }
        return out
    }
}
