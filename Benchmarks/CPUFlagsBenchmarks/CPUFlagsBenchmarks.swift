// The cost of one user round trip (exit to user, then enter from user) through the
// protocol core on `HardwarePlatform`, next to the same two atomic accesses written by
// hand. Goal: the core's strict round trip within 1.2x of the hand-written one.
//
// Each benchmark iteration runs `scaledIterations` (1,000,000) round trips; with the
// `.mega` scaling factor the table shows time per round trip (`run.sh` prints it to
// 0.01 ns, with the ratio). The loops are in Tools/RoundTrips, shared with the
// instruction counter. This VM has no hardware performance counters, so the
// `instructions` metric stays empty here; `run.sh` counts instructions with callgrind.
//
// Explorer throughput: "explorer three-cpus SC" and "explorer three-cpus TSO" run one
// full exhaustive exploration of the three-cpus scenario per iteration (about 0.4-0.5 s
// under SC, 0.7-1 s under TSO on this 2-core VM), so they take few iterations: one
// warm-up, then at most 5, or 5 s. Besides wall clock they record the explorer's own counts as custom metrics:
// `states` and `transitions` (deterministic, so every percentile is the same number; a
// change means the scenario or the explorer changed, not noise) and `states per second`.
// Each iteration asserts that the exploration was complete and found no violation.

import Benchmark
import Explorer
import RoundTrips
import Simulator

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .instructions, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 150
    )

    // One fixture per benchmark: CPU 0 starts in KERNEL (memory starts at zero) and every
    // round trip leaves it in KERNEL again.
    func roundTrip(_ name: String, _ kind: RoundTripKind) {
        let fixture = RoundTripFixture()
        Benchmark(name) { benchmark in
            blackHole(fixture.run(kind, count: benchmark.scaledIterations.count))
        }
    }
    roundTrip("user round trip (cpuflags core, strict)", .coreStrict)
    roundTrip("user round trip (hand-written baseline)", .handWritten)
    roundTrip("user round trip (cpuflags core, lazy)", .coreLazy)

    let states = BenchmarkMetric.custom("states", polarity: .prefersSmaller, useScalingFactor: false)
    let transitions = BenchmarkMetric.custom("transitions", polarity: .prefersSmaller, useScalingFactor: false)
    let statesPerSecond = BenchmarkMetric.custom("states per second", polarity: .prefersLarger, useScalingFactor: false)
    let explorerConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, states, transitions, statesPerSecond],
        timeUnits: .milliseconds,
        // Exact counts in the table, not "36 (K)".
        units: [states: .count, transitions: .count, statesPerSecond: .count],
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 5
    )
    func explore(_ scenarioName: String, _ model: MemoryModel) {
        guard let scenario = Scenario.named(scenarioName) else {
            fatalError("no scenario named \(scenarioName)")
        }
        Benchmark("explorer \(scenarioName) \(model.description)", configuration: explorerConfiguration) { benchmark in
            let report = Explorer(scenario: scenario, model: model).run()
            precondition(report.violation == nil, "\(scenarioName) under \(model.description): violation \(report.violation!)")
            precondition(report.incomplete == nil, "\(scenarioName) under \(model.description): incomplete, \(report.incomplete!)")
            benchmark.measurement(states, report.states)
            benchmark.measurement(transitions, report.transitions)
            benchmark.measurement(statesPerSecond, Int(report.statesPerSecond.rounded()))
            blackHole(report)
        }
    }
    explore("three-cpus", .sc)
    explore("three-cpus", .tso)

    // The machine simulator: one simulated second of a 256-CPU machine (isolated 16-255)
    // under the default mix, every policy in turn. Simulated events are deterministic
    // for the seed: the count that does not vary run to run.
    let simEvents = BenchmarkMetric.custom("simulated events", polarity: .prefersSmaller, useScalingFactor: false)
    let simEventsPerSecond = BenchmarkMetric.custom("simulated events per second", polarity: .prefersLarger, useScalingFactor: false)
    let simConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, simEvents, simEventsPerSecond],
        timeUnits: .milliseconds,
        units: [simEvents: .count, simEventsPerSecond: .count],
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 10
    )
    Benchmark("simulator 256 CPUs 1 s, all policies", configuration: simConfiguration) { benchmark in
        var mc = MachineConfig()
        mc.cpus = 256
        mc.isolated = "16-255"
        var events = 0
        let start = ContinuousClock.now
        for policy in Policy.allCases {
            let r = try! Simulation(config: mc, policy: policy).run()
            precondition(r.violation == nil && r.incomplete == nil, "\(policy): \(r.violation ?? r.incomplete!)")
            events += r.events
        }
        let seconds = (ContinuousClock.now - start).seconds
        benchmark.measurement(simEvents, events)
        benchmark.measurement(simEventsPerSecond, Int((Double(events) / seconds).rounded()))
    }
}
