import Foundation
import KyukyuDomain
import KyukyuOnshi
import Logging
import Testing

@testable import KyukyuEligibility

let certificate: [UInt8] = Array("not a real certificate: the scripted onshi does not parse it".utf8)

/// A client on `clock` (virtual time: nothing in these tests sleeps in real time).
func client(
    _ transport: ScriptedTransport,
    clock: VirtualClock = VirtualClock(),
    hedge: Duration? = nil,
    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20)),
    breaker: CircuitBreaker? = nil
) -> EligibilityClient {
    EligibilityClient(
        transport: transport,
        configuration: EligibilityClientConfiguration(retry: retry, hedgeAfter: hedge, maxCategoryBytes: 64 * 1024),
        breaker: breaker ?? CircuitBreaker(failureThreshold: 50, clock: clock),
        clock: clock,
        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    )
}

/// Waits until `fetch` has settled `count` categories, and returns their statuses.
func settled(_ count: Int, in iterator: inout AsyncStream<FetchUpdate>.AsyncIterator) async
    -> [MedicalCategory: CategoryStatus]
{
    var settled: [MedicalCategory: CategoryStatus] = [:]
    while settled.count < count, let update = await iterator.next() {
        if case .category(let category, let status) = update, status.isFinal { settled[category] = status }
    }
    return settled
}

