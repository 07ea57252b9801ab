import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuOnshi

/// The clinical picture a synthetic patient is built on.
public enum Archetype: String, Sendable, Hashable, Codable, CaseIterable {
    /// Atrial fibrillation on apixaban (DOAC) and a beta blocker, with hypertension.
    case atrialFibrillationApixaban = "af-apixaban"
    /// Atrial fibrillation on warfarin, with heart failure.
    case atrialFibrillationWarfarin = "af-warfarin"
    /// Type 2 diabetes on basal-bolus insulin (glargine + aspart) and metformin; HbA1c in the checkups.
    case insulinDiabetic = "insulin-diabetic"
    /// End-stage renal disease on haemodialysis three times a week.
    case dialysis
    /// Epilepsy on levetiracetam and valproate.
    case epilepsy
    /// A healthy young adult: qualification only, every other category empty.
    case healthyYoungAdult = "healthy"
    /// An elderly patient on 15 drugs, dispensed weekly for 5 years: megabytes of history.
    case elderlyPolypharmacy = "polypharmacy"

    /// The archetype of patient `number`.
    ///
    /// Holders 1–7 are fixed (chosen to fit the card simulator's ages in 2026): 1 polypharmacy (95), 2 insulin diabetic
    /// (51), 3 AF on apixaban (79), 4 AF on warfarin (92), 5 epilepsy (42), 6 dialysis (82), 7 healthy (37).
    /// From 8 on, the archetype follows the holder's age: under 40 healthy or epilepsy, 40–64 diabetic,
    /// epilepsy, healthy or dialysis, 65 and over AF (either), dialysis, diabetic or polypharmacy.
    public static func of(patient number: Int, today: OnshiDate) -> Archetype {
        let fixed: [Archetype] = [
            .elderlyPolypharmacy, .insulinDiabetic, .atrialFibrillationApixaban, .atrialFibrillationWarfarin,
            .epilepsy, .dialysis, .healthyYoungAdult,
        ]
        if number >= 1, number <= fixed.count { return fixed[number - 1] }
        let age = SyntheticPatient.age(of: SyntheticHolder(number: number).birthDate, on: today)
        let pool: [Archetype] =
            switch age {
            case ..<40: [.healthyYoungAdult, .healthyYoungAdult, .epilepsy]
            case 40..<65: [.insulinDiabetic, .epilepsy, .healthyYoungAdult, .dialysis]
            default:
                [
                    .atrialFibrillationApixaban, .atrialFibrillationWarfarin, .dialysis, .insulinDiabetic,
                    .elderlyPolypharmacy,
                ]
            }
        return pool[number % pool.count]
    }
}

/// A synthetic patient: the card simulator's holder N plus an insurer and a clinical history.
///
/// Everything is a pure function of N and the reference day (histories are laid out backwards from it, so the
/// look-back periods keep their meaning whatever the date). Every record carries `synthetic = true`; names,
/// addresses and institutions are made up (架空 / テスト), and no record describes a real person.
public struct SyntheticPatient: Sendable, Hashable {
    /// The patient (and card holder) number.
    public var number: Int
    /// The card simulator's holder.
    public var holder: SyntheticHolder
    /// The clinical picture.
    public var archetype: Archetype
    /// The day the history ends on.
    public var today: OnshiDate
    /// Qualification validity 1–6 (1 for everyone except every 13th holder from 13 on, who has lapsed: 2).
    public var qualificationValidity: Int

    /// Patient `number` as of `today`.
    public init(number: Int, today: OnshiDate) {
        self.number = number
        self.holder = SyntheticHolder(number: number)
        self.archetype = Archetype.of(patient: number, today: today)
        self.today = today
        self.qualificationValidity = number >= 13 && number % 13 == 0 ? 2 : 1
    }

    /// Age in whole years on `day`.
    public static func age(of birth: SyntheticHolder.BirthDate, on day: OnshiDate) -> Int {
        var age = day.year - birth.year
        if (day.month, day.day) < (birth.month, birth.day) { age -= 1 }
        return age
    }

