public import Foundation
public import KyukyuDomain
public import KyukyuOnshi

/// A category of records that did not arrive in time (or at all) when the document was built.
public struct CategoryGap: Sendable, Hashable, Codable {
    /// The category.
    public var category: MedicalCategory
    /// The gateway's status word for it, as the tablet shows it: `pending`, `late`, `failed`, `retrying`,
    /// `timed-out`, `cancelled` (lowercase letters and hyphens, at most 32).
    public var status: String

    /// A gap.
    public init(_ category: MedicalCategory, status: String) {
        self.category = category
        self.status = status
    }
}

/// Everything one version of the pre-arrival document is built from. Pure data: the builder reads nothing else
/// (no clock, no randomness), so the same input gives the same bytes.
public struct HandoffInput: Sendable, Hashable {
    /// The incident's document set (`Composition.identifier`); random, the same for every version and hospital.
    public var documentSet: UUID
    /// The version number, 1, 2, … (`Bundle.meta.versionId`).
    public var version: Int
    /// This version's random uuid: `Bundle.id` and `Bundle.identifier` (`urn:uuid:…`).
    public var versionID: UUID
    /// Version N−1's uuid (its `Bundle.identifier`), required when ``version`` > 1 and absent for version 1.
    public var previousVersionID: UUID?
    /// When the document is built (`Bundle.timestamp`, `Composition.date`, `Provenance.recorded`).
    public var builtAt: Date
    /// When the onshi records were read (`Provenance.occurredDateTime`: the data is as of then).
    public var dataAsOf: Date
    /// The onshi records per category; a category may be missing (see ``gaps``).
    public var records: [MedicalCategory: CategoryRecords]
    /// The categories that were missing or late, with the gateway's status word.
    public var gaps: [CategoryGap]
    /// What the crew observed and did (may be empty: no vitals yet).
    public var observations: CrewObservations
    /// The legal basis of the viewing.
    public var consent: ConsentBasis?
    /// The crew member's id (`[A-Za-z0-9._-]{1,64}`).
    public var crewID: String
    /// The sending device's id, the CN of its client certificate (`[A-Za-z0-9._-]{1,64}`).
    public var deviceID: String
    /// The receiving hospital.
    public var hospital: HospitalCode
    /// The receiving hospital's name.
    public var hospitalName: String
    /// The gateway's signed audit head at build time.
    public var auditAnchor: AuditAnchor

    /// An input; ``HandoffDocumentBuilder/build(_:)`` checks it.
    public init(
        documentSet: UUID,
        version: Int,
        versionID: UUID,
        previousVersionID: UUID?,
        builtAt: Date,
        dataAsOf: Date,
        records: [MedicalCategory: CategoryRecords],
        gaps: [CategoryGap],
        observations: CrewObservations,
        consent: ConsentBasis?,
        crewID: String,
        deviceID: String,
        hospital: HospitalCode,
        hospitalName: String,
        auditAnchor: AuditAnchor
    ) {
        self.documentSet = documentSet
        self.version = version
        self.versionID = versionID
        self.previousVersionID = previousVersionID
        self.builtAt = builtAt
        self.dataAsOf = dataAsOf
        self.records = records
        self.gaps = gaps
        self.observations = observations
        self.consent = consent
        self.crewID = crewID
        self.deviceID = deviceID
        self.hospital = hospital
        self.hospitalName = hospitalName
        self.auditAnchor = auditAnchor
    }
}

/// The builder refused its input. The reason names the field, never its value.
public struct HandoffBuildError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable {
        case invalidInput = "invalid-input"
        case encoding
    }

    private let code: Code
    /// What is wrong, without the value.
    public let reason: String
    /// The file where the error was created.
    public let file: String
    /// The line where the error was created.
    public let line: UInt

    private init(_ code: Code, _ reason: String, file: String, line: UInt) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// A stable identifier of the kind of error.
    public var kind: String { code.rawValue }

    /// The kind and the reason.
    public var description: String { "HandoffBuildError.\(code.rawValue): \(reason)" }

    /// A field of the input is out of its form or range.
    public static func invalidInput(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.invalidInput, reason, file: file, line: line)
    }

    /// The JSON could not be written (a non-finite number).
    public static func encoding(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.encoding, reason, file: file, line: line)
    }

    /// Errors match by kind.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the kind.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
