import Foundation
import KyukyuDomain
import KyukyuOnshi
import Logging
public import Metrics
import Synchronization

/// How the patient is identified to onshi.
public enum PatientIdentity: Sendable {
    /// The card's user-authentication certificate; the crew checked the face against the card photo (目視).
    case visualCheck(certificateDER: [UInt8])
    /// The certificate plus a signature by the card over a nonce onshi issued (the patient entered the PIN).
    /// `signNonce` gets the nonce and returns the card's PKCS#1 v1.5 SHA-256 signature over it.
    case pin(certificateDER: [UInt8], signNonce: @Sendable ([UInt8]) async throws -> [UInt8])
    /// No card: the four fields, or the insurer number.
    case lookup(PatientQuery)

    var assurance: String {
        switch self {
        case .visualCheck: return "visual"
        case .pin: return "pin"
        case .lookup: return "lookup"
        }
    }
}

/// An authenticated viewing session with onshi.
public struct EligibilitySession: Sendable, Hashable {
    /// The opaque token for the category requests.
    public var token: String
    /// Qualification validity (1–6) as onshi reports it.
    public var qualificationValidity: Int?
    /// The consent flags and their availability expiry.
    public var consent: ConsentFlags?
}

/// Settings of the eligibility client.
public struct EligibilityClientConfiguration: Sendable {
    /// The medical-institution code of this terminal (the fire HQ's), sent in every header.
    public var institutionCode: String
    /// Retries for idempotent requests.
    public var retry: RetryPolicy
    /// Send a second identical category request when the first has not answered after this long (nil: never).
    public var hedgeAfter: Duration?
    /// The largest answer accepted for one category.
    public var maxCategoryBytes: Int
    /// The largest answer accepted for a session or nonce request.
    public var maxSessionBytes: Int
    /// How much of onshi's answers one fetch may hold at once, all categories together.
    public var memoryBudget: FetchMemoryBudget

    /// Creates a configuration.
    public init(
        institutionCode: String = "9999999999",
        retry: RetryPolicy = RetryPolicy(),
        hedgeAfter: Duration? = .milliseconds(400),
        maxCategoryBytes: Int = 16 * 1_048_576,
        maxSessionBytes: Int = 256 * 1024,
        memoryBudget: FetchMemoryBudget = .default
    ) {
        self.institutionCode = institutionCode
        self.retry = retry
        self.hedgeAfter = hedgeAfter
        self.maxCategoryBytes = maxCategoryBytes
        self.maxSessionBytes = maxSessionBytes
        self.memoryBudget = memoryBudget
    }
}

/// The gateway's client for onshi: authentication (visual, PIN, card-less) and per-category requests with
/// deadlines, bounded retries with jitter for idempotent requests, hedging for the tail, a circuit breaker and
/// size caps. One per process; it is `Sendable` and shared by every fetch.
///
/// The client owns every deadline, as swift-certificates' OCSP policy does: each exchange with the transport,
/// and the card's signature in PIN mode, runs under a private `withTimeout` on the injected clock, and the
/// transport sets none of its own. A deadline that passes is ``EligibilityError/Code/timedOut``; a caller that
/// cancels is ``EligibilityError/Code/cancelled``, which the breaker does not hold against onshi.
public final class EligibilityClient: Sendable {
    /// The transport.
    public let transport: any OnshiTransport
    /// The settings.
    public let configuration: EligibilityClientConfiguration
    /// The breaker for onshi.
    public let breaker: CircuitBreaker
    let clock: OnshiClock
    let logger: Logger
    let metrics: any MetricsFactory

    /// Creates a client.
    /// - Parameters:
    ///   - clock: The clock of every deadline, backoff and hedge delay (a test clock in tests; give the
    ///     `breaker` the same one).
    ///   - metrics: Where ``PatientFetch`` records `kyukyu_fetch_duration_seconds{category,outcome}` and
    ///     `kyukyu_fetch_deadline_misses_total{category}` (the process's swift-metrics backend by default). Their
    ///     labels are the category and the outcome's word, never anything of the patient's.
    public init(
        transport: any OnshiTransport,
        configuration: EligibilityClientConfiguration = .init(),
        breaker: CircuitBreaker = CircuitBreaker(),
        clock: any Clock<Duration> = ContinuousClock(),
        metrics: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.transport = transport
        self.configuration = configuration
        self.breaker = breaker
        self.clock = OnshiClock(clock)
        self.metrics = metrics
        self.logger = logger
    }

