import AsyncHTTPClient
import Foundation
import KyukyuReceiver
import KyukyuTestbed
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import Testing

/// A region's hub through its real parts: a private PostgreSQL, three `kyukyu-hospital serve` instances on it, and
/// HAProxy in front; two hospitals as tenants, their staff made with `staff add --config`, an ambulance's certificate
/// from `device issue --config`.
@Suite("A region's hub: many instances on PostgreSQL", .serialized, .timeLimit(.minutes(4)))
struct RegionHubTests {
    static let first = RegionHub.Hospital(code: "1310000001", name: "テスト第一病院 (架空)")
    static let second = RegionHub.Hospital(code: "1310000002", name: "テスト第二病院 (架空)")

    func start(_ name: String) async throws -> RegionHub {
        let postgres = try await TestPostgres.shared.get()
        return try await RegionHub.start(
            directory: temporaryDirectory("kyukyu-region-\(name)"),
            postgres: postgres,
            database: "region_" + name + "_" + String(UUID().uuidString.lowercased().prefix(8)),
            hospitals: [Self.first, Self.second],
            instances: 3,
            basePort: Ports.base + 110,
            devices: ["ambulance-01"],
            staff: [("NURSE-A", Self.first.code), ("NURSE-B", Self.second.code)]
        )
    }

