/// A record type of a `ResultList`; every record carries `synthetic="true|false"`.
protocol XMLRecord {
    static var elementName: String { get }
    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self
    func write(to w: inout OnshiXMLWriter)
}

private func open(_ w: inout OnshiXMLWriter, _ name: String, synthetic: Bool) {
    w.open(name, attributes: ["synthetic": synthetic.xmlText])
}

/// Insurance qualification and the demographic fields the crew needs.
public struct Qualification: Sendable, Hashable, Codable {
    /// Insured person or dependent.
    public enum InsuredKind: String, Sendable, Hashable, Codable, OnshiXMLValue {
        /// The insured person (本人).
        case insured
        /// A dependent (家族).
        case dependent
    }

    /// The insurer number (保険者番号, 6 or 8 digits).
    public var insurerNumber: String
    /// The insurer's name.
    public var insurerName: String
    /// The card symbol (記号); empty for national health insurance without one.
    public var symbol: String
    /// The card number (番号).
    public var number: String
    /// The branch number (枝番, 2 digits).
    public var branchNumber: String
    /// Insured person or dependent.
    public var insuredKind: InsuredKind
    /// Name in kanji (family U+3000 given).
    public var name: String
    /// Name in katakana.
    public var nameKana: String
    /// Birth date.
    public var birthDate: OnshiDate
    /// Sex.
    public var sex: OnshiSex
    /// Postal code `NNN-NNNN`.
    public var postalCode: String
    /// Address.
    public var address: String
    /// Qualification start.
    public var validFrom: OnshiDate
    /// Qualification end, when known.
    public var validUntil: OnshiDate?
    /// Co-payment ratio in percent (10, 20, 30).
    public var copaymentPercent: Int
    /// The record is synthetic (always true from the stub).
    public var synthetic: Bool

    /// Makes a record.
    public init(
        insurerNumber: String,
        insurerName: String,
        symbol: String,
        number: String,
        branchNumber: String,
        insuredKind: InsuredKind,
        name: String,
        nameKana: String,
        birthDate: OnshiDate,
        sex: OnshiSex,
        postalCode: String,
        address: String,
        validFrom: OnshiDate,
        validUntil: OnshiDate?,
        copaymentPercent: Int,
        synthetic: Bool
    ) {
        self.insurerNumber = insurerNumber
        self.insurerName = insurerName
        self.symbol = symbol
        self.number = number
        self.branchNumber = branchNumber
        self.insuredKind = insuredKind
        self.name = name
        self.nameKana = nameKana
        self.birthDate = birthDate
        self.sex = sex
        self.postalCode = postalCode
        self.address = address
        self.validFrom = validFrom
        self.validUntil = validUntil
        self.copaymentPercent = copaymentPercent
        self.synthetic = synthetic
    }
}

extension Qualification: XMLRecord {
    static let elementName = "Qualification"
    private static let fields = [
        "InsurerNumber", "InsurerName", "Symbol", "Number", "BranchNumber", "InsuredKind", "Name", "NameKana",
        "BirthDate", "Sex", "PostalCode", "Address", "ValidFrom", "ValidUntil", "CopaymentPercent",
    ]

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(Self.fields)
        return Self(
            insurerNumber: try e.value(String.self, "InsurerNumber"),
            insurerName: try e.value(String.self, "InsurerName"),
            symbol: try e.value(String.self, "Symbol"),
            number: try e.value(String.self, "Number"),
            branchNumber: try e.value(String.self, "BranchNumber"),
            insuredKind: try e.value(InsuredKind.self, "InsuredKind"),
            name: try e.value(String.self, "Name"),
            nameKana: try e.value(String.self, "NameKana"),
            birthDate: try e.value(OnshiDate.self, "BirthDate"),
            sex: try e.value(OnshiSex.self, "Sex"),
            postalCode: try e.value(String.self, "PostalCode"),
            address: try e.value(String.self, "Address"),
            validFrom: try e.value(OnshiDate.self, "ValidFrom"),
            validUntil: try e.optionalValue(OnshiDate.self, "ValidUntil"),
            copaymentPercent: try e.int("CopaymentPercent", in: 0...100),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("InsurerNumber", self.insurerNumber)
        w.leaf("InsurerName", self.insurerName)
        w.leaf("Symbol", self.symbol)
        w.leaf("Number", self.number)
        w.leaf("BranchNumber", self.branchNumber)
        w.leaf("InsuredKind", self.insuredKind)
        w.leaf("Name", self.name)
        w.leaf("NameKana", self.nameKana)
        w.leaf("BirthDate", self.birthDate)
        w.leaf("Sex", self.sex)
        w.leaf("PostalCode", self.postalCode)
        w.leaf("Address", self.address)
        w.leaf("ValidFrom", self.validFrom)
        w.leaf("ValidUntil", self.validUntil)
        w.leaf("CopaymentPercent", self.copaymentPercent)
        w.close(Self.elementName)
    }
}

