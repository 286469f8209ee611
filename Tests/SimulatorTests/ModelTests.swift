import CPUFlags
import Foundation
import Testing

@testable import Simulator

/// Runs `policies` on `mc` with a trace of `window` (default: the whole run) streamed to
/// a temporary file; returns the results and the file's parsed events.
func tracedRun(_ mc: MachineConfig, _ policies: [Policy], window: ClosedRange<Int64>? = nil, eventsMax: Int = 2_000_000)
    throws -> (results: [PolicyResult], events: [[String: Any]], writer: ChromeTraceWriter, data: Data) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("cpuflags-trace-\(UUID().uuidString).json").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    let list = try mc.validate()
    let writer = try ChromeTraceWriter(path: path, isolated: Set(list.cpus), eventsMax: eventsMax)
    var results: [PolicyResult] = []
    for p in policies {
        let sim = try Simulation(config: mc, policy: p)
        sim.traceWindowNs = window ?? 0...Simulation.lengthNs(of: mc)
        sim.traceSink = writer
        writer.beginProcess(p)
        results.append(sim.run())
    }
    try writer.finish()
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    return (results, json["traceEvents"] as! [[String: Any]], writer, data)
}

/// Slices ("X") per (process, thread), as integer ns (start, end), sorted by start.
func slices(_ events: [[String: Any]], named prefix: String = "") -> [String: [(start: Int64, end: Int64, name: String)]] {
    var out: [String: [(start: Int64, end: Int64, name: String)]] = [:]
    for e in events where e["ph"] as? String == "X" {
        let name = e["name"] as! String
        guard name.hasPrefix(prefix) else { continue }
        let ts = e["ts"] as! Double, dur = e["dur"] as! Double
        let start = Int64((ts * 1000).rounded()), end = Int64(((ts + dur) * 1000).rounded())
        out["\(e["pid"]!)/\(e["tid"]!)", default: []].append((start, end, name))
    }
    return out.mapValues { $0.sorted { $0.start < $1.start } }
}

/// A machine where interrupts collide: frequent broadcasts with long handlers, syscalls
/// and idle periods, so that interrupts arrive while their target is busy.
func busyMachine(_ tweak: (inout MachineConfig) -> Void = { _ in }) -> MachineConfig {
    smallMachine { c in
        c.seconds = 0.2
        c.workload.kernelTLBFlushPerSec = 2_000
        c.workload.textPatchBatchesPerSec = 200
        c.workload.rcuExpeditedPerSec = 200
        c.workload.cacheDrainsPerSec = 200
        c.workload.isolatedSyscallsPerSec = 2_000
        c.workload.isolatedIdlePeriodsPerSec = 50
        c.workload.isolatedIdleNs = 200_000
        c.costs.kernelTLBFlushNs = 50_000
        c.costs.syncCoreNs = 30_000
        c.costs.syscallKernelNs = 40_000
        tweak(&c)
    }
}

/// Item 21: a CPU handles one thing at a time, so the slices on one CPU's track never
/// overlap (before, an interrupt's slice began at its arrival whatever the CPU was
/// doing, and the three sync_core rounds of a patch stacked at one instant).
@Test(arguments: Policy.allCases)
func slicesOnOneTrackNeverOverlap(_ policy: Policy) throws {
    let run = try tracedRun(busyMachine(), [policy])
    let tracks = slices(run.events)
    #expect(!tracks.isEmpty)
    var checked = 0
    for (track, s) in tracks {
        for (a, b) in zip(s, s.dropFirst()) {
            #expect(b.start >= a.end, "\(policy) \(track): \(a.name) [\(a.start), \(a.end)] overlaps \(b.name) at \(b.start)")
            checked += 1
        }
    }
    #expect(checked > 100, "the run had collisions to check")
    #expect(run.results[0].violation == nil)
}

