import Clocks
import Foundation
import KyukyuDomain
import KyukyuEligibility
import KyukyuIncident
import KyukyuOnshi
import KyukyuTestbed
import KyukyuVault
import Synchronization
import Testing

@testable import KyukyuWorkflow

@Suite("Incident workflow (in-memory doubles)", .timeLimit(.minutes(1)))
struct IncidentRunnerTests {
    @Test func consentThenCardFetchesAndShowsTheSummaryReadBackFromTheStore() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await desk.cardTouched(FakeCard(.individualNumberCard))
        let summary = try #require(
            await waitFor(runner) { $0.state.machine.phase == .summary && $0.state.machine.summaryComplete }
        )
        #expect(summary.state.machine.identification == .card(.individualNumberCard))
        #expect(summary.state.card.state == .read)
        #expect(summary.state.authentication.status == .ok)
        // Every category settled, and what arrived is what the store holds.
        for category in MedicalCategory.allCases {
            let status = try #require(summary.state[category]?.status)
            // Everything settled before the summary was shown: nothing is late.
            #expect([.arrived, .noneOnRecord].contains(status), "\(category): \(status)")
        }
        let stored = try await harness.store.latest(incident: runner.id, viewer: harness.crew)
        let qualification = try #require(stored[RecordKind(.qualification)])
        let decoded = try JSONDecoder().decode(CategoryRecords.self, from: qualification)
        guard case .qualification(let q?) = decoded else { Issue.record("no qualification stored"); return }
        #expect(summary.summary?.patient?.name == q.name)
        #expect(summary.summary?.patient?.synthetic == true)
        // The state itself is in the store, so a restart finds it.
        #expect(stored[.incidentState] != nil)
        #expect(harness.onshi.sessions == 1)
    }

    @Test func aCardTouchedBeforeConsentWaitsForIt() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        await desk.cardTouched(FakeCard(.individualNumberCard))
        #expect(await runner.snapshot().state.machine.phase == .identified)
        #expect(harness.onshi.sessions == 0)
        _ = try await runner.recordConsent(.lifeOrBodyException, by: harness.crew)
        let shown = await waitFor(runner) { $0.state.machine.phase == .summary }
        #expect(shown != nil)
        #expect(harness.onshi.sessions == 1)
    }

    @Test func anAndroidTokenAsksForThePINAndGuardsTheLastTry() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        let phone = FakeCard(.android, tries: 2)
        await desk.cardTouched(phone)
        var card = await runner.snapshot().state.card
        #expect(card.state == .pinRequired)
        #expect(card.triesLeft == 2)

        // A malformed PIN costs nothing.
        await #expect(throws: WorkflowError.invalidInput("")) {
            try await runner.submitPIN("12a4", confirmLastTry: false, card: phone, by: harness.crew)
        }
        #expect(phone.state.withLock { $0.verifications } == 0)
        // A wrong PIN: one try spent, the tries left shown.
        await #expect(throws: WorkflowError.wrongPIN(triesLeft: 1)) {
            try await runner.submitPIN("9999", confirmLastTry: false, card: phone, by: harness.crew)
        }
        card = await runner.snapshot().state.card
        #expect(card.triesLeft == 1 && card.lastTry)
        // The last try is not spent without the holder's confirmation.
        await #expect(throws: WorkflowError.pinLastTry()) {
            try await runner.submitPIN("1234", confirmLastTry: false, card: phone, by: harness.crew)
        }
        #expect(phone.state.withLock { $0.verifications } == 1)
        _ = try await runner.submitPIN("1234", confirmLastTry: true, card: phone, by: harness.crew)
        #expect(phone.state.withLock { $0.verifications } == 2)
        let shown = await waitFor(runner) { $0.state.machine.phase == .summary }
        #expect(shown?.state.machine.identification == .card(.android))
        // PIN mode: consent was there, so the phone signed onshi's nonce while it was on the reader, once.
        #expect(phone.state.withLock { $0.signatures } == 1)
        #expect(harness.onshi.assurances == ["pin"])
    }

    @Test func aPINEnteredBeforeConsentIdentifiesByTheCertificateAlone() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        let phone = FakeCard(.android)
        await desk.cardTouched(phone)
        _ = try await runner.submitPIN("1234", confirmLastTry: false, card: phone, by: harness.crew)
        #expect(await runner.snapshot().state.machine.phase == .identified)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        _ = await waitFor(runner) { $0.state.machine.phase == .summary }
        // The phone had gone by the time the fetch started: no signature, a visual-check session.
        #expect(phone.state.withLock { $0.signatures } == 0)
        #expect(harness.onshi.assurances == ["visual"])
    }

    @Test func aRefusedConsentIsSentClosesAndShreds() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.refuse(OnshiResultCode.consentRefused))
        let harness = Harness(onshi: onshi)
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        await desk.cardTouched(FakeCard())
        _ = await waitFor(runner) { $0.state.machine.phase == .identified }
        _ = try await runner.recordConsent(.refused, by: harness.crew)
        let closed = try #require(await waitFor(runner) { $0.state.machine.phase == .closed })
        #expect(closed.state.machine.closure == .consentRefused)
        #expect(closed.summary == nil)
        #expect(harness.onshi.assurances.count == 1, "the refusal went to onshi")
        #expect(try await harness.store.incidentIDs().isEmpty)
        #expect(await harness.store.shredded.map(\.1) == [PurgeReason(rawValue: "consent-refused")])
    }

    /// Refused while the card is being read: the refusal waits for the read and goes to onshi with it (the browser
    /// test's order: the card lies on the reader as the incident opens, and the crew taps at once).
    @Test func aRefusalDuringTheReadWaitsForItAndGoesToOnshi() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.refuse(OnshiResultCode.consentRefused))
        let harness = Harness(onshi: onshi)
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        let card = GatedCard(FakeCard())
        let reading = Task { await desk.cardTouched(card) }
        _ = try #require(await waitFor(runner) { $0.state.card.state == .reading })
        let refusal = Task { try await runner.recordConsent(.refused, by: harness.crew) }
        // Held while the read runs: nothing has closed, nothing went to onshi.
        await Task.yield()
        #expect(await runner.snapshot().state.machine.phase == .created)
        card.open()
        _ = try await refusal.value
        _ = await reading.value
        let closed = try #require(await waitFor(runner) { $0.state.machine.phase == .closed })
        #expect(closed.state.machine.closure == .consentRefused)
        #expect(harness.onshi.assurances.count == 1, "the refusal went to onshi")
        #expect(try await harness.store.incidentIDs().isEmpty)
    }

    /// Refused before any card: the incident closes and shreds at once, and nothing goes to onshi (the drill found
    /// such incidents left open, waiting for a card that would never come).
    @Test func aRefusalWithNoCardClosesAtOnce() async throws {
        let harness = Harness(onshi: InMemoryOnshi())
        let runner = try await harness.desk().open(source: .crew)
        _ = try await runner.recordConsent(.refused, by: harness.crew)
        let closed = try #require(await waitFor(runner) { $0.state.machine.phase == .closed })
        #expect(closed.state.machine.closure == .consentRefused)
        #expect(harness.onshi.assurances.isEmpty)
        #expect(try await harness.store.incidentIDs().isEmpty)
    }

    @Test func noNetworkKeepsTheFetchPendingAndRetriesWithBackoff() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.unreachable)
        let clock = TestClock()
        let harness = Harness(onshi: onshi, clock: clock)
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await desk.cardTouched(FakeCard())
        let deferred = try #require(await waitFor(runner) { $0.state.machine.phase == .retryPending })
        #expect(deferred.state.retry?.reason == .noNetwork)
        #expect(deferred.state.retry?.attempt == 1)
        // Still no network at the first retry (2 s): deferred again, for 4 s this time.
        await clock.advance(by: .seconds(2))
        let second = try #require(
            await waitFor(runner) { $0.state.machine.phase == .retryPending && $0.state.retry?.attempt == 2 }
        )
        #expect(second.state.machine.fetchAttempts == 2)
        // The network is back: the next retry (4 s later, not earlier) gets the summary.
        onshi.set(.answer)
        await clock.advance(by: .seconds(3))
        #expect(await runner.snapshot().state.machine.phase == .retryPending)
        await clock.advance(by: .seconds(1))
        let shown = await waitFor(runner) { $0.state.machine.phase == .summary }
        #expect(shown?.state.machine.fetchAttempts == 3)
        #expect(onshi.sessions == 1)
    }

    @Test func categoriesLostToADeadZoneAfterTheSummaryAreAskedForAgainWithBackoff() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.categoriesUnreachable)
        let clock = TestClock()
        let harness = Harness(onshi: onshi, clock: clock)
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await desk.cardTouched(FakeCard())
        let waiting = try #require(
            await waitFor(runner) { $0.state.machine.phase == .summary && $0.state.retry != nil }
        )
        #expect(waiting.state.retry?.reason == .noNetwork)
        #expect(waiting.state[.qualification]?.status == .retrying)
        // The network is back; nothing happens before the retry is due (2 s), then everything arrives.
        onshi.set(.answer)
        await clock.advance(by: .milliseconds(1900))
        #expect(await runner.snapshot().state[.qualification]?.status == .retrying)
        await clock.advance(by: .milliseconds(100))
        let filled = try #require(
            await waitFor(runner) { snapshot in
                MedicalCategory.allCases.allSatisfy {
                    [.arrived, .late, .noneOnRecord].contains(snapshot.state[$0]?.status)
                }
            }
        )
        #expect(filled.summary?.patient != nil)
        #expect(filled.state.retry == nil)
        #expect(onshi.sessions == 2)
    }

    @Test func theIncidentClosesAndShredsWhenOnshisConsentRunsOut() async throws {
        let clock = TestClock()
        let harness = Harness(onshi: InMemoryOnshi(consentLifetime: 600), clock: clock)
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await desk.cardTouched(FakeCard())
        let shown = try #require(await waitFor(runner) { $0.state.machine.phase == .summary })
        #expect(shown.state.consentAvailableUntil != nil)
        await clock.advance(by: .seconds(590))
        #expect(await runner.snapshot().state.machine.phase == .summary)
        await clock.advance(by: .seconds(11))
        let closed = try #require(await waitFor(runner) { $0.state.machine.phase == .closed })
        #expect(closed.state.machine.closure == .consentExpired)
        #expect(closed.summary == nil)
        #expect(try await harness.store.incidentIDs().isEmpty)
    }

    @Test func aRestartedDeskResumesAnIncidentMidFetch() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.stallCategories)
        let harness = Harness(onshi: onshi)
        let first = harness.desk()
        let runner = try await first.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await first.cardTouched(FakeCard())
        _ = await waitFor(runner) { $0.state.authentication.status == .ok }
        // The process dies here: a new desk on the same store, as after kill -9.
        let second = harness.desk()
        onshi.release()
        #expect(try await second.restore(viewer: harness.crew) == 1)
        let resumed = try await second.runner(runner.id)
        let shown = try #require(await waitFor(resumed) { $0.state.machine.phase == .summary })
        #expect(shown.state.machine.consent == .verbal)
        #expect(shown.summary?.patient != nil)
        #expect(await second.active == nil)
    }

    /// Killed while a fetch waited to be retried, and onshi still down after the restart (the drill's maintenance
    /// window and SIGKILL): the restored incident defers again and keeps retrying. It used to call the fetch without
    /// the machine, whose deferral from "retry pending" was then refused: no retry ever came.
    @Test func aRestartWhileARetryWaitsKeepsRetrying() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.unreachable)
        let clock = TestClock()
        let harness = Harness(onshi: onshi, clock: clock)
        let first = harness.desk()
        let runner = try await first.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await first.cardTouched(FakeCard())
        _ = try #require(await waitFor(runner) { $0.state.machine.phase == .retryPending })
        // Killed here; onshi is still down when the gateway comes back.
        await first.suspendAll()
        let second = harness.desk()
        #expect(try await second.restore(viewer: harness.crew) == 1)
        let resumed = try await second.runner(runner.id)
        let deferred = try #require(
            await waitFor(resumed) { $0.state.machine.phase == .retryPending && $0.state.retry?.attempt == 2 }
        )
        #expect(deferred.state.machine.fetchAttempts == 2)
        // Onshi is back: the next retry gets the summary.
        onshi.set(.answer)
        await clock.advance(by: .seconds(4))
        let shown = await waitFor(resumed) { $0.state.machine.phase == .summary }
        #expect(shown?.state.machine.fetchAttempts == 3)
    }

    @Test func aRestartAfterTheSummaryFetchesWhatHadNotArrived() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.stallCategories)
        let clock = TestClock()
        let harness = Harness(
            onshi: onshi,
            clock: clock,
            onshiClock: clock,
            deadlines: FetchDeadlines(overall: .seconds(1), perCategory: .seconds(30))
        )
        let first = harness.desk()
        let runner = try await first.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await first.cardTouched(FakeCard())
        _ = await waitFor(runner) { $0.state.authentication.status == .ok }
        // The deadline falls with every category still out: the summary shows, pending.
        await clock.advance(by: .seconds(1))
        let partial = try #require(await waitFor(runner) { $0.state.machine.phase == .summary })
        #expect(partial.state[.qualification]?.status == .pending)
        // Killed here: the old process writes nothing more. The restarted desk asks onshi again for what had not
        // arrived, and the summary fills in.
        await runner.suspend()
        onshi.release()
        let second = harness.desk()
        #expect(try await second.restore(viewer: harness.crew) == 1)
        let resumed = try await second.runner(runner.id)
        let filled = try #require(
            await waitFor(resumed) { snapshot in
                MedicalCategory.allCases.allSatisfy { snapshot.state[$0]?.isSettled == true }
            }
        )
        #expect(filled.summary?.patient != nil)
        #expect(filled.state.machine.phase == .summary)
    }

    @Test func aCardRemovedMidReadIsShownAndReadAgainWhenBack() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        let card = FakeCard()
        card.state.withLock { $0.present = false }
        await desk.cardTouched(card)
        #expect(await runner.snapshot().state.card.state == .removed)
        #expect(await runner.snapshot().state.machine.phase == .consentRecorded)
        card.state.withLock { $0.present = true }
        await desk.cardTouched(card)
        let shown = await waitFor(runner) { $0.state.machine.phase == .summary }
        #expect(shown != nil)
    }

    @Test func aLookupIdentifiesWithoutACard() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.lifeOrBodyException, by: harness.crew)
        _ = try await runner.lookup(
            .insurance(insurerNumber: "06999999", symbol: "試験", number: "1"),
            by: harness.crew
        )
        let shown = await waitFor(runner) { $0.state.machine.phase == .summary }
        #expect(shown?.state.machine.identification == .lookupByInsurance)
        // A second identification is refused.
        await #expect(throws: WorkflowError.conflict(reason: "")) {
            try await runner.lookup(.insurance(insurerNumber: "06999999", symbol: "x", number: "1"), by: harness.crew)
        }
    }

    @Test func everyStepIsAuditedWithTerminalAndNoPatientData() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await desk.cardTouched(FakeCard())
        let shown = try #require(await waitFor(runner) { $0.state.machine.phase == .summary })
        _ = try await runner.close(by: harness.crew)
        let steps = await harness.store.auditTrail.filter { $0.action == .incidentStep }
        #expect(
            steps.map { $0.attributes["step"] }
                == ["consent-recorded", "patient-identified", "summary-shown", "closed-by-crew"]
        )
        #expect(steps.allSatisfy { $0.attributes["terminal"] == "ambulance-test" && $0.incident == runner.id })
        #expect(steps.first?.attributes["basis"] == "verbal")
        #expect(steps.first?.actor == "TEST-A1")
        let name = try #require(shown.summary?.patient?.name)
        let dump = "\(await harness.store.auditTrail)"
        #expect(!dump.contains(name))
        #expect(try await harness.store.incidentIDs().isEmpty)
    }
}

