import Foundation
import KyukyuDomain

/// A message of the onshi-like protocol: a root element holding a ``MessageHeader`` and a `MessageBody`.
public protocol OnshiMessage: Sendable, Hashable {
    /// The root element's name, e.g. `SessionResponse`.
    static var rootElementName: String { get }
    /// The header.
    var header: MessageHeader { get }
    /// Writes the children of `MessageBody`.
    func encodeBody(into writer: inout OnshiXMLWriter)
    /// Decodes the message from its header and its `MessageBody` element.
    init(header: MessageHeader, body: OnshiXMLElement) throws(OnshiXMLError)
}

/// Encoding and strict decoding of onshi messages.
public enum OnshiXML {
    /// The protocol version carried in the root's `version` attribute.
    public static let version = "1"

    /// The message as UTF-8 XML.
    public static func encode<T: OnshiMessage>(_ message: T) -> [UInt8] {
        var writer = OnshiXMLWriter()
        writer.open(T.rootElementName, attributes: ["version": Self.version])
        message.header.encode(into: &writer)
        writer.open("MessageBody")
        message.encodeBody(into: &writer)
        writer.close("MessageBody")
        writer.close(T.rootElementName)
        return writer.bytes
    }

    /// Decodes a `T` from XML bytes, within ``OnshiXMLLimits/default``.
    public static func decode<T: OnshiMessage>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try self.decode(type, from: bytes, limits: .default)
    }

    /// Decodes a `T` from XML bytes within `limits`; throws ``OnshiXMLError`` only.
    public static func decode<T: OnshiMessage>(
        _ type: T.Type,
        from bytes: [UInt8],
        limits: OnshiXMLLimits
    ) throws(OnshiXMLError) -> T {
        let root = OnshiXMLElement(node: try XMLTreeParser.parse(bytes, limits: limits), path: "")
        guard root.name == T.rootElementName else {
            throw .wrongRoot(expected: T.rootElementName, found: root.name)
        }
        guard let version = root.attribute("version") else {
            throw .missingAttribute(path: root.name, attribute: "version")
        }
        guard version == Self.version else { throw .invalidValue(path: root.name + "@version", expected: "version 1") }
        try root.allowOnly(["MessageHeader", "MessageBody"])
        let header = try MessageHeader(xml: try root.child("MessageHeader"))
        return try T(header: header, body: try root.child("MessageBody"))
    }

    /// The root element's name of a document, without decoding it (`nil` when the bytes are not XML).
    public static func rootElementName(of bytes: [UInt8]) -> String? {
        try? XMLTreeParser.parse(bytes, limits: .default).name
    }
}

/// The header of every message: when, who, what kind of reference, and the overall result.
public struct MessageHeader: Sendable, Hashable, Codable {
    /// Whether the message as a whole succeeded.
    public enum ResultSegment: String, Sendable, Hashable, Codable, OnshiXMLValue {
        /// Success (always, on requests).
        case success
        /// Error; ``MessageHeader/errorCode`` says which.
        case error
    }

    /// When the message was made (whole seconds, UTC).
    public var processedAt: Date
    /// The ten-digit code of the institution (for a fire department, its own code) making or receiving the
    /// reference.
    public var medicalInstitutionCode: String
    /// What kind of reference: ``MessageHeader/emergencyReference`` for マイナ救急.
    public var referenceClassification: String
    /// Success or error.
    public var resultSegment: ResultSegment
    /// The error code when ``resultSegment`` is `.error` (same vocabulary as ``OnshiResultCode``).
    public var errorCode: String?
    /// An identifier of the request, echoed in the response; free text without patient data.
    public var messageID: String?

    /// The reference classification of an emergency-transport reference.
    public static let emergencyReference = "21"

    /// Makes a header.
    public init(
        processedAt: Date,
        medicalInstitutionCode: String,
        referenceClassification: String = MessageHeader.emergencyReference,
        resultSegment: ResultSegment = .success,
        errorCode: String? = nil,
        messageID: String? = nil
    ) {
        self.processedAt = processedAt
        self.medicalInstitutionCode = medicalInstitutionCode
        self.referenceClassification = referenceClassification
        self.resultSegment = resultSegment
        self.errorCode = errorCode
        self.messageID = messageID
    }

