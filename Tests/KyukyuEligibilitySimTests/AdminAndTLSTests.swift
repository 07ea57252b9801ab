import Foundation
import Hummingbird
import HummingbirdTLS
import HummingbirdTesting
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@Suite struct AdminTests {
    @Test func adminEndpoints() async throws {
        let service = Fixture.service()
        let initial = FaultConfiguration(seed: 9)
        let engine = FaultEngine(configuration: initial, seed: 1)
        let app = Application(
            router: EligibilitySimServer.adminRouter(service: service, faults: engine, initialFaults: initial),
            logger: Fixture.logger
        )
        _ = await service.authenticate(
            AuthenticationRequest(
                header: Fixture.header,
                assurance: .visual,
                certificateDER: Fixture.holder(2).userAuthCertificateDER,
                crewID: "crew-3",
                consent: .verbal
            ),
            deviceID: "amb-05"
        )
        try await app.test(.router) { client in
            try await client.execute(uri: "/admin/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("ok"))
            }
            try await client.execute(uri: "/admin/viewings", method: .get) { response in
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let viewings = try decoder.decode([Viewing].self, from: Data(Array(buffer: response.body)))
                #expect(viewings.count == 1)
                #expect(viewings[0].crewID == "crew-3")
                #expect(viewings[0].deviceID == "amb-05")
                #expect(viewings[0].assurance == .visual)
            }
            let faults = #"{"endpoints":{"medications":{"failures":[{"kind":"5xx","status":503}]}}}"#
            try await client.execute(uri: "/admin/faults", method: .put, body: ByteBuffer(string: faults)) { response in
                #expect(response.status == .ok)
            }
            #expect(await engine.current().endpoints["medications"]?.failures?.first?.status == 503)
            try await client.execute(uri: "/admin/faults", method: .get) { response in
                #expect(String(buffer: response.body).contains("503"))
            }
            try await client.execute(
                uri: "/admin/faults",
                method: .put,
                body: ByteBuffer(string: #"{"endpoints":{"bogus":{}}}"#)
            ) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(
                uri: "/admin/revocations",
                method: .put,
                body: ByteBuffer(string: #"{"entries":[{"holder":2,"reason":"suspended"}]}"#)
            ) { response in
                #expect(response.status == .ok)
            }
            #expect(service.revocations.entries == [.init(holder: 2, reason: .suspended)])
            try await client.execute(uri: "/admin/reset", method: .post) { response in
                #expect(response.status == .ok)
            }
            #expect(await service.viewings.all().isEmpty)
            #expect(await engine.current() == initial)
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct LiveTLSTests {
    func tlsApp(_ service: EligibilityService) throws -> some ApplicationProtocol {
        Application(
            router: EligibilitySimServer.onshiRouter(
                service: service,
                faults: FaultEngine(configuration: .init(), seed: 1)
            ),
            server: try .tls(
                .http1(),
                tlsConfiguration: try EligibilitySimServer.tlsConfiguration(
                    pki: Fixture.terminal,
                    logger: Fixture.logger
                )
            ),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: Fixture.logger
        )
    }

    func clientTLS(certificate: TerminalPKI.Credentials?) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(
            try NIOSSLCertificate.fromPEMBytes(Array(try Fixture.terminal.caCertificatePEM.utf8))
        )
        if let certificate {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificatePEM.utf8)).map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.keyPEM.utf8), format: .pem))
        }
        return tls
    }

    @Test func mutualTLSSessionAndCategoryRecordTheTerminal() async throws {
        let service = Fixture.service()
        let credentials = try Fixture.terminal.issueClientCertificate(deviceID: "amb-tls-1")
        let tls = try clientTLS(certificate: credentials)
        try await tlsApp(service).test(.live) { harness in
            let port = try #require(harness.port)
            try await TestClient.withClient(
                host: "127.0.0.1",
                port: port,
                configuration: .init(tlsConfiguration: tls, serverName: "localhost")
            ) { client in
                let request = AuthenticationRequest(
                    header: Fixture.header,
                    assurance: .visual,
                    certificateDER: Fixture.holder(3).userAuthCertificateDER,
                    crewID: "crew-tls",
                    consent: .verbal
                )
                let response = try await client.post(
                    "/onshi/v1/sessions",
                    body: ByteBuffer(bytes: OnshiXML.encode(request))
                )
                #expect(response.status == .ok)
                let session = try OnshiXML.decode(
                    SessionResponse.self,
                    from: Array(buffer: try #require(response.body))
                )
                let token = try #require(session.sessionToken)
                let meds = try await client.get("/onshi/v1/sessions/\(token)/medications")
                let category = try OnshiXML.decode(CategoryResponse.self, from: Array(buffer: try #require(meds.body)))
                #expect(category.records.count > 0)
            }
        }
        let log = await service.viewings.all()
        #expect(log.count == 1)
        #expect(log[0].deviceID == "amb-tls-1")
        #expect(log[0].crewID == "crew-tls")
        #expect(log[0].categories == [.medications])
    }

    @Test(.timeLimit(.minutes(1))) func clientWithoutTerminalCertificateIsRefused() async throws {
        let service = Fixture.service()
        let noCertificate = try clientTLS(certificate: nil)
        // A certificate from another CA is refused too.
        let rogueCA = try TerminalPKI.loadOrCreate(directory: Fixture.root + "/rogue-tls", logger: Fixture.logger)
        let rogue = try clientTLS(certificate: try rogueCA.issueClientCertificate(deviceID: "rogue"))
        // The alert the stub sends says which refusal it was: TLS 1.3's certificate_required for no certificate,
        // and for a certificate it cannot verify, the alert BoringSSL sends for that failure.
        let cases: [(TLSConfiguration, [String])] = [
            (noCertificate, ["CERTIFICATE_REQUIRED"]),
            (rogue, ["DECRYPT_ERROR", "UNKNOWN_CA", "BAD_CERTIFICATE"]),
        ]
        try await tlsApp(service).test(.live) { harness in
            let port = try #require(harness.port)
            for (tls, alerts) in cases {
                let error = try await Self.handshakeError(port: port, tls: tls)
                let text = String(describing: error).uppercased()
                #expect(alerts.contains { text.contains("ALERT_\($0)") }, "\(String(describing: error))")
            }
        }
        #expect(await service.viewings.all().isEmpty)
    }

    /// Makes a TLS handshake with `tls` and sends nothing (so no write can race the server's alert); returns the
    /// error the connection ended with, nil when it closed without one or stayed open 5 s.
    static func handshakeError(port: Int, tls: TLSConfiguration) async throws -> (any Error)? {
        let context = try NIOSSLContext(configuration: tls)
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: (any Error)?.self)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: "localhost")
                    )
                    try channel.pipeline.syncOperations.addHandler(FirstError(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        // A server that accepted the handshake sends nothing: give up after 5 s (then nil, and the test fails).
        let giveUp = channel.eventLoop.scheduleTask(in: .seconds(5)) { promise.completeWith(.success(nil)) }
        let error = try await promise.futureResult.get()
        giveUp.cancel()
        try? await channel.close()
        return error
    }

    /// Reports the first error on a connection, or nil when it closes without one.
    final class FirstError: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<(any Error)?>
        init(promise: EventLoopPromise<(any Error)?>) { self.promise = promise }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.completeWith(.success(error))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.completeWith(.success(nil))
        }
    }
}