    func header() -> MessageHeader {
        MessageHeader(
            processedAt: Date(),
            medicalInstitutionCode: configuration.institutionCode,
            referenceClassification: MessageHeader.emergencyReference,
            resultSegment: .success
        )
    }

    // MARK: Authentication

    /// Authenticates the patient and opens a viewing session, all within `timeout` (the card's signature in PIN
    /// mode included). Never retried once the request may have reached onshi: a nonce is single-use and every
    /// session is a recorded viewing; only a request that provably never left is tried again.
    ///
    /// Throws ``EligibilityError`` only; a card error from `signNonce` comes back as
    /// ``EligibilityError/Code/signingFailed`` with the card's error in ``EligibilityError/underlying``.
    public func authenticate(
        _ identity: PatientIdentity,
        crewID: String,
        consent: ConsentBasis,
        timeout: Duration
    ) async throws -> EligibilitySession {
        try await authenticate(identity, crewID: crewID, consent: consent, deadline: clock.now + timeout)
    }

    func authenticate(
        _ identity: PatientIdentity,
        crewID: String,
        consent: ConsentBasis,
        deadline: OnshiInstant
    ) async throws -> EligibilitySession {
        let response: SessionResponse
        switch identity {
        case .visualCheck(let der):
            let request = AuthenticationRequest(
                header: header(),
                assurance: .visual,
                certificateDER: der,
                crewID: crewID,
                consent: consent,
                nonceID: nil,
                signature: nil
            )
            response = try await post("/onshi/v1/sessions", request, as: SessionResponse.self, deadline: deadline)
        case .pin(let der, let sign):
            let nonce = try await post(
                "/onshi/v1/nonces",
                NonceRequest(header: header(), crewID: crewID),
                as: NonceResponse.self,
                deadline: deadline
            )
            try check(nonce.result)
            guard let nonceID = nonce.nonceID, let bytes = nonce.nonce else {
                throw EligibilityError.malformedResponse("onshi issued no nonce")
            }
            let signature = try await signature(of: bytes, by: sign, deadline: deadline)
            let request = AuthenticationRequest(
                header: header(),
                assurance: .pin,
                certificateDER: der,
                crewID: crewID,
                consent: consent,
                nonceID: nonceID,
                signature: signature
            )
            response = try await post("/onshi/v1/sessions", request, as: SessionResponse.self, deadline: deadline)
        case .lookup(let query):
            let request = LookupRequest(header: header(), query: query, crewID: crewID, consent: consent)
            response = try await post("/onshi/v1/lookup", request, as: SessionResponse.self, deadline: deadline)
        }
        try check(response.result)
        guard let token = response.sessionToken else {
            throw EligibilityError.malformedResponse("onshi accepted the patient but gave no session")
        }
        return EligibilitySession(
            token: token,
            qualificationValidity: response.qualificationValidity,
            consent: response.consent
        )
    }

    /// The card's signature over onshi's nonce, within the deadline (an iPhone waits for the holder's approval
    /// here). The signer's own error comes back as ``EligibilityError/Code/signingFailed`` carrying it.
    func signature(
        of nonce: [UInt8],
        by sign: @escaping @Sendable ([UInt8]) async throws -> [UInt8],
        deadline: OnshiInstant
    ) async throws -> [UInt8] {
        do {
            return try await withTimeout(
                until: deadline,
                on: clock,
                timedOut: .timedOut("the card did not sign onshi's challenge before the deadline")
            ) { try await sign(nonce) }
        } catch let error as EligibilityError where error.code == .timedOut || error.code == .cancelled {
            throw error
        } catch {
            throw EligibilityError.signingFailed(underlying: error)
        }
    }

