import Foundation
import KyukyuDomain

/// One storage protocol, two engines: what ``HospitalStore`` asks of a database. ``SQLiteStorage`` (GRDB, one file,
/// one hospital's receiver) and ``PostgresStorage`` (postgres-nio, a region's hub with many instances) implement it
/// with the same migrations in each engine's dialect, and the same tests run against both (StorageContractTests).
///
/// Everything here is ciphertext or non-patient metadata: ``HospitalStore`` seals documents and notes with each
/// hospital's key before they reach an engine, and opens them after. Positions are assigned inside the writing
/// transaction from counter rows (`device_sequence`, then the hospital's `tenant` row), so that on either
/// engine they are committed in the order they are numbered, and a stream that resumes after a position misses
/// nothing committed later.
protocol HospitalStorage: RegionStorage {
    /// The engine's name (`sqlite`, `postgresql`), for logs and errors.
    var engine: String { get }

    func registerDevice(_ id: String, at: Int64) async throws(ReceiverError)
    /// Whether a device was revoked (false: unknown).
    func revokeDevice(_ id: String, at: Int64) async throws(ReceiverError) -> Bool
    func device(_ id: String) async throws(ReceiverError) -> DeviceRecord?
    func devices() async throws(ReceiverError) -> [DeviceRecord]

    /// Stores one sealed document: its set (created the first time), the version, its anchor and its `received`
    /// event; or finds it stored already (a resend). Refusals come back as failures (conflict, forbidden).
    func intake(_ row: IntakeRow) async -> Result<IntakeStep, ReceiverError>

    /// Applies a status change to the set (`hospital`, `set`) inside one transaction: ``TransitionRule`` decides from
    /// the row as it is then.
    func transition(_ change: StatusChange) async throws(ReceiverError) -> TransitionStep

    /// The device's events after `sequence`, in order.
    func events(device: String, after sequence: Int64) async throws(ReceiverError) -> [EventRow]
    /// The device's events of sets that are open, or were closed at or after `closedSince`.
    func events(device: String, openOrClosedSince closedSince: Int64) async throws(ReceiverError) -> [EventRow]
    /// One hospital's events after its board position `position`, in order.
    func boardEvents(hospital: String, after position: Int64) async throws(ReceiverError) -> [EventRow]
    /// Every event of one set at one hospital, in order.
    func events(hospital: String, set: String) async throws(ReceiverError) -> [EventRow]
    /// Events by their storage ids (what a notification names), in id order.
    func events(ids: [Int64]) async throws(ReceiverError) -> [EventRow]

    /// One hospital's open sets, newest first; every hospital's when `hospital` is nil.
    func openSets(hospital: String?) async throws(ReceiverError) -> [SetRow]
    func set(hospital: String, set: String) async throws(ReceiverError) -> SetRow?
    /// The hospitals that hold the set (a set is sent to another hospital after a divert).
    func hospitals(holding set: String) async throws(ReceiverError) -> [String]
    func versions(hospital: String, set: String) async throws(ReceiverError) -> [StoredVersionRow]
    func sealedDocument(versionIdentifier: String) async throws(ReceiverError) -> SealedDocumentRow?
    /// Every document (sealed), in the order stored, optionally one hospital's.
    func sealedDocuments(hospital: String?) async throws(ReceiverError) -> [SealedDocumentRow]
    func anchors(device: String?) async throws(ReceiverError) -> [StoredAnchor]

    /// Runs until the task is cancelled: (PostgreSQL) the listener that hands what other instances commit to
    /// `changed`.
    func run(changed: @escaping @Sendable ([StorageNotice]) async -> Void) async throws
    /// Work at shutdown (SQLite: the WAL into the database).
    func checkpoint() async
    /// Closes the engine.
    func close() async throws(ReceiverError)
}

/// What another instance committed, as its notification names it.
enum StorageNotice: Sendable, Hashable {
    /// A handoff event, by storage id.
    case event(Int64)
    /// A placement event, by storage id.
    case placementEvent(Int64)
    /// A hospital's new publication.
    case acceptance(String)
}

/// One document to store, sealed, with its metadata.
struct IntakeRow: Sendable {
    var hospital: String
    var set: String
    var version: Int
    var versionIdentifier: String
    var bundleID: String
    var builtAt: Int64
    var sha: String
    var keyID: String
    var sealing: Int
    var sealed: Data
    var device: String
    var at: Int64
    var anchor: AuditAnchor?
}