/// One visit to an institution.
public struct Visit: Sendable, Hashable, Codable {
    /// Outpatient, inpatient, emergency or home visit.
    public enum Setting: String, Sendable, Hashable, Codable, OnshiXMLValue {
        /// Outpatient.
        case outpatient
        /// Admission.
        case inpatient
        /// Emergency department.
        case emergency
        /// Home visit.
        case home
    }

    /// Date of the visit (start of the stay for admissions).
    public var date: OnshiDate
    /// The institution's ten-digit code.
    public var institutionCode: String
    /// The institution's name.
    public var institutionName: String
    /// The department, when known.
    public var department: String?
    /// Setting.
    public var setting: Setting
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(
        date: OnshiDate,
        institutionCode: String,
        institutionName: String,
        department: String?,
        setting: Setting,
        synthetic: Bool
    ) {
        self.date = date
        self.institutionCode = institutionCode
        self.institutionName = institutionName
        self.department = department
        self.setting = setting
        self.synthetic = synthetic
    }
}

extension Visit: XMLRecord {
    static let elementName = "Visit"

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(["Date", "InstitutionCode", "InstitutionName", "Department", "Setting"])
        return Self(
            date: try e.value(OnshiDate.self, "Date"),
            institutionCode: try e.value(String.self, "InstitutionCode"),
            institutionName: try e.value(String.self, "InstitutionName"),
            department: try e.optionalValue(String.self, "Department"),
            setting: try e.value(Setting.self, "Setting"),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("Date", self.date)
        w.leaf("InstitutionCode", self.institutionCode)
        w.leaf("InstitutionName", self.institutionName)
        w.leaf("Department", self.department)
        w.leaf("Setting", self.setting)
        w.close(Self.elementName)
    }
}

/// A diagnosis or past illness.
public struct Diagnosis: Sendable, Hashable, Codable {
    /// What became of it.
    public enum Outcome: String, Sendable, Hashable, Codable, OnshiXMLValue {
        /// Still under treatment.
        case ongoing
        /// Cured.
        case cured
        /// Treatment stopped.
        case discontinued
        /// Transferred elsewhere.
        case transferred
    }

    /// ICD-10 code (e.g. `I48.9`).
    public var icd10: String
    /// The Japanese standard disease name (標準病名).
    public var name: String
    /// Start date.
    public var startDate: OnshiDate
    /// Outcome.
    public var outcome: Outcome
    /// The institution that recorded it.
    public var institutionName: String
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(
        icd10: String,
        name: String,
        startDate: OnshiDate,
        outcome: Outcome,
        institutionName: String,
        synthetic: Bool
    ) {
        self.icd10 = icd10
        self.name = name
        self.startDate = startDate
        self.outcome = outcome
        self.institutionName = institutionName
        self.synthetic = synthetic
    }
}

extension Diagnosis: XMLRecord {
    static let elementName = "Diagnosis"

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(["ICD10", "Name", "StartDate", "Outcome", "InstitutionName"])
        return Self(
            icd10: try e.value(String.self, "ICD10"),
            name: try e.value(String.self, "Name"),
            startDate: try e.value(OnshiDate.self, "StartDate"),
            outcome: try e.value(Outcome.self, "Outcome"),
            institutionName: try e.value(String.self, "InstitutionName"),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("ICD10", self.icd10)
        w.leaf("Name", self.name)
        w.leaf("StartDate", self.startDate)
        w.leaf("Outcome", self.outcome)
        w.leaf("InstitutionName", self.institutionName)
        w.close(Self.elementName)
    }
}

