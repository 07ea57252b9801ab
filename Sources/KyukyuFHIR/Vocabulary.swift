import KyukyuDomain

/// The URIs the handoff document uses: code systems, identifier systems, profiles and extensions. The validator
/// accepts a `Coding.system` only from ``codeSystems``.
public enum HandoffURI {
    // MARK: Code systems

    /// LOINC.
    public static let loinc = "http://loinc.org"
    /// UCUM (units of `Quantity`).
    public static let ucum = "http://unitsofmeasure.org"
    /// ICD-10 (2013 edition) as JP Core names it.
    public static let icd10 = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full"
    /// YJ codes (個別医薬品コード).
    public static let yjCode = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code"
    /// JLAC10, 17 digits (MEDIS clinical laboratory master).
    public static let jlac10 = "http://medis.or.jp/CodeSystem/master-JLAC10-17digits"
    /// JP Core's simple observation category (vital-signs, laboratory…).
    public static let jpObservationCategory = "http://jpfhir.jp/fhir/core/CodeSystem/JP_SimpleObservationCategory_CS"
    /// FHIR's observation category.
    public static let observationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
    /// FHIR's condition clinical status.
    public static let conditionClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    /// FHIR's condition verification status.
    public static let conditionVerification = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
    /// FHIR's condition category.
    public static let conditionCategory = "http://terminology.hl7.org/CodeSystem/condition-category"
    /// FHIR's allergy clinical status.
    public static let allergyClinical = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    /// FHIR's allergy verification status.
    public static let allergyVerification = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
    /// HL7 v3 ActCode (encounter class, coverage type).
    public static let v3ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    /// HL7 v3 ActReason (purpose of use).
    public static let v3ActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    /// HL7 v3 observation interpretation.
    public static let v3Interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    /// FHIR's organization type.
    public static let organizationType = "http://terminology.hl7.org/CodeSystem/organization-type"
    /// FHIR's provenance participant type.
    public static let provenanceParticipant = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
    /// FHIR's list empty reason (section.emptyReason).
    public static let listEmptyReason = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
    /// This project's codes: handoff sections without a LOINC code, and the crew's observations without one.
    public static let kyukyuCodes = "http://kyukyu.example.jp/fhir/CodeSystem/handoff"
    /// This project's chief complaints (the tablet's taps).
    public static let chiefComplaint = "http://kyukyu.example.jp/fhir/CodeSystem/chief-complaint"
    /// 緊急度: red, yellow, green.
    public static let triagePriority = "http://kyukyu.example.jp/fhir/CodeSystem/triage-priority"
    /// The Japan Coma Scale levels (`0`, `I-1` … `III-300`).
    public static let jcs = "http://kyukyu.example.jp/fhir/CodeSystem/jcs"
    /// The crew's treatments (救急救命処置).
    public static let prehospitalTreatment = "http://kyukyu.example.jp/fhir/CodeSystem/prehospital-treatment"
    /// Trauma mechanisms.
    public static let traumaMechanism = "http://kyukyu.example.jp/fhir/CodeSystem/trauma-mechanism"
    /// Injured body regions.
    public static let bodyRegion = "http://kyukyu.example.jp/fhir/CodeSystem/body-region"
    /// onshi's procedure codes (診療行為 区分番号 as onshi reports them, e.g. `K6103`, `J038`).
    public static let onshiProcedure = "http://kyukyu.example.jp/fhir/CodeSystem/onshi-procedure"
    /// The consent basis (``ConsentBasis`` raw values).
    public static let consentBasis = "http://kyukyu.example.jp/fhir/CodeSystem/consent-basis"
    /// onshi's record categories (``MedicalCategory`` raw values).
    public static let medicalCategory = "http://kyukyu.example.jp/fhir/CodeSystem/medical-category"
    /// The gateway's category status words (`late`, `failed`, `timed-out`…).
    public static let categoryStatus = "http://kyukyu.example.jp/fhir/CodeSystem/category-status"

    /// Every code system a `Coding.system` (or `Quantity.system`) of the document may name.
    public static let codeSystems: Set<String> = [
        loinc, ucum, icd10, yjCode, jlac10, jpObservationCategory, observationCategory, conditionClinical,
        conditionVerification, conditionCategory, allergyClinical, allergyVerification, v3ActCode, v3ActReason,
        v3Interpretation, organizationType, provenanceParticipant, listEmptyReason, kyukyuCodes, chiefComplaint,
        triagePriority, jcs, prehospitalTreatment, traumaMechanism, bodyRegion, onshiProcedure, consentBasis,
        medicalCategory, categoryStatus,
    ]

    // MARK: Identifier systems

