import Foundation
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuVault
import KyukyuWorkflow
import Logging
import Synchronization

@testable import KyukyuCard
@testable import KyukyuEligibility

/// An in-memory onshi for the workflow's unit tests: sessions for any certificate or lookup, the categories from
/// the stub's synthetic patients, and switches for the field's failures (no network, a refusal, a stall).
final class InMemoryOnshi: OnshiTransport {
    enum Mode: Sendable {
        case answer
        case unreachable
        case refuse(String)
        /// Categories wait until `release()`.
        case stallCategories
    }
    let patient: Int
    let today: OnshiDate
    private let state = Mutex<(mode: Mode, sessions: Int, waiters: [CheckedContinuation<Void, Never>])>((.answer, 0, []))

    init(patient: Int = 1, today: OnshiDate = OnshiDate(japanDayOf: Date())) {
        self.patient = patient
        self.today = today
    }

    func set(_ mode: Mode) { state.withLock { $0.mode = mode } }
    /// Sessions opened (viewings recorded).
    var sessions: Int { state.withLock { $0.sessions } }
    func release() {
        let waiters = state.withLock { state in
            state.mode = .answer
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func exchange(_ request: OnshiHTTPRequest, maxBodyBytes: Int) async throws -> OnshiHTTPResponse {
        let mode = state.withLock { $0.mode }
        if case .unreachable = mode { throw EligibilityError.unreachable("no network (test)") }
        let header = { (result: ProcessingResult) in
            MessageHeader(
                processedAt: Date(),
                medicalInstitutionCode: "9999999999",
                resultSegment: result.status == .completed ? .success : .error,
                errorCode: result.status == .completed ? nil : result.code
            )
        }
        if request.method == .post {
            if case .refuse(let code) = mode {
                let result = ProcessingResult.failed(code, "refused (test)")
                return OnshiHTTPResponse(
                    status: 200,
                    body: OnshiXML.encode(SessionResponse(header: header(result), result: result))
                )
            }
            state.withLock { $0.sessions += 1 }
            let consent = ConsentFlags(
                basis: .verbal,
                medication: true,
                diagnosis: true,
                surgery: true,
                checkup: true,
                allergy: true,
                availableUntil: Date().addingTimeInterval(86_400)
            )
            let response = SessionResponse(
                header: header(.completed),
                result: .completed,
                sessionToken: "test-session",
                sessionExpiresAt: Date().addingTimeInterval(3600),
                qualificationValidity: 1,
                consent: consent
            )
            return OnshiHTTPResponse(status: 200, body: OnshiXML.encode(response))
        }
        if case .stallCategories = mode {
            await withCheckedContinuation { continuation in
                let stalled = state.withLock { state -> Bool in
                    guard case .stallCategories = state.mode else { return false }
                    state.waiters.append(continuation)
                    return true
                }
                if !stalled { continuation.resume() }
            }
        }
        guard let category = request.path.split(separator: "/").last.flatMap({ MedicalCategory(rawValue: String($0)) })
        else { return OnshiHTTPResponse(status: 404, body: []) }
        let records = SyntheticPatient(number: patient, today: today).records(category)
        let result =
            records.count == 0 ? ProcessingResult(status: .completed, code: OnshiResultCode.noRecords) : .completed
        let response = CategoryResponse(header: header(result), result: result, category: category, records: records)
        return OnshiHTTPResponse(status: 200, body: OnshiXML.encode(response))
    }

    func prewarm(connections: Int) async {}
}

/// A card on a fake reader: its token type, PIN and tries, and whether it stays on the reader.
final class FakeCard: PatientCard {
    struct State: Sendable {
        var type: TokenType
        var pin = "1234"
        var tries = 3
        var present = true
        var verifications = 0
        var sessions = 0
    }
    let state: Mutex<State>

    init(_ type: TokenType = .individualNumberCard, tries: Int = 3) {
        state = Mutex(State(type: type, tries: tries))
    }

    func withCard<T: Sendable>(_ body: @Sendable (any CardAccess) async throws -> T) async throws -> T {
        state.withLock { $0.sessions += 1 }
        return try await body(Access(card: self))
    }

    struct Access: CardAccess {
        let card: FakeCard

        func present() throws {
            guard card.state.withLock({ $0.present }) else {
                throw CardError.cardRemoved()
            }
        }
        func tokenType() async throws -> TokenType {
            try present()
            return card.state.withLock { $0.type }
        }
        func triesLeft() async throws -> Int {
            try present()
            return card.state.withLock { $0.tries }
        }
        func verify(pin: String, confirmLastTry: Bool) async throws {
            try present()
            // The card module's guard, as CardSession.verify applies it.
            let tries = card.state.withLock { $0.tries }
            if tries == 0 { throw CardError.pinLocked() }
            if tries == 1 && !confirmLastTry { throw CardError.lastTryNeedsConfirmation() }
            let outcome = card.state.withLock { state -> Int? in
                state.verifications += 1
                if pin == state.pin {
                    state.tries = 3
                    return nil
                }
                state.tries -= 1
                return state.tries
            }
            if let left = outcome {
                if left == 0 { throw CardError.pinLocked() }
                throw CardError.wrongPIN(triesLeft: left)
            }
        }
        func authenticationCertificate() async throws -> [UInt8] {
            try present()
            return Array("synthetic certificate (the in-memory onshi does not parse it)".utf8)
        }
    }
}

let silent = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The effects of one test: the in-memory store, an eligibility client on the in-memory onshi.
struct Harness {
    let store = InMemoryIncidentStore()
    let onshi: InMemoryOnshi
    let effects: WorkflowEffects
    let configuration: WorkflowConfiguration
    let crew = CrewID("TEST-A1")!

    init(onshi: InMemoryOnshi = InMemoryOnshi(), clock: some Clock<Duration> = ContinuousClock()) {
        self.onshi = onshi
        let client = EligibilityClient(
            transport: onshi,
            configuration: EligibilityClientConfiguration(hedgeAfter: nil),
            breaker: CircuitBreaker(failureThreshold: 50),
            logger: silent
        )
        effects = WorkflowEffects(store: store, fetching: client, clock: WorkflowClock(clock: clock))
        configuration = WorkflowConfiguration(
            terminalID: "ambulance-test",
            deadlines: FetchDeadlines(overall: .seconds(20), perCategory: .seconds(20))
        )
    }

    func desk() -> IncidentDesk { IncidentDesk(effects: effects, configuration: configuration, logger: silent) }
}

/// Waits for the first update of `runner` that satisfies `condition`.
func waitFor(
    _ runner: IncidentRunner,
    _ condition: @Sendable (IncidentSnapshot) -> Bool
) async -> IncidentSnapshot? {
    for await snapshot in await runner.updates() where condition(snapshot) { return snapshot }
    return nil
}
