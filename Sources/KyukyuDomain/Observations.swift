public import Foundation

// What the crew observes and does on the way, for the hospital's pre-arrival document: chief complaint,
// trauma (MIST), onset, priority, timed vital signs, treatment, ETA and the receiving hospital. One vocabulary for
// the tablet, the FHIR document and the receiver. Values are checked here, once, so that every module refuses
// the same bad input with the same words.

/// The priority of Japanese prehospital triage (緊急度): red, yellow, green.
public enum TriagePriority: String, Sendable, Hashable, Codable, CaseIterable {
    /// 赤: immediate.
    case red
    /// 黄: urgent.
    case yellow
    /// 緑: non-urgent.
    case green
}

/// Why the ambulance was called, as a tap on the tablet (the crew may add a short note).
public enum ChiefComplaint: String, Sendable, Hashable, Codable, CaseIterable {
    /// 胸痛.
    case chestPain = "chest-pain"
    /// 呼吸困難.
    case dyspnoea
    /// 意識障害.
    case alteredConsciousness = "altered-consciousness"
    /// 脳卒中疑い (face, arm, speech).
    case strokeSymptoms = "stroke-symptoms"
    /// 心肺停止.
    case cardiacArrest = "cardiac-arrest"
    /// けいれん.
    case seizure
    /// 腹痛.
    case abdominalPain = "abdominal-pain"
    /// 外傷.
    case trauma
    /// 熱傷.
    case burn
    /// 発熱.
    case fever
    /// 中毒.
    case poisoning
    /// 出血 (not traumatic).
    case bleeding
    /// その他: the note says what.
    case other
}

/// The Japan Coma Scale level (I-1 … III-300; 0 is alert), the consciousness scale Japanese crews report first.
public enum JCSLevel: Int, Sendable, Hashable, Codable, CaseIterable {
    /// Alert (清明).
    case alert = 0
    /// I-1.
    case i1 = 1
    /// I-2.
    case i2 = 2
    /// I-3.
    case i3 = 3
    /// II-10.
    case ii10 = 10
    /// II-20.
    case ii20 = 20
    /// II-30.
    case ii30 = 30
    /// III-100.
    case iii100 = 100
    /// III-200.
    case iii200 = 200
    /// III-300.
    case iii300 = 300

    /// As Japanese crews write it: `0`, `I-1` … `III-300`.
    public var label: String {
        switch self {
        case .alert: "0"
        case .i1, .i2, .i3: "I-\(rawValue)"
        case .ii10, .ii20, .ii30: "II-\(rawValue)"
        case .iii100, .iii200, .iii300: "III-\(rawValue)"
        }
    }
}

/// The Glasgow Coma Scale: eye 1–4, verbal 1–5, motor 1–6.
public struct GCSScore: Sendable, Hashable, Codable {
    /// Eye opening, 1–4.
    public var eye: Int
    /// Verbal response, 1–5.
    public var verbal: Int
    /// Motor response, 1–6.
    public var motor: Int

    /// A score; ``ObservationError`` when a part is out of its range.
    public init(eye: Int, verbal: Int, motor: Int) throws(ObservationError) {
        self.eye = eye
        self.verbal = verbal
        self.motor = motor
        try validate()
    }

    /// The total, 3–15.
    public var total: Int { eye + verbal + motor }

    /// Checks each part's range (a decoded value is checked too).
    public func validate() throws(ObservationError) {
        guard (1...4).contains(eye) else { throw .outOfRange("GCS eye", "1 to 4") }
        guard (1...5).contains(verbal) else { throw .outOfRange("GCS verbal", "1 to 5") }
        guard (1...6).contains(motor) else { throw .outOfRange("GCS motor", "1 to 6") }
    }
}

/// One set of vital signs, timed. Every value is optional: a crew records what it has.
public struct VitalSigns: Sendable, Hashable, Codable {
    /// When the set was taken.
    public var takenAt: Date
    /// Consciousness, JCS.
    public var jcs: JCSLevel?
    /// Consciousness, GCS.
    public var gcs: GCSScore?
    /// Heart rate, /min.
    public var heartRate: Int?
    /// Systolic blood pressure, mmHg.
    public var systolic: Int?
    /// Diastolic blood pressure, mmHg.
    public var diastolic: Int?
    /// Respiratory rate, /min.
    public var respiratoryRate: Int?
    /// SpO2, %.
    public var spo2: Int?
    /// Body temperature, °C (one decimal).
    public var temperature: Double?
    /// Blood glucose, mg/dL.
    public var bloodGlucose: Int?

    /// A set taken at `takenAt`; fill in the values and call ``validate()``.
    public init(takenAt: Date) {
        self.takenAt = takenAt
    }

