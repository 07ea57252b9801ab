public import Foundation
import Hummingbird
import HummingbirdTLS
import KyukyuCard
import KyukyuEligibility
import KyukyuIncident
public import KyukyuOperations
import KyukyuVault
public import KyukyuWorkflow
public import Logging
import Metrics
import NIOCore
import NIOSSL
public import ServiceLifecycle
import UnixSignals

/// Everything the gateway needs to start, resolved from the configuration (file, environment, flags).
public struct GatewaySettings: Sendable {
    /// The address to listen on.
    public var host: String
    /// The port (0: any free port).
    public var port: Int
    /// PEM certificate chain and key for HTTPS; nil serves plain HTTP, which only loopback may do.
    public var tls: (certificatePEM: String, keyPEM: String)?
    /// The state folder (vault, crew database).
    public var stateDirectory: String
    /// This terminal's id.
    public var terminalID: String
    /// The medical-institution code onshi knows this terminal by.
    public var institutionCode: String
    /// onshi's base URL (https only).
    public var onshiURL: String
    /// Folder with the terminal's client certificate, key and onshi's CA.
    public var onshiTLSDirectory: String
    /// Connections kept warm to onshi.
    public var onshiPoolConnections: Int
    /// The fetch's deadlines.
    public var deadlines: FetchDeadlines
    /// When a deferred fetch is tried again.
    public var retrySchedule: RetrySchedule
    /// The reader to watch (name or prefix); nil watches every reader.
    public var readerName: String?
    /// How often a lost pcscd is looked for again.
    public var readerPoll: Duration
    /// How long the vault keeps an incident.
    public var vaultMaximumAge: TimeInterval
    /// How often the vault purges expired incidents.
    public var purgeInterval: Duration
    /// The dispatch route's bearer token; nil turns the route off.
    public var dispatchToken: String?
    /// The tablet's files (nil: the bundled ones).
    public var uiDirectory: String?
    /// The receiving hospitals the crew may pick (`handoff.hospitals`).
    public var hospitals: [ReceivingHospital]
    /// Folder with this terminal's certificate and key for the hospitals' receivers, and their CA
    /// (`handoff.tls-directory`).
    public var handoffTLSDirectory: String

    /// Settings with every default; the tests and `kyukyu-gateway serve` override what they need.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8443,
        tls: (certificatePEM: String, keyPEM: String)? = nil,
        stateDirectory: String = "state/gateway",
        terminalID: String = "ambulance-01",
        institutionCode: String = "9999999999",
        onshiURL: String = "https://127.0.0.1:18443",
        onshiTLSDirectory: String = "state/terminal-tls",
        onshiPoolConnections: Int = 9,
        deadlines: FetchDeadlines = FetchDeadlines(overall: .seconds(3), perCategory: .seconds(6)),
        retrySchedule: RetrySchedule = RetrySchedule(),
        readerName: String? = nil,
        readerPoll: Duration = .milliseconds(500),
        vaultMaximumAge: TimeInterval = 24 * 3600,
        purgeInterval: Duration = .seconds(60),
        dispatchToken: String? = nil,
        uiDirectory: String? = nil,
        hospitals: [ReceivingHospital] = ReceivingHospital.demo,
        handoffTLSDirectory: String = "state/hospital-tls"
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.stateDirectory = stateDirectory
        self.terminalID = terminalID
        self.institutionCode = institutionCode
        self.onshiURL = onshiURL
        self.onshiTLSDirectory = onshiTLSDirectory
        self.onshiPoolConnections = onshiPoolConnections
        self.deadlines = deadlines
        self.retrySchedule = retrySchedule
        self.readerName = readerName
        self.readerPoll = readerPoll
        self.vaultMaximumAge = vaultMaximumAge
        self.purgeInterval = purgeInterval
        self.dispatchToken = dispatchToken
        self.uiDirectory = uiDirectory
        self.hospitals = hospitals
        self.handoffTLSDirectory = handoffTLSDirectory
    }

    /// Whether `host` is a loopback address, the only place plain HTTP is allowed.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }
}

/// Why the gateway refused to start. Built like swift-certificates' errors.
public struct GatewayError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case plainHTTPOffLoopback
        case startUp
    }
    private let code: Code
    /// What is wrong and what to do.
    public let reason: String

    private init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Plain HTTP was asked for on an address other than loopback.
    public static func plainHTTPOffLoopback(host: String) -> Self {
        Self(
            .plainHTTPOffLoopback,
            "refusing to listen on \(host) without TLS: patient data never crosses a network in cleartext; "
                + "configure http.tls.certificate and http.tls.key, or listen on 127.0.0.1"
        )
    }

    /// A part could not start.
    public static func startUp(_ reason: String) -> Self { Self(.startUp, reason) }

    /// The reason.
    public var description: String { "GatewayError: \(reason)" }
}

