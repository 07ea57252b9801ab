import KyukyuOnshi

/// An error from the eligibility client: one code per thing a paramedic or an operator can act on.
///
/// The ``reason`` never carries patient data: only categories, status codes, result codes and timings.
public struct EligibilityError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let code: Code
    /// A sentence for the crew's screen.
    public let reason: String
    /// The HTTP status, when one came back.
    public let httpStatus: Int?
    /// The onshi processing-result code, when one came back.
    public let resultCode: String?
    /// How long onshi asked to wait (429 `Retry-After`).
    public let retryAfter: Duration?
    /// Which TLS check refused the connection, when TLS did.
    public let tlsRefusal: TLSRefusal?
    /// The error behind this one: for ``Code/signingFailed``, the card's own error as the `signNonce` closure
    /// threw it (a `KyukyuCard.CardError` when the card client signs: wrong PIN, card removed, approval declined).
    public let underlying: (any Error)?
    /// Source file.
    public let file: String
    /// Source line.
    public let line: UInt

    /// Code, reason and location.
    public var description: String {
        var text = "EligibilityError.\(code): \(reason)"
        if let tlsRefusal { text += " [TLS: \(tlsRefusal)]" }
        if let underlying { text += " [underlying: \(underlying)]" }
        return text + " (\(file):\(line))"
    }

    /// Equality considers only the code.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    /// Hashing considers only the code.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    init(
        _ code: Code,
        _ reason: String,
        http: Int? = nil,
        result: String? = nil,
        retryAfter: Duration? = nil,
        tlsRefusal: TLSRefusal? = nil,
        underlying: (any Error)? = nil,
        file: String,
        line: UInt
    ) {
        self.retryAfter = retryAfter
        self.code = code
        self.reason = reason
        self.httpStatus = http
        self.resultCode = result
        self.tlsRefusal = tlsRefusal
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    /// The kind of an ``EligibilityError``.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case unreachable, connectionLost, timedOut, serverError, rateLimited, maintenance, circuitOpen
            case responseTooLarge, malformedResponse, rejected, consentRefused, certificateProblem, notFound
            case configuration, cancelled, signingFailed
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }
        /// The code's name.
        public var description: String { backing.rawValue }

        /// No connection to onshi, and the request provably never left: the connection was refused, timed out,
        /// or its TLS handshake failed before a byte of the request was written.
        public static let unreachable = Code(.unreachable)
        /// The connection broke after the request may have reached onshi (closed, reset, or a TLS or I/O error
        /// after the request was written): onshi may have processed it.
        public static let connectionLost = Code(.connectionLost)
        /// No complete answer before the deadline (the client's own deadline, not a cancellation).
        public static let timedOut = Code(.timedOut)
        /// onshi answered 5xx.
        public static let serverError = Code(.serverError)
        /// onshi answered 429.
        public static let rateLimited = Code(.rateLimited)
        /// onshi is in a maintenance window.
        public static let maintenance = Code(.maintenance)
        /// Recent calls failed; calls fail fast until the breaker lets a probe through.
        public static let circuitOpen = Code(.circuitOpen)
        /// The answer exceeded the size cap.
        public static let responseTooLarge = Code(.responseTooLarge)
        /// The answer could not be parsed.
        public static let malformedResponse = Code(.malformedResponse)
        /// onshi refused the request (a processing-result code says why).
        public static let rejected = Code(.rejected)
        /// The patient refused consent: nothing is fetched.
        public static let consentRefused = Code(.consentRefused)
        /// The card's certificate is expired, not yet valid, revoked, suspended or unknown.
        public static let certificateProblem = Code(.certificateProblem)
        /// No patient matched the card-less lookup.
        public static let notFound = Code(.notFound)
        /// The client is misconfigured (TLS files, URL).
        public static let configuration = Code(.configuration)
        /// The fetch was cancelled by its caller; nothing is held against onshi.
        public static let cancelled = Code(.cancelled)
        /// The card (or the phone) did not sign onshi's nonce in PIN mode; ``EligibilityError/underlying`` holds
        /// the card's own error.
        public static let signingFailed = Code(.signingFailed)
    }

    /// Whether another attempt may succeed (used by the retry policy; only for idempotent requests, and for
    /// ``Code/unreachable`` alone for the others). A TLS refusal is not transient: trying again meets it again.
    public var isTransient: Bool {
        guard tlsRefusal == nil else { return false }
        switch code {
        case .unreachable, .connectionLost, .serverError, .rateLimited: return true
        default: return false
        }
    }

    /// Which TLS check refused the connection to onshi.
    public struct TLSRefusal: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case untrustedServer, hostNameMismatch, clientCertificateRefused, protocolVersion, notTLS, other
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }
        /// The refusal's name.
        public var description: String { backing.rawValue }

        /// onshi's server certificate was not issued by the configured CA (unknown CA, or not a valid chain).
        public static let untrustedServer = TLSRefusal(.untrustedServer)
        /// onshi's server certificate does not name the host of the configured URL.
        public static let hostNameMismatch = TLSRefusal(.hostNameMismatch)
        /// onshi refused this terminal: no client certificate, or one it does not accept.
        public static let clientCertificateRefused = TLSRefusal(.clientCertificateRefused)
        /// No TLS version both sides accept (this client requires TLS 1.2 or later).
        public static let protocolVersion = TLSRefusal(.protocolVersion)
        /// The server does not speak TLS on this port.
        public static let notTLS = TLSRefusal(.notTLS)
        /// Another TLS failure.
        public static let other = TLSRefusal(.other)
    }
}

