import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuDomain
import KyukyuGateway
import KyukyuIncident
import KyukyuVault
import KyukyuWorkflow
import NIOCore
import Synchronization
import Testing

/// The outbox as the desk sees it in the router tests: what was queued, in order (the real one is the gateway's
/// `GatewayOutbox`, tested in OutboxTests).
final class RecordingHandoffOutbox: HandoffOutbox {
    private let queued = Mutex<[OutboxItem]>([])
    private let noticed = Mutex<[HandoffNotice]>([])

    func enqueue(_ item: OutboxItem) async { queued.withLock { $0.append(item) } }

    func notify(_ notices: [HandoffNotice]) async { noticed.withLock { $0 += notices } }

    /// Every notice handed over, oldest first.
    var notices: [HandoffNotice] { noticed.withLock { $0 } }

    /// Everything queued so far, oldest first.
    var items: [OutboxItem] { queued.withLock { $0 } }
}

/// Writes down which set, version and hospital a document was built for (the real builder is KyukyuFHIR's).
struct SetBuilder: HandoffDocumentBuilding {
    func build(_ request: HandoffBuildRequest) throws -> Data {
        try JSONEncoder().encode([
            "set": request.documentSet.uuidString, "version": String(request.version),
            "hospital": request.hospital.code.rawValue,
        ])
    }
}

/// `POST /api/v1/incidents/{id}/handoff` and the incident view's `handoff` block (router, in-memory doubles): the
/// send, the refusals, the delivery's progress as the outbox and the hospital report it, a divert and the next
/// hospital, the update after a change, and the handover.
@Suite("Gateway API: sending the document to the hospital", .timeLimit(.minutes(1)))
struct HandoffAPITests {
    static let demo = ReceivingHospital.demo[0]
    static let second = ReceivingHospital(
        code: HospitalCode(rawValue: "9999999992")!,
        name: "テスト第二病院 (架空)",
        url: "https://127.0.0.1:2"
    )
    static let hospitals = [demo, second]

    /// The fields the `handoff` block may carry: none of them patient data.
    static let handoffFields: Set<String> = [
        "documentSet", "hospital", "hospitalName", "status", "latestVersion", "deliveredVersion", "divert",
        "divertedBy", "problem", "waiting", "waitingSince",
    ]

    static func send(
        _ scene: ObservationsAPITests.Scene,
        _ json: String,
        headers: HTTPFields? = nil
    ) async throws -> (Int, JSONAny?) {
        try await scene.client.execute(
            uri: scene.base + "/handoff",
            method: .post,
            headers: headers ?? scene.session.headers,
            body: ByteBuffer(string: json)
        ) { ($0.status.code, try? body($0)) }
    }

    static func incident(_ scene: ObservationsAPITests.Scene) async throws -> JSONAny {
        try await scene.client.execute(uri: scene.base, method: .get, headers: scene.session.headers) { try body($0) }
    }

    static func number(_ value: JSONAny?) -> Double? {
        guard case .number(let number)? = value else { return nil }
        return number
    }

    static func strings(_ value: JSONAny?) -> [String]? {
        guard case .array(let items)? = value else { return nil }
        return items.compactMap(\.string)
    }

