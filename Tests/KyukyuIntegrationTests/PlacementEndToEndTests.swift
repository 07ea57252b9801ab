import AsyncHTTPClient
import Crypto
import Foundation
import KyukyuCrew
import KyukyuDomain
import KyukyuGateway
import KyukyuReceiver
import KyukyuTestbed
import KyukyuVault
import KyukyuWorkflow
import NIOCore
import NIOHTTP1
import Testing

/// The picker and a placement request through the real parts (issue 12): the gateway as `serve` assembles it
/// (`Gateway.make`: the acceptance feed, the placement dispatcher, the device stream's listener, the outbox) and a
/// receiver serving two hospitals (KyukyuReceiver over SQLite, mutual TLS with the device certificate it issued),
/// on loopback; the hospitals' staff act through the receiver's desk. No card: the crew's chief complaint makes the
/// need.
@Suite(
    "Placement end to end (gateway and a two-hospital receiver over mutual TLS)",
    .serialized,
    .timeLimit(.minutes(3))
)
struct PlacementEndToEndTests {
    static let first = HospitalCode(rawValue: "1310000001")!
    static let second = HospitalCode(rawValue: "1310000002")!
    static let port = 24030

    @Test func theLivePickerRanksAndTheFirstAcceptanceBecomesTheDestination() async throws {
        try await withOnshi { onshi in
            let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-pl-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: state) }
            try FileManager.default.createDirectory(atPath: state + "/gateway", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: state + "/hospital", withIntermediateDirectories: true)

            // The hub: one receiver serving two hospitals, and this ambulance's certificate for it.
            let pki = HospitalPKI(directory: state + "/hospital/pki")
            try pki.initialize(hospital: Self.first.rawValue, serverNames: ["localhost", "127.0.0.1"])
            _ = try pki.issueDevice(OnshiBed.device, outDirectory: state + "/gateway/hospital-tls")
            let store = try HospitalStore.open(
                path: state + "/hospital/hospital.sqlite",
                hospital: Self.first,
                keyProvider: KeyFileProvider(stateDirectory: state + "/hospital"),
                logger: OnshiBed.quiet
            )
            try await store.registerDevice(OnshiBed.device)
            let desk = HospitalDesk(
                hospitals: [Self.first, Self.second],
                store: store,
                validator: FHIRHandoffValidator(),
                logger: OnshiBed.quiet
            )
            let receiver = try HospitalReceiver.make(
                settings: HospitalSettings(host: "127.0.0.1", port: Self.port, tls: try pki.serverTLSConfiguration()),
                desk: desk,
                staff: NoStaff(),
                signals: [],
                logger: OnshiBed.quiet
            )
            let receiving = Task { try await receiver.run() }
            defer { receiving.cancel() }
            // The first hospital has no stroke specialist tonight (published before the ambulance connects: the
            // snapshot brings it).
            _ = try await desk.publishAcceptance(
                Self.first,
                setting: [.stroke: try .notAccepting(.noSpecialist, note: "神経内科 不在")],
                withdrawing: [],
                staff: "NURSE-A"
            )

            // The gateway, its two hospitals on the hub's one URL.
            let vault = try await IncidentVault.open(stateDirectory: state + "/gateway", logger: OnshiBed.quiet)
            var policy = CrewDirectory.Policy()
            policy.bcryptCost = 4
            let crew = try CrewDirectory.open(
                path: state + "/gateway/crew.sqlite",
                secretKey: SymmetricKey(size: .bits256),
                policy: policy,
                logger: OnshiBed.quiet,
                audit: VaultCrewAudit(vault: vault, terminalID: OnshiBed.device)
            )
            let enrolment = try await crew.add(crewID: "TEST-PL", password: "synthetic-pass-0003", pin: "2468")
            let url = "https://127.0.0.1:\(Self.port)"
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let gateway = try Gateway.make(
                settings: GatewaySettings(
                    port: 0,
                    stateDirectory: state + "/gateway",
                    terminalID: OnshiBed.device,
                    onshiURL: "https://127.0.0.1:\(onshi.port)",
                    onshiTLSDirectory: OnshiBed.tlsDirectory + "/terminals",
                    hospitals: [
                        ReceivingHospital(code: Self.first, name: "テスト第一病院 (架空)", url: url),
                        ReceivingHospital(code: Self.second, name: "テスト第二病院 (架空)", url: url),
                    ],
                    handoffTLSDirectory: state + "/gateway/hospital-tls"
                ),
                vault: vault,
                crew: crew,
                onRunning: { portContinuation.yield($0) },
                logger: OnshiBed.quiet
            )
            let running = Task { try await gateway.run() }
            defer { running.cancel() }
            var portIterator = ports.makeAsyncIterator()
            let gatewayPort = try #require(await portIterator.next())
            let api = TabletClient(base: "http://127.0.0.1:\(gatewayPort)")
            defer { Task { try? await api.http.shutdown() } }
            try await api.waitUntilReady()
            try await api.signIn(crewID: "TEST-PL", password: "synthetic-pass-0003", totp: totp(enrolment.totpSecret))

