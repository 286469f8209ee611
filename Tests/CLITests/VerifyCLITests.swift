import Foundation
import Testing

/// `verify`, `scenarios`, `mutants` and the root command as a user meets them.

@Test func anIncompleteRunEstablishesNothing() throws {
    // --depth-max 1 stops every run at once: the summary must not say "ok" anywhere,
    // and the progress line on stderr must not say "done".
    let r = try CLI.run(["verify", "--scenario", "tlb-flush", "--depth-max", "1"])
    #expect(r.status == 1)
    let summary = r.stdout.components(separatedBy: "invariants over all runs").last ?? ""
    #expect(!summary.contains("ok in all"), "\(summary)")
    // SC, TSO and rc11: the hand-written scenarios' default models.
    #expect(summary.contains("not established in 3 of 3 runs"))
    #expect(r.stdout.contains("3 incomplete"))
    #expect(r.stderr.contains("stopped (incomplete"))
    #expect(!r.stderr.contains("done"))
    // The JSON carries the same summary.
    let j = try CLI.run(["verify", "--scenario", "tlb-flush", "--depth-max", "1", "--json"])
    let obj = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
    let lines = (obj["summary"] as! [String: Any])["lines"] as! [[String: Any]]
    #expect(lines.allSatisfy { ($0["ok"] as! [Any]).isEmpty && ($0["notEstablished"] as! [Any]).count == 3 })
}

@Test func aViolationEstablishesOnlyWhatItBroke() throws {
    let r = try CLI.run(["verify", "--scenario", "nmi", "--mutation", "entry-exchange", "--model", "sc", "--quiet"])
    #expect(r.status == 1)
    let summary = r.stdout.components(separatedBy: "invariants over all runs").last ?? ""
    #expect(summary.contains("no lost work           VIOLATED in nmi SC"))
    // The run stopped at the first violation: the others were not established by it.
    #expect(summary.contains("no stale translation   not established in 1 of 1 runs: nmi SC (stopped at no lost work)"))
    #expect(!summary.contains("ok in all"))
}

@Test func aCompleteRunIsOkInAll() throws {
    let r = try CLI.run(["verify", "--scenario", "tlb-flush", "--quiet"])
    #expect(r.status == 0, "\(r.stdout)")
    #expect(r.stdout.contains("no lost work           ok in all 3 runs"))
    #expect(r.stdout.contains("3 runs: 3 exhaustive and passing, 0 violated, 0 incomplete"))
    #expect(r.stdout.contains("RC11 runs: every interleaving and every store a load may read, up to the last 4 stores per location"))
}

@Test func unknownSubcommandIsNotAVerifyError() throws {
    let r = try CLI.run(["nosuch"])
    #expect(r.status == 64)
    #expect(r.stderr.contains("unknown subcommand 'nosuch'"))
    #expect(r.stderr.contains("verify, scenarios, mutants, simulate"))
    #expect(!r.stderr.contains("cpuflags verify ["), "root usage, not verify's: \(r.stderr)")
}

@Test func versionIsPrinted() throws {
    let r = try CLI.run(["--version"])
    #expect(r.status == 0)
    #expect(r.stdout.split(separator: ".").count == 3, "\(r.stdout)")
}

@Test(arguments: [["--cpus", "-1"], ["--nmis", "-1"], ["--states-max", "-5"], ["--depth-max", "-1"], ["--store-buffer-max", "-1"]])
func negativeNumbersAreRangeErrors(_ args: [String]) throws {
    // A separate "-1" must be read as the option's value and rejected with the range,
    // not as a missing value.
    let r = try CLI.run(["verify"] + args)
    #expect(r.status == 64)
    #expect(r.stderr.contains("\(args[0]) \(args[1]): expected"), "\(r.stderr)")
    #expect(r.stderr.contains("Usage: cpuflags verify"))
}

@Test func timelinesWithoutRunIsRefused() throws {
    let r = try CLI.run(["mutants", "--timelines"])
    #expect(r.status == 64)
    #expect(r.stderr.contains("--timelines needs --run"))
    #expect(r.stderr.contains("Usage: cpuflags mutants"))
}

