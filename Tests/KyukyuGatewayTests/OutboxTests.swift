import Clocks
import Foundation
import KyukyuDomain
import KyukyuEligibility
import KyukyuIncident
import KyukyuTestbed
import KyukyuVault
import KyukyuWorkflow
import NIOHTTP1
import Synchronization
import Testing

@testable import KyukyuGateway

/// A receiver that answers from a script and records what it was sent.
final class ScriptedReceiver: ReceiverDelivering {
    struct Sent: Hashable {
        var hospital: HospitalCode
        var what: String
    }
    private let state = Mutex<(script: [DeliveryResult], sent: [Sent])>(([], []))
    private let delivered = AsyncStream<Void>.makeStream()

    /// The next answers, in order; `.delivered` once the script runs out.
    func script(_ results: [DeliveryResult]) { state.withLock { $0.script = results } }
    var sent: [Sent] { state.withLock { $0.sent } }
    /// Yields after every attempt.
    var attempts: AsyncStream<Void> { delivered.stream }

    private func answer(_ sent: Sent) -> DeliveryResult {
        let result = state.withLock { state -> DeliveryResult in
            state.sent.append(sent)
            return state.script.isEmpty ? .delivered : state.script.removeFirst()
        }
        delivered.continuation.yield()
        return result
    }

    func post(_ document: Data, versionID: UUID, to hospital: ReceivingHospital) async -> DeliveryResult {
        let version = (try? JSONDecoder().decode([String: Int].self, from: document))?["version"] ?? -1
        return answer(Sent(hospital: hospital.code, what: "v\(version)"))
    }

    func withdraw(documentSet: UUID, reason: String, at hospital: ReceivingHospital) async -> DeliveryResult {
        answer(Sent(hospital: hospital.code, what: "withdraw \(documentSet) \(reason)"))
    }

    func events(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverEvent, any Error
    > {
        AsyncThrowingStream { $0.finish() }
    }
}

/// Builds `{"version": N}`: enough for the outbox to show which version went.
struct VersionBuilder: HandoffDocumentBuilding {
    func build(_ request: HandoffBuildRequest) throws -> Data {
        try JSONEncoder().encode(["version": request.version])
    }
}

@Suite("Gateway outbox: in order per hospital, through dead zones", .timeLimit(.minutes(1)))
struct OutboxTests {
    static let hospital = ReceivingHospital(
        code: HospitalCode(rawValue: "9999999991")!,
        name: "テスト第一病院 (架空)",
        url: "https://127.0.0.1:1"
    )

    struct Bed {
        let receiver = ScriptedReceiver()
        let clock = TestClock()
        let outbox: GatewayOutbox
        let desk: IncidentDesk
        let crew = CrewID("TEST-A1")!

        init(notices: NoticeFile? = nil) {
            outbox = GatewayOutbox(
                hospitals: [OutboxTests.hospital],
                client: receiver,
                notices: notices,
                clock: clock,
                backoff: DeliveryBackoff(initial: .seconds(1), maximum: .seconds(8)),
                random: { 1 },
                logger: silent
            )
            let onshi = InMemoryOnshi()
            let client = EligibilityClient(
                transport: onshi,
                configuration: EligibilityClientConfiguration(hedgeAfter: nil),
                logger: silent
            )
            desk = IncidentDesk(
                effects: WorkflowEffects(
                    store: InMemoryIncidentStore(),
                    fetching: client,
                    handoff: HandoffEffects(
                        builder: VersionBuilder(),
                        outbox: outbox,
                        hospitals: [OutboxTests.hospital]
                    )
                ),
                configuration: WorkflowConfiguration(terminalID: "ambulance-test"),
                logger: silent
            )
        }

        /// An incident sent to the hospital (no patient identified: the document still goes, with the crew's
        /// observations).
        func sentIncident() async throws -> IncidentRunner {
            let runner = try await desk.open(source: .crew)
            _ = try await runner.sendHandoff(to: OutboxTests.hospital.code, by: crew)
            return runner
        }
    }

    /// Waits for the first update of `updates` that satisfies `condition` (bounded by the suite's time limit);
    /// subscribe before the change can happen.
    @discardableResult
    static func until(
        _ updates: AsyncStream<IncidentSnapshot>,
        _ condition: (IncidentState) -> Bool
    ) async -> IncidentState? {
        for await snapshot in updates where condition(snapshot.state) { return snapshot.state }
        return nil
    }

    /// Waits for `count` more attempts at the receiver (bounded by the suite's time limit).
    static func attempts(_ count: Int, _ stream: AsyncStream<Void>) async {
        var iterator = stream.makeAsyncIterator()
        for _ in 0..<count { _ = await iterator.next() }
    }