    /// Turns a failed processing result into the error a paramedic can act on.
    func check(_ result: ProcessingResult) throws {
        guard result.status == .failed else { return }
        let code = result.code
        switch code {
        case OnshiResultCode.consentRefused:
            throw EligibilityError.consentRefused()
        case OnshiResultCode.certificateExpired:
            throw EligibilityError.certificateProblem(
                "the card's certificate has expired (5th birthday after issue); use the card-less lookup",
                result: code
            )
        case OnshiResultCode.certificateNotYetValid:
            throw EligibilityError.certificateProblem("the card's certificate is not valid yet", result: code)
        case OnshiResultCode.certificateRevoked:
            throw EligibilityError.certificateProblem(
                "the card's certificate is revoked; use the card-less lookup",
                result: code
            )
        case OnshiResultCode.certificateSuspended:
            throw EligibilityError.certificateProblem(
                "the phone's certificate is suspended (reported lost); use the card-less lookup",
                result: code
            )
        case OnshiResultCode.certificateUntrusted, OnshiResultCode.certificateUnknownHolder:
            throw EligibilityError.certificateProblem("onshi does not recognise this certificate", result: code)
        case OnshiResultCode.nonceInvalid, OnshiResultCode.signatureInvalid:
            throw EligibilityError.rejected(
                "the card's PIN signature was not accepted; read the card again",
                result: code
            )
        case OnshiResultCode.patientNotFound:
            throw EligibilityError.notFound("no patient matches these details", result: code)
        case OnshiResultCode.patientAmbiguous:
            throw EligibilityError.notFound("several patients match; add the insurer number", result: code)
        case OnshiResultCode.maintenance:
            throw EligibilityError.maintenance(result: code)
        case OnshiResultCode.throttled:
            throw EligibilityError.rateLimited(retryAfter: nil)
        default:
            throw EligibilityError.rejected("onshi refused the request (result \(code))", result: code)
        }
    }

    // MARK: Categories

    /// Fetches one category within `timeout`: retried with jitter while the deadline allows, hedged after
    /// ``EligibilityClientConfiguration/hedgeAfter``. `onRetry` hears of each retry (for the crew's screen).
    /// The answer is held against `account` (the fetch's memory budget; by default one of its own).
    /// Throws ``EligibilityError`` only.
    public func category(
        _ category: MedicalCategory,
        session: EligibilitySession,
        timeout: Duration,
        account: FetchMemoryAccount? = nil,
        onRetry: @Sendable (Int, EligibilityError) -> Void = { _, _ in }
    ) async throws -> CategoryResponse {
        try await self.category(
            category,
            session: session,
            deadline: clock.now + timeout,
            account: account ?? FetchMemoryAccount(budget: configuration.memoryBudget),
            onRetry: onRetry
        )
    }

    func category(
        _ category: MedicalCategory,
        session: EligibilitySession,
        deadline: OnshiInstant,
        account: FetchMemoryAccount,
        onRetry: @Sendable (Int, EligibilityError) -> Void = { _, _ in }
    ) async throws -> CategoryResponse {
        let request = OnshiHTTPRequest(method: .get, path: "/onshi/v1/sessions/\(session.token)/\(category.rawValue)")
        var random = SystemRandomNumberGenerator()
        var attempt = 1
        while true {
            do {
                let response = try await call(
                    request,
                    as: CategoryResponse.self,
                    deadline: deadline,
                    maxBodyBytes: configuration.maxCategoryBytes,
                    account: account,
                    hedged: true
                )
                try check(response.result)
                guard response.category == category else {
                    throw EligibilityError.malformedResponse("onshi answered with another category")
                }
                return response
            } catch let error as EligibilityError {
                guard error.isTransient, attempt < configuration.retry.maxAttempts else { throw error }
                var delay = configuration.retry.backoff(afterAttempt: attempt, random: &random)
                if error.code == .rateLimited, let after = error.retryAfter { delay = max(delay, after) }
                guard clock.now + delay < deadline else { throw error }
                attempt += 1
                logger.debug(
                    "retrying category",
                    metadata: [
                        "kyukyu.onshi.category": "\(category.rawValue)", "kyukyu.onshi.attempt": "\(attempt)",
                        "kyukyu.onshi.error": "\(error.code)",
                    ]
                )
                onRetry(attempt, error)
                try await pause(for: delay)
            }
        }
    }

