// The hospital handoff's vocabulary, shared by the gateway's workflow and outbox, the FHIR document and the
// hospital's receiver (docs/handoff-document.md, docs/receiver-api.yaml).

/// Where a pre-arrival document stands at the hospital it goes to. The gateway's outbox knows the first two; the
/// receiver says the rest.
public enum HandoffStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// A version waits in the ambulance's outbox (no network, or the receiver is down).
    case queued
    /// The receiver stored it (its POST answered 201 or 200).
    case sent
    /// The hospital's board has it.
    case received
    /// Someone at the hospital acknowledged it: the hospital expects the patient.
    case acknowledged
    /// The hospital cannot take the patient (a ``DivertReason`` says why): the crew picks another.
    case diverted
    /// The patient arrived and was handed over: the ambulance forgets the patient.
    case arrived
    /// The crew chose another hospital, or closed the incident.
    case withdrawn
}

/// Why a hospital diverts an ambulance.
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

/// A hospital's divert: the reason, and its staff's short note.
public struct Divert: Sendable, Hashable, Codable {
    /// The reason.
    public var reason: DivertReason
    /// The note (at most 200 characters; shown to the crew as it is).
    public var note: String?

    /// A divert.
    public init(_ reason: DivertReason, note: String? = nil) {
        self.reason = reason
        self.note = note
    }
}

/// Why the crew withdrew a document set from a hospital.
public enum WithdrawReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// The crew chose another hospital.
    case anotherHospital = "another-hospital"
    /// The crew closed the incident.
    case closed
}

/// The gateway's signed audit head when a document was built. Each document carries it and the receiver keeps
/// it, so that a tablet whose audit trail is later rolled back is caught (`kyukyu audit verify --anchors`). The
/// same fields as the vault's `AuditHead`.
public struct AuditAnchor: Sendable, Hashable, Codable {
    /// The head entry's sequence number.
    public var sequence: Int64
    /// Its hash (hex).
    public var hash: String
    /// When the head was signed, in milliseconds since 1970.
    public var signedAtMilliseconds: Int64
    /// The audit signing key (base64).
    public var signingPublicKey: String
    /// The signature (base64).
    public var signature: String

    /// An anchor.
    public init(sequence: Int64, hash: String, signedAtMilliseconds: Int64, signingPublicKey: String, signature: String)
    {
        self.sequence = sequence
        self.hash = hash
        self.signedAtMilliseconds = signedAtMilliseconds
        self.signingPublicKey = signingPublicKey
        self.signature = signature
    }
}
