public import Foundation

// What a hospital can accept right now, by condition, as the regional hub publishes it live and the crew's
// hospital picker reads it. The reasons a hospital gives are the divert reasons (``DivertReason``): one vocabulary
// for "we cannot take this patient", whether said before the ambulance picks the hospital or after. Pure values:
// the hub, the receiver and the tablet check a publication here, once, with the same words.

/// A department or condition a hospital publishes whether it accepts right now (受入可否).
public enum AcceptanceCondition: String, Sendable, Hashable, Codable, CaseIterable {
    /// 脳卒中: stroke (thrombolysis, thrombectomy).
    case stroke
    /// STEMI(急性心筋梗塞): ST-elevation myocardial infarction (primary PCI).
    case stemi
    /// 外傷: major trauma.
    case trauma
    /// 熱傷: burns.
    case burns
    /// 小児: children.
    case paediatrics
    /// 透析: dialysis.
    case dialysis

    /// A short English label for the picker.
    public var label: String {
        switch self {
        case .stroke: "Stroke"
        case .stemi: "STEMI"
        case .trauma: "Trauma"
        case .burns: "Burns"
        case .paediatrics: "Paediatrics"
        case .dialysis: "Dialysis"
        }
    }

    /// The Japanese label the crew's picker shows.
    public var labelJapanese: String {
        switch self {
        case .stroke: "脳卒中"
        case .stemi: "STEMI(急性心筋梗塞)"
        case .trauma: "外傷"
        case .burns: "熱傷"
        case .paediatrics: "小児"
        case .dialysis: "透析"
        }
    }
}

/// Whether a hospital accepts one condition right now: accepting, or not accepting with a ``DivertReason`` and its
/// staff's short note.
///
/// Made only through ``accepting`` and ``notAccepting(_:note:)`` (or decoding), which check the note, so a value
/// in hand is always valid. Its JSON form is `{"accepting":true}` or
/// `{"accepting":false,"reason":"no-beds","note":"…"}` (the note is left out when there is none).
public struct ConditionAcceptance: Sendable, Hashable, Codable {
    /// Why the hospital does not accept the condition, and the staff's note; nil while it accepts.
    public let refusal: Divert?

    /// The longest staff note, in characters.
    public static let maximumNoteLength = 200

    /// The hospital accepts the condition.
    public static let accepting = ConditionAcceptance(refusal: nil)

    private init(refusal: Divert?) {
        self.refusal = refusal
    }

    /// The hospital does not accept the condition, for `reason`. The note is trimmed (an empty note is no note),
    /// must have at most ``maximumNoteLength`` characters and no control characters, and is required when the
    /// reason is ``DivertReason/other``.
    public static func notAccepting(_ reason: DivertReason, note: String? = nil) throws(AcceptanceError) -> Self {
        try notAccepting(reason, note: note, field: "")
    }

    /// Whether the hospital accepts the condition.
    public var isAccepting: Bool { refusal == nil }

