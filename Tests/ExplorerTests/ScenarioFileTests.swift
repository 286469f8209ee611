import CPUFlags
import Foundation
import Testing

@testable import Explorer

/// The repository's `scenarios/` directory (`cpuflags scenarios --export scenarios`).
let scenarioDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("scenarios")

/// Every built-in scenario is in `scenarios/`, and the file reads back to it exactly:
/// the files are the standard set, in the format users write.
@Test(arguments: Scenario.standard.map(\.name))
func theStandardScenarioIsItsFile(_ name: String) throws {
    let s = try #require(Scenario.named(name))
    #expect(try ScenarioFile.parse(ScenarioFile.render(s), source: "render") == s)
    let path = scenarioDir.appendingPathComponent("\(name).scenario").path
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(try ScenarioFile.parse(text, source: path) == s, "\(path) differs from the built-in \(name): re-export with `cpuflags scenarios --export scenarios`")
}

@Test func everyOpAndDirectiveReadsBack() throws {
    var s = Scenario(
        name: "all-ops", summary: "every op once  (spaces kept inside)",
        programs: [[.flushKernelTLB, .patchText, .queueCallback(target: 1, id: 63), .runOnBehalf(target: 2, id: 0),
                    .wake(target: 1), .interrupt(target: 2, kind: .userTLBFlush), .synchronizeRCU],
                   [.exitToUser, .enterFromUser, .kernelAccess, .runText, .enterIdle(polling: true), .pollIdle, .exitIdle,
                    .enterIdle(polling: false), .exitIdle, .contextSwitch, .rcuReader(write: true), .rcuReader(write: false)],
                   [.litmusStore(cell: 0, ordering: .release), .litmusStore(cell: 1, value: 3), .litmusStore(cell: 1, value: 2, ordering: .seqCst),
                    .litmusLoad(cell: 1), .litmusLoad(cell: 0, ordering: .acquire), .litmusAdd(cell: 1, ordering: .seqCst), .litmusFence]],
        start: [.kernel, .indeterminate, .idle], pti: false,
        config: ProtocolConfig(exitPolicy: .adaptive, pinProtocol: .countThenCheck, mutations: [.entryExchange, .pinNoFence]),
        nmis: [0, 2, 0], irqs: [0, 1, 3], nmiBody: .rcuReader, covers: [1, 12], expeditedRCU: true, litmusForbidden: LitmusOutcome(loads: [2: [1, 0, 3]], final: [0: 2]))
    s.summary = "every op once  (spaces kept inside)"
    #expect(try ScenarioFile.parse(ScenarioFile.render(s), source: "t") == s)
    // Per-task words (§2.12), switch_to and machine checks.
    let t = Scenario(
        name: "per-task", summary: "", programs: [[.flushKernelTLB], [.enterFromUser, .switchTo(task: 3), .kernelAccess],
                                                  [.exitIdle, .switchTo(task: 1), .exitToUser]],
        start: [.kernel, .user, .idle], config: ProtocolConfig(placement: .perTask, mutations: [.taskWordWithoutCPU]),
        nmis: [0, 1, 0], irqs: [0, 0, 0], mces: [0, 1, 1], covers: [12])
    #expect(ScenarioFile.render(t).contains("words per-task"))
    #expect(try ScenarioFile.parse(ScenarioFile.render(t), source: "t") == t)
}