/// Item 21: with extreme costs the lost time per CPU per second stays at most a second
/// (before: about 60 interruptions of 3 s each per CPU-second were all charged).
@Test(arguments: Policy.allCases)
func lostTimeNeverExceedsTheRun(_ policy: Policy) throws {
    var mc = MachineConfig()
    mc.workload.isolatedSyscallsPerSec = 100
    for k in [\CostModel.ipiLatencyNs, \.interruptEntryExitNs, \.kernelTLBFlushNs, \.syncCoreNs, \.cacheDrainNs,
              \.userTLBFlushNs, \.rescheduleNs, \.rcuExpHandlerNs, \.emptyHandlerNs, \.syscallKernelNs] {
        mc.costs[keyPath: k] = 1e9
    }
    let r = try Simulation(config: mc, policy: policy).run()
    #expect(r.lostNsPerCPUPerSecond <= 1e9, "\(policy): \(r.lostNsPerCPUPerSecond)")
    #expect(r.violation == nil)
}

/// Item 21: the three sync rounds of a text patch follow one another as in
/// text_poke_bp_batch: on each CPU, the interrupts of a batch's rounds are ordered and
/// at least one handler duration apart (before: all three arrived at the same instant).
@Test func textPatchRoundsFollowOneAnother() throws {
    let mc = smallMachine { c in
        c.workload.kernelTLBFlushPerSec = 0
        c.workload.userTLBShootdownPerSec = 0
        c.workload.wakeupsPerSec = 0
        c.workload.textPatchBatchesPerSec = 50
        c.costs.syncCoreNs = 20_000
    }
    let run = try tracedRun(mc, [.linux])
    let handler = Int64(mc.costs.syncCoreNs + mc.costs.interruptEntryExitNs)
    let patches = run.results[0].requests["text-patch"] ?? 0
    #expect(patches > 50)
    var cpus = 0
    for (track, s) in slices(run.events, named: "IPI: text-patch") {
        cpus += 1
        // Every batch is three rounds: on each CPU, 3 slices per batch.
        #expect(s.count == 3 * patches, "\(track)")
        for (a, b) in zip(s, s.dropFirst()) {
            #expect(b.start - a.start >= handler, "\(track): rounds \(a.start) and \(b.start) closer than one handler")
        }
    }
    #expect(cpus == 4, "every isolated CPU took the rounds")
    // And the requester waited for each round: a round's latency covers the handler.
    #expect(Double(run.results[0].requesterLatency.p50) >= Double(handler))
}

/// Same seed, same trace file, byte for byte.
@Test func tracesAreDeterministic() throws {
    let a = try tracedRun(busyMachine(), [.cpuflagsAdaptive, .linux])
    let b = try tracedRun(busyMachine(), [.cpuflagsAdaptive, .linux])
    #expect(a.data == b.data)
}

/// Item 5: no per-round-trip figure over zero round trips, and no constant reported as
/// an outcome (context tracking's 2 atomics is an input: without round trips, nothing).
@Test func noPerRoundTripFigureWithoutRoundTrips() throws {
    var mc = MachineConfig()
    mc.workload = Workload()
    for k in [\Workload.kernelTLBFlushPerSec, \.textPatchBatchesPerSec, \.rcuExpeditedPerSec, \.rcuNormalPerSec,
              \.userTLBShootdownPerSec, \.wakeupsPerSec, \.cacheDrainsPerSec, \.pageTableFreeSyncsPerSec] {
        mc.workload[keyPath: k] = 0
    }
    for p in [Policy.linux, .cpuflags] {
        let r = try Simulation(config: mc, policy: p).run()
        #expect(r.roundTrips == 0)
        #expect(r.atomicsPerRoundTrip == nil, "\(p)")
        #expect(r.entryOverheadNsPerRoundTrip == nil, "\(p)")
        // JSON says null rather than a number or nothing.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as! [String: Any]
        #expect(json["atomicsPerRoundTrip"] is NSNull)
        #expect(json["entryOverheadNsPerRoundTrip"] is NSNull)
        #expect(json["housekeepingAtomicsPerRoundTrip"] == nil, "a constant is not a result")
    }
    // With round trips the figure is measured: cpuflags 1 atomic, context tracking its input.
    mc.workload.isolatedSyscallsPerSec = 100
    #expect(try Simulation(config: mc, policy: .cpuflags).run().atomicsPerRoundTrip == 1)
    #expect(try Simulation(config: mc, policy: .linux).run().atomicsPerRoundTrip == mc.costs.contextTrackingAtomicsPerRoundTrip)
}

