import ArgumentParser
import CPUFlags
import Explorer
import Foundation
import Simulator
import TextTable

struct CPUFlagsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpuflags",
        abstract: "Implement, prove and measure the per-CPU mode + deferred work design (cpu_flags).",
        subcommands: [Verify.self, Scenarios.self, Mutants.self, Simulate.self],
        defaultSubcommand: Verify.self)
}

extension MemoryModel: ExpressibleByArgument {}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explore every interleaving of the standard scenarios and check the invariants.",
        discussion: """
            Runs each scenario under each memory model and prints states, executions, time \
            and a verdict per invariant. Exit status 1 on any violation or incomplete run, \
            64 on bad arguments. Memory: about 1 KB per state (the default --states-max \
            of 5,000,000 needs up to ~4-5 GB).
            """)

    @Option(name: .long, help: "Run only this scenario (see `cpuflags scenarios`). Repeatable.")
    var scenario: [String] = []

    @Option(name: .long, help: "Memory model: sc, tso or pso. Repeatable. Default: sc and tso.")
    var model: [MemoryModel] = []

    @Option(name: .long, help: "Resize each scenario to this many CPUs (2 to 4); extra CPUs copy CPU 1's program.")
    var cpus: Int?

    @Option(name: .long, help: "Apply a named wrong variant of the protocol (see `cpuflags mutants`). Repeatable.")
    var mutation: [String] = []

    @Option(name: .long, help: "Stop after this many distinct states per run.")
    var statesMax: Int = Limits().statesMax

    @Option(name: .long, help: "Longest execution, in steps.")
    var depthMax: Int = Limits().depthMax

    @Option(name: .long, help: "Store-buffer entries per CPU under TSO/PSO.")
    var storeBufferMax: Int = Limits().storeBufferDepthMax

    @Option(name: .long, help: "NMIs each isolated CPU (one whose program has no housekeeping op) may receive, overriding the scenario (0 to 3).")
    var nmis: Int?

    @Flag(name: .long, help: "Print JSON (reports and counterexamples) instead of tables.")
    var json = false

    @Flag(name: .long, help: "Print no progress on stderr.")
    var quiet = false

    func validate() throws {
        for s in scenario where Scenario.named(s) == nil {
            throw ValidationError("unknown scenario '\(s)'; expected one of: \(Scenario.standard.map(\.name).joined(separator: ", "))")
        }
        for m in mutation where !Mutations.named.contains(where: { $0.name == m }) {
            throw ValidationError("unknown mutation '\(m)'; expected one of: \(Mutations.named.map(\.name).joined(separator: ", "))")
        }
        if let c = cpus, !(2...4).contains(c) { throw ValidationError("--cpus \(c): expected 2 to 4") }
        if let n = nmis, !(0...3).contains(n) { throw ValidationError("--nmis \(n): expected 0 to 3") }
        if statesMax < 1 { throw ValidationError("--states-max \(statesMax): expected at least 1") }
        if !(1...10_000).contains(depthMax) { throw ValidationError("--depth-max \(depthMax): expected 1 to 10000") }
        if !(1...16).contains(storeBufferMax) { throw ValidationError("--store-buffer-max \(storeBufferMax): expected 1 to 16") }
    }

    func run() throws {
        var limits = Limits()
        limits.statesMax = statesMax
        limits.depthMax = depthMax
        limits.storeBufferDepthMax = storeBufferMax
        let models = model.isEmpty ? [MemoryModel.sc, .tso] : model
        var mutations = Mutations()
        for m in mutation { mutations.insert(Mutations.named.first { $0.name == m }!.mutation) }
        var scenarios = scenario.isEmpty ? Scenario.standard : scenario.map { Scenario.named($0)! }
        scenarios = scenarios.map { s in
            var s = s
            if let c = cpus { s = s.withCPUs(c) }
            if let n = nmis { s.nmis = s.programs.map { $0.contains(where: \.isHousekeeping) ? 0 : n } }
            s.config.mutations = mutations
            return s
        }
        for s in scenarios {
            if let p = s.problem() { throw ValidationError(p) }
        }

        var reports: [Report] = []
        let total = ContinuousClock.now
        for s in scenarios {
            for m in models {
                let label = "\(s.name) \(m.description)"
                let explorer = Explorer(scenario: s, model: m, limits: limits) { states, frontier, depth in
                    if !quiet {
                        FileHandle.standardError.write(
                            "  \(label): \(states) states, frontier \(frontier), depth \(depth)\n".data(using: .utf8)!)
                    }
                }
                let r = explorer.run()
                reports.append(r)
                if !quiet && !json {
                    FileHandle.standardError.write("  \(label): done, \(r.states) states\n".data(using: .utf8)!)
                }
            }
        }
        let elapsed = (ContinuousClock.now - total).seconds
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let out = VerifyOutput(reports: reports, seconds: elapsed, passed: reports.allSatisfy(\.passed))
            print(String(data: try enc.encode(out), encoding: .utf8)!)
        } else {
            let table = TextTable<Report> { r in
                [Column(title: "scenario", value: r.scenario), Column(title: "model", value: r.model.description),
                 Column(title: "states", value: r.states, align: .right),
                 Column(title: "execs", value: r.executions, align: .right),
                 Column(title: "trans", value: r.transitions, align: .right),
                 Column(title: "depth", value: r.depth, align: .right),
                 Column(title: "time", value: String(format: "%.2fs", r.seconds), align: .right),
                 Column(title: "states/s", value: String(format: "%.0f", r.statesPerSecond), align: .right)]
                    + Self.invariantColumns.map { name, inv in
                        Column(title: name, value: ["ok": "ok", "VIOLATED": "FAIL"][r.invariants[inv.rawValue] ?? ""] ?? "?", align: .right)
                    }
            }
            print(table.string(for: reports) ?? "", terminator: "")
            for r in reports where r.incomplete != nil { print("incomplete: \(r.scenario) \(r.model.description): \(r.incomplete!)") }
            print("")
            print("invariants: work = no lost work, tlb = no stale translation, text = no stale text, pin = pin exclusion,")
            print("  rcu = RCU safety, defer = deferral is real, prog = progress, assert = the core's own assertions;")
            print("  ok / FAIL / ? (not reached: the run stopped first)")
            print("")
            print("invariants over all runs:")
            for inv in Violation.Invariant.allCases where inv != .litmusOutcome {
                let bad = reports.filter { $0.violation?.invariant == inv }
                let line = bad.isEmpty ? "ok in all \(reports.count) runs" : "VIOLATED in " + bad.map { "\($0.scenario) \($0.model.description)" }.joined(separator: ", ")
                print("  \(inv.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)) \(line)")
            }
            for r in reports {
                if let cx = r.counterexample {
                    print("")
                    print(cx.timeline())
                }
            }
            let failed = reports.filter { !$0.passed }.count
            print(String(format: "%d runs, %d failed, %.1fs total", reports.count, failed, elapsed))
        }
        if !reports.allSatisfy(\.passed) { throw ExitCode(1) }
    }

    /// Short column names for the invariants of BRIEF §4.
    static let invariantColumns: [(String, Violation.Invariant)] = [
        ("work", .noLostWork), ("tlb", .noStaleTranslation), ("text", .noStaleText), ("pin", .pinExclusion),
        ("rcu", .rcuSafety), ("defer", .deferralIsReal), ("prog", .progress), ("assert", .coreAssertion),
    ]

}