@Suite("Eligibility client", .timeLimit(.minutes(1)))
struct EligibilityClientTests {
    @Test func fetchesEveryCategoryInParallel() async throws {
        // The categories answer only once all nine are in flight together: a serial client never gets there.
        let gate = Gate()
        let transport = Fixture.onshi { category, _ in
            await gate.wait()
            return category == .visits ? Fixture.visits(3) : Fixture.empty(category)
        }
        let fetch = client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(5))
        )
        await transport.inFlight(atLeast: MedicalCategory.allCases.count)
        gate.open()
        let snapshot = await fetch.completion()
        #expect(snapshot.isComplete)
        #expect(snapshot.session?.token == "tok-1")
        guard case .ok(.visits(let visits), _) = snapshot.categories[.visits] else {
            Issue.record("visits: \(String(describing: snapshot.categories[.visits]))")
            return
        }
        #expect(visits.count == 3)
        #expect(snapshot.categories[.medications]?.label == "empty")
        #expect(transport.maxInFlight == MedicalCategory.allCases.count, "all nine categories were in flight at once")
    }

    @Test func theOverallDeadlineHoldsAndLateCategoriesArriveAsUpdates() async throws {
        let clock = VirtualClock()
        let transport = Fixture.onshi { category, _ in
            if category == .medications { try await clock.sleep(until: clock.at(.seconds(8))) }
            return Fixture.empty(category)
        }
        let fetch = client(transport, clock: clock).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(4), perCategory: .seconds(15))
        )
        var updates = fetch.updates.makeAsyncIterator()
        let early = await settled(8, in: &updates)
        #expect(early[.medications] == nil)
        async let atDeadline = fetch.snapshotAtDeadline()
        await clock.advance(to: .seconds(4))
        let snapshot = await atDeadline
        #expect(snapshot.elapsed == .seconds(4), "the snapshot comes at the deadline, in virtual time")
        #expect(!snapshot.isComplete, "the snapshot did not wait for the slow category")
        #expect(snapshot.categories[.medications] == .pending)
        #expect(snapshot.categories[.visits]?.label == "empty")
        await clock.advance(to: .seconds(8))
        let late = await settled(1, in: &updates)
        guard case .empty(let elapsed)? = late[.medications] else {
            Issue.record("medications: \(late)")
            return
        }
        #expect(elapsed == .seconds(8))
        #expect(await updates.next() == nil, "the stream finishes once everything settled")
        #expect((await fetch.snapshot()).isComplete)
    }

    @Test func aStalledCategoryTimesOutAtItsDeadlineWithoutHoldingTheOthers() async throws {
        let clock = VirtualClock()
        let transport = Fixture.onshi { category, _ in
            if category == .checkups { try await clock.sleep(until: clock.at(.seconds(30))) }
            return Fixture.empty(category)
        }
        let fetch = client(transport, clock: clock).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .milliseconds(200), perCategory: .milliseconds(400))
        )
        var updates = fetch.updates.makeAsyncIterator()
        _ = await settled(8, in: &updates)
        await clock.advance(to: .milliseconds(400))
        let final = await fetch.completion()
        #expect(final.categories[.checkups] == .timedOut(after: .milliseconds(400)), "exactly at its deadline")
        #expect(final.categories.values.filter { $0.label == "empty" }.count == 8)
    }

    @Test func transientFailuresAreRetriedWithBackoffAndReported() async throws {
        let clock = VirtualClock()
        let transport = Fixture.onshi { category, attempt in
            if category == .diagnoses, attempt < 3 { return OnshiHTTPResponse(status: 503, body: []) }
            return Fixture.empty(category)
        }
        let fetch = client(transport, clock: clock).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.diagnoses],
            deadlines: FetchDeadlines(overall: .seconds(3))
        )
        // Two backoffs, each at most 20 ms of virtual time: nothing happens until the clock moves.
        for retry in 1...2 {
            await clock.sleeper(within: .milliseconds(20))
            #expect(transport.count("/diagnoses") == retry)
            await clock.advanceToNextTimer(within: .milliseconds(20))
        }
        var sawRetrying = false
        for await update in fetch.updates {
            if case .category(.diagnoses, .retrying) = update { sawRetrying = true }
        }
        #expect(sawRetrying)
        #expect((await fetch.snapshot()).categories[.diagnoses]?.label == "empty")
        #expect(transport.count("/diagnoses") == 3)
    }

    @Test func retriesStopAtTheLimitWithAReasonTheCrewCanActOn() async throws {
        let clock = VirtualClock()
        let transport = Fixture.onshi { _, _ in OnshiHTTPResponse(status: 500, body: []) }
        let fetch = client(transport, clock: clock).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.surgery],
            deadlines: FetchDeadlines(overall: .seconds(3))
        )
        for _ in 1...2 { await clock.advanceToNextTimer(within: .milliseconds(20)) }
        let final = await fetch.completion()
        guard case .failed(let code, let reason, _) = final.categories[.surgery] else {
            Issue.record("\(String(describing: final.categories[.surgery]))")
            return
        }
        #expect(code == .serverError)
        #expect(reason.contains("HTTP 500"))
        #expect(transport.count("/surgery") == 3)
    }

    @Test func rateLimitHonoursRetryAfterOnlyWithinTheDeadline() async throws {
        let transport = Fixture.onshi { _, _ in OnshiHTTPResponse(status: 429, retryAfter: .seconds(30), body: []) }
        let final = await client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.treatment],
            deadlines: FetchDeadlines(overall: .milliseconds(300))
        ).completion()
        guard case .failed(let code, _, let elapsed) = final.categories[.treatment] else {
            Issue.record("\(String(describing: final.categories[.treatment]))")
            return
        }
        #expect(code == .rateLimited)
        #expect(elapsed == .zero, "no virtual time passed: it did not wait")
        #expect(transport.count("/treatment") == 1, "a 30 s Retry-After does not fit a 600 ms deadline")
    }

    @Test func aHedgedRequestWinsTheTail() async throws {
        let clock = VirtualClock()
        let transport = Fixture.onshi { category, attempt in
            if attempt == 1 { try await clock.sleep(until: clock.at(.seconds(10))) }
            return Fixture.empty(category)
        }
        let fetch = client(transport, clock: clock, hedge: .milliseconds(50)).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.allergies],
            deadlines: FetchDeadlines(overall: .seconds(2))
        )
        await clock.advanceToNextTimer(within: .milliseconds(50))
        let final = await fetch.completion()
        // Without the hedge the first attempt (10 s) would have timed out at the 4 s category deadline.
        #expect(final.categories[.allergies] == .empty(elapsed: .milliseconds(50)))
        #expect(transport.count("/allergies") == 2)
    }

    @Test func authenticationIsNotRetriedAfterItReachedOnshi() async throws {
        let transport = ScriptedTransport { _, _ in OnshiHTTPResponse(status: 500, body: []) }
        let final = await client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(2))
        ).completion()
        #expect(final.authenticationFailure?.code == .serverError)
        #expect(transport.count("/sessions") == 1)
        #expect(transport.requests.count == 1, "no category is requested without a session")
    }

    @Test(arguments: ["/sessions", "/nonces", "/lookup"])
    func authenticationIsNotRetriedAfterADrop(path: String) async throws {
        // The connection broke after the request was written: onshi may have recorded a viewing or consumed
        // the nonce, so a second attempt would record another viewing or be refused.
        let transport = ScriptedTransport { request, _ in
            if request.path.hasSuffix("/nonces") && path != "/nonces" { return Fixture.nonce(Array(0..<32)) }
            throw EligibilityError.connectionLost("the connection to onshi broke (Connection reset by peer)")
        }
        let identity: PatientIdentity
        switch path {
        case "/nonces", "/sessions": identity = .pin(certificateDER: certificate, signNonce: { $0 })
        default: identity = .lookup(.insurance(insurerNumber: "06130000", symbol: "1", number: "2"))
        }
        let final = await client(transport).fetch(
            identity,
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(2))
        ).completion()
        #expect(final.authenticationFailure?.code == .connectionLost)
        #expect(transport.count(path) == 1)
    }

    @Test func authenticationThatNeverLeftIsTriedAgain() async throws {
        let clock = VirtualClock()
        let transport = ScriptedTransport { _, attempt in
            if attempt == 1 { throw EligibilityError.unreachable("no connection to onshi (Connection refused)") }
            return Fixture.session()
        }
        let fetch = client(transport, clock: clock).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [],
            deadlines: FetchDeadlines(overall: .seconds(2))
        )
        await clock.advanceToNextTimer(within: .milliseconds(20))
        let final = await fetch.completion()
        #expect(final.session?.token == "tok-1")
        #expect(transport.count("/sessions") == 2)
    }

    @Test(arguments: [
        (OnshiResultCode.consentRefused, EligibilityError.Code.consentRefused),
        (OnshiResultCode.certificateExpired, .certificateProblem),
        (OnshiResultCode.certificateSuspended, .certificateProblem),
        (OnshiResultCode.certificateRevoked, .certificateProblem),
        (OnshiResultCode.patientNotFound, .notFound),
        (OnshiResultCode.signatureInvalid, .rejected),
    ])
    func refusalsBecomeTheirOwnErrors(result: String, expected: EligibilityError.Code) async throws {
        let transport = ScriptedTransport { _, _ in Fixture.failedSession(result) }
        let final = await client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(2))
        ).completion()
        #expect(final.authenticationFailure?.code == expected)
        #expect(final.categories.values.allSatisfy { $0.label == "failed" })
    }

    @Test func malformedAndOversizedAnswersAreClearFailures() async throws {
        let transport = Fixture.onshi { category, _ in
            switch category {
            case .visits:
                return OnshiHTTPResponse(status: 200, body: Array("<CategoryResponse version=\"1\"><Mess".utf8))
            case .medications: return OnshiHTTPResponse(status: 200, body: [UInt8](repeating: 0x20, count: 200_000))
            default: return OnshiHTTPResponse(status: 200, body: Array("<Other/>".utf8))
            }
        }
        let final = await client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.visits, .medications, .checkups],
            deadlines: FetchDeadlines(overall: .seconds(2))
        ).completion()
        guard case .failed(let visitsCode, _, _) = final.categories[.visits],
            case .failed(let medsCode, _, _) = final.categories[.medications],
            case .failed(let checkupsCode, _, _) = final.categories[.checkups]
        else {
            Issue.record("\(final.categories)")
            return
        }
        #expect(visitsCode == .malformedResponse)
        #expect(medsCode == .responseTooLarge)
        #expect(checkupsCode == .malformedResponse)
    }

    @Test func pinModeSignsTheNonceOnshiIssued() async throws {
        let nonce: [UInt8] = Array(0..<32)
        let transport = ScriptedTransport { request, _ in
            if request.path.hasSuffix("/nonces") { return Fixture.nonce(nonce) }
            if request.path.hasSuffix("/sessions") {
                let message = try OnshiXML.decode(AuthenticationRequest.self, from: request.body)
                guard message.nonceID == "n-1", message.signature == nonce.reversed(), message.assurance == .pin else {
                    return Fixture.failedSession(OnshiResultCode.signatureInvalid)
                }
                return Fixture.session()
            }
            return Fixture.empty(.qualification)
        }
        let session = try await client(transport).authenticate(
            .pin(certificateDER: certificate, signNonce: { $0.reversed() }),
            crewID: "crew-A1",
            consent: .lifeOrBodyException,
            timeout: .seconds(2)
        )
        #expect(session.token == "tok-1")
    }
}

