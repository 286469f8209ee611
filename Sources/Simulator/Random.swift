import CPUFlags
import Foundation

/// The simulator's draws on the package's seeded generator (CPUFlags/SplitMix64.swift).
extension SplitMix64 {
    /// Uniform in (0, 1].
    mutating func unit() -> Double { (Double(next() >> 11) + 1) / Double(1 << 53) }
    /// Exponential inter-arrival time for `perSecond`, in ns.
    mutating func exponentialNs(perSecond: Double) -> Int64 {
        // Clamped far beyond any run's end (3600 s) so that tiny rates cannot overflow.
        Simulation.nanoseconds(-log(unit()) / perSecond * 1e9, max: 1e17)
    }
}
