import Clocks
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuDomain
import KyukyuIncident
import KyukyuVault
import KyukyuWorkflow
import NIOCore
import Testing

@testable import KyukyuGateway

/// The picker's ranking (`GET …/hospitals`, the hospitals' list with their publications, the event stream's
/// `hospitals` event) and the placement request to several hospitals at once (`POST …/placements`, its withdrawal,
/// the hub's answers): router tests over in-memory doubles, the hub a ``FakeHub``, time on a test clock.
@Suite("Gateway API: the live hospital picker and placement requests", .timeLimit(.minutes(1)))
struct PlacementAPITests {
    static let url = "https://hub.test:24001"
    static let codes = ["1310000001", "1310000002", "1310000003"]
    static let hospitals = codes.enumerated().map { index, code in
        ReceivingHospital(code: HospitalCode(rawValue: code)!, name: "テスト第\(index + 1)病院 (架空)", url: url)
    }
    static func code(_ index: Int) -> HospitalCode { hospitals[index].code }

    /// The harness, its hub and the dispatcher (running on `clock` in the test's task group).
    struct Bed {
        let hub = FakeHub()
        let clock = TestClock()
        let board = AcceptanceBoard(hospitals: PlacementAPITests.hospitals.map(\.code))
        let dispatcher: PlacementDispatcher
        let harness: APIHarness

        init(patient: Int = 1) throws {
            dispatcher = PlacementDispatcher(
                hospitals: PlacementAPITests.hospitals,
                client: hub,
                clock: clock,
                backoff: DeliveryBackoff(initial: .seconds(1), maximum: .seconds(4)),
                random: { 0 },
                logger: silent
            )
            harness = try APIHarness(
                hospitals: PlacementAPITests.hospitals,
                patient: patient,
                acceptance: board,
                placements: dispatcher
            )
        }