/// Stands in for `KyukyuCard.CardError` (this target does not link the card client).
struct FakeCardError: Error, Equatable {
    var code: String
}

@Suite("PIN-mode signing", .timeLimit(.minutes(1)))
struct SigningTests {
    static func transport() -> ScriptedTransport {
        ScriptedTransport { request, _ in
            if request.path.hasSuffix("/nonces") { return Fixture.nonce(Array(0..<32)) }
            if request.path.hasSuffix("/sessions") { return Fixture.session() }
            return Fixture.empty(.qualification)
        }
    }

    @Test func signingRunsInsideTheFetchDeadlineEvenIfTheSignerIgnoresCancellation() async throws {
        // An iPhone waiting for its holder's approval, and a card read that does not stop when cancelled.
        let clock = VirtualClock()
        let approval = Gate()
        let signing = Gate()
        let transport = Self.transport()
        let fetch = client(transport, clock: clock).fetch(
            .pin(
                certificateDER: certificate,
                signNonce: { nonce in
                    signing.open()
                    await approval.wait()
                    return nonce
                }
            ),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(2))
        )
        await signing.wait()
        await clock.advance(to: .seconds(2))
        let final = await fetch.completion()
        approval.open()
        #expect(final.authenticationFailure?.code == .timedOut)
        #expect(final.authenticationFailure?.reason.contains("sign") == true)
        #expect(final.elapsed == .seconds(2))
        #expect(transport.count("/sessions") == 0, "nothing was sent without a signature")
    }

    @Test func aCardErrorDuringSigningIsReportedAsItself() async throws {
        let transport = Self.transport()
        let final = await client(transport).fetch(
            .pin(certificateDER: certificate, signNonce: { _ in throw FakeCardError(code: "cardRemoved") }),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(2))
        ).completion()
        let error = try #require(final.authenticationError)
        #expect(error.code == .signingFailed, "not cancelled: \(error)")
        #expect(error.underlying as? FakeCardError == FakeCardError(code: "cardRemoved"))
        #expect(transport.count("/sessions") == 0)
    }
}

