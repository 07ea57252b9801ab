import Clocks
import Foundation
import KyukyuDomain
import KyukyuIncident
import KyukyuOnshi
import KyukyuTestbed
import KyukyuVault
import Testing

@testable import KyukyuWorkflow

/// The hub's side as the runner sees it: which requests were withdrawn, from which hospitals, for which incident.
actor RecordingWithdrawals: PlacementWithdrawing {
    struct Withdrawal: Equatable {
        var placement: UUID
        var hospitals: [HospitalCode]
        var incident: IncidentID
    }

    private(set) var withdrawals: [Withdrawal] = []

    func withdraw(_ placement: UUID, from hospitals: [HospitalCode], of incident: IncidentID) async {
        withdrawals.append(Withdrawal(placement: placement, hospitals: hospitals, incident: incident))
    }
}

/// An incident that ends while its placement request is open withdraws the request, whatever ends it: the crew's
/// close, consent running out, the patient handed over. A request a hospital accepted is not withdrawn.
@Suite("Incident workflow: an open placement request ends with its incident", .timeLimit(.minutes(1)))
struct PlacementWithdrawalTests {
    static let first = HandoffTests.first
    static let second = HandoffTests.second

    struct Bed {
        let clock = TestClock()
        let harness: Harness
        let withdrawals = RecordingWithdrawals()
        let desk: IncidentDesk

        init() {
            harness = Harness(onshi: InMemoryOnshi(consentLifetime: 600), clock: clock)
            var effects = harness.effects
            effects.handoff = HandoffEffects(
                builder: RecordingBuilder(),
                outbox: RecordingOutbox(),
                hospitals: [PlacementWithdrawalTests.first, PlacementWithdrawalTests.second],
                placements: withdrawals
            )
            desk = IncidentDesk(effects: effects, configuration: harness.configuration, logger: silent)
        }

        /// An incident with its summary shown and a request to both hospitals, stored at the hub.
        func incidentAskingBothHospitals() async throws -> (IncidentRunner, PlacementProgress) {
            let runner = try await desk.open(source: .crew)
            _ = try await runner.recordConsent(.verbal, by: harness.crew)
            await desk.cardTouched(FakeCard(.individualNumberCard))
            _ = try #require(await waitFor(runner) { $0.state.machine.phase == .summary })
            let summary = try PlacementSummary(
                ageDecade: 7,
                sex: nil,
                chiefComplaint: .dyspnoea,
                priority: nil,
                needs: [],
                etaMinutes: 12
            )
            let started = try await runner.startPlacement(
                to: [PlacementWithdrawalTests.first.code, PlacementWithdrawalTests.second.code],
                summary: summary,
                by: harness.crew
            )
            await runner.placementStored(started.placement.id, answers: [:])
            return (runner, started.placement)
        }

        func steps() async -> [String] {
            await harness.store.auditTrail.compactMap { $0.attributes["step"] }
        }
    }

    @Test func consentRunningOutWithdrawsTheOpenRequest() async throws {
        let bed = Bed()
        let (runner, placement) = try await bed.incidentAskingBothHospitals()
        #expect(await bed.withdrawals.withdrawals.isEmpty)
        await bed.clock.advance(by: .seconds(601))
        let closed = try #require(await waitFor(runner) { $0.state.machine.phase == .closed })
        #expect(closed.state.machine.closure == .consentExpired)
        #expect(
            await bed.withdrawals.withdrawals == [
                .init(placement: placement.id, hospitals: placement.hospitals, incident: runner.id)
            ]
        )
        #expect(await bed.steps().contains("placement-withdrawn"))
    }

    @Test func theCrewsCloseWithdrawsTheRequestWithTheHospitalsStillPending() async throws {
        let bed = Bed()
        let (runner, placement) = try await bed.incidentAskingBothHospitals()
        await runner.placementAnswered(
            placement.id,
            hospital: Self.first.code,
            answer: .declined,
            divert: nil,
            at: nil
        )
        _ = try await runner.close(by: bed.harness.crew)
        #expect(
            await bed.withdrawals.withdrawals == [
                .init(placement: placement.id, hospitals: placement.hospitals, incident: runner.id)
            ]
        )
    }

    @Test func anAcceptedRequestIsNotWithdrawnWhenThePatientIsHandedOver() async throws {
        let bed = Bed()
        let (runner, placement) = try await bed.incidentAskingBothHospitals()
        await runner.placementAnswered(
            placement.id,
            hospital: Self.second.code,
            answer: .accepted,
            divert: nil,
            at: nil
        )
        let set = try #require(await runner.documentSet())
        await bed.desk.hospitalReported(documentSet: set, status: .arrived, hospital: Self.second.code, divert: nil)
        let closed = await runner.snapshot().state
        #expect(closed.machine.closure == .handedOver)
        #expect(await bed.withdrawals.withdrawals.isEmpty)
        #expect(!(await bed.steps().contains("placement-withdrawn")))
    }

    @Test func aHandoverToTheCrewsOwnPickWithdrawsTheRequestStillOpen() async throws {
        let bed = Bed()
        let (runner, placement) = try await bed.incidentAskingBothHospitals()
        // The crew sends the document to a hospital of their own choosing while the request still waits.
        _ = try await runner.sendHandoff(to: Self.first.code, by: bed.harness.crew)
        let set = try #require(await runner.documentSet())
        await bed.desk.hospitalReported(documentSet: set, status: .arrived, hospital: Self.first.code, divert: nil)
        #expect(await runner.snapshot().state.machine.closure == .handedOver)
        #expect(
            await bed.withdrawals.withdrawals == [
                .init(placement: placement.id, hospitals: placement.hospitals, incident: runner.id)
            ]
        )
    }
}