    /// The plausible ranges: anything outside is a typing error, not a patient (0 is allowed where a patient in
    /// arrest has it).
    public static let ranges: [String: ClosedRange<Double>] = [
        "heart rate": 0...300, "systolic": 0...300, "diastolic": 0...200, "respiratory rate": 0...80,
        "SpO2": 0...100, "temperature": 25...45, "blood glucose": 10...1500,
    ]

    /// Checks every value's range, and that the set has at least one value.
    public func validate() throws(ObservationError) {
        try gcs?.validate()
        let values: [(String, Double?)] = [
            ("heart rate", heartRate.map(Double.init)), ("systolic", systolic.map(Double.init)),
            ("diastolic", diastolic.map(Double.init)), ("respiratory rate", respiratoryRate.map(Double.init)),
            ("SpO2", spo2.map(Double.init)), ("temperature", temperature),
            ("blood glucose", bloodGlucose.map(Double.init)),
        ]
        for case (let name, let value?) in values {
            let range = Self.ranges[name]!
            guard value.isFinite, range.contains(value) else {
                throw .outOfRange(name, "\(Self.format(range.lowerBound)) to \(Self.format(range.upperBound))")
            }
        }
        if let systolic, let diastolic, diastolic > systolic {
            throw .inconsistent("the diastolic pressure is above the systolic")
        }
        guard jcs != nil || gcs != nil || values.contains(where: { $0.1 != nil }) else {
            throw .empty("a set of vital signs needs at least one value")
        }
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// Something the crew did for the patient, timed.
public struct TreatmentGiven: Sendable, Hashable, Codable {
    /// What Japanese crews may do (救急救命処置).
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// 酸素投与.
        case oxygen
        /// 気道確保 (including adjuncts).
        case airway
        /// 胸骨圧迫 / CPR.
        case cpr
        /// AED / defibrillation.
        case defibrillation
        /// 静脈路確保.
        case intravenousAccess = "intravenous-access"
        /// アドレナリン投与.
        case adrenaline
        /// ブドウ糖投与.
        case glucose
        /// 止血.
        case haemostasis
        /// 全脊柱固定 / spinal motion restriction.
        case spinalImmobilisation = "spinal-immobilisation"
        /// 副子固定.
        case splint
        /// 保温.
        case warming
    }
    /// What was done.
    public var kind: Kind
    /// When.
    public var at: Date

    /// A treatment given at `at`.
    public init(_ kind: Kind, at: Date) {
        self.kind = kind
        self.at = at
    }
}

/// Trauma details, MIST: mechanism and injuries (the signs are the vital signs; the treatment the treatments).
public struct TraumaDetails: Sendable, Hashable, Codable {
    /// How it happened.
    public enum Mechanism: String, Sendable, Hashable, Codable, CaseIterable {
        /// 交通事故 (vehicle occupant).
        case trafficOccupant = "traffic-occupant"
        /// 歩行者 (pedestrian struck).
        case pedestrian
        /// 二輪車.
        case motorcycle
        /// 墜落 (fall from height).
        case fallFromHeight = "fall-from-height"
        /// 転倒 (fall on the same level).
        case fallSameLevel = "fall-same-level"
        /// 刺創・切創.
        case penetrating
        /// 打撲・殴打.
        case blunt
        /// 熱傷.
        case burn
        /// 溺水.
        case drowning
        /// その他.
        case other
    }
    /// Where an injury is.
    public enum Region: String, Sendable, Hashable, Codable, CaseIterable {
        /// 頭部.
        case head
        /// 顔面.
        case face
        /// 頸部.
        case neck
        /// 胸部.
        case chest
        /// 腹部.
        case abdomen
        /// 骨盤.
        case pelvis
        /// 脊椎.
        case spine
        /// 上肢.
        case upperLimb = "upper-limb"
        /// 下肢.
        case lowerLimb = "lower-limb"
        /// 体表.
        case skin
    }
    /// The mechanism.
    public var mechanism: Mechanism?
    /// The injured regions.
    public var injuries: [Region]

    /// Trauma details.
    public init(mechanism: Mechanism? = nil, injuries: [Region] = []) {
        self.mechanism = mechanism
        self.injuries = injuries
    }
}

/// When the symptoms began, or when the patient was last known well (for stroke).
public struct OnsetTime: Sendable, Hashable, Codable {
    /// Which of the two the time is.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// 発症時刻: witnessed onset.
        case onset
        /// 最終健常確認時刻: last known well.
        case lastKnownWell = "last-known-well"
    }
    /// Which.
    public var kind: Kind
    /// When.
    public var at: Date

    /// An onset or last-known-well time.
    public init(_ kind: Kind, at: Date) {
        self.kind = kind
        self.at = at
    }
}