struct VerifyOutput: Codable {
    var reports: [Report]
    var seconds: Double
    var passed: Bool
}

struct Scenarios: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the standard scenarios and their programs.")
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        if json {
            let list = Scenario.standard.map { s in
                ["name": s.name, "summary": s.summary, "covers": s.covers.map(String.init).joined(separator: ","),
                 "programs": s.programs.enumerated().map { "cpu\($0.offset)(\(s.start[$0.offset])): " + $0.element.map(\.description).joined(separator: " ") }.joined(separator: "; ")]
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(data: try enc.encode(list), encoding: .utf8)!)
            return
        }
        for s in Scenario.standard {
            print("\(s.name): \(s.summary)")
            var extras: [String] = []
            if !s.pti { extras.append("PTI off") }
            if s.config.exitPolicy != .strict { extras.append("exit policy \(s.config.exitPolicy.rawValue)") }
            if s.config.pinProtocol != .flagInWord { extras.append("pin protocol \(s.config.pinProtocol.rawValue)") }
            if s.nmis.contains(where: { $0 > 0 }) { extras.append("NMIs \(s.nmis) doing \(s.nmiBody.rawValue)") }
            if s.irqs.contains(where: { $0 > 0 }) { extras.append("timer IRQs \(s.irqs)") }
            if !extras.isEmpty { print("  " + extras.joined(separator: "; ")) }
            for (c, p) in s.programs.enumerated() {
                print("  cpu\(c) starts \(s.start[c]): " + p.map(\.description).joined(separator: ", "))
            }
        }
    }
}

