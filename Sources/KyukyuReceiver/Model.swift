public import Foundation
public import KyukyuDomain

/// The statuses a receiver gives a document set (the outbox's own `queued` and `sent` never come from here).
extension HandoffStatus {
    /// Every status a receiver records.
    public static let receiverStatuses: [HandoffStatus] = [.received, .acknowledged, .diverted, .arrived, .withdrawn]

    /// Whether the set is closed here (handed over, or withdrawn by the crew): it leaves the board's list.
    public var isClosed: Bool { self == .arrived || self == .withdrawn }
}

/// One status change of a document set, as stored and streamed.
public struct HandoffEvent: Sendable, Hashable {
    /// The board stream's id: the event's position among its hospital's events (every device's), increasing.
    public var id: Int64
    /// The hospital whose board it is on (the set's destination).
    public var hospital: HospitalCode
    /// The device whose document set it is.
    public var device: String
    /// The device stream's id: increasing per device.
    public var sequence: Int64
    /// The document set.
    public var documentSet: UUID
    /// The latest version of the set when the event happened.
    public var version: Int
    /// The new status.
    public var status: HandoffStatus
    /// The reason code (diverted: a ``DivertReason``; withdrawn: a ``WithdrawReason``).
    public var reason: String?
    /// Staff's short note (diverted), sealed at rest.
    public var note: String?
    /// When it happened.
    public var at: Date

    /// Makes an event.
    public init(
        id: Int64,
        hospital: HospitalCode,
        device: String,
        sequence: Int64,
        documentSet: UUID,
        version: Int,
        status: HandoffStatus,
        reason: String?,
        note: String?,
        at: Date
    ) {
        self.id = id
        self.hospital = hospital
        self.device = device
        self.sequence = sequence
        self.documentSet = documentSet
        self.version = version
        self.status = status
        self.reason = reason
        self.note = note
        self.at = at
    }

    /// `urn:uuid:<set>`, as the document says it.
    public var documentSetURN: String { "urn:uuid:" + documentSet.uuidString.lowercased() }

    /// The event's JSON object for the device stream (`documentSet`, `version`, `hospital`, `status`, `reason`,
    /// `note`, `at`); the board's adds `device` and `sequence`.
    public func json(board: Bool) -> [String: Any] {
        var object: [String: Any] = [
            "documentSet": documentSetURN,
            "version": version,
            "hospital": hospital.rawValue,
            "status": status.rawValue,
            "at": Instant.string(at),
        ]
        if let reason { object["reason"] = reason }
        if let note { object["note"] = note }
        if board {
            object["device"] = device
            object["sequence"] = sequence
        }
        return object
    }
}

/// One stored version of a document (its plaintext metadata; the document itself is sealed).
public struct StoredVersion: Sendable, Hashable {
    /// The document set.
    public var documentSet: UUID
    /// The hospital it was sent to.
    public var hospital: HospitalCode
    /// The version number.
    public var version: Int
    /// `Bundle.identifier.value`, the idempotency key.
    public var versionIdentifier: String
    /// `Bundle.id`.
    public var bundleID: String
    /// SHA-256 of the posted bytes, hex.
    public var sha256: String
    /// The sending device.
    public var device: String
    /// When it was stored.
    public var receivedAt: Date
    /// `Bundle.timestamp`.
    public var builtAt: Date
}

/// A document set as the board lists it.
public struct DocumentSetSummary: Sendable, Hashable {
    /// The set.
    public var documentSet: UUID
    /// The hospital it was sent to (a set goes to another hospital after a divert: one summary at each).
    public var hospital: HospitalCode
    /// The device that sends it.
    public var device: String
    /// Its status here.
    public var status: HandoffStatus
    /// The latest version stored.
    public var latestVersion: Int
    /// The latest status change's reason code, if any.
    public var reason: String?
    /// The latest status change's note, if any.
    public var note: String?
    /// When its first version arrived.
    public var firstReceivedAt: Date
    /// When it last changed.
    public var updatedAt: Date
}

/// A device (ambulance gateway) known to the receiver: issued a certificate by `kyukyu-hospital device issue`.
public struct DeviceRecord: Sendable, Hashable, Codable {
    /// The device id (its certificate's CN).
    public var id: String
    /// When its certificate was issued.
    public var issuedAt: Date
    /// When it was revoked, if it was.
    public var revokedAt: Date?
}

