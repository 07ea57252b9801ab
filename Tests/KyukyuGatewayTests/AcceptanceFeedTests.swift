import Clocks
import Foundation
import KyukyuDomain
import KyukyuWorkflow
import NIOHTTP1
import Testing

@testable import KyukyuGateway

/// The hospitals' live acceptance as the gateway keeps it: the board (newest revision wins, other hospitals
/// ignored, listeners hear each change) and the feed service (one stream per hub URL, the snapshot on connect, and
/// reconnects after the backoff, on a test clock).
@Suite("Acceptance feed: the hub's live publications", .timeLimit(.minutes(1)))
struct AcceptanceFeedTests {
    static let hub = "https://hub.test:24001"
    static let other = "https://other-hub.test:24002"
    static let hospitals = [
        ReceivingHospital(code: HospitalCode(rawValue: "1310000001")!, name: "テスト第一病院 (架空)", url: hub),
        ReceivingHospital(code: HospitalCode(rawValue: "1310000002")!, name: "テスト第二病院 (架空)", url: hub + "/"),
        ReceivingHospital(code: HospitalCode(rawValue: "1310000003")!, name: "テスト第三病院 (架空)", url: other),
    ]

    @Test("the board keeps the newest revision per hospital, ignores others, and tells listeners each change")
    func boardKeepsTheNewest() async throws {
        let board = AcceptanceBoard(hospitals: Self.hospitals.map(\.code))
        let updates = await board.updates()
        let second = try publication("1310000001", revision: 2, [.stroke: .accepting])
        #expect(await board.offer(second))
        #expect(!(await board.offer(try publication("1310000001", revision: 1, [.stroke: .notAccepting(.noBeds)]))))
        #expect(!(await board.offer(second)), "the same revision again (a snapshot on reconnect) changes nothing")
        #expect(!(await board.offer(try publication("9999999999", revision: 9, [.stroke: .accepting]))))
        let third = try publication("1310000001", revision: 3, [.stroke: .notAccepting(.noSpecialist)])
        #expect(await board.offer(third))
        #expect(await board.acceptance(of: HospitalCode(rawValue: "1310000001")!) == third)
        #expect(await board.all().count == 1)
        var heard: [Int64] = []
        for await publication in updates {
            heard.append(publication.revision)
            if heard.count == 2 { break }
        }
        #expect(heard == [2, 3])
    }

    @Test("one stream per hub URL; the snapshot, then changes; a dropped stream reconnects after the backoff")
    func oneStreamPerURLAndReconnect() async throws {
        let hub = FakeHub()
        let clock = TestClock()
        let board = AcceptanceBoard(hospitals: Self.hospitals.map(\.code))
        let service = AcceptanceFeedService(
            hospitals: Self.hospitals,
            client: hub,
            board: board,
            clock: clock,
            backoff: DeliveryBackoff(initial: .seconds(2), maximum: .seconds(2)),
            random: { 0 },
            logger: silent
        )
        #expect(AcceptanceFeedService.baseURLs(Self.hospitals) == [Self.hub, Self.other])
        let updates = await board.updates()
        var heard = updates.makeAsyncIterator()
        var connected = hub.connected.makeAsyncIterator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let first = [await connected.next(), await connected.next()]
            #expect(Set(first.compactMap { $0 }) == [Self.hub, Self.other])
            #expect(hub.connections(Self.hub) == 1, "two hospitals at one URL share one stream")

            // The snapshot on connect, then a change.
            hub.publish(try publication("1310000001", revision: 4, [.dialysis: .accepting]), on: Self.hub)
            hub.publish(try publication("1310000003", revision: 1, [.trauma: .accepting]), on: Self.other)
            hub.publish(try publication("1310000002", revision: 7, [.dialysis: .notAccepting(.icuFull)]), on: Self.hub)
            var codes: Set<String> = []
            for _ in 0..<3 { codes.insert(await heard.next()?.hospital.rawValue ?? "") }
            #expect(codes == ["1310000001", "1310000002", "1310000003"])
            hub.publish(
                try publication("1310000001", revision: 5, [.dialysis: .notAccepting(.noBeds, note: "満床")]),
                on: Self.hub
            )
            #expect(await heard.next()?.revision == 5)

            // The connection drops: nothing happens before the backoff, then one new stream to that URL only.
            hub.drop(Self.hub)
            for _ in 0..<1_000 { await Task.yield() }
            await clock.advance(by: .milliseconds(900))
            for _ in 0..<1_000 { await Task.yield() }
            #expect(hub.connections(Self.hub) == 1, "reconnected before the backoff's wait (1 s)")
            #expect(await advance(clock, until: { hub.connections(Self.hub) == 2 }))
            #expect(hub.connections(Self.other) == 1)
            // The snapshot comes again: the revisions held change nothing, a newer one wins.
            hub.publish(try publication("1310000001", revision: 5, [.dialysis: .accepting]), on: Self.hub)
            hub.publish(try publication("1310000002", revision: 8, [.dialysis: .accepting]), on: Self.hub)
            let next = await heard.next()
            #expect(next?.hospital.rawValue == "1310000002" && next?.revision == 8)
            let first1 = await board.acceptance(of: HospitalCode(rawValue: "1310000001")!)
            #expect(first1?.revision == 5 && first1?[.dialysis]?.isAccepting == false)
            group.cancelAll()
        }
    }
}

