import ArgumentParser
import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuLoad
import KyukyuTestbed
import Logging

/// `kyukyu-load onshi`: the eligibility stub under many ambulances, through the gateway's own client
/// (`KyukyuEligibility`). Each connection is one ambulance with its own terminal certificate (mutual TLS) and its
/// own `EligibilityClient`; one request is one patient's fetch as the gateway makes it after a card touch: a
/// session (the card's user-authentication certificate, verbal consent), then every medical category in parallel.
/// It succeeds when the session opened and every category came back (with records or empty).
struct OnshiLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onshi",
        abstract:
            "Fetch synthetic patients from the eligibility stub through the gateway's client, at a constant rate.",
        discussion: """
            With --bin-dir, a fresh kyukyu-eligibility-sim from that folder serves on --port (admin --port + 1) for \
            the run, with its PKI folders in --state-dir. With --url, a running stub: --state-dir must then hold the \
            folders it was started with (sim-pki for --pki-dir, tls for --tls-dir).
            """
    )

    @Option(help: "Where kyukyu-eligibility-sim is, to run a fresh stub for the test.")
    var binDir: String?

    @Option(help: "A running stub's onshi URL, e.g. https://127.0.0.1:8443.")
    var url: String?

    @Option(help: "The stub's PKI folders: sim-pki (the cards' test PKI) and tls (terminal CA).")
    var stateDir = "state/load/onshi"

    @Option(help: "The fresh stub's onshi port (its admin port is the next one).")
    var port = 20973

    @Option(help: "The synthetic card holder whose certificate each fetch presents (1-200).")
    var holder = 3

    @OptionGroup var options: PlanOptions

    func validate() throws {
        guard (binDir == nil) != (url == nil) else { throw ValidationError("give --bin-dir or --url, not both") }
        if let url, URL(string: url)?.scheme != "https" { throw ValidationError("--url must be an https URL") }
        guard (1...65_534).contains(port) else { throw ValidationError("--port must be 1…65534") }
        guard (1...200).contains(holder) else { throw ValidationError("--holder must be 1…200") }
        try options.check(measuredSaturation: false)
    }

    func run() async throws {
        var logger = Logger(label: "kyukyu.load.onshi")
        logger.logLevel = .warning
        let state = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        // The PKIs first, so that a fresh stub finds them instead of racing to make its own.
        let cards = try TestPKI.loadOrCreate(directory: state + "/sim-pki", logger: logger)
        let terminals = try TerminalPKI.loadOrCreate(directory: state + "/tls", logger: logger)
        let certificate = try cards.holder(holder, validity: .valid).userAuthCertificateDER
        var server: SpawnedProcess?
        let base: String
        if let binDir {
            let executable = binDir + "/kyukyu-eligibility-sim"
            guard FileManager.default.isExecutableFile(atPath: executable) else {
                throw LoadError.setupFailed("\(executable) is not built")
            }
            server = try Commands.spawn(
                executable,
                [
                    "serve", "--port", String(port), "--admin-port", String(port + 1), "--pki-dir", state + "/sim-pki",
                    "--tls-dir", state + "/tls", "--log-level", "warning",
                ],
                log: state + "/stub.log"
            )
            base = "https://127.0.0.1:\(port)"
            try await ReceiverIngestLoad.waitForPort(host: "127.0.0.1", port: port, within: .seconds(30))
        } else {
            base = url!
        }
        defer { server?.stop() }

        var clients: [EligibilityClient] = []
        var transports: [HTTPOnshiTransport] = []
        for ambulance in 1...options.connections {
            let device = String(format: "LOAD-TERM-%03d", ambulance)
            try terminals.writeClientCertificate(deviceID: device, to: state + "/terminals")
            let transport = try HTTPOnshiTransport(
                baseURL: base,
                tls: TerminalTLSFiles(
                    certificatePath: state + "/terminals/\(device).cert.pem",
                    keyPath: state + "/terminals/\(device).key.pem",
                    trustRootsPath: state + "/terminals/ca.cert.pem"
                ),
                maxConnections: 10,
                logger: logger
            )
            // The gateway warms its pool before the first card; so does each ambulance here (untimed).
            await transport.prewarm(connections: MedicalCategory.allCases.count)
            transports.append(transport)
            clients.append(
                EligibilityClient(
                    transport: transport,
                    configuration: EligibilityClientConfiguration(hedgeAfter: nil),
                    logger: logger
                )
            )
        }
        let target = FetchTarget(clients: clients, certificate: certificate)
        do {
            try await LoadSession(options: options, name: "onshi").execute { plan, _ in
                await OpenLoop.run(plan, against: target)
            }
        } catch {
            for transport in transports { await transport.shutdown() }
            throw error
        }
        for transport in transports { await transport.shutdown() }
    }
}

/// One fetch on connection `c`'s own client.
private struct FetchTarget: LoadTarget {
    let clients: [EligibilityClient]
    let certificate: [UInt8]

    func send(connection: Int) async -> Bool {
        let final = await clients[connection].fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "LOAD-CREW",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(30))
        ).completion()
        return final.session != nil && final.categories.values.allSatisfy { ["ok", "empty"].contains($0.label) }
    }
}
