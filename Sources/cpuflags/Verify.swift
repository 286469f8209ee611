import ArgumentParser
import CPUFlags
import Explorer
import Dispatch
import Foundation
import Simulator
import TextTable

extension MemoryModel: ExpressibleByArgument {}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explore every interleaving of the standard scenarios (and generated ones) and check the invariants.",
        discussion: """
            Runs each scenario under each memory model and prints states, executions, time \
            and a verdict per invariant. By default: the hand-written set (SC, TSO, rc11), then a seeded \
            sample of \(Verify.defaultSample) generated scenarios of bound \(Verify.defaultBound) \
            (the seed is printed; --sample 0 for none). --generated runs every generated \
            scenario of --bound (or --sample of them) and prints which pairs of features \
            were explored together. Runs go on --jobs threads; the output keeps their \
            order. Exit status 1 on any violation, incomplete or skipped run, 64 on bad \
            arguments. Memory: about 100 bytes per stored state, plus the frontier (the \
            default --states-max of 10,000,000 needs up to ~1.5 GB per job).
            """)

    @Option(name: .long, help: "Run only this scenario (see `cpuflags scenarios`; generated names too). Repeatable.")
    var scenario: [String] = []

    @Option(name: .long, help: "Run the scenario written in this file (the format of `cpuflags scenarios --export DIR`; README \"Scenarios as files\"). Repeatable; with --scenario, both run.")
    var file: [String] = []

    @Flag(name: .long, help: "Run the generated scenarios of --bound (all of them, or --sample of them) instead of the hand-written set.")
    var generated = false

    @Option(name: .long, parsing: .unconditional, help: "Generated scenarios: the most housekeeping ops in one machine (1 to \(Generator.boundMax)).")
    var bound: Int = Verify.defaultBound

    @Option(name: .long, parsing: .unconditional, help: "Run a seeded random sample of this many generated scenarios of --bound. Without --generated: the sample that follows the hand-written set (default \(Verify.defaultSample); 0 for none).")
    var sample: Int?

    @Option(name: .long, parsing: .unconditional, help: "Seed of the generated sample (printed; the same seed replays the same scenarios). Default: a fresh one.")
    var seed: UInt64?

    @Option(name: .long, parsing: .unconditional, help: "Runs explored at once (1 to 64). Default: the number of CPUs.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, parsing: .unconditional, help: "Threads per run, expanding each breadth-first level together (1 to 64; the same states, verdicts and counterexamples for any count). Default: the CPUs --jobs leaves over (--jobs divided by the number of runs, at least 1).")
    var threads: Int?

    @Option(name: .long, help: "Memory model: sc, tso, pso or rc11. Repeatable. Default: sc, tso and rc11 for the hand-written scenarios, sc and tso for the generated ones.")
    var model: [MemoryModel] = []

    @Option(name: .long, parsing: .unconditional, help: "Resize each scenario to this many CPUs (2 to 4). Extra CPUs are isolated CPUs that start in USER (INDETERMINATE under a lazy policy) and make one round trip with a kernel access; with fewer CPUs, the last ones and the ops aimed at them are dropped.")
    var cpus: Int?

    @Option(name: .long, help: "Apply a named wrong variant of the protocol (see `cpuflags mutants`). Repeatable.")
    var mutation: [String] = []

    @Option(name: .long, help: "Weaken one ordering of the core, as SITE/STEP (see `cpuflags mutants --orderings`), e.g. exit-store/no-release. Repeatable.")
    var weaken: [String] = []

    @Option(name: .long, parsing: .unconditional, help: "Under rc11: the stores each location keeps for loads to read (1 to 16). A pass is exhaustive up to this bound.")
    var historyMax: Int = Limits().historyMax

    @Option(name: .long, parsing: .unconditional, help: "Stop after this many distinct states per run.")
    var statesMax: Int = Limits().statesMax

    @Option(name: .long, parsing: .unconditional, help: "Longest execution, in steps (1 to 10000).")
    var depthMax: Int = Limits().depthMax

    @Option(name: .long, parsing: .unconditional, help: "Store-buffer entries per CPU under TSO/PSO (1 to 16).")
    var storeBufferMax: Int = Limits().storeBufferDepthMax

    @Option(name: .long, parsing: .unconditional, help: "NMIs each isolated CPU (one whose program has no housekeeping op) may receive, overriding the scenario (0 to 3).")
    var nmis: Int?

    @Flag(name: .long, help: "Store 128-bit fingerprints of visited states instead of the states (hash compaction): far less memory, but a pass is probable, not a proof (reported as such, with the collision bound).")
    var hashCompact = false

    @Flag(name: .long, help: "Search depth-first: memory is the visited set and the current path (no breadth-first frontier); a counterexample is then the path found, not a shortest one.")
    var depthFirst = false

    @Flag(name: .long, help: "Turn off the sleep sets of the breadth-first search (which skip moves whose outcome is reached another way: the same states, fewer moves tried); every enabled move of every state is then tried.")
    var noReduction = false

    @Flag(name: .long, help: "Depth-first search: run every move instead of taking its outcome from the transition cache (which remembers a move's outcome by the parts of the state it touched: the same states, moves run once per distinct neighbourhood).")
    var noTransitionCache = false

    @Option(name: .long, parsing: .unconditional, help: "Depth-first search: the most entries of the transition cache (4096 to 268435456; about 52 bytes each with four CPUs).")
    var transitionCacheEntries: Int = Limits().transitionCacheEntries

    @Flag(name: .long, help: "Print JSON (reports and counterexamples) instead of tables.")
    var json = false

    @Flag(name: .long, help: "Print no progress on stderr.")
    var quiet = false

    @Flag(name: .long, help: "Print each run's progress every second (states, states/s, frontier, depth, resident memory), also with generated scenarios.")
    var progress = false

    @Flag(name: .long, help: "Stop at the first run that finds a violation; the runs not made are listed as skipped and establish nothing.")
    var failFast = false

    static let defaultBound = 2
    static let defaultSample = 24

    func validate() throws {
        if !(1...Generator.boundMax).contains(bound) { throw ValidationError("--bound \(bound): expected 1 to \(Generator.boundMax)") }
        if let k = sample, k < 0 { throw ValidationError("--sample \(k): expected 0 or more") }
        if !(1...64).contains(jobs) { throw ValidationError("--jobs \(jobs): expected 1 to 64") }
        if let t = threads, !(1...Limits.threadsMax).contains(t) { throw ValidationError("--threads \(t): expected 1 to \(Limits.threadsMax)") }
        if generated && !scenario.isEmpty { throw ValidationError("--generated and --scenario: pick one (a generated scenario can be named with --scenario)") }
        if generated && !file.isEmpty { throw ValidationError("--generated and --file: pick one") }
        _ = try fileScenarios()
        if seed != nil && sample == nil && !generated { throw ValidationError("--seed needs --sample or --generated: it seeds the generated sample") }
        for s in scenario where Scenario.named(s) == nil && Generator.named(s) == nil {
            throw ValidationError("unknown scenario '\(s)'; expected one of: \(Scenario.standard.map(\.name).joined(separator: ", "))")
        }
        for m in mutation where !Mutations.named.contains(where: { $0.name == m }) {
            throw ValidationError("unknown mutation '\(m)'; expected one of: \(Mutations.named.map(\.name).joined(separator: ", "))")
        }
        for w in weaken where OrderingMutant.named(w) == nil {
            throw ValidationError("--weaken \(w): expected SITE/STEP, one of: \(OrderingMutant.all.map(\.name).joined(separator: ", "))")
        }
        if !(1...16).contains(historyMax) { throw ValidationError("--history-max \(historyMax): expected 1 to 16") }
        if let c = cpus, !(2...4).contains(c) { throw ValidationError("--cpus \(c): expected 2 to 4") }
        if let n = nmis, !(0...3).contains(n) { throw ValidationError("--nmis \(n): expected 0 to 3") }
        if quiet && progress { throw ValidationError("--quiet and --progress: pick one") }
        if statesMax < 1 { throw ValidationError("--states-max \(statesMax): expected at least 1") }
        if !(1...10_000).contains(depthMax) { throw ValidationError("--depth-max \(depthMax): expected 1 to 10000") }
        if !Limits.transitionCacheEntriesRange.contains(transitionCacheEntries) {
            throw ValidationError("--transition-cache-entries \(transitionCacheEntries): expected \(Limits.transitionCacheEntriesRange.lowerBound) to \(Limits.transitionCacheEntriesRange.upperBound)")
        }
        if !(1...16).contains(storeBufferMax) { throw ValidationError("--store-buffer-max \(storeBufferMax): expected 1 to 16") }
        for s in scenarios() {
            if let p = s.problem() { throw ValidationError(p) }
        }
    }

    /// The scenarios of the --file options, parsed (errors name the file, line and column).
    func fileScenarios() throws -> [Scenario] {
        try file.map { path in
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw ValidationError("--file \(path): cannot read it: \((error as NSError).localizedDescription)")
            }
            do { return try ScenarioFile.parse(text, source: path) } catch { throw ValidationError("--file \(error)") }
        }
    }

    /// The scenarios to run, resized and mutated as the options say: the hand-written
    /// ones (or those named), then the generated ones, with the seed that chose them.
    func plan() -> (handWritten: [Scenario], generated: [Scenario], seed: UInt64?, population: Int) {
        var mutations = Mutations()
        for m in mutation { if let named = Mutations.named.first(where: { $0.name == m }) { mutations.insert(named.mutation) } }
        func adjust(_ s: Scenario) -> Scenario {
            var s = s
            if let c = cpus { s = s.withCPUs(c) }
            if let n = nmis { s.nmis = s.programs.map { $0.contains(where: \.isHousekeeping) ? 0 : n } }
            // A file's own mutations stay; --mutation adds to them.
            s.config.mutations.formUnion(mutations)
            for w in weaken { if let m = OrderingMutant.named(w) { s.config.weakening.formUnion(m.weakening) } }
            return s
        }
        var hand: [Scenario] = []
        let fromFiles = (try? fileScenarios()) ?? []
        let chosen = scenario.isEmpty && file.isEmpty
        if !generated {
            hand = (chosen ? Scenario.standard : scenario.compactMap { Scenario.named($0) ?? Generator.named($0) } + fromFiles).map(adjust)
        }
        // The generated part: all of --bound with --generated, a sample with --sample,
        // and by default (no --scenario or --file) a small sample after the hand-written set.
        let count: Int? = generated ? sample : (sample ?? (chosen ? Self.defaultSample : 0))
        if !generated && count == 0 { return (hand, [], nil, 0) }
        let population = Generator.scenarios(bound: bound)
        guard let k = count, k < population.count else { return (hand, population.map(adjust), nil, population.count) }
        let seed = self.seed ?? UInt64.random(in: 0...UInt64.max)
        return (hand, Generator.sample(bound: bound, count: k, seed: seed).map(adjust), seed, population.count)
    }

    /// The scenarios to run (for validation).
    func scenarios() -> [Scenario] {
        let p = plan()
        return p.handWritten + p.generated
    }

    func run() throws {
        var limits = Limits()
        limits.statesMax = statesMax
        limits.depthMax = depthMax
        limits.hashCompact = hashCompact
        limits.depthFirst = depthFirst
        limits.reduction = !noReduction
        limits.transitionCacheEntries = noTransitionCache ? 0 : transitionCacheEntries
        limits.storeBufferDepthMax = storeBufferMax
        limits.historyMax = historyMax
        // By default the hand-written set runs under SC, TSO and rc11, the generated
        // sample under SC and TSO (rc11 multiplies their states by 3 to 10).
        let handModels = model.isEmpty ? [MemoryModel.sc, .tso, .rc11] : model
        let models = model.isEmpty ? [MemoryModel.sc, .tso] : model
        let plan = plan()
        if !quiet && !plan.generated.isEmpty {
            let what = plan.seed.map { "a sample of \(plan.generated.count) of the \(plan.population) generated scenarios of bound \(bound), seed \($0) (replay: cpuflags verify --generated --bound \(bound) --sample \(plan.generated.count) --seed \($0))" }
                ?? "all \(plan.generated.count) generated scenarios of bound \(bound)"
            FileHandle.standardError.write("verify: \(what)\n".data(using: .utf8)!)
        }
        let runs = plan.handWritten.flatMap { s in handModels.map { (s, $0) } } + plan.generated.flatMap { s in models.map { (s, $0) } }
        limits.threads = threads ?? max(1, jobs / max(1, runs.count))
        let total = ContinuousClock.now
        // --json keeps stderr quiet unless --progress asks for it (stdout is the JSON).
        let outcome = RunQueue(runs: runs, limits: limits, jobs: jobs, failFast: failFast, quiet: quiet || (json && !progress),
                               verbose: progress || plan.generated.isEmpty).run()
        let elapsed = (ContinuousClock.now - total).seconds
        let reports = outcome.reports.compactMap { $0 }
        let skipped = zip(runs, outcome.reports).filter { $0.1 == nil }.map { "\($0.0.0.name) \($0.0.1.description)" }
        let ran = zip(runs, outcome.reports).compactMap { run, r in r.map { (scenario: run.0, report: $0) } }
        let coverage = plan.generated.isEmpty ? nil : Coverage(ran)
        let handCount = plan.handWritten.count * handModels.count
        if json {
            try JSONOutput.print(VerifyOutput(
                reports: reports, summary: Summary(reports), seconds: elapsed,
                passed: reports.allSatisfy(\.passed) && skipped.isEmpty, skipped: skipped,
                generated: plan.generated.isEmpty ? nil : GeneratedRuns(bound: bound, seed: plan.seed, scenarios: plan.generated.count, population: plan.population, coverage: coverage!)))
        } else {
            let table = TextTable<Report> { r in
                [Column(title: "scenario", value: r.scenario), Column(title: "model", value: r.model.description),
                 Column(title: "states", value: r.states, align: .right),
                 Column(title: "execs", value: r.executions, align: .right),
                 Column(title: "trans", value: r.transitions, align: .right),
                 Column(title: "depth", value: r.depth, align: .right),
                 Column(title: "time", value: String(format: "%.2fs", r.seconds), align: .right),
                 Column(title: "states/s", value: String(format: "%.0f", r.statesPerSecond), align: .right),
                 Column(title: "B/state", value: r.storedBytesPerState.map { String(format: "%.0f", $0) } ?? "-", align: .right)]
                    + Self.invariantColumns.map { name, inv in
                        Column(title: name, value: ["ok": "ok", "probable": "ok~", "VIOLATED": "FAIL"][r.invariants[inv.rawValue] ?? ""] ?? "?", align: .right)
                    }
            }
            // The hand-written runs one per row; generated ones by machine kind, with
            // every failing or incomplete one on a row of its own.
            let handReports = zip(runs.prefix(handCount), outcome.reports.prefix(handCount)).compactMap { $0.1 }
            print(table.string(for: handReports) ?? "", terminator: "")
            let genReports = outcome.reports.dropFirst(handCount).compactMap { $0 }
            if !genReports.isEmpty {
                if !handReports.isEmpty { print("") }
                print("generated scenarios (\(plan.seed.map { "sample of \(plan.generated.count) of \(plan.population), bound \(bound), seed \($0)" } ?? "all \(plan.generated.count) of bound \(bound)")):")
                let groups = Dictionary(grouping: genReports) { r in "\(r.scenario.split(separator: "/").first ?? "")  \(r.model.description)" }
                for key in groups.keys.sorted() {
                    let g = groups[key]!
                    let passed = g.filter(\.passed).count
                    print(String(format: "  %@: %d runs, %d exhaustive and passing, %d states in all (largest %d), %.1fs of exploring",
                                 key, g.count, passed, g.map(\.states).reduce(0, +), g.map(\.states).max() ?? 0, g.map(\.seconds).reduce(0, +)))
                }
                let bad = genReports.filter { !$0.passed }
                if !bad.isEmpty { print(table.string(for: bad) ?? "", terminator: "") }
            }
            for r in reports where r.incomplete != nil { print("incomplete: \(r.scenario) \(r.model.description): \(r.incomplete!)") }
            for r in reports where r.passed { if let p = r.probable { print("probable (ok~): \(r.scenario) \(r.model.description): \(p)") } }
            // The cache's share, for a few runs (a --scenario or --file run), not for
            // the standard set's hundred.
            if reports.count <= 8 {
                for r in reports {
                    guard let hits = r.cachedMoves, let ran = r.ranMoves, hits + ran > 0 else { continue }
                    print(String(format: "transition cache: %@ %@: %.1f%% of %d moves answered from it, %d run (--no-transition-cache to run them all)",
                                 r.scenario, r.model.description, 100 * Double(hits) / Double(hits + ran), hits + ran, ran))
                }
            }
            print("")
            print("invariants: work = no lost work, tlb = no stale translation, text = no stale text, pin = pin exclusion,")
            print("  rcu = RCU safety, defer = deferral is real, prog = progress, assert = the core's own assertions;")
            print("  ok / FAIL / ? (not established: the run stopped first, at a limit or at another violation)")
            if hashCompact { print("  ok~ = held over every fingerprinted state (--hash-compact): probable, not a proof") }
            if reports.contains(where: { $0.model == .rc11 }) {
                print("  RC11 runs: every interleaving and every store a load may read, up to the last \(historyMax) stores per location (--history-max)")
            }
            print("")
            print("invariants over all runs (ok = every state of the run explored and the invariant held):")
            for line in Summary(reports).rendered() { print(line) }
            if let coverage {
                print("")
                print("coverage of the generated scenarios:")
                for line in coverage.rendered() { print("  " + line) }
            }
            var shown = 0
            for r in reports {
                if let cx = r.counterexample {
                    if shown == 3 { print("\n(further counterexamples: --json, or --scenario NAME)"); break }
                    shown += 1
                    print("")
                    print(cx.timeline())
                }
            }
            let violated = reports.filter { $0.violation != nil }.count
            let incomplete = reports.filter { $0.violation == nil && $0.incomplete != nil }.count
            let probable = reports.filter { $0.passed && $0.probable != nil }.count
            print(String(format: "%d runs: %d exhaustive and passing, %@%d violated, %d incomplete (nothing established); %.1fs total",
                         reports.count, reports.count - violated - incomplete - probable,
                         probable > 0 ? "\(probable) passing over fingerprints (hash-compact: probable, not a proof), " : "",
                         violated, incomplete, elapsed))
            if !skipped.isEmpty {
                print("skipped after the first violation (--fail-fast), nothing established: \(skipped.count) runs (\(skipped.prefix(8).joined(separator: ", "))\(skipped.count > 8 ? ", ..." : ""))")
            }
        }
        if !reports.allSatisfy(\.passed) || !skipped.isEmpty { throw ExitCode(1) }
    }

    /// Short column names for the invariants of BRIEF §4.
    static let invariantColumns: [(String, Violation.Invariant)] = [
        ("work", .noLostWork), ("tlb", .noStaleTranslation), ("text", .noStaleText), ("pin", .pinExclusion),
        ("rcu", .rcuSafety), ("defer", .deferralIsReal), ("prog", .progress), ("assert", .coreAssertion),
    ]

}

