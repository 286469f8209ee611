/// Deterministic random numbers for the harnesses (the simulator's workloads, the
/// explorer's scenario samples): SplitMix64 (Steele, Lea, Flood 2014), tiny and the
/// same on every platform, so that a printed seed replays a run exactly. Not used by
/// the protocol itself.
public struct SplitMix64: Sendable {
    public var state: UInt64
    @inlinable public init(state: UInt64) { self.state = state }
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in 0..<n.
    @inlinable public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
