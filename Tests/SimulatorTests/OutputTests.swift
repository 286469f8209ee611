import CPUFlags
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import Simulator

/// Counter samples (ts in ns, mode) per process/thread, in file order.
func modeSamples(_ events: [[String: Any]]) -> [String: [(ts: Int64, mode: Int)]] {
    var out: [String: [(ts: Int64, mode: Int)]] = [:]
    for e in events where e["ph"] as? String == "C" {
        let args = e["args"] as! [String: Any]
        let ts = Int64(((e["ts"] as! Double) * 1000).rounded())
        out["\(e["pid"]!)/\(e["tid"]!)", default: []].append((ts, Int((args["mode"] as! Double))))
    }
    return out
}

/// Item 6: the mode counter shows KERNEL for the length of every interrupt (before: an
/// IPI from user emitted USER again, hundreds of redundant samples), and no sample
/// repeats the one before it on its CPU.
@Test(arguments: [Policy.linux, .cpuflagsLazy, .cpuflagsAdaptive, .cpuflags])
func modeCounterShowsKernelDuringInterrupts(_ policy: Policy) throws {
    let run = try tracedRun(busyMachine(), [policy])
    let samples = modeSamples(run.events)
    #expect(!samples.isEmpty)
    for (track, s) in samples {
        for (a, b) in zip(s, s.dropFirst()) { #expect(a.mode != b.mode, "\(track): \(a.mode) repeated at \(b.ts)") }
    }
    var interrupts = 0
    for (track, slices) in slices(run.events, named: "IPI: ") {
        let s = samples[track] ?? []
        for sl in slices {
            interrupts += 1
            // The last sample at or before the start, and at the end (of those at
            // the end, the first: a next interrupt may begin at once).
            let atStart = s.last { $0.ts <= sl.start }
            let atEnd = s.first { $0.ts >= sl.end }
            #expect(atStart?.mode == Int(Mode.kernel.rawValue), "\(track) at \(sl.start)")
            #expect(atStart.map { $0.ts == sl.start } == true, "\(track): KERNEL sampled at the interrupt's entry")
            #expect(atEnd?.ts == sl.end && atEnd?.mode != Int(Mode.kernel.rawValue), "\(track): the mode after exit at \(sl.end)")
            // Nothing in between but KERNEL.
            #expect(!s.contains { $0.ts > sl.start && $0.ts < sl.end }, "\(track): a sample inside the handler")
        }
    }
    #expect(interrupts > 0 || policy == .cpuflags)
}

/// Item 6: a window that does not start at 0 gives every isolated CPU's counter track
/// its value at the window's start.
@Test func windowStartHasEveryIsolatedCPUsMode() throws {
    let mc = busyMachine()
    let from: Int64 = 50_000_000, to: Int64 = 60_000_000
    let run = try tracedRun(mc, [.cpuflagsAdaptive], window: from...to)
    let samples = modeSamples(run.events)
    let iso = try mc.validate().cpus
    for c in iso {
        let first = samples["1/\(c)"]?.first
        #expect(first?.ts == from, "cpu\(c)")
    }
    for e in run.events where e["ph"] as? String != "M" {
        let ts = Int64(((e["ts"] as! Double) * 1000).rounded())
        if e["ph"] as? String != "e" { #expect(ts >= from && ts <= to) }
    }
}

/// Item 6: a window at or after the run's end is refused, naming the option, the value
/// and the run's length.
@Test func windowPastTheEndIsRefused() throws {
    var mc = MachineConfig()
    mc.seconds = 0.5
    #expect(throws: Never.self) { try TraceWindow.check(0...50_000_000, text: "0-50", config: mc) }
    do {
        try TraceWindow.check(500_000_000...600_000_000, text: "500-600", config: mc)
        Issue.record("a window starting at the end was accepted")
    } catch {
        let m = "\(error)"
        #expect(m.contains("--trace-window") && m.contains("500-600") && m.contains("500 ms"), "\(m)")
    }
}

/// Item 20: one budget for the whole file, streamed: the file parses, has its metadata,
/// holds at most the budget, and says where it stopped.
@Test func traceBudgetIsForTheWholeFile() throws {
    let cap = 3_000
    let run = try tracedRun(busyMachine(), [.linux, .cpuflagsLazy, .cpuflags], eventsMax: cap)
    #expect(run.events.count <= cap)
    #expect(run.events.count >= cap - 2, "the budget was used")
    #expect(run.writer.truncated)
    // It stopped in one policy; the ones before it are in the file whole.
    let stopped = try #require(run.writer.stoppedIn)
    let named = run.events.filter { $0["name"] as? String == "process_name" }.compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
    #expect(named.last == stopped.rawValue)
    let names = run.events.filter { $0["ph"] as? String == "M" }.map { $0["name"] as! String }
    #expect(names.contains("process_name") && names.contains("thread_name"))
    // Under the full budget the three policies each have their process.
    let full = try tracedRun(busyMachine { $0.seconds = 0.02 }, [.linux, .cpuflagsLazy, .cpuflags])
    #expect(!full.writer.truncated)
    let processes = full.events.filter { $0["name"] as? String == "process_name" }.compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
    #expect(processes == ["linux", "cpuflags-lazy", "cpuflags"])
    #expect(full.events.count == full.writer.eventsWritten)
}

/// Item 20: the simulation keeps no trace events: it has no array of them, whatever it
/// streams.
@Test func simulationKeepsNoTraceEvents() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("cpuflags-trace-\(UUID().uuidString).json").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    let writer = try ChromeTraceWriter(path: path, isolated: Set(2...5), flushBytes: 4096)
    let sim = try Simulation(config: busyMachine(), policy: .linux)
    sim.traceWindowNs = 0...Simulation.lengthNs(of: sim.config)
    sim.traceSink = writer
    writer.beginProcess(.linux)
    _ = sim.run()
    try writer.finish()
    for child in Mirror(reflecting: sim).children {
        #expect(!(child.value is [TraceEvent]), "\(child.label ?? "?") holds trace events")
    }
    #expect(writer.eventsWritten > 10_000)
    // Streamed: the file was written as the run went, not only at the end.
    let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    #expect(size > 4096)
    #expect(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) is [String: Any])
}

@Test func traceFileErrorsNameTheFile() {
    do {
        _ = try ChromeTraceWriter(path: "/nonexistent-dir/t.json", isolated: [])
        Issue.record("opened a file in a missing directory")
    } catch {
        #expect("\(error)".contains("/nonexistent-dir/t.json") && "\(error)".contains("No such file"), "\(error)")
    }
}

// MARK: Charts

func parsesAsXML(_ svg: String) -> Bool {
    #if canImport(FoundationXML) || os(macOS)
    return (try? XMLDocument(xmlString: svg, options: [])) != nil
    #else
    return true
    #endif
}

/// Item 17/18: both charts are well-formed SVG with the title, round tick labels,
/// every policy by name, one colour per policy across charts, visible small bars.
@Test func chartsReadWell() throws {
    let mc = MachineConfig()
    let results = try Policy.allCases.map { try Simulation(config: mc, policy: $0).run() }
    let title = "64 CPUs, isolated 8-63, 1.0 s, seed 1"
    let comparison = Charts.comparison(results, title: title)
    let sweepPolicies: [Policy] = [.linux, .cpuflags, .cpuflagsLazy]
    var table: [[PolicyResult]] = []
    let values = [0.0, 100, 1000]
    for v in values {
        let c = try mc.setting("workload.isolatedSyscallsPerSec", to: v)
        table.append(try sweepPolicies.map { try Simulation(config: c, policy: $0).run() })
    }
    let sweep = Charts.sweep(parameter: "workload.isolatedSyscallsPerSec", values: values, results: table, title: title)
    for svg in [comparison, sweep] {
        #expect(parsesAsXML(svg))
        #expect(svg.contains(">\(title)<"), "the title is on every chart")
        #expect(svg.contains("class=\"tick\""))
        #expect(svg.contains(">0</text>"), "the axis starts at a 0 tick")
        #expect(svg.contains("entry ns/rt: work the entry ran"), "entry ns/rt is explained")
        #expect(svg.contains("model input"), "inputs are marked")
    }
    for p in Policy.allCases { #expect(comparison.contains(">\(p.rawValue)<"), "\(p)") }
    for p in sweepPolicies {
        #expect(sweep.contains(">\(p.rawValue) ("), "\(p) in the legend")
        let c = Charts.policyColour(p)
        // The same colour for the policy in both charts: its name in the comparison,
        // its line in the sweep.
        #expect(comparison.contains("fill=\"\(c)\" font-weight=\"bold\">\(p.rawValue)<"), "\(p)")
        #expect(sweep.contains("stroke=\"\(c)\" stroke-width=\"3\"/><text x=\"") && sweep.contains("stroke=\"\(c)\" stroke-width=\"2\""), "\(p)")
    }
    #expect(Set(Policy.allCases.map(Charts.policyColour)).count == Policy.allCases.count, "one colour per policy")
    // The tick labels of the interruptions axis are round values covering the data.
    let maxIrq = results.map(\.interruptionsPerCPUPerSecond).max()!
    let ticks = Charts.ticks(upTo: maxIrq)
    #expect(ticks.last! >= maxIrq && ticks.count >= 3)
    for t in ticks { #expect(comparison.contains(">\(Charts.tickLabel(t))</text>")) }
    // Small values stay visible: every non-zero cause segment is at least 2 px wide
    // (cpuflags' 0.1/s next to cpuflags-lazy's 53/s).
    let widths = try Regex(##"width="([0-9.]+)" height="[0-9.]+" fill="#[0-9a-f]+"><title>"##)
    var segments = 0
    for m in comparison.matches(of: widths) {
        segments += 1
        #expect(Double(m.output[1].substring!)! >= Charts.minimumBarPx)
    }
    #expect(segments > 10)
    #expect(results.first { $0.policy == .cpuflags }!.interruptionsPerCPUPerSecond < 1)
    // The sweep plots what depends on the parameter, not atomics/rt.
    #expect(sweep.contains("time lost") && sweep.contains("interruptions per isolated CPU") && sweep.contains("entry overhead"))
    #expect(!sweep.contains(">atomics per user round trip<"))
}

@Test func ticksAreRound() {
    #expect(Charts.ticks(upTo: 54) == [0, 20, 40, 60])
    #expect(Charts.ticks(upTo: 700) == [0, 200, 400, 600, 800])
    #expect(Charts.ticks(upTo: 1234) == [0, 500, 1000, 1500])
    let small = Charts.ticks(upTo: 0.3)
    #expect(small.count == 4 && abs(small[1] - 0.1) < 1e-12 && small.last! >= 0.3)
    #expect(Charts.ticks(upTo: 0).last! > 0, "an empty chart still has an axis")
    #expect(Charts.tickLabel(0.1) == "0.1" && Charts.tickLabel(200) == "200")
}