struct Mutants: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the named wrong variants of the protocol; with --run, show the explorer rejecting each.")

    @Flag(name: .customLong("run"), help: "Run each mutant in its scenario under every model: rejected under the one that catches it and weaker ones, passing under stronger ones.")
    var runThem = false

    @Flag(name: .long, help: "With --run: print each counterexample timeline.")
    var timelines = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        if !runThem {
            if json {
                let rows = MutantCase.catalog.map { ["name": $0.name, "summary": $0.summary, "scenario": $0.scenario,
                                                     "caughtUnder": $0.caughtUnder.rawValue, "invariant": $0.invariant.rawValue] }
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(data: try enc.encode(rows), encoding: .utf8)!)
                return
            }
            for m in MutantCase.catalog {
                print("\(m.name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(m.summary)")
                print("\(String(repeating: " ", count: 27))caught in \(m.scenario) under \(m.caughtUnder.description) (\(m.invariant.rawValue))")
            }
            return
        }
        var ok = true
        var reports: [Report] = []
        if !json { print("mutant                     scenario       SC        TSO       PSO       broken invariant") }
        for m in MutantCase.catalog {
            var cells: [String] = []
            var broken = ""
            for model in MemoryModel.allCases {
                let r = m.run(model: model)
                reports.append(r)
                let expectCaught = MemoryModel.allCases.firstIndex(of: model)! >= MemoryModel.allCases.firstIndex(of: m.caughtUnder)!
                let caught = r.violation != nil
                if caught != expectCaught { ok = false }
                cells.append(caught ? "rejected" : "passes")
                if let v = r.violation, model == m.caughtUnder {
                    broken = v.invariant.rawValue
                    if timelines && !json, let cx = r.counterexample { print(cx.timeline()) }
                }
            }
            if !json {
                print([m.name.padding(toLength: 26, withPad: " ", startingAt: 0), m.scenario.padding(toLength: 14, withPad: " ", startingAt: 0)]
                      .joined(separator: " ") + " " + cells.map { $0.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined(separator: " ") + " " + broken)
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(data: try enc.encode(reports), encoding: .utf8)!)
        } else {
            print(ok ? "every mutant rejected under the model that catches it and the weaker ones, and passes under the stronger ones" : "UNEXPECTED: a mutant was caught or missed against its catalog entry")
        }
        if !ok { throw ExitCode(1) }
    }
}

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
    @Option(name: .long, help: "Trace window in simulated ms, FROM-TO.")
    var traceWindow: String = "0-50"
    @Option(name: .long, help: "Vary one parameter: PARAM=a,b,c (PARAM a config path such as workload.isolatedSyscallsPerSec).")
    var sweep: String?

    func parseWindow() throws -> ClosedRange<Int64> {
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
                     Column(title: "atomics/rt", value: String(format: "%.2f", row.r.atomicsPerRoundTrip), align: .right),
                     Column(title: "entry ns/rt", value: String(format: "%.0f", row.r.entryOverheadNsPerRoundTrip), align: .right),
                     Column(title: "lost us/cpu/s", value: String(format: "%.1f", row.r.lostNsPerCPUPerSecond / 1000), align: .right)]
                }
                print(t.string(for: rows) ?? "", terminator: "")
            }
            if let path = svg {
                try write(Charts.sweep(parameter: param, values: values, results: table).data(using: .utf8)!, to: path, what: "svg")
            }
            return
        }
        var results: [PolicyResult] = []
        var traces: [(policy: Policy, events: [TraceEvent])] = []
        for p in policies {
            let sim: Simulation
            do { sim = try Simulation(config: mc, policy: p) } catch { throw ValidationError("\(error)") }
            if trace != nil { sim.traceWindowNs = window }
            sim.progress = { simulatedNs in
                FileHandle.standardError.write(String(format: "  %@: %.3f of %.3f simulated s\n", p.rawValue, Double(simulatedNs) / 1e9, mc.seconds).data(using: .utf8)!)
            }
            results.append(sim.run())
            traces.append((p, sim.traceEvents))
            if sim.traceTruncated {
                FileHandle.standardError.write("\(p.rawValue): the trace stopped at traceEventsMax = \(mc.traceEventsMax) events; narrow --trace-window\n".data(using: .utf8)!)
            }
        }
        if let path = trace {
            let iso = Set((try? CPUList(parsing: mc.isolated, cpuCount: mc.cpus).cpus) ?? [])
            try write(ChromeTrace.render(traces, isolated: iso, cpus: mc.cpus), to: path, what: "trace")
        }
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