/// What storing one document came to.
enum IntakeStep: Sendable {
    case created(StoredVersionRow, EventRow)
    case resent(StoredVersionRow)
}

/// A status change asked of the storage.
struct StatusChange: Sendable {
    var hospital: String
    var set: String
    var status: HandoffStatus
    var reason: String?
    /// The note, sealed with the hospital's key.
    var noteSealed: Data?
    var actor: HospitalStore.Actor
    var at: Int64
}

/// What a status change came to.
enum TransitionStep: Sendable {
    case done(SetRow, EventRow?)
    case notFound
    case conflict(String)
}

/// The rule of status changes, the same on every engine: decided inside the transaction from the set as it is.
enum TransitionRule {
    enum Decision: Equatable {
        /// Record the change.
        case apply
        /// The same status again: nothing to record.
        case unchanged
        case notFound
        case conflict(String)
    }

    static func decide(current: HandoffStatus, owner: String, to status: HandoffStatus, by actor: HospitalStore.Actor)
        -> Decision
    {
        if case .device(let device) = actor, device != owner { return .notFound }
        if current == status && current != .diverted { return .unchanged }
        switch (actor, current) {
        case (_, .arrived): return .conflict("the patient has arrived: the set is closed")
        case (.staff, .withdrawn): return .conflict("the ambulance withdrew this patient")
        case (.staff, .diverted): return .conflict("this patient was diverted")
        default: return .apply
        }
    }
}

/// An event row as stored (the note sealed).
struct EventRow: Sendable, Hashable {
    var id: Int64
    var hospital: String
    var boardSequence: Int64
    var device: String
    var sequence: Int64
    var set: String
    var version: Int
    var status: String
    var reason: String?
    var noteSealed: Data?
    var sealing: Int
    var at: Int64
}

/// A document set row as stored (the note sealed).
struct SetRow: Sendable, Hashable {
    var hospital: String
    var set: String
    var device: String
    var status: String
    var latestVersion: Int
    var reason: String?
    var noteSealed: Data?
    var sealing: Int
    var firstReceivedAt: Int64
    var updatedAt: Int64
}

/// A document version's metadata as stored.
struct StoredVersionRow: Sendable, Hashable {
    var hospital: String
    var set: String
    var version: Int
    var versionIdentifier: String
    var bundleID: String
    var sha256: String
    var device: String
    var receivedAt: Int64
    var builtAt: Int64
}

/// A document version with its sealed bytes.
struct SealedDocumentRow: Sendable {
    var version: StoredVersionRow
    var keyID: String
    var sealing: Int
    var sealed: Data
}

/// Times in storage: milliseconds since 1970.
enum StorageTime {
    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}

// MARK: - Acceptance and placement requests (migration v3)

/// What storing acceptances and placements asks of an engine; both engines implement it with the same rules.
protocol RegionStorage: Sendable {
    /// Every hospital's latest publication.
    func acceptances() async throws(ReceiverError) -> [AcceptanceRow]
    /// One hospital's latest publication.
    func acceptance(hospital: String) async throws(ReceiverError) -> AcceptanceRow?
    /// Publishes for `hospital`: `next` makes the new publication from the latest (nil for none) while the
    /// hospital's row is locked, so that publications from several instances at once apply one after another; the
    /// new one is kept, and in the history.
    func publishAcceptance(
        hospital: String,
        next: @escaping @Sendable (AcceptanceRow?) throws(ReceiverError) -> AcceptanceRow
    ) async throws(ReceiverError) -> AcceptanceRow
    /// The publications stored from `since` until `until` (ms), in order.
    func acceptanceHistory(since: Int64, until: Int64) async throws(ReceiverError) -> [AcceptanceRow]