    /// Age today.
    public var age: Int { Self.age(of: self.holder.birthDate, on: self.today) }

    /// The insurer, chosen by age (後期高齢者 from 75) and number.
    public var insurer: Insurer { Insurer.of(patient: self.number, age: self.age) }

    /// The records of `category`, inside its look-back period, newest first.
    public func records(_ category: MedicalCategory) -> CategoryRecords {
        var history = History(patient: self)
        return history.records(category)
    }
}

/// A (fictitious) insurer and the patient's card symbol and number.
public struct Insurer: Sendable, Hashable, Codable {
    /// Insurer number (6 digits for 国保, 8 otherwise).
    public var insurerNumber: String
    /// Insurer name.
    public var name: String
    /// Card symbol (記号).
    public var symbol: String
    /// Card number (番号).
    public var number: String
    /// Co-payment in percent.
    public var copaymentPercent: Int

    /// The insurer of patient `number` aged `age`.
    public static func of(patient number: Int, age: Int) -> Insurer {
        let serial = String(100_000 + number)
        if age >= 75 {
            return Insurer(
                insurerNumber: "39139982",
                name: "架空県後期高齢者医療広域連合",
                symbol: "",
                number: "K" + serial,
                copaymentPercent: 10
            )
        }
        switch number % 3 {
        case 0:
            return Insurer(
                insurerNumber: "01139986",
                name: "全国健康保険協会 架空支部",
                symbol: String(70_000_000 + number % 997 * 1009),
                number: String(number),
                copaymentPercent: age >= 70 ? 20 : 30
            )
        case 1:
            return Insurer(
                insurerNumber: "06139993",
                name: "テスト健康保険組合",
                symbol: "T" + String(100 + number % 50),
                number: serial,
                copaymentPercent: age >= 70 ? 20 : 30
            )
        default:
            return Insurer(
                insurerNumber: "139994",
                name: "架空市国民健康保険",
                symbol: "架空" + String(number % 90 + 10),
                number: serial,
                copaymentPercent: age >= 70 ? 20 : 30
            )
        }
    }
}

/// A drug as the population uses it: real generic names, realistic-looking YJ codes.
struct Drug: Sendable {
    var yj: String
    var generic: String
    var brand: String
    var dose: Double
    var unit: String
    var usage: String
}

