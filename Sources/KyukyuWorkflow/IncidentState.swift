public import Foundation
public import KyukyuDomain
public import KyukyuIncident
public import KyukyuVault

/// Who opened an incident.
public enum IncidentSource: String, Sendable, Hashable, Codable {
    /// The crew, on the tablet.
    case crew
    /// Dispatch (指令), with the 119 call's facts, before the crew arrived.
    case dispatch
}

/// The 119 call's facts as dispatch sent them. Stored only inside the incident's encrypted state.
public struct DispatchFacts: Sendable, Hashable, Codable {
    /// When the call was received.
    public var receivedAt: Date
    /// Where (as dispatch wrote it).
    public var location: String?
    /// Dispatch's note (chief complaint as called in).
    public var note: String?

    /// Makes the facts.
    public init(receivedAt: Date, location: String? = nil, note: String? = nil) {
        self.receivedAt = receivedAt
        self.location = location
        self.note = note
    }
}

/// Where the card read stands, as the tablet shows it.
public struct CardProgress: Sendable, Hashable, Codable {
    /// The read's state.
    public enum State: String, Sendable, Hashable, Codable {
        /// Waiting for a card to touch the reader.
        case waiting
        /// Reading.
        case reading
        /// The card left the reader mid-read; the read resumes when it is back.
        case removed
        /// An Android credential: the holder's PIN is needed.
        case pinRequired = "pin-required"
        /// An iPhone credential: the holder approves on the phone.
        case approveOnPhone = "approve-on-phone"
        /// Read: the certificate is in the vault.
        case read
        /// The read failed (`reason` says why and what to do).
        case failed
    }
    /// The read's state.
    public var state: State = .waiting
    /// The credential on the reader, once known.
    public var tokenType: TokenType?
    /// The PIN's tries left, when a PIN is needed.
    public var triesLeft: Int?
    /// Whether the next PIN entry is the last try (it needs an explicit confirmation).
    public var lastTry: Bool { triesLeft == 1 }
    /// Plain words for the crew.
    public var reason: String?

    /// A card read not started.
    public init() {}
}

/// How authentication at onshi went.
public struct AuthenticationProgress: Sendable, Hashable, Codable {
    /// The outcome.
    public enum Status: String, Sendable, Hashable, Codable {
        /// No fetch yet.
        case notStarted = "not-started"
        /// Authenticating.
        case pending
        /// A viewing session is open.
        case ok
        /// onshi refused (consent refused, certificate problem, not found).
        case refused
        /// It failed for good (reserved; a failure that may pass keeps it ``pending`` while the incident's retry
        /// waits).
        case failed
    }
    /// The outcome.
    public var status: Status = .notStarted
    /// Plain words for the crew.
    public var reason: String?
    /// The eligibility client's error code for a refusal or failure (`consentRefused`, `unreachable`, …).
    public var code: String?
    /// onshi's qualification validity (1 valid … 6 other), once a session is open.
    public var qualificationValidity: Int?

    /// Not started.
    public init() {}
}

/// One category's progress, as the tablet shows it.
public struct CategoryProgress: Sendable, Hashable, Codable {
    /// The category's status.
    public enum Status: String, Sendable, Hashable, Codable {
        /// Asked, not answered yet.
        case pending
        /// Arrived before the summary was shown.
        case arrived
        /// onshi has nothing on record.
        case noneOnRecord = "none-on-record"
        /// Arrived after the summary was shown.
        case late
        /// Failed (`reason` says why).
        case failed
        /// Being retried after a transient failure.
        case retrying
        /// Its deadline passed.
        case timedOut = "timed-out"
        /// The fetch was stopped.
        case cancelled
    }
    /// The status.
    public var status: Status
    /// Plain words, for a failure or a retry.
    public var reason: String?
    /// How long it took, when settled.
    public var milliseconds: Int?
    /// How many records arrived.
    public var count: Int?
    /// The eligibility client's error code, for a failure.
    public var code: String?

    /// Makes a progress entry.
    public init(
        status: Status,
        reason: String? = nil,
        milliseconds: Int? = nil,
        count: Int? = nil,
        code: String? = nil
    ) {
        self.status = status
        self.reason = reason
        self.milliseconds = milliseconds
        self.count = count
        self.code = code
    }

    /// Whether nothing more will come for this category in this attempt.
    public var isSettled: Bool { ![.pending, .retrying].contains(status) }
}

/// A fetch that waits for a retry.
public struct RetryProgress: Sendable, Hashable, Codable {
    /// Why it waits.
    public var reason: FetchDeferral
    /// Attempts so far.
    public var attempt: Int
    /// When the next attempt starts.
    public var nextAttemptAt: Date
}

/// Everything about one incident except its medical records: the state machine, the card, authentication and
/// each category's progress. Persisted, encrypted, in the incident's vault record set after every change, so a
/// restarted gateway picks the incident up where it was.
public struct IncidentState: Sendable, Hashable, Codable {
    /// The vault's opaque id.
    public var id: IncidentID
    /// When it was opened.
    public var createdAt: Date
    /// Who opened it.
    public var source: IncidentSource
    /// Dispatch's facts, for a pre-created incident.
    public var dispatch: DispatchFacts?
    /// The state machine.
    public var machine: IncidentMachine
    /// The card read.
    public var card = CardProgress()
    /// Authentication at onshi.
    public var authentication = AuthenticationProgress()
    /// Each category's progress, by the category's name.
    public var categories: [String: CategoryProgress] = [:]
    /// The pending retry, while the fetch waits.
    public var retry: RetryProgress?
    /// The crew member who recorded consent (the viewing is in their name).
    public var crewID: String?
    /// Until when onshi's consent covers this incident; the incident closes and is shredded then.
    public var consentAvailableUntil: Date?
    /// What the crew observed and did on the way (nil until the first entry; absent in states stored before the
    /// handoff existed).
    public var observations: CrewObservations?
    /// When onshi's records last arrived (the document's "data as of").
    public var recordsAsOf: Date?
    /// The pre-arrival handoff, once the crew has sent the document.
    public var handoff: HandoffProgress?
    /// The latest placement request (one request to several hospitals at once), once the crew sent one (absent in
    /// states stored before placements existed).
    public var placement: PlacementProgress?
    /// Increases with every change.
    public var version = 0

    /// A new incident.
    public init(
        id: IncidentID,
        createdAt: Date,
        source: IncidentSource,
        dispatch: DispatchFacts? = nil,
        machine: IncidentMachine
    ) {
        self.id = id
        self.createdAt = createdAt
        self.source = source
        self.dispatch = dispatch
        self.machine = machine
    }

    /// The progress of `category`.
    public subscript(category: MedicalCategory) -> CategoryProgress? {
        get { categories[category.rawValue] }
        set { categories[category.rawValue] = newValue }
    }
}

/// How the patient was identified, as one word for the tablet.
extension Identification {
    /// `individual-number-card`, `android`, …, `lookup-demographics`, `lookup-insurance`.
    public var label: String {
        switch self {
        case .card(let type): type.rawValue
        case .lookupByDemographics: "lookup-demographics"
        case .lookupByInsurance: "lookup-insurance"
        }
    }
}