@Suite("Cancellation, hedges and the breaker", .timeLimit(.minutes(1)))
struct CancellationTests {
    static let session = EligibilitySession(token: "tok-1", qualificationValidity: 1, consent: nil)

    @Test func twentyHedgeWinsInARowLeaveTheBreakerClosed() async throws {
        let clock = VirtualClock()
        let breaker = CircuitBreaker(failureThreshold: 3, openDuration: .seconds(10), clock: clock)
        // Every first attempt stalls; every hedge answers at once and wins; every first attempt is cancelled.
        let transport = Fixture.onshi { category, attempt in
            if attempt % 2 == 1 { try await clock.sleep(until: clock.at(.seconds(3600))) }
            return Fixture.empty(category)
        }
        let onshi = client(transport, clock: clock, hedge: .milliseconds(50), breaker: breaker)
        for round in 1...20 {
            let call = Task { try await onshi.category(.allergies, session: Self.session, timeout: .seconds(2)) }
            await clock.advanceToNextTimer(within: .milliseconds(50))
            let response = try await call.value
            #expect(response.category == .allergies)
            #expect(breaker.current == .closed(failures: 0), "round \(round)")
        }
        #expect(transport.count("/allergies") == 40)
    }

    @Test func aCancelledFetchCountsNothingAgainstOnshiAndSaysCancelled() async throws {
        let clock = VirtualClock()
        let breaker = CircuitBreaker(failureThreshold: 2, openDuration: .seconds(10), clock: clock)
        let transport = Fixture.onshi { category, _ in
            try await clock.sleep(until: clock.at(.seconds(3600)))
            return Fixture.empty(category)
        }
        let fetch = client(transport, clock: clock, breaker: breaker).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(5))
        )
        await transport.inFlight(atLeast: MedicalCategory.allCases.count)
        fetch.cancel()
        let final = await fetch.completion()
        for category in MedicalCategory.allCases {
            #expect(final.categories[category] == .cancelled(after: .zero), "\(category)")
            #expect(final.categories[category]?.label == "cancelled")
        }
        #expect(breaker.current == .closed(failures: 0), "nine cancellations are not nine failures of onshi")
    }

    @Test func afterACancelledProbeTheNextCallCanProbeAgain() async throws {
        let clock = VirtualClock()
        let breaker = CircuitBreaker(failureThreshold: 1, openDuration: .seconds(10), clock: clock)
        let transport = Fixture.onshi { category, attempt in
            switch attempt {
            case 1: return OnshiHTTPResponse(status: 500, body: [])
            case 2: try await clock.sleep(until: clock.at(.seconds(3600)))
            default: break
            }
            return Fixture.empty(category)
        }
        let onshi = client(transport, clock: clock, retry: RetryPolicy(maxAttempts: 1), breaker: breaker)
        await #expect(throws: EligibilityError.serverError(status: 500)) {
            try await onshi.category(.visits, session: Self.session, timeout: .seconds(60))
        }
        #expect(breaker.current == .open(retryIn: .seconds(10)))
        await clock.advance(by: .seconds(10))
        let probe = Task { try await onshi.category(.visits, session: Self.session, timeout: .seconds(60)) }
        await transport.inFlight(atLeast: 1)
        #expect(breaker.current == .halfOpen)
        probe.cancel()
        await #expect(throws: EligibilityError.cancelled()) { try await probe.value }
        #expect(breaker.current == .open(retryIn: .zero), "the cancelled probe handed its slot back")
        let next = try await onshi.category(.visits, session: Self.session, timeout: .seconds(60))
        #expect(next.category == .visits)
        #expect(breaker.current == .closed(failures: 0))
    }

    @Test func aDeadlineIsATimeoutAndCountsAgainstOnshi() async throws {
        let clock = VirtualClock()
        let breaker = CircuitBreaker(failureThreshold: 5, openDuration: .seconds(10), clock: clock)
        let transport = Fixture.onshi { category, _ in
            try await clock.sleep(until: clock.at(.seconds(3600)))
            return Fixture.empty(category)
        }
        let onshi = client(transport, clock: clock, retry: RetryPolicy(maxAttempts: 1), breaker: breaker)
        let call = Task { try await onshi.category(.visits, session: Self.session, timeout: .seconds(1)) }
        await transport.inFlight(atLeast: 1)
        await clock.advance(by: .seconds(1))
        await #expect(throws: EligibilityError.timedOut("")) { try await call.value }
        #expect(breaker.current == .closed(failures: 1))
    }
}

