import Foundation
import KyukyuCard
public import KyukyuDomain
public import KyukyuEligibility
import KyukyuEligibilitySim
public import KyukyuOnshi
public import KyukyuWorkflow
public import Synchronization

/// An in-memory onshi for unit tests of the workflow and the gateway: a session for any certificate or lookup,
/// the categories from the stub's synthetic patients, and switches for the field's failures (no network, a
/// refusal, a stall). The real stub (``EligibilitySimulator``) serves the tests through the real parts.
public final class InMemoryOnshi: OnshiTransport {
    /// How it answers.
    public enum Mode: Sendable {
        /// Normally.
        case answer
        /// No network: every request fails before it leaves.
        case unreachable
        /// Authentication is refused with this onshi result code.
        case refuse(String)
        /// Categories wait until ``release()``.
        case stallCategories
        /// Sessions open, but every category request fails before it leaves (the network went mid-fetch).
        case categoriesUnreachable
    }
    /// The synthetic patient every session opens.
    public let patient: Int
    /// The day records are generated for.
    public let today: OnshiDate
    /// The assurance of every authentication request, in order (`visual`, `pin`; lookups are not listed).
    public var assurances: [String] { assuranceLog.withLock { $0 } }
    private let assuranceLog = Mutex<[String]>([])
    private let state = Mutex<(mode: Mode, sessions: Int, waiters: [CheckedContinuation<Void, Never>])>(
        (.answer, 0, [])
    )

    /// How long the consent it grants covers the incident.
    public let consentLifetime: TimeInterval

    /// An onshi answering for synthetic patient `patient`, granting consent for `consentLifetime`.
    public init(
        patient: Int = 1,
        today: OnshiDate = OnshiDate(japanDayOf: Date()),
        consentLifetime: TimeInterval = 86_400
    ) {
        self.patient = patient
        self.today = today
        self.consentLifetime = consentLifetime
    }

    /// Switches how it answers.
    public func set(_ mode: Mode) { state.withLock { $0.mode = mode } }
    /// Sessions opened (viewings recorded).
    public var sessions: Int { state.withLock { $0.sessions } }
    /// Lets stalled categories answer, and answers normally from now on.
    public func release() {
        let waiters = state.withLock { state in
            state.mode = .answer
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Answers one request.
    public func exchange(_ request: OnshiHTTPRequest, maxBodyBytes: Int) async throws -> OnshiHTTPResponse {
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
        if request.method == .post, request.path.hasSuffix("/nonces") {
            let response = NonceResponse(
                header: header(.completed),
                result: .completed,
                nonceID: "test-nonce",
                nonce: Array(repeating: 0x42, count: 32),
                expiresAt: Date().addingTimeInterval(60)
            )
            return OnshiHTTPResponse(status: 200, body: OnshiXML.encode(response))
        }
        if request.method == .post, request.path.hasSuffix("/sessions"),
            let authentication = try? OnshiXML.decode(AuthenticationRequest.self, from: request.body)
        {
            assuranceLog.withLock { $0.append(authentication.assurance.rawValue) }
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
                availableUntil: Date().addingTimeInterval(consentLifetime)
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
        if case .categoriesUnreachable = mode, request.method == .get {
            throw EligibilityError.unreachable("no network (test)")
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

    /// Nothing to warm.
    public func prewarm(connections: Int) async {}
}

/// A card on a fake reader for unit tests: its token type, PIN and tries, and whether it stays on the reader. Its
/// PIN guard behaves as the card module's does (tries asked first, the last try only when confirmed).
public final class FakeCard: PatientCard {
    /// The card's state.
    public struct State: Sendable {
        /// The credential.
        public var type: TokenType
        /// The right PIN.
        public var pin = "1234"
        /// Tries left.
        public var tries = 3
        /// Whether it is on the reader.
        public var present = true
        /// VERIFY commands received.
        public var verifications = 0
        /// Sessions opened.
        public var sessions = 0
        /// Signatures made (PIN mode).
        public var signatures = 0
    }
    /// The card's state.
    public let state: Mutex<State>

    /// A card of `type` with `tries` PIN tries left.
    public init(_ type: TokenType = .individualNumberCard, tries: Int = 3) {
        state = Mutex(State(type: type, tries: tries))
    }

    /// Runs `body` on the card.
    public func withCard<T: Sendable>(_ body: @Sendable (any CardAccess) async throws -> T) async throws -> T {
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
        func signWithAuthenticationKey(sha256 digest: [UInt8]) async throws -> [UInt8] {
            try present()
            card.state.withLock { $0.signatures += 1 }
            return Array(repeating: 0x5A, count: 256)
        }
    }
}