enum Drugs {
    static let apixaban = Drug(
        yj: "3339004F2024",
        generic: "アピキサバン錠",
        brand: "エリキュース錠5mg",
        dose: 10,
        unit: "mg",
        usage: "1日2回朝夕食後"
    )
    static let bisoprolol = Drug(
        yj: "2123016F2029",
        generic: "ビソプロロールフマル酸塩錠",
        brand: "メインテート錠2.5mg",
        dose: 2.5,
        unit: "mg",
        usage: "1日1回朝食後"
    )
    static let warfarin = Drug(
        yj: "3332001F1030",
        generic: "ワルファリンカリウム錠",
        brand: "ワーファリン錠1mg",
        dose: 3,
        unit: "mg",
        usage: "1日1回夕食後"
    )
    static let furosemide = Drug(
        yj: "2139005F1048",
        generic: "フロセミド錠",
        brand: "ラシックス錠20mg",
        dose: 20,
        unit: "mg",
        usage: "1日1回朝食後"
    )
    static let glargine = Drug(
        yj: "2492415G1037",
        generic: "インスリン グラルギン（遺伝子組換え）注",
        brand: "ランタス注ソロスター",
        dose: 14,
        unit: "単位",
        usage: "1日1回就寝前 皮下注"
    )
    static let aspart = Drug(
        yj: "2492413G4020",
        generic: "インスリン アスパルト（遺伝子組換え）注",
        brand: "ノボラピッド注フレックスタッチ",
        dose: 18,
        unit: "単位",
        usage: "1日3回毎食直前 皮下注"
    )
    static let metformin = Drug(
        yj: "3962002F2047",
        generic: "メトホルミン塩酸塩錠",
        brand: "メトグルコ錠500mg",
        dose: 1500,
        unit: "mg",
        usage: "1日3回毎食後"
    )
    static let lanthanum = Drug(
        yj: "2190024F1021",
        generic: "炭酸ランタン水和物口腔内崩壊錠",
        brand: "ホスレノールOD錠250mg",
        dose: 750,
        unit: "mg",
        usage: "1日3回毎食直後"
    )
    static let cinacalcet = Drug(
        yj: "3999028F1020",
        generic: "シナカルセト塩酸塩錠",
        brand: "レグパラ錠25mg",
        dose: 25,
        unit: "mg",
        usage: "1日1回夕食後"
    )
    static let amlodipine = Drug(
        yj: "2171022F1063",
        generic: "アムロジピンベシル酸塩錠",
        brand: "アムロジン錠5mg",
        dose: 5,
        unit: "mg",
        usage: "1日1回朝食後"
    )
    static let levetiracetam = Drug(
        yj: "1139010F2021",
        generic: "レベチラセタム錠",
        brand: "イーケプラ錠500mg",
        dose: 1000,
        unit: "mg",
        usage: "1日2回朝夕食後"
    )
    static let valproate = Drug(
        yj: "1139004G1041",
        generic: "バルプロ酸ナトリウム徐放錠",
        brand: "デパケンR錠200mg",
        dose: 800,
        unit: "mg",
        usage: "1日2回朝夕食後"
    )
    /// The fifteen drugs of the polypharmacy archetype.
    static let polypharmacy: [Drug] = [
        amlodipine,
        Drug(
            yj: "2149044F2020",
            generic: "オルメサルタン メドキソミル錠",
            brand: "オルメテックOD錠20mg",
            dose: 20,
            unit: "mg",
            usage: "1日1回朝食後"
        ),
        Drug(
            yj: "2189015F2037",
            generic: "アトルバスタチンカルシウム錠",
            brand: "リピトール錠10mg",
            dose: 10,
            unit: "mg",
            usage: "1日1回夕食後"
        ),
        Drug(
            yj: "2329023F2020",
            generic: "ランソプラゾール口腔内崩壊錠",
            brand: "タケプロンOD錠15",
            dose: 15,
            unit: "mg",
            usage: "1日1回朝食後"
        ),
        Drug(yj: "3399007H1021", generic: "アスピリン腸溶錠", brand: "バイアスピリン錠100mg", dose: 100, unit: "mg", usage: "1日1回朝食後"),
        Drug(yj: "1190012F2025", generic: "ドネペジル塩酸塩錠", brand: "アリセプト錠5mg", dose: 5, unit: "mg", usage: "1日1回朝食後"),
        Drug(yj: "2344009F1034", generic: "酸化マグネシウム錠", brand: "マグミット錠330mg", dose: 990, unit: "mg", usage: "1日3回毎食後"),
        Drug(yj: "2354003F2035", generic: "センノシド錠", brand: "プルゼニド錠12mg", dose: 24, unit: "mg", usage: "1日1回就寝前"),
        Drug(
            yj: "3112006M1024",
            generic: "エルデカルシトールカプセル",
            brand: "エディロールカプセル0.75μg",
            dose: 0.75,
            unit: "μg",
            usage: "1日1回朝食後"
        ),
        furosemide,
        Drug(yj: "2133001F1070", generic: "スピロノラクトン錠", brand: "アルダクトンA錠25mg", dose: 25, unit: "mg", usage: "1日1回朝食後"),
        Drug(yj: "2329021F1022", generic: "レバミピド錠", brand: "ムコスタ錠100mg", dose: 300, unit: "mg", usage: "1日3回毎食後"),
        Drug(yj: "1129009F1025", generic: "ゾルピデム酒石酸塩錠", brand: "マイスリー錠5mg", dose: 5, unit: "mg", usage: "1日1回就寝前"),
        Drug(yj: "2590014F1029", generic: "ミラベグロン錠", brand: "ベタニス錠25mg", dose: 25, unit: "mg", usage: "1日1回朝食後"),
        Drug(
            yj: "1149019F1560",
            generic: "ロキソプロフェンナトリウム水和物錠",
            brand: "ロキソニン錠60mg",
            dose: 180,
            unit: "mg",
            usage: "1日3回毎食後"
        ),
    ]
}