            let id = try #require(try await api.post("/api/v1/incidents", "{}")["id"] as? String)
            _ = try await api.post("/api/v1/incidents/\(id)/consent", #"{"basis":"life-or-body-exception"}"#)
            try await api.patch("/api/v1/incidents/\(id)/observations", #"{"chiefComplaint":"stroke-symptoms"}"#)

            // The second hospital publishes that it takes strokes: the tablet's stream re-ranks by itself.
            _ = try await desk.publishAcceptance(
                Self.second,
                setting: [.stroke: .accepting],
                withdrawing: [],
                staff: "NURSE-B"
            )
            let ranking = try await api.waitForRanking(id) { ranking in
                let entries = ranking["hospitals"] as? [[String: Any]] ?? []
                return entries.map { $0["code"] as? String } == [Self.second.rawValue, Self.first.rawValue]
                    && entries.first?["tier"] as? String == "accepts-all"
            }
            let entries = ranking["hospitals"] as? [[String: Any]] ?? []
            #expect(entries.last?["tier"] as? String == "declines")
            let declined = (entries.last?["declined"] as? [[String: Any]])?.first
            #expect(declined?["reason"] as? String == "no-specialist" && declined?["note"] as? String == "神経内科 不在")
            #expect((ranking["needs"] as? [[String: Any]])?.first?["condition"] as? String == "stroke")

            // One request to both; the hub stores it.
            _ = try await api.post(
                "/api/v1/incidents/\(id)/placements",
                #"{"hospitals":["\#(Self.first)","\#(Self.second)"]}"#
            )
            let stored = try await api.waitFor(id) { ($0["placement"] as? [String: Any])?["stored"] as? Bool == true }
            let placementID = try #require(
                ((stored["placement"] as? [String: Any])?["id"] as? String).flatMap { UUID(uuidString: $0) }
            )

            // The first declines, the second accepts: the document goes to the second, the first is told.
            _ = try await desk.answerPlacement(
                placementID,
                at: Self.first,
                answer: .declined,
                reason: .icuFull,
                note: "ICU満床",
                staff: "NURSE-A"
            )
            _ = try await desk.answerPlacement(
                placementID,
                at: Self.second,
                answer: .accepted,
                reason: nil,
                note: nil,
                staff: "NURSE-B"
            )
            let placed = try await api.waitFor(id) { view in
                let handoff = view["handoff"] as? [String: Any]
                return handoff?["hospital"] as? String == Self.second.rawValue
                    && (handoff?["deliveredVersion"] as? Int ?? 0) >= 1
            }
            let answers = Dictionary(
                uniqueKeysWithValues: ((placed["placement"] as? [String: Any])?["hospitals"] as? [[String: Any]] ?? [])
                    .map { ($0["code"] as? String ?? "", $0["answer"] as? String ?? "") }
            )
            #expect(answers == [Self.first.rawValue: "declined", Self.second.rawValue: "accepted"])
            #expect((placed["observations"] as? [String: Any])?["hospital"] as? String == Self.second.rawValue)
            // The hub holds the document for the second hospital, under the set the hospitals were asked about.
            let set = try #require(
                ((placed["handoff"] as? [String: Any])?["documentSet"] as? String).flatMap {
                    UUID(uuidString: String($0.dropFirst("urn:uuid:".count)))
                }
            )
            #expect(try await store.versions(of: set, at: Self.second).map(\.version) == [1])
            #expect(try await store.placement(placementID, at: Self.second)?.documentSet == set)
            await receiver.shutdown()
        }
    }
}

extension TabletClient {
    /// `PATCH` with the session's cookie and CSRF token; throws unless 2xx.
    func patch(_ path: String, _ body: String) async throws {
        var request = HTTPClientRequest(url: base + path)
        request.method = .PATCH
        request.headers.add(name: "Cookie", value: cookie)
        request.headers.add(name: "X-CSRF-Token", value: csrf)
        request.headers.add(name: "Content-Type", value: "application/merge-patch+json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await http.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw TestbedFailure("\(path): \(response.status) \(text)")
        }
    }

    /// The incident's ranking once it satisfies `condition`, from the incident's stream (`event: hospitals`: the
    /// current ranking at once, then each change), for at most 30 s.
    func waitForRanking(_ id: String, _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: base + "/api/v1/incidents/\(id)/events")
        request.headers.add(name: "Cookie", value: cookie)
        let deadline = ContinuousClock.now + .seconds(30)
        let response = try await http.execute(request, timeout: .seconds(30))
        var pending = ""
        for try await chunk in response.body {
            guard ContinuousClock.now < deadline else { throw TestbedFailure("the ranking did not get there in 30 s") }
            pending += String(buffer: chunk)
            while let end = pending.range(of: "\n\n") {
                let event = String(pending[..<end.lowerBound])
                pending = String(pending[end.upperBound...])
                guard event.hasPrefix("event: hospitals"),
                    let line = event.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }),
                    let ranking = try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8))
                        as? [String: Any]
                else { continue }
                if condition(ranking) { return ranking }
            }
        }
        throw TestbedFailure("the incident's event stream ended before the ranking got there")
    }
}
