import Foundation
import Hummingbird
import HummingbirdTesting
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import NIOCore
import Testing

/// Each fault kind at the HTTP level, over a live loopback socket (plain HTTP: TLS is tested in LiveTLSTests).
@Suite(.timeLimit(.minutes(1))) struct HTTPFaultTests {
    func withApp<T: Sendable>(
        _ faults: FaultConfiguration,
        _ body: @Sendable (any TestClientProtocol, EligibilityService, String) async throws -> T
    ) async throws -> T {
        let service = Fixture.service()
        let engine = FaultEngine(configuration: faults, seed: 7)
        let app = Application(
            router: EligibilitySimServer.onshiRouter(service: service, faults: engine),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: Fixture.logger
        )
        let session = await service.authenticate(
            AuthenticationRequest(
                header: Fixture.header,
                assurance: .visual,
                certificateDER: Fixture.holder(3).userAuthCertificateDER,
                crewID: "crew-1",
                consent: .verbal
            ),
            deviceID: "direct"
        )
        let token = try #require(session.sessionToken)
        return try await app.test(.live) { client in try await body(client, service, token) }
    }

    func only(_ key: String, _ failure: FailureSpec? = nil, latency: LatencySpec? = nil) -> FaultConfiguration {
        FaultConfiguration(endpoints: [key: FaultSpec(latency: latency, failures: failure.map { [$0] })])
    }

    func bytes(_ response: TestResponse) -> [UInt8] {
        response.body.getBytes(at: response.body.readerIndex, length: response.body.readableBytes) ?? []
    }

    @Test func noFaultIsAValidResponse() async throws {
        try await withApp(FaultConfiguration()) { client, _, token in
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/medications", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/xml; charset=utf-8")
                let message = try OnshiXML.decode(CategoryResponse.self, from: bytes(response))
                #expect(message.result == .completed)
                #expect(message.records.count > 0)
            }
        }
    }

    @Test func fixedLatency() async throws {
        try await withApp(only("medications", latency: LatencySpec(kind: .fixed, ms: 300))) { client, _, token in
            let start = ContinuousClock.now
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/medications", method: .get) { response in
                #expect(response.status == .ok)
            }
            #expect(ContinuousClock.now - start >= .milliseconds(300))
            // Another category has no latency.
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/visits", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func serverError() async throws {
        try await withApp(only("visits", FailureSpec(kind: .serverError, status: 502))) { client, _, token in
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/visits", method: .get) { response in
                #expect(response.status == .badGateway)
                let message = try OnshiXML.decode(CategoryResponse.self, from: bytes(response))
                #expect(message.result.code == OnshiResultCode.internalError)
            }
        }
    }

    @Test func throttleWithRetryAfter() async throws {
        try await withApp(only("*", FailureSpec(kind: .throttle, retryAfterSeconds: 7))) { client, _, token in
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/diagnoses", method: .get) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] == "7")
                let message = try OnshiXML.decode(CategoryResponse.self, from: bytes(response))
                #expect(message.result.code == OnshiResultCode.throttled)
            }
        }
    }

    @Test func maintenanceFailureAndWindow() async throws {
        try await withApp(only("sessions", FailureSpec(kind: .maintenance))) { client, _, _ in
            let body = OnshiXML.encode(NonceRequest(header: Fixture.header, crewID: "crew-1"))
            try await client.execute(
                uri: "/onshi/v1/nonces",
                method: .post,
                body: ByteBuffer(bytes: body)
            ) { response in
                #expect(response.status == .serviceUnavailable)
                let message = try OnshiXML.decode(NonceResponse.self, from: bytes(response))
                #expect(message.result.code == OnshiResultCode.maintenance)
                #expect(message.header.resultSegment == .error)
            }
        }
        let window = FaultConfiguration(
            maintenanceWindows: [
                MaintenanceWindow(from: Date().addingTimeInterval(-60), until: Date().addingTimeInterval(600))
            ]
        )
        try await withApp(window) { client, _, token in
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/surgery", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let message = try OnshiXML.decode(CategoryResponse.self, from: bytes(response))
                #expect(message.result.code == OnshiResultCode.maintenance)
            }
        }
    }

    @Test func truncatedAndMalformedBodies() async throws {
        try await withApp(only("medications", FailureSpec(kind: .truncated, fraction: 0.5))) { client, _, token in
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/medications", method: .get) { response in
                #expect(response.status == .ok)
                #expect(throws: OnshiXMLError.truncated()) {
                    try OnshiXML.decode(CategoryResponse.self, from: bytes(response))
                }
            }
        }
        try await withApp(only("medications", FailureSpec(kind: .malformed))) { client, _, token in
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/medications", method: .get) { response in
                #expect(response.status == .ok)
                #expect(throws: OnshiXMLError.malformed()) {
                    try OnshiXML.decode(CategoryResponse.self, from: bytes(response))
                }
            }
        }
    }

    @Test func oversizedBody() async throws {
        let size = 3 << 20
        try await withApp(only("checkups", FailureSpec(kind: .oversized, sizeBytes: size))) { client, _, token in
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/checkups", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == size)
                let all = bytes(response)
                // A valid document padded with a comment: too large for a 1 MiB cap, decodable without one.
                #expect(throws: OnshiXMLError.tooLarge(limit: 1 << 20)) {
                    try OnshiXML.decode(
                        CategoryResponse.self,
                        from: all,
                        limits: OnshiXMLLimits(maxBytes: 1 << 20, maxDepth: 16, maxElements: 100_000)
                    )
                }
                let decoded = try OnshiXML.decode(CategoryResponse.self, from: all)
                #expect(decoded.records.count == 5)
            }
        }
    }

    @Test func slowDrip() async throws {
        try await withApp(only("visits", FailureSpec(kind: .slowDrip, chunkBytes: 2048, intervalMs: 50))) {
            client,
            _,
            token in
            let start = ContinuousClock.now
            try await client.execute(uri: "/onshi/v1/sessions/\(token)/visits", method: .get) { response in
                #expect(response.status == .ok)
                let all = bytes(response)
                let chunks = (all.count + 2047) / 2048
                #expect(chunks >= 3)
                #expect(ContinuousClock.now - start >= .milliseconds(50 * (chunks - 1)))
                let decoded = try OnshiXML.decode(CategoryResponse.self, from: all)
                #expect(decoded.result == .completed)
            }
        }
    }

    @Test func connectionReset() async throws {
        try await withApp(only("diagnoses", FailureSpec(kind: .reset))) { client, _, token in
            let port = try #require(client.port)
            let outcome = try await RawHTTP.get(port: port, path: "/onshi/v1/sessions/\(token)/diagnoses", readFor: 5)
            #expect(outcome.received.isEmpty)
            #expect(outcome.end == .reset)
        }
    }

    @Test func dropAfterProcessingRecordsTheViewingThenResets() async throws {
        try await withApp(only("sessions", FailureSpec(kind: .dropAfterProcessing))) { client, service, _ in
            let port = try #require(client.port)
            let before = await service.viewings.all().count
            let request = AuthenticationRequest(
                header: Fixture.header,
                assurance: .visual,
                certificateDER: Fixture.holder(2).userAuthCertificateDER,
                crewID: "crew-drop",
                consent: .verbal
            )
            let outcome = try await RawHTTP.post(
                port: port,
                path: "/onshi/v1/sessions",
                body: OnshiXML.encode(request),
                readFor: 5
            )
            #expect(outcome.received.isEmpty, "no answer")
            #expect(outcome.end == .reset)
            let viewings = await service.viewings.all()
            #expect(viewings.count == before + 1, "onshi acted on the request before the connection dropped")
            #expect(viewings.last?.crewID == "crew-drop")
        }
    }

    @Test func stallAfterHeaders() async throws {
        try await withApp(only("visits", FailureSpec(kind: .stall, stallMs: 2_500))) { client, _, token in
            let port = try #require(client.port)
            let start = ContinuousClock.now
            let outcome = try await RawHTTP.get(port: port, path: "/onshi/v1/sessions/\(token)/visits", readFor: 10)
            let text = String(decoding: outcome.received, as: UTF8.self)
            // The head arrives (with a Content-Length), no body byte follows, and the connection closes after the stall.
            #expect(text.hasPrefix("HTTP/1.1 200"))
            #expect(text.lowercased().contains("content-length:"))
            #expect(text.hasSuffix("\r\n\r\n"))
            #expect(outcome.headArrivedAfter < .milliseconds(2_000))
            #expect(outcome.end != .timeout)
            #expect(ContinuousClock.now - start >= .milliseconds(2_400))
        }
    }

    @Test func badRequestBodyIsA400WithAPath() async throws {
        try await withApp(FaultConfiguration()) { client, _, _ in
            try await client.execute(
                uri: "/onshi/v1/sessions",
                method: .post,
                body: ByteBuffer(string: "<AuthenticationRequest version=\"1\"/>")
            ) { response in
                #expect(response.status == .badRequest)
                let message = try OnshiXML.decode(SessionResponse.self, from: bytes(response))
                #expect(message.result.code == OnshiResultCode.requestInvalid)
                #expect(message.result.message?.contains("MessageHeader missing") == true)
            }
        }
    }

    @Test func decisionsAreReproducible() async {
        let config = FaultConfiguration(
            seed: 42,
            endpoints: [
                "medications": FaultSpec(
                    latency: LatencySpec(kind: .lognormal, medianMs: 100, sigma: 0.8),
                    failures: [
                        FailureSpec(kind: .serverError, probability: 0.3), FailureSpec(kind: .reset, probability: 0.2),
                    ]
                )
            ]
        )
        func run(_ engine: FaultEngine) async -> [FaultDecision] {
            var out: [FaultDecision] = []
            for i in 0..<200 {
                // Interleave another key: it must not disturb the medications sequence.
                if i % 3 == 0 { _ = await engine.decide(key: "visits", now: Date()) }
                out.append(await engine.decide(key: "medications", now: Date()))
            }
            return out
        }
        let a = await run(FaultEngine(configuration: config, seed: 1))
        let b = await run(FaultEngine(configuration: config, seed: 99))
        #expect(a == b)
        var other = config
        other.seed = 43
        #expect(await run(FaultEngine(configuration: other, seed: 1)) != a)
        let failures = a.compactMap(\.failure).count
        #expect(failures > 60 && failures < 140)
        let engine = FaultEngine(configuration: config, seed: 1)
        _ = await run(engine)
        await engine.restart()
        #expect(await run(engine) == a)
    }

    @Test func latencyDistributions() async {
        func samples(_ spec: LatencySpec) async -> [Double] {
            let engine = FaultEngine(
                configuration: FaultConfiguration(seed: 5, endpoints: ["visits": FaultSpec(latency: spec)]),
                seed: 5
            )
            var out: [Double] = []
            for _ in 0..<4000 { out.append(await engine.decide(key: "visits", now: Date()).delayMs) }
            return out.sorted()
        }
        let fixed = await samples(LatencySpec(kind: .fixed, ms: 25))
        #expect(fixed.allSatisfy { $0 == 25 })
        let lognormal = await samples(LatencySpec(kind: .lognormal, medianMs: 100, sigma: 0.5))
        #expect(lognormal[2000] > 90 && lognormal[2000] < 110)
        let pareto = await samples(LatencySpec(kind: .pareto, scaleMs: 20, alpha: 1.2, maxMs: 10_000))
        #expect(pareto.first! >= 20)
        #expect(pareto[3960] > 10 * pareto[2000])  // p99 far beyond the median: a heavy tail
    }

    @Test func invalidConfigurationsAreRefused() {
        #expect(throws: EligibilitySimError.self) {
            try FaultConfiguration(endpoints: ["nope": FaultSpec()]).validate()
        }
        #expect(throws: EligibilitySimError.self) {
            try FaultConfiguration(endpoints: ["visits": FaultSpec(latency: LatencySpec(kind: .pareto))]).validate()
        }
        #expect(throws: EligibilitySimError.self) {
            try FaultConfiguration.decode(json: Array(#"{"endpoints":{"visits":{"failures":[{"kind":"boom"}]}}}"#.utf8))
        }
        let json = #"""
            {"seed": 3, "endpoints": {"medications": {"latency": {"kind": "pareto", "scaleMs": 50, "alpha": 1.5},
             "failures": [{"kind": "429", "probability": 0.1, "retryAfterSeconds": 2}]}},
             "maintenanceWindows": [{"from": "2026-11-23T00:00:00Z", "until": "2026-11-23T01:00:00Z"}]}
            """#
        let config = try? FaultConfiguration.decode(json: Array(json.utf8))
        #expect(config?.endpoints["medications"]?.failures?.first?.kind == .throttle)
        #expect(config.map { (try? FaultConfiguration.decode(json: $0.json())) == $0 } == true)
    }
}