    func encode(into w: inout OnshiXMLWriter) {
        w.open("MessageHeader")
        w.leaf("ProcessedAt", self.processedAt)
        w.leaf("MedicalInstitutionCode", self.medicalInstitutionCode)
        w.leaf("ReferenceClassification", self.referenceClassification)
        w.leaf("ResultSegment", self.resultSegment)
        w.leaf("ErrorCode", self.errorCode)
        w.leaf("MessageID", self.messageID)
        w.close("MessageHeader")
    }

    init(xml e: OnshiXMLElement) throws(OnshiXMLError) {
        try e.allowOnly([
            "ProcessedAt", "MedicalInstitutionCode", "ReferenceClassification", "ResultSegment", "ErrorCode",
            "MessageID",
        ])
        self.processedAt = try e.value(Date.self, "ProcessedAt")
        self.medicalInstitutionCode = try e.value(String.self, "MedicalInstitutionCode")
        self.referenceClassification = try e.value(String.self, "ReferenceClassification")
        self.resultSegment = try e.value(ResultSegment.self, "ResultSegment")
        self.errorCode = try e.optionalValue(String.self, "ErrorCode")
        self.messageID = try e.optionalValue(String.self, "MessageID")
    }
}

/// The processing result of a response.
public struct ProcessingResult: Sendable, Hashable, Codable {
    /// Completed or failed.
    public enum Status: String, Sendable, Hashable, Codable, OnshiXMLValue {
        /// Processed; data (possibly none) follows.
        case completed
        /// Not processed; ``ProcessingResult/code`` says why.
        case failed
    }

    /// Completed or failed.
    public var status: Status
    /// One of ``OnshiResultCode``.
    public var code: String
    /// A human-readable explanation (never patient data).
    public var message: String?

    /// Makes a result.
    public init(status: Status, code: String, message: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// `completed` / ``OnshiResultCode/completed``.
    public static let completed = ProcessingResult(status: .completed, code: OnshiResultCode.completed)

    /// A failure with `code`.
    public static func failed(_ code: String, _ message: String? = nil) -> ProcessingResult {
        ProcessingResult(status: .failed, code: code, message: message)
    }

    func encode(into w: inout OnshiXMLWriter) {
        w.open("ProcessingResult")
        w.leaf("Status", self.status)
        w.leaf("Code", self.code)
        w.leaf("Message", self.message)
        w.close("ProcessingResult")
    }

    init(xml e: OnshiXMLElement) throws(OnshiXMLError) {
        try e.allowOnly(["Status", "Code", "Message"])
        self.status = try e.value(Status.self, "Status")
        self.code = try e.value(String.self, "Code")
        self.message = try e.optionalValue(String.self, "Message")
    }
}

/// Per-purpose consent flags, valid until ``availableUntil`` (e.g. 24 hours after consent).
public struct ConsentFlags: Sendable, Hashable, Codable {
    /// The basis the flags were granted on.
    public var basis: ConsentBasis
    /// Dispensed drugs and e-prescriptions.
    public var medication: Bool
    /// Visits, diagnoses and treatment.
    public var diagnosis: Bool
    /// Operations.
    public var surgery: Bool
    /// Specific health checkups.
    public var checkup: Bool
    /// Allergies, contraindications and infections.
    public var allergy: Bool
    /// When the consent stops covering new requests.
    public var availableUntil: Date

    /// Makes flags.
    public init(
        basis: ConsentBasis,
        medication: Bool,
        diagnosis: Bool,
        surgery: Bool,
        checkup: Bool,
        allergy: Bool,
        availableUntil: Date
    ) {
        self.basis = basis
        self.medication = medication
        self.diagnosis = diagnosis
        self.surgery = surgery
        self.checkup = checkup
        self.allergy = allergy
        self.availableUntil = availableUntil
    }

    /// Whether the flags cover `category` (qualification is always covered).
    public func covers(_ category: MedicalCategory) -> Bool {
        switch category {
        case .qualification: true
        case .medications, .prescriptions: self.medication
        case .visits, .diagnoses, .treatment: self.diagnosis
        case .surgery: self.surgery
        case .checkups: self.checkup
        case .allergies: self.allergy
        }
    }

    func encode(into w: inout OnshiXMLWriter) {
        w.open("ConsentFlags")
        w.leaf("Basis", self.basis)
        w.leaf("Medication", self.medication)
        w.leaf("Diagnosis", self.diagnosis)
        w.leaf("Surgery", self.surgery)
        w.leaf("Checkup", self.checkup)
        w.leaf("Allergy", self.allergy)
        w.leaf("AvailableUntil", self.availableUntil)
        w.close("ConsentFlags")
    }

