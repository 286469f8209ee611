import Foundation

/// Deterministic random numbers (SplitMix64): the same seed gives the same run.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    mutating func unit() -> Double { (Double(next() >> 11) + 1) / Double(1 << 53) }
    /// Exponential inter-arrival time for `perSecond`, in ns.
    mutating func exponentialNs(perSecond: Double) -> Int64 {
        // Clamped far beyond any run's end (3600 s) so that tiny rates cannot overflow.
        Simulation.nanoseconds(-log(unit()) / perSecond * 1e9, max: 1e17)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