    /// Sends a request authenticating the patient (`/nonces`, `/sessions`, `/lookup`). Each records a viewing
    /// or consumes a nonce, so it is tried again only when it provably never left: no connection could be made
    /// (``EligibilityError/Code/unreachable``). A closed connection, or a TLS or I/O error after the request was
    /// written, is reported, not retried.
    func post<Request: OnshiMessage, Response: OnshiResultMessage>(
        _ path: String,
        _ message: Request,
        as type: Response.Type,
        deadline: OnshiInstant
    ) async throws -> Response {
        let request = OnshiHTTPRequest(method: .post, path: path, body: OnshiXML.encode(message))
        var attempt = 1
        var random = SystemRandomNumberGenerator()
        while true {
            do {
                return try await call(
                    request,
                    as: type,
                    deadline: deadline,
                    maxBodyBytes: configuration.maxSessionBytes,
                    account: FetchMemoryAccount(budget: FetchMemoryBudget(maxHeldBytes: configuration.maxSessionBytes)),
                    hedged: false
                )
            } catch let error as EligibilityError where error.code == .unreachable && error.isTransient {
                guard attempt < configuration.retry.maxAttempts else { throw error }
                let delay = configuration.retry.backoff(afterAttempt: attempt, random: &random)
                guard clock.now + delay < deadline else { throw error }
                attempt += 1
                logger.debug(
                    "retrying a request that never left",
                    metadata: ["kyukyu.onshi.attempt": "\(attempt)", "kyukyu.onshi.error": "\(error.code)"]
                )
                try await pause(for: delay)
            }
        }
    }

    /// One request, hedged or not, and its answer decoded: the one place answers are decoded. The answer's
    /// bytes are held against `account` from their arrival until they are decoded.
    func call<Response: OnshiResultMessage & Sendable>(
        _ request: OnshiHTTPRequest,
        as type: Response.Type,
        deadline: OnshiInstant,
        maxBodyBytes: Int,
        account: FetchMemoryAccount,
        hedged: Bool
    ) async throws -> Response {
        let http =
            hedged
            ? try await self.hedged(request, deadline: deadline, maxBodyBytes: maxBodyBytes, account: account)
            : try await send(request, deadline: deadline, maxBodyBytes: maxBodyBytes, account: account)
        defer { account.release(http.body.count) }
        return try await decode(http, as: type)
    }

    /// Waits `delay` on the client's clock; a cancelled wait is ``EligibilityError/Code/cancelled``.
    func pause(for delay: Duration) async throws {
        do {
            try await clock.sleep(for: delay)
        } catch {
            throw EligibilityError.cancelled()
        }
    }

    /// Sends a GET, and a second identical one if the first has not answered after the hedge delay; the first
    /// complete answer wins and the other is cancelled (which the breaker does not count).
    func hedged(
        _ request: OnshiHTTPRequest,
        deadline: OnshiInstant,
        maxBodyBytes: Int,
        account: FetchMemoryAccount
    ) async throws -> OnshiHTTPResponse {
        guard let hedgeAfter = configuration.hedgeAfter, clock.now + hedgeAfter < deadline else {
            return try await send(request, deadline: deadline, maxBodyBytes: maxBodyBytes, account: account)
        }
        let clock = self.clock
        return try await withThrowingTaskGroup(of: OnshiHTTPResponse?.self) { group in
            group.addTask {
                try await self.send(request, deadline: deadline, maxBodyBytes: maxBodyBytes, account: account)
            }
            group.addTask {
                try await clock.sleep(for: hedgeAfter)
                return nil
            }
            defer { group.cancelAll() }
            var inFlight = 1
            var hedgeSent = false
            var lastError: (any Error)?
            while let result = await group.nextResult() {
                switch result {
                case .success(let response?):
                    // The other request is cancelled; an answer it completed anyway gives its bytes back.
                    group.cancelAll()
                    while let late = await group.nextResult() {
                        if case .success(let other?) = late { account.release(other.body.count) }
                    }
                    return response
                case .success(nil):
                    guard !hedgeSent else { continue }
                    hedgeSent = true
                    inFlight += 1
                    logger.debug(
                        "hedging a slow request",
                        metadata: ["kyukyu.onshi.path": "\(request.path.split(separator: "/").last ?? "")"]
                    )
                    group.addTask {
                        try await self.send(request, deadline: deadline, maxBodyBytes: maxBodyBytes, account: account)
                    }
                case .failure(let error):
                    if error is CancellationError { continue }
                    inFlight -= 1
                    lastError = error
                    if inFlight == 0 { throw error }
                }
            }
            throw lastError ?? EligibilityError.cancelled()
        }
    }