        /// Runs `body` with the router's client and the dispatcher running.
        func run(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            await dispatcher.attach(harness.desk)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await dispatcher.run() }
                try await harness.application().test(.router) { client in try await body(client) }
                group.cancelAll()
            }
        }
    }

    static func post(_ scene: ObservationsAPITests.Scene, _ path: String, _ json: String) async throws -> (
        Int, JSONAny?
    ) {
        try await scene.client.execute(
            uri: scene.base + path,
            method: .post,
            headers: scene.session.headers,
            body: ByteBuffer(string: json)
        ) { ($0.status.code, try? body($0)) }
    }

    static func get(_ scene: ObservationsAPITests.Scene, _ uri: String) async throws -> JSONAny {
        try await scene.client.execute(uri: uri, method: .get, headers: scene.session.headers) { try body($0) }
    }

    static func answers(_ view: JSONAny?) -> [String: String] {
        guard case .array(let items)? = view?["placement"]?["hospitals"] else { return [:] }
        var answers: [String: String] = [:]
        for item in items { answers[item["code"]?.string ?? ""] = item["answer"]?.string }
        return answers
    }

    static func runner(_ bed: Bed, _ scene: ObservationsAPITests.Scene) async throws -> IncidentRunner {
        try await bed.harness.desk.runner(try #require(IncidentID(scene.id)))
    }

    /// Opens an incident with consent and the card read, its summary complete.
    static func patientScene(_ bed: Bed, _ client: some TestClientProtocol) async throws -> ObservationsAPITests.Scene {
        let scene = try await ObservationsAPITests.scene(client)
        let (status, _) = try await post(scene, "/consent", #"{"basis":"verbal"}"#)
        #expect(status == 200)
        await bed.harness.desk.cardTouched(bed.harness.card)
        _ = await waitFor(try await runner(bed, scene)) { $0.state.machine.summaryComplete }
        return scene
    }

    // MARK: - Ranking

    @Test("a dialysis patient's picker puts the hospital accepting dialysis first; the list carries each publication")
    func rankingForADialysisPatient() async throws {
        let bed = try Bed(patient: 6)
        // In the crew's order: the first declines dialysis, the second said nothing, the third accepts it.
        await bed.board.offer(try publication(Self.codes[0], revision: 3, [.dialysis: .notAccepting(.noBeds)]))
        await bed.board.offer(
            try publication(Self.codes[2], revision: 1, [.dialysis: .accepting, .stroke: .accepting])
        )
        try await bed.run { client in
            let scene = try await Self.patientScene(bed, client)
            let ranking = try await Self.get(scene, scene.base + "/hospitals")
            guard case .array(let needs)? = ranking["needs"], case .array(let entries)? = ranking["hospitals"] else {
                Issue.record("no needs or hospitals: \(ranking)")
                return
            }
            #expect(needs.map { $0["condition"]?.string } == ["dialysis"])
            guard case .array(let reasons)? = needs.first?["reasons"] else { return }
            #expect(reasons.first?["kind"]?.string == "red-flag" && reasons.first?["flag"]?.string == "dialysis")
            #expect(entries.map { $0["code"]?.string } == [Self.codes[2], Self.codes[1], Self.codes[0]])
            #expect(entries.map { $0["tier"]?.string } == ["accepts-all", "unknown", "declines"])
            #expect(entries[1]["acceptance"] == .null, "not published is null, not absent")
            guard case .array(let declined)? = entries[2]["declined"] else { return }
            #expect(
                declined.first?["condition"]?.string == "dialysis" && declined.first?["reason"]?.string == "no-beds"
            )
            #expect(entries[0]["acceptance"]?["revision"] == .number(1))
            #expect(ranking["asOf"]?.string != nil)
            let name = try await Self.get(scene, scene.base)["summary"]?["patient"]?["name"]?.string
            #expect(name != nil && !"\(ranking)".contains(name ?? "?"), "the ranking names no patient")

            // The crew's list: every hospital with its publication, or null.
            let list = try await Self.get(scene, "/api/v1/hospitals")
            guard case .array(let hospitals)? = list["hospitals"] else { return }
            #expect(hospitals.map { $0["code"]?.string } == Self.codes)
            #expect(hospitals[0]["acceptance"]?["conditions"]?["dialysis"]?["reason"]?.string == "no-beds")
            #expect(hospitals[1]["acceptance"] == .null)
        }
    }

    @Test("with no needs the hospitals keep the crew's order by whether they take patients; the complaint re-ranks")
    func rankingFollowsTheComplaint() async throws {
        let bed = try Bed()
        await bed.board.offer(try publication(Self.codes[0], revision: 1, [.stroke: .notAccepting(.noSpecialist)]))
        await bed.board.offer(try publication(Self.codes[1], revision: 1, [.stroke: .accepting]))
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            var ranking = try await Self.get(scene, scene.base + "/hospitals")
            guard case .array(let before)? = ranking["hospitals"] else { return }
            #expect(ranking["needs"] == .array([]))
            #expect(before.map { $0["tier"]?.string } == ["accepts-all", "unknown", "declines"])
            #expect(before.map { $0["code"]?.string } == [Self.codes[1], Self.codes[2], Self.codes[0]])

            let patched = try await scene.client.execute(
                uri: scene.base + "/observations",
                method: .patch,
                headers: scene.session.headers,
                body: ByteBuffer(string: #"{"chiefComplaint":"stroke-symptoms"}"#)
            ) { $0.status.code }
            #expect(patched == 200)
            ranking = try await Self.get(scene, scene.base + "/hospitals")
            guard case .array(let after)? = ranking["hospitals"] else { return }
            #expect(after.map { $0["tier"]?.string } == ["accepts-all", "unknown", "declines"])
            guard case .array(let needs)? = ranking["needs"] else { return }
            #expect(needs.first?["condition"]?.string == "stroke")
            guard case .array(let declined)? = after[2]["declined"] else { return }
            #expect(declined.first?["reason"]?.string == "no-specialist")
        }
    }

    @Test("the incident's event stream sends the ranking at once, and again when a hospital's acceptance changes")
    func streamTellsTheChange() async throws {
        let bed = try Bed()
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            let runner = try await Self.runner(bed, scene)
            let response = bed.harness.api.events(runner)
            let (chunks, writer) = ChunkWriter.make()
            let streaming = Task { try await response.body.write(writer) }
            defer { streaming.cancel() }
            var iterator = chunks.makeAsyncIterator()
            // The ranking at once (the stream listens to the board before it is sent), then again after a change.
            func hospitalsEvents(_ count: Int) async -> [String] {
                var text = ""
                while text.components(separatedBy: "event: hospitals\ndata: ").count <= count,
                    let chunk = await iterator.next()
                {
                    text += chunk
                }
                return text.components(separatedBy: "event: hospitals\ndata: ").dropFirst()
                    .compactMap { $0.split(separator: "\n").first.map(String.init) }
            }
            let first = await hospitalsEvents(1)
            #expect(first.count == 1 && first.first?.contains("icu-full") == false)
            await bed.board.offer(try publication(Self.codes[1], revision: 2, [.trauma: .notAccepting(.icuFull)]))
            let event = try #require(await hospitalsEvents(1).last)
            let ranking = try JSONDecoder().decode(JSONAny.self, from: Data(event.utf8))
            guard case .array(let entries)? = ranking["hospitals"] else {
                Issue.record("no hospitals in \(event)")
                return
            }
            #expect(entries.last?["code"]?.string == Self.codes[1])
            #expect(entries.last?["acceptance"]?["revision"] == .number(2))
            #expect(entries.last?["tier"]?.string == "declines")
        }
    }

    @Test("the incident's event stream always opens with the incident, then the ranking")
    func streamOpensWithTheIncident() async throws {
        let bed = try Bed()
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            let runner = try await Self.runner(bed, scene)
            // Many openings: the two used to race (CI once saw the ranking first).
            for _ in 0..<50 {
                let response = bed.harness.api.events(runner)
                let (chunks, writer) = ChunkWriter.make()
                let streaming = Task { try await response.body.write(writer) }
                var iterator = chunks.makeAsyncIterator()
                var text = ""
                while text.components(separatedBy: "\n\n").count < 3, let chunk = await iterator.next() {
                    text += chunk
                }
                streaming.cancel()
                let events = text.components(separatedBy: "\n\n").prefix(2).map {
                    $0.split(separator: "\n").first ?? ""
                }
                #expect(events == ["event: incident", "event: hospitals"], "\(events)")
            }
        }
    }

    // MARK: - Placement

    @Test("a request to two hospitals: one declines, the other accepts first and becomes the destination")
    func firstAcceptGetsTheDocument() async throws {
        let bed = try Bed()
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            let runner = try await Self.runner(bed, scene)
            let (status, view) = try await Self.post(
                scene,
                "/placements",
                #"{"hospitals":["\#(Self.codes[0])","\#(Self.codes[1])"]}"#
            )
            #expect(status == 202)
            #expect(Self.answers(view) == [Self.codes[0]: "pending", Self.codes[1]: "pending"])
            #expect(view?["placement"]?["open"] == .bool(true))
            #expect(view?["handoff"] == nil, "nothing is sent before a hospital accepts")
            _ = await waitFor(runner) { $0.state.placement?.stored == true }
            let sent = try #require(bed.hub.submitted.first)
            #expect(bed.hub.submitted.count == 1)
            #expect(sent.request.hospitals == [Self.code(0), Self.code(1)])
            #expect(sent.url == Self.url)
            let set = try #require(await runner.documentSet())
            #expect(sent.request.documentSet == set)

            // A second request while one is open is refused.
            #expect(try await Self.post(scene, "/placements", #"{"hospitals":["\#(Self.codes[2])"]}"#).0 == 409)

            // The answers arrive through the device stream's listener.
            let placement = sent.request.placement
            let cursor = FileManager.default.temporaryDirectory.appending(path: "kyukyu-cursor-\(UUID()).json")
            defer { try? FileManager.default.removeItem(at: cursor) }
            let listener = ReceiverEventsService(
                hospitals: PlacementAPITests.hospitals,
                client: bed.hub,
                desk: bed.harness.desk,
                cursor: EventCursorFile(path: cursor.path),
                clock: bed.clock,
                backoff: DeliveryBackoff(),
                logger: silent
            )
            let listening = Task { try await listener.run() }
            defer { listening.cancel() }
            var devices = bed.hub.deviceConnected.makeAsyncIterator()
            var open: Set<HospitalCode> = []
            while open.count < 3, let code = await devices.next() { open.insert(code) }

            bed.hub.send(
                .placement(
                    PlacementMessage(
                        id: "7",
                        placement: placement,
                        documentSet: set,
                        hospital: Self.code(1),
                        answer: .declined,
                        divert: Divert(.icuFull, note: "ICU満床")
                    )
                ),
                to: Self.code(1)
            )
            _ = await waitFor(runner) { $0.state.placement?.entries[1].answer == .declined }
            bed.hub.send(
                .placement(
                    PlacementMessage(
                        id: "8",
                        placement: placement,
                        documentSet: set,
                        hospital: Self.code(0),
                        answer: .accepted
                    )
                ),
                to: Self.code(0)
            )
            let placed = await waitFor(runner) { $0.state.handoff?.machine.hospital != nil }
            #expect(placed?.state.handoff?.machine.hospital == Self.code(0))

            let incident = try await Self.get(scene, scene.base)
            #expect(Self.answers(incident) == [Self.codes[0]: "accepted", Self.codes[1]: "declined"])
            #expect(incident["placement"]?["acceptedBy"]?.string == Self.codes[0])
            #expect(incident["placement"]?["open"] == .bool(false))
            guard case .array(let rows)? = incident["placement"]?["hospitals"] else { return }
            #expect(rows[1]["reason"]?.string == "icu-full" && rows[1]["note"]?.string == "ICU満床")
            // Exactly as the crew's own pick: the document queued for that hospital, recorded as the destination.
            #expect(incident["handoff"]?["hospital"]?.string == Self.codes[0])
            #expect(incident["handoff"]?["status"]?.string == "queued")
            #expect(incident["observations"]?["hospital"]?.string == Self.codes[0])
            // Kept in the vault first, then queued.
            #expect(await eventually { !bed.harness.outbox.items.isEmpty })
            #expect(bed.harness.outbox.items.map(\.kind) == [.document(version: 1)])
            #expect(bed.harness.outbox.items.map(\.hospital) == [Self.code(0)])
            #expect(incident["handoff"]?["documentSet"]?.string == "urn:uuid:\(set.uuidString.lowercased())")

            // A late "accepted" from the other changes nothing; its placed-elsewhere is shown.
            await bed.harness.desk.placementAnswered(
                documentSet: set,
                placement: placement,
                hospital: Self.code(1),
                answer: .accepted,
                divert: nil,
                at: nil
            )
            #expect(bed.harness.outbox.items.count == 1)
            let steps = await bed.harness.store.auditTrail.map { "\($0)" }
            #expect(steps.contains { $0.contains("placement-request") })
            #expect(steps.contains { $0.contains("placement-accepted") })
        }
    }

    @Test("the request is refused for a bad list; a request the hub cannot take yet is retried with the same bytes")
    func refusalsAndRetries() async throws {
        let bed = try Bed()
        bed.hub.scriptSubmits([
            .retry("the regional hub cannot be reached"), .retry("the regional hub cannot be reached"),
        ])
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            let runner = try await Self.runner(bed, scene)
            for (body, why) in [
                (#"{"hospitals":[]}"#, "empty"),
                (#"{"hospitals":"1310000001"}"#, "not an array"),
                (#"{"hospitals":["1310000001","1310000001"]}"#, "twice"),
                (#"{"hospitals":["9999999999"]}"#, "not in the list"),
                (#"{"hospitals":["123"]}"#, "malformed"),
                (
                    #"{"hospitals":[\#(Array(repeating: "\"1310000001\"", count: 11).joined(separator: ","))]}"#,
                    "eleven"
                ),
            ] {
                ObservationsAPITests.expectRefused(try await Self.post(scene, "/placements", body), "hospitals")
                _ = why
            }
            #expect(try await Self.post(scene, "/placements", #"{"hospitals":["1310000001"],"x":1}"#).0 == 422)
            let noCSRF = try await scene.client.execute(
                uri: scene.base + "/placements",
                method: .post,
                headers: [.cookie: scene.session.cookie, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"hospitals":["1310000001"]}"#)
            ) { $0.status.code }
            #expect(noCSRF == 403)
            #expect(bed.hub.submitted.isEmpty)

            #expect(try await Self.post(scene, "/placements", #"{"hospitals":["1310000003"]}"#).0 == 202)
            let problem = await waitFor(runner) { $0.state.placement?.problem != nil }
            #expect(problem?.state.placement?.problem == "the regional hub cannot be reached")
            #expect(await advance(bed.clock, until: { await runner.placement()?.stored == true }))
            let sent = bed.hub.submitted
            #expect(sent.count == 3)
            #expect(Set(sent.map(\.request.placement)).count == 1, "one request id for every attempt")
            #expect(Set(sent.map(\.body)).count == 1, "the same bytes every time")
            #expect(await runner.placement()?.problem == nil)
            #expect(await bed.dispatcher.depth() == 0)
        }
    }

    @Test("cancel: the pending hospitals are cancelled and a new request may follow; a cancel after an accept stands")
    func cancel() async throws {
        let bed = try Bed()
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            let runner = try await Self.runner(bed, scene)
            #expect(try await Self.post(scene, "/placements/cancel", "{}").0 == 409, "nothing to cancel yet")
            #expect(try await Self.post(scene, "/placements", #"{"hospitals":["1310000001","1310000002"]}"#).0 == 202)
            _ = await waitFor(runner) { $0.state.placement?.stored == true }
            let (status, view) = try await Self.post(scene, "/placements/cancel", "{}")
            #expect(status == 202)
            #expect(view?["placement"]?["cancelRequested"] == .bool(true))
            #expect(view?["placement"]?["open"] == .bool(false))
            let cancelled = await waitFor(runner) {
                $0.state.placement?.entries.allSatisfy { $0.answer == .cancelled } == true
            }
            #expect(cancelled != nil)
            #expect(bed.hub.cancelled.count == 1)
            #expect(try await Self.post(scene, "/placements/cancel", "{}").0 == 409, "already withdrawn")

            // A new request; the hub refuses its cancel (a hospital accepted first): the acceptance stands.
            #expect(try await Self.post(scene, "/placements", #"{"hospitals":["1310000002","1310000003"]}"#).0 == 202)
            _ = await waitFor(runner) { $0.state.placement?.stored == true && $0.state.placement?.hospitals.count == 2 }
            let second = try #require(await runner.placement())
            #expect(second.id != bed.hub.cancelled[0])
            bed.hub.scriptCancels([.conflict("a hospital already accepted")])
            bed.hub.setView(
                PlacementHubView(
                    placement: second.id,
                    answers: [Self.code(1): .placedElsewhere, Self.code(2): .accepted]
                )
            )
            #expect(try await Self.post(scene, "/placements/cancel", "{}").0 == 202)
            let placed = await waitFor(runner) { $0.state.handoff?.machine.hospital != nil }
            #expect(placed?.state.handoff?.machine.hospital == Self.code(2))
            let incident = try await Self.get(scene, scene.base)
            #expect(Self.answers(incident) == [Self.codes[1]: "placed-elsewhere", Self.codes[2]: "accepted"])
            #expect(incident["placement"]?["cancelRequested"] == .bool(false))
            #expect(incident["placement"]?["problem"]?.string != nil)
            #expect(await eventually { !bed.harness.outbox.items.isEmpty })
            #expect(bed.harness.outbox.items.map(\.hospital) == [Self.code(2)])
        }
    }

    @Test("closing the incident withdraws its open request at the hub, once")
    func closeWithdraws() async throws {
        let bed = try Bed()
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            let runner = try await Self.runner(bed, scene)
            #expect(try await Self.post(scene, "/placements", #"{"hospitals":["1310000001","1310000002"]}"#).0 == 202)
            let placement = try #require(await waitFor(runner) { $0.state.placement?.stored == true }?.state.placement)
            #expect(try await Self.post(scene, "/close", "{}").0 == 200)
            #expect(await eventually { bed.hub.cancelled == [placement.id] })
            #expect(await eventually { await bed.dispatcher.depth() == 0 }, "nothing left to send for it")
            #expect(bed.hub.cancelled == [placement.id])
            let steps = await bed.harness.store.auditTrail.compactMap { $0.attributes["step"] }
            #expect(steps.contains("placement-withdrawn"))
        }
    }

    @Test("a restarted gateway sends again what the hub has not stored, under the same id")
    func resumeAfterRestart() async throws {
        let bed = try Bed()
        bed.hub.scriptSubmits([.retry("the regional hub cannot be reached")])
        try await bed.run { client in
            let scene = try await ObservationsAPITests.scene(client)
            let runner = try await Self.runner(bed, scene)
            #expect(try await Self.post(scene, "/placements", #"{"hospitals":["1310000001"]}"#).0 == 202)
            _ = await waitFor(runner) { $0.state.placement?.problem != nil }
            let id = try #require(await runner.placement()?.id)
            // Another dispatcher, as after a restart, queues it again from the incidents.
            let again = PlacementDispatcher(hospitals: PlacementAPITests.hospitals, client: bed.hub, logger: silent)
            await again.resume(await bed.harness.desk.openIncidents())
            #expect(await again.depth() == 1)
            await again.attach(bed.harness.desk)
            let task = Task { await again.run() }
            defer { task.cancel() }
            _ = await waitFor(runner) { $0.state.placement?.stored == true }
            #expect(bed.hub.submitted.allSatisfy { $0.request.placement == id })
        }
    }
}

/// Collects a streamed response body, chunk by chunk, as text.
struct ChunkWriter: ResponseBodyWriter {
    let continuation: AsyncStream<String>.Continuation

    static func make() -> (AsyncStream<String>, ChunkWriter) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        return (stream, ChunkWriter(continuation: continuation))
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        continuation.yield(String(buffer: buffer))
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        continuation.finish()
    }
}
