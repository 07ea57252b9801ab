import Foundation
import Hummingbird
import HummingbirdTLS
import KyukyuCardSim
import Logging
import NIOCore
import NIOSSL

/// Everything `kyukyu-eligibility-sim serve` starts: the onshi API over mutual TLS and the admin API.
public struct EligibilitySimulator: Sendable {
    /// Where and how to serve.
    public struct Options: Sendable {
        /// Loopback address to bind (127.0.0.1, ::1 or localhost).
        public var host: String
        /// The onshi API's port (0: any free port).
        public var port: Int
        /// The admin API's port (0: any free port).
        public var adminPort: Int
        /// The card simulator's PKI folder.
        public var pkiDirectory: String
        /// The terminal PKI folder.
        public var tlsDirectory: String
        /// Faults at start.
        public var faults: FaultConfiguration
        /// Revocations at start.
        public var revocations: RevocationList
        /// Seed of the fault generators when the configuration has none.
        public var seed: UInt64
        /// Protocol tunables.
        public var service: EligibilityServiceConfiguration

        /// Makes options.
        public init(
            host: String = "127.0.0.1",
            port: Int = 8443,
            adminPort: Int = 8080,
            pkiDirectory: String = "state/sim-pki",
            tlsDirectory: String = "state/eligibility-tls",
            faults: FaultConfiguration = FaultConfiguration(),
            revocations: RevocationList = RevocationList(),
            seed: UInt64 = 1,
            service: EligibilityServiceConfiguration = .init()
        ) {
            self.host = host
            self.port = port
            self.adminPort = adminPort
            self.pkiDirectory = pkiDirectory
            self.tlsDirectory = tlsDirectory
            self.faults = faults
            self.revocations = revocations
            self.seed = seed
            self.service = service
        }
    }

    /// The protocol logic.
    public let service: EligibilityService
    /// The fault engine.
    public let faults: FaultEngine
    /// The options.
    public let options: Options
    private let tls: TLSConfiguration
    private let logger: Logger

    /// Prepares the PKIs and the service; nothing listens yet.
    public init(options: Options, logger: Logger) throws {
        guard ["127.0.0.1", "::1", "localhost"].contains(options.host) else {
            throw EligibilitySimError.invalidArgument("the stub listens on loopback only (127.0.0.1, ::1, localhost)")
        }
        try options.faults.validate()
        _ = try TestPKI.loadOrCreate(directory: options.pkiDirectory, logger: logger)
        let terminal = try TerminalPKI.loadOrCreate(directory: options.tlsDirectory, logger: logger)
        self.tls = try EligibilitySimServer.tlsConfiguration(pki: terminal, logger: logger)
        self.service = EligibilityService(
            validator: try PatientCertificateValidator(pkiDirectory: options.pkiDirectory),
            revocations: options.revocations,
            configuration: options.service,
            logger: logger
        )
        self.faults = FaultEngine(configuration: options.faults, seed: options.seed)
        self.options = options
        self.logger = logger
    }

    /// Runs both servers until SIGINT/SIGTERM; `onRunning` gets the bound ports (onshi, admin) once both listen.
    public func run(onRunning: @escaping @Sendable (Int, Int) async -> Void = { _, _ in }) async throws {
        let ports = PortPair()
        let onshi = Application(
            router: EligibilitySimServer.onshiRouter(service: self.service, faults: self.faults),
            server: try .tls(.http1(), tlsConfiguration: self.tls),
            configuration: .init(address: .hostname(self.options.host, port: self.options.port)),
            onServerRunning: { channel in
                if let both = await ports.set(onshi: channel.localAddress?.port ?? 0) {
                    await onRunning(both.0, both.1)
                }
            },
            logger: self.logger
        )
        let admin = Application(
            router: EligibilitySimServer.adminRouter(
                service: self.service,
                faults: self.faults,
                initialFaults: self.options.faults
            ),
            configuration: .init(address: .hostname(self.options.host, port: self.options.adminPort)),
            onServerRunning: { channel in
                if let both = await ports.set(admin: channel.localAddress?.port ?? 0) {
                    await onRunning(both.0, both.1)
                }
            },
            logger: self.logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await onshi.runService() }
            group.addTask { try await admin.runService() }
            // Both stop on SIGINT/SIGTERM (graceful shutdown); the first error cancels the other.
            try await group.waitForAll()
        }
    }
}

private actor PortPair {
    var onshi: Int?
    var admin: Int?

    func set(onshi: Int) -> (Int, Int)? {
        self.onshi = onshi
        return self.admin.map { (onshi, $0) }
    }

    func set(admin: Int) -> (Int, Int)? {
        self.admin = admin
        return self.onshi.map { ($0, admin) }
    }
}
