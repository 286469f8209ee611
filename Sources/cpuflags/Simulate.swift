import ArgumentParser
import CPUFlags
import Explorer
import Foundation
import Simulator
import TextTable
import Traces

extension Policy: ExpressibleByArgument {}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate a many-CPU machine under each policy and compare what isolated CPUs pay.",
        discussion: """
            Housekeeping CPUs generate kernel TLB flushes, text patches, RCU grace periods, \
            user-mm shootdowns, wakeups, cache drains and page-table-freeing syncs at the \
            workload's rates; every policy sees the same seed. Prints the seed; the same \
            seed gives the same numbers. Unless --isolated or a config's "isolated" gives \
            them, the isolated CPUs are 8 to N-1 (1 to N-1 on machines of 8 CPUs or fewer).
            """)

    // The numbers are read as text with `.unconditional` parsing, so that `--cpus -1` is
    // the value -1 (not a missing value before an option "-1"), and checked by the same
    // rule as the config file's field (`MachineConfig.problem`), which names the range.
    @Option(name: .long, parsing: .unconditional, help: "CPUs in the machine (2 to \(SimulatorLimits.cpusMax)).")
    var cpus: String?
    @Option(name: .long, parsing: .unconditional, help: "Isolated CPUs as a kernel cpulist, e.g. 8-63 or 8-N:2/4 (nohz_full= syntax).")
    var isolated: String?
    @Option(name: .long, parsing: .unconditional, help: "Simulated seconds (\(SimulatorLimits.secondsMin) to \(Int(SimulatorLimits.secondsMax))).")
    var seconds: String?
    @Option(name: .long, parsing: .unconditional, help: "Random seed (printed; replays the run exactly).")
    var seed: String?
    @Option(name: .long, parsing: .unconditional, help: "Syscalls per second of each isolated task.")
    var syscallsPerSec: String?
    @Option(name: .long, parsing: .unconditional, help: "Idle periods per second of each isolated CPU (1 ms each unless the config says otherwise).")
    var idlePerSec: String?
    @Option(name: .long, help: "Policy to run (repeatable; default all; a policy given twice runs once).")
    var policy: [Policy] = []
    @Option(name: .long, help: "JSON file with any MachineConfig fields (cpus, isolated, seconds, seed, ctDeferKernelTLB, workload.*, costs.*).")
    var config: String?
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Flag(name: .long, help: "List the policies, what each does and where its atomics per round trip come from (with --json as data), and exit.")
    var listPolicies = false
    @Option(name: .long, help: "Write an SVG chart comparing the policies (or plotting the sweep) to this file.")
    var svg: String?
    @Option(name: .long, help: "Write a Chrome trace-event JSON file (open in ui.perfetto.dev) of the trace window.")
    var trace: String?
    @Option(name: .long, parsing: .unconditional, help: "Trace window in simulated ms, FROM-TO (default 0-50; needs --trace).")
    var traceWindow: String?
    @Option(name: .long, help: "Derive the workload's rates from a recording (ftrace text, .xz, .gz, .dat): what each isolated CPU received and did per second; printed. Options given explicitly win.")
    var workloadFrom: String?
    @Option(name: .long, help: ArgumentHelp("Vary a parameter: PARAM=a,b,c (PARAM a config path such as workload.isolatedSyscallsPerSec; booleans as 0,1). Repeatable: each combination of the values is a row (at most \(SimulatorLimits.sweepCombinationsMax)).", valueName: "param=values"))
    var sweep: [String] = []

    // MARK: Plan

    struct Sweep {
        var parameter: String
        var values: [Double]
    }

    /// One row of a sweep: its values (one per sweep), its machine and isolated CPUs.
    struct Row {
        var values: [Double]
        var config: MachineConfig
        var isolated: CPUList
    }

    /// Everything a run needs, checked. Built by `validate()`, so that every error shows
    /// simulate's own usage and exits 64 before any work, and again by `run()` (it is
    /// cheap and deterministic; ArgumentParser keeps no state between the two).
    struct Plan {
        var config: MachineConfig
        var policies: [Policy]
        var window: ClosedRange<Int64>?
        var sweeps: [Sweep]
        /// Without a sweep, one row: the machine itself.
        var rows: [Row]
    }

    /// The options that set a config field, and the field.
    static let optionFields: [(option: String, path: String, keyPath: KeyPath<Simulate, String?>)] = [
        ("cpus", "cpus", \.cpus), ("seconds", "seconds", \.seconds),
        ("syscalls-per-sec", "workload.isolatedSyscallsPerSec", \.syscallsPerSec),
        ("idle-per-sec", "workload.isolatedIdlePeriodsPerSec", \.idlePerSec),
    ]

    static func expected(_ path: String) -> String {
        MachineConfig.fields.first { $0.path == path }.flatMap { MachineConfig.problem(field: $0, value: .nan) } ?? "a number"
    }

    func parseWindow(_ text: String) throws -> ClosedRange<Int64> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        // Bounded before converting: b <= 3.6e6 ms is 3.6e12 ns, far below Int64.max.
        guard parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]), a.isFinite, b.isFinite,
              a >= 0, b > a, b <= 3_600_000 else {
            throw ValidationError("--trace-window '\(text)': expected FROM-TO in ms with 0 <= FROM < TO <= 3600000, e.g. 0-50")
        }
        return Int64(a * 1e6)...Int64(b * 1e6)
    }

    func parseSweep(_ text: String) throws -> Sweep {
        let kv = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard kv.count == 2, !kv[0].isEmpty else { throw ValidationError("--sweep '\(text)': expected PARAM=a,b,c") }
        guard MachineConfig.sweepable.contains(kv[0]) else {
            throw ValidationError("--sweep '\(text)': unknown parameter '\(kv[0])'; expected one of: \(MachineConfig.sweepable.joined(separator: ", "))")
        }
        var values: [Double] = []
        for v in kv[1].split(separator: ",", omittingEmptySubsequences: false) {
            guard let d = Double(v), d.isFinite else {
                throw ValidationError("--sweep '\(text)': '\(v)' is not a number; expected PARAM=a,b,c")
            }
            values.append(d)
        }
        guard values.count <= SimulatorLimits.sweepValuesMax else {
            throw ValidationError("--sweep '\(kv[0])=...': \(values.count) values; expected at most \(SimulatorLimits.sweepValuesMax)")
        }
        return Sweep(parameter: kv[0], values: values)
    }

    func makePlan() throws -> Plan {
        var mc = MachineConfig()
        if let path = config {
            do { mc = try MachineConfig.load(path: path) } catch { throw ValidationError("--config \(error)") }
        }
        for (option, path, keyPath) in Simulate.optionFields {
            guard let text = self[keyPath: keyPath] else { continue }
            guard let d = Double(text) else { throw ValidationError("--\(option) '\(text)': expected \(Simulate.expected(path))") }
            do { mc = try mc.setting(path, to: d) } catch let e as FieldValueError {
                throw ValidationError("--\(option) \(text): expected \(e.expected)")
            } catch { throw ValidationError("--\(option) \(text): \(error)") }
        }
        if let text = seed {
            guard let s = UInt64(text) else { throw ValidationError("--seed \(text): expected a whole number from 0 to \(UInt64.max)") }
            mc.seed = s
        }
        if let text = isolated { mc.isolated = text }
        if let path = workloadFrom {
            let rates = try Simulate.rates(from: path)
            // The machine's isolated CPUs scale the targeted sources (wakeups, user-mm
            // shootdowns); a bad cpulist is reported below, by validate.
            let count = (try? mc.validate())?.cpus.count ?? 1
            var w = mc.workload
            rates.apply(to: &w, isolatedCount: count)
            // What the user set explicitly wins over the recording.
            if syscallsPerSec != nil { w.isolatedSyscallsPerSec = mc.workload.isolatedSyscallsPerSec }
            if idlePerSec != nil { w.isolatedIdlePeriodsPerSec = mc.workload.isolatedIdlePeriodsPerSec }
            mc.workload = w
        }

        // A policy given twice runs once, in the order first given.
        var policies: [Policy] = []
        for p in policy where !policies.contains(p) { policies.append(p) }
        if policies.isEmpty { policies = Policy.allCases }

        if traceWindow != nil && trace == nil { throw ValidationError("--trace-window needs --trace: it is used only with --trace FILE") }
        let window = try trace.map { _ in try parseWindow(traceWindow ?? "0-50") }
        if let w = window {
            // A window that starts at or after the run's end would give an empty trace.
            do { try TraceWindow.check(w, text: traceWindow ?? "0-50", config: mc) } catch { throw ValidationError("\(error)") }
        }

        let sweeps = try sweep.map(parseSweep)
        var rows: [Row] = []
        if sweeps.isEmpty {
            let list: CPUList
            do { list = try mc.validate() } catch {
                // A cpulist given by --isolated is named as the option the user typed.
                var message = "\(error)"
                if isolated != nil, message.hasPrefix("isolated: ") { message = "--isolated " + message.dropFirst("isolated: ".count) }
                throw ValidationError(message)
            }
            rows = [Row(values: [], config: mc, isolated: list)]
        } else {
            if trace != nil { throw ValidationError("--trace cannot be combined with --sweep: trace one value at a time") }
            if sweeps.count > 1 && svg != nil {
                throw ValidationError("--svg plots one swept parameter against the policies; give one --sweep with --svg, not \(sweeps.count)")
            }
            var seen = Set<String>()
            var combinations = 1
            for s in sweeps {
                guard seen.insert(s.parameter).inserted else {
                    throw ValidationError("--sweep: '\(s.parameter)' is swept twice; give its values in one --sweep \(s.parameter)=a,b,c")
                }
                if let o = Simulate.optionFields.first(where: { $0.path == s.parameter && self[keyPath: $0.keyPath] != nil }) {
                    throw ValidationError("--\(o.option) and --sweep \(s.parameter)=... both set \(s.parameter): give one")
                }
                combinations *= s.values.count
                guard combinations <= SimulatorLimits.sweepCombinationsMax else {
                    throw ValidationError("--sweep: \(sweeps.map { "\($0.values.count)" }.joined(separator: " x ")) combinations is more than \(SimulatorLimits.sweepCombinationsMax); sweep fewer values")
                }
            }
            // The cross product, the first sweep varying slowest; every row checked now,
            // so that a bad combination fails before the first row is simulated.
            var combos: [[Double]] = [[]]
            for s in sweeps { combos = combos.flatMap { c in s.values.map { c + [$0] } } }
            for combo in combos {
                var c = mc
                let at = zip(sweeps, combo).map { "\($0.parameter)=\(Simulate.show($1))" }.joined(separator: ", ")
                for (s, v) in zip(sweeps, combo) {
                    do { c = try c.setting(s.parameter, to: v) } catch let e as FieldValueError {
                        throw ValidationError("--sweep \(s.parameter)=\(Simulate.show(v)): expected \(e.expected)")
                    } catch { throw ValidationError("--sweep \(s.parameter)=\(Simulate.show(v)): \(error)") }
                }
                let list: CPUList
                do { list = try c.validate() } catch {
                    let given = c.isolated.map { " (isolated '\($0)' given explicitly)" } ?? ""
                    throw ValidationError("--sweep at \(at)\(given): \(error)")
                }
                rows.append(Row(values: combo, config: c, isolated: list))
            }
        }
        // Every output path is checked before any simulation (a bad --svg used to fail
        // after the whole run).
        for (option, path) in [("svg", svg), ("trace", trace)] {
            guard let path else { continue }
            do { try OutputFile.checkWritable(path) } catch { throw ValidationError("--\(option) \(error)") }
        }
        return Plan(config: mc, policies: policies, window: window, sweeps: sweeps, rows: rows)
    }

    mutating func validate() throws {
        if listPolicies {
            // A listing runs nothing: an option that would shape a run is a mistake.
            let given = [("--cpus", cpus != nil), ("--isolated", isolated != nil), ("--seconds", seconds != nil),
                         ("--seed", seed != nil), ("--syscalls-per-sec", syscallsPerSec != nil), ("--idle-per-sec", idlePerSec != nil),
                         ("--policy", !policy.isEmpty), ("--config", config != nil), ("--svg", svg != nil),
                         ("--trace", trace != nil), ("--trace-window", traceWindow != nil), ("--sweep", !sweep.isEmpty)]
                .filter(\.1).map(\.0)
            if !given.isEmpty { throw ValidationError("--list-policies runs nothing; drop \(given.joined(separator: ", "))") }
            return
        }
        _ = try makePlan()
    }

    func listThePolicies() throws {
        if json {
            struct Row: Encodable { var name: String; var summary: String; var atomicsPerRoundTrip: String }
            try printJSON(Policy.allCases.map { Row(name: $0.rawValue, summary: $0.summary, atomicsPerRoundTrip: $0.atomicsSource) })
            return
        }
        for p in Policy.allCases {
            print("\(p.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0))\(p.summary)")
            print("\(String(repeating: " ", count: 18))atomics per round trip: \(p.atomicsSource)")
        }
    }

    static func show(_ d: Double) -> String { String(format: "%g", d) }

    // MARK: Run

    /// Errors after validation (writing the results) are not usage errors: a message and
    /// an exit status of their own (1 means a violation or an incomplete run here).
    struct RunError: Error {
        var message: String
        var status: Int32
    }

    func write(_ data: Data, to path: String, what: String) throws {
        do { try OutputFile.write(data, to: path) } catch {
            throw RunError(message: "--\(what) \(error)", status: 74)  // EX_IOERR
        }
    }

    func printJSON<T: Encodable>(_ value: T) throws { try JSONOutput.print(value) }

    func run() throws {
        if listPolicies {
            do { try listThePolicies() } catch let e as RunError {
                FileHandle.standardError.write("Error: \(e.message)\n".data(using: .utf8)!)
                throw ExitCode(e.status)
            }
            return
        }
        let plan: Plan
        do { plan = try makePlan() } catch { Simulate.exit(withError: error) }
        do {
            try execute(plan)
        } catch let e as RunError {
            FileHandle.standardError.write("Error: \(e.message)\n".data(using: .utf8)!)
            throw ExitCode(e.status)
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write("Error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(70)
        }
    }

    /// Rates derived from recordings, by path: `makePlan` runs twice (validate, run),
    /// the recording is read once.
    nonisolated(unsafe) static var ratesCache: [String: WorkloadRates] = [:]

    static func rates(from path: String) throws -> WorkloadRates {
        if let r = ratesCache[path] { return r }
        do {
            let r = try WorkloadRates.derive(from: path, catalog: try CallbackCatalog.builtIn())
            ratesCache[path] = r
            return r
        } catch { throw ValidationError("--workload-from \(error)") }
    }

    /// The rates a recording gave, as the user reads them.
    static func describe(_ r: WorkloadRates, _ w: Workload) -> String {
        var s = "workload from \(r.input): isolated CPU(s) \(r.isolatedCPUs.map(String.init).joined(separator: ",")) over \(String(format: "%.3f", r.seconds)) s\n"
        s += "  per isolated CPU per second: " + r.requestsPerCPUPerSecond.sorted { $0.key < $1.key }
            .map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", ") + "\n"
        s += String(format: "  entries (syscalls + user faults) %.2f/s, idle periods %.2f/s\n", r.entriesPerSecond, r.idlePeriodsPerSecond)
        s += String(format: "  -> workload: kernelTLBFlushPerSec %.3f, textPatchBatchesPerSec %.3f, rcuExpeditedPerSec %.3f, userTLBShootdownPerSec %.3f, wakeupsPerSec %.3f, cacheDrainsPerSec %.3f, pageTableFreeSyncsPerSec %.3f, isolatedSyscallsPerSec %.3f, isolatedIdlePeriodsPerSec %.3f, isolatedIdleNs %.0f (rcuNormalPerSec %.3f: not in IPIs, kept)\n",
                        w.kernelTLBFlushPerSec, w.textPatchBatchesPerSec, w.rcuExpeditedPerSec, w.userTLBShootdownPerSec, w.wakeupsPerSec,
                        w.cacheDrainsPerSec, w.pageTableFreeSyncsPerSec, w.isolatedSyscallsPerSec, w.isolatedIdlePeriodsPerSec, w.isolatedIdleNs, w.rcuNormalPerSec)
        return s
    }

    func execute(_ plan: Plan) throws {
        if let path = workloadFrom, let r = Simulate.ratesCache[path] {
            let text = Simulate.describe(r, plan.config.workload)
            if json { FileHandle.standardError.write(text.data(using: .utf8)!) } else { print(text) }
        }
        let policies = plan.policies
        let results: [PolicyResult]
        if !plan.sweeps.isEmpty {
            results = try runSweep(plan)
        } else {
            let row = plan.rows[0]
            var mc = row.config
            var results1: [PolicyResult] = []
            // The trace is streamed to the file as the runs go, under one budget for the
            // whole file (not per policy).
            var writer: ChromeTraceWriter?
            if let path = trace {
                do { writer = try ChromeTraceWriter(path: path, isolated: Set(row.isolated.cpus), eventsMax: SimulatorLimits.traceEventsMax) } catch {
                    throw RunError(message: "--trace \(error)", status: 74)
                }
            }
            for p in policies {
                let sim: Simulation
                do { sim = try Simulation(config: mc, policy: p) } catch { throw RunError(message: "\(error)", status: 64) }
                if let w = writer {
                    sim.traceWindowNs = plan.window
                    sim.traceSink = w
                    w.beginProcess(p)
                }
                sim.progress = { simulatedNs in
                    FileHandle.standardError.write(String(format: "  %@: %.3f of %.3f simulated s\n", p.rawValue, Double(simulatedNs) / 1e9, mc.seconds).data(using: .utf8)!)
                }
                results1.append(sim.run())
                if let w = writer, sim.traceTruncated {
                    FileHandle.standardError.write(String(format: "%@: the trace reached its budget of %d events for the whole file (traceEventsMax) at %.3f simulated ms; the rest of this policy and the policies after it are not in it; narrow --trace-window\n",
                                                          p.rawValue, w.eventsMax, (w.stoppedAtUs ?? 0) / 1000).data(using: .utf8)!)
                }
            }
            results = results1
            if let w = writer {
                do { try w.finish() } catch { throw RunError(message: "--trace \(error)", status: 74) }
            }
            // Shown everywhere normalized: the CPUs simulated, not the text given.
            let isolatedShown = row.isolated.description
            if let path = svg {
                let title = "\(mc.cpus) CPUs, isolated \(isolatedShown), \(mc.seconds) s, seed \(mc.seed)"
                try write(Charts.comparison(results, title: title).data(using: .utf8)!, to: path, what: "svg")
            }
            if json {
                struct Out: Encodable { var config: MachineConfig; var results: [PolicyResult] }
                mc.isolated = isolatedShown
                try printJSON(Out(config: mc, results: results))
            } else {
                print("machine: \(mc.cpus) CPUs, isolated \(isolatedShown), \(mc.seconds) s simulated, seed \(mc.seed) (replay: --seed \(mc.seed))")
                print("")
                print(SimulationTable.render(results))
            }
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

    /// Runs every row of a sweep under every policy and prints them; returns all results.
    func runSweep(_ plan: Plan) throws -> [PolicyResult] {
        let policies = plan.policies, sweeps = plan.sweeps, rows = plan.rows
        let parameters = sweeps.map(\.parameter)
        var table: [[PolicyResult]] = []
        for row in rows {
            var line: [PolicyResult] = []
            for p in policies {
                do { line.append(try Simulation(config: row.config, policy: p).run()) } catch {
                    throw RunError(message: "\(error)", status: 64)
                }
            }
            table.append(line)
        }
        let mc = plan.config
        let cpusSwept = parameters.contains("cpus")
        if json {
            struct Out: Encodable {
                var parameters: [String]
                /// One array per row, a value per parameter.
                var values: [[Double]]
                /// Each row's isolated CPUs, normalized.
                var isolated: [String]
                var results: [[PolicyResult]]
            }
            try printJSON(Out(parameters: parameters, values: rows.map(\.values), isolated: rows.map(\.isolated.description), results: table))
        } else {
            // The header says what each row shares; what varies is in the columns.
            let machine = cpusSwept ? "cpus swept" : "\(mc.cpus) CPUs"
            let iso = cpusSwept ? "isolated per row (column isolated)" : "isolated \(rows[0].isolated)"
            let secs = parameters.contains("seconds") ? "seconds swept" : "\(mc.seconds) s simulated"
            print("machine: \(machine), \(iso), \(secs), seed \(mc.seed); sweep of \(parameters.joined(separator: " x "))")
            print("")
            struct Line { var row: Row; var r: PolicyResult }
            let lines = policies.indices.flatMap { p in rows.indices.map { Line(row: rows[$0], r: table[$0][p]) } }
            let t = TextTable<Line> { line in
                var columns = [Column(title: "policy", value: line.r.policy.rawValue)]
                for (i, name) in parameters.enumerated() {
                    columns.append(Column(title: name, value: Simulate.show(line.row.values[i]), align: .right))
                }
                if cpusSwept { columns.append(Column(title: "isolated", value: line.row.isolated.description, align: .right)) }
                return columns + [
                    Column(title: "irq/cpu/s", value: String(format: "%.2f", line.r.interruptionsPerCPUPerSecond), align: .right),
                    Column(title: "atomics/rt", value: SimulationTable.perRoundTrip(line.r.atomicsPerRoundTrip, "%.2f"), align: .right),
                    Column(title: "entry ns/rt", value: SimulationTable.perRoundTrip(line.r.entryOverheadNsPerRoundTrip, "%.0f"), align: .right),
                    Column(title: "lost us/cpu/s", value: String(format: "%.1f", line.r.lostNsPerCPUPerSecond / 1000), align: .right),
                ]
            }
            print(t.string(for: lines) ?? "", terminator: "")
        }
        if let path = svg, let s = sweeps.first {
            let machine = cpusSwept ? "cpus swept" : "\(mc.cpus) CPUs, isolated \(rows[0].isolated)"
            let secs = parameters.contains("seconds") ? "seconds swept" : "\(mc.seconds) s"
            let title = "\(machine), \(secs), seed \(mc.seed)"
            try write(Charts.sweep(parameter: s.parameter, values: s.values, results: table, title: title).data(using: .utf8)!, to: path, what: "svg")
        }
        return table.flatMap { $0 }
    }
}