/// JLAC10 checkup items.
enum CheckItem {
    static let bmi = ("9N011000000000001", "BMI", "kg/m2")
    static let sbp = ("9A751000000000001", "収縮期血圧", "mmHg")
    static let dbp = ("9A761000000000001", "拡張期血圧", "mmHg")
    static let hba1c = ("3D046000001906202", "HbA1c（NGSP）", "%")
    static let glucose = ("3D010000001926101", "空腹時血糖", "mg/dL")
    static let ldl = ("3F077000002327101", "LDLコレステロール", "mg/dL")
    static let hdl = ("3F070000002327101", "HDLコレステロール", "mg/dL")
    static let tg = ("3F015000002327101", "中性脂肪", "mg/dL")
    static let ast = ("3B035000002327201", "AST（GOT）", "U/L")
    static let alt = ("3B045000002327201", "ALT（GPT）", "U/L")
    static let ggt = ("3B090000002327101", "γ-GT（γ-GTP）", "U/L")
    static let egfr = ("8A065000002391901", "eGFR", "mL/min/1.73m2")
    static let urineProtein = ("1A020000000191111", "尿蛋白", nil as String?)
}

/// Lays out one patient's history; a fresh generator per category keeps categories independent.
struct History {
    let patient: SyntheticPatient
    let today: OnshiDate
    let clinic: (code: String, name: String)
    let hospital: (code: String, name: String)
    let pharmacy: String

    init(patient: SyntheticPatient) {
        self.patient = patient
        self.today = patient.today
        let n = patient.number
        self.clinic = ("13" + pad8(10_000_000 + n % 97 * 7), "テスト内科クリニック（架空）")
        self.hospital = ("13" + pad8(20_000_000 + n % 13), "架空市立総合病院")
        self.pharmacy = "テスト調剤薬局 架空" + String(n % 9 + 1) + "号店"
    }

    func rng(_ category: MedicalCategory) -> Rng {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in category.rawValue.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return Rng(seed: UInt64(truncatingIfNeeded: self.patient.number) &* 0x9E37_79B9_7F4A_7C15 ^ hash)
    }

    var fiveYearsAgo: OnshiDate { self.today.adding(days: -(5 * 365 + 1)) }

    mutating func records(_ category: MedicalCategory) -> CategoryRecords {
        let lookBack = category.lookBack
        let today = self.today
        let inRange: (OnshiDate) -> Bool = { lookBack.includes($0, today: today) }
        switch category {
        case .qualification: return .qualification(self.qualification())
        case .visits: return .visits(self.visits().filter { inRange($0.date) }.sorted { $0.date > $1.date })
        case .diagnoses: return .diagnoses(self.diagnoses())
        case .medications:
            return .medications(
                self.medications().filter { inRange($0.dispensedDate) }.sorted { $0.dispensedDate > $1.dispensedDate }
            )
        case .prescriptions:
            return .prescriptions(self.prescriptions().filter { inRange($0.issuedDate) })
        case .surgery: return .surgery(self.surgery().filter { inRange($0.date) })
        case .treatment:
            return .treatment(self.treatment().filter { inRange($0.date) }.sorted { $0.date > $1.date })
        case .checkups: return .checkups(Array(self.checkups().sorted { $0.date > $1.date }.prefix(5)))
        case .allergies: return .allergies(self.allergies())
        }
    }

    // MARK: Categories

