public import KyukyuDomain
public import KyukyuOnshi
import KyukyuSummary

/// What a paramedic reads in 10 seconds, built from the records read back from the vault: red flags first, the
/// current medications one row per drug, diagnoses, dialysis, surgery, recent visits, out-of-range checkup values
/// and allergies. The raw records are one tap away (``IncidentRunner/records(_:)``).
public struct PatientSummary: Sendable, Hashable, Codable {
    /// The patient, from the qualification record.
    public struct Patient: Sendable, Hashable, Codable {
        /// Name in kanji.
        public var name: String
        /// Name in katakana.
        public var nameKana: String
        /// Birth date, YYYY-MM-DD.
        public var birthDate: String
        /// Age in whole years today.
        public var age: Int
        /// `male`, `female` or `other`.
        public var sex: String
        /// The insurer's name.
        public var insurer: String
        /// Whether the record says it is synthetic (every test patient is).
        public var synthetic: Bool
    }
    /// A red flag as the tablet shows it.
    public struct Flag: Sendable, Hashable, Codable {
        /// `anticoagulant`, `antiplatelet`, `insulin`, `hypoglycaemic`, `antiepileptic`, `corticosteroid`, `opioid`,
        /// `dialysis`, `allergy`, `contraindication`, `infection` or `recent-surgery`.
        public var kind: String
        /// What: the drugs' names, the substance, the operation.
        public var text: String
        /// When, where it matters (YYYY-MM-DD).
        public var date: String?
    }
    /// One current drug.
    public struct CurrentMedication: Sendable, Hashable, Codable {
        /// Generic name.
        public var name: String
        /// Dose and unit.
        public var dose: String
        /// How it is taken.
        public var usage: String
        /// Its latest dispensing, YYYY-MM-DD.
        public var dispensedDate: String
        /// YJ code.
        public var yjCode: String
        /// Its high-risk class, if any.
        public var drugClass: String?
    }
    /// A diagnosis.
    public struct DiagnosisLine: Sendable, Hashable, Codable {
        /// Name.
        public var name: String
        /// ICD-10 code.
        public var icd10: String
        /// Since, YYYY-MM-DD.
        public var since: String
    }
    /// Dialysis.
    public struct Dialysis: Sendable, Hashable, Codable {
        /// The latest session, YYYY-MM-DD.
        public var lastSession: String
    }
    /// An operation.
    public struct SurgeryLine: Sendable, Hashable, Codable {
        /// Name.
        public var name: String
        /// Date, YYYY-MM-DD.
        public var date: String
        /// Where.
        public var institution: String
    }
    /// A visit.
    public struct VisitLine: Sendable, Hashable, Codable {
        /// Where.
        public var institution: String
        /// Which department.
        public var department: String?
        /// When, YYYY-MM-DD.
        public var date: String
    }
    /// An out-of-range checkup value.
    public struct CheckupValue: Sendable, Hashable, Codable {
        /// Item name.
        public var name: String
        /// Value.
        public var value: String
        /// Unit.
        public var unit: String?
        /// The checkup's date, YYYY-MM-DD.
        public var date: String
    }
    /// An allergy, contraindication or infection.
    public struct AllergyLine: Sendable, Hashable, Codable {
        /// `drug`, `food`, `contraindication`, `infection` or `other`.
        public var kind: String
        /// Substance.
        public var substance: String
        /// Reaction, if recorded.
        public var reaction: String?
    }

    /// The patient, once qualification arrived.
    public var patient: Patient?
    /// Red flags, in reading order.
    public var redFlags: [Flag]
    /// Current medications, newest first, one row per drug.
    public var currentMedications: [CurrentMedication]
    /// Diagnoses still open.
    public var diagnoses: [DiagnosisLine]
    /// Dialysis, if on it.
    public var dialysis: Dialysis?
    /// Operations, newest first.
    public var surgery: [SurgeryLine]
    /// The latest visits, newest first (at most ``recentVisitCount``).
    public var recentVisits: [VisitLine]
    /// Out-of-range values of the latest checkup.
    public var checkupOutOfRange: [CheckupValue]
    /// Allergies, contraindications and infections.
    public var allergies: [AllergyLine]

    /// How many visits the summary lists.
    public static let recentVisitCount = 5