    func client(_ hub: RegionHub, device: String?) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(hub.caPath))
        if let device {
            let folder = hub.deviceDirectory(device)
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(folder + "/\(device).cert.pem").map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: folder + "/\(device).key.pem", format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(60))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// A staff session: the cookie and the CSRF token.
    struct Session {
        var cookie: String
        var csrf: String
    }

    func signIn(_ client: HTTPClient, _ base: String, _ staff: RegionHub.Staff) async throws -> Session {
        var request = HTTPClientRequest(url: base + "/api/v1/session")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let body = try JSONSerialization.data(withJSONObject: [
            "staffId": staff.id, "password": staff.password, "totp": totp(staff.totpSecret),
        ])
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        let text = try await response.body.collect(upTo: 1 << 20)
        try #require(response.status == .ok, "sign-in: \(String(buffer: text))")
        let cookie = try #require(response.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init))
        let object = try JSONSerialization.jsonObject(with: Data(text.readableBytesView)) as? [String: Any]
        return Session(cookie: cookie, csrf: try #require(object?["csrfToken"] as? String))
    }

    func staff(
        _ client: HTTPClient,
        _ base: String,
        _ method: HTTPMethod,
        _ path: String,
        _ session: Session,
        body: [String: Any]? = nil
    ) async throws -> (HTTPResponseStatus, [String: Any]) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Cookie", value: session.cookie)
        request.headers.add(name: "X-CSRF-Token", value: session.csrf)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 8 << 20)
        return (
            response.status,
            (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]) ?? [:]
        )
    }

    func ambulancePost(_ client: HTTPClient, _ url: String, _ body: [String: Any]) async throws -> (
        HTTPResponseStatus, [String: Any]
    ) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await client.execute(request, timeout: .seconds(30))
        let text = try await response.body.collect(upTo: 1 << 20)
        return (
            response.status,
            (try? JSONSerialization.jsonObject(with: Data(text.readableBytesView)) as? [String: Any]) ?? [:]
        )
    }

    func post(_ client: HTTPClient, _ base: String, _ document: SyntheticDocument) async throws -> HTTPResponseStatus {
        var request = HTTPClientRequest(url: base + "/fhir/Bundle")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/fhir+json")
        request.headers.add(name: "Idempotency-Key", value: document.versionIdentifier)
        request.body = .bytes(ByteBuffer(bytes: document.data))
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        return response.status
    }

    /// Opens an event stream and hands its `handoff` events' data, one by one.
    func stream(
        _ client: HTTPClient,
        _ url: String,
        session: Session? = nil
    ) async throws -> AsyncThrowingStream<Data, any Error> {
        var request = HTTPClientRequest(url: url)
        if let session { request.headers.add(name: "Cookie", value: session.cookie) }
        let response = try await client.execute(request, timeout: .seconds(120))
        try #require(response.status == .ok)
        return AsyncThrowingStream { continuation in
            // Every wait is bounded: a stream with no event for 20 s ends with an error.
            let last = LastSeen()
            let watchdog = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if last.elapsed > .seconds(20) {
                        continuation.finish(throwing: StreamTimeout())
                        return
                    }
                }
            }
            let task = Task {
                var text = ""
                do {
                    for try await chunk in response.body {
                        last.touch()
                        text += String(buffer: chunk)
                        while let end = text.range(of: "\n\n") {
                            let frame = String(text[..<end.lowerBound])
                            text.removeSubrange(..<end.upperBound)
                            guard let line = frame.split(separator: "\n").first(where: { $0.hasPrefix("data: ") })
                            else { continue }
                            continuation.yield(Data(line.dropFirst(6).utf8))
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in
                task.cancel()
                watchdog.cancel()
            }
        }
    }

    struct StreamTimeout: Error {}

    /// When a stream last sent something.
    final class LastSeen: Sendable {
        private let time = Mutex(ContinuousClock.now)
        func touch() { time.withLock { $0 = ContinuousClock.now } }
        var elapsed: Duration { ContinuousClock.now - time.withLock { $0 } }
    }

    func next(_ iterator: inout AsyncThrowingStream<Data, any Error>.Iterator) async throws -> [String: Any] {
        let data = try #require(try await iterator.next())
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func tenancyIdempotencyLiveBoardsAndAcknowledgementsAcrossInstances() async throws {
        let hub = try await start("story")
        defer { hub.stop() }
        let ambulance = try client(hub, device: "ambulance-01")
        let browser = try client(hub, device: nil)
        do {
            let nurseA = try await signIn(browser, hub.url(instance: 0), try #require(hub.staff["NURSE-A"]))
            let nurseB = try await signIn(browser, hub.url(instance: 1), try #require(hub.staff["NURSE-B"]))
            // The sessions are the region's: A's cookie, made on instance 1, opens A's board on instance 2.
            var boardA = try await stream(browser, hub.url(instance: 1) + "/api/v1/board/events", session: nurseA)
                .makeAsyncIterator()
            var boardB = try await stream(browser, hub.url(instance: 2) + "/api/v1/board/events", session: nurseB)
                .makeAsyncIterator()
            var device = try await stream(ambulance, hub.url(instance: 0) + "/ambulance/v1/events").makeAsyncIterator()

            // The same document posted to two instances at once is stored once.
            var document = SyntheticDocument()
            document.hospital = Self.first.code
            let toA = document
            async let one = post(ambulance, hub.url(instance: 0), toA)
            async let two = post(ambulance, hub.url(instance: 1), toA)
            #expect(Set([try await one, try await two]) == [.created, .ok])

            // A's board on instance 2 hears of it (stored through another instance: LISTEN/NOTIFY), once.
            let onBoardA = try await next(&boardA)
            #expect(onBoardA["documentSet"] as? String == toA.setIdentifier)
            #expect(onBoardA["hospital"] as? String == Self.first.code)
            #expect(onBoardA["status"] as? String == "received")

            // B's staff see nothing of A's patient, by list, by id, or by acting on it.
            let (listStatus, list) = try await staff(browser, hub.url, .GET, "/api/v1/patients", nurseB)
            #expect(listStatus == .ok)
            #expect((list["patients"] as? [Any])?.isEmpty == true)
            let set = "/api/v1/patients/" + toA.set.uuidString.lowercased()
            #expect(try await staff(browser, hub.url, .GET, set, nurseB).0 == .notFound)
            #expect(try await staff(browser, hub.url, .POST, set + "/acknowledge", nurseB).0 == .notFound)
            #expect(try await staff(browser, hub.url, .GET, set, nurseA).0 == .ok)

            // A's staff acknowledge through instance 3; the ambulance, streaming from instance 1, hears it.
            #expect(try await next(&device)["status"] as? String == "received")
            let (ack, _) = try await staff(browser, hub.url(instance: 2), .POST, set + "/acknowledge", nurseA)
            #expect(ack == .ok)
            let heard = try await next(&device)
            #expect(heard["status"] as? String == "acknowledged")
            #expect(heard["hospital"] as? String == Self.first.code)
            #expect(try await next(&boardA)["status"] as? String == "acknowledged")

            // B's board saw none of it: its first event is B's own patient.
            var toB = SyntheticDocument()
            toB.hospital = Self.second.code
            #expect(try await post(ambulance, hub.url, toB) == .created)
            let onBoardB = try await next(&boardB)
            #expect(onBoardB["documentSet"] as? String == toB.setIdentifier)
            #expect(onBoardB["hospital"] as? String == Self.second.code)

            // Acceptance: B publishes through instance 1; an ambulance's feed on instance 3 hears it.
            var feed = try await stream(ambulance, hub.url(instance: 2) + "/ambulance/v1/acceptance")
                .makeAsyncIterator()
            let published = try await staff(
                browser,
                hub.url(instance: 0),
                .PUT,
                "/api/v1/acceptance",
                nurseB,
                body: [
                    "conditions": [
                        "dialysis": ["accepting": false, "reason": "no-beds"], "stroke": ["accepting": true],
                    ]
                ]
            )
            #expect(published.0 == .ok)
            #expect(published.1["revision"] as? Int == 1)
            let heardAcceptance = try await next(&feed)
            #expect(heardAcceptance["hospital"] as? String == Self.second.code)
            let dialysis = (heardAcceptance["conditions"] as? [String: Any])?["dialysis"] as? [String: Any]
            #expect(dialysis?["accepting"] as? Bool == false)
            #expect(dialysis?["reason"] as? String == "no-beds")
            // B's board (instance 3) hears its own hospital's publication, made through instance 1.
            let boardHeard = try await next(&boardB)
            #expect(boardHeard["hospital"] as? String == Self.second.code)
            #expect(boardHeard["revision"] as? Int == 1)

            // A placement request to both hospitals through the balancer; A accepts through instance 2, B's accept
            // through instance 3 comes too late; the ambulance (instance 1) and B's board hear how it ended.
            let placement = UUID().uuidString.lowercased()
            let (created, view) = try await ambulancePost(
                ambulance,
                hub.url + "/ambulance/v1/placements",
                [
                    "placement": placement, "documentSet": "urn:uuid:" + UUID().uuidString.lowercased(),
                    "hospitals": [Self.first.code, Self.second.code],
                    "summary": ["ageDecade": 7, "needs": ["dialysis"], "priority": "red"],
                ]
            )
            #expect(created == .created)
            #expect(view["answers"] as? [String: String] == [Self.first.code: "pending", Self.second.code: "pending"])
            #expect(try await next(&boardB)["answer"] as? String == "pending")
            let accept = "/api/v1/placements/\(placement)/accept"
            #expect(try await staff(browser, hub.url(instance: 1), .POST, accept, nurseA).0 == .ok)
            #expect(try await staff(browser, hub.url(instance: 2), .POST, accept, nurseB).0 == .conflict)
            var answers: [String: String] = [:]
            while answers.count < 2 {
                let event = try await next(&device)
                if let answer = event["answer"] as? String, let hospital = event["hospital"] as? String,
                    answer != "pending"
                {
                    answers[hospital] = answer
                }
            }
            #expect(answers == [Self.first.code: "accepted", Self.second.code: "placed-elsewhere"])
            #expect(try await next(&boardB)["answer"] as? String == "placed-elsewhere")
            // A's board heard no other hospital's publication: its next event is the request made to A.
            #expect(try await next(&boardA)["answer"] as? String == "pending")

            // The review's exports, by the product's command: every answer and its time; FHIR Tasks that another
            // implementation checks (make test's FHIR check reads KYUKYU_FHIR_OUT).
            let executable = try Commands.executable("kyukyu-hospital")
            let csv = hub.directory + "/review.csv"
            let fhir = hub.directory + "/review.json"
            let today = String(ISO8601DateFormatter().string(from: Date().addingTimeInterval(-86400)).prefix(10))
            for (format, out) in [("csv", csv), ("fhir", fhir)] {
                let review = try await Commands.run(
                    executable,
                    [
                        "review", "placements", "--config", hub.configurationPath, "--from", today, "--format", format,
                        "--out", out,
                    ]
                )
                #expect(review.status == 0, "\(review.stderr)")
                #expect(review.stdout.contains("1 requests written"), "\(review.stdout)")
            }
            let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\r\n")
            #expect(rows.count == 3)
            #expect(rows.dropFirst().contains { $0.contains(",\(Self.first.code),accepted,") })
            #expect(rows.dropFirst().contains { $0.contains(",\(Self.second.code),placed-elsewhere,") })
            let bundle =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fhir)))
                as? [String: Any]
            let tasks = (bundle?["entry"] as? [[String: Any]])?.compactMap { $0["resource"] as? [String: Any] } ?? []
            #expect(Set(tasks.compactMap { $0["status"] as? String }) == ["accepted", "cancelled"])
            if let folder = ProcessInfo.processInfo.environment["KYUKYU_FHIR_OUT"] {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try? FileManager.default.removeItem(atPath: folder + "/review-placements.json")
                try FileManager.default.copyItem(atPath: fhir, toPath: folder + "/review-placements.json")
            }
        } catch {
            try? await ambulance.shutdown()
            try? await browser.shutdown()
            throw error
        }
        try await ambulance.shutdown()
        try await browser.shutdown()
    }
}