    init(xml e: OnshiXMLElement) throws(OnshiXMLError) {
        try e.allowOnly(["Basis", "Medication", "Diagnosis", "Surgery", "Checkup", "Allergy", "AvailableUntil"])
        self.basis = try e.value(ConsentBasis.self, "Basis")
        self.medication = try e.value(Bool.self, "Medication")
        self.diagnosis = try e.value(Bool.self, "Diagnosis")
        self.surgery = try e.value(Bool.self, "Surgery")
        self.checkup = try e.value(Bool.self, "Checkup")
        self.allergy = try e.value(Bool.self, "Allergy")
        self.availableUntil = try e.value(Date.self, "AvailableUntil")
    }
}

/// PIN mode, step 1: ask the service for a nonce for the card to sign.
public struct NonceRequest: OnshiMessage, Codable {
    /// `NonceRequest`.
    public static let rootElementName = "NonceRequest"
    /// The header.
    public var header: MessageHeader
    /// The crew member asking.
    public var crewID: String

    /// Makes a request.
    public init(header: MessageHeader, crewID: String) {
        self.header = header
        self.crewID = crewID
    }

    /// Writes `CrewID`.
    public func encodeBody(into w: inout OnshiXMLWriter) {
        w.leaf("CrewID", self.crewID)
    }

    /// Reads `CrewID`.
    public init(header: MessageHeader, body: OnshiXMLElement) throws(OnshiXMLError) {
        try body.allowOnly(["CrewID"])
        self.header = header
        self.crewID = try body.value(String.self, "CrewID")
    }
}

/// PIN mode, step 1 answer: a single-use nonce with an expiry.
public struct NonceResponse: OnshiMessage, Codable {
    /// `NonceResponse`.
    public static let rootElementName = "NonceResponse"
    /// The header.
    public var header: MessageHeader
    /// The result.
    public var result: ProcessingResult
    /// The nonce's identifier, sent back in ``AuthenticationRequest/nonceID``.
    public var nonceID: String?
    /// The bytes the card signs (PKCS#1 v1.5 over their SHA-256); base64 on the wire.
    public var nonce: [UInt8]?
    /// After this the nonce is refused.
    public var expiresAt: Date?

    /// Makes a response.
    public init(header: MessageHeader, result: ProcessingResult, nonceID: String?, nonce: [UInt8]?, expiresAt: Date?) {
        self.header = header
        self.result = result
        self.nonceID = nonceID
        self.nonce = nonce
        self.expiresAt = expiresAt
    }

    /// Writes the result and the nonce.
    public func encodeBody(into w: inout OnshiXMLWriter) {
        self.result.encode(into: &w)
        w.leaf("NonceID", self.nonceID)
        w.leaf("Nonce", base64: self.nonce)
        w.leaf("ExpiresAt", self.expiresAt)
    }

    /// Reads the result and the nonce.
    public init(header: MessageHeader, body: OnshiXMLElement) throws(OnshiXMLError) {
        try body.allowOnly(["ProcessingResult", "NonceID", "Nonce", "ExpiresAt"])
        self.header = header
        self.result = try ProcessingResult(xml: try body.child("ProcessingResult"))
        self.nonceID = try body.optionalValue(String.self, "NonceID")
        self.nonce = try body.optionalBase64("Nonce")
        self.expiresAt = try body.optionalValue(Date.self, "ExpiresAt")
    }
}

/// Opens a session with the card's user-authentication certificate.
public struct AuthenticationRequest: OnshiMessage, Codable {
    /// `AuthenticationRequest`.
    public static let rootElementName = "AuthenticationRequest"
    /// The header.
    public var header: MessageHeader
    /// Visual check or PIN mode.
    public var assurance: AssuranceLevel
    /// The user-authentication certificate read from the card (DER; base64 on the wire).
    public var certificateDER: [UInt8]
    /// The crew member viewing.
    public var crewID: String
    /// The consent basis; `refused` gets nothing but is recorded.
    public var consent: ConsentBasis
    /// PIN mode: the nonce's identifier.
    public var nonceID: String?
    /// PIN mode: the card's PKCS#1 v1.5 SHA-256 signature over the nonce bytes.
    public var signature: [UInt8]?

