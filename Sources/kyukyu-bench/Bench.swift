import ArgumentParser
import Foundation
import Histogram
import Logging

/// `make bench`: the gateway's benchmarks, on real parts. Figures are printed as Markdown and saved as JSON
/// under `state/bench/`; docs/performance.md quotes them with the command that produced them.
@main
struct KyukyuBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-bench",
        abstract: "Benchmarks of the Myna Kyukyu gateway on real parts.",
        subcommands: [
            All.self, Card.self, Eligibility.self, FetchMemory.self, FetchMemoryProbe.self, Vault.self, Receiver.self,
        ],
        defaultSubcommand: All.self
    )

    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run every benchmark.")
        @OptionGroup var options: BenchOptions

        func run() async throws {
            try await CardBenchmark(options: options).run()
            try await EligibilityBenchmark(options: options).run()
            try await FetchMemoryBenchmark(options: options).run()
            try await runVault(options)
            try await ReceiverBenchmark(
                options: options,
                ambulances: 32,
                documentsPerAmbulance: 125,
                acknowledgements: 200,
                port: 20960,
                partsOnly: false
            ).run()
        }
    }

    struct Receiver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The hospital's receiver: ingest with many ambulances at once, and acknowledgement latency."
        )
        @OptionGroup var options: BenchOptions

        @Option(help: "Ambulances sending at once, each with its own device certificate and connection.")
        var ambulances = 32

        @Option(help: "Documents each ambulance sends, one after another.")
        var documents = 125

        @Option(help: "Acknowledgements timed, on an idle receiver and again during the ingest.")
        var acknowledgements = 200

        @Option(help: "The receiver's port on loopback.")
        var port = 20960

        @Flag(help: "Only the parts in this process (validation, sealing, the store): no receiver, no HTTP.")
        var partsOnly = false

        func run() async throws {
            try await ReceiverBenchmark(
                options: options,
                ambulances: ambulances,
                documentsPerAmbulance: documents,
                acknowledgements: acknowledgements,
                port: port,
                partsOnly: partsOnly
            ).run()
        }
    }

    struct Eligibility: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Card-to-summary and fetch latency vs their floors; 200 concurrent sessions; deadline overshoot."
        )
        @OptionGroup var options: BenchOptions

        func run() async throws { try await EligibilityBenchmark(options: options).run() }
    }

    struct FetchMemory: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch-memory",
            abstract: "Peak memory of one fetch: the heaviest synthetic patient, 9 oversized and 9 bloated answers."
        )
        @OptionGroup var options: BenchOptions

        func run() async throws { try await FetchMemoryBenchmark(options: options).run() }
    }

    struct Vault: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put/get of a 1 MB incident encrypted vs plain; purge of 1,000 incidents."
        )
        @OptionGroup var options: BenchOptions

        func run() async throws { try await runVault(options) }
    }

    static func runVault(_ options: BenchOptions) async throws {
        let directory = URL(fileURLWithPath: options.stateDir).standardizedFileURL.path + "/bench-vault"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let report = try await runVaultBenchmark(iterations: max(options.iterations, 100), stateDirectory: directory)
        try save(report, name: "vault", stateDir: options.stateDir)
        print(report)
    }

    struct Card: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the user-auth certificate: our client vs OpenSC's pkcs15-tool, same simulator and latency."
        )
        @OptionGroup var options: BenchOptions

        func run() async throws {
            try await CardBenchmark(options: options).run()
        }
    }
}

/// Options shared by the benchmarks.
struct BenchOptions: ParsableArguments {
    @Option(help: "Iterations per measured operation.")
    var iterations = 30

    @Option(help: "Simulated per-APDU card latency in milliseconds (about 20 for a contactless card).")
    var apduLatencyMs = 20

    @Option(help: "Where results (JSON) and the simulator's PKI are kept.")
    var stateDir = "state"
}

/// Latency figures from an HdrHistogram of microseconds.
struct LatencyStats: Codable, CustomStringConvertible {
    var count: UInt64
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var maxMilliseconds: Double

    init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        p50Milliseconds = Double(histogram.valueAtPercentile(50)) / 1000
        p99Milliseconds = Double(histogram.valueAtPercentile(99)) / 1000
        maxMilliseconds = Double(histogram.max) / 1000
    }

    var description: String {
        String(
            format: "p50 %.1f ms, p99 %.1f ms, max %.1f ms (n=%llu)",
            p50Milliseconds,
            p99Milliseconds,
            maxMilliseconds,
            count
        )
    }
}

/// Times `body` `iterations` times into a histogram of microseconds.
func measure(iterations: Int, _ body: () async throws -> Void) async throws -> Histogram<UInt64> {
    var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    for _ in 0..<iterations {
        let start = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - start
        let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        _ = histogram.record(UInt64(max(1, micros)))
    }
    return histogram
}

/// Saves a result as JSON under `state/bench/NAME.json`.
func save(_ value: some Encodable, name: String, stateDir: String) throws {
    let dir = stateDir + "/bench"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(value).write(to: URL(fileURLWithPath: dir + "/\(name).json"))
}
