// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "cpuflags",
    products: [
        .library(name: "CPUFlags", targets: ["CPUFlags"]),
        .library(name: "Explorer", targets: ["Explorer"]),
        .library(name: "Simulator", targets: ["Simulator"]),
        .library(name: "Traces", targets: ["Traces"]),
        .library(name: "Recorder", targets: ["Recorder"]),
        .library(name: "CPUFlagsRuntime", targets: ["CPUFlagsRuntime"]),
        .executable(name: "cpuflags", targets: ["cpuflags"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/ordo-one/TextTable", from: "0.0.2"),
    ],
    targets: [
        // The protocol core: depends on nothing but the atomics it is generic over.
        .target(
            name: "CPUFlags",
            dependencies: [.product(name: "Atomics", package: "swift-atomics")]
        ),
        // The protocol on real threads: signals as IPIs (a library for Swift programs).
        .target(
            name: "CPUFlagsRuntime",
            dependencies: ["CPUFlags", .product(name: "Atomics", package: "swift-atomics")]
        ),
        // The exhaustive explorer: runs the core's own code on model memory.
        .target(
            name: "Explorer", dependencies: ["CPUFlags"],
            // The search runs single-threaded per Explorer and never overlaps accesses
            // to its machine's state; the dynamic exclusivity checks on the model
            // platform's class properties were 8% of the search's instructions. Release
            // only: debug builds (the tests) keep them.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // The many-CPU machine simulator: drives the same core on simulated time.
        .target(
            name: "Simulator",
            dependencies: [
                "CPUFlags",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Real ftrace recordings: streaming reader, mode timelines, IPI requests, the
        // callback catalog, and their replay through the simulator's policies.
        .target(
            name: "Traces",
            dependencies: ["CPUFlags", "Simulator"],
            resources: [.copy("callbacks.catalog")]
        ),
        // Recording a trace through tracefs, with built-in workloads (the simulator's
        // cpulist parser and file writer).
        .target(name: "Recorder", dependencies: ["Simulator", "CPUFlagsRuntime"]),
        .executableTarget(
            name: "cpuflags",
            dependencies: [
                "CPUFlags", "Explorer", "Simulator", "Traces", "Recorder",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TextTable", package: "TextTable"),
            ]
        ),
        .testTarget(name: "CPUFlagsTests", dependencies: ["CPUFlags"]),
        .testTarget(name: "ExplorerTests", dependencies: ["Explorer", "CPUFlags", .product(name: "Atomics", package: "swift-atomics")]),
        .testTarget(name: "SimulatorTests", dependencies: ["Simulator", "CPUFlags"]),
        .testTarget(name: "TracesTests", dependencies: ["Traces", "Simulator", "CPUFlags"], exclude: ["Fixtures"]),
        .testTarget(name: "RecorderTests", dependencies: ["Recorder"]),
        .testTarget(name: "CPUFlagsRuntimeTests", dependencies: ["CPUFlagsRuntime", "CPUFlags"]),
        // What a user sees: runs the built executable (a dependency, so it is built first).
        .testTarget(name: "CLITests", dependencies: ["cpuflags"]),
    ],
    swiftLanguageModes: [.v5]
)
