public import Foundation
public import KyukyuDomain

/// A document set's status at this hospital, as the ambulance's event stream and the board say it.
public struct HandoffStatus: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The contract's spelling.
    public let rawValue: String
    /// Makes a status from its spelling; nil for an unknown one.
    public init?(rawValue: String) {
        guard Self.all.contains(where: { $0.rawValue == rawValue }) else { return nil }
        self.rawValue = rawValue
    }
    private init(_ rawValue: String) { self.rawValue = rawValue }

    /// A version was stored.
    public static let received = HandoffStatus("received")
    /// Staff acknowledged: the hospital expects the patient.
    public static let acknowledged = HandoffStatus("acknowledged")
    /// Staff cannot accept the patient (with a reason).
    public static let diverted = HandoffStatus("diverted")
    /// Handover complete.
    public static let arrived = HandoffStatus("arrived")
    /// The crew chose another hospital or closed the incident.
    public static let withdrawn = HandoffStatus("withdrawn")
    /// Every status.
    public static let all: [HandoffStatus] = [.received, .acknowledged, .diverted, .arrived, .withdrawn]

    /// Whether the set is closed here (handed over, or withdrawn by the crew): it leaves the board's list.
    public var isClosed: Bool { self == .arrived || self == .withdrawn }
    /// The spelling.
    public var description: String { rawValue }
}

/// Why staff divert an ambulance (handoff contract, "Divert reasons").
public enum DivertReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// No beds.
    case noBeds = "no-beds"
    /// No specialist on duty.
    case noSpecialist = "no-specialist"
    /// CT unavailable.
    case ctUnavailable = "ct-unavailable"
    /// Operating rooms full.
    case operatingRoomsFull = "operating-rooms-full"
    /// ICU full.
    case icuFull = "icu-full"
    /// Another reason: a note is then required.
    case other
}

/// Why the crew withdrew a document set from this hospital.
public enum WithdrawReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// The crew chose another hospital.
    case anotherHospital = "another-hospital"
    /// The crew closed the incident.
    case closed
}

/// One status change of a document set, as stored and streamed.
public struct HandoffEvent: Sendable, Hashable {
    /// The board stream's id: increasing over every device.
    public var id: Int64
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
    public func json(hospital: HospitalCode, board: Bool) -> [String: Any] {
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
    public var anchor: HandoffAuditAnchor
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