    /// Makes a request.
    public init(
        header: MessageHeader,
        assurance: AssuranceLevel,
        certificateDER: [UInt8],
        crewID: String,
        consent: ConsentBasis,
        nonceID: String? = nil,
        signature: [UInt8]? = nil
    ) {
        self.header = header
        self.assurance = assurance
        self.certificateDER = certificateDER
        self.crewID = crewID
        self.consent = consent
        self.nonceID = nonceID
        self.signature = signature
    }

    /// Writes the fields.
    public func encodeBody(into w: inout OnshiXMLWriter) {
        w.leaf("Assurance", self.assurance)
        w.leaf("Certificate", base64: self.certificateDER)
        w.leaf("CrewID", self.crewID)
        w.leaf("ConsentBasis", self.consent)
        w.leaf("NonceID", self.nonceID)
        w.leaf("Signature", base64: self.signature)
    }

    /// Reads the fields.
    public init(header: MessageHeader, body: OnshiXMLElement) throws(OnshiXMLError) {
        try body.allowOnly(["Assurance", "Certificate", "CrewID", "ConsentBasis", "NonceID", "Signature"])
        self.header = header
        self.assurance = try body.value(AssuranceLevel.self, "Assurance")
        self.certificateDER = try body.base64("Certificate")
        self.crewID = try body.value(String.self, "CrewID")
        self.consent = try body.value(ConsentBasis.self, "ConsentBasis")
        self.nonceID = try body.optionalValue(String.self, "NonceID")
        self.signature = try body.optionalBase64("Signature")
    }
}

/// What identifies the patient in a lookup without a card.
public enum PatientQuery: Sendable, Hashable, Codable {
    /// The four fields: name (kanji or katakana, family and given separated by a space or U+3000), birth date,
    /// sex, address (as on the card).
    case demographics(name: String, birthDate: OnshiDate, sex: OnshiSex, address: String)
    /// The insurance card: insurer number (8 digits), symbol and number.
    case insurance(insurerNumber: String, symbol: String, number: String)
}

/// Opens a session without a card (the crew vouches for identity).
public struct LookupRequest: OnshiMessage, Codable {
    /// `LookupRequest`.
    public static let rootElementName = "LookupRequest"
    /// The header.
    public var header: MessageHeader
    /// Who the patient is.
    public var query: PatientQuery
    /// The crew member viewing.
    public var crewID: String
    /// The consent basis; `refused` gets nothing but is recorded.
    public var consent: ConsentBasis

    /// Makes a request.
    public init(header: MessageHeader, query: PatientQuery, crewID: String, consent: ConsentBasis) {
        self.header = header
        self.query = query
        self.crewID = crewID
        self.consent = consent
    }

    /// Writes `Demographics` or `Insurance`, then crew and consent.
    public func encodeBody(into w: inout OnshiXMLWriter) {
        switch self.query {
        case .demographics(let name, let birthDate, let sex, let address):
            w.open("Demographics")
            w.leaf("Name", name)
            w.leaf("BirthDate", birthDate)
            w.leaf("Sex", sex)
            w.leaf("Address", address)
            w.close("Demographics")
        case .insurance(let insurerNumber, let symbol, let number):
            w.open("Insurance")
            w.leaf("InsurerNumber", insurerNumber)
            w.leaf("Symbol", symbol)
            w.leaf("Number", number)
            w.close("Insurance")
        }
        w.leaf("CrewID", self.crewID)
        w.leaf("ConsentBasis", self.consent)
    }

