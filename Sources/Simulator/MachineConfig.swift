import Foundation

/// The simulator's own safety limits. They guard the machine running the simulation (its
/// memory and time), so they are constants, not config fields: a config file or an option
/// cannot raise them (a 20-million-CPU config once ran 46 s at 1.9 GB before they were).
public enum SimulatorLimits {
    /// Largest machine: the cpulist bitmap and the per-CPU arrays are this long at most.
    public static let cpusMax = 4096
    /// Events a run may process; `validate()` refuses a run whose estimate is above it.
    public static let eventsMax = 50_000_000
    /// Deliveries (one per target of each request) a run may make; checked up front from
    /// the rates, so that a run that would take hours is refused at once.
    public static let deliveriesMax = 300_000_000
    /// Trace events kept for `--trace`; recording stops there (and says so).
    public static let traceEventsMax = 2_000_000
    /// Largest rate per second of any workload source.
    public static let ratePerSecondMax: Double = 1_000_000
    /// Largest cost or duration parameter, in ns (1000 s): keeps every time the simulation
    /// computes from them far below Int64.max ns, so no conversion to Int64 can trap.
    public static let costNsMax: Double = 1e12
    /// Shortest run: the simulated clock counts whole nanoseconds, and the model's own time
    /// constants are microseconds to milliseconds (an IPI 1 µs, a tick 1 ms); a run shorter
    /// than 1 ms resolves nothing (1e-12 s was 0 ns and printed all-zero rows).
    public static let secondsMin: Double = 0.001
    /// Longest run (an hour of simulated time).
    public static let secondsMax: Double = 3600
    /// Largest config file, checked before reading it (1 MiB: a config is a few hundred bytes).
    public static let configBytesMax = 1 << 20
    /// Deepest nesting of objects and arrays in a config file (a config needs 2).
    public static let configDepthMax = 32
    /// Values of one `--sweep`, and combinations of all of them (their cross product).
    public static let sweepValuesMax = 64
    public static let sweepCombinationsMax = 256
}

/// A machine to simulate: size, isolated CPUs, duration, load, costs, seed.
public struct MachineConfig: Codable, Hashable, Sendable {
    public var cpus: Int = 64
    /// The isolated CPUs as a kernel cpulist (`nohz_full=` syntax); nil: the default for
    /// the machine's size (`defaultIsolated(cpus:)`), whatever the size is set to later.
    public var isolated: String? = nil
    public var seconds: Double = 1
    public var seed: UInt64 = 1
    public var workload = Workload()
    public var costs = CostModel()
    /// ct-defer only: also defer kernel TLB flushes to isolated CPUs by flushing
    /// unconditionally at each of their entries (the RFC patches' COALESCE_TLBI).
    public var ctDeferKernelTLB: Bool = false
    public init() {}

    /// The one rule for the isolated CPUs when none were given (neither `--isolated` nor
    /// an `isolated` field): CPUs 8 to n-1 on machines of more than 8 CPUs (0-7 do the
    /// housekeeping), else 1 to n-1 (CPU 0 does). Used by `--cpus`, `--sweep cpus=...`
    /// and with or without `--config`, since `isolated` stays nil until given.
    public static func defaultIsolated(cpus: Int) -> String {
        cpus > 8 ? "8-\(cpus - 1)" : "1-\(max(cpus - 1, 1))"
    }

    /// The isolated CPUs' cpulist text: the one given, or the default for `cpus`.
    public var isolatedText: String { isolated ?? MachineConfig.defaultIsolated(cpus: cpus) }
}

extension MachineConfig {
    /// What the simulation of this machine will do at most, from the rates: an upper bound
    /// (every policy interrupts at most as often as linux, which interrupts every target).
    public struct WorkEstimate: Sendable {
        /// Events the event loop pops (see `Simulation.run`).
        public var events: Double
        /// Deliveries: one per target of each request.
        public var deliveries: Double
    }

    public func estimate(isolatedCount n: Int) -> WorkEstimate {
        let w = workload
        let firingsPerSec = Simulation.Source.allCases.reduce(0) { $0 + $1.rate(w) }
        // Requests that go to every CPU (a text-patch batch is three sync_core broadcasts;
        // a normal grace period scans every CPU).
        let broadcastsPerSec = w.kernelTLBFlushPerSec + 3 * w.textPatchBatchesPerSec + w.rcuExpeditedPerSec
            + w.rcuNormalPerSec + w.cacheDrainsPerSec + w.pageTableFreeSyncsPerSec
        let targetedPerSec = w.userTLBShootdownPerSec + w.wakeupsPerSec
        // The events Simulation schedules, at most: each source firing, and the two later
        // rounds of each text-patch batch (`.textPatchRound`); per isolated target of a
        // broadcast (or force-quiescent scan) and per targeted request, an `.interrupt`
        // and its `.runningEnds`, and up to two postponements it causes (a pending
        // `.syscall` or `.syscallExit` moved behind it): 4; a `.syscall` and its
        // `.syscallExit`: 2; an `.idleEnter`, its `.idleExit`, the `.runningEnds` of the
        // deferred work it runs and one postponement: 4.
        let eventsPerSec = firingsPerSec + 2 * w.textPatchBatchesPerSec
            + 4 * (broadcastsPerSec * Double(n) + targetedPerSec)
            + 2 * w.isolatedSyscallsPerSec * Double(n) + 4 * w.isolatedIdlePeriodsPerSec * Double(n)
        let deliveriesPerSec = broadcastsPerSec * Double(max(cpus - 1, 0)) + targetedPerSec
        return WorkEstimate(events: seconds * eventsPerSec, deliveries: seconds * deliveriesPerSec)
    }

    /// Checks every field against its limit and returns the isolated CPUs; the errors
    /// name the field, its value and what was expected.
    public func validate() throws -> CPUList {
        // Every number against the one rule for its field (the same rule a config file,
        // an option and a sweep value are checked against).
        for field in MachineConfig.fields where field.kind.isNumeric {
            guard let value = numericValue(at: field.path) else { continue }
            if let expected = MachineConfig.problem(field: field, value: value) {
                throw Simulation.SetupError.bad("\(field.path): \(MachineConfig.show(value)): expected \(expected)")
            }
        }
        let text = isolatedText
        let list: CPUList
        do { list = try CPUList(parsing: text, cpuCount: cpus) } catch { throw Simulation.SetupError.bad("isolated: \(error)") }
        guard list.cpus.count < cpus else {
            throw Simulation.SetupError.bad("isolated: '\(list)' leaves no housekeeping CPU of the \(cpus)")
        }
        guard !list.cpus.isEmpty else { throw Simulation.SetupError.bad("isolated: '\(text)' names no CPU") }
        let e = estimate(isolatedCount: list.cpus.count)
        guard e.deliveries <= Double(SimulatorLimits.deliveriesMax) else {
            throw Simulation.SetupError.bad(String(format: "this run would make about %.3g deliveries, more than the simulator's limit deliveriesMax (%d): lower the rates, the CPUs or the seconds", e.deliveries, SimulatorLimits.deliveriesMax))
        }
        guard e.events <= Double(SimulatorLimits.eventsMax) else {
            throw Simulation.SetupError.bad(String(format: "this run would process about %.3g events, more than the simulator's limit eventsMax (%d): lower the rates (syscalls and idle periods make 2 events each per isolated CPU), the CPUs or the seconds", e.events, SimulatorLimits.eventsMax))
        }
        return list
    }
}