@Test func verifyHelpSaysWhatExtraCPUsRun() throws {
    let r = try CLI.run(["verify", "--help"])
    // Help wraps lines: compare with the whitespace folded.
    let text = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    #expect(text.contains("one round trip with a kernel access"))
    #expect(!text.contains("copy CPU 1's program"))
}

@Test func scenariosJSONKeepsEveryField() throws {
    let r = try CLI.run(["scenarios", "--json"])
    #expect(r.status == 0)
    let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
    func named(_ n: String) -> [String: Any] { list.first { $0["name"] as? String == n }! }
    // The NMI budget, the exit policy and PTI of the scenarios that set them.
    let nmi = named("nmi")["cpus"] as! [[String: Any]]
    #expect(nmi.map { $0["nmis"] as! Int } == [0, 1])
    #expect(named("lazy-adaptive")["exitPolicy"] as? String == "adaptive")
    #expect(named("tlb-flush-nopti")["pti"] as? Bool == false)
    #expect(named("idle-wake")["cpus"].map { ($0 as! [[String: Any]]).map { $0["irqs"] as! Int }.reduce(0, +) }! > 0)
    // Programs are lists of ops with their arguments, not one string.
    let cpu0 = (named("nmi")["cpus"] as! [[String: Any]])[0]["program"] as! [[String: Any]]
    #expect(cpu0.contains { $0["op"] as? String == "queue_callback" && $0["target"] as? Int == 1 && $0["id"] as? Int == 0 })
}

@Test func failFastStopsAtTheFirstViolationAndSaysWhatWasSkipped() throws {
    let r = try CLI.run(["verify", "--scenario", "nmi", "--scenario", "tlb-flush", "--mutation", "entry-exchange",
                         "--model", "sc", "--fail-fast", "--jobs", "1", "--quiet", "--json"])
    #expect(r.status == 1)
    let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect((obj["reports"] as! [Any]).count == 1)
    #expect(obj["skipped"] as! [String] == ["tlb-flush SC"])
    #expect(obj["passed"] as! Bool == false)
}

@Test func aGeneratedSampleSaysItsSeedAndReplays() throws {
    let args = ["verify", "--generated", "--bound", "2", "--sample", "3", "--seed", "7", "--model", "sc"]
    let r = try CLI.run(args)
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(r.stderr.contains("seed 7"))
    #expect(r.stderr.contains("cpuflags verify --generated --bound 2 --sample 3 --seed 7"))
    #expect(r.stdout.contains("coverage of the generated scenarios"))
    #expect(r.stdout.contains("3 runs: 3 exhaustive and passing"))
    let j1 = try CLI.run(args + ["--json", "--quiet"])
    let j2 = try CLI.run(args + ["--json", "--quiet"])
    func names(_ s: String) throws -> [String] {
        let obj = try JSONSerialization.jsonObject(with: Data(s.utf8)) as! [String: Any]
        #expect((obj["generated"] as! [String: Any])["seed"] as? Int == 7)
        return (obj["reports"] as! [[String: Any]]).map { $0["scenario"] as! String }
    }
    #expect(try names(j1.stdout) == names(j2.stdout))
    // A generated scenario can be named on its own.
    let one = try names(j1.stdout)[0]
    let single = try CLI.run(["verify", "--scenario", one, "--model", "sc", "--quiet"])
    #expect(single.status == 0)
    #expect(single.stdout.contains(one))
}

@Test func generatedOptionsAreChecked() throws {
    for (args, message) in [
        (["verify", "--generated", "--bound", "9"], "--bound 9: expected 1 to 3"),
        (["verify", "--generated", "--scenario", "nmi"], "pick one"),
        (["verify", "--seed", "3"], "--seed needs --sample or --generated"),
        (["verify", "--generated", "--sample", "-1"], "--sample -1: expected 0 or more"),
        (["verify", "--jobs", "0"], "--jobs 0: expected 1 to 64"),
        (["scenarios", "--generated", "--bound", "0"], "--bound 0: expected 1 to 3"),
    ] {
        let r = try CLI.run(args)
        #expect(r.status == 64, "\(args)")
        #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
    }
}

