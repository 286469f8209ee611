import ArgumentParser
import CPUFlags
import Explorer
import Foundation
import Simulator
import TextTable

extension Policy: ExpressibleByArgument {}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate a many-CPU machine under each policy and compare what isolated CPUs pay.",
        discussion: """
            Housekeeping CPUs generate kernel TLB flushes, text patches, RCU grace periods, \
            user-mm shootdowns, wakeups, cache drains and page-table-freeing syncs at the \
            workload's rates; every policy sees the same seed. Prints the seed; the same \
            seed gives the same numbers.
            """)

    @Option(name: .long, help: "CPUs in the machine.") var cpus: Int?
    @Option(name: .long, help: "Isolated CPUs as a kernel cpulist, e.g. 8-63 (nohz_full= syntax).") var isolated: String?
    @Option(name: .long, help: "Simulated seconds.") var seconds: Double?
    @Option(name: .long, help: "Random seed (printed; replays the run exactly).") var seed: UInt64?
    @Option(name: .long, help: "Syscalls per second of each isolated task.") var syscallsPerSec: Double?
    @Option(name: .long, help: "Idle periods per second of each isolated CPU (1 ms each unless the config says otherwise).")
    var idlePerSec: Double?
    @Option(name: .long, help: "Policy to run (repeatable; default all).")
    var policy: [Policy] = []
    @Option(name: .long, help: "JSON file with any MachineConfig fields (cpus, isolated, seconds, seed, workload.*, costs.*).")
    var config: String?
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Write an SVG chart comparing the policies (or plotting the sweep) to this file.")
    var svg: String?
    @Option(name: .long, help: "Write a Chrome trace-event JSON file (open in ui.perfetto.dev) of the trace window.")
    var trace: String?
    @Option(name: .long, help: "Trace window in simulated ms, FROM-TO (default 0-50; needs --trace).")
    var traceWindow: String?
    @Option(name: .long, help: "Vary one parameter: PARAM=a,b,c (PARAM a config path such as workload.isolatedSyscallsPerSec).")
    var sweep: String?

    func validate() throws {
        if traceWindow != nil && trace == nil { throw ValidationError("--trace-window needs --trace") }
    }

    func parseWindow() throws -> ClosedRange<Int64> {
        let traceWindow = self.traceWindow ?? "0-50"
        let parts = traceWindow.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]), a.isFinite, b.isFinite,
              a >= 0, b > a, b <= 3_600_000 else {
            throw ValidationError("--trace-window '\(traceWindow)': expected FROM-TO in ms with 0 <= FROM < TO <= 3600000, e.g. 0-50")
        }
        return Int64(a * 1e6)...Int64(b * 1e6)
    }

    func parseSweep(_ text: String) throws -> (String, [Double]) {
        let kv = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2 else { throw ValidationError("--sweep '\(text)': expected PARAM=a,b,c") }
        var values: [Double] = []
        for v in kv[1].split(separator: ",", omittingEmptySubsequences: false) {
            guard let d = Double(v), d.isFinite else {
                throw ValidationError("--sweep '\(text)': '\(v)' is not a number; expected PARAM=a,b,c")
            }
            values.append(d)
        }
        guard values.count <= 64 else { throw ValidationError("--sweep: at most 64 values") }
        return (kv[0], values)
    }

    func write(_ data: Data, to path: String, what: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw ValidationError("--\(what) \(path): cannot write the file")
        }
    }

    func run() throws {
        var mc = MachineConfig()
        do {
            if let path = config { mc = try MachineConfig.load(path: path) }
        } catch { throw ValidationError("--config \(error)") }
        if let v = cpus { mc.cpus = v }
        if let v = isolated { mc.isolated = v }
        if let v = seconds { mc.seconds = v }
        if let v = seed { mc.seed = v }
        if let v = syscallsPerSec {
            guard v >= 0 else { throw ValidationError("--syscalls-per-sec \(v): expected 0 or more") }
            mc.workload.isolatedSyscallsPerSec = v
        }
        if let v = idlePerSec {
            guard v >= 0 else { throw ValidationError("--idle-per-sec \(v): expected 0 or more") }
            mc.workload.isolatedIdlePeriodsPerSec = v
        }
        if isolated == nil, (try? CPUList(parsing: mc.isolated, cpuCount: mc.cpus)) == nil || (mc.cpus > 64 && config == nil) {
            // No --isolated given and the default (or the config's list) does not fit
            // this machine: keep CPUs 0-7 (or CPU 0 on small machines) for housekeeping.
            mc.isolated = mc.cpus > 8 ? "8-\(mc.cpus - 1)" : "1-\(mc.cpus - 1)"
        }
        let policies = policy.isEmpty ? Policy.allCases : policy
        let window = try parseWindow()
        if trace != nil { do { try TraceWindow.check(window, text: traceWindow ?? "0-50", config: mc) } catch { throw ValidationError("\(error)") } }
        if sweep != nil && trace != nil { throw ValidationError("--trace cannot be combined with --sweep: trace one value at a time") }
        if let sw = sweep {
            let (param, values) = try parseSweep(sw)
            var table: [[PolicyResult]] = []
            for v in values {
                let c: MachineConfig
                do { c = try mc.setting(param, to: v) } catch { throw ValidationError("\(error)") }
                var row: [PolicyResult] = []
                for p in policies {
                    do { row.append(try Simulation(config: c, policy: p).run()) } catch { throw ValidationError("\(param)=\(v): \(error)") }
                }
                table.append(row)
            }
            if json {
                struct Out: Codable { var parameter: String; var values: [Double]; var results: [[PolicyResult]] }
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(data: try enc.encode(Out(parameter: param, values: values, results: table)), encoding: .utf8)!)
            } else {
                print("machine: \(mc.cpus) CPUs, isolated \(mc.isolated), \(mc.seconds) s simulated, seed \(mc.seed); sweep of \(param)")
                print("")
                struct Row { var value: Double; var r: PolicyResult }
                let rows = policies.indices.flatMap { p in values.indices.map { Row(value: values[$0], r: table[$0][p]) } }
                let t = TextTable<Row> { row in
                    [Column(title: "policy", value: row.r.policy.rawValue),
                     Column(title: param, value: String(format: "%g", row.value), align: .right),
                     Column(title: "irq/cpu/s", value: String(format: "%.2f", row.r.interruptionsPerCPUPerSecond), align: .right),
                     Column(title: "atomics/rt", value: SimulationTable.perRoundTrip(row.r.atomicsPerRoundTrip, "%.2f"), align: .right),
                     Column(title: "entry ns/rt", value: SimulationTable.perRoundTrip(row.r.entryOverheadNsPerRoundTrip, "%.0f"), align: .right),
                     Column(title: "lost us/cpu/s", value: String(format: "%.1f", row.r.lostNsPerCPUPerSecond / 1000), align: .right)]
                }
                print(t.string(for: rows) ?? "", terminator: "")
            }
            if let path = svg {
                let title = "\(mc.cpus) CPUs, isolated \(mc.isolated), \(mc.seconds) s, seed \(mc.seed)"
                try write(Charts.sweep(parameter: param, values: values, results: table, title: title).data(using: .utf8)!, to: path, what: "svg")
            }
            return
        }
        var results: [PolicyResult] = []
        // The trace is streamed to the file as the runs go, under one budget for the file.
        var writer: ChromeTraceWriter?
        if let path = trace {
            let iso = Set((try? CPUList(parsing: mc.isolated, cpuCount: mc.cpus).cpus) ?? [])
            do { writer = try ChromeTraceWriter(path: path, isolated: iso, eventsMax: mc.traceEventsMax) } catch { throw ValidationError("--trace \(error)") }
        }
        for p in policies {
            let sim: Simulation
            do { sim = try Simulation(config: mc, policy: p) } catch { throw ValidationError("\(error)") }
            if let w = writer {
                sim.traceWindowNs = window
                sim.traceSink = w
                w.beginProcess(p)
            }
            sim.progress = { simulatedNs in
                FileHandle.standardError.write(String(format: "  %@: %.3f of %.3f simulated s\n", p.rawValue, Double(simulatedNs) / 1e9, mc.seconds).data(using: .utf8)!)
            }
            results.append(sim.run())
            if let w = writer, sim.traceTruncated {
                FileHandle.standardError.write(String(format: "%@: the trace reached its budget of %d events for the whole file (traceEventsMax) at %.3f simulated ms; the rest of this policy and the policies after it are not in it; narrow --trace-window\n",
                                                      p.rawValue, w.eventsMax, (w.stoppedAtUs ?? 0) / 1000).data(using: .utf8)!)
            }
        }
        if let w = writer { do { try w.finish() } catch { throw ValidationError("--trace \(error)") } }
        if let path = svg {
            let title = "\(mc.cpus) CPUs, isolated \(mc.isolated), \(mc.seconds) s, seed \(mc.seed)"
            try write(Charts.comparison(results, title: title).data(using: .utf8)!, to: path, what: "svg")
        }
        if json {
            struct Out: Codable { var config: MachineConfig; var results: [PolicyResult] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(data: try enc.encode(Out(config: mc, results: results)), encoding: .utf8)!)
        } else {
            print("machine: \(mc.cpus) CPUs, isolated \(mc.isolated), \(mc.seconds) s simulated, seed \(mc.seed) (replay: --seed \(mc.seed))")
            print("")
            print(SimulationTable.render(results))
        }
        for r in results where r.incomplete != nil {
            FileHandle.standardError.write("\(r.policy.rawValue): incomplete: \(r.incomplete!)\n".data(using: .utf8)!)
        }
        if results.contains(where: { $0.incomplete != nil }) && !results.contains(where: { $0.violation != nil }) {
            throw ExitCode(1)
        }
        if let bad = results.first(where: { $0.violation != nil }) {
            FileHandle.standardError.write("invariant violated under \(bad.policy.rawValue): \(bad.violation!)\n".data(using: .utf8)!)
            FileHandle.standardError.write(("the events that led to it:\n" + (bad.violationEvents ?? []).joined(separator: "\n") + "\n").data(using: .utf8)!)
            throw ExitCode(1)
        }
    }
}