    private static func notAccepting(_ reason: DivertReason, note: String?, field: String) throws(AcceptanceError)
        -> Self
    {
        let noteField = JSONFields.join(field, "note")
        let trimmed = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        let note = trimmed?.isEmpty == true ? nil : trimmed
        if let note {
            guard note.count <= maximumNoteLength else { throw .tooLong(noteField, maximumNoteLength) }
            guard !note.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .invalid(noteField, "has control characters")
            }
        } else if reason == .other {
            throw .missing(noteField, "a note is required when the reason is other")
        }
        return ConditionAcceptance(refusal: Divert(reason, note: note))
    }

    private enum Key: String, CodingKey, CaseIterable {
        case accepting
        case reason
        case note
    }

    /// Decodes and checks one condition's acceptance; an ``AcceptanceError`` names the field at fault.
    public init(from decoder: any Decoder) throws {
        let field = JSONFields.path(decoder.codingPath)
        let container = try JSONFields.keyedContainer(decoder, field: field)
        try JSONFields.refuseUnknownKeys(container, known: Key.allCases.map(\.rawValue), field: field)
        let keyed = try decoder.container(keyedBy: Key.self)
        let accepting = try JSONFields.decode(Bool.self, keyed, .accepting, field: field, expected: "true or false")
        guard let accepting else { throw AcceptanceError.missing(JSONFields.join(field, "accepting")) }
        let reasonText = try JSONFields.decode(String.self, keyed, .reason, field: field, expected: "a string")
        let note = try JSONFields.decode(String.self, keyed, .note, field: field, expected: "a string")
        if accepting {
            if reasonText != nil {
                throw AcceptanceError.inconsistent(
                    JSONFields.join(field, "reason"),
                    "an accepting condition has no reason"
                )
            }
            if note != nil {
                throw AcceptanceError.inconsistent(JSONFields.join(field, "note"), "an accepting condition has no note")
            }
            self = .accepting
            return
        }
        guard let reasonText else {
            throw AcceptanceError.missing(
                JSONFields.join(field, "reason"),
                "a condition not accepted needs a reason"
            )
        }
        guard let reason = DivertReason(rawValue: reasonText) else {
            throw AcceptanceError.unknown(JSONFields.join(field, "reason"), "is not a known reason")
        }
        self = try Self.notAccepting(reason, note: note, field: field)
    }

    /// Encodes `{"accepting":true}` or `{"accepting":false,"reason":…,"note":…}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(isAccepting, forKey: .accepting)
        if let refusal {
            try container.encode(refusal.reason.rawValue, forKey: .reason)
            try container.encodeIfPresent(refusal.note, forKey: .note)
        }
    }
}

/// What one hospital accepts right now, condition by condition, as it published it.
///
/// A condition absent from ``conditions`` is not published: the crew does not know, which is not the same as not
/// accepting. Every change makes a new ``revision`` (``updated(setting:withdrawing:at:)``); of two publications of
/// the same hospital, the higher revision wins (``supersedes(_:)``), whatever their times say, since a clock may
/// step back and a revision does not.
///
/// The JSON form is stable and checked field by field:
///
/// ```json
/// {"hospital":"9999999991","revision":3,"updatedAt":"2026-11-27T10:00:00Z",
///  "conditions":{"stroke":{"accepting":true},"dialysis":{"accepting":false,"reason":"no-beds","note":"…"}}}
/// ```
///
/// `updatedAt` is UTC, to the second, exactly as `YYYY-MM-DDThh:mm:ssZ`. Decoding refuses a field it does not know,
/// an unknown condition or reason, a missing field, a reason missing on a condition not accepted, a note that is
/// too long, and a negative revision, with an ``AcceptanceError`` whose ``AcceptanceError/field`` says where
/// (`conditions.dialysis.reason`). A field this version does not know is refused rather than skipped, so that
/// nothing a hospital said about its intake is silently dropped.
public struct HospitalAcceptance: Sendable, Hashable, Codable {
    /// The hospital.
    public let hospital: HospitalCode
    /// What it published, by condition; an absent condition is unknown.
    public let conditions: [AcceptanceCondition: ConditionAcceptance]
    /// Increases with every change; the higher revision is the newer.
    public let revision: Int64
    /// When the hospital last changed or confirmed its publication (UTC, whole seconds).
    public let updatedAt: Date

    /// A publication. ``AcceptanceError`` when the revision is negative. `updatedAt` is kept to the whole second
    /// (rounded down), as in the JSON form, so that a value and its JSON round trip are equal.
    public init(
        hospital: HospitalCode,
        conditions: [AcceptanceCondition: ConditionAcceptance],
        revision: Int64,
        updatedAt: Date
    ) throws(AcceptanceError) {
        guard revision >= 0 else { throw .invalid("revision", "must be 0 or more") }
        self.hospital = hospital
        self.conditions = conditions
        self.revision = revision
        self.updatedAt = Date(timeIntervalSince1970: updatedAt.timeIntervalSince1970.rounded(.down))
    }

    /// What the hospital published for `condition`; nil when it published nothing for it (unknown).
    public subscript(_ condition: AcceptanceCondition) -> ConditionAcceptance? { conditions[condition] }

