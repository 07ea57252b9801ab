import Foundation
import Histogram
import KyukyuCard
import KyukyuCardSim
import KyukyuTestbed
import Logging

/// Reading the user-authentication certificate through our client vs OpenSC's `pkcs15-tool`, on the same
/// simulator behind the same private pcscd with the same per-APDU latency, in one run.
struct CardBenchmark {
    let options: BenchOptions

    struct Report: Codable {
        var apduLatencyMilliseconds: Int
        var iterations: Int
        /// Our client in-process: connect, classify (EF 0006), read EF 000A, release.
        var clientInProcess: LatencyStats
        /// Command APDUs our client sends per read.
        var clientAPDUsPerRead: Double
        /// `kyukyu card read --json` as a process (start-up included), like pkcs15-tool.
        var clientCLI: LatencyStats
        /// `pkcs15-tool --read-certificate` as a process.
        var opensc: LatencyStats
        /// Command APDUs OpenSC sends per read.
        var openscAPDUsPerRead: Double
        /// The physical floor of our read: APDUs × per-APDU latency.
        var clientFloorMilliseconds: Double
        /// OpenSC p50 / our CLI p50 (above 1: we are faster).
        var ratioOpenSCOverCLI: Double
    }

    func run() async throws {
        let logger = Logger(label: "kyukyu.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let stateDir = URL(fileURLWithPath: options.stateDir).standardizedFileURL.path
        let daemon = try await PrivatePCSCD(basePort: 40300, directory: stateDir + "/bench-pcscd", logger: logger)
        let simulator = try CardSimulator(
            configuration: CardSimulatorConfiguration(
                port: 40300,
                holder: 1,
                dataDirectory: stateDir + "/sim-pki",
                apduLatency: .milliseconds(options.apduLatencyMs)
            ),
            logger: logger
        )
        let runner = Task { try await simulator.run() }
        let service = PCSCService(threads: 2, logger: logger)
        let reader = CardReader(service: service, logger: logger)
        let card = try await service.waitForCard(reader: nil, timeout: .seconds(20))
        let expected = await simulator.userAuthCertificateDER

        // Warm up both paths once (pcscd's first connect, OpenSC's driver probing, page cache).
        _ = try await reader.readAuthenticationCertificate(reader: card.name)
        let certificateID = try await openscCertificateID()
        _ = try await pkcs15Read(certificateID)

        var before = await simulator.commandCount
        let inProcess = try await measure(iterations: options.iterations) {
            let summary = try await reader.readAuthenticationCertificate(reader: card.name)
            guard summary.der == expected else { throw TestbedError("our client read a different certificate") }
        }
        let clientAPDUs = Double(await simulator.commandCount - before) / Double(options.iterations)

        let kyukyu = try Commands.executable("kyukyu")
        let cli = try await measure(iterations: options.iterations) {
            let result = try await Commands.run(kyukyu, ["card", "read", "--json", "--reader", card.name])
            guard result.status == 0 else { throw TestbedError("kyukyu card read failed: \(result.stderr)") }
        }

        before = await simulator.commandCount
        let opensc = try await measure(iterations: options.iterations) {
            let pem = try await pkcs15Read(certificateID)
            guard pem.contains("BEGIN CERTIFICATE") else { throw TestbedError("pkcs15-tool printed no certificate") }
        }
        let openscAPDUs = Double(await simulator.commandCount - before) / Double(options.iterations)

        let report = Report(
            apduLatencyMilliseconds: options.apduLatencyMs,
            iterations: options.iterations,
            clientInProcess: LatencyStats(inProcess),
            clientAPDUsPerRead: clientAPDUs,
            clientCLI: LatencyStats(cli),
            opensc: LatencyStats(opensc),
            openscAPDUsPerRead: openscAPDUs,
            clientFloorMilliseconds: clientAPDUs * Double(options.apduLatencyMs),
            ratioOpenSCOverCLI: LatencyStats(opensc).p50Milliseconds / LatencyStats(cli).p50Milliseconds
        )
        await service.shutdown()
        runner.cancel()
        _ = await runner.result
        await daemon.stop()
        try save(report, name: "card", stateDir: stateDir)
        print(
            """
            ## Card: read the user-authentication certificate (\(options.apduLatencyMs) ms per APDU, \(options.iterations) runs)

            | path | APDUs per read | p50 | p99 | max |
            |---|---|---|---|---|
            | our client, in process | \(fmt(clientAPDUs)) | \(ms(report.clientInProcess.p50Milliseconds)) | \(ms(report.clientInProcess.p99Milliseconds)) | \(ms(report.clientInProcess.maxMilliseconds)) |
            | `kyukyu card read` (process) | \(fmt(clientAPDUs)) | \(ms(report.clientCLI.p50Milliseconds)) | \(ms(report.clientCLI.p99Milliseconds)) | \(ms(report.clientCLI.maxMilliseconds)) |
            | `pkcs15-tool --read-certificate` | \(fmt(openscAPDUs)) | \(ms(report.opensc.p50Milliseconds)) | \(ms(report.opensc.p99Milliseconds)) | \(ms(report.opensc.maxMilliseconds)) |

            Physical floor of our read (APDUs × latency): \(ms(report.clientFloorMilliseconds)).
            Ratio pkcs15-tool p50 / kyukyu p50 (both processes): \(String(format: "%.2f", report.ratioOpenSCOverCLI))×.

            """
        )
    }

    /// The PKCS#15 ID OpenSC gives the user-authentication certificate.
    func openscCertificateID() async throws -> String {
        let result = try await Commands.run("/usr/bin/pkcs15-tool", ["--list-certificates"])
        let lines = result.stdout.split(separator: "\n")
        guard
            let start = lines.firstIndex(where: { $0.contains("Authentication") && $0.contains("X.509") })
                ?? lines.firstIndex(where: { $0.contains("X.509 Certificate") }),
            let idLine = lines[start...].first(where: { $0.contains("ID") && $0.contains(":") })
        else {
            throw TestbedError("pkcs15-tool lists no certificate: \(result.stdout) \(result.stderr)")
        }
        return idLine.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)
    }

    func pkcs15Read(_ id: String) async throws -> String {
        let result = try await Commands.run("/usr/bin/pkcs15-tool", ["--read-certificate", id])
        guard result.status == 0 else { throw TestbedError("pkcs15-tool failed: \(result.stderr)") }
        return result.stdout
    }

    func ms(_ value: Double) -> String { String(format: "%.1f ms", value) }
    func fmt(_ value: Double) -> String { String(format: "%.1f", value) }
}