    /// Reads exactly one of `Demographics` and `Insurance`, then crew and consent.
    public init(header: MessageHeader, body: OnshiXMLElement) throws(OnshiXMLError) {
        try body.allowOnly(["Demographics", "Insurance", "CrewID", "ConsentBasis"])
        self.header = header
        let demographics = try body.optionalChild("Demographics")
        let insurance = try body.optionalChild("Insurance")
        switch (demographics, insurance) {
        case (let d?, nil):
            try d.allowOnly(["Name", "BirthDate", "Sex", "Address"])
            self.query = .demographics(
                name: try d.value(String.self, "Name"),
                birthDate: try d.value(OnshiDate.self, "BirthDate"),
                sex: try d.value(OnshiSex.self, "Sex"),
                address: try d.value(String.self, "Address")
            )
        case (nil, let i?):
            try i.allowOnly(["InsurerNumber", "Symbol", "Number"])
            self.query = .insurance(
                insurerNumber: try i.value(String.self, "InsurerNumber"),
                symbol: try i.value(String.self, "Symbol"),
                number: try i.value(String.self, "Number")
            )
        case (nil, nil):
            throw .missingElement(path: body.path + "/Demographics")
        case (.some, .some):
            throw .unexpectedElement(path: body.path + "/Insurance")
        }
        self.crewID = try body.value(String.self, "CrewID")
        self.consent = try body.value(ConsentBasis.self, "ConsentBasis")
    }
}

/// The answer to ``AuthenticationRequest`` and ``LookupRequest``: a session token for the category requests.
public struct SessionResponse: OnshiMessage, Codable {
    /// `SessionResponse`.
    public static let rootElementName = "SessionResponse"
    /// The header.
    public var header: MessageHeader
    /// The result.
    public var result: ProcessingResult
    /// The token for `GET /onshi/v1/sessions/{token}/{category}`; absent on failure.
    public var sessionToken: String?
    /// When the token stops working.
    public var sessionExpiresAt: Date?
    /// Qualification validity, 1–6: 1 valid, 2 lapsed, 3 valid with a newer qualification on file,
    /// 4 not confirmed, 5 being processed, 6 other.
    public var qualificationValidity: Int?
    /// The consent flags granted.
    public var consent: ConsentFlags?

    /// Makes a response.
    public init(
        header: MessageHeader,
        result: ProcessingResult,
        sessionToken: String? = nil,
        sessionExpiresAt: Date? = nil,
        qualificationValidity: Int? = nil,
        consent: ConsentFlags? = nil
    ) {
        self.header = header
        self.result = result
        self.sessionToken = sessionToken
        self.sessionExpiresAt = sessionExpiresAt
        self.qualificationValidity = qualificationValidity
        self.consent = consent
    }

    /// Writes the result, token, validity and consent.
    public func encodeBody(into w: inout OnshiXMLWriter) {
        self.result.encode(into: &w)
        w.leaf("SessionToken", self.sessionToken)
        w.leaf("SessionExpiresAt", self.sessionExpiresAt)
        w.leaf("QualificationValidity", self.qualificationValidity)
        self.consent?.encode(into: &w)
    }

    /// Reads the result, token, validity (1–6) and consent.
    public init(header: MessageHeader, body: OnshiXMLElement) throws(OnshiXMLError) {
        try body.allowOnly([
            "ProcessingResult", "SessionToken", "SessionExpiresAt", "QualificationValidity", "ConsentFlags",
        ])
        self.header = header
        self.result = try ProcessingResult(xml: try body.child("ProcessingResult"))
        self.sessionToken = try body.optionalValue(String.self, "SessionToken")
        self.sessionExpiresAt = try body.optionalValue(Date.self, "SessionExpiresAt")
        if try body.optionalChild("QualificationValidity") != nil {
            self.qualificationValidity = try body.int("QualificationValidity", in: 1...6)
        } else {
            self.qualificationValidity = nil
        }
        self.consent = try body.optionalChild("ConsentFlags").map { (e) throws(OnshiXMLError) in
            try ConsentFlags(xml: e)
        }
    }
}

/// The records of one category.
public enum CategoryRecords: Sendable, Hashable, Codable {
    /// The qualification; `nil` when the response failed.
    case qualification(Qualification?)
    /// Visits.
    case visits([Visit])
    /// Diagnoses.
    case diagnoses([Diagnosis])
    /// Dispensed drugs.
    case medications([Medication])
    /// Electronic prescriptions.
    case prescriptions([Prescription])
    /// Operations.
    case surgery([Surgery])
    /// Treatment.
    case treatment([Treatment])
    /// Checkups.
    case checkups([Checkup])
    /// Allergies.
    case allergies([Allergy])

    /// The category these records belong to.
    public var category: MedicalCategory {
        switch self {
        case .qualification: .qualification
        case .visits: .visits
        case .diagnoses: .diagnoses
        case .medications: .medications
        case .prescriptions: .prescriptions
        case .surgery: .surgery
        case .treatment: .treatment
        case .checkups: .checkups
        case .allergies: .allergies
        }
    }

    /// How many records.
    public var count: Int {
        switch self {
        case .qualification(let q): q == nil ? 0 : 1
        case .visits(let r): r.count
        case .diagnoses(let r): r.count
        case .medications(let r): r.count
        case .prescriptions(let r): r.count
        case .surgery(let r): r.count
        case .treatment(let r): r.count
        case .checkups(let r): r.count
        case .allergies(let r): r.count
        }
    }