/// A dispensed drug.
public struct Medication: Sendable, Hashable, Codable {
    /// Date dispensed.
    public var dispensedDate: OnshiDate
    /// YJ code, 12 characters.
    public var yjCode: String
    /// The generic name (一般名).
    public var genericName: String
    /// The brand name, when dispensed by brand.
    public var brandName: String?
    /// Dose per day in ``unit``.
    public var dose: Double
    /// Unit of ``dose`` (mg, 錠, 単位…).
    public var unit: String
    /// Directions (用法), e.g. 1日2回朝夕食後.
    public var usage: String
    /// Days supplied.
    public var days: Int
    /// The pharmacy that dispensed it.
    public var pharmacyName: String
    /// The prescribing institution.
    public var prescriberName: String
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(
        dispensedDate: OnshiDate,
        yjCode: String,
        genericName: String,
        brandName: String?,
        dose: Double,
        unit: String,
        usage: String,
        days: Int,
        pharmacyName: String,
        prescriberName: String,
        synthetic: Bool
    ) {
        self.dispensedDate = dispensedDate
        self.yjCode = yjCode
        self.genericName = genericName
        self.brandName = brandName
        self.dose = dose
        self.unit = unit
        self.usage = usage
        self.days = days
        self.pharmacyName = pharmacyName
        self.prescriberName = prescriberName
        self.synthetic = synthetic
    }
}

extension Medication: XMLRecord {
    static let elementName = "Medication"
    private static let fields = [
        "DispensedDate", "YJCode", "GenericName", "BrandName", "Dose", "Unit", "Usage", "Days", "PharmacyName",
        "PrescriberName",
    ]

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(Self.fields)
        return Self(
            dispensedDate: try e.value(OnshiDate.self, "DispensedDate"),
            yjCode: try readYJCode(e, "YJCode"),
            genericName: try e.value(String.self, "GenericName"),
            brandName: try e.optionalValue(String.self, "BrandName"),
            dose: try e.value(Double.self, "Dose"),
            unit: try e.value(String.self, "Unit"),
            usage: try e.value(String.self, "Usage"),
            days: try e.int("Days", in: 0...366),
            pharmacyName: try e.value(String.self, "PharmacyName"),
            prescriberName: try e.value(String.self, "PrescriberName"),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("DispensedDate", self.dispensedDate)
        w.leaf("YJCode", self.yjCode)
        w.leaf("GenericName", self.genericName)
        w.leaf("BrandName", self.brandName)
        w.leaf("Dose", self.dose)
        w.leaf("Unit", self.unit)
        w.leaf("Usage", self.usage)
        w.leaf("Days", self.days)
        w.leaf("PharmacyName", self.pharmacyName)
        w.leaf("PrescriberName", self.prescriberName)
        w.close(Self.elementName)
    }
}

/// A YJ code: 12 characters, ASCII letters and digits.
private func readYJCode(_ e: OnshiXMLElement, _ name: String) throws(OnshiXMLError) -> String {
    let child = try e.child(name)
    let code = try child.value(String.self)
    guard code.utf8.count == 12, code.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) })
    else { throw .invalidValue(path: child.path, expected: "YJ code (12 characters)") }
    return code
}

/// An electronic prescription (電子処方箋), one drug per record.
public struct Prescription: Sendable, Hashable, Codable {
    /// The prescription's identifier.
    public var prescriptionID: String
    /// Date issued.
    public var issuedDate: OnshiDate
    /// The prescribing institution.
    public var institutionName: String
    /// YJ code, 12 characters.
    public var yjCode: String
    /// Generic name.
    public var genericName: String
    /// Brand name, when prescribed by brand.
    public var brandName: String?
    /// Dose per day in ``unit``.
    public var dose: Double
    /// Unit.
    public var unit: String
    /// Directions.
    public var usage: String
    /// Days prescribed.
    public var days: Int
    /// Whether a pharmacy has dispensed it.
    public var dispensed: Bool
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(
        prescriptionID: String,
        issuedDate: OnshiDate,
        institutionName: String,
        yjCode: String,
        genericName: String,
        brandName: String?,
        dose: Double,
        unit: String,
        usage: String,
        days: Int,
        dispensed: Bool,
        synthetic: Bool
    ) {
        self.prescriptionID = prescriptionID
        self.issuedDate = issuedDate
        self.institutionName = institutionName
        self.yjCode = yjCode
        self.genericName = genericName
        self.brandName = brandName
        self.dose = dose
        self.unit = unit
        self.usage = usage
        self.days = days
        self.dispensed = dispensed
        self.synthetic = synthetic
    }
}

