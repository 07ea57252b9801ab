import Foundation
import KyukyuOnshi
import Logging

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

    /// Creates a configuration.
    public init(
        institutionCode: String = "9999999999",
        retry: RetryPolicy = RetryPolicy(),
        hedgeAfter: Duration? = .milliseconds(400),
        maxCategoryBytes: Int = 16 * 1_048_576,
        maxSessionBytes: Int = 256 * 1024
    ) {
        self.institutionCode = institutionCode
        self.retry = retry
        self.hedgeAfter = hedgeAfter
        self.maxCategoryBytes = maxCategoryBytes
        self.maxSessionBytes = maxSessionBytes
    }
}

/// The gateway's client for onshi: authentication (visual, PIN, card-less) and per-category requests with
/// deadlines, bounded retries with jitter for idempotent requests, hedging for the tail, a circuit breaker and
/// size caps. One per process; it is `Sendable` and shared by every fetch.
public final class EligibilityClient: Sendable {
    /// The transport.
    public let transport: any OnshiTransport
    /// The settings.
    public let configuration: EligibilityClientConfiguration
    /// The breaker for onshi.
    public let breaker: CircuitBreaker
    let logger: Logger

    /// Creates a client.
    public init(
        transport: any OnshiTransport,
        configuration: EligibilityClientConfiguration = .init(),
        breaker: CircuitBreaker = CircuitBreaker(),
        logger: Logger
    ) {
        self.transport = transport
        self.configuration = configuration
        self.breaker = breaker
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

    /// Authenticates the patient and opens a viewing session. Never retried: a nonce is single-use and every
    /// session is a recorded viewing; only a request that never reached onshi is tried again.
    public func authenticate(
        _ identity: PatientIdentity,
        crewID: String,
        consent: ConsentBasis,
        deadline: ContinuousClock.Instant
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
            let signature = try await sign(bytes)
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

    /// Fetches one category: retried with jitter while the deadline allows, hedged after
    /// ``EligibilityClientConfiguration/hedgeAfter``. `onRetry` hears of each retry (for the crew's screen).
    public func category(
        _ category: OnshiCategory,
        session: EligibilitySession,
        deadline: ContinuousClock.Instant,
        onRetry: @Sendable (Int, EligibilityError) -> Void = { _, _ in }
    ) async throws -> CategoryResponse {
        let request = OnshiHTTPRequest(method: .get, path: "/onshi/v1/sessions/\(session.token)/\(category.rawValue)")
        var random = SystemRandomNumberGenerator()
        var attempt = 1
        while true {
            do {
                let http = try await hedged(request, deadline: deadline, maxBodyBytes: configuration.maxCategoryBytes)
                let response = try decode(http, as: CategoryResponse.self)
                try check(response.result)
                guard response.category == category else {
                    throw EligibilityError.malformedResponse("onshi answered with another category")
                }
                return response
            } catch let error as EligibilityError {
                guard error.isTransient, attempt < configuration.retry.maxAttempts else { throw error }
                var delay = configuration.retry.backoff(afterAttempt: attempt, random: &random)
                if error.code == .rateLimited, let after = error.retryAfter { delay = max(delay, after) }
                guard ContinuousClock.now + delay < deadline else { throw error }
                attempt += 1
                logger.debug(
                    "retrying category",
                    metadata: [
                        "kyukyu.onshi.category": "\(category.rawValue)", "kyukyu.onshi.attempt": "\(attempt)",
                        "kyukyu.onshi.error": "\(error.code)",
                    ]
                )
                onRetry(attempt, error)
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Sends a GET, and a second identical one if the first has not answered after the hedge delay; the first
    /// complete answer wins and the other is cancelled.
    func hedged(_ request: OnshiHTTPRequest, deadline: ContinuousClock.Instant, maxBodyBytes: Int) async throws
        -> OnshiHTTPResponse
    {
        guard let hedgeAfter = configuration.hedgeAfter, ContinuousClock.now + hedgeAfter < deadline else {
            return try await send(request, deadline: deadline, maxBodyBytes: maxBodyBytes)
        }
        return try await withThrowingTaskGroup(of: OnshiHTTPResponse?.self) { group in
            group.addTask { try await self.send(request, deadline: deadline, maxBodyBytes: maxBodyBytes) }
            group.addTask {
                try await Task.sleep(for: hedgeAfter)
                return nil
            }
            defer { group.cancelAll() }
            var inFlight = 1
            var hedgeSent = false
            var lastError: (any Error)?
            while let result = await group.nextResult() {
                switch result {
                case .success(let response?):
                    return response
                case .success(nil):
                    guard !hedgeSent else { continue }
                    hedgeSent = true
                    inFlight += 1
                    logger.debug(
                        "hedging a slow request",
                        metadata: ["kyukyu.onshi.path": "\(request.path.split(separator: "/").last ?? "")"]
                    )
                    group.addTask { try await self.send(request, deadline: deadline, maxBodyBytes: maxBodyBytes) }
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

    /// One exchange through the breaker.
    func send(_ request: OnshiHTTPRequest, deadline: ContinuousClock.Instant, maxBodyBytes: Int) async throws
        -> OnshiHTTPResponse
    {
        if let wait = breaker.permit() { throw EligibilityError.circuitOpen(retryIn: wait) }
        do {
            let response = try await transport.exchange(request, deadline: deadline, maxBodyBytes: maxBodyBytes)
            breaker.record(success: response.status < 500)
            return response
        } catch let error as EligibilityError {
            if error.code != .cancelled { breaker.record(success: false) }
            throw error
        } catch is CancellationError {
            throw EligibilityError.cancelled()
        }
    }

    func post<Request: OnshiMessage, Response: OnshiResultMessage>(
        _ path: String,
        _ message: Request,
        as type: Response.Type,
        deadline: ContinuousClock.Instant
    ) async throws -> Response {
        let request = OnshiHTTPRequest(method: .post, path: path, body: OnshiXML.encode(message))
        var attempt = 1
        var random = SystemRandomNumberGenerator()
        while true {
            do {
                let http = try await send(request, deadline: deadline, maxBodyBytes: configuration.maxSessionBytes)
                return try decode(http, as: type)
            } catch let error as EligibilityError where error.code == .unreachable {
                // The request never reached onshi: safe to try again, within the deadline.
                guard attempt < configuration.retry.maxAttempts else { throw error }
                let delay = configuration.retry.backoff(afterAttempt: attempt, random: &random)
                guard ContinuousClock.now + delay < deadline else { throw error }
                attempt += 1
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Checks the HTTP status and parses the XML strictly into the typed message.
    func decode<T: OnshiResultMessage>(_ http: OnshiHTTPResponse, as type: T.Type) throws -> T {
        switch http.status {
        case 200..<300, 400..<429, 430..<500:
            break
        case 429:
            throw EligibilityError.rateLimited(retryAfter: http.retryAfter)
        case 503:
            if let message = try? OnshiXML.decode(type, from: http.body),
                message.result.code == OnshiResultCode.maintenance
            {
                throw EligibilityError.maintenance(result: message.result.code)
            }
            throw EligibilityError.serverError(status: http.status)
        default:
            throw EligibilityError.serverError(status: http.status)
        }
        do {
            return try OnshiXML.decode(type, from: http.body)
        } catch let error as OnshiXMLError {
            // The path names the element, never its value.
            throw EligibilityError.malformedResponse(
                "onshi's answer could not be read (\(error.path ?? "document structure"))",
                http: http.status
            )
        } catch {
            throw EligibilityError.malformedResponse("onshi's answer could not be read", http: http.status)
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