/// A store whose first write of arrived categories waits until the test opens it.
actor GatedStore: IncidentStore {
    let inner = InMemoryIncidentStore()
    private var gate: CheckedContinuation<Void, Never>?
    private var gated = false
    private var opened = false
    /// How many writes stored category records or statuses (every write but the state-only ones).
    private(set) var categoryWrites = 0

    func open() {
        opened = true
        gate?.resume()
        gate = nil
    }

    func createIncident(now: Date) async throws -> IncidentID { try await inner.createIncident(now: now) }
    func put(_ payload: Data, kind: RecordKind, incident: IncidentID, now: Date) async throws {
        try await inner.put(payload, kind: kind, incident: incident, now: now)
    }
    func put(
        _ records: [(kind: RecordKind, payload: Data)],
        readingBack: Set<RecordKind>,
        incident: IncidentID,
        viewer: CrewID,
        now: Date
    ) async throws -> [RecordKind: Data] {
        categoryWrites += 1
        if !gated {
            gated = true
            if !opened { await withCheckedContinuation { gate = $0 } }
        }
        return try await inner.put(records, readingBack: readingBack, incident: incident, viewer: viewer, now: now)
    }
    func latest(incident: IncidentID, viewer: CrewID) async throws -> [RecordKind: Data] {
        try await inner.latest(incident: incident, viewer: viewer)
    }
    func latest(incident: IncidentID, kind: RecordKind, viewer: CrewID) async throws -> Data? {
        try await inner.latest(incident: incident, kind: kind, viewer: viewer)
    }
    func incidentIDs() async throws -> [IncidentID] { try await inner.incidentIDs() }
    func shred(incident: IncidentID, reason: PurgeReason) async throws {
        try await inner.shred(incident: incident, reason: reason)
    }
    func audit(_ event: AuditEvent) async throws { try await inner.audit(event) }
    func auditHead() async throws -> AuditHead? { nil }
}

