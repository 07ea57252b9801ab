import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// The eligibility stub over real TLS on loopback (any free port), and a gateway client with a terminal
/// certificate the stub's CA issued.
struct OnshiBed: Sendable {
    let simulator: EligibilitySimulator
    let client: EligibilityClient
    let transport: HTTPOnshiTransport
    let port: Int
    let adminPort: Int
    let tlsDirectory: String

    /// Silent unless `KYUKYU_TEST_LOG` is set (then debug to stderr).
    static let quiet = Logger(
        label: "kyukyu.test.onshi",
        factory: { label in
            guard ProcessInfo.processInfo.environment["KYUKYU_TEST_LOG"] != nil else { return SwiftLogNoOpLogHandler() }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .debug
            return handler
        }
    )
    static let tlsDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "kyukyu-it-onshi-tls-\(getpid())"
    ).path
    static let device = "ambulance-test-01"

    /// The certificate of synthetic holder `n`, straight from the card simulator's PKI.
    static func certificate(holder n: Int, validity: CertificateValidity = .valid) throws -> [UInt8] {
        try TestPKI.loadOrCreate(directory: Bed.shared.pkiDirectory, logger: quiet).holder(n, validity: validity)
            .userAuthCertificateDER
    }

    /// The terminal PKI and this terminal's certificate, made once per test process.
    static let materials: Result<TerminalTLSFiles, any Error> = Result {
        let pki = try TerminalPKI.loadOrCreate(directory: tlsDirectory, logger: quiet)
        let dir = tlsDirectory + "/terminals"
        try pki.writeClientCertificate(deviceID: device, to: dir)
        return TerminalTLSFiles(
            certificatePath: "\(dir)/\(device).cert.pem",
            keyPath: "\(dir)/\(device).key.pem",
            trustRootsPath: "\(dir)/ca.cert.pem"
        )
    }

    static func terminalFiles() throws -> TerminalTLSFiles { try materials.get() }
}

/// Starts a stub with the given faults and revocations, runs `body`, and stops it.
func withOnshi<T: Sendable>(
    faults: FaultConfiguration = FaultConfiguration(),
    revocations: RevocationList = RevocationList(),
    serverPKI tlsDirectory: String = OnshiBed.tlsDirectory,
    configuration: EligibilityClientConfiguration = EligibilityClientConfiguration(
        retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(100)),
        hedgeAfter: nil
    ),
    _ body: (OnshiBed) async throws -> T
) async throws -> T {
    let files = try OnshiBed.terminalFiles()
    let simulator = try EligibilitySimulator(
        options: .init(
            port: 0,
            adminPort: 0,
            pkiDirectory: Bed.shared.pkiDirectory,
            tlsDirectory: tlsDirectory,
            faults: faults,
            revocations: revocations
        ),
        logger: OnshiBed.quiet
    )
    let ports = AsyncStream<(Int, Int)>.makeStream()
    let server = Task {
        try await simulator.run { onshi, admin in
            ports.continuation.yield((onshi, admin))
            ports.continuation.finish()
        }
    }
    var iterator = ports.stream.makeAsyncIterator()
    guard let (port, adminPort) = await iterator.next() else {
        server.cancel()
        throw TestbedFailure("the eligibility stub did not start: \(String(describing: await server.result))")
    }
    let transport = try HTTPOnshiTransport(
        baseURL: "https://127.0.0.1:\(port)",
        tls: files,
        logger: OnshiBed.quiet
    )
    let client = EligibilityClient(transport: transport, configuration: configuration, logger: OnshiBed.quiet)
    let bed = OnshiBed(
        simulator: simulator,
        client: client,
        transport: transport,
        port: port,
        adminPort: adminPort,
        tlsDirectory: OnshiBed.tlsDirectory
    )
    do {
        let result = try await body(bed)
        await transport.shutdown()
        server.cancel()
        _ = await server.result
        return result
    } catch {
        await transport.shutdown()
        server.cancel()
        _ = await server.result
        throw error
    }
}

