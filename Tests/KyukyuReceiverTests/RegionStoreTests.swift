import Foundation
import KyukyuDomain
import KyukyuReceiver
import KyukyuVault
import Testing

/// Hospitals' acceptance and placement requests in the store, the same tests on both engines.
@Suite("Acceptance and placement requests on both engines")
struct RegionStoreTests {
    static let first = HospitalCode(rawValue: "1310000001")!
    static let second = HospitalCode(rawValue: "1310000002")!
    static let third = HospitalCode(rawValue: "1310000003")!

    static func summary() throws -> PlacementSummary {
        try PlacementSummary(
            ageDecade: 7,
            sex: "female",
            chiefComplaint: .dyspnoea,
            priority: .red,
            needs: [.dialysis],
            etaMinutes: 12
        )
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func aPublicationChangesOnTopOfTheLatestAndIsKeptInTheHistory(engine: Engine) async throws {
        try await withStore(engine) { _, store in
            let start = Date(timeIntervalSince1970: 1_795_000_000)
            #expect(try await store.acceptance(of: Self.first) == nil)
            let one = try await store.publishAcceptance(
                Self.first,
                setting: [.stroke: .accepting, .dialysis: try .notAccepting(.noBeds)],
                staff: "NURSE-A",
                at: start
            )
            #expect(one.revision == 1)
            let two = try await store.publishAcceptance(
                Self.first,
                setting: [.dialysis: .accepting],
                withdrawing: [.stroke],
                staff: "NURSE-A",
                at: start.addingTimeInterval(60)
            )
            #expect(two.revision == 2)
            #expect(two[.dialysis] == .accepting && two[.stroke] == nil)
            #expect(try await store.acceptance(of: Self.first) == two)
            #expect(try await store.acceptances() == [two])
            let history = try await store.acceptanceHistory(from: start, to: start.addingTimeInterval(3600))
            #expect(history.map(\.acceptance.revision) == [1, 2])
            #expect(history.map(\.staff) == ["NURSE-A", "NURSE-A"])
        }
    }

    /// Two instances publishing for one hospital at once both count: the later applies its change on top.
    @Test(.timeLimit(.minutes(1)))
    func publicationsFromTwoInstancesAtOnceLoseNothing() async throws {
        try await withStore(.postgresql) { fixture, first in
            let second = try await fixture.open()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, condition) in AcceptanceCondition.allCases.enumerated() {
                    let store = index.isMultiple(of: 2) ? first : second
                    group.addTask {
                        _ = try await store.publishAcceptance(
                            Self.first,
                            setting: [condition: .accepting],
                            staff: "NURSE-A",
                            at: Date()
                        )
                    }
                }
                try await group.waitForAll()
            }
            try await second.close()
            let latest = try #require(try await first.acceptance(of: Self.first))
            #expect(latest.revision == Int64(AcceptanceCondition.allCases.count))
            #expect(Set(latest.conditions.keys) == Set(AcceptanceCondition.allCases))
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func theFirstToAcceptGetsThePatientAndTheOthersAreTold(engine: Engine) async throws {
        try await withStore(engine) { fixture, store in
            let id = UUID()
            let set = UUID()
            let summary = try Self.summary()
            let created = try await store.createPlacement(
                id,
                device: "ambulance-01",
                documentSet: set,
                hospitals: [Self.first, Self.second, Self.third],
                summary: summary,
                at: Date()
            )
            #expect(created.created)
            #expect(created.events.map(\.answer) == [.pending, .pending, .pending])
            #expect(created.view.answers == [Self.first: .pending, Self.second: .pending, Self.third: .pending])
            #expect(created.view.summary == nil, "the ambulance's view carries no summary")
            // A resend changes nothing; the same id with another request is a conflict.
            let again = try await store.createPlacement(
                id,
                device: "ambulance-01",
                documentSet: set,
                hospitals: [Self.third, Self.second, Self.first],
                summary: summary,
                at: Date()
            )
            #expect(!again.created && again.events.isEmpty)
            await #expect(throws: ReceiverError.conflict("")) {
                try await store.createPlacement(
                    id,
                    device: "ambulance-01",
                    documentSet: set,
                    hospitals: [Self.first],
                    summary: summary,
                    at: Date()
                )
            }
            // Each asked hospital reads the summary it was told; a hospital not asked reads nothing.
            #expect(try await store.placement(id, at: Self.second)?.summary == summary)
            #expect(try await store.placement(id, at: HospitalCode(rawValue: "1310000009")!) == nil)
            #expect(try await store.placement(id, device: "ambulance-02") == nil)

            let declined = try await store.answerPlacement(
                id,
                at: Self.first,
                answer: .declined,
                reason: .other,
                note: "CT down until 14:00",
                staff: "NURSE-A",
                at: Date()
            )
            #expect(declined.events.map(\.answer) == [.declined])
            #expect(declined.events.first?.note == "CT down until 14:00")
            let accepted = try await store.answerPlacement(
                id,
                at: Self.second,
                answer: .accepted,
                reason: nil,
                note: nil,
                staff: "NURSE-B",
                at: Date()
            )
            #expect(accepted.view.placedAt == Self.second)
            #expect(accepted.events.map(\.answer) == [.accepted, .placedElsewhere])
            #expect(accepted.events.map(\.hospital) == [Self.second, Self.third])
            #expect(
                accepted.view.answers == [Self.first: .declined, Self.second: .accepted, Self.third: .placedElsewhere]
            )
            // Too late: the third hospital, a second answer, the crew's cancel.
            await #expect(throws: ReceiverError.conflict("")) {
                try await store.answerPlacement(
                    id,
                    at: Self.third,
                    answer: .accepted,
                    reason: nil,
                    note: nil,
                    staff: "NURSE-C",
                    at: Date()
                )
            }
            await #expect(throws: ReceiverError.conflict("")) {
                try await store.cancelPlacement(id, device: "ambulance-01", at: Date())
            }
            // The ambulance's stream has every event, in the order of its sequence; each board its own.
            let stream = try await store.streamEvents(device: "ambulance-01", after: 0)
            #expect(stream.compactMap(\.sequence) == Array(1...6))
            let third = try await store.streamBoardEvents(hospital: Self.third, after: 0)
            let answers: [PlacementAnswer?] = third.map { event in
                if case .placement(let placement) = event { return placement.answer }
                return nil
            }
            #expect(answers == [.pending, .placedElsewhere])
            // The review: every answer and time, and the summary.
            let records = try await store.placementRecords(
                from: Date().addingTimeInterval(-60),
                to: Date().addingTimeInterval(60)
            )
            #expect(records.count == 1)
            #expect(records.first?.placedAt == Self.second)
            #expect(records.first?.summary == summary)
            #expect(records.first?.targets.map(\.staff) == ["NURSE-A", "NURSE-B", nil])
            // Notes and summaries are sealed at rest.
            await store.checkpoint()
            let bytes = try await fixture.bytesAtRest()
            #expect(bytes.range(of: Data("CT down until".utf8)) == nil)
            #expect(bytes.range(of: Data("dyspnoea".utf8)) == nil)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func aWithdrawnRequestTellsEveryHospitalStillAsked(engine: Engine) async throws {
        try await withStore(engine) { _, store in
            let id = UUID()
            _ = try await store.createPlacement(
                id,
                device: "ambulance-01",
                documentSet: UUID(),
                hospitals: [Self.first, Self.second],
                summary: try Self.summary(),
                at: Date()
            )
            _ = try await store.answerPlacement(
                id,
                at: Self.first,
                answer: .declined,
                reason: .noBeds,
                note: nil,
                staff: "NURSE-A",
                at: Date()
            )
            await #expect(throws: ReceiverError.notFound("")) {
                try await store.cancelPlacement(id, device: "ambulance-02", at: Date())
            }
            let cancelled = try await store.cancelPlacement(id, device: "ambulance-01", at: Date())
            #expect(cancelled.events.map(\.hospital) == [Self.second])
            #expect(cancelled.view.answers == [Self.first: .declined, Self.second: .cancelled])
            await #expect(throws: ReceiverError.conflict("")) {
                try await store.answerPlacement(
                    id,
                    at: Self.second,
                    answer: .accepted,
                    reason: nil,
                    note: nil,
                    staff: "NURSE-B",
                    at: Date()
                )
            }
        }
    }

    /// Two hospitals accepting at once through two instances: exactly one gets the patient.
    @Test(.timeLimit(.minutes(1)))
    func twoAcceptancesAtOnceOnTwoInstancesPlaceThePatientOnce() async throws {
        try await withStore(.postgresql) { fixture, first in
            let second = try await fixture.open()
            for _ in 0..<10 {
                let id = UUID()
                _ = try await first.createPlacement(
                    id,
                    device: "ambulance-01",
                    documentSet: UUID(),
                    hospitals: [Self.first, Self.second],
                    summary: try Self.summary(),
                    at: Date()
                )
                async let one = Result(catching: { () async throws(ReceiverError) in
                    try await first.answerPlacement(
                        id,
                        at: Self.first,
                        answer: .accepted,
                        reason: nil,
                        note: nil,
                        staff: "NURSE-A",
                        at: Date()
                    )
                })
                async let two = Result(catching: { () async throws(ReceiverError) in
                    try await second.answerPlacement(
                        id,
                        at: Self.second,
                        answer: .accepted,
                        reason: nil,
                        note: nil,
                        staff: "NURSE-B",
                        at: Date()
                    )
                })
                let results = await [one, two]
                #expect(results.filter { (try? $0.get()) != nil }.count == 1)
                let view = try #require(try await first.placement(id, device: "ambulance-01"))
                #expect(Set(view.answers.values) == [.accepted, .placedElsewhere])
            }
            try await second.close()
        }
    }
}

extension Result where Failure == ReceiverError {
    init(catching body: () async throws(ReceiverError) -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
