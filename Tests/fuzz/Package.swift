// swift-tools-version:6.2
// libFuzzer harnesses for the gateway's parsers of hostile input (docs/fuzzing.md). A package of its own, so that
// the main build never sees `-sanitize=fuzzer`; it uses the root package by path. Build with scripts/fuzz.sh.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// One executable per harness: `Sources/<name>/Harness.swift` defines `LLVMFuzzerTestOneInput`, and `main.swift`
/// hands it to libFuzzer's driver.
func harness(_ name: String, _ products: [String], _ more: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: "myna-kyukyu") } + more,
        swiftSettings: swiftSettings
    )
}

let package = Package(
    name: "kyukyu-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The root package, through a symlink: a path dependency is known by its folder's name, and the checkout's
        // folder may have any name (even "fuzz", this package's own).
        .package(path: "myna-kyukyu"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], swiftSettings: swiftSettings),
        harness("fuzz-onshi-xml", ["KyukyuOnshi", "KyukyuDomain"]),
        harness("fuzz-card-tlv", ["KyukyuCard", "KyukyuDomain"]),
        harness("fuzz-card-certificate", ["KyukyuCard", "KyukyuDomain"]),
        harness("fuzz-receiver-fhir", ["KyukyuReceiver", "KyukyuFHIR", "KyukyuDomain"]),
        harness(
            "fuzz-gateway-json",
            ["KyukyuGateway", "KyukyuDomain"],
            [.product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        harness("fuzz-vpcd", ["KyukyuCardSim"]),
    ]
)