extension EligibilityError {
    /// No connection could be made: the request provably never left (a transport's answer for a dead zone).
    public static func unreachable(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.unreachable, reason, file: file, line: line)
    }
    /// The connection failed after the request may have been written.
    public static func connectionLost(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.connectionLost, reason, file: file, line: line)
    }
    static func timedOut(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.timedOut, reason, file: file, line: line)
    }
    static func serverError(status: Int, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.serverError, "onshi failed (HTTP \(status)); retry shortly", http: status, file: file, line: line)
    }
    static func rateLimited(retryAfter: Duration?, file: String = #fileID, line: UInt = #line) -> Self {
        let wait = retryAfter.map { " (asks to wait \($0.components.seconds) s)" } ?? ""
        return Self(.rateLimited, "onshi is busy\(wait)", http: 429, retryAfter: retryAfter, file: file, line: line)
    }
    static func maintenance(result: String?, file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .maintenance,
            "onshi is in a maintenance window; use the card-less flow later or call the hospital",
            http: 503,
            result: result,
            file: file,
            line: line
        )
    }
    static func circuitOpen(retryIn: Duration, file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .circuitOpen,
            "onshi failed repeatedly; not calling it for \(retryIn.components.seconds + 1) s",
            file: file,
            line: line
        )
    }
    static func responseTooLarge(limit: Int, file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .responseTooLarge,
            "onshi's answer is larger than \(limit / 1_048_576) MiB; refused",
            file: file,
            line: line
        )
    }
    static func overMemoryBudget(budget: Int, file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .responseTooLarge,
            "onshi's answers for this patient exceed the terminal's memory budget (\(budget / 1_048_576) MiB); "
                + "this category is left out, the others are shown",
            file: file,
            line: line
        )
    }
    static func malformedResponse(_ reason: String, http: Int? = nil, file: String = #fileID, line: UInt = #line)
        -> Self
    {
        Self(.malformedResponse, reason, http: http, file: file, line: line)
    }
    static func rejected(_ reason: String, result: String?, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.rejected, reason, result: result, file: file, line: line)
    }
    static func consentRefused(file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .consentRefused,
            "the patient refused consent; nothing was fetched",
            result: OnshiResultCode.consentRefused,
            file: file,
            line: line
        )
    }
    static func certificateProblem(_ reason: String, result: String, file: String = #fileID, line: UInt = #line)
        -> Self
    {
        Self(.certificateProblem, reason, result: result, file: file, line: line)
    }
    static func notFound(_ reason: String, result: String?, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.notFound, reason, result: result, file: file, line: line)
    }
    static func configuration(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.configuration, reason, file: file, line: line)
    }
    static func cancelled(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.cancelled, "the fetch was cancelled", file: file, line: line)
    }
    static func unreachable(_ reason: String, tls: TLSRefusal, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.unreachable, reason, tlsRefusal: tls, file: file, line: line)
    }
    static func connectionLost(_ reason: String, tls: TLSRefusal, file: String = #fileID, line: UInt = #line)
        -> Self
    {
        Self(.connectionLost, reason, tlsRefusal: tls, file: file, line: line)
    }
    static func signingFailed(underlying: any Error, file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .signingFailed,
            "the card did not sign onshi's challenge; see the card's error",
            underlying: underlying,
            file: file,
            line: line
        )
    }
}
