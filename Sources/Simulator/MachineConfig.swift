import Foundation

/// A machine to simulate: size, isolated CPUs, duration, load, costs, seed.
public struct MachineConfig: Codable, Hashable, Sendable {
    public var cpus: Int = 64
    /// The isolated CPUs as a kernel cpulist (`nohz_full=` syntax).
    public var isolated: String = "8-63"
    public var seconds: Double = 1
    public var seed: UInt64 = 1
    public var workload = Workload()
    public var costs = CostModel()
    /// ct-defer only: also defer kernel TLB flushes to isolated CPUs by flushing
    /// unconditionally at each of their entries (the RFC patches' COALESCE_TLBI).
    public var ctDeferKernelTLB: Bool = false
    /// Limits: a run stops with an error rather than grow without bound.
    public var cpusMax: Int = 4096
    public var eventsMax: Int = 50_000_000
    /// Deliveries (one per target of each request) a run may make; checked up front
    /// from the rates, so that a run that would take hours is refused at once.
    public var deliveriesMax: Int = 300_000_000
    /// Trace events kept for `--trace`; recording stops there (and says so).
    public var traceEventsMax: Int = 2_000_000
    /// Largest rate per second of any workload source.
    public var ratePerSecondMax: Double = 1_000_000
    /// Largest cost or duration parameter, in ns (1000 s).
    public var costNsMax: Double = 1e12
    public init() {}
}

extension MachineConfig {
    /// Checks every field against its limit and returns the isolated CPUs; the errors
    /// name the field, its value and what was expected.
    public func validate() throws -> CPUList {
        guard cpus >= 2 && cpus <= cpusMax else {
            throw Simulation.SetupError.bad("cpus: \(cpus), expected 2 to \(cpusMax)")
        }
        guard seconds > 0 && seconds <= 3600 else {
            throw Simulation.SetupError.bad("seconds: \(seconds), expected more than 0 and at most 3600")
        }
        let list: CPUList
        do { list = try CPUList(parsing: isolated, cpuCount: cpus) } catch { throw Simulation.SetupError.bad("isolated: \(error)") }
        guard list.cpus.count < cpus else {
            throw Simulation.SetupError.bad("isolated: '\(isolated)' leaves no housekeeping CPU")
        }
        guard !list.cpus.isEmpty else { throw Simulation.SetupError.bad("isolated: '\(isolated)' names no CPU") }
        // Every rate and cost: finite, not negative, within its named limit.
        for (group, value) in [("workload", workload as Any), ("costs", costs as Any)] {
            for child in Mirror(reflecting: value).children {
                guard let k = child.label, let d = child.value as? Double else { continue }
                let isRate = k.hasSuffix("PerSec")
                let maxV = isRate ? ratePerSecondMax : costNsMax
                guard d.isFinite, d >= 0, d <= maxV else {
                    throw Simulation.SetupError.bad("\(group).\(k): \(d), expected a finite number from 0 to \(maxV)\(isRate ? " per second (ratePerSecondMax)" : " (costNsMax)")")
                }
            }
        }
        let w = workload
        let broadcastsPerSec = w.kernelTLBFlushPerSec + 3 * w.textPatchBatchesPerSec + w.rcuExpeditedPerSec
            + w.rcuNormalPerSec + w.cacheDrainsPerSec + w.pageTableFreeSyncsPerSec
        let perIsolatedPerSec = w.isolatedSyscallsPerSec + 2 * w.isolatedIdlePeriodsPerSec
        let estimate = seconds * (broadcastsPerSec * Double(cpus)
            + perIsolatedPerSec * Double(list.cpus.count) + w.userTLBShootdownPerSec + w.wakeupsPerSec)
        guard estimate <= Double(deliveriesMax) else {
            throw Simulation.SetupError.bad(String(format: "this run would make about %.3g deliveries and events, more than deliveriesMax (%d): lower the rates, the CPUs or the seconds", estimate, deliveriesMax))
        }
        return list
    }
}
