import Foundation

// A request for a bed sent to several hospitals at once (一斉照会): the crew picks hospitals in the picker, each
// answers accept or decline, the first to accept gets the document, and the others are told the patient went
// elsewhere. The hub keeps every request, answer and time for the regional medical-control review.

/// Where a hospital stands on one placement request.
public enum PlacementAnswer: String, Sendable, Hashable, Codable, CaseIterable {
    /// Asked, not answered yet.
    case pending
    /// This hospital accepted first: the patient comes here, and the document follows.
    case accepted
    /// This hospital declined (with a ``DivertReason``).
    case declined
    /// Another hospital accepted first: this one is told the patient went elsewhere.
    case placedElsewhere = "placed-elsewhere"
    /// The crew withdrew the request before any hospital accepted.
    case cancelled

    /// Whether the answer is final for this hospital.
    public var isFinal: Bool { self != .pending }
}

/// What the hospitals asked are told before one accepts: enough to decide, nothing that identifies the patient (no
/// name, no number, no date of birth: an age band). Sealed at rest with each asked hospital's key.
public struct PlacementSummary: Sendable, Hashable, Codable {
    /// The patient's age by decade: 0 for 0-9 years, 7 for 70-79, 11 for 110 and over; nil when unknown.
    public var ageDecade: Int?
    /// `male`, `female`, or nil when unknown.
    public var sex: String?
    /// The crew's chief complaint.
    public var chiefComplaint: ChiefComplaint?
    /// The crew's triage.
    public var priority: TriagePriority?
    /// What the patient needs (from the red flags and the crew's findings: KyukyuSummary's `PatientNeeds`).
    public var needs: [AcceptanceCondition]
    /// Minutes to arrival, as the crew estimated when asking.
    public var etaMinutes: Int?

    /// A summary; ``PlacementError`` when a value is out of range.
    public init(
        ageDecade: Int?,
        sex: String?,
        chiefComplaint: ChiefComplaint?,
        priority: TriagePriority?,
        needs: [AcceptanceCondition],
        etaMinutes: Int?
    ) throws(PlacementError) {
        if let ageDecade, !(0...11).contains(ageDecade) { throw PlacementError("ageDecade: 0 to 11") }
        if let sex, !["male", "female"].contains(sex) { throw PlacementError("sex: male or female") }
        if let etaMinutes, !(0...600).contains(etaMinutes) { throw PlacementError("etaMinutes: 0 to 600") }
        guard Set(needs).count == needs.count else { throw PlacementError("needs: each condition once") }
        self.ageDecade = ageDecade
        self.sex = sex
        self.chiefComplaint = chiefComplaint
        self.priority = priority
        self.needs = needs
        self.etaMinutes = etaMinutes
    }

    /// The age band in words: `70-79`, or `110+`.
    public var ageBand: String? {
        guard let ageDecade else { return nil }
        return ageDecade >= 11 ? "110+" : "\(ageDecade * 10)-\(ageDecade * 10 + 9)"
    }

    private enum Key: String, CodingKey { case ageDecade, sex, chiefComplaint, priority, needs, etaMinutes }

    /// Decodes and checks a summary (unknown fields are refused).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let extra = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
            .filter { Key(rawValue: $0) == nil }
        if let field = extra.first {
            throw DecodingError.dataCorrupted(
                .init(codingPath: [], debugDescription: "unknown field \(FieldName.shown(field))")
            )
        }
        do {
            try self.init(
                ageDecade: try container.decodeIfPresent(Int.self, forKey: .ageDecade),
                sex: try container.decodeIfPresent(String.self, forKey: .sex),
                chiefComplaint: try container.decodeIfPresent(ChiefComplaint.self, forKey: .chiefComplaint),
                priority: try container.decodeIfPresent(TriagePriority.self, forKey: .priority),
                needs: try container.decodeIfPresent([AcceptanceCondition].self, forKey: .needs) ?? [],
                etaMinutes: try container.decodeIfPresent(Int.self, forKey: .etaMinutes)
            )
        } catch let error as PlacementError {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: error.reason))
        }
    }

    /// Encodes the summary; absent values are left out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(ageDecade, forKey: .ageDecade)
        try container.encodeIfPresent(sex, forKey: .sex)
        try container.encodeIfPresent(chiefComplaint, forKey: .chiefComplaint)
        try container.encodeIfPresent(priority, forKey: .priority)
        try container.encode(needs, forKey: .needs)
        try container.encodeIfPresent(etaMinutes, forKey: .etaMinutes)
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// A placement request or summary that cannot be taken, with what is wrong (never patient data).
public struct PlacementError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong, naming the field.
    public let reason: String
    /// An error.
    public init(_ reason: String) { self.reason = reason }
    /// The reason.
    public var description: String { reason }
}