    @Test func aDeadZoneHoldsTheQueueInOrderThenDeliversEachOnce() async throws {
        let bed = Bed()
        await bed.outbox.attach(bed.desk)
        bed.receiver.script([.retry("the hospital's receiver cannot be reached"), .retry("still down")])
        let first = try await bed.sentIncident()
        let second = try await bed.sentIncident()
        let firstUpdates = await first.updates()
        let secondUpdates = await second.updates()
        let delivery = Task { await bed.outbox.run() }
        defer { delivery.cancel() }

        let attempts = bed.receiver.attempts
        await Self.attempts(1, attempts)
        // The first incident's document failed; the crew sees why.
        await Self.until(firstUpdates) { $0.handoff?.problem == "the hospital's receiver cannot be reached" }
        await bed.clock.advance(by: .seconds(1))
        await Self.attempts(1, attempts)
        // Backoff doubles (with jitter at its top here): nothing is tried before 2 s.
        await bed.clock.advance(by: .milliseconds(1999))
        #expect(bed.receiver.sent.count == 2)
        await bed.clock.advance(by: .milliseconds(1))
        await Self.attempts(2, attempts)
        // In order: the first incident's version 1, three times, then the second's; each delivered once.
        #expect(bed.receiver.sent.map(\.what) == ["v1", "v1", "v1", "v1"])
        let firstDone = await Self.until(firstUpdates) { $0.handoff?.machine.status == .sent }
        #expect(firstDone?.handoff?.problem == nil)
        await Self.until(secondUpdates) { $0.handoff?.machine.status == .sent }
        #expect(await bed.outbox.depth()[Self.hospital.code] == 0)
    }

    @Test func aVersionSupersededWhileWaitingIsNotSent() async throws {
        let bed = Bed()
        await bed.outbox.attach(bed.desk)
        let runner = try await bed.sentIncident()
        _ = try await runner.updateObservations(by: bed.crew) { $0.priority = .red }
        _ = try await runner.updateObservations(by: bed.crew) {
            $0.etaMinutes = 9
            $0.etaRecordedAt = Date()
        }
        let updates = await runner.updates()
        let delivery = Task { await bed.outbox.run() }
        defer { delivery.cancel() }
        await Self.until(updates) { $0.handoff?.machine.deliveredVersion == 3 }
        #expect(bed.receiver.sent.map(\.what) == ["v3"])
    }

    @Test func aRefusalIsDroppedAndShownNotRetried() async throws {
        let bed = Bed()
        await bed.outbox.attach(bed.desk)
        bed.receiver.script([.refused("the hospital refused it: this document is for another hospital")])
        let runner = try await bed.sentIncident()
        let other = try await bed.sentIncident()
        let updates = await runner.updates()
        let otherUpdates = await other.updates()
        let delivery = Task { await bed.outbox.run() }
        defer { delivery.cancel() }
        let handoff = await Self.until(updates) { $0.handoff?.problem != nil }?.handoff
        #expect(handoff?.problem == "the hospital refused it: this document is for another hospital")
        #expect(handoff?.outbox.isEmpty == true)
        // The queue went on to the next incident.
        await Self.until(otherUpdates) { $0.handoff?.machine.status == .sent }
        #expect(bed.receiver.sent.count == 2)
    }

    @Test func aNoticeOutlivesItsIncidentAndARestartDeliversIt() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-notices-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/hospital-notices.json"

        // The hospital cannot be reached; the crew closes the incident while its document waits.
        let bed = Bed(notices: NoticeFile(path: path, logger: silent))
        await bed.outbox.attach(bed.desk)
        bed.receiver.script(Array(repeating: .retry("the hospital's receiver cannot be reached"), count: 100))
        let runner = try await bed.sentIncident()
        let set = try #require(await runner.documentSet())
        let delivery = Task { await bed.outbox.run() }
        await Self.attempts(1, bed.receiver.attempts)
        _ = try await runner.close(by: bed.crew)
        #expect(await bed.outbox.depth()[Self.hospital.code] == 2, "the document's item, then the notice")
        delivery.cancel()
        _ = await delivery.value

        // On disk, with no patient data: the set's random id, the hospital, the reason.
        let kept = NoticeFile(path: path, logger: silent).all()
        #expect(kept.map(\.documentSet) == [set])
        #expect(kept.map(\.reason) == [.closed])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)

