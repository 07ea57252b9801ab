// swift-tools-version:6.2
// The Myna Kyukyu field gateway: My Number card → eligibility → encrypted vault → hospital handoff.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// Traces are recorded with swift-distributed-tracing (already built for Hummingbird) and exported over OTLP by
// swift-otel only in a build made with KYUKYU_OTEL=1: swift-otel and swift-protobuf add to every clean build, which
// CI does not need (docs/observability.md has the figure). Without it, OTEL_TRACES_EXPORTER=otlp is refused at start.
let withOTel = Context.environment["KYUKYU_OTEL"] == "1"

let package = Package(
    name: "myna-kyukyu",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kyukyu", targets: ["kyukyu"]),
        .executable(name: "kyukyu-card-sim", targets: ["kyukyu-card-sim"]),
        .executable(name: "kyukyu-eligibility-sim", targets: ["kyukyu-eligibility-sim"]),
        .executable(name: "kyukyu-netsim", targets: ["kyukyu-netsim"]),
        .executable(name: "kyukyu-bench", targets: ["kyukyu-bench"]),
        .executable(name: "kyukyu-load", targets: ["kyukyu-load"]),
        .executable(name: "kyukyu-drill", targets: ["kyukyu-drill"]),
        .executable(name: "kyukyu-gateway", targets: ["kyukyu-gateway"]),
        .executable(name: "kyukyu-hospital", targets: ["kyukyu-hospital"]),
        .library(name: "KyukyuCard", targets: ["KyukyuCard"]),
        .library(name: "KyukyuVault", targets: ["KyukyuVault"]),
        .library(name: "KyukyuDomain", targets: ["KyukyuDomain"]),
        // The parsers' modules, for the fuzzing harnesses (Tests/fuzz/Package.swift).
        .library(name: "KyukyuOnshi", targets: ["KyukyuOnshi"]),
        .library(name: "KyukyuFHIR", targets: ["KyukyuFHIR"]),
        .library(name: "KyukyuReceiver", targets: ["KyukyuReceiver"]),
        .library(name: "KyukyuGateway", targets: ["KyukyuGateway"]),
        .library(name: "KyukyuCardSim", targets: ["KyukyuCardSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"4.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.10.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.30.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/pointfreeco/swift-clocks.git", from: "1.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.22.0"),
        .package(
            url: "https://github.com/apple/swift-configuration.git",
            from: "1.4.0",
            traits: ["JSON", "CommandLineArguments"]
        ),
    ],
    targets: [
        // MARK: C shims

        .systemLibrary(
            name: "CPCSCLite",
            pkgConfig: "libpcsclite",
            providers: [.apt(["libpcsclite-dev"])]
        ),

        // MARK: Libraries

        // The shared vocabulary (consent basis, token type, medical category): no dependencies, no I/O.
        .target(
            name: "KyukyuDomain",
            dependencies: [],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuCard",
            dependencies: [
                "KyukyuDomain",
                "CPCSCLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuIncident",
            dependencies: ["KyukyuDomain"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuSummary",
            dependencies: ["KyukyuDomain", "KyukyuOnshi"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuVault",
            dependencies: [
                "KyukyuDomain",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuOnshi",
            dependencies: ["KyukyuDomain"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuEligibility",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "KyukyuDomain",
                "KyukyuOnshi",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),
        // One incident's workflow, driving KyukyuIncident's machine over the card, eligibility and vault, with its
        // effects behind protocols: the gateway and `kyukyu fetch` both call it.
        .target(
            name: "KyukyuWorkflow",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "KyukyuDomain",
                "KyukyuIncident",
                "KyukyuSummary",
                "KyukyuOnshi",
                "KyukyuEligibility",
                "KyukyuVault",
                "KyukyuCard",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Crew accounts and shift sessions: bcrypt passwords, TOTP, the idle lock and its PIN, lockout.
        .target(
            name: "KyukyuCrew",
            dependencies: [
                "KyukyuVault",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Running for years under systemd: readiness and the watchdog (sd_notify), structured journal logs, and the
        // Prometheus exposition of the process's swift-metrics.
        .target(
            name: "KyukyuOperations",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ] + (withOTel ? [.product(name: "OTel", package: "swift-otel")] : []),
            swiftSettings: swiftSettings + (withOTel ? [.define("KYUKYU_OTEL")] : [])
        ),
        // The edge service: HTTP API, SSE, the tablet UI, the reader monitor, all in one ServiceGroup.
        .target(
            name: "KyukyuGateway",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "KyukyuDomain",
                "KyukyuWorkflow",
                "KyukyuFHIR",
                "KyukyuCrew",
                "KyukyuIncident",
                "KyukyuSummary",
                "KyukyuOnshi",
                "KyukyuEligibility",
                "KyukyuVault",
                "KyukyuCard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                "KyukyuOperations",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            resources: [.copy("UI")],
            swiftSettings: swiftSettings
        ),
        // The pre-arrival document: a FHIR R4 document Bundle on JP Core, built and checked; pure, no I/O.
        .target(
            name: "KyukyuFHIR",
            dependencies: ["KyukyuDomain", "KyukyuOnshi", "KyukyuSummary"],
            swiftSettings: swiftSettings
        ),
        // The hospital's receiver: intake over mutual TLS, the encrypted store, the ER board's API and page, and
        // the ambulances' acknowledgement stream.
        .target(
            name: "KyukyuReceiver",
            dependencies: [
                "KyukyuDomain",
                "KyukyuFHIR",
                "KyukyuCrew",
                "KyukyuVault",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                "KyukyuOperations",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            resources: [.copy("Board")],
            swiftSettings: swiftSettings
        ),
        // The hospital receiver's staff client and an ambulance's acknowledgement watch, over the network: shared by
        // the receiver's benchmark and its load test.
        .target(
            name: "KyukyuReceiverProbe",
            dependencies: [
                "KyukyuDomain",
                "KyukyuGateway",
                "KyukyuWorkflow",
                "KyukyuVault",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuTestbed",
            dependencies: [
                "KyukyuCardSim",
                "KyukyuCard",
                "KyukyuDomain",
                "KyukyuOnshi",
                "KyukyuEligibility",
                "KyukyuEligibilitySim",
                "KyukyuWorkflow",
                "KyukyuFHIR",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables

        .executableTarget(
            name: "kyukyu-hospital",
            dependencies: [
                "KyukyuReceiver",
                "KyukyuDomain",
                "KyukyuCrew",
                "KyukyuVault",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "KyukyuOperations",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "kyukyu",
            dependencies: [
                "KyukyuDomain",
                "KyukyuWorkflow",
                "KyukyuIncident",
                "KyukyuCard",
                "KyukyuVault",
                "KyukyuEligibility",
                "KyukyuOnshi",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kyukyu-gateway",
            dependencies: [
                "KyukyuGateway",
                "KyukyuCrew",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "KyukyuOperations",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kyukyu-bench",
            dependencies: [
                "KyukyuDomain",
                "KyukyuCard",
                "KyukyuCardSim",
                "KyukyuEligibility",
                "KyukyuEligibilitySim",
                "KyukyuOnshi",
                .product(name: "Crypto", package: "swift-crypto"),
                "KyukyuTestbed",
                "KyukyuVault",
                "KyukyuCrew",
                "KyukyuFHIR",
                "KyukyuGateway",
                "KyukyuReceiver",
                "KyukyuReceiverProbe",
                "KyukyuWorkflow",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "kyukyu-vault-crashwriter",
            dependencies: [
                "KyukyuVault",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/KyukyuVaultCrashWriter",
            swiftSettings: swiftSettings
        ),

        // MARK: Simulators

        .target(
            name: "KyukyuCardSim",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "simulators/KyukyuCardSim",
            swiftSettings: swiftSettings
        ),
        // A region's shift for drills: every ambulance a gateway process with its reader, every hospital a receiver.
        .target(
            name: "KyukyuDrill",
            dependencies: [
                "KyukyuDomain",
                "KyukyuTestbed",
                "KyukyuCardSim",
                "KyukyuNetworkSim",
                "KyukyuVault",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kyukyu-drill",
            dependencies: [
                "KyukyuDrill",
                "KyukyuTestbed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kyukyu-load",
            dependencies: [
                "KyukyuLoad",
                "KyukyuTestbed",
                "KyukyuDomain",
                "KyukyuGateway",
                "KyukyuReceiverProbe",
                "KyukyuWorkflow",
                "KyukyuEligibility",
                "KyukyuEligibilitySim",
                "KyukyuCardSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuLoad",
            dependencies: [
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuNetworkSim",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "simulators/KyukyuNetworkSim",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kyukyu-netsim",
            dependencies: [
                "KyukyuNetworkSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "simulators/kyukyu-netsim",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KyukyuEligibilitySim",
            dependencies: [
                "KyukyuDomain",
                "KyukyuOnshi",
                "KyukyuCardSim",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "simulators/KyukyuEligibilitySim",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kyukyu-eligibility-sim",
            dependencies: [
                "KyukyuDomain",
                "KyukyuEligibilitySim",
                "KyukyuCardSim",
                "KyukyuOnshi",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "simulators/kyukyu-eligibility-sim",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kyukyu-card-sim",
            dependencies: [
                "KyukyuCardSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "simulators/kyukyu-card-sim",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests

        .testTarget(
            name: "KyukyuLoadTests",
            dependencies: [
                "KyukyuLoad",
                "KyukyuTestbed",
                "KyukyuEligibilitySim",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuNetworkSimTests",
            dependencies: [
                "KyukyuNetworkSim",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuOperationsTests",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                "KyukyuEligibility",
                "KyukyuDomain",
                "KyukyuOperations",
                "KyukyuTestbed",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuDomainTests",
            dependencies: ["KyukyuDomain"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuCardTests",
            dependencies: ["KyukyuCard", "KyukyuDomain"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuCardSimTests",
            dependencies: [
                "KyukyuCardSim",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuOnshiTests",
            dependencies: ["KyukyuDomain", "KyukyuOnshi"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuEligibilitySimTests",
            dependencies: [
                "KyukyuDomain",
                "KyukyuEligibilitySim",
                "KyukyuCardSim",
                "KyukyuOnshi",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuEligibilityTests",
            dependencies: [
                "KyukyuDomain",
                "KyukyuEligibility",
                "KyukyuOnshi",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Clocks", package: "swift-clocks"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuIncidentTests",
            dependencies: ["KyukyuIncident", "KyukyuDomain"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuWorkflowTests",
            dependencies: [
                "KyukyuWorkflow",
                "KyukyuIncident",
                "KyukyuDomain",
                "KyukyuOnshi",
                "KyukyuEligibility",
                "KyukyuVault",
                "KyukyuEligibilitySim",
                "KyukyuTestbed",
                "KyukyuCard",
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuCrewTests",
            dependencies: [
                "KyukyuCrew",
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuGatewayTests",
            dependencies: [
                "KyukyuGateway",
                "KyukyuFHIR",
                "KyukyuIncident",
                "KyukyuEligibility",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "KyukyuWorkflow",
                "KyukyuCrew",
                "KyukyuDomain",
                "KyukyuVault",
                "KyukyuCardSim",
                "KyukyuTestbed",
                "KyukyuEligibilitySim",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "KyukyuOperations",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuFHIRTests",
            dependencies: [
                "KyukyuFHIR", "KyukyuDomain", "KyukyuOnshi", "KyukyuSummary", "KyukyuEligibilitySim", "KyukyuTestbed",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuReceiverTests",
            dependencies: [
                "KyukyuOperations",
                "KyukyuReceiver",
                "KyukyuVault",
                "KyukyuFHIR",
                "KyukyuDomain",
                "KyukyuCrew",
                "KyukyuTestbed",
                "KyukyuEligibilitySim",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuSummaryTests",
            dependencies: ["KyukyuSummary", "KyukyuOnshi", "KyukyuDomain", "KyukyuEligibilitySim"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuVaultTests",
            dependencies: [
                "KyukyuDomain",
                "KyukyuVault",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuDrillTests",
            dependencies: [
                "KyukyuDrill",
                "KyukyuTestbed",
                "KyukyuCardSim",
                "KyukyuEligibilitySim",
                "KyukyuOnshi",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KyukyuIntegrationTests",
            dependencies: [
                "KyukyuDomain",
                "KyukyuGateway",
                "KyukyuReceiver",
                "KyukyuReceiverProbe",
                "KyukyuWorkflow",
                "KyukyuCrew",
                "KyukyuVault",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "KyukyuCard",
                "KyukyuCardSim",
                "KyukyuTestbed",
                "KyukyuEligibility",
                "KyukyuEligibilitySim",
                "KyukyuOnshi",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)

if withOTel {
    // OTLP over HTTP only: the gRPC exporter would add grpc-swift to the build.
    package.dependencies.append(
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"])
    )
}