enum SimulationTable {
    static func us(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }

    static func render(_ results: [PolicyResult]) -> String {
        func f(_ format: String, _ v: Double) -> String { String(format: format, v) }
        let main = TextTable<PolicyResult> { r in
            let c = r.interruptionCost
            return [
                Column(title: "policy", value: r.policy.rawValue),
                Column(title: "irq/cpu", value: f("%.1f", Double(r.interruptions) / Double(max(r.isolatedCPUs, 1))), align: .right),
                Column(title: "irq/cpu/s", value: f("%.1f", r.interruptionsPerCPUPerSecond), align: .right),
                Column(title: "lost us/cpu/s", value: f("%.1f", r.lostNsPerCPUPerSecond / 1000), align: .right),
                Column(title: "cost p50 us", value: us(c.p50), align: .right),
                Column(title: "p99", value: us(c.p99), align: .right),
                Column(title: "p99.99", value: us(c.p9999), align: .right),
                Column(title: "max", value: us(c.max), align: .right),
                Column(title: "atomics/rt", value: f("%.2f", r.atomicsPerRoundTrip), align: .right),
                Column(title: "entry ns/rt", value: f("%.0f", r.entryOverheadNsPerRoundTrip), align: .right),
                Column(title: "req p50 us", value: us(r.requesterLatency.p50), align: .right),
                Column(title: "req p99", value: us(r.requesterLatency.p99), align: .right),
                Column(title: "gp p50 ms", value: f("%.2f", Double(r.gracePeriodNormal.p50) / 1e6), align: .right),
                Column(title: "exp p50 us", value: us(r.gracePeriodExpedited.p50), align: .right),
            ]
        }
        let causes = Set(results.flatMap { $0.interruptionsByCause.keys }).sorted()
        let byCause = TextTable<PolicyResult> { r in
            [Column(title: "policy", value: r.policy.rawValue)]
                + causes.map { Column(title: $0, value: r.interruptionsByCause[$0] ?? 0, align: .right) }
        }
        return (main.string(for: results) ?? "")
            + "\ninterruptions of isolated CPUs by cause (all isolated CPUs together):\n"
            + (byCause.string(for: results) ?? "")
    }
}

CPUFlagsCommand.main()
