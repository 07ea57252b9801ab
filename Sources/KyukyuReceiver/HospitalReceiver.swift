import Foundation
import Hummingbird
import HummingbirdTLS
public import KyukyuOperations
public import Logging
import NIOCore
public import NIOSSL
public import ServiceLifecycle
import UnixSignals

/// Where and how the receiver listens.
public struct HospitalSettings: Sendable {
    /// The address to listen on.
    public var host: String
    /// The port (0: any free port; ``HospitalReceiver/make`` reports the real one through `onRunning`).
    public var port: Int
    /// The server's TLS (``HospitalPKI/serverTLSConfiguration()``): the receiver speaks nothing else.
    public var tls: TLSConfiguration
    /// Whether the staff session cookie is `Secure` (true: the receiver only speaks TLS).
    public var secureCookies: Bool
    /// How long a placement request may wait unanswered before it is withdrawn (checked once a minute of the desk's
    /// clock); nil withdraws none.
    public var placementExpiry: Duration?

    /// Settings.
    public init(
        host: String = "127.0.0.1",
        port: Int = 9443,
        tls: TLSConfiguration,
        secureCookies: Bool = true,
        placementExpiry: Duration? = nil
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.secureCookies = secureCookies
        self.placementExpiry = placementExpiry
    }
}

/// Withdraws the placement requests left waiting past `age` (``HospitalDesk/expirePlacements(olderThan:)``) after
/// every `interval` of the desk's clock, until shutdown. Every instance of a region sweeps; a request is withdrawn
/// once.
struct PlacementExpiryService: Service {
    let desk: HospitalDesk
    let age: Duration
    let interval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await desk.clock.sleep(for: interval)
                } catch {
                    return
                }
                await desk.expirePlacements(olderThan: age)
            }
        }
    }
}

/// The store as a service: it runs the engine (PostgreSQL's listener) until shutdown, then ends the open event
/// streams and truncates SQLite's WAL.
struct StoreService: Service {
    let desk: HospitalDesk
    let logger: Logger

    func run() async throws {
        // PostgreSQL: the listener for other instances' events, until the group shuts down; SQLite: nothing.
        async let listening: Void = cancelWhenGracefulShutdown { try await desk.runStore() }
        try? await gracefulShutdown()
        _ = try? await listening
        await desk.finishStreams()
        await desk.store.checkpoint()
        logger.info("receiver store checkpointed")
    }
}

/// The receiver: the store and the HTTPS server (intake, ambulance streams, staff API) as `Service`s in one
/// `ServiceGroup`, started in that order and stopped in reverse on SIGTERM/SIGINT.
public struct HospitalReceiver: Sendable {
    /// The service group; run it to serve.
    public let group: ServiceGroup
    /// The receiver's work (for tests and tools in the same process).
    public let desk: HospitalDesk

    /// Runs every service until SIGTERM or SIGINT (or a service fails), then stops them in reverse order.
    public func run() async throws { try await group.run() }

    /// Stops every service gracefully, as SIGTERM does.
    public func shutdown() async { await group.triggerGracefulShutdown() }

    /// Assembles the services; nothing listens until ``run()``.
    ///
    /// - Parameters:
    ///   - settings: Address, port and TLS.
    ///   - desk: The receiver's work over its opened store.
    ///   - staff: Staff sign-in (the receiver's own `CrewDirectory`).
    ///   - identity: Who calls an ambulance route (the client certificate's CN; tests may replace it).
    ///   - signals: The signals that stop the group (none in tests that stop it themselves).
    ///   - onRunning: Called with the listening port once the server accepts connections.
    ///   - metrics: The process's metrics, served on `GET /metrics`; `nil` serves no such route.
    ///   - services: More services to run in the group, after the server (the systemd watchdog).
    ///   - logger: Logs at info and below; never patient data.
    public static func make(
        settings: HospitalSettings,
        desk: HospitalDesk,
        staff: any StaffAuthenticating,
        identity: any ClientDeviceIdentifying = TLSClientCertificateIdentity(),
        signals: [UnixSignal] = [.sigterm, .sigint],
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        metrics: MetricsExposition? = nil,
        services: [any Service] = [],
        logger: Logger
    ) throws(ReceiverError) -> HospitalReceiver {
        let api = ReceiverAPI(
            desk: desk,
            staff: staff,
            identity: identity,
            secureCookies: settings.secureCookies,
            metrics: metrics
        )
        let http: any Service
        do {
            http = Application(
                router: api.router(),
                server: try .tls(.http1(), tlsConfiguration: settings.tls),
                configuration: .init(
                    address: .hostname(settings.host, port: settings.port),
                    serverName: "kyukyu-hospital"
                ),
                onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? settings.port) },
                logger: logger
            )
        } catch {
            throw .startUp("the HTTPS server cannot be configured: \(error)")
        }
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: StoreService(desk: desk, logger: logger)),
                .init(service: http),
            ]
                + (settings.placementExpiry.map {
                    [.init(service: PlacementExpiryService(desk: desk, age: $0, interval: .seconds(60)))]
                } ?? [])
                + services.map { .init(service: $0) },
            gracefulShutdownSignals: signals,
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = .seconds(8)
        return HospitalReceiver(group: ServiceGroup(configuration: configuration), desk: desk)
    }
}