@Suite("Incident workflow: categories that arrive together are stored together", .timeLimit(.minutes(1)))
struct CategoryBatchingTests {
    /// Before, each category cost three writes (records, read-back, state) one after another; categories that
    /// arrive while a write is under way now go into the next write together, read back in it.
    @Test func categoriesArrivingDuringAWriteShareTheNextOne() async throws {
        let onshi = InMemoryOnshi()
        onshi.set(.stallCategories)
        let store = GatedStore()
        let harness = Harness(onshi: onshi)
        let effects = WorkflowEffects(store: store, fetching: harness.effects.fetching)
        let runner = try await IncidentRunner.open(
            source: .crew,
            effects: effects,
            configuration: harness.configuration,
            logger: silent
        )
        _ = try await runner.recordConsent(.verbal, by: harness.crew)
        await runner.cardTouched(FakeCard(.individualNumberCard))
        onshi.release()
        // Every category's answer is in the gated first write or queued behind it (bounded by the time limit).
        while await runner.finalCategoryUpdatesInFlight() < MedicalCategory.allCases.count {
            await Task.yield()
        }
        await store.open()
        let summary = try #require(
            await waitFor(runner) {
                $0.state.machine.phase == .summary && $0.state.categories.values.allSatisfy(\.isSettled)
            }
        )
        #expect(await store.categoryWrites == 2, "the gated write, then one for the eight that waited")
        for category in MedicalCategory.allCases {
            #expect([.arrived, .noneOnRecord].contains(summary.state[category]?.status), "\(category)")
        }
        #expect(summary.summary?.patient?.synthetic == true, "the summary was rebuilt from what was read back")
    }
}