    /// Builds the summary from the records that have arrived, as of `today`.
    public init(records: [MedicalCategory: CategoryRecords], today: OnshiDate) {
        var medications: [Medication] = []
        var treatments: [Treatment] = []
        var allergyRecords: [Allergy] = []
        var surgeries: [Surgery] = []
        var visits: [Visit] = []
        var diagnoses: [Diagnosis] = []
        var checkups: [Checkup] = []
        var qualification: Qualification?
        for (_, records) in records {
            switch records {
            case .qualification(let value): qualification = value
            case .visits(let value): visits = value
            case .diagnoses(let value): diagnoses = value
            case .medications(let value): medications = value
            case .prescriptions: break
            case .surgery(let value): surgeries = value
            case .treatment(let value): treatments = value
            case .checkups(let value): checkups = value
            case .allergies(let value): allergyRecords = value
            }
        }
        patient = qualification.map { Self.patient($0, today: today) }
        redFlags = RedFlags.compute(
            medications: medications,
            treatments: treatments,
            allergies: allergyRecords,
            surgeries: surgeries,
            today: today
        ).map(Self.flag)
        currentMedications = RedFlags.currentMedications(medications, today: today).map {
            CurrentMedication(
                name: $0.genericName,
                dose: Self.number($0.dose) + $0.unit,
                usage: $0.usage,
                dispensedDate: Self.day($0.dispensedDate),
                yjCode: $0.yjCode,
                drugClass: DrugClass(yjCode: $0.yjCode).map(Self.kind)
            )
        }
        self.diagnoses = diagnoses.filter { $0.outcome == .ongoing }
            .sorted { $0.startDate > $1.startDate }
            .map { DiagnosisLine(name: $0.name, icd10: $0.icd10, since: Self.day($0.startDate)) }
        dialysis = treatments.filter(\.dialysis).map(\.date).max()
            .flatMap {
                $0 >= today.adding(days: -RedFlags.dialysisRecentDays) ? Dialysis(lastSession: Self.day($0)) : nil
            }
        surgery = surgeries.sorted { $0.date > $1.date }
            .map { SurgeryLine(name: $0.name, date: Self.day($0.date), institution: $0.institutionName) }
        recentVisits = visits.sorted { $0.date > $1.date }.prefix(Self.recentVisitCount)
            .map { VisitLine(institution: $0.institutionName, department: $0.department, date: Self.day($0.date)) }
        if let latest = checkups.max(by: { $0.date < $1.date }) {
            checkupOutOfRange = latest.items.filter(\.outOfRange)
                .map { CheckupValue(name: $0.name, value: $0.value, unit: $0.unit, date: Self.day(latest.date)) }
        } else {
            checkupOutOfRange = []
        }
        allergies = allergyRecords.map {
            AllergyLine(kind: $0.kind.rawValue, substance: $0.substance, reaction: $0.reaction)
        }
    }

    static func patient(_ q: Qualification, today: OnshiDate) -> Patient {
        var age = today.year - q.birthDate.year
        if (today.month, today.day) < (q.birthDate.month, q.birthDate.day) { age -= 1 }
        let sex =
            switch q.sex {
            case .male: "male"
            case .female: "female"
            case .notApplicable: "other"
            }
        return Patient(
            name: q.name,
            nameKana: q.nameKana,
            birthDate: day(q.birthDate),
            age: age,
            sex: sex,
            insurer: q.insurerName,
            synthetic: q.synthetic
        )
    }

    static func flag(_ flag: RedFlag) -> Flag {
        switch flag {
        case .drug(let drugClass, let names):
            Flag(kind: kind(drugClass), text: names.joined(separator: "、"), date: nil)
        case .dialysis(let last):
            Flag(kind: "dialysis", text: "", date: day(last))
        case .allergy(let kind, let substance):
            Flag(kind: kind == .contraindication || kind == .infection ? kind.rawValue : "allergy", text: substance)
        case .recentSurgery(let name, let date):
            Flag(kind: "recent-surgery", text: name, date: day(date))
        }
    }

    static func kind(_ drugClass: DrugClass) -> String {
        drugClass == .otherHypoglycaemic ? "hypoglycaemic" : drugClass.rawValue
    }

    static func day(_ date: OnshiDate) -> String {
        let text = date.xmlText
        return "\(text.prefix(4))-\(text.dropFirst(4).prefix(2))-\(text.suffix(2))"
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

extension PatientSummary.Flag {
    init(kind: String, text: String) {
        self.init(kind: kind, text: text, date: nil)
    }
}
