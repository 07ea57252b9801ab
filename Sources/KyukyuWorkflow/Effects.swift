public import Foundation
public import KyukyuDomain
public import KyukyuEligibility
public import KyukyuVault

/// Where an incident's records and state live: the vault in the service, ``InMemoryIncidentStore`` in unit tests.
///
/// Every write is durable when it returns; every read is a decryption the store may audit as a view.
public protocol IncidentStore: Sendable {
    /// Opens a new incident and returns its opaque id.
    func createIncident(now: Date) async throws -> IncidentID
    /// Stores a new version of `kind` for `incident`.
    func put(_ payload: Data, kind: RecordKind, incident: IncidentID, now: Date) async throws
    /// Stores new versions of `records`, in order, as one durable step, and returns the latest version of each kind
    /// in `readingBack` as read back from the store (a read audited as a view by `viewer`).
    func put(
        _ records: [(kind: RecordKind, payload: Data)],
        readingBack: Set<RecordKind>,
        incident: IncidentID,
        viewer: CrewID,
        now: Date
    ) async throws -> [RecordKind: Data]
    /// The latest version of every kind of `incident`, read on behalf of `viewer`.
    func latest(incident: IncidentID, viewer: CrewID) async throws -> [RecordKind: Data]
    /// The latest version of one kind, read on behalf of `viewer`; nil when none is stored.
    func latest(incident: IncidentID, kind: RecordKind, viewer: CrewID) async throws -> Data?
    /// The incidents the store holds (open, not shredded), oldest first.
    func incidentIDs() async throws -> [IncidentID]
    /// Crypto-shreds `incident`.
    func shred(incident: IncidentID, reason: PurgeReason) async throws
    /// Appends `event` to the audit trail.
    func audit(_ event: AuditEvent) async throws
    /// The audit trail's signed head (nil when the store keeps no signed trail).
    func auditHead() async throws -> AuditHead?
}

/// Starts a patient fetch: ``EligibilityClient`` in the service; the same client over an in-memory onshi in
/// unit tests.
public protocol PatientFetching: Sendable {
    /// Authenticates the patient and fetches `categories` under `deadlines`.
    func fetch(
        _ identity: PatientIdentity,
        crewID: String,
        consent: ConsentBasis,
        categories: [MedicalCategory],
        deadlines: FetchDeadlines
    ) -> PatientFetch
}

extension EligibilityClient: PatientFetching {}

/// The card on the reader, one guarded session at a time: the service's PC/SC reader, a fake in unit tests.
public protocol PatientCard: Sendable {
    /// Runs `body` with a session on the card now on the reader, and releases the card afterwards (resetting it
    /// when a PIN was verified).
    func withCard<T: Sendable>(_ body: @Sendable (any CardAccess) async throws -> T) async throws -> T
}

/// What the workflow asks of a card session. Every operation goes through the card module's PIN guard.
public protocol CardAccess: Sendable {
    /// The credential on the reader: card, old 住基 card, Android or iPhone.
    func tokenType() async throws -> TokenType
    /// The user-authentication PIN's tries left, asked without spending one.
    func triesLeft() async throws -> Int
    /// Verifies the user-authentication PIN once (never retried); the last try only when `confirmLastTry`.
    func verify(pin: String, confirmLastTry: Bool) async throws
    /// The user-authentication certificate (DER). On an iPhone the holder approves on the phone first.
    func authenticationCertificate() async throws -> [UInt8]
    /// The user-authentication key's signature over a SHA-256 digest (after a verified PIN): PIN mode, where the
    /// card signs onshi's nonce.
    func signWithAuthenticationKey(sha256 digest: [UInt8]) async throws -> [UInt8]
}

/// The workflow's clocks: a monotonic clock for retries, and the wall clock for what is recorded.
public struct WorkflowClock: Sendable {
    /// Wall time, for timestamps shown to the crew and stored with records.
    public let now: @Sendable () -> Date
    private let timerMaker: @Sendable (Duration) -> @Sendable () async throws -> Void

    /// Makes the workflow's clocks: `clock` times retry delays (swift-clocks' `TestClock` in tests).
    public init(
        clock: some Clock<Duration> = ContinuousClock(),
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.now = now
        self.timerMaker = { duration in
            let deadline = clock.now.advanced(by: duration)
            return { try await clock.sleep(until: deadline, tolerance: nil) }
        }
    }

    /// A wait that ends `duration` from now: the deadline is fixed when this is called, not when the wait starts
    /// (a task that starts late still wakes on time, and a test clock advanced meanwhile is not missed).
    func timer(after duration: Duration) -> @Sendable () async throws -> Void {
        timerMaker(duration)
    }

    func sleep(for duration: Duration) async throws {
        try await timer(after: duration)()
    }
}