    /// The publication after a change made at `time`: the conditions in `changes` take their new values, those in
    /// `withdrawing` become unknown again, every other condition is kept; the revision is one more and the time is
    /// `time`. An empty change is a confirmation ("still as published") and makes a new revision too, so that the
    /// crew sees the publication is fresh.
    ///
    /// ``AcceptanceError`` when a condition is both set and withdrawn, or the revision cannot grow. The time may be
    /// earlier than ``updatedAt`` (a clock stepped back): the revision, not the time, orders publications.
    public func updated(
        setting changes: [AcceptanceCondition: ConditionAcceptance],
        withdrawing: Set<AcceptanceCondition> = [],
        at time: Date
    ) throws(AcceptanceError) -> HospitalAcceptance {
        if let both = AcceptanceCondition.allCases.first(where: { changes[$0] != nil && withdrawing.contains($0) }) {
            throw .inconsistent("conditions.\(both.rawValue)", "is both set and withdrawn")
        }
        guard revision < Int64.max else { throw .invalid("revision", "cannot grow past its largest value") }
        var conditions = self.conditions
        conditions.merge(changes) { _, new in new }
        for condition in withdrawing { conditions[condition] = nil }
        return try HospitalAcceptance(
            hospital: hospital,
            conditions: conditions,
            revision: revision + 1,
            updatedAt: time
        )
    }

    /// Whether this publication replaces `other`: the same hospital, and a higher revision.
    public func supersedes(_ other: HospitalAcceptance) -> Bool {
        hospital == other.hospital && revision > other.revision
    }

    private enum Key: String, CodingKey, CaseIterable {
        case hospital
        case revision
        case updatedAt
        case conditions
    }

    /// Decodes and checks a publication; an ``AcceptanceError`` names the field at fault.
    public init(from decoder: any Decoder) throws {
        let top = try JSONFields.keyedContainer(decoder, field: "")
        try JSONFields.refuseUnknownKeys(top, known: Key.allCases.map(\.rawValue), field: "")
        let keyed = try decoder.container(keyedBy: Key.self)

        let hospitalText = try JSONFields.decode(String.self, keyed, .hospital, field: "", expected: "a string")
        guard let hospitalText else { throw AcceptanceError.missing("hospital") }
        guard let hospital = HospitalCode(rawValue: hospitalText) else {
            throw AcceptanceError.invalid("hospital", "must be a 10-digit hospital code")
        }

        let revision = try JSONFields.decode(Int64.self, keyed, .revision, field: "", expected: "an integer")
        guard let revision else { throw AcceptanceError.missing("revision") }

        let timeText = try JSONFields.decode(String.self, keyed, .updatedAt, field: "", expected: "a string")
        guard let timeText else { throw AcceptanceError.missing("updatedAt") }
        guard let updatedAt = Self.parseTime(timeText) else {
            throw AcceptanceError.invalid("updatedAt", "must be a UTC time as YYYY-MM-DDThh:mm:ssZ")
        }

        guard keyed.contains(.conditions) else { throw AcceptanceError.missing("conditions") }
        let nested = try JSONFields.nestedContainer(keyed, .conditions)
        var conditions: [AcceptanceCondition: ConditionAcceptance] = [:]
        for key in nested.allKeys {
            guard let condition = AcceptanceCondition(rawValue: key.stringValue) else {
                throw AcceptanceError.unknown("conditions.\(key.stringValue)", "is not a known condition")
            }
            conditions[condition] = try nested.decode(ConditionAcceptance.self, forKey: key)
        }
        try self.init(hospital: hospital, conditions: conditions, revision: revision, updatedAt: updatedAt)
    }