        // A restart (a new outbox over the same file): the receiver is back, the notice goes, the file empties.
        let restarted = Bed(notices: NoticeFile(path: path, logger: silent))
        await restarted.outbox.attach(restarted.desk)
        let again = Task { await restarted.outbox.run() }
        defer { again.cancel() }
        await Self.attempts(1, restarted.receiver.attempts)
        // The outbox pops the notice and rewrites the file in one step on its actor (bounded by the time limit).
        while await restarted.outbox.depth()[Self.hospital.code] != 0 { await Task.yield() }
        #expect(restarted.receiver.sent.map(\.what) == ["withdraw \(set) closed"])
        #expect(NoticeFile(path: path, logger: silent).all().isEmpty)
    }

    @Test func backoffDoublesToItsMaximumWithJitterInTheUpperHalf() {
        let backoff = DeliveryBackoff(initial: .seconds(1), maximum: .seconds(8))
        #expect(backoff.delay(afterFailures: 1, unit: 1) == .seconds(1))
        #expect(backoff.delay(afterFailures: 1, unit: 0) == .milliseconds(500))
        #expect(backoff.delay(afterFailures: 3, unit: 1) == .seconds(4))
        #expect(backoff.delay(afterFailures: 10, unit: 1) == .seconds(8))
        #expect(backoff.delay(afterFailures: 10, unit: 0) == .seconds(4))
    }
}

@Suite("Receiver client: answers and events")
struct ReceiverClientTests {
    static let hospital = OutboxTests.hospital

    @Test func statusesMapToDeliveredRetryOrRefused() {
        #expect(HTTPReceiverClient.result(status: .created, body: Data()) == .delivered)
        #expect(HTTPReceiverClient.result(status: .ok, body: Data()) == .delivered)
        for status: HTTPResponseStatus in [
            .serviceUnavailable, .internalServerError, .tooManyRequests, .requestTimeout,
        ] {
            guard case .retry = HTTPReceiverClient.result(status: status, body: Data()) else {
                Issue.record("\(status) should be retried")
                continue
            }
        }
        let outcome = Data(
            #"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"Bundle.type must be document"}]}"#
                .utf8
        )
        #expect(
            HTTPReceiverClient.result(status: .badRequest, body: outcome)
                == .refused("the hospital refused the document (HTTP 400: Bundle.type must be document)")
        )
        guard case .refused = HTTPReceiverClient.result(status: .conflict, body: Data()) else {
            Issue.record("409 is final")
            return
        }
    }

    @Test func eventStreamsAreParsedAcrossPiecesWithIDsCarriedAndCommentsSkipped() {
        var parser = ServerSentEventParser()
        var messages = parser.feed(Data(": keep-alive\r\n\r\nid: 7\r\nevent: handoff\r\nda".utf8))
        #expect(messages.isEmpty)
        messages = parser.feed(Data("ta: {\"a\":1}\r\ndata: {\"b\":2}\r".utf8))
        #expect(messages.isEmpty, "a CR at the end may be half of a CRLF")
        messages = parser.feed(Data("\n\r\nevent: handoff\ndata: x\n\n".utf8))
        #expect(messages.count == 2)
        #expect(messages[0] == .init(id: "7", event: "handoff", data: "{\"a\":1}\n{\"b\":2}"))
        #expect(messages[1].id == "7", "the last id carries over")
        #expect(messages[1].data == "x")
    }

    @Test func handoffEventsBecomeStatusesForThisHospitalOnly() {
        let set = UUID()
        func message(_ json: String) -> ServerSentEventParser.Message {
            .init(id: "3", event: "handoff", data: json)
        }
        let diverted = HTTPReceiverClient.event(
            message(
                #"{"documentSet":"urn:uuid:\#(set.uuidString.lowercased())","version":2,"hospital":"9999999991","status":"diverted","reason":"no-beds","note":"満床","at":"2026-11-27T10:00:00Z"}"#
            ),
            from: Self.hospital
        )
        #expect(diverted?.documentSet == set)
        #expect(diverted?.status == .diverted)
        #expect(diverted?.divert == Divert(.noBeds, note: "満床"))
        #expect(diverted?.id == "3")
        let otherHospital = HTTPReceiverClient.event(
            message(#"{"documentSet":"urn:uuid:\#(set.uuidString)","hospital":"1111111111","status":"arrived"}"#),
            from: Self.hospital
        )
        #expect(otherHospital == nil)
        #expect(
            HTTPReceiverClient.event(message(#"{"documentSet":"x","status":"arrived"}"#), from: Self.hospital) == nil
        )
        #expect(
            HTTPReceiverClient.event(
                message(#"{"documentSet":"urn:uuid:\#(set.uuidString)","status":"withdrawn"}"#),
                from: Self.hospital
            ) == nil
        )
    }
}
