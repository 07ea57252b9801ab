import KyukyuDomain

// The crew's hospital picker: which acceptance conditions this patient needs, from the red flags, the chief
// complaint and the age, and the crew's own list of hospitals ranked against what each hospital publishes. Pure:
// no clock, no network; whoever calls it has the publications in hand.

/// Why a patient needs an acceptance condition, for the picker to show beside it.
public enum NeedReason: Sendable, Hashable, Codable {
    /// A red flag from the records (dialysis).
    case redFlag(RedFlag)
    /// The chief complaint the crew tapped.
    case chiefComplaint(ChiefComplaint)
    /// The patient is younger than ``PatientNeeds/paediatricAgeLimit`` (the age in whole years).
    case age(years: Int)
}

/// The acceptance conditions one patient needs, each with why.
public struct PatientNeeds: Sendable, Hashable, Codable {
    /// One condition the patient needs, and every reason for it (in the order found).
    public struct Need: Sendable, Hashable, Codable {
        /// The condition.
        public let condition: AcceptanceCondition
        /// Why (never empty).
        public let reasons: [NeedReason]

        /// A need.
        public init(condition: AcceptanceCondition, reasons: [NeedReason]) {
            self.condition = condition
            self.reasons = reasons
        }
    }

    /// The needs, in ``AcceptanceCondition`` order, one per condition.
    public let needs: [Need]

    /// A patient younger than this many whole years needs ``AcceptanceCondition/paediatrics``.
    public static let paediatricAgeLimit = 15

    /// No needs.
    public static let none = PatientNeeds(reasons: [:])

    /// Needs from reasons by condition; a condition with no reason is left out.
    public init(reasons: [AcceptanceCondition: [NeedReason]]) {
        needs = AcceptanceCondition.allCases.compactMap { condition in
            guard let reasons = reasons[condition], !reasons.isEmpty else { return nil }
            return Need(condition: condition, reasons: reasons)
        }
    }

    /// The needed conditions, in ``AcceptanceCondition`` order.
    public var conditions: [AcceptanceCondition] { needs.map(\.condition) }

    /// Whether the patient needs nothing in particular.
    public var isEmpty: Bool { needs.isEmpty }

    /// The needs the records, the complaint and the age show; every input may be missing.
    ///
    /// - ``AcceptanceCondition/dialysis``: a ``RedFlag/dialysis(lastSession:)`` flag.
    /// - ``AcceptanceCondition/stroke``: ``ChiefComplaint/strokeSymptoms``.
    /// - ``AcceptanceCondition/stemi``: ``ChiefComplaint/chestPain`` or ``ChiefComplaint/cardiacArrest``.
    /// - ``AcceptanceCondition/trauma``: ``ChiefComplaint/trauma`` or ``ChiefComplaint/bleeding``.
    /// - ``AcceptanceCondition/burns``: ``ChiefComplaint/burn``.
    /// - ``AcceptanceCondition/paediatrics``: an age from 0 to ``paediatricAgeLimit`` − 1 whole years (a negative
    ///   age is a typing error and is ignored).
    ///
    /// Other red flags (drugs, allergies, surgery) matter to the hospital but name no condition to accept.
    public static func derive(
        redFlags: [RedFlag] = [],
        chiefComplaint: ChiefComplaint? = nil,
        ageYears: Int? = nil
    ) -> PatientNeeds {
        var reasons: [AcceptanceCondition: [NeedReason]] = [:]
        for flag in redFlags {
            if case .dialysis = flag { reasons[.dialysis, default: []].append(.redFlag(flag)) }
        }
        if let chiefComplaint, let condition = condition(for: chiefComplaint) {
            reasons[condition, default: []].append(.chiefComplaint(chiefComplaint))
        }
        if let ageYears, (0..<paediatricAgeLimit).contains(ageYears) {
            reasons[.paediatrics, default: []].append(.age(years: ageYears))
        }
        return PatientNeeds(reasons: reasons)
    }

    private static func condition(for complaint: ChiefComplaint) -> AcceptanceCondition? {
        switch complaint {
        case .strokeSymptoms: .stroke
        case .chestPain, .cardiacArrest: .stemi
        case .trauma, .bleeding: .trauma
        case .burn: .burns
        case .dyspnoea, .alteredConsciousness, .seizure, .abdominalPain, .fever, .poisoning, .other: nil
        }
    }
}