    func qualification() -> Qualification {
        let h = self.patient.holder
        let insurer = self.patient.insurer
        let birth = OnshiDate(year: h.birthDate.year, month: h.birthDate.month, day: h.birthDate.day)
        let validFrom: OnshiDate
        if self.patient.age >= 75 {
            validFrom = OnshiDate(year: h.birthDate.year + 75, month: h.birthDate.month, day: min(h.birthDate.day, 28))
        } else {
            validFrom = OnshiDate(year: self.today.year - 1 - self.patient.number % 8, month: 4, day: 1)
        }
        let lapsed = self.patient.qualificationValidity == 2
        return Qualification(
            insurerNumber: insurer.insurerNumber,
            insurerName: insurer.name,
            symbol: insurer.symbol,
            number: insurer.number,
            branchNumber: "00",
            insuredKind: self.patient.number % 5 == 4 ? .dependent : .insured,
            name: h.fullName,
            nameKana: h.fullNameKana,
            birthDate: birth,
            sex: OnshiSex(rawValue: h.sex.rawValue) ?? .notApplicable,
            postalCode: h.postalCode,
            address: h.address,
            validFrom: validFrom,
            validUntil: lapsed ? self.today.adding(days: -40) : nil,
            copaymentPercent: insurer.copaymentPercent,
            synthetic: true
        )
    }

    /// The drugs of the archetype, the dispensing interval in days, and the prescriber.
    var regimen: (drugs: [Drug], interval: Int, prescriber: (code: String, name: String))? {
        switch self.patient.archetype {
        case .atrialFibrillationApixaban: ([Drugs.apixaban, Drugs.bisoprolol, Drugs.amlodipine], 28, self.clinic)
        case .atrialFibrillationWarfarin: ([Drugs.warfarin, Drugs.furosemide, Drugs.bisoprolol], 28, self.clinic)
        case .insulinDiabetic: ([Drugs.glargine, Drugs.aspart, Drugs.metformin], 28, self.clinic)
        case .dialysis: ([Drugs.lanthanum, Drugs.cinacalcet, Drugs.amlodipine], 14, self.dialysisClinic)
        case .epilepsy: ([Drugs.levetiracetam, Drugs.valproate], 56, self.hospital)
        case .healthyYoungAdult: nil
        case .elderlyPolypharmacy: (Drugs.polypharmacy, 7, self.clinic)
        }
    }

    var dialysisClinic: (code: String, name: String) {
        ("13" + pad8(30_000_000 + self.patient.number % 11), "テスト透析クリニック（架空）")
    }

    /// Dispensing days over five years, newest first, with a day or two of jitter.
    func dispensingDays(interval: Int) -> [OnshiDate] {
        var r = self.rng(.medications)
        var out: [OnshiDate] = []
        var day = self.today.adding(days: -Int(r.next() % UInt64(interval)))
        let start = self.fiveYearsAgo
        while day >= start {
            out.append(day)
            day = day.adding(days: -(interval - 1 + Int(r.next() % 3)))
        }
        return out
    }

    func visits() -> [Visit] {
        guard let regimen = self.regimen else { return [] }
        var out: [Visit] = []
        for day in self.dispensingDays(interval: regimen.interval) {
            out.append(
                Visit(
                    date: day,
                    institutionCode: regimen.prescriber.code,
                    institutionName: regimen.prescriber.name,
                    department: self.department,
                    setting: self.patient.archetype == .elderlyPolypharmacy ? .home : .outpatient,
                    synthetic: true
                )
            )
        }
        if self.patient.archetype == .dialysis {
            for day in self.dialysisDays() where !out.contains(where: { $0.date == day }) {
                out.append(
                    Visit(
                        date: day,
                        institutionCode: self.dialysisClinic.code,
                        institutionName: self.dialysisClinic.name,
                        department: "腎臓内科",
                        setting: .outpatient,
                        synthetic: true
                    )
                )
            }
        }
        for s in self.surgery() {
            out.append(
                Visit(
                    date: s.date,
                    institutionCode: self.hospital.code,
                    institutionName: self.hospital.name,
                    department: "外科",
                    setting: .inpatient,
                    synthetic: true
                )
            )
        }
        return out
    }