@Suite("Circuit breaker and retry policy")
struct ResilienceTests {
    typealias Machine = CircuitBreaker.Machine

    func at(_ seconds: Int) -> OnshiInstant { OnshiInstant(offset: .seconds(seconds)) }

    @Test func opensAfterTheThresholdAndLetsOneProbeThrough() throws {
        var machine = Machine(failureThreshold: 3, openDuration: .seconds(10))
        for _ in 0..<2 { machine.record(.failure, for: try machine.permit(now: at(0)).get(), now: at(0)) }
        let third = try machine.permit(now: at(0)).get()
        machine.record(.failure, for: third, now: at(0))
        #expect(throws: CircuitBreaker.OpenCircuit(retryIn: .seconds(9))) { try machine.permit(now: at(1)).get() }
        let probe = try machine.permit(now: at(11)).get()
        #expect(probe.probe != nil, "half-open: one probe")
        #expect(throws: CircuitBreaker.OpenCircuit.self) { try machine.permit(now: at(11)).get() }
        machine.record(.success, for: probe, now: at(12))
        #expect(machine.state(now: at(12)) == .closed(failures: 0))
    }

    @Test func aCancellationCountsForNothing() throws {
        var machine = Machine(failureThreshold: 2, openDuration: .seconds(10))
        for _ in 0..<10 { machine.record(.cancelled, for: try machine.permit(now: at(0)).get(), now: at(0)) }
        #expect(machine.state(now: at(0)) == .closed(failures: 0))
        machine.record(.failure, for: try machine.permit(now: at(0)).get(), now: at(0))
        machine.record(.cancelled, for: try machine.permit(now: at(0)).get(), now: at(0))
        #expect(machine.state(now: at(0)) == .closed(failures: 1), "a cancellation neither counts nor resets")
    }