/// One hospital of the crew's list, with what it publishes measured against the patient's needs.
public struct RankedHospital: Sendable, Hashable {
    /// How well a hospital fits, best first (``HospitalRanking/rank(_:needs:)`` gives the rule).
    public enum Tier: Int, Sendable, Hashable, Comparable, CaseIterable {
        /// Accepts every need.
        case acceptsAll
        /// Accepts some needs, declines none; the rest are unknown.
        case acceptsSome
        /// Declines no need, accepts none: nothing known.
        case unknown
        /// Declines at least one need.
        case declines

        /// Better tiers come first.
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// A condition the hospital does not accept, with its reason and its staff's note.
    public struct Declined: Sendable, Hashable {
        /// The condition.
        public let condition: AcceptanceCondition
        /// The reason and the note.
        public let refusal: Divert

        /// A declined condition.
        public init(condition: AcceptanceCondition, refusal: Divert) {
            self.condition = condition
            self.refusal = refusal
        }
    }

    /// The hospital.
    public let code: HospitalCode
    /// The publication the ranking used; nil when there was none (or it was another hospital's).
    public let acceptance: HospitalAcceptance?
    /// The tier.
    public let tier: Tier
    /// The considered conditions it accepts, in ``AcceptanceCondition`` order.
    public let accepted: [AcceptanceCondition]
    /// The considered conditions it declines, in ``AcceptanceCondition`` order.
    public let declined: [Declined]
    /// The considered conditions it published nothing for, in ``AcceptanceCondition`` order.
    public let unknown: [AcceptanceCondition]
}

/// Ranks the crew's list of hospitals against a patient's needs.
public enum HospitalRanking {
    /// The crew's hospitals, best fit first.
    ///
    /// The conditions considered are the patient's needs. Each hospital falls in a tier:
    /// 1. ``RankedHospital/Tier/acceptsAll``: it accepts every need;
    /// 2. ``RankedHospital/Tier/acceptsSome``: it accepts some, declines none, the rest unknown;
    /// 3. ``RankedHospital/Tier/unknown``: it accepts none and declines none (it published nothing for them, or
    ///    nothing at all);
    /// 4. ``RankedHospital/Tier/declines``: it declines at least one need, whatever else it accepts.
    ///
    /// With no needs, the conditions considered are every condition the hospital published (so the crew sees its
    /// refusals), and the tier says whether it is taking patients at all: ``RankedHospital/Tier/acceptsAll`` when
    /// it accepts at least one condition, ``RankedHospital/Tier/declines`` when it published refusals only, and
    /// ``RankedHospital/Tier/unknown`` when it published nothing. A hospital that declines everything it published
    /// therefore still ranks below one that accepts something, and below one not heard from.
    ///
    /// Within a tier the input order is kept: it is the crew's own order (by distance, say). A publication whose
    /// hospital is not the one it is paired with is ignored (the hospital counts as not heard from), so that a
    /// mix-up never shows one hospital's beds under another's name.
    public static func rank(
        _ hospitals: [(code: HospitalCode, acceptance: HospitalAcceptance?)],
        needs: PatientNeeds
    ) -> [RankedHospital] {
        hospitals.enumerated()
            .map { index, entry in
                let acceptance = entry.acceptance.flatMap { $0.hospital == entry.code ? $0 : nil }
                return (index, measure(entry.code, acceptance, needs: needs))
            }
            .sorted { ($0.1.tier, $0.0) < ($1.1.tier, $1.0) }
            .map(\.1)
    }

    private static func measure(
        _ code: HospitalCode,
        _ acceptance: HospitalAcceptance?,
        needs: PatientNeeds
    ) -> RankedHospital {
        let published = acceptance?.conditions ?? [:]
        let considered =
            needs.isEmpty ? AcceptanceCondition.allCases.filter { published[$0] != nil } : needs.conditions
        var accepted: [AcceptanceCondition] = []
        var declined: [RankedHospital.Declined] = []
        var unknown: [AcceptanceCondition] = []
        for condition in considered {
            guard let acceptance = published[condition] else {
                unknown.append(condition)
                continue
            }
            if let refusal = acceptance.refusal {
                declined.append(RankedHospital.Declined(condition: condition, refusal: refusal))
            } else {
                accepted.append(condition)
            }
        }
        let tier: RankedHospital.Tier
        if needs.isEmpty {
            tier = !accepted.isEmpty ? .acceptsAll : declined.isEmpty ? .unknown : .declines
        } else if !declined.isEmpty {
            tier = .declines
        } else if unknown.isEmpty {
            tier = .acceptsAll
        } else {
            tier = accepted.isEmpty ? .unknown : .acceptsSome
        }
        return RankedHospital(
            code: code,
            acceptance: acceptance,
            tier: tier,
            accepted: accepted,
            declined: declined,
            unknown: unknown
        )
    }
}
