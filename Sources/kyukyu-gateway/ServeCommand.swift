import ArgumentParser
import Foundation
import KyukyuCrew
import KyukyuEligibility
import KyukyuGateway
import KyukyuVault
import Logging

/// `kyukyu-gateway serve`: runs the gateway until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the tablet: HTTP API and UI, reader monitor, onshi pool, vault."
    )

    @Option(name: .customLong("state-dir"), help: "The state folder: vault/, crew.sqlite, crew-secret.key.")
    var stateDirectory = "state/gateway"

    @Option(help: "Address to listen on. Anything but loopback needs --tls-certificate and --tls-key.")
    var httpHost = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var httpPort = 8443

    @Option(help: "PEM certificate chain for HTTPS.")
    var tlsCertificate: String?

    @Option(help: "PEM private key for HTTPS.")
    var tlsKey: String?

    @Option(help: "This terminal's id (its onshi client certificate's name).")
    var terminalID = "ambulance-01"

    @Option(help: "Medical-institution code of this terminal (10 digits).")
    var institutionCode = "9999999999"

    @Option(help: "onshi's base URL (https only).")
    var onshiURL = "https://127.0.0.1:18443"

    @Option(name: .customLong("onshi-tls-dir"), help: "Folder with <terminal>.cert.pem, <terminal>.key.pem, ca.cert.pem.")
    var onshiTLSDirectory = "state/terminal-tls"

    @Option(help: "What has arrived by then is the summary, in milliseconds (1 to 120000).")
    var deadlineMs = 3000

    @Option(help: "Late categories are waited for until then, in milliseconds (1 to 120000).")
    var categoryDeadlineMs = 6000

    @Option(help: "The reader to watch (name or prefix; default: every reader).")
    var reader: String?

    @Option(help: "File holding the dispatch route's bearer token (default: the route is off).")
    var dispatchTokenFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be 0 to 65535") }
        guard (1...120_000).contains(deadlineMs), (1...120_000).contains(categoryDeadlineMs) else {
            throw ValidationError("--deadline-ms and --category-deadline-ms must be 1 to 120000")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-certificate and --tls-key go together")
        }
        if tlsCertificate == nil && !GatewaySettings.isLoopback(httpHost) {
            throw ValidationError(GatewayError.plainHTTPOffLoopback(host: httpHost).reason)
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "kyukyu.gateway")
        var settings = GatewaySettings(
            host: httpHost,
            port: httpPort,
            stateDirectory: stateDirectory,
            terminalID: terminalID,
            institutionCode: institutionCode,
            onshiURL: onshiURL,
            onshiTLSDirectory: onshiTLSDirectory,
            deadlines: FetchDeadlines(
                overall: .milliseconds(deadlineMs),
                perCategory: .milliseconds(max(deadlineMs, categoryDeadlineMs))
            ),
            readerName: reader
        )
        if let tlsCertificate, let tlsKey {
            settings.tls = (try String(contentsOfFile: tlsCertificate, encoding: .utf8), try String(contentsOfFile: tlsKey, encoding: .utf8))
        }
        if let dispatchTokenFile {
            settings.dispatchToken = try String(contentsOfFile: dispatchTokenFile, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let vault = try await IncidentVault.open(stateDirectory: stateDirectory + "/vault", logger: logger)
        let crew = try CrewDirectory.open(
            path: stateDirectory + "/crew.sqlite",
            secretKey: try CrewSecretKey.load(path: stateDirectory + "/" + CrewSecretKey.fileName, create: true),
            logger: logger,
            audit: VaultCrewAudit(vault: vault, terminalID: terminalID)
        )
        let scheme = settings.tls == nil ? "http" : "https"
        let host = httpHost
        let gateway = try Gateway.make(
            settings: settings,
            vault: vault,
            crew: crew,
            onRunning: { port in
                logger.notice("tablet at \(scheme)://\(host):\(port)/")
            },
            logger: logger
        )
        try await gateway.run()
    }
}