@Suite("Incident workflow: the crew's observations", .timeLimit(.minutes(1)))
struct ObservationUpdateTests {
    @Test func observationsArePersistedAuditedByPartAndSurviveARestart() async throws {
        let harness = Harness()
        let desk = harness.desk()
        let runner = try await desk.open(source: .crew)
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let snapshot = try await runner.updateObservations(by: harness.crew) { observations in
            observations.priority = .red
            var set = VitalSigns(takenAt: at)
            set.heartRate = 130
            observations.vitals.append(set)
        }
        #expect(snapshot.state.observations?.priority == .red)
        let steps = await harness.store.auditTrail.filter { $0.attributes["step"] == "observations-recorded" }
        #expect(steps.map { $0.attributes["outcome"] } == ["priority,vitals"])
        // No value in the audit.
        #expect(!steps.contains { $0.attributes.values.contains { $0.contains("130") } })

        // A set that does not check out changes nothing.
        await #expect(throws: WorkflowError.self) {
            try await runner.updateObservations(by: harness.crew) { $0.vitals[0].spo2 = 140 }
        }
        #expect(await runner.snapshot().state.observations?.vitals.first?.spo2 == nil)

        // A restarted desk finds them in the store.
        let restarted = harness.desk()
        _ = try await restarted.restore(viewer: harness.crew)
        let restored = try await restarted.runner(runner.id)
        #expect(await restored.snapshot().state.observations?.vitals.first?.heartRate == 130)
    }
}

/// A card whose session waits until the test opens the gate (a read in flight).
final class GatedCard: PatientCard {
    let card: FakeCard
    private let gate = AsyncStream<Void>.makeStream()

    init(_ card: FakeCard) { self.card = card }

    func open() { gate.continuation.finish() }

    func withCard<T: Sendable>(_ body: @Sendable (any CardAccess) async throws -> T) async throws -> T {
        for await _ in gate.stream {}
        return try await card.withCard(body)
    }
}