struct VerifyOutput: Codable {
    var reports: [Report]
    var summary: Summary
    var seconds: Double
    var passed: Bool
    /// Runs not made because of --fail-fast ("scenario MODEL").
    var skipped: [String] = []
    var generated: GeneratedRuns?
}

/// What the generated part of a verify run was: enough to replay it.
struct GeneratedRuns: Codable {
    var bound: Int
    /// Set when the scenarios were a sample of the bound's enumeration.
    var seed: UInt64?
    var scenarios: Int
    var population: Int
    var coverage: Coverage
}

struct Scenarios: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the standard scenarios and their programs (or the generated ones).")
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Flag(name: .long, help: "List the generated scenarios of --bound instead (what `verify --generated` runs).") var generated = false
    @Option(name: .long, parsing: .unconditional, help: "Generated scenarios: the most housekeeping ops in one machine (1 to \(Generator.boundMax)).")
    var bound: Int = Verify.defaultBound
    @Option(name: .long, help: "Write each scenario to DIR/NAME.scenario (the text format `verify --file` reads) and exit.")
    var export: String?

    func validate() throws {
        if !(1...Generator.boundMax).contains(bound) { throw ValidationError("--bound \(bound): expected 1 to \(Generator.boundMax)") }
    }

    func run() throws {
        let list = generated ? Generator.scenarios(bound: bound) : Scenario.standard
        if let dir = export {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw ValidationError("--export \(dir): cannot create the directory: \((error as NSError).localizedDescription)")
            }
            for s in list {
                let path = (dir as NSString).appendingPathComponent("\(s.name).scenario")
                do { try OutputFile.write(Data(ScenarioFile.render(s).utf8), to: path) } catch {
                    FileHandle.standardError.write("Error: --export \(error)\n".data(using: .utf8)!)
                    throw ExitCode(74)
                }
            }
            print("wrote \(list.count) scenarios to \(dir)")
            return
        }
        if json {
            try JSONOutput.print(list.map(\.described))
            return
        }
        if generated { print("\(list.count) generated scenarios of bound \(bound):") }
        for s in list {
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

    @Flag(name: .long, help: "The ordering mutants instead: each acquire, release, acq_rel, seq_cst and full fence of the core weakened one step, run over the standard scenarios (smallest first, up to the first violation) under each model.")
    var orderings = false

    @Option(name: .long, help: "With --orderings: the models (sc, tso, pso, rc11; repeatable). Default: all four.")
    var model: [MemoryModel] = []

    @Option(name: .long, help: "With --orderings: only the mutants whose name contains this (e.g. pin-, rcu-sample).")
    var only: String?

    @Option(name: .long, parsing: .unconditional, help: "With --orderings: stop each run after this many states (it then counts as incomplete).")
    var statesMax: Int = 1_000_000

    @Option(name: .long, parsing: .unconditional, help: "With --orderings: runs at once. Default: the number of CPUs.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        if orderings && (runThem || timelines) { throw ValidationError("--orderings runs its own sweep: drop --run and --timelines") }
        if !orderings && (!model.isEmpty || only != nil) { throw ValidationError("--model and --only go with --orderings") }
        if statesMax < 1 { throw ValidationError("--states-max \(statesMax): expected at least 1") }
        if !(1...64).contains(jobs) { throw ValidationError("--jobs \(jobs): expected 1 to 64") }
        if let o = only, !OrderingMutant.all.contains(where: { $0.name.contains(o) }) {
            throw ValidationError("--only \(o): no ordering mutant's name contains it; they are: \(OrderingMutant.all.map(\.name).joined(separator: ", "))")
        }
        if timelines && !runThem { throw ValidationError("--timelines needs --run: timelines come from running the mutants") }
        if timelines && json {
            throw ValidationError("--timelines prints text; with --json the timelines are in each report's counterexample")
        }
    }

    func run() throws {
        if orderings { return try runOrderings() }
        let nw = MutantCase.catalog.map(\.name.count).max() ?? 26
        if !runThem {
            if json {
                let rows = MutantCase.catalog.map { ["name": $0.name, "summary": $0.summary, "scenario": $0.scenario,
                                                     "caughtUnder": $0.caughtUnder.rawValue, "invariant": $0.invariant.rawValue] }
                try JSONOutput.print(rows)
                return
            }
            for m in MutantCase.catalog {
                print("\(m.name.padding(toLength: nw, withPad: " ", startingAt: 0)) \(m.summary)")
                print("\(String(repeating: " ", count: nw + 1))caught in \(m.scenario) under \(m.caughtUnder.description) (\(m.invariant.rawValue))")
            }
            return
        }
        var ok = true
        var reports: [Report] = []
        let sw = MutantCase.catalog.map(\.scenario.count).max() ?? 14
        if !json { print("mutant".padding(toLength: nw + 1, withPad: " ", startingAt: 0) + "scenario".padding(toLength: sw, withPad: " ", startingAt: 0) + " " + MemoryModel.allCases.map { $0.description.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined(separator: " ") + " broken invariant") }
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
                print([m.name.padding(toLength: nw, withPad: " ", startingAt: 0), m.scenario.padding(toLength: sw, withPad: " ", startingAt: 0)]
                      .joined(separator: " ") + " " + cells.map { $0.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined(separator: " ") + " " + broken)
            }
        }
        if json {
            try JSONOutput.print(reports)
        } else {
            print(ok ? "every mutant rejected under the model that catches it and the weaker ones, and passes under the stronger ones" : "UNEXPECTED: a mutant was caught or missed against its catalog entry")
        }
        if !ok { throw ExitCode(1) }
    }
}