    /// Stores a request and asks its hospitals (a `pending` event on each board), or finds it stored already.
    func createPlacement(_ placement: PlacementRow, targets: [PlacementTargetRow]) async throws(ReceiverError)
        -> PlacementCreation
    /// A hospital answers: the first `accepted` places the patient and tells every other pending hospital it went
    /// elsewhere; `declined` is that hospital's alone.
    func answerPlacement(
        _ placement: String,
        hospital: String,
        answer: PlacementAnswer,
        reason: String?,
        noteSealed: Data?,
        staff: String,
        at: Int64
    ) async throws(ReceiverError) -> PlacementStep
    /// The ambulance withdraws its request: every pending hospital is told.
    func cancelPlacement(_ placement: String, device: String, at: Int64) async throws(ReceiverError) -> PlacementStep
    /// One request with its hospitals.
    func placement(_ id: String) async throws(ReceiverError) -> (PlacementRow, [PlacementTargetRow])?
    /// The requests that asked `hospital`, newest first: those still pending there, or all of them.
    func placements(hospital: String, pendingOnly: Bool) async throws(ReceiverError)
        -> [(PlacementRow, [PlacementTargetRow])]
    /// The requests made before `before` (ms) that still wait: none accepted, not withdrawn, a hospital still
    /// pending; oldest first, with the ambulance that made each.
    func waitingPlacements(before: Int64) async throws(ReceiverError) -> [(id: String, device: String)]
    /// Every request made from `since` until `until` (ms), oldest first (the review).
    func placements(since: Int64, until: Int64) async throws(ReceiverError) -> [(PlacementRow, [PlacementTargetRow])]

    /// The device's placement events after `sequence`.
    func placementEvents(device: String, after sequence: Int64) async throws(ReceiverError) -> [PlacementEventRow]
    /// The device's placement events at or after `since` (ms).
    func placementEvents(device: String, since: Int64) async throws(ReceiverError) -> [PlacementEventRow]
    /// A hospital's placement events after its board position.
    func placementBoardEvents(hospital: String, after position: Int64) async throws(ReceiverError)
        -> [PlacementEventRow]
    /// Placement events by storage id.
    func placementEvents(ids: [Int64]) async throws(ReceiverError) -> [PlacementEventRow]
}

/// A hospital's publication as stored (not patient data: plaintext).
struct AcceptanceRow: Sendable, Hashable {
    var hospital: String
    var revision: Int64
    /// HospitalAcceptance's JSON.
    var body: String
    var staff: String?
    var at: Int64
}

/// A placement request as stored.
struct PlacementRow: Sendable, Hashable {
    var id: String
    var device: String
    var set: String
    /// SHA-256 of what was asked (hospitals and summary), so that a resend is told from another request.
    var requestSHA: String
    var createdAt: Int64
    var placedHospital: String?
    var placedAt: Int64?
    var cancelledAt: Int64?
}

/// One asked hospital of a request, as stored.
struct PlacementTargetRow: Sendable, Hashable {
    var placement: String
    var hospital: String
    var answer: String
    var reason: String?
    var noteSealed: Data?
    /// The summary, sealed with this hospital's key.
    var summarySealed: Data
    var answeredAt: Int64?
    var staff: String?
}

/// A placement event as stored.
struct PlacementEventRow: Sendable, Hashable {
    var id: Int64
    var hospital: String
    var boardSequence: Int64
    var device: String
    var sequence: Int64
    var placement: String
    var set: String
    var answer: String
    var reason: String?
    var noteSealed: Data?
    var at: Int64
}

/// What storing a request came to.
enum PlacementCreation: Sendable {
    case created([PlacementEventRow])
    /// The same id was stored already (a resend when the request's SHA-256 is the same).
    case existing(PlacementRow)
}

/// What an answer or a cancel came to.
enum PlacementStep: Sendable {
    case done([PlacementEventRow])
    case notFound
    case conflict(String)
}

/// The rule of answers, the same on every engine.
enum PlacementRule {
    /// Whether `hospital` may give `answer` now.
    static func check(
        _ placement: PlacementRow,
        target: PlacementTargetRow?,
        answer: PlacementAnswer
    ) -> PlacementStep? {
        guard let target else { return .notFound }
        if placement.cancelledAt != nil { return .conflict("the ambulance withdrew this request") }
        if let placed = placement.placedHospital {
            return .conflict(
                placed == target.hospital
                    ? "this hospital has accepted the patient already" : "the patient was placed at another hospital"
            )
        }
        guard target.answer == PlacementAnswer.pending.rawValue else {
            return .conflict("this hospital has answered already")
        }
        guard answer == .accepted || answer == .declined else { return .conflict("answer accepted or declined") }
        return nil
    }
}
