import KyukyuOnshi

/// What a paramedic must see first, computed from the records: high-risk drugs, dialysis, allergies and
/// contraindications, recent surgery. Pure: the records and the day in, the flags out.
public enum RedFlag: Sendable, Hashable, Codable {
    /// A current medication of a high-risk class, with the drugs' generic names.
    case drug(DrugClass, names: [String])
    /// The patient is on dialysis (the latest session's date).
    case dialysis(lastSession: OnshiDate)
    /// A drug or food allergy, a contraindication or an infection on record.
    case allergy(kind: Allergy.Kind, substance: String)
    /// An operation within ``RedFlags/recentSurgeryDays``.
    case recentSurgery(name: String, date: OnshiDate)
}

/// Computes red flags and the current medications from one patient's records.
public enum RedFlags {
    /// Surgery this recent is flagged.
    public static let recentSurgeryDays = 90
    /// A drug is current while its last dispensing's supply, plus this grace, reaches today.
    public static let supplyGraceDays = 30
    /// Dialysis this recent means the patient is on dialysis.
    public static let dialysisRecentDays = 30

    /// The latest dispensing of each drug (by YJ code) whose supply, plus ``supplyGraceDays``, reaches `today`:
    /// what the patient takes now, one row per drug instead of every dispensing. Newest first.
    public static func currentMedications(_ medications: [Medication], today: OnshiDate) -> [Medication] {
        var latest: [String: Medication] = [:]
        for medication in medications {
            if let seen = latest[medication.yjCode], seen.dispensedDate >= medication.dispensedDate { continue }
            latest[medication.yjCode] = medication
        }
        return latest.values
            .filter { $0.dispensedDate.adding(days: $0.days + supplyGraceDays) >= today }
            .sorted { ($0.dispensedDate, $0.genericName) > ($1.dispensedDate, $1.genericName) }
    }

    /// The red flags of a patient's records, in the order a paramedic reads them: drugs (in ``DrugClass`` order),
    /// dialysis, allergies, recent surgery.
    public static func compute(
        medications: [Medication],
        treatments: [Treatment],
        allergies: [Allergy],
        surgeries: [Surgery],
        today: OnshiDate
    ) -> [RedFlag] {
        var flags: [RedFlag] = []
        let current = currentMedications(medications, today: today)
        for drugClass in DrugClass.allCases {
            let names = current.filter { DrugClass(yjCode: $0.yjCode) == drugClass }.map(\.genericName)
            if !names.isEmpty { flags.append(.drug(drugClass, names: names.sorted())) }
        }
        let dialysis = treatments.filter(\.dialysis).map(\.date).max()
        if let dialysis, dialysis >= today.adding(days: -dialysisRecentDays) {
            flags.append(.dialysis(lastSession: dialysis))
        }
        flags += allergies.map { .allergy(kind: $0.kind, substance: $0.substance) }
        flags += surgeries.filter { $0.date >= today.adding(days: -recentSurgeryDays) && $0.date <= today }
            .sorted { $0.date > $1.date }
            .map { .recentSurgery(name: $0.name, date: $0.date) }
        return flags
    }
}