extension Mutants {
    /// One row of `mutants --orderings --json`.
    struct OrderingRow: Codable {
        var mutant: String
        var site: String
        var declared: String
        var weakening: String
        var verdicts: [OrderingMutant.Verdict]
    }

    func runOrderings() throws {
        let models = model.isEmpty ? MemoryModel.allCases : model
        let mutants = OrderingMutant.all.filter { only == nil || $0.name.contains(only!) }
        let byName = Dictionary(uniqueKeysWithValues: Scenario.standard.map { ($0.name, $0) })
        let scenarios = OrderingMutant.scenarioOrder.compactMap { byName[$0] }
        var limits = Limits()
        limits.statesMax = statesMax
        let pairs = mutants.flatMap { m in models.map { (m, $0) } }
        var verdicts = [OrderingMutant.Verdict?](repeating: nil, count: pairs.count)
        let lock = NSLock()
        var next = 0, done = 0
        let start = ContinuousClock.now
        if !json {
            FileHandle.standardError.write("mutants --orderings: \(mutants.count) mutants x \(models.count) models over \(scenarios.count) standard scenarios (each run at most \(statesMax) states)\n".data(using: .utf8)!)
        }
        // Not RunQueue: a job here is a (mutant, model) pair that runs scenarios one
        // after another and stops at its first violation, so the unit of work is not a
        // single run.
        DispatchQueue.concurrentPerform(iterations: min(jobs, pairs.count)) { _ in
            while true {
                lock.lock()
                guard next < pairs.count else { lock.unlock(); return }
                let i = next
                next += 1
                lock.unlock()
                let (m, model) = pairs[i]
                let v = m.verdict(model: model, scenarios: scenarios, limits: limits)
                lock.lock()
                verdicts[i] = v
                done += 1
                if !json {
                    let what = v.rejectedBy.map { "rejected by \($0) (\(v.invariant!))" } ?? "passes (\(v.exhaustive) exhaustive, \(v.incomplete) incomplete)"
                    FileHandle.standardError.write(String(format: "  [%d/%d %.0fs] %@ under %@: %@\n", done, pairs.count,
                                                          (ContinuousClock.now - start).seconds, m.name, model.description, what).data(using: .utf8)!)
                }
                lock.unlock()
            }
        }
        let rows = mutants.enumerated().map { k, m in
            OrderingRow(mutant: m.name, site: m.site.name, declared: m.site.declared.rawValue, weakening: m.step.rawValue,
                        verdicts: (0..<models.count).map { verdicts[k * models.count + $0]! })
        }
        if json {
            try JSONOutput.print(rows)
            return
        }
        let nw = max(6, rows.map(\.mutant.count).max() ?? 0)
        print("mutant".padding(toLength: nw, withPad: " ", startingAt: 0) + "  declared    " + models.map { $0.description.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined(separator: " ") + " first rejection")
        for r in rows {
            let cells = r.verdicts.map { v -> String in
                (v.rejected ? "rejected" : (v.incomplete > 0 ? "passes*" : "passes")).padding(toLength: 9, withPad: " ", startingAt: 0)
            }
            let first = r.verdicts.first(where: \.rejected).map { "\($0.rejectedBy!) under \($0.model.description) (\($0.invariant!))" } ?? "none"
            print(r.mutant.padding(toLength: nw, withPad: " ", startingAt: 0) + "  " + r.declared.padding(toLength: 11, withPad: " ", startingAt: 0) + " "
                  + cells.joined(separator: " ") + " " + first)
        }
        print("rejected: a run broke an invariant (reproduce: cpuflags verify --scenario S --model M --weaken MUTANT);")
        print("passes: every run explored to the end held; passes*: some runs stopped at --states-max \(statesMax), so not established.")
        print(String(format: "%.1fs", (ContinuousClock.now - start).seconds))
    }
}