/// The hub's wire words as the gateway's client reads them.
@Suite("Region hub client: placement messages and answers")
struct RegionHubClientTests {
    static let hospital = ReceivingHospital(
        code: HospitalCode(rawValue: "1310000001")!,
        name: "テスト第一病院 (架空)",
        url: "https://hub.test:24001"
    )

    @Test("a placement message naming this hospital is read; others, pending and malformed ones are not")
    func placementMessages() throws {
        let placement = UUID()
        let set = UUID()
        func message(_ data: String, event: String = "placement") -> ServerSentEventParser.Message {
            ServerSentEventParser.Message(id: "41", event: event, data: data)
        }
        let declined = HTTPReceiverClient.placementMessage(
            message(
                #"{"placement":"\#(placement.uuidString.lowercased())","documentSet":"urn:uuid:\#(set.uuidString.lowercased())","hospital":"1310000001","answer":"declined","reason":"icu-full","note":"ICU満床","at":"2026-11-27T10:00:00Z"}"#
            ),
            from: Self.hospital
        )
        #expect(declined?.placement == placement && declined?.documentSet == set && declined?.id == "41")
        #expect(declined?.answer == .declined && declined?.divert?.reason == .icuFull)
        #expect(declined?.divert?.note == "ICU満床" && declined?.at != nil)
        let accepted = HTTPReceiverClient.placementMessage(
            message(
                #"{"placement":"\#(placement)","documentSet":"urn:uuid:\#(set)","hospital":"1310000001","answer":"accepted","at":"2026-11-27T10:00:00Z"}"#
            ),
            from: Self.hospital
        )
        #expect(accepted?.answer == .accepted && accepted?.divert == nil)
        let elsewhere =
            #"{"placement":"\#(placement)","documentSet":"urn:uuid:\#(set)","hospital":"1310000002","answer":"accepted"}"#
        #expect(HTTPReceiverClient.placementMessage(message(elsewhere), from: Self.hospital) == nil)
        let pending =
            #"{"placement":"\#(placement)","documentSet":"urn:uuid:\#(set)","hospital":"1310000001","answer":"pending"}"#
        #expect(HTTPReceiverClient.placementMessage(message(pending), from: Self.hospital) == nil)
        #expect(HTTPReceiverClient.placementMessage(message("{}"), from: Self.hospital) == nil)
        let handoff =
            #"{"placement":"\#(placement)","documentSet":"urn:uuid:\#(set)","hospital":"1310000001","answer":"accepted"}"#
        #expect(HTTPReceiverClient.placementMessage(message(handoff, event: "handoff"), from: Self.hospital) == nil)
        #expect(HTTPReceiverClient.event(message(handoff), from: Self.hospital) == nil, "handoff parsing unchanged")
    }

    @Test("the hub's statuses: stored, retry, conflict, refused with the problem's detail")
    func answers() {
        let placement = UUID()
        let view = Data(
            #"{"placement":"\#(placement)","documentSet":"urn:uuid:x","answers":{"1310000001":"pending"}}"#.utf8
        )
        #expect(
            PlacementCallResult.result(status: .created, body: view)
                == .done(PlacementHubView(placement: placement, answers: [Self.hospital.code: .pending]))
        )
        if case .retry = PlacementCallResult.result(status: .serviceUnavailable, body: Data()) {
        } else {
            Issue.record("503 is not retried")
        }
        if case .conflict = PlacementCallResult.result(status: .conflict, body: Data()) {
        } else {
            Issue.record("409 is not a conflict")
        }
        let problem = Data(#"{"type":"x","title":"Invalid","detail":"hospitals: 1 to 10 codes"}"#.utf8)
        #expect(
            PlacementCallResult.result(status: .unprocessableEntity, body: problem)
                == .refused("the regional hub refused the request (HTTP 422: hospitals: 1 to 10 codes)")
        )
    }

    @Test("a resend of a request is byte for byte the same")
    func stableBody() throws {
        let request = PlacementRequest(
            placement: UUID(),
            documentSet: UUID(),
            hospitals: [Self.hospital.code],
            summary: try PlacementSummary(
                ageDecade: 8,
                sex: "female",
                chiefComplaint: .dyspnoea,
                priority: .red,
                needs: [.dialysis],
                etaMinutes: 12
            )
        )
        #expect(try request.body() == request.body())
        let object = try JSONSerialization.jsonObject(with: request.body()) as? [String: Any]
        #expect((object?["documentSet"] as? String)?.hasPrefix("urn:uuid:") == true)
        #expect(object?["hospitals"] as? [String] == ["1310000001"])
        #expect((object?["summary"] as? [String: Any])?["ageDecade"] as? Int == 8)
    }
}
