import Foundation
import KyukyuDomain

/// The identifier of an incident: a random (version 4) UUID, so it says nothing about the patient.
public struct IncidentID: Hashable, Sendable, Codable, LosslessStringConvertible {
    /// The underlying random UUID.
    public let uuid: UUID

    /// Creates a new random incident identifier.
    public init() { self.uuid = UUID() }

    /// Wraps an existing UUID.
    public init(uuid: UUID) { self.uuid = uuid }

    /// Parses the canonical UUID text form; returns `nil` for anything else.
    public init?(_ description: String) {
        guard let uuid = UUID(uuidString: description) else { return nil }
        self.uuid = uuid
    }

    /// The lower-case canonical UUID text, as stored in the database.
    public var description: String { self.uuid.uuidString.lowercased() }

    /// Decodes from the UUID text form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = IncidentID(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an incident id")
        }
        self = id
    }

    /// Encodes as the UUID text form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}

/// The kind of a record in an incident: a ``MedicalCategory`` (named by its raw value, such as
/// `medications`) or one of the vault's own kinds (``patient``, ``observations``, ``handoffDocument``).
///
/// Kinds are stored in plaintext (they are category names, not patient data), so they are restricted
/// to short lower-case identifiers: `[a-z][a-z0-9._-]{0,63}`.
public struct RecordKind: Hashable, Sendable, Codable, LosslessStringConvertible {
    /// The category name.
    public let rawValue: String

    /// Validates and wraps a category name; returns `nil` if it is not a short lower-case identifier.
    public init?(_ rawValue: String) {
        guard Self.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    private init(unchecked rawValue: String) { self.rawValue = rawValue }

    /// The category name.
    public var description: String { self.rawValue }

    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 64, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
            return false
        }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    /// Decodes and validates a category name.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let kind = RecordKind(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a record kind")
        }
        self = kind
    }

    /// Encodes the category name.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.rawValue)
    }

    /// The patient's identity as read from the card (name, birth date, address).
    public static let patient = RecordKind(unchecked: "patient")
    /// The record kind that stores `category`; its name is the category's raw value (`medications`…).
    public init(_ category: MedicalCategory) { self.init(unchecked: category.rawValue) }

    /// The medical category this kind stores, or `nil` for the vault's own kinds (``patient``,
    /// ``observations``, ``handoffDocument``, or any other).
    public var category: MedicalCategory? { MedicalCategory(rawValue: self.rawValue) }

    /// Insurance qualification (insurer, validity).
    public static let qualification = RecordKind(.qualification)
    /// Visits (institutions, dates).
    public static let visits = RecordKind(.visits)
    /// Diagnoses and past history.
    public static let diagnoses = RecordKind(.diagnoses)
    /// Dispensed medications.
    public static let medications = RecordKind(.medications)
    /// Electronic prescriptions (`prescriptions`; `e-prescriptions` before the vocabulary was unified).
    public static let prescriptions = RecordKind(.prescriptions)
    /// Surgery.
    public static let surgery = RecordKind(.surgery)
    /// Treatment, including dialysis.
    public static let treatment = RecordKind(.treatment)
    /// Specific health checkups.
    public static let checkups = RecordKind(.checkups)
    /// Allergies, drug contraindications, infections.
    public static let allergies = RecordKind(.allergies)
    /// Crew observations (vitals, chief complaint) entered on scene.
    public static let observations = RecordKind(unchecked: "observations")
    /// The handoff document prepared for the hospital.
    public static let handoffDocument = RecordKind(unchecked: "handoff-document")
}