    var department: String {
        switch self.patient.archetype {
        case .atrialFibrillationApixaban, .atrialFibrillationWarfarin: "循環器内科"
        case .insulinDiabetic: "糖尿病内科"
        case .dialysis: "腎臓内科"
        case .epilepsy: "脳神経内科"
        case .healthyYoungAdult, .elderlyPolypharmacy: "内科"
        }
    }

    func diagnoses() -> [Diagnosis] {
        let y = self.today.year
        func d(_ icd: String, _ name: String, _ yearsAgo: Int, _ outcome: Diagnosis.Outcome = .ongoing) -> Diagnosis {
            Diagnosis(
                icd10: icd,
                name: name,
                startDate: OnshiDate(year: y - yearsAgo, month: 1 + (self.patient.number + yearsAgo) % 12, day: 10),
                outcome: outcome,
                institutionName: self.regimen?.prescriber.name ?? self.clinic.name,
                synthetic: true
            )
        }
        switch self.patient.archetype {
        case .atrialFibrillationApixaban:
            return [d("I48.9", "心房細動", 4), d("I10", "本態性高血圧症", 9)]
        case .atrialFibrillationWarfarin:
            return [d("I48.1", "持続性心房細動", 12), d("I50.0", "うっ血性心不全", 3), d("I05.0", "僧帽弁狭窄症", 15)]
        case .insulinDiabetic:
            return [d("E11.9", "２型糖尿病", 11), d("E78.5", "脂質異常症", 8), d("H36.0", "糖尿病網膜症", 2)]
        case .dialysis:
            return [
                d("N18.5", "末期腎不全", 4), d("E11.2", "糖尿病性腎症", 14), d("D63.8", "腎性貧血", 4),
                d("N25.8", "二次性副甲状腺機能亢進症", 3), d("I10", "高血圧症", 20),
            ]
        case .epilepsy:
            return [d("G40.9", "てんかん", 18), d("L27.0", "薬疹", 6, .cured)]
        case .healthyYoungAdult:
            return []
        case .elderlyPolypharmacy:
            return [
                d("I10", "高血圧症", 25), d("E78.5", "脂質異常症", 18), d("K21.0", "逆流性食道炎", 7),
                d("G30.1", "アルツハイマー型認知症", 5), d("M81.0", "骨粗鬆症", 10), d("K59.0", "便秘症", 6),
                d("I50.0", "慢性心不全", 4), d("G47.0", "不眠症", 8), d("N32.8", "過活動膀胱", 3),
                d("I69.3", "陳旧性脳梗塞", 9), d("S72.0", "大腿骨頚部骨折", 2, .cured), d("M17.9", "変形性膝関節症", 12),
            ]
        }
    }

    func medications() -> [Medication] {
        guard let regimen = self.regimen else { return [] }
        var out: [Medication] = []
        for day in self.dispensingDays(interval: regimen.interval) {
            for drug in regimen.drugs {
                out.append(
                    Medication(
                        dispensedDate: day,
                        yjCode: drug.yj,
                        genericName: drug.generic,
                        brandName: drug.brand,
                        dose: drug.dose,
                        unit: drug.unit,
                        usage: drug.usage,
                        days: regimen.interval,
                        pharmacyName: self.pharmacy,
                        prescriberName: regimen.prescriber.name,
                        synthetic: true
                    )
                )
            }
        }
        return out
    }

    func prescriptions() -> [Prescription] {
        guard let regimen = self.regimen else { return [] }
        var out: [Prescription] = []
        let days = self.dispensingDays(interval: regimen.interval)
        for (index, day) in days.enumerated() {
            for (k, drug) in regimen.drugs.enumerated() {
                out.append(
                    Prescription(
                        prescriptionID: "SYN-RX-\(self.patient.number)-\(day.xmlText)-\(k + 1)",
                        issuedDate: day,
                        institutionName: regimen.prescriber.name,
                        yjCode: drug.yj,
                        genericName: drug.generic,
                        brandName: drug.brand,
                        dose: drug.dose,
                        unit: drug.unit,
                        usage: drug.usage,
                        days: regimen.interval,
                        dispensed: index > 0 || day < self.today,
                        synthetic: true
                    )
                )
            }
        }
        return out
    }