    /// RFC 3986 URIs (`urn:uuid:…`): the document set and the version identifiers.
    public static let rfc3986 = "urn:ietf:rfc:3986"
    /// JP Core: the 10-digit medical-institution code (医療機関コード).
    public static let medicalInstitution = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no"
    /// JP Core: the insurer number (保険者番号).
    public static let insurerNumber = "http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber"
    /// JP Core: the insured person's identifier (`insurer:symbol:number:branch`).
    public static let insuredMember = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID"
    /// The sending device (the ambulance gateway's id, its client certificate's CN).
    public static let device = "urn:kyukyu:device"
    /// The crew member.
    public static let crew = "urn:kyukyu:crew"
    /// The patient within one incident: a random value (the document set's uuid), never a real identifier.
    public static let incidentPatient = "urn:kyukyu:incident-patient"

    // MARK: Extensions

    /// ISO 21090 name representation (IDE kanji, SYL kana).
    public static let nameRepresentation = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
    /// JP Core: 記号.
    public static let insuredSymbol =
        "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonSymbol"
    /// JP Core: 番号.
    public static let insuredNumber =
        "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonNumber"
    /// JP Core: 枝番.
    public static let insuredSubNumber =
        "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonSubNumber"
    /// The gateway's signed audit head at build time (on the Provenance).
    public static let auditAnchor = "http://kyukyu.example.jp/fhir/StructureDefinition/audit-anchor"
    /// A category that was missing or late (on the Provenance; repeats).
    public static let categoryGap = "http://kyukyu.example.jp/fhir/StructureDefinition/category-gap"

    // MARK: Profiles

    /// The JP Core profile URL of `name` (`JP_Patient`…).
    public static func jpCore(_ name: String) -> String { "http://jpfhir.jp/fhir/core/StructureDefinition/\(name)" }
}

/// Japanese and English words for the crew's codes (display texts of the local code systems).
enum Words {
    static func complaint(_ c: ChiefComplaint) -> String {
        switch c {
        case .chestPain: "胸痛"
        case .dyspnoea: "呼吸困難"
        case .alteredConsciousness: "意識障害"
        case .strokeSymptoms: "脳卒中疑い"
        case .cardiacArrest: "心肺停止"
        case .seizure: "けいれん"
        case .abdominalPain: "腹痛"
        case .trauma: "外傷"
        case .burn: "熱傷"
        case .fever: "発熱"
        case .poisoning: "中毒"
        case .bleeding: "出血"
        case .other: "その他"
        }
    }

    static func priority(_ p: TriagePriority) -> String {
        switch p {
        case .red: "赤（緊急）"
        case .yellow: "黄（準緊急）"
        case .green: "緑（非緊急）"
        }
    }

    static func treatment(_ k: TreatmentGiven.Kind) -> String {
        switch k {
        case .oxygen: "酸素投与"
        case .airway: "気道確保"
        case .cpr: "胸骨圧迫（CPR）"
        case .defibrillation: "AED・除細動"
        case .intravenousAccess: "静脈路確保"
        case .adrenaline: "アドレナリン投与"
        case .glucose: "ブドウ糖投与"
        case .haemostasis: "止血"
        case .spinalImmobilisation: "全脊柱固定"
        case .splint: "副子固定"
        case .warming: "保温"
        }
    }

    static func mechanism(_ m: TraumaDetails.Mechanism) -> String {
        switch m {
        case .trafficOccupant: "交通事故（車両乗員）"
        case .pedestrian: "歩行者事故"
        case .motorcycle: "二輪車事故"
        case .fallFromHeight: "墜落"
        case .fallSameLevel: "転倒"
        case .penetrating: "刺創・切創"
        case .blunt: "打撲・殴打"
        case .burn: "熱傷"
        case .drowning: "溺水"
        case .other: "その他"
        }
    }

    static func region(_ r: TraumaDetails.Region) -> String {
        switch r {
        case .head: "頭部"
        case .face: "顔面"
        case .neck: "頸部"
        case .chest: "胸部"
        case .abdomen: "腹部"
        case .pelvis: "骨盤"
        case .spine: "脊椎"
        case .upperLimb: "上肢"
        case .lowerLimb: "下肢"
        case .skin: "体表"
        }
    }

    static func consent(_ c: ConsentBasis) -> String {
        switch c {
        case .verbal: "口頭同意"
        case .lifeOrBodyException: "生命・身体の保護のための例外（本人同意困難）"
        case .refused: "本人拒否（閲覧なし）"
        }
    }

    static func category(_ c: MedicalCategory) -> String {
        switch c {
        case .qualification: "資格・基本情報"
        case .visits: "受診歴"
        case .diagnoses: "傷病名"
        case .medications: "調剤薬剤"
        case .prescriptions: "電子処方箋"
        case .surgery: "手術"
        case .treatment: "診療行為"
        case .checkups: "特定健診"
        case .allergies: "アレルギー・禁忌"
        }
    }
}
