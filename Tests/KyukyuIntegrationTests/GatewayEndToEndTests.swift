import AsyncHTTPClient
import Crypto
import Foundation
import KyukyuCardSim
import KyukyuCrew
import KyukyuGateway
import KyukyuTestbed
import KyukyuVault
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

/// The gateway through its real parts: a private pcscd with the vpcd reader and the card simulator behind it, the
/// onshi stub over mutual TLS, the vault and the crew database in SQLite files, and HTTP on loopback.
@Suite("Gateway end to end (real pcscd, card simulator, onshi stub, SQLite)", .serialized, .timeLimit(.minutes(3)))
struct GatewayEndToEndTests {
    /// A running gateway over the real parts, a signed-in tablet client, and its state folder; the gateway is stopped
    /// and the folder removed afterwards.
    struct Running {
        let gateway: Gateway
        let running: Task<Void, any Error>
        let api: TabletClient
        let vault: IncidentVault
        let onshi: OnshiBed
        let state: String
    }

    func withGateway(holder: Int, _ body: (Running) async throws -> Void) async throws {
        try await withSimulatedCard({ $0.holder = holder }) { _, _ in
            try await withOnshi { onshi in
                let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-gw-\(UUID())").path
                defer { try? FileManager.default.removeItem(atPath: state) }
                try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
                let vault = try await IncidentVault.open(stateDirectory: state, logger: OnshiBed.quiet)
                var policy = CrewDirectory.Policy()
                policy.bcryptCost = 4
                let crew = try CrewDirectory.open(
                    path: state + "/crew.sqlite",
                    secretKey: SymmetricKey(size: .bits256),
                    policy: policy,
                    logger: OnshiBed.quiet,
                    audit: VaultCrewAudit(vault: vault, terminalID: OnshiBed.device)
                )
                let enrolment = try await crew.add(crewID: "TEST-E2E", password: "synthetic-pass-0001", pin: "2468")
                let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
                let gateway = try Gateway.make(
                    settings: GatewaySettings(
                        port: 0,
                        stateDirectory: state,
                        terminalID: OnshiBed.device,
                        onshiURL: "https://127.0.0.1:\(onshi.port)",
                        onshiTLSDirectory: OnshiBed.tlsDirectory + "/terminals",
                        readerName: Bed.readerName,
                        readerPoll: .milliseconds(200)
                    ),
                    vault: vault,
                    crew: crew,
                    onRunning: { portContinuation.yield($0) },
                    logger: OnshiBed.quiet
                )
                let running = Task { try await gateway.run() }
                defer { running.cancel() }
                var portIterator = ports.makeAsyncIterator()
                let port = try #require(await portIterator.next())
                let api = TabletClient(base: "http://127.0.0.1:\(port)")
                defer { Task { try? await api.http.shutdown() } }
                try await api.waitUntilReady()
                try await api.signIn(
                    crewID: "TEST-E2E",
                    password: "synthetic-pass-0001",
                    totp: totp(enrolment.totpSecret)
                )
                try await body(
                    Running(gateway: gateway, running: running, api: api, vault: vault, onshi: onshi, state: state)
                )
            }
        }
    }

    @Test(.enabled(if: realPartsAvailable))
    func aCardOnTheReaderAndOneConsentTapGiveTheSummaryAndNothingReadableIsLeftAtRest() async throws {
        let holder = SyntheticHolder(number: 4)
        try await withGateway(holder: 4) { gw in
            let incident = try await gw.api.post("/api/v1/incidents", "{}")
            let id = try #require(incident["id"] as? String)
            // One tap: the card already lies on the reader and is read without one.
            _ = try await gw.api.post("/api/v1/incidents/\(id)/consent", #"{"basis":"verbal"}"#)
            let summary = try await gw.api.waitFor(id) {
                $0["phase"] as? String == "summary"
                    && ($0["categories"] as? [String: [String: Any]])?["qualification"]?["status"] as? String
                        == "arrived"
            }
            let patient = try #require((summary["summary"] as? [String: Any])?["patient"] as? [String: Any])
            #expect(patient["name"] as? String == holder.fullName)
            #expect((summary["card"] as? [String: Any])?["tokenType"] as? String == "individual-number-card")

            // While the incident is open, nothing of the patient is readable in the state folder.
            let open = try stateBytes(gw.state)
            // The family name within its JSON quotes: a bare one-kanji name (林) is three bytes, which a few megabytes
            // of ciphertext hold by chance.
            for secret in [holder.fullName, holder.fullNameKana, "\"\(holder.familyName)\"", holder.address] {
                #expect(open.range(of: Data(secret.utf8)) == nil, "found patient data at rest")
            }
            // A restart of the tablet (a reload) finds the incident where it was: read back from the vault.
            let reloaded = try await gw.api.get("/api/v1/incidents/\(id)")
            #expect(reloaded["phase"] as? String == "summary")

            _ = try await gw.api.post("/api/v1/incidents/\(id)/close", "{}")
            #expect(try await gw.vault.incidents().isEmpty)
            let verification = try await gw.vault.audit.verify()
            #expect(verification.isIntact)
            let steps = try await gw.vault.audit.export().filter { $0.event.action == .incidentStep }
            #expect(
                steps.contains { $0.event.attributes["step"] == "consent-recorded" && $0.event.actor == "TEST-E2E" }
            )
            // SIGTERM with an incident open and its event stream connected: the gateway still stops at once
            // (it waited for the stream to end, for ever, before the stream ended on shutdown).
            let second = try #require(try await gw.api.post("/api/v1/incidents", "{}")["id"] as? String)
            var stream = HTTPClientRequest(url: gw.api.base + "/api/v1/incidents/\(second)/events")
            stream.headers.add(name: "Cookie", value: gw.api.cookie)
            let events = try await gw.api.http.execute(stream, timeout: .seconds(30))
            var chunks = events.body.makeAsyncIterator()
            let first = try #require(try await chunks.next())
            #expect(String(buffer: first).hasPrefix("event: incident"))
            let stopping = ContinuousClock.now
            await gw.gateway.shutdown()
            try await gw.running.value
            #expect(ContinuousClock.now - stopping < .seconds(5))
        }
    }

