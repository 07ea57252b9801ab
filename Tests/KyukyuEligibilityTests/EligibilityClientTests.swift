import Foundation
import KyukyuOnshi
import Logging
import Testing

@testable import KyukyuEligibility

let certificate: [UInt8] = Array("not a real certificate: the scripted onshi does not parse it".utf8)

func client(
    _ transport: ScriptedTransport,
    hedge: Duration? = nil,
    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20)),
    breaker: CircuitBreaker = CircuitBreaker(failureThreshold: 50)
) -> EligibilityClient {
    EligibilityClient(
        transport: transport,
        configuration: EligibilityClientConfiguration(retry: retry, hedgeAfter: hedge, maxCategoryBytes: 64 * 1024),
        breaker: breaker,
        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    )
}

@Suite("Eligibility client")
struct EligibilityClientTests {
    @Test func fetchesEveryCategoryInParallel() async throws {
        let transport = Fixture.onshi { category, _ in
            try await Task.sleep(for: .milliseconds(100))
            return category == .visits ? Fixture.visits(3) : Fixture.empty(category)
        }
        let fetch = client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(5))
        )
        let snapshot = await fetch.snapshotAtDeadline()
        #expect(snapshot.isComplete)
        #expect(snapshot.session?.token == "tok-1")
        guard case .ok(.visits(let visits), _) = snapshot.categories[.visits] else {
            Issue.record("visits: \(String(describing: snapshot.categories[.visits]))")
            return
        }
        #expect(visits.count == 3)
        #expect(
            snapshot.categories[.medications] == .empty(elapsed: .zero)
                || snapshot.categories[.medications]?.label == "empty"
        )
        #expect(transport.maxInFlight == OnshiCategory.allCases.count, "all nine categories were in flight at once")
    }

    @Test func theOverallDeadlineHoldsAndLateCategoriesArriveAsUpdates() async throws {
        let transport = Fixture.onshi { category, _ in
            if category == .medications { try await Task.sleep(for: .seconds(8)) }
            return Fixture.empty(category)
        }
        // Generous margins: the other suites load both cores while this one runs.
        let fetch = client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(4), perCategory: .seconds(15))
        )
        let snapshot = await fetch.snapshotAtDeadline()
        #expect(!snapshot.isComplete, "the snapshot did not wait for the slow category")
        #expect(snapshot.categories[.medications] == .pending)
        #expect(snapshot.categories[.visits]?.label == "empty")
        var late: [OnshiCategory] = []
        for await update in fetch.updates {
            if case .category(let category, let status) = update, status.isFinal, category == .medications {
                late.append(category)
            }
        }
        #expect(late == [.medications])
        #expect((await fetch.snapshot()).isComplete)
    }

    @Test func aStalledCategoryTimesOutAtItsDeadlineWithoutHoldingTheOthers() async throws {
        let transport = Fixture.onshi { category, _ in
            if category == .checkups { try await Task.sleep(for: .seconds(30)) }
            return Fixture.empty(category)
        }
        let start = ContinuousClock.now
        let final = await client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .milliseconds(200), perCategory: .milliseconds(400))
        ).completion()
        #expect(ContinuousClock.now - start < .seconds(20), "far less than the 30 s stall")
        #expect(final.categories[.checkups]?.label == "timed-out")
        #expect(final.categories.values.filter { $0.label == "empty" }.count == 8)
    }

    @Test func transientFailuresAreRetriedWithBackoffAndReported() async throws {
        let transport = Fixture.onshi { category, attempt in
            if category == .diagnoses, attempt < 3 { return OnshiHTTPResponse(status: 503, body: []) }
            return Fixture.empty(category)
        }
        let fetch = client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.diagnoses],
            deadlines: FetchDeadlines(overall: .seconds(3))
        )
        var sawRetrying = false
        for await update in fetch.updates {
            if case .category(.diagnoses, .retrying) = update { sawRetrying = true }
        }
        #expect(sawRetrying)
        #expect((await fetch.snapshot()).categories[.diagnoses]?.label == "empty")
        #expect(transport.count("/diagnoses") == 3)
    }

    @Test func retriesStopAtTheLimitWithAReasonTheCrewCanActOn() async throws {
        let transport = Fixture.onshi { _, _ in OnshiHTTPResponse(status: 500, body: []) }
        let final = await client(transport).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.surgery],
            deadlines: FetchDeadlines(overall: .seconds(3))
        ).completion()
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
        guard case .failed(let code, _, _) = final.categories[.treatment] else {
            Issue.record("\(String(describing: final.categories[.treatment]))")
            return
        }
        #expect(code == .rateLimited)
        #expect(transport.count("/treatment") == 1, "a 30 s Retry-After does not fit a 600 ms deadline")
    }

    @Test func aHedgedRequestWinsTheTail() async throws {
        let transport = Fixture.onshi { category, attempt in
            if attempt == 1 { try await Task.sleep(for: .seconds(10)) }
            return Fixture.empty(category)
        }
        let final = await client(transport, hedge: .milliseconds(50)).fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "crew-A1",
            consent: .verbal,
            categories: [.allergies],
            deadlines: FetchDeadlines(overall: .seconds(2))
        ).completion()
        // Without the hedge the first attempt (10 s) would have timed out at the 4 s category deadline.
        #expect(final.categories[.allergies]?.label == "empty")
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
            if request.path.hasSuffix("/nonces") {
                return OnshiHTTPResponse(
                    status: 200,
                    body: OnshiXML.encode(
                        NonceResponse(
                            header: Fixture.header,
                            result: .completed,
                            nonceID: "n-1",
                            nonce: nonce,
                            expiresAt: nil
                        )
                    )
                )
            }
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
            consent: .exception,
            deadline: .now + .seconds(2)
        )
        #expect(session.token == "tok-1")
    }
}

@Suite("Circuit breaker and retry policy")
struct ResilienceTests {
    @Test func opensAfterTheThresholdAndLetsOneProbeThrough() {
        let breaker = CircuitBreaker(failureThreshold: 3, openDuration: .seconds(10))
        let now = ContinuousClock.now
        for _ in 0..<2 { breaker.record(success: false, now: now) }
        #expect(breaker.permit(now: now) == nil)
        breaker.record(success: false, now: now)
        #expect(breaker.permit(now: now + .seconds(1)) != nil, "open: fail fast")
        #expect(breaker.permit(now: now + .seconds(11)) == nil, "half-open: one probe")
        #expect(breaker.permit(now: now + .seconds(11)) != nil, "only one probe")
        breaker.record(success: true, now: now + .seconds(12))
        #expect(breaker.current == .closed(failures: 0))
    }

    @Test func anOpenBreakerFailsFastWithoutCallingOnshi() async throws {
        let breaker = CircuitBreaker(failureThreshold: 1, openDuration: .seconds(60))
        breaker.record(success: false)
        let transport = Fixture.onshi()
        let final = await client(transport, breaker: breaker).fetch(
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
