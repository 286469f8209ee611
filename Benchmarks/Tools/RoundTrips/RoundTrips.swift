// The loops under measurement: `count` user round trips (exit to user, then enter from
// user) on CPU 0's word. Each returns the owed work of all its entries OR-ed together,
// for the caller to hand to `blackHole`, so the loop itself calls nothing but the code
// under test. `@inline(never)` keeps each loop one function, which callgrind can count
// on its own (`--toggle-collect=*coreStrictRoundTrips*`).

import Atomics
import CPUFlags

/// The core's round trip, `exitToUser()` then `enterFromUser()`, under `config`.
@inline(__always)
func coreRoundTrips(_ platform: HardwarePlatform, _ config: ProtocolConfig, count: Int) -> UInt32 {
    let f = CPUFlags(platform: platform, cpu: 0, config: config)
    var owed: UInt32 = 0
    for _ in 0..<count {
        f.exitToUser()
        owed |= f.enterFromUser().rawValue
    }
    return owed
}

/// Strict policy: a release store of USER, then one seq_cst RMW (lock xadd) to KERNEL.
/// `platform`'s CPU 0 must be in KERNEL. Its own function for callgrind's toggle.
@inline(never)
public func coreStrictRoundTrips(_ platform: HardwarePlatform, count: Int) -> UInt32 {
    coreRoundTrips(platform, ProtocolConfig(exitPolicy: .strict), count: count)
}

/// Lazy policy: a release store of INDETERMINATE, then a relaxed store of KERNEL.
@inline(never)
public func coreLazyRoundTrips(_ platform: HardwarePlatform, count: Int) -> UInt32 {
    coreRoundTrips(platform, ProtocolConfig(exitPolicy: .lazy), count: count)
}

/// What a hand-written kernel does for a strict round trip: one release store of a USER
/// word, one exchange (a locked xchg on x86) to a KERNEL word that hands back the owed
/// work. The RCU counter lives in a register, stepping once per round trip as the
/// core's does. Same word layout as `CPUWord` (counter from bit 40, work bits 32...39).
@inline(never)
public func handWrittenRoundTrips(_ word: UnsafeAtomic<UInt64>, count: Int) -> UInt32 {
    let user: UInt64 = 1, kernel: UInt64 = 0
    var counter: UInt64 = 0
    var owed: UInt64 = 0
    for _ in 0..<count {
        word.store((counter << 40) | user, ordering: .releasing)
        counter &+= 1
        owed |= word.exchange((counter << 40) | kernel, ordering: .sequentiallyConsistent)
    }
    return UInt32(truncatingIfNeeded: (owed >> 32) & 0xFF)
}

/// The three loops by name, in the order they are reported.
public enum RoundTripKind: String, CaseIterable, Sendable {
    case coreStrict = "core-strict"
    case handWritten = "hand-written"
    case coreLazy = "core-lazy"
}

/// The memory one loop runs on: a fresh `HardwarePlatform` (CPU 0 in KERNEL) and a
/// fresh hand-written word, each on its own allocation.
public final class RoundTripFixture: @unchecked Sendable {
    public let platform = HardwarePlatform(cpuCount: 2)
    public let word = UnsafeAtomic<UInt64>.create(0)
    public init() {}
    deinit {
        platform.deallocate()
        word.destroy()
    }

    /// Runs `count` round trips of `kind`; returns the OR of the owed work.
    public func run(_ kind: RoundTripKind, count: Int) -> UInt32 {
        switch kind {
        case .coreStrict: return coreStrictRoundTrips(platform, count: count)
        case .handWritten: return handWrittenRoundTrips(word, count: count)
        case .coreLazy: return coreLazyRoundTrips(platform, count: count)
        }
    }
}
