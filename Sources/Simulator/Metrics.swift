import CPUFlags
import Foundation
import HeapModule
import Histogram

/// The results of one policy on one machine.
public struct PolicyResult: Codable, Sendable {
    public struct Percentiles: Codable, Sendable {
        public var count: UInt64
        public var p50: UInt64
        public var p99: UInt64
        public var p9999: UInt64
        public var max: UInt64
        init(_ h: Histogram<UInt64>) {
            count = h.totalCount
            p50 = h.totalCount == 0 ? 0 : h.valueAtPercentile(50)
            p99 = h.totalCount == 0 ? 0 : h.valueAtPercentile(99)
            p9999 = h.totalCount == 0 ? 0 : h.valueAtPercentile(99.99)
            max = h.totalCount == 0 ? 0 : h.max
        }
    }
    public var policy: Policy
    public var isolatedCPUs: Int
    /// Simulated seconds covered (less than asked for when the run is incomplete).
    public var seconds: Double
    /// Interruptions of isolated CPUs (handlers that began within the run), in all and
    /// by cause. The cause keys are the housekeeping sources' names in kebab-case,
    /// the same keys as `requests`: `kernel-tlb-flush`, `text-patch` (its sync_core
    /// rounds), `rcu-expedited`, `user-tlb-shootdown`, `wakeup`, `cache-drain`,
    /// `page-table-free`; plus `rcu-force-quiescent` for the interrupts of a normal
    /// grace period's forced-quiescent-state scan (its request is `rcu-normal`).
    public var interruptions: Int
    public var interruptionsByCause: [String: Int]
    public var interruptionsPerCPUPerSecond: Double
    /// Interrupts that found an isolated CPU idle (counted in `interruptions`; they cost
    /// no task time, so they are not in the lost time or the cost distribution).
    public var idleInterruptions: Int
    /// Time the isolated tasks lost to interruptions and entry overhead, per CPU per
    /// second (ns). A CPU handles one thing at a time, so this is at most 1e9.
    public var lostNsPerCPUPerSecond: Double
    /// Cost of one interruption of an isolated CPU from user mode (ns).
    public var interruptionCost: Percentiles
    /// Deferrals, skips, on-behalf runs and hardware flushes that replaced interrupts.
    public var deliveries: [String: Int]
    /// Requests each housekeeping source made (a text-patch batch counts once), keyed
    /// as `interruptionsByCause`.
    public var requests: [String: Int]
    /// User round trips of isolated CPUs (syscalls, idle periods and interrupts from user).
    public var roundTrips: Int
    /// Atomics and ns of entry overhead (atomics plus the work the entry ran) per user
    /// round trip; nil when there was no round trip (no figure over zero round trips).
    public var atomicsPerRoundTrip: Double?
    public var entryOverheadNsPerRoundTrip: Double?
    /// Latency of each on_each_cpu-style call (ns), from its start until its last
    /// target finished the handler (targets busy with other work make it wait).
    public var requesterLatency: Percentiles
    public var gracePeriodNormal: Percentiles
    public var gracePeriodExpedited: Percentiles
    public var events: Int
    /// Set when the run stopped at `eventsMax` before the simulated time was over.
    public var incomplete: String?
    public var violation: String?
    /// The events that led to the violation, oldest first.
    public var violationEvents: [String]?
}

extension PolicyResult {
    /// As synthesized, except that the per-round-trip figures are written as `null`
    /// when there was no round trip (rather than left out), so that a reader sees
    /// "no figure" rather than a missing field.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(policy, forKey: .policy)
        try c.encode(isolatedCPUs, forKey: .isolatedCPUs)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(interruptions, forKey: .interruptions)
        try c.encode(interruptionsByCause, forKey: .interruptionsByCause)
        try c.encode(interruptionsPerCPUPerSecond, forKey: .interruptionsPerCPUPerSecond)
        try c.encode(idleInterruptions, forKey: .idleInterruptions)
        try c.encode(lostNsPerCPUPerSecond, forKey: .lostNsPerCPUPerSecond)
        try c.encode(interruptionCost, forKey: .interruptionCost)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(requests, forKey: .requests)
        try c.encode(roundTrips, forKey: .roundTrips)
        try c.encode(atomicsPerRoundTrip, forKey: .atomicsPerRoundTrip)
        try c.encode(entryOverheadNsPerRoundTrip, forKey: .entryOverheadNsPerRoundTrip)
        try c.encode(requesterLatency, forKey: .requesterLatency)
        try c.encode(gracePeriodNormal, forKey: .gracePeriodNormal)
        try c.encode(gracePeriodExpedited, forKey: .gracePeriodExpedited)
        try c.encode(events, forKey: .events)
        try c.encodeIfPresent(incomplete, forKey: .incomplete)
        try c.encodeIfPresent(violation, forKey: .violation)
        try c.encodeIfPresent(violationEvents, forKey: .violationEvents)
    }
}

extension Simulation {
    func result() -> PolicyResult {
        let n = Double(max(isolatedList.count, 1))
        let stopped = events >= SimulatorLimits.eventsMax
        // Rates are per simulated second actually covered.
        let seconds = stopped ? max(Double(now) / 1e9, 1e-9) : config.seconds
        return PolicyResult(
            policy: policy, isolatedCPUs: isolatedList.count, seconds: seconds,
            interruptions: interruptions, interruptionsByCause: byCause,
            interruptionsPerCPUPerSecond: Double(interruptions) / n / seconds,
            idleInterruptions: idleInterruptions,
            lostNsPerCPUPerSecond: lostNs / n / seconds,
            interruptionCost: .init(interruptionCost), deliveries: deliveries, requests: requests,
            roundTrips: roundTrips,
            // No figure over zero round trips (not even context tracking's model input).
            atomicsPerRoundTrip: roundTrips == 0 ? nil : roundTripAtomics / Double(roundTrips),
            entryOverheadNsPerRoundTrip: roundTrips == 0 ? nil : roundTripOverheadNs / Double(roundTrips),
            requesterLatency: .init(requesterLatency), gracePeriodNormal: .init(gpNormal),
            gracePeriodExpedited: .init(gpExpedited), events: events,
            incomplete: stopped ? String(format: "stopped after eventsMax = %d events at %.3f simulated s; lower the rates or the duration", SimulatorLimits.eventsMax, seconds) : nil,
            violation: platform.violation,
            violationEvents: platform.violation == nil ? nil : recentEvents())
    }
}