/// Item 23: one set of keys for causes and requests (the sources' kebab-case names),
/// plus rcu-force-quiescent for the forced-quiescent-state scan's interrupts.
@Test func causeKeysAreTheRequestKeys() throws {
    let lazy = try Simulation(config: MachineConfig(), policy: .cpuflagsLazy).run()
    let linux = try Simulation(config: MachineConfig(), policy: .linux).run()
    #expect((lazy.interruptionsByCause["rcu-force-quiescent"] ?? 0) > 0)
    for r in [lazy, linux] {
        for key in r.interruptionsByCause.keys {
            #expect(Simulation.causeKeys.contains(key), "\(key)")
            #expect(key == "rcu-force-quiescent" || r.requests[key] != nil, "\(key) has no request of its name")
        }
        for key in r.requests.keys {
            #expect(key.allSatisfy { $0.isLowercase || $0 == "-" }, "\(key) is kebab-case")
        }
    }
    #expect(Set(Simulation.causeKeys).count == Simulation.causeKeys.count)
}

/// Item 7: every conversion to an integer is clamped: no trap whatever the value.
@Test func conversionsAreClamped() {
    #expect(Simulation.nanoseconds(1e300) == Int64(Simulation.durationNsMax))
    #expect(Simulation.nanoseconds(.infinity) == Int64(Simulation.durationNsMax))
    #expect(Simulation.nanoseconds(-.infinity) == 0)
    #expect(Simulation.nanoseconds(.nan) == 0)
    #expect(Simulation.nanoseconds(-5) == 0)
    #expect(Simulation.nanoseconds(3.3) == 4, "rounded up: what takes 3.3 ns ends after 3 ns")
    var rng = SplitMix64(state: 1)
    #expect(rng.exponentialNs(perSecond: 1e-300) == Int64(1e17))
    #expect(rng.exponentialNs(perSecond: .nan) >= 0)
}

/// Item 7: extreme but valid costs (every cost at costNsMax's default, 1e12 ns) and
/// rates of 1e6/s over a tiny duration run to the end without a trap.
@Test(arguments: Policy.allCases)
func extremeValidCostsDoNotTrap(_ policy: Policy) throws {
    var mc = MachineConfig()
    mc.cpus = 16
    mc.isolated = "2-15"
    mc.seconds = 1e-3  // the shortest run the simulator accepts (SimulatorLimits.secondsMin)
    for k in [\CostModel.atomicNs, \.ipiSendNs, \.ipiLatencyNs, \.interruptEntryExitNs, \.kernelTLBFlushNs, \.syncCoreNs,
              \.cacheDrainNs, \.userTLBFlushNs, \.rescheduleNs, \.rcuExpHandlerNs, \.emptyHandlerNs, \.hardwareFlushNs,
              \.syscallKernelNs, \.contextTrackingAtomicsPerRoundTrip, \.rcuForceQuiescentNs, \.housekeepingQuiescentNs] {
        mc.costs[keyPath: k] = 1e12
    }
    for k in [\Workload.kernelTLBFlushPerSec, \.textPatchBatchesPerSec, \.rcuExpeditedPerSec, \.rcuNormalPerSec,
              \.userTLBShootdownPerSec, \.wakeupsPerSec, \.cacheDrainsPerSec, \.pageTableFreeSyncsPerSec,
              \.isolatedSyscallsPerSec, \.isolatedIdlePeriodsPerSec] {
        mc.workload[keyPath: k] = 1e6
    }
    mc.workload.isolatedIdleNs = 1e12
    let r = try Simulation(config: mc, policy: policy).run()
    #expect(r.lostNsPerCPUPerSecond <= 1e9)
    #expect(r.lostNsPerCPUPerSecond.isFinite && r.interruptionsPerCPUPerSecond.isFinite)
    #expect(r.events > 0)
    _ = try JSONEncoder().encode(r)
}
