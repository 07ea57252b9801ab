import KyukyuDomain
import KyukyuIncident
import Testing

@Suite("Incident state machine")
struct IncidentMachineTests {
    /// Applies events in order, failing the test (at the caller) on a refused transition.
    func run(
        _ events: [IncidentEvent],
        on machine: inout IncidentMachine,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> [[IncidentEffect]] {
        var all: [[IncidentEffect]] = []
        for event in events {
            do {
                all.append(try machine.handle(event))
            } catch {
                Issue.record(error, sourceLocation: sourceLocation)
            }
        }
        return all
    }

    @Test func consentThenCardStartsTheFetch() throws {
        var machine = IncidentMachine()
        #expect(try machine.handle(.consentRecorded(.verbal)) == [.audit(.consentRecorded(.verbal))])
        #expect(machine.phase == .consentRecorded)
        let effects = try machine.handle(.patientIdentified(.card(.individualNumberCard)))
        #expect(effects == [.audit(.patientIdentified(.card(.individualNumberCard))), .startFetch(attempt: 1)])
        #expect(machine.phase == .fetching)
        #expect(try machine.handle(.summaryShown(complete: false)) == [.audit(.summaryShown(complete: false))])
        #expect(machine.phase == .summary)
        #expect(!machine.summaryComplete)
        #expect(try machine.handle(.summaryShown(complete: true)) == [], "late categories add no audit entry")
        #expect(machine.summaryComplete)
    }

    /// A card touched before the crew taps a consent button is held; the fetch starts once consent is recorded.
    @Test func aCardBeforeConsentWaitsForIt() throws {
        var machine = IncidentMachine()
        #expect(try machine.handle(.patientIdentified(.card(.iphone))) == [.audit(.patientIdentified(.card(.iphone)))])
        #expect(machine.phase == .identified)
        let effects = try machine.handle(.consentRecorded(.lifeOrBodyException))
        #expect(effects == [.audit(.consentRecorded(.lifeOrBodyException)), .startFetch(attempt: 1)])
        #expect(machine.phase == .fetching)
        #expect(machine.consent == .lifeOrBodyException)
        #expect(machine.identification == .card(.iphone))
    }

    /// A refusal is still sent to onshi, which records it; then the incident closes and shreds.
    @Test func aRefusedConsentIsRecordedWithOnshiThenClosed() throws {
        var machine = IncidentMachine()
        _ = run([.patientIdentified(.lookupByDemographics), .consentRecorded(.refused)], on: &machine)
        #expect(machine.phase == .fetching)
        let effects = try machine.handle(.authenticationRefused(.consentRefused))
        #expect(effects == [.audit(.authenticationRefused(.consentRefused)), .shred(.consentRefused)])
        #expect(machine.phase == .closed)
        #expect(machine.closure == .consentRefused)
    }

    /// A refusal before anyone was identified closes the incident at once: nothing will be read, nothing waits.
    @Test func aRefusalBeforeAnyIdentificationClosesAtOnce() throws {
        var machine = IncidentMachine()
        let effects = try machine.handle(.consentRecorded(.refused))
        #expect(effects == [.audit(.consentRecorded(.refused)), .shred(.consentRefused)])
        #expect(machine.phase == .closed)
        #expect(machine.closure == .consentRefused)
        #expect(throws: IncidentTransitionError.self) {
            try machine.handle(.patientIdentified(.card(.individualNumberCard)))
        }
    }

    /// An expired certificate or an unmatched lookup asks for another identification; consent stands.
    @Test(arguments: [AuthenticationRefusal.certificateProblem, .notFound])
    func anotherIdentificationAfterARefusal(refusal: AuthenticationRefusal) throws {
        var machine = IncidentMachine()
        _ = run([.consentRecorded(.verbal), .patientIdentified(.card(.individualNumberCard))], on: &machine)
        #expect(try machine.handle(.authenticationRefused(refusal)) == [.audit(.authenticationRefused(refusal))])
        #expect(machine.phase == .consentRecorded)
        #expect(machine.identification == nil)
        #expect(machine.consent == .verbal)
        let effects = try machine.handle(.patientIdentified(.lookupByInsurance))
        #expect(effects.last == .startFetch(attempt: 2))
    }