/// One audit anchor kept by the receiver, with the document that carried it.
public struct StoredAnchor: Sendable, Hashable, Codable {
    /// The device whose audit head it is.
    public var device: String
    /// The head.
    public var anchor: AuditAnchor
    /// The document set that carried it.
    public var documentSet: UUID
    /// The version that carried it.
    public var version: Int
    /// When that version was stored.
    public var receivedAt: Date
}

/// What an intake did.
public enum IntakeOutcome: Sendable, Hashable {
    /// Stored for the first time (201), with the `received` event.
    case created(StoredVersion, HandoffEvent)
    /// The same key with the same bytes was stored already (200): a resend.
    case resent(StoredVersion)
}

/// One change of a placement request at one hospital, as stored and streamed: to the asked hospital's board, and to
/// the ambulance's event stream (whose sequence it shares with ``HandoffEvent``).
public struct PlacementEvent: Sendable, Hashable {
    /// The board stream's id at ``hospital`` (shared with that hospital's ``HandoffEvent``s).
    public var id: Int64
    /// The hospital asked.
    public var hospital: HospitalCode
    /// The ambulance that asked.
    public var device: String
    /// The ambulance's stream id (shared with its ``HandoffEvent``s).
    public var sequence: Int64
    /// The request.
    public var placement: UUID
    /// The patient's document set.
    public var documentSet: UUID
    /// The hospital's answer now (`pending`: the request has just arrived).
    public var answer: PlacementAnswer
    /// The reason of a decline.
    public var reason: DivertReason?
    /// The staff's short note with a decline, sealed at rest.
    public var note: String?
    /// When.
    public var at: Date

    /// The JSON object of the streams.
    public func json(board: Bool) -> [String: Any] {
        var object: [String: Any] = [
            "placement": placement.uuidString.lowercased(),
            "documentSet": "urn:uuid:" + documentSet.uuidString.lowercased(),
            "hospital": hospital.rawValue,
            "answer": answer.rawValue,
            "at": Instant.string(at),
        ]
        if let reason { object["reason"] = reason.rawValue }
        if let note { object["note"] = note }
        if board { object["device"] = device }
        return object
    }
}

/// What the receiver's streams carry: a document set's status, a placement request's answer, or a hospital's
/// acceptance.
public enum StreamEvent: Sendable, Hashable {
    /// A document set's status changed.
    case handoff(HandoffEvent)
    /// A placement request changed at one hospital.
    case placement(PlacementEvent)
    /// A hospital published what it accepts.
    case acceptance(HospitalAcceptance)

    /// The ambulance whose stream carries it (nil: every ambulance's acceptance feed).
    public var device: String? {
        switch self {
        case .handoff(let event): event.device
        case .placement(let event): event.device
        case .acceptance: nil
        }
    }

    /// Its position in the ambulance's stream.
    public var sequence: Int64? {
        switch self {
        case .handoff(let event): event.sequence
        case .placement(let event): event.sequence
        case .acceptance: nil
        }
    }

    /// The hospital whose board carries it.
    public var hospital: HospitalCode {
        switch self {
        case .handoff(let event): event.hospital
        case .placement(let event): event.hospital
        case .acceptance(let acceptance): acceptance.hospital
        }
    }

    /// Its position on the hospital's board (nil: not on a board).
    public var boardPosition: Int64? {
        switch self {
        case .handoff(let event): event.id
        case .placement(let event): event.id
        case .acceptance: nil
        }
    }
}

/// A placement request as the ambulance and each asked hospital see it.
public struct PlacementView: Sendable, Hashable {
    /// The request.
    public var placement: UUID
    /// The ambulance that asked.
    public var device: String
    /// The patient's document set.
    public var documentSet: UUID
    /// When it was made.
    public var createdAt: Date
    /// The hospital that accepted first, if one did.
    public var placedAt: HospitalCode?
    /// Each asked hospital's answer.
    public var answers: [HospitalCode: PlacementAnswer]
    /// What the hospitals were told (opened with the reading hospital's key; nil in the ambulance's view).
    public var summary: PlacementSummary?

    /// The JSON object of the APIs.
    public func json() -> [String: Any] {
        var object: [String: Any] = [
            "placement": placement.uuidString.lowercased(),
            "documentSet": "urn:uuid:" + documentSet.uuidString.lowercased(),
            "createdAt": Instant.string(createdAt),
            "answers": Dictionary(uniqueKeysWithValues: answers.map { ($0.key.rawValue, $0.value.rawValue) }),
        ]
        if let placedAt { object["placedAt"] = placedAt.rawValue }
        if let summary,
            let data = try? JSONEncoder().encode(summary),
            let value = try? JSONSerialization.jsonObject(with: data)
        {
            object["summary"] = value
        }
        return object
    }
}
