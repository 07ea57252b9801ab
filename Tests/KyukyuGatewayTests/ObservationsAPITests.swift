import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuDomain
import KyukyuEligibility
import KyukyuGateway
import KyukyuIncident
import KyukyuVault
import KyukyuWorkflow
import NIOCore
import Synchronization
import Testing

/// The gateway's wall clock in these tests: set by hand, so that the times it stamps can be checked exactly.
final class ManualClock: Sendable {
    private let current: Mutex<Date>

    init(_ date: Date) { current = Mutex(date) }

    func now() -> Date { current.withLock { $0 } }

    func advance(seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The crew's observations through the API (router, in-memory doubles): what is taken, what is refused and in which
/// words, what the incident view shows, and that it is stored with the incident.
@Suite("Gateway API: the crew's observations", .timeLimit(.minutes(1)))
struct ObservationsAPITests {
    static let start = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18T11:06:40Z

    /// One signed-in client with an open incident.
    struct Scene {
        let client: any TestClientProtocol
        let session: SignedIn
        let id: String

        var base: String { "/api/v1/incidents/\(id)" }

        func send(
            _ method: HTTPRequest.Method,
            _ path: String,
            _ json: String? = nil,
            contentType: String = "application/json"
        ) async throws -> (Int, JSONAny?) {
            var headers = session.headers
            headers[.contentType] = contentType
            return try await client.execute(
                uri: base + path,
                method: method,
                headers: headers,
                body: json.map { ByteBuffer(string: $0) }
            ) { ($0.status.code, try? body($0)) }
        }

        func observations() async throws -> JSONAny? {
            try await client.execute(uri: base, method: .get, headers: session.headers) { try body($0)["observations"] }
        }
    }

    static func scene(_ client: some TestClientProtocol) async throws -> Scene {
        let session = try await SignedIn.signIn(client)
        let id = try await client.execute(
            uri: "/api/v1/incidents",
            method: .post,
            headers: session.headers,
            body: ByteBuffer(string: "{}")
        ) { try #require(try body($0)["id"]?.string) }
        return Scene(client: client, session: session, id: id)
    }

    /// Expects a 422 `validation` problem naming `field`, with `reason` (the domain's words), and without `value`.
    static func expectRefused(
        _ answer: (Int, JSONAny?),
        _ field: String,
        _ reason: String? = nil,
        without value: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(answer.0 == 422, sourceLocation: sourceLocation)
        #expect(
            answer.1?["type"]?.string == "https://kyukyu.invalid/problems/validation",
            sourceLocation: sourceLocation
        )
        guard case .array(let params)? = answer.1?["invalidParams"] else {
            Issue.record("no invalidParams", sourceLocation: sourceLocation)
            return
        }
        #expect(params.first?["name"]?.string == field, sourceLocation: sourceLocation)
        if let reason {
            #expect(params.first?["reason"]?.string == reason, sourceLocation: sourceLocation)
        }
        if let value, let detail = answer.1?["detail"]?.string {
            #expect(!detail.contains(value), "the problem echoes the value: \(detail)", sourceLocation: sourceLocation)
        }
    }

    static func iso(_ date: Date) -> String { date.formatted(.iso8601) }

    @Test func aMergePatchSetsKeepsAndRemovesFieldsAndTheETAIsStampedWithTheGatewaysClock() async throws {
        let clock = ManualClock(Self.start)
        let harness = try APIHarness(now: clock.now)
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            #expect(try await scene.observations() == .object(["vitals": .array([]), "treatments": .array([])]))
            var answer = try await scene.send(
                .patch,
                "/observations",
                #"{"chiefComplaint":"chest-pain","priority":"red","etaMinutes":12,"hospital":"9999999999","trauma":{"mechanism":"blunt","injuries":["chest","head"]}}"#,
                contentType: "application/merge-patch+json"
            )
            #expect(answer.0 == 200)
            var observations = try #require(answer.1?["observations"])
            #expect(observations["chiefComplaint"]?.string == "chest-pain")
            #expect(observations["priority"]?.string == "red")
            #expect(observations["etaMinutes"] == .number(12))
            #expect(observations["etaRecordedAt"]?.string == Self.iso(Self.start))
            #expect(observations["hospital"]?.string == "9999999999")
            #expect(
                observations["trauma"]
                    == .object([
                        "mechanism": .string("blunt"), "injuries": .array([.string("chest"), .string("head")]),
                    ])
            )

            // Left out: kept. null: removed. Inside trauma: member by member.
            clock.advance(seconds: 120)
            answer = try await scene.send(
                .patch,
                "/observations",
                #"{"priority":null,"etaMinutes":8,"trauma":{"mechanism":null}}"#
            )
            #expect(answer.0 == 200)
            observations = try #require(answer.1?["observations"])
            #expect(observations["priority"] == nil)
            #expect(observations["chiefComplaint"]?.string == "chest-pain")
            #expect(observations["etaMinutes"] == .number(8))
            #expect(observations["etaRecordedAt"]?.string == Self.iso(Self.start.addingTimeInterval(120)))
            #expect(observations["trauma"] == .object(["injuries": .array([.string("chest"), .string("head")])]))
            #expect(try await scene.observations() == observations)

            answer = try await scene.send(.patch, "/observations", #"{"etaMinutes":null,"trauma":{"injuries":[]}}"#)
            observations = try #require(answer.1?["observations"])
            #expect(observations["etaMinutes"] == nil && observations["etaRecordedAt"] == nil)
            #expect(observations["trauma"] == nil)
        }
    }

    @Test func anOnsetNeedsItsKindAndTimeAndNeitherTheFutureNorLastWeek() async throws {
        let clock = ManualClock(Self.start)
        let harness = try APIHarness(now: clock.now)
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"onset":{"kind":"onset"}}"#),
                "onset",
                "a new onset needs both its kind and its time"
            )
            let future = Self.iso(Self.start.addingTimeInterval(600))
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"onset":{"kind":"onset","at":"\#(future)"}}"#),
                "onset.at",
                "the onset must be within the last 7 days, not in the future",
                without: future
            )
            let earlier = Self.iso(Self.start.addingTimeInterval(-1800))
            var answer = try await scene.send(
                .patch,
                "/observations",
                #"{"onset":{"kind":"last-known-well","at":"\#(earlier)"}}"#
            )
            #expect(
                answer.1?["observations"]?["onset"]
                    == .object(["kind": .string("last-known-well"), "at": .string(earlier)])
            )
            // With an onset on record, the kind alone changes.
            answer = try await scene.send(.patch, "/observations", #"{"onset":{"kind":"onset"}}"#)
            #expect(answer.1?["observations"]?["onset"] == .object(["kind": .string("onset"), "at": .string(earlier)]))
        }
    }

    @Test func aBadPatchIsRefusedNamingTheFieldInTheDomainsWordsAndChangesNothing() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            Self.expectRefused(try await scene.send(.patch, "/observations", #"{"pulse":80}"#), "pulse")
            Self.expectRefused(try await scene.send(.patch, "/observations", #"{"priority":"blue"}"#), "priority")
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"etaMinutes":601}"#),
                "etaMinutes",
                "ETA must be 0 to 600 minutes",
                without: "601"
            )
            Self.expectRefused(try await scene.send(.patch, "/observations", #"{"etaMinutes":7.5}"#), "etaMinutes")
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"hospital":"1312345678"}"#),
                "hospital",
                "is not in this gateway's list of receiving hospitals",
                without: "1312345678"
            )
            Self.expectRefused(try await scene.send(.patch, "/observations", #"{"hospital":"12345"}"#), "hospital")
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"chiefComplaint":"other"}"#),
                "complaintNote",
                "a chief complaint of \"other\" needs a note"
            )
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"trauma":{"injuries":["head","head"]}}"#),
                "trauma.injuries"
            )
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"trauma":{"force":"high"}}"#),
                "trauma.force"
            )
            let long = String(repeating: "あ", count: 201)
            Self.expectRefused(
                try await scene.send(.patch, "/observations", #"{"complaintNote":"\#(long)"}"#),
                "complaintNote",
                without: long
            )
            #expect(
                try await scene.send(.patch, "/observations", #"{"priority":"red"}"#, contentType: "text/plain").0
                    == 415
            )
            #expect(try await scene.send(.patch, "/observations", "[1]").0 == 400)
            #expect(try await scene.observations() == .object(["vitals": .array([]), "treatments": .array([])]))
            // The other-complaint with its note is taken.
            let answer = try await scene.send(
                .patch,
                "/observations",
                #"{"chiefComplaint":"other","complaintNote":"蜂に刺された"}"#
            )
            #expect(answer.1?["observations"]?["complaintNote"]?.string == "蜂に刺された")
        }
    }

    @Test func vitalSetsAreTimedByTheGatewayKeptInTimeOrderAndAMistakenOneIsRemoved() async throws {
        let clock = ManualClock(Self.start)
        let harness = try APIHarness(now: clock.now)
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            var answer = try await scene.send(
                .post,
                "/vitals",
                #"{"jcs":10,"gcs":{"eye":3,"verbal":4,"motor":6},"heartRate":118,"systolic":92,"diastolic":60,"spo2":93,"respiratoryRate":24,"temperature":36.84,"bloodGlucose":110}"#
            )
            #expect(answer.0 == 200)
            var vitals = try #require(answer.1?["observations"]?["vitals"])
            #expect(
                vitals
                    == .array([
                        .object([
                            "index": .number(0), "takenAt": .string(Self.iso(Self.start)), "jcs": .number(10),
                            "jcsLabel": .string("II-10"),
                            "gcs": .object([
                                "eye": .number(3), "verbal": .number(4), "motor": .number(6), "total": .number(13),
                            ]),
                            "heartRate": .number(118), "systolic": .number(92), "diastolic": .number(60),
                            "spo2": .number(93), "respiratoryRate": .number(24), "temperature": .number(36.8),
                            "bloodGlucose": .number(110),
                        ])
                    ])
            )
            // A set taken earlier (entered late) goes before it; a later one after.
            clock.advance(seconds: 300)
            let earlier = Self.iso(Self.start.addingTimeInterval(-240))
            _ = try await scene.send(.post, "/vitals", #"{"takenAt":"\#(earlier)","heartRate":130}"#)
            answer = try await scene.send(.post, "/vitals", #"{"heartRate":104}"#)
            vitals = try #require(answer.1?["observations"]?["vitals"])
            guard case .array(let sets) = vitals else { throw CancellationError() }
            #expect(sets.map { $0["heartRate"] } == [.number(130), .number(118), .number(104)])
            #expect(sets.map { $0["index"] } == [.number(0), .number(1), .number(2)])
            #expect(sets.last?["takenAt"]?.string == Self.iso(Self.start.addingTimeInterval(300)))

            answer = try await scene.send(.delete, "/vitals/0")
            #expect(answer.0 == 200)
            guard case .array(let left)? = answer.1?["observations"]?["vitals"] else { throw CancellationError() }
            #expect(left.map { $0["heartRate"] } == [.number(118), .number(104)])
            #expect(try await scene.send(.delete, "/vitals/2").0 == 404)
            #expect(try await scene.send(.delete, "/vitals/x").0 == 404)
        }
    }

    @Test(
        arguments: [
            (#"{"heartRate":400}"#, "heartRate", "heart rate must be 0 to 300", "400"),
            (#"{"spo2":101}"#, "spo2", "SpO2 must be 0 to 100", "101"),
            (#"{"temperature":48.5}"#, "temperature", "temperature must be 25 to 45", "48.5"),
            (#"{"bloodGlucose":5}"#, "bloodGlucose", "blood glucose must be 10 to 1500", nil),
            (#"{"systolic":80,"diastolic":120}"#, "diastolic", "the diastolic pressure is above the systolic", "120"),
            (#"{"gcs":{"eye":5,"verbal":4,"motor":6}}"#, "gcs.eye", "GCS eye must be 1 to 4", nil),
            (#"{"gcs":{"eye":4,"verbal":4}}"#, "gcs.motor", "is required", nil),
            (#"{"jcs":4}"#, "jcs", nil, nil),
            (#"{"heartRate":80.5}"#, "heartRate", "must be a whole number", "80.5"),
            (#"{"heartRate":"80"}"#, "heartRate", "must be a whole number", nil),
            ("{}", "vitals", "a set of vital signs needs at least one value", nil),
            (#"{"takenAt":"2026-11-18T11:10:00Z","heartRate":80}"#, "takenAt", nil, nil),
            (#"{"takenAt":"yesterday","heartRate":80}"#, "takenAt", nil, "yesterday"),
            (#"{"pulse":80}"#, "pulse", nil, nil),
        ] as [(String, String, String?, String?)]
    )
    func aBadVitalSetIsRefusedNamingItsField(json: String, field: String, reason: String?, value: String?) async throws
    {
        let harness = try APIHarness(now: { Self.start })
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            Self.expectRefused(try await scene.send(.post, "/vitals", json), field, reason, without: value)
            #expect(try await scene.observations()?["vitals"] == .array([]))
        }
    }

    @Test func treatmentsAreTimedAndAMistakenOneIsRemoved() async throws {
        let clock = ManualClock(Self.start)
        let harness = try APIHarness(now: clock.now)
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            _ = try await scene.send(.post, "/treatments", #"{"kind":"oxygen"}"#)
            clock.advance(seconds: 60)
            let answer = try await scene.send(.post, "/treatments", #"{"kind":"intravenous-access"}"#)
            #expect(
                answer.1?["observations"]?["treatments"]
                    == .array([
                        .object(["index": .number(0), "kind": .string("oxygen"), "at": .string(Self.iso(Self.start))]),
                        .object([
                            "index": .number(1), "kind": .string("intravenous-access"),
                            "at": .string(Self.iso(Self.start.addingTimeInterval(60))),
                        ]),
                    ])
            )
            Self.expectRefused(try await scene.send(.post, "/treatments", #"{"kind":"surgery"}"#), "kind")
            Self.expectRefused(try await scene.send(.post, "/treatments", #"{}"#), "kind", "is required")
            let removed = try await scene.send(.delete, "/treatments/0")
            guard case .array(let left)? = removed.1?["observations"]?["treatments"] else { throw CancellationError() }
            #expect(left.map { $0["kind"]?.string } == ["intravenous-access"])
        }
    }

    @Test func theRoutesNeedASessionAndTheCSRFTokenAndAClosedIncidentTakesNothing() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            for (method, path) in [
                (HTTPRequest.Method.patch, "/observations"), (.post, "/vitals"), (.post, "/treatments"),
                (.delete, "/vitals/0"),
            ] {
                try await client.execute(
                    uri: scene.base + path,
                    method: method,
                    headers: [.cookie: scene.session.cookie, .contentType: "application/json"],
                    body: ByteBuffer(string: #"{"heartRate":80}"#)
                ) { #expect($0.status == .forbidden, "\(method) \(path) without the CSRF token") }
                try await client.execute(uri: scene.base + path, method: method) {
                    #expect($0.status == .unauthorized, "\(method) \(path) without a session")
                }
            }
            try await client.execute(uri: "/api/v1/hospitals", method: .get) { #expect($0.status == .unauthorized) }
            _ = try await scene.send(.post, "/close", "{}")
            try await client.execute(uri: scene.base, method: .get, headers: scene.session.headers) { response in
                #expect((try? body(response))?["observations"] == nil)
            }
            let answer = try await scene.send(.post, "/vitals", #"{"heartRate":80}"#)
            #expect(answer.0 == 409)
        }
    }

    @Test func theHospitalsAreTheConfiguredOnesWithoutTheirURLs() async throws {
        let hospitals = [
            ReceivingHospital(
                code: HospitalCode(rawValue: "1312345678")!,
                name: "架空総合病院",
                nameKana: "カクウソウゴウビョウイン",
                url: "https://er.example.invalid"
            ),
            ReceivingHospital(code: HospitalCode(rawValue: "1398765432")!, name: "架空医大", url: "https://10.0.0.9"),
        ]
        let harness = try APIHarness(hospitals: hospitals)
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            try await client.execute(uri: "/api/v1/hospitals", method: .get, headers: scene.session.headers) {
                response in
                #expect(response.status == .ok)
                #expect(
                    (try? body(response))
                        == .object([
                            "hospitals": .array([
                                .object([
                                    "code": .string("1312345678"), "name": .string("架空総合病院"),
                                    "nameKana": .string("カクウソウゴウビョウイン"), "acceptance": .null,
                                ]),
                                .object([
                                    "code": .string("1398765432"), "name": .string("架空医大"), "acceptance": .null,
                                ]),
                            ])
                        ])
                )
            }
            #expect(try await scene.send(.patch, "/observations", #"{"hospital":"1398765432"}"#).0 == 200)
            Self.expectRefused(try await scene.send(.patch, "/observations", #"{"hospital":"9999999999"}"#), "hospital")
        }
    }

    @Test func theObservationsAreStoredWithTheIncidentAndReadBackAfterARestart() async throws {
        let harness = try APIHarness(now: { Self.start })
        try await harness.application().test(.router) { client in
            let scene = try await Self.scene(client)
            _ = try await scene.send(.patch, "/observations", #"{"priority":"yellow","chiefComplaint":"seizure"}"#)
            _ = try await scene.send(.post, "/vitals", #"{"jcs":3,"spo2":97}"#)
            _ = try await scene.send(.post, "/treatments", #"{"kind":"oxygen"}"#)
            // A second desk over the same store: what a restarted gateway reads back.
            let fetching = EligibilityClient(
                transport: harness.onshi,
                configuration: EligibilityClientConfiguration(hedgeAfter: nil),
                logger: silent
            )
            let desk = IncidentDesk(
                effects: WorkflowEffects(store: harness.store, fetching: fetching),
                configuration: WorkflowConfiguration(
                    terminalID: "ambulance-test",
                    deadlines: FetchDeadlines(overall: .seconds(20), perCategory: .seconds(20))
                ),
                logger: silent
            )
            _ = try await desk.restore(viewer: CrewID("TEST-A1")!)
            let runner = try await desk.runner(IncidentID(scene.id)!)
            let stored = try #require(await runner.snapshot().state.observations)
            #expect(stored.priority == .yellow)
            #expect(stored.chiefComplaint == .seizure)
            #expect(stored.vitals.map(\.jcs) == [.i3])
            #expect(stored.vitals.map(\.spo2) == [97])
            #expect(stored.treatments.map(\.kind) == [.oxygen])
        }
    }
}