/// The gateway: the vault, the onshi client, the reader monitor and the HTTP server, each a `Service` in one
/// `ServiceGroup`, started in that order and stopped in reverse on SIGTERM/SIGINT.
public struct Gateway: Sendable {
    /// The service group; run it to serve.
    public let group: ServiceGroup
    /// The incidents.
    public let desk: IncidentDesk
    /// The readiness checks.
    public let readiness: Readiness

    /// Runs every service until SIGTERM or SIGINT (or a service fails), then stops them in reverse order.
    public func run() async throws {
        try await group.run()
    }

    /// Stops every service gracefully, in reverse order, as SIGTERM does.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
    }

    /// Opens the vault and the crew sessions, and assembles the services. Nothing listens or reads the reader
    /// until ``group`` runs.
    public static func make(
        settings: GatewaySettings,
        vault: IncidentVault,
        crew: any CrewAuthenticating,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        metrics: MetricsExposition? = nil,
        services extraServices: [any Service] = [],
        logger: Logger
    ) throws -> Gateway {
        let factory: any MetricsFactory = metrics?.factory ?? MetricsSystem.factory
        if settings.tls == nil && !GatewaySettings.isLoopback(settings.host) {
            throw GatewayError.plainHTTPOffLoopback(host: settings.host)
        }
        let transport: HTTPOnshiTransport
        do {
            transport = try HTTPOnshiTransport(
                baseURL: settings.onshiURL,
                tls: TerminalTLSFiles(
                    certificatePath: "\(settings.onshiTLSDirectory)/\(settings.terminalID).cert.pem",
                    keyPath: "\(settings.onshiTLSDirectory)/\(settings.terminalID).key.pem",
                    trustRootsPath: "\(settings.onshiTLSDirectory)/ca.cert.pem"
                ),
                logger: logger
            )
        } catch let error as EligibilityError {
            throw GatewayError.startUp("onshi's client: \(error.reason)")
        }
        let client = EligibilityClient(
            transport: transport,
            configuration: EligibilityClientConfiguration(institutionCode: settings.institutionCode),
            metrics: factory,
            logger: logger
        )
        let receivers = try Self.receiverClient(settings, logger: logger)
        let outbox = GatewayOutbox(
            hospitals: settings.hospitals,
            client: receivers,
            notices: NoticeFile(path: settings.stateDirectory + "/hospital-notices.json", logger: logger),
            metrics: factory,
            logger: logger
        )
        let placements = PlacementDispatcher(hospitals: settings.hospitals, client: receivers, logger: logger)
        let desk = IncidentDesk(
            effects: WorkflowEffects(
                store: vault,
                fetching: client,
                handoff: HandoffEffects(
                    builder: FHIRDocumentBuilder(),
                    outbox: outbox,
                    hospitals: settings.hospitals,
                    placements: placements
                )
            ),
            configuration: WorkflowConfiguration(
                terminalID: settings.terminalID,
                deadlines: settings.deadlines,
                retrySchedule: settings.retrySchedule,
                metrics: factory
            ),
            logger: logger
        )
        let acceptance = AcceptanceBoard(hospitals: settings.hospitals.map(\.code))
        let readiness = Readiness()
        let board = ReaderBoard()
        let pcsc = PCSCService(threads: 3, logger: logger)
        let reader = CardReader(service: pcsc, logger: logger)
        let ui: UIFiles
        do {
            ui = try UIFiles(directory: settings.uiDirectory)
        } catch {
            throw GatewayError.startUp("the tablet's files cannot be read: \(error)")
        }
        let api = GatewayAPI(
            desk: desk,
            crew: crew,
            board: board,
            readiness: readiness,
            card: ReaderCard(reader: reader, readerName: settings.readerName),
            ui: ui,
            dispatchToken: settings.dispatchToken,
            secureCookies: true,
            hospitals: settings.hospitals,
            acceptance: acceptance,
            placements: placements,
            metrics: metrics,
            sampleGauges: { [gauges = GatewayGauges(vault: vault, breaker: client.breaker, metrics: factory)] in
                await gauges.sample()
            },
            logger: logger
        )
        let address = BindAddress.hostname(settings.host, port: settings.port)
        let onServerRunning: @Sendable (any Channel) async -> Void = { channel in
            await onRunning(channel.localAddress?.port ?? settings.port)
        }
        let http: any Service
        if let tls = settings.tls {
            var configuration: TLSConfiguration
            do {
                configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(tls.certificatePEM.utf8)).map {
                        .certificate($0)
                    },
                    privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(tls.keyPEM.utf8), format: .pem))
                )
            } catch {
                throw GatewayError.startUp("the HTTPS certificate or key cannot be read")
            }
            configuration.minimumTLSVersion = .tlsv12
            http = Application(
                router: api.router(),
                server: try .tls(.http1(), tlsConfiguration: configuration),
                configuration: .init(address: address, serverName: "kyukyu-gateway"),
                onServerRunning: onServerRunning,
                logger: logger
            )
        } else {
            http = Application(
                router: api.router(),
                configuration: .init(address: address, serverName: "kyukyu-gateway"),
                onServerRunning: onServerRunning,
                logger: logger
            )
        }
        var reloaders: [(name: String, reload: @Sendable () throws -> Date)] = [
            ("onshi-terminal", { @Sendable in try transport.reloadTLS() })
        ]
        if let client = receivers as? HTTPReceiverClient {
            reloaders.append(("hospital-network", { @Sendable in try client.reloadTLS() }))
        }
        let expiry = CertificateExpiryService(
            certificates: [
                ("onshi-terminal", .file("\(settings.onshiTLSDirectory)/\(settings.terminalID).cert.pem")),
                ("hospital-network", .file("\(settings.handoffTLSDirectory)/\(settings.terminalID).cert.pem")),
            ] + (settings.tls.map { [("https", .pem($0.certificatePEM))] } ?? []),
            metrics: factory,
            logger: logger
        )
        let services: [any Service] =
            [
                VaultService(
                    vault: vault,
                    desk: desk,
                    readiness: readiness,
                    purgeInterval: settings.purgeInterval,
                    logger: logger,
                    afterRestore: { await placements.resume(await desk.openIncidents()) }
                ),
                EligibilityPoolService(
                    transport: transport,
                    connections: settings.onshiPoolConnections,
                    readiness: readiness,
                    logger: logger
                ),
                ReaderMonitorService(
                    pcsc: pcsc,
                    reader: reader,
                    readerName: settings.readerName,
                    desk: desk,
                    board: board,
                    pollInterval: settings.readerPoll,
                    logger: logger
                ),
                OutboxService(outbox: outbox, desk: desk, client: receivers),
                PlacementService(dispatcher: placements, desk: desk),
                AcceptanceFeedService(
                    hospitals: settings.hospitals,
                    client: receivers,
                    board: acceptance,
                    logger: logger
                ),
                ReceiverEventsService(
                    hospitals: settings.hospitals,
                    client: receivers,
                    desk: desk,
                    cursor: EventCursorFile(path: settings.stateDirectory + "/hospital-events.json"),
                    clock: ContinuousClock(),
                    backoff: DeliveryBackoff(),
                    logger: logger
                ),
                http,
                expiry,
                CertificateReloadService(
                    reloaders: reloaders,
                    expiry: expiry,
                    logger: logger
                ),
            ] + extraServices
        var configuration = ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // A service that does not stop within this is cancelled: the vault's state is durable after every change.
        configuration.maximumGracefulShutdownDuration = .seconds(8)
        let group = ServiceGroup(configuration: configuration)
        return Gateway(group: group, desk: desk, readiness: readiness)
    }

    /// The client for the hospitals' receivers: mutual TLS with this terminal's certificate from
    /// `handoff.tls-directory`; without one, a stand-in that keeps every document queued and says why.
    static func receiverClient(_ settings: GatewaySettings, logger: Logger) throws -> any ReceiverDelivering {
        let folder = settings.handoffTLSDirectory
        let files = ReceiverTLSFiles(
            certificatePath: "\(folder)/\(settings.terminalID).cert.pem",
            keyPath: "\(folder)/\(settings.terminalID).key.pem",
            trustRootsPath: "\(folder)/ca.cert.pem"
        )
        guard FileManager.default.fileExists(atPath: files.certificatePath) else {
            logger.notice(
                "no certificate for the hospitals' receivers: documents stay queued until one is installed",
                metadata: ["kyukyu.handoff.tls-directory": "\(folder)"]
            )
            return UnconfiguredReceivers()
        }
        do {
            try FilePermissions.requirePrivate(path: files.keyPath)
            return try HTTPReceiverClient(tls: files, logger: logger)
        } catch let error as VaultError {
            throw GatewayError.startUp("the key for the hospitals' receivers: \(error.reason)")
        } catch {
            throw GatewayError.startUp("the certificate for the hospitals' receivers cannot be loaded: \(error)")
        }
    }
}