    /// pcscd stops (a restart, or the reader's USB link): the tablet is told, and once it is back the gateway reads
    /// cards again without being restarted.
    @Test(.enabled(if: realPartsAvailable))
    func pcscdStoppedIsShownAndTheGatewayReadsAgainWhenItIsBack() async throws {
        let daemon = try await Bed.shared.pcscd()
        try await withGateway(holder: 2) { gw in
            _ = try await gw.api.waitFor(reader: "card-present")
            await daemon.stop()
            _ = try await gw.api.waitFor(reader: "no-service")
            try await daemon.start()
            _ = try await gw.api.waitFor(reader: "card-present")
            let id = try #require(try await gw.api.post("/api/v1/incidents", "{}")["id"] as? String)
            _ = try await gw.api.post("/api/v1/incidents/\(id)/consent", #"{"basis":"verbal"}"#)
            let summary = try await gw.api.waitFor(id) { $0["phase"] as? String == "summary" }
            #expect((summary["card"] as? [String: Any])?["state"] as? String == "read")
            await gw.gateway.shutdown()
            try await gw.running.value
        }
    }
}

/// The tablet's side of the API over real HTTP: the session cookie and the CSRF token.
final class TabletClient: @unchecked Sendable {
    let http: HTTPClient
    let base: String
    var cookie = ""
    var csrf = ""

    /// A client of `base`; over HTTPS, trusting only the CA in `caFile` (the receiver's staff API).
    init(base: String, caFile: String? = nil) {
        self.base = base
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            http = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: HTTPClient.Configuration(tlsConfiguration: tls)
            )
        } else {
            http = HTTPClient(eventLoopGroupProvider: .singleton)
        }
    }

    func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let response = try? await http.execute(
                HTTPClientRequest(url: base + "/health/ready"),
                timeout: .seconds(5)
            ),
                response.status == .ok
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestbedFailure("the gateway did not become ready in 30 s")
    }

    /// Signs in (`idField` is `staffId` on the receiver's staff API).
    func signIn(crewID: String, password: String, totp: String, idField: String = "crewId") async throws {
        var request = HTTPClientRequest(url: base + "/api/v1/session")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(
            ByteBuffer(string: #"{"\#(idField)":"\#(crewID)","password":"\#(password)","totp":"\#(totp)"}"#)
        )
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok, let setCookie = response.headers.first(name: "set-cookie") else {
            throw TestbedFailure("sign-in failed: \(response.status) \(String(buffer: body))")
        }
        cookie = String(setCookie.split(separator: ";")[0])
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        csrf = json?["csrfToken"] as? String ?? ""
    }

    func get(_ path: String) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: base + path)
        request.headers.add(name: "Cookie", value: cookie)
        return try await send(request)
    }

    func post(_ path: String, _ body: String) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "Cookie", value: cookie)
        request.headers.add(name: "X-CSRF-Token", value: csrf)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        return try await send(request)
    }

    private func send(_ request: HTTPClientRequest) async throws -> [String: Any] {
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw TestbedFailure("\(request.url): \(response.status) \(String(buffer: body))")
        }
        return (try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]) ?? [:]
    }

    /// Polls `GET /api/v1/reader` until the reader is in `state` (at most 30 s).
    func waitFor(reader state: String) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let reader = try await get("/api/v1/reader")
            if reader["state"] as? String == state { return reader }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestbedFailure("the reader did not get to \(state) in 30 s")
    }

    /// Follows the incident's event stream (the tablet's own) until a view satisfies `condition`, for at most 30 s
    /// (checked as each piece arrives; the stream's keep-alives come every few seconds).
    func waitFor(_ id: String, _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: base + "/api/v1/incidents/\(id)/events")
        request.headers.add(name: "Cookie", value: cookie)
        let deadline = ContinuousClock.now + .seconds(30)
        let response = try await http.execute(request, timeout: .seconds(30))
        var pending = ""
        for try await chunk in response.body {
            guard ContinuousClock.now < deadline else {
                throw TestbedFailure("the incident did not get there within 30 s")
            }
            pending += String(buffer: chunk)
            while let end = pending.range(of: "\n\n") {
                let event = String(pending[..<end.lowerBound])
                pending = String(pending[end.upperBound...])
                guard event.hasPrefix("event: incident"),
                    let line = event.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }),
                    let view = try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
                else { continue }
                if condition(view) { return view }
            }
        }
        throw TestbedFailure("the incident's event stream ended before it got there")
    }
}

/// Every byte of every file under `directory` (the database, its WAL and shared memory, keys, logs).
func stateBytes(_ directory: String) throws -> Data {
    var bytes = Data()
    let enumerator = FileManager.default.enumerator(atPath: directory)
    while let name = enumerator?.nextObject() as? String {
        if let data = FileManager.default.contents(atPath: directory + "/" + name) { bytes.append(data) }
    }
    return bytes
}