extension Prescription: XMLRecord {
    static let elementName = "Prescription"
    private static let fields = [
        "PrescriptionID", "IssuedDate", "InstitutionName", "YJCode", "GenericName", "BrandName", "Dose", "Unit",
        "Usage", "Days", "Dispensed",
    ]

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(Self.fields)
        return Self(
            prescriptionID: try e.value(String.self, "PrescriptionID"),
            issuedDate: try e.value(OnshiDate.self, "IssuedDate"),
            institutionName: try e.value(String.self, "InstitutionName"),
            yjCode: try readYJCode(e, "YJCode"),
            genericName: try e.value(String.self, "GenericName"),
            brandName: try e.optionalValue(String.self, "BrandName"),
            dose: try e.value(Double.self, "Dose"),
            unit: try e.value(String.self, "Unit"),
            usage: try e.value(String.self, "Usage"),
            days: try e.int("Days", in: 0...366),
            dispensed: try e.value(Bool.self, "Dispensed"),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("PrescriptionID", self.prescriptionID)
        w.leaf("IssuedDate", self.issuedDate)
        w.leaf("InstitutionName", self.institutionName)
        w.leaf("YJCode", self.yjCode)
        w.leaf("GenericName", self.genericName)
        w.leaf("BrandName", self.brandName)
        w.leaf("Dose", self.dose)
        w.leaf("Unit", self.unit)
        w.leaf("Usage", self.usage)
        w.leaf("Days", self.days)
        w.leaf("Dispensed", self.dispensed)
        w.close(Self.elementName)
    }
}

/// An operation.
public struct Surgery: Sendable, Hashable, Codable {
    /// Date of the operation.
    public var date: OnshiDate
    /// The procedure code (診療行為コード / K-code).
    public var code: String
    /// The procedure's name.
    public var name: String
    /// The institution.
    public var institutionName: String
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(date: OnshiDate, code: String, name: String, institutionName: String, synthetic: Bool) {
        self.date = date
        self.code = code
        self.name = name
        self.institutionName = institutionName
        self.synthetic = synthetic
    }
}

extension Surgery: XMLRecord {
    static let elementName = "Surgery"

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(["Date", "Code", "Name", "InstitutionName"])
        return Self(
            date: try e.value(OnshiDate.self, "Date"),
            code: try e.value(String.self, "Code"),
            name: try e.value(String.self, "Name"),
            institutionName: try e.value(String.self, "InstitutionName"),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("Date", self.date)
        w.leaf("Code", self.code)
        w.leaf("Name", self.name)
        w.leaf("InstitutionName", self.institutionName)
        w.close(Self.elementName)
    }
}

/// A treatment (procedure), dialysis flagged.
public struct Treatment: Sendable, Hashable, Codable {
    /// Date performed.
    public var date: OnshiDate
    /// The procedure code (診療行為コード).
    public var code: String
    /// The procedure's name.
    public var name: String
    /// The institution.
    public var institutionName: String
    /// Whether this is dialysis (人工腎臓 and the like).
    public var dialysis: Bool
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(
        date: OnshiDate,
        code: String,
        name: String,
        institutionName: String,
        dialysis: Bool,
        synthetic: Bool
    ) {
        self.date = date
        self.code = code
        self.name = name
        self.institutionName = institutionName
        self.dialysis = dialysis
        self.synthetic = synthetic
    }
}

extension Treatment: XMLRecord {
    static let elementName = "Treatment"

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(["Date", "Code", "Name", "InstitutionName", "Dialysis"])
        return Self(
            date: try e.value(OnshiDate.self, "Date"),
            code: try e.value(String.self, "Code"),
            name: try e.value(String.self, "Name"),
            institutionName: try e.value(String.self, "InstitutionName"),
            dialysis: try e.value(Bool.self, "Dialysis"),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("Date", self.date)
        w.leaf("Code", self.code)
        w.leaf("Name", self.name)
        w.leaf("InstitutionName", self.institutionName)
        w.leaf("Dialysis", self.dialysis)
        w.close(Self.elementName)
    }
}

/// One specific health checkup with its JLAC10 items.
public struct Checkup: Sendable, Hashable, Codable {
    /// One measured item.
    public struct Item: Sendable, Hashable, Codable {
        /// JLAC10 code (17 characters).
        public var jlac10: String
        /// The item's name (HbA1c, BMI…).
        public var name: String
        /// The value as reported (a number, or a qualitative result such as `(-)`).
        public var value: String
        /// The unit, for quantities.
        public var unit: String?
        /// Whether the value is outside the reference range.
        public var outOfRange: Bool