    func surgery() -> [Surgery] {
        let y = self.today.year
        func s(_ code: String, _ name: String, _ yearsAgo: Int, _ month: Int) -> Surgery {
            Surgery(
                date: OnshiDate(year: y - yearsAgo, month: month, day: 12),
                code: code,
                name: name,
                institutionName: self.hospital.name,
                synthetic: true
            )
        }
        switch self.patient.archetype {
        case .atrialFibrillationApixaban: return [s("K5951", "経皮的カテーテル心筋焼灼術（心房中隔穿刺）", 3, 6)]
        case .dialysis: return [s("K6103", "内シャント造設術", 4, 2)]
        case .elderlyPolypharmacy:
            return [s("K0461", "骨折観血的手術（大腿）", 2, 9), s("K2821", "水晶体再建術（眼内レンズ挿入）", 4, 11)]
        default: return []
        }
    }

    func dialysisDays() -> [OnshiDate] {
        // Monday / Wednesday / Friday (1970-01-01 was a Thursday), from the shunt's first use on.
        let start = max(self.fiveYearsAgo, OnshiDate(year: self.today.year - 4, month: 3, day: 1))
        var out: [OnshiDate] = []
        var day = self.today
        while day >= start {
            let weekday = (day.daysSinceEpoch + 4) % 7  // 0 Sunday
            if weekday == 1 || weekday == 3 || weekday == 5 { out.append(day) }
            day = day.adding(days: -1)
        }
        return out
    }

    func treatment() -> [Treatment] {
        switch self.patient.archetype {
        case .dialysis:
            return self.dialysisDays().map {
                Treatment(
                    date: $0,
                    code: "J038",
                    name: "人工腎臓（慢性維持透析 4時間以上5時間未満）",
                    institutionName: self.dialysisClinic.name,
                    dialysis: true,
                    synthetic: true
                )
            }
        case .insulinDiabetic:
            return self.dispensingDays(interval: 28).map {
                Treatment(
                    date: $0,
                    code: "C101",
                    name: "在宅自己注射指導管理料",
                    institutionName: self.clinic.name,
                    dialysis: false,
                    synthetic: true
                )
            }
        case .epilepsy:
            return (0..<5).map {
                Treatment(
                    date: OnshiDate(year: self.today.year - $0, month: 5, day: 20),
                    code: "D235",
                    name: "脳波検査",
                    institutionName: self.hospital.name,
                    dialysis: false,
                    synthetic: true
                )
            }.filter { $0.date <= self.today }
        case .elderlyPolypharmacy:
            return self.dispensingDays(interval: 7).enumerated().compactMap { index, day in
                index % 2 == 0
                    ? Treatment(
                        date: day,
                        code: "C001",
                        name: "在宅患者訪問診療料",
                        institutionName: self.clinic.name,
                        dialysis: false,
                        synthetic: true
                    ) : nil
            }
        case .atrialFibrillationWarfarin:
            return self.dispensingDays(interval: 28).map {
                Treatment(
                    date: $0,
                    code: "D006",
                    name: "出血・凝固検査（PT-INR）",
                    institutionName: self.clinic.name,
                    dialysis: false,
                    synthetic: true
                )
            }
        case .atrialFibrillationApixaban, .healthyYoungAdult:
            return []
        }
    }