    @Test func aCancelledProbeHandsItsSlotBackButAStaleOneDoesNot() throws {
        var machine = Machine(failureThreshold: 1, openDuration: .seconds(10))
        machine.record(.failure, for: try machine.permit(now: at(0)).get(), now: at(0))
        let first = try machine.permit(now: at(10)).get()
        machine.record(.cancelled, for: first, now: at(10))
        #expect(machine.state(now: at(10)) == .open(retryIn: .zero))
        let second = try machine.permit(now: at(10)).get()
        #expect(second != first)
        machine.record(.cancelled, for: first, now: at(11))
        #expect(machine.state(now: at(11)) == .halfOpen, "the first probe's late cancellation frees nothing")
        machine.record(.failure, for: second, now: at(11))
        #expect(machine.state(now: at(11)) == .open(retryIn: .seconds(10)))
    }

    @Test func anOpenBreakerFailsFastWithoutCallingOnshi() async throws {
        let clock = VirtualClock()
        let breaker = CircuitBreaker(failureThreshold: 1, openDuration: .seconds(60), clock: clock)
        breaker.record(.failure, for: try breaker.permit().get())
        let transport = Fixture.onshi()
        let final = await client(transport, clock: clock, breaker: breaker).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(1))
        ).completion()
        #expect(final.authenticationFailure?.code == .circuitOpen)
        #expect(transport.requests.isEmpty)
    }

    @Test func backoffIsBoundedFullJitter() {
        let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), maxDelay: .milliseconds(300))
        var random = SystemRandomNumberGenerator()
        for attempt in 1...6 {
            let ceiling = min(Duration.milliseconds(300), .milliseconds(100) * (1 << (attempt - 1)))
            for _ in 0..<50 {
                let delay = policy.backoff(afterAttempt: attempt, random: &random)
                #expect(delay >= .zero && delay <= ceiling)
            }
        }
    }
}
