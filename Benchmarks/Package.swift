// swift-tools-version:6.1
// Benchmarks for cpuflags, in a package of their own so that the root package (and its
// tests and CI) never resolves or builds ordo-one/benchmark.
//
//   cd Benchmarks && ./run.sh        (or: swift package benchmark)
//
// ordo-one/benchmark treats every executable target whose folder sits directly in a
// folder named `Benchmarks` as a benchmark suite: here that is `CPUFlagsBenchmarks/`.
// Helpers live under `Tools/` so the plugin leaves them alone.
import PackageDescription

let package = Package(
    name: "cpuflags-benchmarks",
    dependencies: [
        // `name:` fixes how targets refer to the root package whatever its clone's
        // folder is called (a path package's identity is otherwise its folder name).
        .package(name: "cpuflags", path: ".."),
        // MallocInterposer instead of the default traits: no jemalloc to install, and the
        // RuntimeInterposer trait (whose package is not available here) stays off.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        // The measured loops, shared by the benchmark suite and the instruction counter
        // so that both measure the same machine code. A client module of CPUFlags, as a
        // kernel's caller would be.
        .target(
            name: "RoundTrips",
            dependencies: [
                .product(name: "CPUFlags", package: "cpuflags"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            path: "Tools/RoundTrips"
        ),
        .executableTarget(
            name: "CPUFlagsBenchmarks",
            dependencies: [
                "RoundTrips",
                .product(name: "CPUFlags", package: "cpuflags"),
                .product(name: "Explorer", package: "cpuflags"),
                .product(name: "Simulator", package: "cpuflags"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "CPUFlagsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Runs one loop N times, for valgrind --tool=callgrind (instructions per round
        // trip: this machine has no hardware counters) and for a plain-clock cross-check.
        .executableTarget(
            name: "roundtrip-count",
            dependencies: [
                "RoundTrips",
                .product(name: "CPUFlags", package: "cpuflags"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            path: "Tools/RoundTripCount"
        ),
        // Runs one explorer scenario under one memory model N times and prints states,
        // transitions, seconds and states/second per run and the median (run.sh's
        // "explorer throughput" section).
        .executableTarget(
            name: "explorer-throughput",
            dependencies: [.product(name: "Explorer", package: "cpuflags")],
            path: "Tools/ExplorerThroughput"
        ),
        // The runtime's costs (runtime.sh): a worker's round trip beside the core's, the
        // hand-written one and a lock-xadd pair; a request deferred vs signalled;
        // synchronize(); and an oslat-style isolation test per exit policy. Also the
        // loops callgrind counts (`runtime-bench count KIND N`).
        .executableTarget(
            name: "runtime-bench",
            dependencies: [
                "RoundTrips",
                .product(name: "CPUFlags", package: "cpuflags"),
                .product(name: "CPUFlagsRuntime", package: "cpuflags"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Tools/RuntimeBench"
        ),
    ]
)
