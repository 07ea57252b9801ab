import KyukyuDomain

/// How the patient was identified. Only the kind is kept here: the certificate, the four fields and the insurance
/// numbers are patient data, and live in the vault, never in the incident's state.
public enum Identification: Sendable, Hashable, Codable {
    /// The user-authentication certificate read from a card or a phone token.
    case card(TokenType)
    /// A card-less lookup by name, birth date, sex and address.
    case lookupByDemographics
    /// A card-less lookup by the insurance card's insurer number, symbol and number.
    case lookupByInsurance
}

/// Why a fetch that is due cannot run now; it is retried while the incident is open and consent holds.
public enum FetchDeferral: String, Sendable, Hashable, Codable, CaseIterable {
    /// No network: onshi cannot be reached (a dead zone during transport).
    case noNetwork = "no-network"
    /// onshi is in its maintenance window.
    case maintenance
    /// The circuit breaker is open after repeated upstream failures.
    case breakerOpen = "breaker-open"
    /// onshi answered with a server error or asked to slow down.
    case onshiError = "onshi-error"
}

/// Why onshi refused to authenticate the patient.
public enum AuthenticationRefusal: String, Sendable, Hashable, Codable, CaseIterable {
    /// The patient refused consent; onshi recorded the attempt and returns nothing.
    case consentRefused = "consent-refused"
    /// The certificate is expired, revoked, suspended or unknown: identify the patient another way.
    case certificateProblem = "certificate-problem"
    /// No patient (or several) matched a lookup: identify the patient another way.
    case notFound = "not-found"
    /// The card could not sign onshi's nonce (it left the reader, or refused): touch it again.
    case cardFailed = "card-failed"
}

/// Why an incident was closed. Every close shreds what the incident holds.
public enum ClosureReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// The patient refused consent.
    case consentRefused = "consent-refused"
    /// The consent's availability period ran out.
    case consentExpired = "consent-expired"
    /// The crew closed the incident.
    case closedByCrew = "closed-by-crew"
    /// The receiving hospital marked the patient arrived: handover is complete.
    case handedOver = "handed-over"
}

/// Where an incident stands.
public enum IncidentPhase: String, Sendable, Hashable, Codable, CaseIterable {
    /// Opened (by the crew, or pre-created by dispatch); nothing recorded yet.
    case created
    /// Consent is recorded; the patient is not identified yet.
    case consentRecorded = "consent-recorded"
    /// The patient is identified (a card touched the reader first); consent is not recorded yet.
    case identified
    /// The fetch runs.
    case fetching
    /// The fetch is due but cannot run now (``FetchDeferral``); it is retried.
    case retryPending = "retry-pending"
    /// The summary is shown; late categories may still arrive.
    case summary
    /// Closed and shredded. Terminal.
    case closed
}

/// What happens to an incident.
public enum IncidentEvent: Sendable, Hashable {
    /// The crew recorded the consent basis.
    case consentRecorded(ConsentBasis)
    /// The patient was identified.
    case patientIdentified(Identification)
    /// The fetch could not run now.
    case fetchDeferred(FetchDeferral)
    /// The scheduled retry is due.
    case retryDue
    /// onshi authenticated the patient and the first snapshot is shown; `complete` when every category settled.
    case summaryShown(complete: Bool)
    /// onshi refused to authenticate the patient.
    case authenticationRefused(AuthenticationRefusal)
    /// The consent's availability period ran out.
    case consentExpired
    /// The crew closed the incident.
    case closedByCrew
    /// The hospital marked the patient arrived (handover complete).
    case handedOver

    /// The event's name, for errors and the audit (never a value).
    public var name: String {
        switch self {
        case .consentRecorded: "consent-recorded"
        case .patientIdentified: "patient-identified"
        case .fetchDeferred: "fetch-deferred"
        case .retryDue: "retry-due"
        case .summaryShown: "summary-shown"
        case .authenticationRefused: "authentication-refused"
        case .consentExpired: "consent-expired"
        case .closedByCrew: "closed-by-crew"
        case .handedOver: "handed-over"
        }
    }
}

/// What the machine asks its driver to do, in order.
public enum IncidentEffect: Sendable, Hashable {
    /// Record the event in the audit trail.
    case audit(IncidentEvent)
    /// Start fetching (authentication, then the categories); `attempt` counts from 1.
    case startFetch(attempt: Int)
    /// Send ``IncidentEvent/retryDue`` after `delay`.
    case scheduleRetry(after: Duration, attempt: Int)
    /// Stop the running fetch, or the scheduled retry.
    case cancelFetch
    /// Crypto-shred everything the incident holds in the vault.
    case shred(ClosureReason)
}

/// When a deferred fetch is tried again: doubling from ``initial`` up to ``maximum``. Deterministic, so that the
/// machine stays pure; a driver may add jitter.
public struct RetrySchedule: Sendable, Hashable, Codable {
    /// The delay before the second attempt.
    public var initial: Duration
    /// The longest delay.
    public var maximum: Duration

    /// Makes a schedule.
    public init(initial: Duration = .seconds(2), maximum: Duration = .seconds(60)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay after `attempt` attempts (1-based).
    public func delay(afterAttempt attempt: Int) -> Duration {
        var delay = initial
        for _ in 1..<max(1, attempt) {
            delay = delay * 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }
}

/// An event that does not apply in the incident's phase.
///
/// Built like swift-certificates' errors: a struct over a private code, with the file and line that threw.
public struct IncidentTransitionError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case notApplicable(phase: IncidentPhase, event: String)
    }
    private let code: Code
    /// The file that threw the error.
    public let file: String
    /// The line that threw the error.
    public let line: UInt