    /// Encodes the stable JSON form (conditions keyed by their raw values, the time as `YYYY-MM-DDThh:mm:ssZ`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(hospital.rawValue, forKey: .hospital)
        try container.encode(revision, forKey: .revision)
        try container.encode(Self.formatTime(updatedAt), forKey: .updatedAt)
        var nested = container.nestedContainer(keyedBy: JSONFields.AnyKey.self, forKey: .conditions)
        for condition in AcceptanceCondition.allCases {
            guard let acceptance = conditions[condition] else { continue }
            try nested.encode(acceptance, forKey: JSONFields.AnyKey(condition.rawValue))
        }
    }

    /// `YYYY-MM-DDThh:mm:ssZ`, UTC.
    private static func formatTime(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    /// Only the exact form ``formatTime(_:)`` writes: no offset, no fraction, no other separator.
    private static func parseTime(_ text: String) -> Date? {
        guard let date = try? Date.ISO8601FormatStyle().parse(text), formatTime(date) == text else { return nil }
        return date
    }
}

/// A hospital's acceptance publication that was refused, with the field at fault (`conditions.dialysis.note`) and
/// what is wrong with it, never the value itself.
public struct AcceptanceError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable {
        case missing
        case unknown
        case invalid
        case tooLong = "too-long"
        case inconsistent
    }

    private let code: Code
    /// The field at fault, as a dotted path in the JSON form (`conditions.dialysis.reason`); empty for the whole
    /// value.
    public let field: String
    /// What is wrong, without the value.
    public let reason: String

    private init(_ code: Code, _ field: String, _ reason: String) {
        self.code = code
        self.field = field
        self.reason = reason
    }

    /// A stable identifier of the kind of error, for problem documents and tests.
    public var kind: String { code.rawValue }

    /// The field and what is wrong with it.
    public var description: String { field.isEmpty ? reason : "\(field): \(reason)" }

    /// A required field is absent.
    public static func missing(_ field: String, _ reason: String = "is required") -> Self {
        Self(.missing, field, reason)
    }

    /// A field, condition or reason this version does not know.
    public static func unknown(_ field: String, _ reason: String) -> Self { Self(.unknown, field, reason) }

    /// A value of the wrong type or form.
    public static func invalid(_ field: String, _ reason: String) -> Self { Self(.invalid, field, reason) }

    /// A text over its length.
    public static func tooLong(_ field: String, _ limit: Int) -> Self {
        Self(.tooLong, field, "is longer than \(limit) characters")
    }

    /// Two fields that contradict each other.
    public static func inconsistent(_ field: String, _ reason: String) -> Self { Self(.inconsistent, field, reason) }

    /// Errors match by kind and field (tests compare with `#expect(throws:)`).
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code && lhs.field == rhs.field }

    /// Hashes the kind and field.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(field)
    }
}

/// The checks the two decoders share: a field at fault is named by its dotted path.
private enum JSONFields {
    struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func join(_ parent: String, _ child: String) -> String {
        parent.isEmpty ? child : "\(parent).\(child)"
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }

    static func keyedContainer(_ decoder: any Decoder, field: String) throws(AcceptanceError)
        -> KeyedDecodingContainer<AnyKey>
    {
        do { return try decoder.container(keyedBy: AnyKey.self) } catch {
            throw AcceptanceError.invalid(field, "must be an object")
        }
    }

    static func nestedContainer<K: CodingKey>(_ container: KeyedDecodingContainer<K>, _ key: K) throws(AcceptanceError)
        -> KeyedDecodingContainer<AnyKey>
    {
        do { return try container.nestedContainer(keyedBy: AnyKey.self, forKey: key) } catch {
            throw AcceptanceError.invalid(join(path(container.codingPath), key.stringValue), "must be an object")
        }
    }

    static func refuseUnknownKeys(_ container: KeyedDecodingContainer<AnyKey>, known: [String], field: String)
        throws(AcceptanceError)
    {
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        if let first = unknown.first {
            throw AcceptanceError.unknown(join(field, FieldName.shown(first)), "is not a known field")
        }
    }

    /// The value at `key`, nil when absent or null; the field is named when it has the wrong type.
    static func decode<T: Decodable, K: CodingKey>(
        _ type: T.Type,
        _ container: KeyedDecodingContainer<K>,
        _ key: K,
        field: String,
        expected: String
    ) throws(AcceptanceError) -> T? {
        do { return try container.decodeIfPresent(type, forKey: key) } catch {
            throw AcceptanceError.invalid(join(field, key.stringValue), "must be \(expected)")
        }
    }
}