@Test(arguments: [
    ("scenario a\ncpu 0 kernel: flush_kernel_tlb\n", "t:3:1: expected 2 to 4 'cpu' lines, not 1"),
    ("scenario a\ncpu 0 kernel: flush_kernel_tlb\ncpu 1 user: enter_from_user kernal_access\n", "t:3:29: expected an op: exit_to_user"),
    ("scenario a\ncpu 0 kernel: flush_kernel_tlb\ncpu 2 user: enter_from_user\n", "t:3:5: expected cpu 1 (CPUs in order from 0)"),
    ("scenario a\npolicy eager\n", "t:2:8: expected strict, lazy or adaptive"),
    ("scenario a\ncpu 0 kernal: flush_kernel_tlb\n", "t:2:7: expected a mode: kernel, user, idle or indeterminate"),
    ("scenario a\ncpu 0 kernel nmis=9: flush_kernel_tlb\n", "t:2:14: expected nmis=K or irqs=K with K from 0 to 3"),
    ("scenario a\ncpu 0 kernel: wake(1\n", "t:2:15: expected ')' closing the arguments of 'wake(1'"),
    ("scenario a\ncpu 0 kernel: interrupt(1,flush)\ncpu 1 user: enter_from_user\n", "t:2:15: expected a work kind in 'interrupt(1,flush)'"),
    ("scenario a\ncpu 0 kernel: wake(0)\ncpu 1 user: enter_from_user\n", "expected a well-formed scenario: a: cpu0 wake(cpu0): bad target"),
    ("summary no name\ncpu 0 kernel:\ncpu 1 user:\n", "expected a 'scenario NAME' line"),
    ("scenario a\nfrobnicate yes\n", "t:2:1: expected a directive: scenario, summary"),
    ("scenario a\npti maybe\n", "t:2:5: expected on or off"),
    ("scenario a\nwords per-thread\n", "t:2:7: expected per-cpu or per-task"),
    ("scenario a\ncpu 0 kernel mces=2: flush_kernel_tlb\n", "t:2:14: expected nmis=K or irqs=K with K from 0 to 3, or mces=K with K 0 or 1"),
    ("scenario a\ncpu 0 kernel: flush_kernel_tlb\ncpu 1 user: enter_from_user switch_to(2)\n",
     "expected a well-formed scenario: a: cpu1 switch_to(task2): needs per-task words ('words per-task')"),
    ("scenario a\nwords per-task\ncpu 0 kernel: synchronize_rcu\ncpu 1 user: enter_from_user\n",
     "expected a well-formed scenario: a: cpu0 synchronize_rcu: RCU stays on per-CPU words"),
    ("scenario a\nwords per-task\ncpu 0 kernel: flush_kernel_tlb\ncpu 1 user: enter_from_user switch_to(1)\n",
     "expected a well-formed scenario: a: cpu1 switch_to(task1): a task from 0 to 2 other than the CPU's own first task 1"),
])
func badFilesNameTheLineAndColumn(_ text: String, _ expected: String) {
    do {
        _ = try ScenarioFile.parse(text, source: "t")
        Issue.record("no error for:\n\(text)")
    } catch {
        #expect(error.description.contains(expected), "\(error.description)")
    }
}

/// A scenario read from its file explores exactly as the built-in one.
@Test func aFileExploresLikeTheBuiltIn() throws {
    let s = try #require(Scenario.named("pin"))
    let fromFile = try ScenarioFile.parse(String(contentsOf: scenarioDir.appendingPathComponent("pin.scenario"), encoding: .utf8), source: "pin")
    let a = Explorer(scenario: s, model: .tso).run()
    let b = Explorer(scenario: fromFile, model: .tso).run()
    #expect(a.states == b.states && a.violation == nil && b.violation == nil)
}

/// Hash compaction stores fingerprints only: on every standard scenario it reaches the
/// same number of states as the exact search (no collision at this size) and reports a
/// pass as probable, never as a proof; a mutant is still caught with a counterexample.
@Test(arguments: Scenario.standard.filter { $0.cpuCount <= 2 }.map(\.name))
func hashCompactAgreesWithTheExactSearch(_ name: String) throws {
    let s = try #require(Scenario.named(name))
    var compact = Limits()
    compact.hashCompact = true
    let exact = Explorer(scenario: s, model: .tso).run()
    let hc = Explorer(scenario: s, model: .tso, limits: compact).run()
    #expect(hc.states == exact.states && hc.executions == exact.executions)
    #expect(exact.exhaustive && exact.probable == nil)
    #expect(hc.passed && !hc.exhaustive && hc.probable?.contains("hash-compact") == true)
    #expect(Summary([hc]).lines.allSatisfy { $0.verdict == "probable" })
}

@Test func hashCompactStillCatchesAMutant() throws {
    var s = try #require(Scenario.named("nmi"))
    s.config.mutations = .entryExchange
    var compact = Limits()
    compact.hashCompact = true
    let r = Explorer(scenario: s, model: .sc, limits: compact).run()
    #expect(r.violation != nil && r.counterexample != nil)
}

/// Depth-first search reaches the same states, executions and transitions as the
/// breadth-first one without sleep sets (exact or hash-compact: neither uses them), and
/// still finds a mutant's violation.
@Test(arguments: ["nmi", "pin-nmi", "idle-wake", "rcu-lazy"])
func depthFirstAgreesWithBreadthFirst(_ name: String) throws {
    let s = try #require(Scenario.named(name))
    var dfs = Limits()
    dfs.depthFirst = true
    var dfsHC = dfs
    dfsHC.hashCompact = true
    var bfs = Limits()
    bfs.reduction = false
    let b = Explorer(scenario: s, model: .tso, limits: bfs).run()
    for l in [dfs, dfsHC] {
        let d = Explorer(scenario: s, model: .tso, limits: l).run()
        #expect(d.states == b.states && d.executions == b.executions && d.transitions == b.transitions, "\(name) \(l)")
        #expect(d.passed == b.passed)
        // No sleep sets in a depth-first search, and the report must not say there were.
        #expect(!d.reduced && d.sleptMoves == 0, "\(name) \(l)")
    }
    var bad = s
    bad.config.mutations = name == "rcu-lazy" ? .indeterminateRCUIdle : .workAfterKernelCode
    let v = Explorer(scenario: bad, model: .tso, limits: dfs).run()
    #expect(v.violation != nil && v.counterexample != nil, "\(name): a mutant under depth-first")
}