    private init(_ code: Code, file: String, line: UInt) {
        self.code = code
        self.file = file
        self.line = line
    }

    /// `event` does not apply in `phase`.
    public static func notApplicable(
        phase: IncidentPhase,
        event: IncidentEvent,
        file: String = #fileID,
        line: UInt = #line
    ) -> Self {
        Self(.notApplicable(phase: phase, event: event.name), file: file, line: line)
    }

    /// Two errors are the same refusal, wherever they were thrown.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the code only.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }

    /// Names the phase and the event; never a value.
    public var description: String {
        switch self.code {
        case .notApplicable(let phase, let event):
            "IncidentTransitionError: \(event) does not apply to an incident that is \(phase.rawValue) (\(file):\(line))"
        }
    }
}

/// One incident's workflow as a pure state machine: an event in, the new state and the effects out. No I/O, no
/// clock: the driver (the gateway, `kyukyu fetch`) carries out the effects and feeds back what happened.
///
/// Consent and identification may come in either order (a card may touch the reader before the crew taps a
/// consent button); the fetch starts when both are there. A refusal after the identification is still sent to onshi,
/// which records the attempt and returns nothing, and the incident closes; a refusal before any identification
/// closes the incident at once (nothing will be read). A fetch that cannot run (no network, maintenance,
/// breaker open) is retried on ``RetrySchedule`` for as long as the incident is open and consent holds. Every
/// close shreds the incident.
public struct IncidentMachine: Sendable, Hashable, Codable {
    /// Where the incident stands.
    public private(set) var phase: IncidentPhase = .created
    /// The recorded consent basis.
    public private(set) var consent: ConsentBasis?
    /// How the patient was identified.
    public private(set) var identification: Identification?
    /// Fetch attempts so far.
    public private(set) var fetchAttempts = 0
    /// Why the fetch waits, while it does.
    public private(set) var deferral: FetchDeferral?
    /// Whether every category had settled when the summary was shown.
    public private(set) var summaryComplete = false
    /// Why the incident closed, once it has.
    public private(set) var closure: ClosureReason?
    /// When deferred fetches are tried again.
    public let retrySchedule: RetrySchedule

    /// A new incident.
    public init(retrySchedule: RetrySchedule = RetrySchedule()) {
        self.retrySchedule = retrySchedule
    }

    /// Applies `event` and returns the effects to carry out, in order; the state is unchanged on a throw.
    public mutating func handle(_ event: IncidentEvent) throws(IncidentTransitionError) -> [IncidentEffect] {
        switch (phase, event) {
        case (.created, .consentRecorded(.refused)):
            // Nobody identified and the patient refuses: nothing will be read or sent, the incident closes at once.
            consent = .refused
            return [.audit(event)] + close(.consentRefused, fetchRunning: false)

        case (.created, .consentRecorded(let basis)), (.identified, .consentRecorded(let basis)):
            consent = basis
            if identification != nil { return [.audit(event)] + startFetch() }
            phase = .consentRecorded
            return [.audit(event)]

        case (.created, .patientIdentified(let kind)), (.consentRecorded, .patientIdentified(let kind)):
            identification = kind
            if consent != nil { return [.audit(event)] + startFetch() }
            phase = .identified
            return [.audit(event)]

        case (.fetching, .fetchDeferred(let reason)):
            phase = .retryPending
            deferral = reason
            return [
                .audit(event),
                .scheduleRetry(after: retrySchedule.delay(afterAttempt: fetchAttempts), attempt: fetchAttempts),
            ]

        case (.retryPending, .retryDue):
            return startFetch()

        case (.fetching, .summaryShown(let complete)):
            phase = .summary
            summaryComplete = complete
            return [.audit(event)]

        case (.summary, .summaryShown(let complete)):
            // Late categories arrived; the summary stays.
            summaryComplete = summaryComplete || complete
            return []

        case (.fetching, .authenticationRefused(.consentRefused)):
            return [.audit(event)] + close(.consentRefused, fetchRunning: false)

        case (.fetching, .authenticationRefused):
            // Identify the patient another way (the lookup instead of an expired certificate); consent stands.
            identification = nil
            phase = .consentRecorded
            return [.audit(event)]

        case (.closed, _):
            throw .notApplicable(phase: phase, event: event)

        case (_, .consentExpired) where consent != nil:
            return [.audit(event)] + close(.consentExpired, fetchRunning: phase == .fetching || phase == .retryPending)

        case (_, .closedByCrew):
            return [.audit(event)] + close(.closedByCrew, fetchRunning: phase == .fetching || phase == .retryPending)

        case (_, .handedOver):
            return [.audit(event)] + close(.handedOver, fetchRunning: phase == .fetching || phase == .retryPending)

        default:
            throw .notApplicable(phase: phase, event: event)
        }
    }

    private mutating func startFetch() -> [IncidentEffect] {
        phase = .fetching
        deferral = nil
        fetchAttempts += 1
        return [.startFetch(attempt: fetchAttempts)]
    }

    private mutating func close(_ reason: ClosureReason, fetchRunning: Bool) -> [IncidentEffect] {
        phase = .closed
        closure = reason
        deferral = nil
        return (fetchRunning ? [.cancelFetch] : []) + [.shred(reason)]
    }
}
