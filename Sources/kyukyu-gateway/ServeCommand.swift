import ArgumentParser
import Foundation
import KyukyuCrew
import KyukyuEligibility
import KyukyuGateway
import KyukyuIncident
import KyukyuOperations
import KyukyuVault
import Logging

/// `kyukyu-gateway serve`: runs the gateway until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the tablet: HTTP API and UI, reader monitor, onshi pool, vault.",
        discussion: """
            Every key of docs/gateway-configuration.md can be given as a flag (--http-host 127.0.0.1), an \
            environment variable (KYUKYU_GATEWAY_HTTP_HOST) or in a JSON file (--config FILE, default \
            ./kyukyu-gateway.json if it exists); a flag wins over the environment, which wins over the file. With \
            none of them, it serves http://127.0.0.1:8443 from state/gateway.
            """
    )

    @Argument(parsing: .captureForPassthrough, help: "Configuration flags (see docs/gateway-configuration.md).")
    var options: [String] = []

    func run() async throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try await GatewayConfiguration.load(
                arguments: options,
                environment: ProcessInfo.processInfo.environment
            )
            try configuration.prepareStateDirectory()
        } catch {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            throw ExitCode(64)
        }
        let process: ServiceProcess
        do {
            process = try ServiceProcess.bootstrap(
                identifier: "kyukyu-gateway",
                logLevel: configuration.logLevel,
                logDestination: configuration.logDestination,
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            throw ExitCode(1)
        }
        let logger = Logger(label: "kyukyu.gateway")
        let settings: GatewaySettings
        let vault: IncidentVault
        let crew: CrewDirectory
        do {
            settings = try Self.settings(configuration)
            let vaultDirectory = (configuration.vault.path as NSString).deletingLastPathComponent
            guard (configuration.vault.path as NSString).lastPathComponent == VaultDatabase.fileName else {
                throw GatewayError.startUp("vault.path must name a file called \(VaultDatabase.fileName)")
            }
            vault = try await IncidentVault.open(
                stateDirectory: vaultDirectory,
                keyProvider: try configuration.vault.keySource.provider(
                    stateDirectory: vaultDirectory,
                    createIfMissing: true
                ),
                configuration: IncidentVault.Configuration(maximumAge: Self.seconds(configuration.vault.maximumAge)),
                logger: logger
            )
            let crewDirectory = (configuration.crew.databasePath as NSString).deletingLastPathComponent
            var policy = CrewDirectory.Policy()
            policy.sessionLifetime = configuration.crew.sessionLength
            policy.idleLock = configuration.crew.idleLock
            policy.maxSignInFailures = configuration.crew.maximumFailures
            policy.maxPINFailures = configuration.crew.maximumFailures
            crew = try CrewDirectory.open(
                path: configuration.crew.databasePath,
                secretKey: try CrewSecretKey.load(path: crewDirectory + "/" + CrewSecretKey.fileName, create: true),
                policy: policy,
                logger: logger,
                audit: VaultCrewAudit(vault: vault, terminalID: configuration.terminal.id)
            )
        } catch let error as GatewayError {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let scheme = settings.tls == nil ? "http" : "https"
        let host = settings.host
        let gateway = try Gateway.make(
            settings: settings,
            vault: vault,
            crew: crew,
            onRunning: { port in
                logger.notice("tablet at \(scheme)://\(host):\(port)/")
                process.ready(status: "serving the tablet on port \(port)", logger: logger)
            },
            metrics: process.metrics,
            services: [
                // Fed while the vault answers: a gateway whose vault is stuck is restarted by systemd.
                process.watchdog(isHealthy: { (try? await vault.status()) != nil }, logger: logger)
            ],
            logger: logger
        )
        try await gateway.run()
    }

    static func settings(_ configuration: GatewayConfiguration) throws -> GatewaySettings {
        var settings = GatewaySettings(
            host: configuration.http.host,
            port: configuration.http.port,
            stateDirectory: configuration.stateDirectory,
            terminalID: configuration.terminal.id,
            institutionCode: configuration.terminal.institutionCode,
            onshiURL: configuration.onshi.url,
            onshiTLSDirectory: configuration.onshi.tlsDirectory,
            onshiPoolConnections: configuration.onshi.poolConnections,
            deadlines: FetchDeadlines(
                overall: configuration.fetch.deadline,
                perCategory: configuration.fetch.categoryDeadline
            ),
            retrySchedule: RetrySchedule(
                initial: configuration.fetch.retryInitial,
                maximum: configuration.fetch.retryMaximum
            ),
            readerName: configuration.reader.name,
            readerPoll: configuration.reader.pollInterval,
            vaultMaximumAge: seconds(configuration.vault.maximumAge),
            purgeInterval: configuration.vault.purgeInterval
        )
        settings.hospitals = try configuration.hospitals()
        settings.handoffTLSDirectory = configuration.handoff.tlsDirectory
        if let material = try configuration.tlsMaterial() {
            settings.tls = (material.certificatePEM, material.keyPEM)
        }
        if let file = configuration.dispatch.tokenFile {
            let token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            guard token.count >= 16 else {
                throw GatewayError.startUp("dispatch.token-file holds fewer than 16 characters")
            }
            settings.dispatchToken = token
        }
        return settings
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
