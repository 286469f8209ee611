// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "cpuflags",
    products: [
        .library(name: "CPUFlags", targets: ["CPUFlags"]),
        .library(name: "Explorer", targets: ["Explorer"]),
        .executable(name: "cpuflags", targets: ["cpuflags"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
    ],
    targets: [
        // The protocol core: depends on nothing but the atomics it is generic over.
        .target(
            name: "CPUFlags",
            dependencies: [.product(name: "Atomics", package: "swift-atomics")]
        ),
        // The exhaustive explorer: runs the core's own code on model memory.
        .target(name: "Explorer", dependencies: ["CPUFlags"]),
        .executableTarget(
            name: "cpuflags",
            dependencies: [
                "CPUFlags", "Explorer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CPUFlagsTests", dependencies: ["CPUFlags"]),
        .testTarget(name: "ExplorerTests", dependencies: ["Explorer", "CPUFlags"]),
    ],
    swiftLanguageModes: [.v5]
)
