import Foundation
import KyukyuDomain
import KyukyuIncident
import KyukyuOnshi
import KyukyuTestbed
import KyukyuVault
import Testing

@testable import KyukyuWorkflow

/// The outbox as the runner sees it: what was queued, in order.
actor RecordingOutbox: HandoffOutbox {
    private(set) var items: [OutboxItem] = []
    private(set) var notices: [HandoffNotice] = []
    func enqueue(_ item: OutboxItem) async { items.append(item) }
    func notify(_ notices: [HandoffNotice]) async { self.notices += notices }
}

/// A builder that writes down what it was given (the real one is KyukyuFHIR's).
struct RecordingBuilder: HandoffDocumentBuilding {
    struct Built: Codable {
        var documentSet: UUID
        var version: Int
        var versionID: UUID
        var previousVersionID: UUID?
        var hospital: String
        var categories: [String]
        var heartRates: [Int]
        var consent: String?
    }

    func build(_ request: HandoffBuildRequest) throws -> Data {
        try JSONEncoder().encode(
            Built(
                documentSet: request.documentSet,
                version: request.version,
                versionID: request.versionID,
                previousVersionID: request.previousVersionID,
                hospital: request.hospital.code.rawValue,
                categories: request.records.keys.map(\.rawValue).sorted(),
                heartRates: request.observations.vitals.compactMap(\.heartRate),
                consent: request.consent?.rawValue
            )
        )
    }
}

@Suite("Incident workflow: the hospital handoff", .timeLimit(.minutes(1)))
struct HandoffTests {
    static let first = ReceivingHospital(
        code: HospitalCode(rawValue: "9999999991")!,
        name: "テスト第一病院 (架空)",
        url: "https://127.0.0.1:1"
    )
    static let second = ReceivingHospital(
        code: HospitalCode(rawValue: "9999999992")!,
        name: "テスト第二病院 (架空)",
        url: "https://127.0.0.1:2"
    )

    struct Bed {
        let harness = Harness()
        let outbox = RecordingOutbox()
        let desk: IncidentDesk

        init() {
            var effects = harness.effects
            effects.handoff = HandoffEffects(
                builder: RecordingBuilder(),
                outbox: outbox,
                hospitals: [HandoffTests.first, HandoffTests.second]
            )
            desk = IncidentDesk(effects: effects, configuration: harness.configuration, logger: silent)
        }

        /// An incident with its summary shown.
        func incidentWithSummary() async throws -> IncidentRunner {
            let runner = try await desk.open(source: .crew)
            _ = try await runner.recordConsent(.verbal, by: harness.crew)
            await desk.cardTouched(FakeCard(.individualNumberCard))
            _ = try #require(
                await waitFor(runner) {
                    $0.state.machine.phase == .summary && $0.state.categories.values.allSatisfy(\.isSettled)
                }
            )
            return runner
        }

