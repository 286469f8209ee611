// roundtrip-count KIND COUNT     run COUNT round trips of KIND once (for callgrind)
// roundtrip-count --time [COUNT] [RUNS]
//                                time every kind with ContinuousClock: RUNS runs of COUNT
//                                round trips each (defaults 1,000,000 and 15), interleaved,
//                                and print the median ns per round trip and the ratio
// KIND is one of: core-strict, hand-written, core-lazy.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RoundTrips

func usage() -> Never {
    print("usage: roundtrip-count KIND COUNT | roundtrip-count --time [COUNT] [RUNS]")
    print("kinds: \(RoundTripKind.allCases.map(\.rawValue).joined(separator: ", "))")
    exit(2)
}

@_optimize(none) func sink(_ x: UInt32) {}

let args = Array(CommandLine.arguments.dropFirst())
if args.first == "--time" {
    let count = args.count > 1 ? Int(args[1]) ?? 1_000_000 : 1_000_000
    let runs = args.count > 2 ? Int(args[2]) ?? 15 : 15
    let fixture = RoundTripFixture()
    var samples: [RoundTripKind: [Double]] = [:]
    let clock = ContinuousClock()
    for kind in RoundTripKind.allCases { sink(fixture.run(kind, count: count)) }  // warm-up
    for _ in 0..<runs {
        for kind in RoundTripKind.allCases {
            let d = clock.measure { sink(fixture.run(kind, count: count)) }
            let ns = Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
            samples[kind, default: []].append(ns / Double(count))
        }
    }
    func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
    for kind in RoundTripKind.allCases {
        let m = median(samples[kind]!)
        print("\(kind.rawValue)\t\((m * 100).rounded() / 100) ns/round trip (median of \(runs) x \(count))")
    }
    let ratio = median(samples[.coreStrict]!) / median(samples[.handWritten]!)
    print("ratio core-strict/hand-written\t\((ratio * 100).rounded() / 100)")
} else {
    guard args.count == 2, let kind = RoundTripKind(rawValue: args[0]), let count = Int(args[1]) else { usage() }
    sink(RoundTripFixture().run(kind, count: count))
}