struct TestbedFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension FetchSnapshot {
    func status(_ category: MedicalCategory) -> String { categories[category]?.label ?? "missing" }

    func failureCode(_ category: MedicalCategory) -> EligibilityError.Code? {
        if case .failed(let code, _, _) = categories[category] { return code }
        return nil
    }
}

/// A loopback listener that records what reaches it: plain TCP, or TLS with the terminal PKI's server
/// certificate restricted to a range of TLS versions. For the refusals the client must make before sending.
final class Listener: Sendable {
    let port: Int
    private let channel: any Channel
    private let received = NIOLockedValueBox((connections: 0, bytes: 0))

    /// Connections accepted so far.
    var connections: Int { received.withLockedValue { $0.connections } }
    /// Bytes received so far (after TLS, when TLS is on).
    var bytes: Int { received.withLockedValue { $0.bytes } }

    init(tls: TLSConfiguration? = nil) async throws {
        let received = self.received
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                received.withLockedValue { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try channel.pipeline.syncOperations.addHandler(Counter(received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        self.port = channel.localAddress?.port ?? 0
    }

    /// A TLS listener with a server certificate from the terminal PKI's CA: the stub's own (localhost,
    /// 127.0.0.1, ::1), or one naming only `dnsName`; it speaks TLS versions up to `maximum`.
    static func tls(maximum: TLSVersion = .tlsv13, dnsName: String? = nil) async throws -> Listener {
        let pki = try TerminalPKI.loadOrCreate(directory: OnshiBed.tlsDirectory, logger: OnshiBed.quiet)
        let server =
            try dnsName.map { try pki.issueServerCertificate(dnsName: $0) }
            ?? pki.serverCredentials(logger: OnshiBed.quiet)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(server.certificatePEM.utf8)).map {
                .certificate($0)
            },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(server.keyPEM.utf8), format: .pem))
        )
        tls.minimumTLSVersion = .tlsv1
        tls.maximumTLSVersion = maximum
        tls.certificateVerification = .none
        return try await Listener(tls: tls)
    }

    func close() async {
        try? await channel.close()
    }

    private final class Counter: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<(connections: Int, bytes: Int)>
        init(received: NIOLockedValueBox<(connections: Int, bytes: Int)>) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let count = unwrapInboundIn(data).readableBytes
            received.withLockedValue { $0.bytes += count }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// A client of the test terminal for `baseURL` (fetches with the given deadline).
func terminalClient(baseURL: String, tls: TerminalTLSFiles? = nil) throws -> (EligibilityClient, HTTPOnshiTransport) {
    let transport = try HTTPOnshiTransport(
        baseURL: baseURL,
        tls: try tls ?? OnshiBed.terminalFiles(),
        logger: OnshiBed.quiet
    )
    let client = EligibilityClient(
        transport: transport,
        configuration: EligibilityClientConfiguration(
            retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(100)),
            hedgeAfter: nil
        ),
        logger: OnshiBed.quiet
    )
    return (client, transport)
}

/// Authenticates synthetic holder 1 (visual check) through a fresh terminal client for `baseURL`, shuts the client
/// down, and returns why authentication failed, or nil when it did not.
func authenticationError(baseURL: String, tls: TerminalTLSFiles? = nil) async throws -> EligibilityError? {
    let (client, transport) = try terminalClient(baseURL: baseURL, tls: tls)
    let final = await client.fetch(
        .visualCheck(certificateDER: try OnshiBed.certificate(holder: 1)),
        crewID: "crew-T1",
        consent: .verbal,
        deadlines: FetchDeadlines(overall: .seconds(3))
    ).completion()
    await transport.shutdown()
    return final.authenticationError
}

extension SyntheticHolder {
    /// A card-less lookup of this holder by the four fields, as the crew would type them from the card's face.
    var demographicsQuery: PatientQuery {
        .demographics(
            name: fullName,
            birthDate: OnshiDate(year: birthDate.year, month: birthDate.month, day: birthDate.day),
            sex: OnshiSex(rawValue: sex.rawValue)!,
            address: address
        )
    }
}