    /// One exchange through the breaker, bounded by `deadline`. Success, failure and cancellation are told
    /// apart: a cancelled exchange (a losing hedge, a cancelled fetch) counts for nothing, and a cancelled
    /// half-open probe hands its slot back.
    func send(
        _ request: OnshiHTTPRequest,
        deadline: OnshiInstant,
        maxBodyBytes: Int,
        account: FetchMemoryAccount
    ) async throws -> OnshiHTTPResponse {
        let permit: CircuitBreaker.Permit
        switch breaker.permit() {
        case .success(let granted): permit = granted
        case .failure(let open): throw EligibilityError.circuitOpen(retryIn: open.retryIn)
        }
        let transport = self.transport
        do {
            let response = try await withTimeout(
                until: deadline,
                on: clock,
                timedOut: .timedOut("no complete answer from onshi before the deadline")
            ) { try await transport.exchange(request, maxBodyBytes: maxBodyBytes, account: account) }
            breaker.record(response.status < 500 ? .success : .failure, for: permit)
            return response
        } catch {
            let failure =
                error as? EligibilityError ?? .connectionLost("the exchange with onshi failed (\(type(of: error)))")
            breaker.record(failure.code == .cancelled ? .cancelled : .failure, for: permit)
            throw failure
        }
    }

    /// Checks the HTTP status and parses the XML strictly into the typed message, on ``ResponseDecoder``'s queue.
    func decode<T: OnshiResultMessage & Sendable>(_ http: OnshiHTTPResponse, as type: T.Type) async throws -> T {
        switch http.status {
        case 200..<300, 400..<429, 430..<500:
            break
        case 429:
            throw EligibilityError.rateLimited(retryAfter: http.retryAfter)
        case 503:
            if let message = try? await ResponseDecoder.decode(type, from: http.body),
                message.result.code == OnshiResultCode.maintenance
            {
                throw EligibilityError.maintenance(result: message.result.code)
            }
            throw EligibilityError.serverError(status: http.status)
        default:
            throw EligibilityError.serverError(status: http.status)
        }
        do {
            return try await ResponseDecoder.decode(type, from: http.body)
        } catch {
            // The decoder throws OnshiXMLError only; its path names the element, never its value.
            throw EligibilityError.malformedResponse(
                "onshi's answer could not be read (\(error.path ?? "document structure"))",
                http: http.status
            )
        }
    }
}

/// Runs `operation` until `deadline` on `clock`, the way swift-certificates' OCSP policy bounds its requester.
///
/// Returns the operation's value or throws its error; throws `timedOut` when the deadline passes first, and
/// ``EligibilityError/Code/cancelled`` when the calling task is cancelled first. In both cases the operation is
/// cancelled and not waited for: a signer waiting for a phone, or a card that does not honour cancellation,
/// cannot hold the caller past its deadline.
private func withTimeout<T: Sendable>(
    until deadline: OnshiInstant,
    on clock: OnshiClock,
    timedOut: @autoclosure () -> EligibilityError,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    if Task.isCancelled { throw EligibilityError.cancelled() }
    guard clock.now < deadline else { throw timedOut() }
    let race = Race<T>()
    let work = Task {
        do {
            race.finish(.value(try await operation()))
        } catch {
            race.finish(.failure(error))
        }
    }
    let watchdog = Task {
        guard (try? await clock.sleep(until: deadline)) != nil else { return }
        race.finish(.deadline)
    }
    let outcome = await withTaskCancellationHandler {
        await race.outcome()
    } onCancel: {
        race.finish(.cancelled)
    }
    work.cancel()
    watchdog.cancel()
    switch outcome {
    case .value(let value): return value
    case .failure(let error) where error is CancellationError: throw EligibilityError.cancelled()
    case .failure(let error): throw error
    case .deadline: throw timedOut()
    case .cancelled: throw EligibilityError.cancelled()
    }
}

/// The first of an operation's end, a deadline and a cancellation, delivered once.
private final class Race<T: Sendable>: Sendable {
    enum Outcome: Sendable {
        case value(T)
        case failure(any Error)
        case deadline
        case cancelled
    }

    private struct State {
        var outcome: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
    }

    private let state = Mutex(State())

    /// Settles the race with `outcome` unless it is settled already.
    func finish(_ outcome: Outcome) {
        let waiter = state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }

    /// Waits for the first outcome.
    func outcome() async -> Outcome {
        await withCheckedContinuation { continuation in
            let settled = state.withLock { state -> Outcome? in
                if let outcome = state.outcome { return outcome }
                state.waiter = continuation
                return nil
            }
            if let settled { continuation.resume(returning: settled) }
        }
    }
}

/// The response messages, which all carry a processing result.
public protocol OnshiResultMessage: OnshiMessage {
    /// The processing result.
    var result: ProcessingResult { get }
}

extension SessionResponse: OnshiResultMessage {}
extension NonceResponse: OnshiResultMessage {}
extension CategoryResponse: OnshiResultMessage {}