    /// No network when the fetch is due: it is retried with a growing delay, and the attempt counts on.
    @Test func aDeferredFetchIsRetriedWithBackoff() throws {
        var machine = IncidentMachine(retrySchedule: RetrySchedule(initial: .seconds(2), maximum: .seconds(10)))
        _ = run([.consentRecorded(.verbal), .patientIdentified(.card(.android))], on: &machine)
        var delays: [Duration] = []
        for (attempt, reason) in zip(
            1...5,
            [FetchDeferral.noNetwork, .noNetwork, .maintenance, .breakerOpen, .noNetwork]
        ) {
            let deferred = try machine.handle(.fetchDeferred(reason))
            #expect(machine.phase == .retryPending)
            #expect(machine.deferral == reason)
            guard case .scheduleRetry(let delay, let scheduled) = deferred.last else {
                Issue.record("no retry scheduled: \(deferred)")
                return
            }
            #expect(scheduled == attempt)
            delays.append(delay)
            #expect(try machine.handle(.retryDue) == [.startFetch(attempt: attempt + 1)])
            #expect(machine.deferral == nil)
        }
        #expect(delays == [.seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
        #expect(try machine.handle(.summaryShown(complete: true)).count == 1)
        #expect(machine.fetchAttempts == 6)
    }

    /// Closing cancels a running or scheduled fetch and always shreds.
    @Test(arguments: [
        ([IncidentEvent](), false),
        ([.consentRecorded(.verbal)], false),
        ([.patientIdentified(.card(.individualNumberCard))], false),
        ([.consentRecorded(.verbal), .patientIdentified(.lookupByDemographics)], true),
        ([.consentRecorded(.verbal), .patientIdentified(.lookupByDemographics), .fetchDeferred(.noNetwork)], true),
        ([.consentRecorded(.verbal), .patientIdentified(.lookupByDemographics), .summaryShown(complete: true)], false),
    ])
    func closingFromEveryOpenPhase(before: [IncidentEvent], fetchRunning: Bool) throws {
        var machine = IncidentMachine()
        _ = run(before, on: &machine)
        let effects = try machine.handle(.closedByCrew)
        let expected: [IncidentEffect] =
            [.audit(.closedByCrew)] + (fetchRunning ? [.cancelFetch] : []) + [.shred(.closedByCrew)]
        #expect(effects == expected)
        #expect(machine.phase == .closed)
        #expect(machine.closure == .closedByCrew)
    }

    @Test func consentExpiringClosesTheIncident() throws {
        var machine = IncidentMachine()
        _ = run([.consentRecorded(.verbal), .patientIdentified(.card(.individualNumberCard))], on: &machine)
        _ = try machine.handle(.fetchDeferred(.noNetwork))
        let effects = try machine.handle(.consentExpired)
        #expect(effects == [.audit(.consentExpired), .cancelFetch, .shred(.consentExpired)])
        #expect(machine.closure == .consentExpired)
    }

    /// Closed is terminal, and an event out of place changes nothing.
    @Test func eventsThatDoNotApplyAreRefusedAndChangeNothing() throws {
        var machine = IncidentMachine()
        let refused: [IncidentEvent] = [
            .retryDue, .summaryShown(complete: true), .fetchDeferred(.noNetwork), .authenticationRefused(.notFound),
            .consentExpired,
        ]
        for event in refused {
            let before = machine
            #expect(throws: IncidentTransitionError.notApplicable(phase: .created, event: event)) {
                try machine.handle(event)
            }
            #expect(machine == before)
        }
        _ = run([.consentRecorded(.verbal)], on: &machine)
        #expect(throws: IncidentTransitionError.self) { try machine.handle(.consentRecorded(.refused)) }
        #expect(machine.consent == .verbal, "consent is recorded once")
        _ = try machine.handle(.closedByCrew)
        for event in [IncidentEvent.closedByCrew, .consentRecorded(.verbal), .patientIdentified(.lookupByInsurance)] {
            #expect(throws: IncidentTransitionError.notApplicable(phase: .closed, event: event)) {
                try machine.handle(event)
            }
        }
    }

    @Test func errorsNameThePhaseAndTheEventOnly() {
        let error = IncidentTransitionError.notApplicable(phase: .summary, event: .consentRecorded(.verbal))
        #expect(error.description.contains("consent-recorded does not apply to an incident that is summary"))
    }

    @Test func retryScheduleDoublesUpToItsMaximum() {
        let schedule = RetrySchedule(initial: .milliseconds(500), maximum: .seconds(3))
        #expect(
            (1...6).map { schedule.delay(afterAttempt: $0) } == [
                .milliseconds(500), .seconds(1), .seconds(2), .seconds(3), .seconds(3), .seconds(3),
            ]
        )
        #expect(schedule.delay(afterAttempt: 0) == .milliseconds(500))
        #expect(RetrySchedule().delay(afterAttempt: 1_000_000) == .seconds(60), "no overflow on a long outage")
    }
}
