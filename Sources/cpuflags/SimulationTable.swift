import ArgumentParser
import CPUFlags
import Explorer
import Foundation
import Simulator
import TextTable


enum SimulationTable {
    static func us(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }

    /// A per-round-trip figure, or "-" when there was no round trip to average over.
    static func perRoundTrip(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "-" }

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
                Column(title: "atomics/rt", value: perRoundTrip(r.atomicsPerRoundTrip, "%.2f"), align: .right),
                Column(title: "entry ns/rt", value: perRoundTrip(r.entryOverheadNsPerRoundTrip, "%.0f"), align: .right),
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