        func built(_ payload: OutboxPayload?) throws -> RecordingBuilder.Built {
            guard case .document(let data, _, _) = payload else {
                Issue.record("not a document: \(String(describing: payload))")
                throw CancellationError()
            }
            return try JSONDecoder().decode(RecordingBuilder.Built.self, from: data)
        }
    }

    @Test func sendUpdateDeliverAcknowledgeAndArrivalShreds() async throws {
        let bed = Bed()
        let runner = try await bed.incidentWithSummary()
        let sent = try await runner.sendHandoff(to: Self.first.code, by: bed.harness.crew)
        #expect(sent.state.handoff?.machine.status == .queued)
        #expect(sent.state.observations?.hospital == Self.first.code)
        let v1 = try #require(await bed.outbox.items.first)
        #expect(v1.kind == .document(version: 1))
        let document1 = try bed.built(await runner.outboxPayload(v1))
        #expect(document1.version == 1 && document1.previousVersionID == nil)
        #expect(document1.categories.contains("medications"), "built from the records the vault holds")
        #expect(document1.consent == "verbal")

        // Vitals taken on the way: version 2 is built and supersedes version 1, still undelivered.
        _ = try await runner.updateObservations(by: bed.harness.crew) {
            var set = VitalSigns(takenAt: Date(timeIntervalSince1970: 1_800_000_000))
            set.heartRate = 128
            $0.vitals.append(set)
        }
        let v2 = try #require(await bed.outbox.items.last)
        #expect(v2.kind == .document(version: 2))
        #expect(await runner.outboxPayload(v1) == nil, "superseded: the outbox drops it")
        let document2 = try bed.built(await runner.outboxPayload(v2))
        #expect(document2.previousVersionID == document1.versionID)
        #expect(document2.heartRates == [128])
        #expect(document2.documentSet == document1.documentSet)

        await runner.outboxDelivered(v2)
        #expect(await runner.snapshot().state.handoff?.machine.status == .sent)
        #expect(await runner.outboxPayload(v2) == nil, "delivered: nothing left to send")
        let set = try #require(await runner.documentSet())
        await bed.desk.hospitalReported(documentSet: set, status: .acknowledged, hospital: Self.first.code, divert: nil)
        #expect(await runner.snapshot().state.handoff?.machine.status == .acknowledged)
        // Another hospital's word about this set changes nothing.
        await bed.desk.hospitalReported(documentSet: set, status: .arrived, hospital: Self.second.code, divert: nil)
        #expect(await runner.snapshot().state.machine.phase == .summary)

        await bed.desk.hospitalReported(documentSet: set, status: .arrived, hospital: Self.first.code, divert: nil)
        let closed = await runner.snapshot().state
        #expect(closed.machine.phase == .closed)
        #expect(closed.machine.closure == .handedOver)
        #expect(await bed.harness.store.shredded.map(\.0) == [runner.id])
        let steps = await bed.harness.store.auditTrail.compactMap { $0.attributes["step"] }
        #expect(steps.contains("handoff-send") && steps.contains("handoff-arrived") && steps.contains("handed-over"))
    }

    @Test func aDivertThenAnotherHospitalAndAChangeOfMindTellsTheFirst() async throws {
        let bed = Bed()
        let runner = try await bed.incidentWithSummary()
        _ = try await runner.sendHandoff(to: Self.first.code, by: bed.harness.crew)
        let set = try #require(await runner.documentSet())
        await bed.desk.hospitalReported(
            documentSet: set,
            status: .diverted,
            hospital: Self.first.code,
            divert: Divert(.noBeds)
        )
        let diverted = await runner.snapshot().state.handoff
        #expect(diverted?.machine.status == .diverted)
        #expect(diverted?.machine.divert?.reason == .noBeds)
        _ = try await runner.sendHandoff(to: Self.second.code, by: bed.harness.crew)
        // The diverting hospital said no: it is not told again.
        #expect(await bed.outbox.items.map(\.kind) == [.document(version: 1), .document(version: 2)])
        #expect(await bed.outbox.items.last?.hospital == Self.second.code)

        // The crew changes its mind before the second answers: the second is told.
        _ = try await runner.sendHandoff(to: Self.first.code, by: bed.harness.crew)
        let withdrawal = try #require(await bed.outbox.items.first { $0.kind == .withdrawal })
        #expect(withdrawal.hospital == Self.second.code)
        #expect(await runner.outboxPayload(withdrawal) == .withdrawal(documentSet: set))
        await runner.outboxDelivered(withdrawal)
        #expect(await runner.snapshot().state.handoff?.machine.pendingWithdrawals.isEmpty == true)
        // An unknown hospital is refused.
        await #expect(throws: WorkflowError.self) {
            try await runner.sendHandoff(to: HospitalCode(rawValue: "1234567890")!, by: bed.harness.crew)
        }
    }

    @Test func closingAfterTheSendTellsTheHospitalBeforeTheShred() async throws {
        let bed = Bed()
        let runner = try await bed.incidentWithSummary()
        _ = try await runner.sendHandoff(to: Self.second.code, by: bed.harness.crew)
        // The crew changes its mind; the second hospital's withdrawal is still waiting when the incident closes.
        _ = try await runner.sendHandoff(to: Self.first.code, by: bed.harness.crew)
        let set = try #require(await runner.documentSet())
        await bed.desk.hospitalReported(documentSet: set, status: .received, hospital: Self.first.code, divert: nil)
        #expect(await bed.outbox.notices.isEmpty)

        _ = try await runner.close(by: bed.harness.crew)
        let notices = await bed.outbox.notices
        #expect(notices.map(\.hospital) == [Self.second.code, Self.first.code])
        #expect(notices.map(\.reason) == [.anotherHospital, .closed])
        #expect(notices.allSatisfy { $0.documentSet == set })
        #expect(await bed.harness.store.shredded.map(\.0) == [runner.id])
    }

    @Test func noticesOnCloseFollowWhatEachHospitalKnows() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var progress = HandoffProgress()
        // Nothing sent: nothing owed.
        #expect(progress.noticesOnClose(.closedByCrew, at: now).isEmpty)
        _ = try progress.machine.handle(.send(to: Self.first.code))
        #expect(progress.noticesOnClose(.closedByCrew, at: now).map(\.reason) == [.closed])
        #expect(progress.noticesOnClose(.consentExpired, at: now).map(\.hospital) == [Self.first.code])
        // The hospital that diverted said no already.
        _ = try progress.machine.handle(.hospitalStatus(.diverted, hospital: Self.first.code, divert: Divert(.noBeds)))
        #expect(progress.noticesOnClose(.closedByCrew, at: now).isEmpty)
        // Another hospital, then a change of mind: the second is owed a withdrawal whatever the closure.
        _ = try progress.machine.handle(.send(to: Self.second.code))
        _ = try progress.machine.handle(.send(to: Self.first.code))
        #expect(progress.noticesOnClose(.closedByCrew, at: now).map(\.reason) == [.anotherHospital, .closed])
        _ = try progress.machine.handle(.hospitalStatus(.arrived, hospital: Self.first.code, divert: nil))
        // Handed over at the first: only the second's withdrawal is left.
        let handedOver = progress.noticesOnClose(.handedOver, at: now)
        #expect(handedOver.map(\.hospital) == [Self.second.code])
        #expect(handedOver.map(\.reason) == [.anotherHospital])
    }

    @Test func aRestartQueuesWhatWasNotDeliveredAgain() async throws {
        let bed = Bed()
        let runner = try await bed.incidentWithSummary()
        _ = try await runner.sendHandoff(to: Self.first.code, by: bed.harness.crew)
        await runner.outboxProblem(
            try #require(await bed.outbox.items.first),
            problem: "the hospital's receiver cannot be reached",
            final: false
        )
        #expect(await runner.snapshot().state.handoff?.problem == "the hospital's receiver cannot be reached")
        await runner.suspend()

        let outbox = RecordingOutbox()
        var effects = bed.harness.effects
        effects.handoff = HandoffEffects(builder: RecordingBuilder(), outbox: outbox, hospitals: [Self.first])
        let restarted = IncidentDesk(effects: effects, configuration: bed.harness.configuration, logger: silent)
        #expect(try await restarted.restore(viewer: bed.harness.crew) == 1)
        let queued = await outbox.items
        #expect(queued.map(\.kind) == [.document(version: 1)])
        let restored = try await restarted.runner(runner.id)
        let readsBefore = await bed.harness.store.singleKindReads
        let document = try bed.built(await restored.outboxPayload(try #require(queued.first)))
        #expect(document.version == 1)
        // Read from the vault once after the restart; every later attempt sends the same bytes without a new
        // (audited) read.
        for _ in 0..<3 { _ = await restored.outboxPayload(try #require(queued.first)) }
        #expect(await bed.harness.store.singleKindReads == readsBefore + 1)
    }
}