/// `verify --file`: a scenario written as text runs like a built-in one; a bad file is a
/// usage error naming the file, line and column.
@Test func verifyRunsAScenarioFile() throws {
    let dir = try CLI.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let export = try CLI.run(["scenarios", "--export", dir.path])
    // One file per scenario the program lists, and it says how many it wrote.
    let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".scenario") }
    #expect(export.status == 0 && export.stdout.contains("wrote \(files.count) scenarios"), "\(export.stderr)")
    #expect(files.count >= 19 && files.contains("four-cpus-pin-rcu.scenario"))
    let pin = dir.appendingPathComponent("pin.scenario").path
    let r = try CLI.run(["verify", "--file", pin, "--model", "sc", "--quiet"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("pin"))
    // The same file with the thread's literal pin sketch: the explorer rejects it.
    let bad = dir.appendingPathComponent("sketch.scenario").path
    try (String(contentsOfFile: pin, encoding: .utf8) + "mutation pin-sketch-literal\n").write(toFile: bad, atomically: true, encoding: .utf8)
    let m = try CLI.run(["verify", "--file", bad, "--model", "sc", "--quiet"])
    #expect(m.status == 1, "\(m.stdout)")
    let typo = dir.appendingPathComponent("typo.scenario").path
    try "scenario t\ncpu 0 kernel: flush_kernel_tlb\ncpu 1 user: enter_from_user kernal_access\n".write(toFile: typo, atomically: true, encoding: .utf8)
    let e = try CLI.run(["verify", "--file", typo])
    #expect(e.status == 64 && e.stderr.contains("\(typo):3:29: expected an op"), "\(e.stderr)")
}

/// A run that hits a limit says which and how far it got; progress shows states/s and memory.
@Test func aLimitSaysHowFarTheRunGot() throws {
    let r = try CLI.run(["verify", "--scenario", "isolated-mix", "--model", "sc", "--states-max", "2000"])
    #expect(r.status == 1)
    #expect(r.stderr.contains("state limit 2000 reached at depth"), "\(r.stderr)")
    #expect(r.stderr.contains("expanded,") && r.stderr.contains("found so far"), "\(r.stderr)")
    let d = try CLI.run(["verify", "--scenario", "pin", "--model", "sc", "--depth-max", "3"])
    #expect(d.stderr.contains("depth limit 3 reached with") && d.stderr.contains("states stored and a frontier of"), "\(d.stderr)")
}

/// Ordering mutants from the command line: a bad name is a usage error that lists the
/// names; a sweep of one mutant under two models says which model rejects it, as JSON.
@Test func orderingMutantsFromTheCommandLine() throws {
    let bad = try CLI.run(["verify", "--scenario", "rcu", "--weaken", "rcu-sample/no-release"])
    #expect(bad.status == 64)
    #expect(bad.stderr.contains("--weaken rcu-sample/no-release: expected SITE/STEP, one of: exit-store/no-release"))
    let history = try CLI.run(["verify", "--scenario", "rcu", "--model", "rc11", "--history-max", "0"])
    #expect(history.status == 64)
    #expect(history.stderr.contains("--history-max 0: expected 1 to 16"))
    let one = try CLI.run(["verify", "--scenario", "rcu", "--model", "rc11", "--weaken", "rcu-sample/no-acquire", "--quiet"])
    #expect(one.status == 1)
    #expect(one.stdout.contains("RCU safety             VIOLATED in rcu RC11"))
    let sweep = try CLI.run(["mutants", "--orderings", "--only", "rcu-sample", "--model", "tso", "--model", "rc11",
                             "--states-max", "30000", "--json"])
    #expect(sweep.status == 0, "\(sweep.stderr)")
    let rows = try JSONSerialization.jsonObject(with: Data(sweep.stdout.utf8)) as! [[String: Any]]
    #expect(rows.count == 1)
    let verdicts = rows[0]["verdicts"] as! [[String: Any]]
    #expect(verdicts.map { $0["model"] as! String } == ["tso", "rc11"])
    #expect(verdicts[0]["rejectedBy"] == nil)
    #expect(verdicts[1]["rejectedBy"] as? String != nil)
}