/// A receiving hospital, by its 10-digit medical-institution code (the same code onshi and the hospitals' own
/// systems use).
public struct HospitalCode: Sendable, Hashable, Codable, CustomStringConvertible, RawRepresentable {
    /// The ten digits.
    public let rawValue: String

    /// A code; nil unless exactly ten ASCII digits.
    public init?(rawValue: String) {
        guard rawValue.utf8.count == 10, rawValue.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        self.rawValue = rawValue
    }

    /// The digits.
    public var description: String { rawValue }

    /// Decodes and checks the digits.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let code = HospitalCode(rawValue: text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "not a 10-digit hospital code")
            )
        }
        self = code
    }

    /// Encodes the digits.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Everything the crew adds to the incident on the way: what goes to the hospital beside the onshi summary.
public struct CrewObservations: Sendable, Hashable, Codable {
    /// The chief complaint.
    public var chiefComplaint: ChiefComplaint?
    /// A short note on the complaint (at most ``maximumNoteLength`` characters; no identifying data).
    public var complaintNote: String?
    /// Trauma: mechanism and injuries.
    public var trauma: TraumaDetails?
    /// Onset, or last known well.
    public var onset: OnsetTime?
    /// 緊急度.
    public var priority: TriagePriority?
    /// Every set of vital signs, oldest first.
    public var vitals: [VitalSigns]
    /// Treatment given, oldest first.
    public var treatments: [TreatmentGiven]
    /// The ETA in minutes, as of ``etaRecordedAt``.
    public var etaMinutes: Int?
    /// When the ETA was given.
    public var etaRecordedAt: Date?
    /// The receiving hospital.
    public var hospital: HospitalCode?

    /// The longest complaint note.
    public static let maximumNoteLength = 200
    /// The most vital-sign sets kept for one incident.
    public static let maximumVitalSets = 60
    /// The most treatments kept for one incident.
    public static let maximumTreatments = 60

    /// Nothing observed yet.
    public init() {
        vitals = []
        treatments = []
    }

    /// The latest set of vital signs.
    public var latestVitals: VitalSigns? { vitals.max { $0.takenAt < $1.takenAt } }

    /// Checks every value (the tablet, the API and the receiver all call this).
    public func validate() throws(ObservationError) {
        if let complaintNote {
            guard complaintNote.count <= Self.maximumNoteLength else {
                throw .tooLong("the complaint note", Self.maximumNoteLength)
            }
            guard !complaintNote.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .invalid("the complaint note has control characters")
            }
        }
        if chiefComplaint == .other, complaintNote?.isEmpty ?? true {
            throw .empty("a chief complaint of \"other\" needs a note")
        }
        guard vitals.count <= Self.maximumVitalSets else { throw .tooMany("vital-sign sets", Self.maximumVitalSets) }
        guard treatments.count <= Self.maximumTreatments else {
            throw .tooMany("treatments", Self.maximumTreatments)
        }
        for set in vitals { try set.validate() }
        if let etaMinutes {
            guard (0...600).contains(etaMinutes) else { throw .outOfRange("ETA", "0 to 600 minutes") }
            guard etaRecordedAt != nil else { throw .inconsistent("an ETA needs the time it was given") }
        }
    }
}

/// A crew observation the tablet, the API or the receiver refused, in words a paramedic can act on (never with
/// the value itself, which may be patient data).
public struct ObservationError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable {
        case outOfRange = "out-of-range"
        case inconsistent
        case empty
        case tooLong = "too-long"
        case tooMany = "too-many"
        case invalid
    }

    private let code: Code
    /// What is wrong, without the value.
    public let reason: String

    private init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// A stable identifier of the kind of error, for problem documents and tests.
    public var kind: String { code.rawValue }

    /// The message.
    public var description: String { reason }

    /// A value outside its plausible range.
    public static func outOfRange(_ name: String, _ range: String) -> Self {
        Self(.outOfRange, "\(name) must be \(range)")
    }

    /// Two values that contradict each other.
    public static func inconsistent(_ reason: String) -> Self { Self(.inconsistent, reason) }

    /// Something required is missing.
    public static func empty(_ reason: String) -> Self { Self(.empty, reason) }

    /// A text over its length.
    public static func tooLong(_ name: String, _ limit: Int) -> Self {
        Self(.tooLong, "\(name) is longer than \(limit) characters")
    }

    /// A list over its size.
    public static func tooMany(_ name: String, _ limit: Int) -> Self {
        Self(.tooMany, "more than \(limit) \(name)")
    }

    /// Anything else.
    public static func invalid(_ reason: String) -> Self { Self(.invalid, reason) }

    /// Errors match by kind (tests compare with `#expect(throws:)`).
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the kind.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