    mutating func checkups() -> [Checkup] {
        if self.patient.archetype == .healthyYoungAdult { return [] }
        var r = self.rng(.checkups)
        var out: [Checkup] = []
        for yearsAgo in 0..<6 {
            let date = OnshiDate(year: self.today.year - yearsAgo, month: 6 + self.patient.number % 4, day: 15)
            guard date <= self.today else { continue }
            func v(_ base: Double, _ spread: Double, digits: Int = 0) -> String {
                let x = base + (Double(r.next() % 1000) / 1000 - 0.5) * spread
                return digits == 0 ? String(Int(x.rounded())) : String(format: "%.\(digits)f", x)
            }
            let a = self.patient.archetype
            var items: [Checkup.Item] = []
            func add(_ item: (String, String, String?), _ value: String, _ out: Bool) {
                items.append(.init(jlac10: item.0, name: item.1, value: value, unit: item.2, outOfRange: out))
            }
            add(CheckItem.bmi, v(a == .insulinDiabetic ? 27.5 : 22.5, 2, digits: 1), a == .insulinDiabetic)
            add(CheckItem.sbp, v(a == .elderlyPolypharmacy || a == .dialysis ? 142 : 126, 12), a == .dialysis)
            add(CheckItem.dbp, v(78, 10), false)
            add(CheckItem.hba1c, v(a == .insulinDiabetic ? 8.2 : 5.6, 0.6, digits: 1), a == .insulinDiabetic)
            add(CheckItem.glucose, v(a == .insulinDiabetic ? 168 : 94, 20), a == .insulinDiabetic)
            add(CheckItem.ldl, v(a == .insulinDiabetic ? 132 : 118, 20), false)
            add(CheckItem.hdl, v(55, 10), false)
            add(CheckItem.tg, v(a == .insulinDiabetic ? 190 : 110, 40), a == .insulinDiabetic)
            add(CheckItem.ast, v(22, 8), false)
            add(CheckItem.alt, v(20, 8), false)
            add(CheckItem.ggt, v(28, 12), false)
            add(CheckItem.egfr, v(a == .dialysis ? 6 : (self.patient.age >= 80 ? 48 : 78), 4), a == .dialysis)
            add(CheckItem.urineProtein, a == .dialysis || a == .insulinDiabetic ? "(2+)" : "(-)", a == .dialysis)
            out.append(
                Checkup(
                    date: date,
                    institutionName: "架空市健診センター",
                    items: items,
                    synthetic: true
                )
            )
        }
        return out
    }

    func allergies() -> [Allergy] {
        let recorded = self.today.adding(days: -400)
        switch self.patient.archetype {
        case .epilepsy:
            return [
                Allergy(
                    kind: .drug,
                    substance: "カルバマゼピン",
                    yjCode: "1139002F1064",
                    reaction: "薬疹（中止済み）",
                    recordedDate: recorded,
                    synthetic: true
                )
            ]
        case .elderlyPolypharmacy:
            return [
                Allergy(
                    kind: .drug,
                    substance: "ペニシリン系抗菌薬",
                    yjCode: nil,
                    reaction: "蕁麻疹",
                    recordedDate: recorded,
                    synthetic: true
                ),
                Allergy(
                    kind: .contraindication,
                    substance: "NSAIDs長期投与（腎機能低下）",
                    yjCode: nil,
                    reaction: nil,
                    recordedDate: recorded,
                    synthetic: true
                ),
            ]
        case .dialysis:
            return [
                Allergy(
                    kind: .contraindication,
                    substance: "ガドリニウム造影剤（腎性全身性線維症のおそれ）",
                    yjCode: nil,
                    reaction: nil,
                    recordedDate: recorded,
                    synthetic: true
                )
            ]
        case .insulinDiabetic:
            return [
                Allergy(
                    kind: .food,
                    substance: "そば",
                    yjCode: nil,
                    reaction: "口唇腫脹",
                    recordedDate: recorded,
                    synthetic: true
                )
            ]
        case .atrialFibrillationApixaban, .atrialFibrillationWarfarin, .healthyYoungAdult:
            return []
        }
    }
}

/// SplitMix64: small, fast, deterministic; not for secrets.
struct Rng: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(self.next() >> 11) / Double(1 << 53) }
}

private func pad8(_ value: Int) -> String {
    let s = String(value % 100_000_000)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}