    static func runner(_ harness: APIHarness, _ scene: ObservationsAPITests.Scene) async throws -> IncidentRunner {
        try await harness.desk.runner(try #require(IncidentID(scene.id)))
    }

    @Test("the send queues version 1 for the hospital; the view says so, without patient data")
    func send() async throws {
        let harness = try APIHarness(hospitals: Self.hospitals)
        try await harness.application().test(.router) { client in
            let scene = try await ObservationsAPITests.scene(client)
            let before = try await Self.incident(scene)
            #expect(before["handoff"] == nil, "no handoff block before the first send")

            let (status, view) = try await Self.send(scene, #"{"hospital":"9999999999"}"#)
            #expect(status == 202)
            let handoff = try #require(view?["handoff"])
            guard case .object(let fields) = handoff else { Issue.record("handoff is not an object"); return }
            #expect(Set(fields.keys).isSubset(of: Self.handoffFields), "\(fields.keys.sorted())")
            #expect(handoff["status"]?.string == "queued")
            #expect(handoff["hospital"]?.string == "9999999999")
            #expect(handoff["hospitalName"]?.string == Self.demo.name)
            #expect(Self.number(handoff["latestVersion"]) == 1)
            #expect(Self.number(handoff["deliveredVersion"]) == 0)
            #expect(Self.number(handoff["waiting"]) == 1)
            #expect(handoff["waitingSince"]?.string != nil)
            #expect(Self.strings(handoff["divertedBy"]) == [])
            #expect(handoff["divert"] == nil && handoff["problem"] == nil)
            let set = try #require(handoff["documentSet"]?.string)
            #expect(set.hasPrefix("urn:uuid:") && UUID(uuidString: String(set.dropFirst(9))) != nil, "\(set)")
            #expect(view?["observations"]?["hospital"]?.string == "9999999999", "the pick is recorded too")

            // What went to the outbox: one document, version 1, for that hospital.
            let items = harness.outbox.items
            #expect(items.map(\.kind) == [.document(version: 1)])
            #expect(items.map(\.hospital.rawValue) == ["9999999999"])

            // The list of incidents carries the block as well (it holds no patient data).
            let headers = scene.session.headers
            let list = try await client.execute(uri: "/api/v1/incidents", method: .get, headers: headers) {
                try body($0)
            }
            guard case .array(let incidents)? = list["incidents"] else {
                Issue.record("no list")
                return
            }
            #expect(incidents.first?["handoff"]?["status"]?.string == "queued")
        }
    }

    @Test("a bad or unknown code, another field, no CSRF token: refused, nothing queued")
    func refusals() async throws {
        let harness = try APIHarness(hospitals: Self.hospitals)
        try await harness.application().test(.router) { client in
            let scene = try await ObservationsAPITests.scene(client)
            for body in [
                #"{"hospital":"12345"}"#, #"{"hospital":1312345678}"#, #"{"hospital":"8888888888"}"#, #"{}"#,
                #"{"hospital":null}"#,
            ] {
                let answer = try await Self.send(scene, body)
                ObservationsAPITests.expectRefused(answer, "hospital")
            }
            let unknownField = try await Self.send(scene, #"{"hospital":"9999999999","patient":"x"}"#)
            #expect(unknownField.0 == 422)
            var headers = scene.session.headers
            headers[GatewayAPI.csrfHeader] = nil
            let noToken = try await Self.send(scene, #"{"hospital":"9999999999"}"#, headers: headers)
            #expect(noToken.0 == 403)
            #expect(harness.outbox.items.isEmpty)
            #expect(try await Self.incident(scene)["handoff"] == nil)
        }
    }

    @Test("the same hospital again is a conflict; a terminal without hospitals configured refuses with 409")
    func conflicts() async throws {
        let harness = try APIHarness(hospitals: Self.hospitals)
        try await harness.application().test(.router) { client in
            let scene = try await ObservationsAPITests.scene(client)
            #expect(try await Self.send(scene, #"{"hospital":"9999999999"}"#).0 == 202)
            let again = try await Self.send(scene, #"{"hospital":"9999999999"}"#)
            #expect(again.0 == 409)
            #expect(again.1?["detail"]?.string?.contains("already goes to this hospital") == true)
            #expect(harness.outbox.items.count == 1)
        }
        let bare = try APIHarness(handoff: false)
        try await bare.application().test(.router) { client in
            let scene = try await ObservationsAPITests.scene(client)
            let answer = try await Self.send(scene, #"{"hospital":"9999999999"}"#)
            #expect(answer.0 == 409)
            #expect(answer.1?["detail"]?.string?.contains("no receiving hospitals configured") == true)
        }
    }

    @Test("delivered, a problem, received, then diverted with its reason: another hospital gets the latest version")
    func divertThenAnother() async throws {
        let harness = try APIHarness(hospitals: Self.hospitals)
        try await harness.application().test(.router) { client in
            let scene = try await ObservationsAPITests.scene(client)
            _ = try await Self.send(scene, #"{"hospital":"9999999999"}"#)
            let runner = try await Self.runner(harness, scene)
            let set = try #require(await runner.documentSet())
            let first = try #require(harness.outbox.items.first)

            // The receiver cannot be reached: the words are shown, the item still waits.
            await runner.outboxProblem(first, problem: "the hospital's receiver cannot be reached", final: false)
            var handoff = try await Self.incident(scene)["handoff"]
            #expect(handoff?["status"]?.string == "queued")
            #expect(handoff?["problem"]?.string == "the hospital's receiver cannot be reached")
            #expect(Self.number(handoff?["waiting"]) == 1)

            // Delivered: sent, the problem gone, nothing waiting.
            await runner.outboxDelivered(first)
            handoff = try await Self.incident(scene)["handoff"]
            #expect(handoff?["status"]?.string == "sent")
            #expect(Self.number(handoff?["deliveredVersion"]) == 1)
            #expect(handoff?["problem"] == nil && Self.number(handoff?["waiting"]) == 0)
            #expect(handoff?["waitingSince"] == nil)

            await harness.desk.hospitalReported(
                documentSet: set,
                status: .received,
                hospital: Self.demo.code,
                divert: nil
            )
            #expect(try await Self.incident(scene)["handoff"]?["status"]?.string == "received")

            await harness.desk.hospitalReported(
                documentSet: set,
                status: .diverted,
                hospital: Self.demo.code,
                divert: Divert(.ctUnavailable, note: "CT点検中")
            )
            handoff = try await Self.incident(scene)["handoff"]
            #expect(handoff?["status"]?.string == "diverted")
            #expect(handoff?["divert"]?["reason"]?.string == "ct-unavailable")
            #expect(handoff?["divert"]?["note"]?.string == "CT点検中")
            #expect(Self.strings(handoff?["divertedBy"]) == ["9999999999"])

            // The crew picks the second hospital: version 2 goes there; the first (which diverted) is not told.
            let (status, view) = try await Self.send(scene, #"{"hospital":"9999999992"}"#)
            #expect(status == 202)
            handoff = view?["handoff"]
            #expect(handoff?["status"]?.string == "queued")
            #expect(handoff?["hospital"]?.string == "9999999992")
            #expect(handoff?["hospitalName"]?.string == Self.second.name)
            #expect(Self.number(handoff?["latestVersion"]) == 2)
            #expect(Self.number(handoff?["deliveredVersion"]) == 0)
            #expect(handoff?["divert"] == nil)
            #expect(Self.strings(handoff?["divertedBy"]) == ["9999999999"], "the first stays marked")
            #expect(handoff?["documentSet"]?.string == "urn:uuid:\(set.uuidString.lowercased())", "one set")
            #expect(view?["observations"]?["hospital"]?.string == "9999999992")
            let items = harness.outbox.items
            #expect(items.map(\.kind) == [.document(version: 1), .document(version: 2)])
            #expect(items.map(\.hospital.rawValue) == ["9999999999", "9999999992"])
        }
    }

    @Test("a change of the observations after the send builds the next version by itself; arrival hands over")
    func updateThenHandover() async throws {
        let harness = try APIHarness(hospitals: Self.hospitals)
        try await harness.application().test(.router) { client in
            let scene = try await ObservationsAPITests.scene(client)
            _ = try await Self.send(scene, #"{"hospital":"9999999999"}"#)
            let runner = try await Self.runner(harness, scene)
            await runner.outboxDelivered(try #require(harness.outbox.items.first))
            let (status, view) = try await scene.send(.post, "/vitals", #"{"heartRate":88}"#)
            #expect(status == 200)
            #expect(Self.number(view?["handoff"]?["latestVersion"]) == 2)
            #expect(Self.number(view?["handoff"]?["deliveredVersion"]) == 1)
            #expect(Self.number(view?["handoff"]?["waiting"]) == 1)
            #expect(harness.outbox.items.last?.kind == .document(version: 2))

            let set = try #require(await runner.documentSet())
            await harness.desk.hospitalReported(
                documentSet: set,
                status: .arrived,
                hospital: Self.demo.code,
                divert: nil
            )
            let closed = try await Self.incident(scene)
            #expect(closed["phase"]?.string == "closed")
            #expect(closed["closure"]?.string == "handed-over")
            #expect(closed["observations"] == nil && closed["summary"] == nil, "the patient's data is gone")
            #expect(closed["handoff"]?["status"]?.string == "arrived")
            let after = try await Self.send(scene, #"{"hospital":"9999999992"}"#)
            #expect(after.0 == 409)
        }
    }
}
