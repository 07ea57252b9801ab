import ArgumentParser
import Foundation
import KyukyuCrew
import KyukyuDomain
import KyukyuOperations
import KyukyuReceiver
import KyukyuVault
import Logging

/// `kyukyu-hospital serve`: runs the receiver until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the receiver: intake, the ambulances' event streams and the staff API, over HTTPS.",
        discussion: """
            Every key of docs/hospital-configuration.md can be given as a flag (--http-port 9443), an environment \
            variable (KYUKYU_HOSPITAL_HTTP_PORT) or in a JSON file (--config FILE, default ./kyukyu-hospital.json \
            if it exists); a flag wins over the environment, which wins over the file. Run `ca init` first.
            """
    )

    @Argument(parsing: .captureForPassthrough, help: "Configuration flags (see docs/hospital-configuration.md).")
    var options: [String] = []

    func run() async throws {
        let configuration: HospitalConfiguration
        do {
            configuration = try HospitalConfiguration.load(
                arguments: options,
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            throw ExitCode(64)
        }
        let process: ServiceProcess
        do {
            process = try ServiceProcess.bootstrap(
                identifier: "kyukyu-hospital",
                logLevel: configuration.logLevel,
                logDestination: configuration.logDestination,
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            throw ExitCode(1)
        }
        let logger = Logger(label: "kyukyu.hospital")
        let receiver: HospitalReceiver
        var opened: HospitalStore?
        do {
            var policy = CrewDirectory.Policy()
            policy.sessionLifetime = configuration.staffSession
            // The board is a wall screen: it never locks for idleness, only the session's end signs it out.
            policy.idleLock = configuration.staffSession
            policy.maxSignInFailures = configuration.staffMaximumFailures
            policy.totpIssuer = "Myna Kyukyu hospital"
            let store: HospitalStore
            let staff: any StaffAuthenticating
            switch configuration.storageEngine {
            case .sqlite:
                store = try HospitalStore.open(
                    path: configuration.databasePath,
                    hospital: configuration.hospital,
                    keyProvider: try Self.keyProvider(configuration),
                    logger: logger
                )
                staff = try CrewDirectory.open(
                    path: configuration.staffDatabasePath,
                    secretKey: try CrewSecretKey.load(path: configuration.staffKeyPath, create: true),
                    policy: policy,
                    logger: logger
                )
            case .postgresql:
                // A region's hub: this instance holds no state of its own but the keyring and the PKI.
                store = try await HospitalStore.open(
                    postgres: configuration.postgres!,
                    keyProvider: try Self.keyProvider(configuration),
                    logger: logger
                )
                staff = try await RegionStaffDirectory.open(on: store, policy: policy, logger: logger)
            }
            opened = store
            let desk = HospitalDesk(
                hospitals: configuration.hospitals.map(\.code),
                store: store,
                validator: FHIRHandoffValidator(),
                keepAlive: configuration.keepAlive,
                logger: logger
            )
            let host = configuration.host
            receiver = try HospitalReceiver.make(
                settings: HospitalSettings(
                    host: configuration.host,
                    port: configuration.port,
                    tls: try HospitalPKI(directory: configuration.tlsDirectory).serverTLSConfiguration(),
                    placementExpiry: configuration.placementExpiry
                ),
                desk: desk,
                staff: staff,
                onRunning: { port in
                    logger.notice("receiver at https://\(host):\(port)/")
                    process.ready(status: "receiving on port \(port)", logger: logger)
                },
                metrics: process.metrics,
                services: [
                    // Fed while the store answers: a receiver whose database is stuck is restarted by systemd.
                    process.watchdog(isHealthy: { (try? await store.devices()) != nil }, logger: logger)
                ] + process.services,
                logger: logger
            )
        } catch let error as ReceiverError {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            try? await opened?.close()
            throw ExitCode(1)
        } catch let error as CrewError {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            try? await opened?.close()
            throw ExitCode(1)
        }
        do {
            try await receiver.run()
        } catch {
            try? await opened?.close()
            throw error
        }
        try? await opened?.close()
    }
}

extension ServeCommand {
    /// The keyring's provider for `keys.source`: under systemd with a credential, the credential (failing closed).
    static func keyProvider(_ configuration: HospitalConfiguration) throws(ReceiverError) -> any DeviceKeyProvider {
        do {
            return try configuration.keySource.provider(
                stateDirectory: configuration.stateDirectory,
                createIfMissing: true
            )
        } catch {
            throw .startUp("the documents' keyring: \((error as? VaultError)?.reason ?? "\(error)")")
        }
    }
}

/// Where the receiver's state is, for the offline commands: the folders, or a configuration file (a region's hub
/// keeps its documents, devices and staff in PostgreSQL).
struct StateOptions: ParsableArguments {
    @Option(
        name: [.customLong("state-directory"), .customLong("state-dir")],
        help: "The receiver's state folder (as serve's state.directory)."
    )
    var stateDirectory = "state/hospital"

    @Option(
        name: [.customLong("tls-directory"), .customLong("tls-dir")],
        help: "The CA's folder (as serve's tls.directory; default <state-dir>/pki)."
    )
    var tlsDirectory: String?

    @Option(
        help: """
            The hospital's 10-digit code (as serve's hospital.code): named in the CA's subject by `ca init` (default \
            1312345678), and needed once by the other commands to upgrade a database written before tenancy.
            """
    )
    var hospital: String?

    @Option(
        help: """
            serve's configuration file: its state and CA folders, and its storage (a region's hub: PostgreSQL) are \
            used instead of --state-dir and --tls-dir.
            """
    )
    var config: String?

    /// The configuration of `--config`, if given.
    func configuration() throws -> HospitalConfiguration? {
        guard let config else { return nil }
        do {
            return try HospitalConfiguration.load(
                arguments: ["--config", config],
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            throw CommandFailure(error.reason)
        }
    }

    var pki: HospitalPKI {
        if let configuration = try? configuration() { return HospitalPKI(directory: configuration.tlsDirectory) }
        return HospitalPKI(directory: tlsDirectory ?? stateDirectory + "/pki")
    }

    /// The `--hospital` code, checked.
    func hospitalCode() throws -> HospitalCode? {
        guard let hospital else { return nil }
        guard let code = HospitalCode(rawValue: hospital) else {
            throw CommandFailure("--hospital: a 10-digit hospital code")
        }
        return code
    }

    /// Opens the store: SQLite in the state folder, or the region's PostgreSQL of `--config`.
    func openStore() async throws -> HospitalStore {
        var logger = Logger(label: "kyukyu.hospital")
        logger.logLevel = .warning
        do {
            if let configuration = try configuration() {
                let keys = try ServeCommand.keyProvider(configuration)
                if configuration.storageEngine == .postgresql, let postgres = configuration.postgres {
                    return try await HospitalStore.open(postgres: postgres, keyProvider: keys, logger: logger)
                }
                return try HospitalStore.open(
                    path: configuration.databasePath,
                    hospital: configuration.hospital,
                    keyProvider: keys,
                    logger: logger
                )
            }
            // The key file, or the unit's credential when run with it (systemd-run -p LoadCredentialEncrypted=…).
            let keys: any DeviceKeyProvider
            do {
                keys = try DeviceKeySource.auto.provider(stateDirectory: stateDirectory, createIfMissing: true)
            } catch {
                throw CommandFailure("the documents' keyring: \((error as? VaultError)?.reason ?? "\(error)")")
            }
            return try HospitalStore.open(
                path: stateDirectory + "/" + HospitalStore.fileName,
                hospital: try hospitalCode(),
                keyProvider: keys,
                logger: logger
            )
        } catch let error as ReceiverError {
            throw CommandFailure(error.reason)
        }
    }
}