        /// Makes an item.
        public init(jlac10: String, name: String, value: String, unit: String?, outOfRange: Bool) {
            self.jlac10 = jlac10
            self.name = name
            self.value = value
            self.unit = unit
            self.outOfRange = outOfRange
        }
    }

    /// Date of the checkup.
    public var date: OnshiDate
    /// Where it was done.
    public var institutionName: String
    /// The items.
    public var items: [Item]
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(date: OnshiDate, institutionName: String, items: [Item], synthetic: Bool) {
        self.date = date
        self.institutionName = institutionName
        self.items = items
        self.synthetic = synthetic
    }
}

extension Checkup: XMLRecord {
    static let elementName = "Checkup"

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(["Date", "InstitutionName", "Item"])
        var items: [Item] = []
        for i in e.children("Item") {
            try i.allowOnly(["JLAC10", "Name", "Value", "Unit", "OutOfRange"])
            let codeElement = try i.child("JLAC10")
            let code = try codeElement.value(String.self)
            guard code.utf8.count == 17 else {
                throw .invalidValue(path: codeElement.path, expected: "JLAC10 code (17 characters)")
            }
            items.append(
                Item(
                    jlac10: code,
                    name: try i.value(String.self, "Name"),
                    value: try i.value(String.self, "Value"),
                    unit: try i.optionalValue(String.self, "Unit"),
                    outOfRange: try i.value(Bool.self, "OutOfRange")
                )
            )
        }
        return Self(
            date: try e.value(OnshiDate.self, "Date"),
            institutionName: try e.value(String.self, "InstitutionName"),
            items: items,
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("Date", self.date)
        w.leaf("InstitutionName", self.institutionName)
        for item in self.items {
            w.open("Item")
            w.leaf("JLAC10", item.jlac10)
            w.leaf("Name", item.name)
            w.leaf("Value", item.value)
            w.leaf("Unit", item.unit)
            w.leaf("OutOfRange", item.outOfRange)
            w.close("Item")
        }
        w.close(Self.elementName)
    }
}

/// An allergy, drug contraindication or infection.
public struct Allergy: Sendable, Hashable, Codable {
    /// What kind of entry.
    public enum Kind: String, Sendable, Hashable, Codable, OnshiXMLValue {
        /// Drug allergy.
        case drug
        /// Food allergy.
        case food
        /// Drug contraindication (禁忌).
        case contraindication
        /// Infection (感染症).
        case infection
        /// Anything else.
        case other
    }

    /// Kind.
    public var kind: Kind
    /// The substance, drug class or infection.
    public var substance: String
    /// The drug's YJ code, for drug entries when known.
    public var yjCode: String?
    /// The reaction, when recorded.
    public var reaction: String?
    /// When it was recorded.
    public var recordedDate: OnshiDate
    /// The record is synthetic.
    public var synthetic: Bool

    /// Makes a record.
    public init(
        kind: Kind,
        substance: String,
        yjCode: String?,
        reaction: String?,
        recordedDate: OnshiDate,
        synthetic: Bool
    ) {
        self.kind = kind
        self.substance = substance
        self.yjCode = yjCode
        self.reaction = reaction
        self.recordedDate = recordedDate
        self.synthetic = synthetic
    }
}

extension Allergy: XMLRecord {
    static let elementName = "Allergy"

    static func read(_ e: OnshiXMLElement) throws(OnshiXMLError) -> Self {
        try e.allowOnly(["Kind", "Substance", "YJCode", "Reaction", "RecordedDate"])
        return Self(
            kind: try e.value(Kind.self, "Kind"),
            substance: try e.value(String.self, "Substance"),
            yjCode: try e.optionalChild("YJCode") == nil ? nil : try readYJCode(e, "YJCode"),
            reaction: try e.optionalValue(String.self, "Reaction"),
            recordedDate: try e.value(OnshiDate.self, "RecordedDate"),
            synthetic: try e.attribute(Bool.self, "synthetic")
        )
    }

    func write(to w: inout OnshiXMLWriter) {
        open(&w, Self.elementName, synthetic: self.synthetic)
        w.leaf("Kind", self.kind)
        w.leaf("Substance", self.substance)
        w.leaf("YJCode", self.yjCode)
        w.leaf("Reaction", self.reaction)
        w.leaf("RecordedDate", self.recordedDate)
        w.close(Self.elementName)
    }
}