    /// No records of `category`.
    public static func empty(_ category: MedicalCategory) -> CategoryRecords {
        switch category {
        case .qualification: .qualification(nil)
        case .visits: .visits([])
        case .diagnoses: .diagnoses([])
        case .medications: .medications([])
        case .prescriptions: .prescriptions([])
        case .surgery: .surgery([])
        case .treatment: .treatment([])
        case .checkups: .checkups([])
        case .allergies: .allergies([])
        }
    }

    func encode(into w: inout OnshiXMLWriter) {
        w.open("ResultList", attributes: ["count": String(self.count)])
        switch self {
        case .qualification(let q): q?.write(to: &w)
        case .visits(let r): for x in r { x.write(to: &w) }
        case .diagnoses(let r): for x in r { x.write(to: &w) }
        case .medications(let r): for x in r { x.write(to: &w) }
        case .prescriptions(let r): for x in r { x.write(to: &w) }
        case .surgery(let r): for x in r { x.write(to: &w) }
        case .treatment(let r): for x in r { x.write(to: &w) }
        case .checkups(let r): for x in r { x.write(to: &w) }
        case .allergies(let r): for x in r { x.write(to: &w) }
        }
        w.close("ResultList")
    }

    init(xml e: OnshiXMLElement, category: MedicalCategory) throws(OnshiXMLError) {
        try e.allowOnly([category.recordElementName])
        let declared = try e.attribute(Int.self, "count")
        switch category {
        case .qualification:
            let all = try Self.records(Qualification.self, e)
            if all.count > 1 { throw .duplicateElement(path: e.path + "/Qualification") }
            self = .qualification(all.first)
        case .visits: self = .visits(try Self.records(Visit.self, e))
        case .diagnoses: self = .diagnoses(try Self.records(Diagnosis.self, e))
        case .medications: self = .medications(try Self.records(Medication.self, e))
        case .prescriptions: self = .prescriptions(try Self.records(Prescription.self, e))
        case .surgery: self = .surgery(try Self.records(Surgery.self, e))
        case .treatment: self = .treatment(try Self.records(Treatment.self, e))
        case .checkups: self = .checkups(try Self.records(Checkup.self, e))
        case .allergies: self = .allergies(try Self.records(Allergy.self, e))
        }
        guard declared == self.count else { throw .invalidValue(path: e.path + "@count", expected: "record count") }
    }

    private static func records<R: XMLRecord>(_ type: R.Type, _ e: OnshiXMLElement) throws(OnshiXMLError) -> [R] {
        let children = e.children(R.elementName)
        var out: [R] = []
        out.reserveCapacity(children.count)
        for child in children {
            out.append(try R.read(child))
        }
        return out
    }
}

/// The answer to `GET /onshi/v1/sessions/{token}/{category}`.
public struct CategoryResponse: OnshiMessage, Codable {
    /// `CategoryResponse`.
    public static let rootElementName = "CategoryResponse"
    /// The header.
    public var header: MessageHeader
    /// The result (``OnshiResultCode/noRecords`` when the category is empty).
    public var result: ProcessingResult
    /// The category.
    public var category: MedicalCategory
    /// The records (empty on failure).
    public var records: CategoryRecords

    /// Makes a response; `records` must be of `category`.
    public init(header: MessageHeader, result: ProcessingResult, category: MedicalCategory, records: CategoryRecords) {
        precondition(records.category == category, "records of another category")
        self.header = header
        self.result = result
        self.category = category
        self.records = records
    }

    /// Writes the result, the category, and the result list.
    public func encodeBody(into w: inout OnshiXMLWriter) {
        self.result.encode(into: &w)
        w.leaf("Category", self.category)
        self.records.encode(into: &w)
    }

    /// Reads the result, the category, and a result list of that category's records.
    public init(header: MessageHeader, body: OnshiXMLElement) throws(OnshiXMLError) {
        try body.allowOnly(["ProcessingResult", "Category", "ResultList"])
        self.header = header
        self.result = try ProcessingResult(xml: try body.child("ProcessingResult"))
        self.category = try body.value(MedicalCategory.self, "Category")
        self.records = try CategoryRecords(xml: try body.child("ResultList"), category: self.category)
    }
}
