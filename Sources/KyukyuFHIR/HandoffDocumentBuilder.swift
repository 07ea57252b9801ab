public import Foundation
import KyukyuDomain
import KyukyuOnshi
import KyukyuSummary

/// Builds the pre-arrival document: a FHIR R4 `Bundle` of type `document` on JP Core, its `Composition` first,
/// sections modelled on IHE mPSC (docs/handoff-document.md describes every element). Pure: the same
/// ``HandoffInput`` gives the same bytes (keys sorted; entry uuids derived from the version uuid).
public enum HandoffDocumentBuilder {
    /// The media type of the document.
    public static let mediaType = "application/fhir+json"

    /// The document as UTF-8 JSON; ``HandoffBuildError`` when the input is out of form.
    public static func build(_ input: HandoffInput) throws(HandoffBuildError) -> Data {
        try check(input)
        var builder = Assembly(input: input)
        let bundle = builder.assemble()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(bundle)
        } catch {
            throw .encoding("the bundle could not be written as JSON")
        }
    }

    static func isIdentifierToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E
                    || $0 == 0x5F || $0 == 0x2D
            }
    }

    static func isStatusWord(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32 && text.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D }
    }

    static func isHex(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    private static func check(_ input: HandoffInput) throws(HandoffBuildError) {
        guard input.version >= 1 else { throw .invalidInput("the version number must be 1 or more") }
        if input.version > 1, input.previousVersionID == nil {
            throw .invalidInput("a version after the first needs the previous version's identifier")
        }
        if input.version == 1, input.previousVersionID != nil {
            throw .invalidInput("the first version cannot replace another")
        }
        guard isIdentifierToken(input.crewID) else { throw .invalidInput("the crew id is not [A-Za-z0-9._-]{1,64}") }
        guard isIdentifierToken(input.deviceID) else {
            throw .invalidInput("the device id is not [A-Za-z0-9._-]{1,64}")
        }
        guard text(input.hospitalName) != nil else { throw .invalidInput("the hospital name is empty") }
        for gap in input.gaps where !isStatusWord(gap.status) {
            throw .invalidInput("a category status is not a lowercase word")
        }
        for (category, records) in input.records where records.category != category {
            throw .invalidInput("records filed under another category")
        }
        let anchor = input.auditAnchor
        guard anchor.sequence >= 0, isHex(anchor.hash) else {
            throw .invalidInput("the audit anchor's sequence or hash is out of form")
        }
        guard Data(base64Encoded: anchor.signingPublicKey) != nil, Data(base64Encoded: anchor.signature) != nil,
            !anchor.signingPublicKey.isEmpty, !anchor.signature.isEmpty
        else { throw .invalidInput("the audit anchor's key or signature is not base64") }
        do {
            try input.observations.validate()
        } catch {
            throw .invalidInput("crew observations: \(error.reason)")
        }
    }
}

/// A string with content, or nil (FHIR has no empty strings).
func text(_ value: String?) -> String? {
    guard let value, value.contains(where: { !$0.isWhitespace }) else { return nil }
    return value
}

/// One build: collects the entries, then puts the Composition first.
private struct Assembly {
    let input: HandoffInput
    let today: OnshiDate
    var entries: [BundleEntry] = []
    var nextIndex = 1

    init(input: HandoffInput) {
        self.input = input
        self.today = OnshiDate(japanDayOf: input.builtAt)
    }

    /// The uuid of entry `index`: the version uuid with the index XORed into its last six bytes and the version
    /// nibble set to 8 (RFC 9562 custom). Unique within the bundle, new for every version, never derived from
    /// patient data.
    func uuid(_ index: Int) -> String {
        var bytes = withUnsafeBytes(of: input.versionID.uuid) { Array($0) }
        var rest = UInt64(index)
        for i in stride(from: 15, through: 10, by: -1) {
            bytes[i] ^= UInt8(rest & 0xFF)
            rest >>= 8
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x80
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let t = (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7])
        let u = (bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15])
        return UUID(uuid: (t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7))
            .uuidString.lowercased()
    }

    /// Reserves an entry id.
    mutating func reserve() -> String {
        defer { nextIndex += 1 }
        return uuid(nextIndex)
    }

    /// Adds a resource under a reserved id; returns the reference to it.
    @discardableResult
    mutating func add(_ id: String, _ resource: Resource) -> Reference {
        entries.append(BundleEntry(fullUrl: "urn:uuid:\(id)", resource: resource))
        return Reference("urn:uuid:\(id)")
    }

    func records<T>(_ category: MedicalCategory, _ pick: (CategoryRecords) -> [T]?) -> [T] {
        input.records[category].flatMap(pick) ?? []
    }

    func has(_ category: MedicalCategory) -> Bool { input.records[category] != nil }

    // MARK: - The bundle

    mutating func assemble() -> DocumentBundle {
        let compositionID = uuid(0)
        let composition = Reference("urn:uuid:\(compositionID)")
        let qualification: Qualification? = input.records[.qualification].flatMap {
            if case .qualification(let q) = $0 { q } else { nil }
        }
        let patient = addPatient(qualification)
        let destination = addDestination()
        let encounter = addEncounter(patient: patient, destination: destination)
        let crewID = reserve()
        let crew = add(
            crewID,
            .practitioner(
                Practitioner(
                    id: crewID,
                    meta: Meta(profile: [HandoffURI.jpCore("JP_Practitioner")]),
                    identifier: [Identifier(HandoffURI.crew, input.crewID)]
                )
            )
        )
        let device = addDevice()
        let provenance = addProvenance(target: composition, crew: crew, device: device)
        let payers = addCoverage(qualification, patient: patient)
        let context = Context(patient: patient, encounter: encounter, crew: crew)

        var sections: [Section] = []
        let medications = addMedications(context)
        let allergies = addAllergies(context)
        let history = addProcedureHistory(context)
        sections.append(redFlagsSection(medications: medications, allergies: allergies, history: history))
        sections.append(chiefComplaintSection(context))
        sections.append(presentIllnessSection(context))
        sections.append(problemsSection(context))
        sections.append(medications.section)
        sections.append(allergies.section)
        sections.append(vitalSignsSection(context))
        sections.append(treatmentSection(context))
        sections.append(incidentSection(context))
        sections.append(history.section)
        sections.append(resultsSection(context))
        sections.append(payers)
        sections.append(consentSection(provenance))
        sections.append(provenanceSection(provenance))

        var relatesTo: [RelatesTo]?
        if let previous = input.previousVersionID {
            relatesTo = [
                RelatesTo(
                    code: "replaces",
                    targetIdentifier: Identifier(HandoffURI.rfc3986, "urn:uuid:\(previous.uuidString.lowercased())")
                )
            ]
        }
        let builtAt = FHIRTime.instant(input.builtAt)
        let compositionResource = Composition(
            id: compositionID,
            identifier: Identifier(HandoffURI.rfc3986, "urn:uuid:\(input.documentSet.uuidString.lowercased())"),
            status: "preliminary",
            type: CodeableConcept(Coding(HandoffURI.loinc, "67796-3", "EMS patient care report"), text: "救急搬送 事前情報"),
            subject: patient,
            encounter: encounter,
            date: builtAt,
            author: [crew, device],
            title: "救急搬送 事前情報（Pre-arrival handoff）",
            confidentiality: "R",
            relatesTo: relatesTo,
            section: sections
        )
        let entriesWithComposition =
            [BundleEntry(fullUrl: composition.reference!, resource: .composition(compositionResource))] + entries
        let version = input.versionID.uuidString.lowercased()
        return DocumentBundle(
            id: version,
            meta: Meta(versionId: String(input.version)),
            identifier: Identifier(HandoffURI.rfc3986, "urn:uuid:\(version)"),
            type: "document",
            timestamp: builtAt,
            entry: entriesWithComposition
        )
    }

    struct Context {
        let patient: Reference
        let encounter: Reference
        let crew: Reference
    }

    // MARK: - Header resources

    mutating func addPatient(_ q: Qualification?) -> Reference {
        let id = reserve()
        var patient = Patient(
            id: id,
            meta: Meta(profile: [HandoffURI.jpCore("JP_Patient")]),
            identifier: [
                Identifier(HandoffURI.incidentPatient, "urn:uuid:\(input.documentSet.uuidString.lowercased())")
            ]
        )
        if let q {
            var names: [HumanName] = []
            if let name = name(q.name, representation: "IDE") { names.append(name) }
            if let name = name(q.nameKana, representation: "SYL") { names.append(name) }
            patient.name = names.isEmpty ? nil : names
            patient.gender =
                switch q.sex {
                case .male: "male"
                case .female: "female"
                case .notApplicable: "unknown"
                }
            patient.birthDate = FHIRTime.date(q.birthDate)
            let address = Address(text: text(q.address), postalCode: text(q.postalCode), country: "JP")
            patient.address = [address]
        }
        return add(id, .patient(patient))
    }

    func name(_ full: String, representation: String) -> HumanName? {
        guard let full = text(full) else { return nil }
        let parts = full.split(whereSeparator: { $0 == "\u{3000}" || $0 == " " }).map(String.init)
        return HumanName(
            extension: [Extension(url: HandoffURI.nameRepresentation, valueCode: representation)],
            use: "official",
            text: full,
            family: parts.first,
            given: parts.count > 1 ? Array(parts.dropFirst()) : nil
        )
    }

    mutating func addDestination() -> Reference {
        let id = reserve()
        return add(
            id,
            .organization(
                Organization(
                    id: id,
                    meta: Meta(profile: [HandoffURI.jpCore("JP_Organization")]),
                    identifier: [Identifier(HandoffURI.medicalInstitution, input.hospital.rawValue)],
                    type: [CodeableConcept(Coding(HandoffURI.organizationType, "prov", "Healthcare Provider"))],
                    name: text(input.hospitalName)
                )
            )
        )
    }

    mutating func addEncounter(patient: Reference, destination: Reference) -> Reference {
        let id = reserve()
        return add(
            id,
            .encounter(
                Encounter(
                    id: id,
                    meta: Meta(profile: [HandoffURI.jpCore("JP_Encounter")]),
                    status: "in-progress",
                    class: Coding(HandoffURI.v3ActCode, "EMER", "emergency"),
                    type: [CodeableConcept(Coding(HandoffURI.kyukyuCodes, "ambulance-transport", "救急搬送"))],
                    subject: patient,
                    hospitalization: Hospitalization(destination: destination)
                )
            )
        )
    }

    mutating func addDevice() -> Reference {
        let id = reserve()
        return add(
            id,
            .device(
                Device(
                    id: id,
                    identifier: [Identifier(HandoffURI.device, input.deviceID)],
                    deviceName: [DeviceName(name: input.deviceID, type: "user-friendly-name")],
                    type: CodeableConcept(text: "救急車載ゲートウェイ（Myna Kyukyu）")
                )
            )
        )
    }

    mutating func addProvenance(target: Reference, crew: Reference, device: Reference) -> Reference {
        let id = reserve()
        let a = input.auditAnchor
        var extensions = [
            Extension(
                url: HandoffURI.auditAnchor,
                extension: [
                    Extension(url: "sequence", valueString: String(a.sequence)),
                    Extension(url: "hash", valueString: a.hash),
                    Extension(url: "signedAt", valueInstant: FHIRTime.instant(milliseconds: a.signedAtMilliseconds)),
                    Extension(url: "signingPublicKey", valueBase64Binary: a.signingPublicKey),
                    Extension(url: "signature", valueBase64Binary: a.signature),
                ]
            )
        ]
        for gap in sortedGaps() {
            extensions.append(
                Extension(
                    url: HandoffURI.categoryGap,
                    extension: [
                        Extension(url: "category", valueCode: gap.category.rawValue),
                        Extension(url: "status", valueCode: gap.status),
                    ]
                )
            )
        }
        return add(
            id,
            .provenance(
                Provenance(
                    id: id,
                    extension: extensions,
                    target: [target],
                    occurredDateTime: FHIRTime.instant(input.dataAsOf),
                    recorded: FHIRTime.instant(input.builtAt),
                    reason: [CodeableConcept(Coding(HandoffURI.v3ActReason, "ETREAT", "emergency treatment"))]
                        + (input.consent.map { consent in
                            [CodeableConcept(Coding(HandoffURI.consentBasis, consent.rawValue, Words.consent(consent)))]
                        } ?? []),
                    agent: [
                        ProvenanceAgent(
                            type: CodeableConcept(Coding(HandoffURI.provenanceParticipant, "author", "Author")),
                            who: crew
                        ),
                        ProvenanceAgent(
                            type: CodeableConcept(Coding(HandoffURI.provenanceParticipant, "assembler", "Assembler")),
                            who: device
                        ),
                    ]
                )
            )
        )
    }

    func sortedGaps() -> [CategoryGap] {
        let order = Dictionary(uniqueKeysWithValues: MedicalCategory.allCases.enumerated().map { ($1, $0) })
        return input.gaps.sorted { (order[$0.category]!, $0.status) < (order[$1.category]!, $1.status) }
    }

    mutating func addCoverage(_ q: Qualification?, patient: Reference) -> Section {
        let code = sectionCode(HandoffURI.loinc, "48768-6", "Payment sources Document")
        guard let q else {
            return section("保険", code, lines: [missingLine(.qualification)], empty: emptyReason(.qualification))
        }
        let insurerID = reserve()
        var insurerIdentifiers: [Identifier] = []
        if let number = text(q.insurerNumber) {
            insurerIdentifiers.append(Identifier(HandoffURI.insurerNumber, number))
        }
        let insurer = add(
            insurerID,
            .organization(
                Organization(
                    id: insurerID,
                    meta: Meta(profile: [HandoffURI.jpCore("JP_Organization")]),
                    identifier: insurerIdentifiers.isEmpty ? nil : insurerIdentifiers,
                    type: [CodeableConcept(Coding(HandoffURI.organizationType, "pay", "Payer"))],
                    name: text(q.insurerName)
                )
            )
        )
        var extensions: [Extension] = []
        if let symbol = text(q.symbol) {
            extensions.append(Extension(url: HandoffURI.insuredSymbol, valueString: symbol))
        }
        if let number = text(q.number) {
            extensions.append(Extension(url: HandoffURI.insuredNumber, valueString: number))
        }
        if let branch = text(q.branchNumber) {
            extensions.append(Extension(url: HandoffURI.insuredSubNumber, valueString: branch))
        }
        let member = [q.insurerNumber, q.symbol, q.number, q.branchNumber].joined(separator: ":")
        let id = reserve()
        let coverage = add(
            id,
            .coverage(
                Coverage(
                    id: id,
                    meta: Meta(profile: [HandoffURI.jpCore("JP_Coverage")]),
                    extension: extensions.isEmpty ? nil : extensions,
                    identifier: [Identifier(HandoffURI.insuredMember, member, assigner: insurer)],
                    status: "active",
                    type: CodeableConcept(Coding(HandoffURI.v3ActCode, "PUBLICPOL", "public healthcare")),
                    dependent: text(q.branchNumber),
                    beneficiary: patient,
                    period: Period(start: FHIRTime.date(q.validFrom), end: q.validUntil.map(FHIRTime.date)),
                    payor: [insurer]
                )
            )
        )
        let kind = q.insuredKind == .insured ? "本人" : "家族"
        return section(
            "保険",
            code,
            lines: ["\(q.insurerName)（保険者番号 \(q.insurerNumber)）\(kind)・負担割合 \(q.copaymentPercent / 10)割"],
            entries: [coverage, insurer]
        )
    }

    // MARK: - Sections from the records

    struct Listed {
        var section: Section
        var byKey: [String: Reference]
    }

    mutating func addMedications(_ c: Context) -> Listed {
        let code = sectionCode(HandoffURI.loinc, "10160-0", "History of Medication use Narrative")
        let all = records(.medications) { if case .medications(let r) = $0 { r } else { nil } }
        let current = RedFlags.currentMedications(all, today: today)
        var refs: [Reference] = []
        var byKey: [String: Reference] = [:]
        var lines: [String] = []
        for m in current {
            let id = reserve()
            let end = m.dispensedDate.adding(days: m.days)
            let dose = "\(format(m.dose))\(m.unit)/日 \(m.usage)"
            let ref = add(
                id,
                .medicationStatement(
                    MedicationStatement(
                        id: id,
                        meta: Meta(profile: [HandoffURI.jpCore("JP_MedicationStatement")]),
                        status: "active",
                        medicationCodeableConcept: CodeableConcept(
                            Coding(HandoffURI.yjCode, m.yjCode, m.genericName),
                            text: text(m.brandName) ?? m.genericName
                        ),
                        subject: c.patient,
                        effectivePeriod: Period(start: FHIRTime.date(m.dispensedDate), end: FHIRTime.date(end)),
                        dateAsserted: FHIRTime.instant(input.dataAsOf),
                        note: [Annotation(text: "調剤 \(FHIRTime.date(m.dispensedDate)) \(m.days)日分 \(m.pharmacyName)")],
                        dosage: text(dose).map { [Dosage(text: $0)] }
                    )
                )
            )
            refs.append(ref)
            byKey[m.genericName] = ref
            lines.append(
                "\(m.genericName)（\(text(m.brandName) ?? "一般名")）\(dose)・最終調剤 \(FHIRTime.date(m.dispensedDate))"
            )
        }
        // Electronic prescriptions not dispensed yet, still within their days, of a drug not listed above: the
        // latest of each drug, as an intended MedicationStatement.
        let listed = Set(current.map(\.yjCode))
        var pending: [String: Prescription] = [:]
        for p in records(.prescriptions, { if case .prescriptions(let r) = $0 { r } else { nil } })
        where !p.dispensed && p.issuedDate.adding(days: p.days) >= today && !listed.contains(p.yjCode) {
            if let seen = pending[p.yjCode], seen.issuedDate >= p.issuedDate { continue }
            pending[p.yjCode] = p
        }
        for p in pending.values.sorted(by: { ($0.issuedDate, $0.yjCode) > ($1.issuedDate, $1.yjCode) }) {
            let id = reserve()
            let dose = "\(format(p.dose))\(p.unit)/日 \(p.usage)"
            let issued = FHIRTime.date(p.issuedDate)
            refs.append(
                add(
                    id,
                    .medicationStatement(
                        MedicationStatement(
                            id: id,
                            meta: Meta(profile: [HandoffURI.jpCore("JP_MedicationStatement")]),
                            status: "intended",
                            medicationCodeableConcept: CodeableConcept(
                                Coding(HandoffURI.yjCode, p.yjCode, p.genericName),
                                text: text(p.brandName) ?? p.genericName
                            ),
                            subject: c.patient,
                            effectivePeriod: Period(
                                start: issued,
                                end: FHIRTime.date(p.issuedDate.adding(days: p.days))
                            ),
                            dateAsserted: FHIRTime.instant(input.dataAsOf),
                            note: [Annotation(text: "電子処方箋（未調剤）\(issued) \(p.days)日分 \(p.institutionName)")],
                            dosage: text(dose).map { [Dosage(text: $0)] }
                        )
                    )
                )
            )
            lines.append("\(p.genericName) \(dose)・電子処方箋 \(issued)（未調剤）")
        }
        let missing = [MedicalCategory.medications, .prescriptions].filter { !has($0) }
        if refs.isEmpty {
            let empty = missing.contains(.medications) ? "unavailable" : "nilknown"
            return Listed(
                section: section("服薬", code, lines: ["現在の服薬の記録なし"] + missing.map(missingLine), empty: empty),
                byKey: [:]
            )
        }
        return Listed(
            section: section("服薬", code, lines: lines + missing.map(missingLine), entries: refs),
            byKey: byKey
        )
    }

    static func allergyKey(_ kind: Allergy.Kind, _ substance: String) -> String { "\(kind.rawValue)|\(substance)" }

    mutating func addAllergies(_ c: Context) -> Listed {
        let code = sectionCode(HandoffURI.loinc, "48765-2", "Allergies and adverse reactions Document")
        guard has(.allergies) else {
            return Listed(
                section: section(
                    "アレルギー・禁忌",
                    code,
                    lines: [missingLine(.allergies)],
                    empty: emptyReason(.allergies)
                ),
                byKey: [:]
            )
        }
        let all = records(.allergies) { if case .allergies(let r) = $0 { r } else { nil } }
        var refs: [Reference] = []
        var byKey: [String: Reference] = [:]
        var lines: [String] = []
        for a in all {
            let id = reserve()
            let ref: Reference
            if a.kind == .infection {
                // An infection is a condition, not a propensity to react.
                ref = add(
                    id,
                    .condition(
                        Condition(
                            id: id,
                            meta: Meta(profile: [HandoffURI.jpCore("JP_Condition")]),
                            clinicalStatus: CodeableConcept(Coding(HandoffURI.conditionClinical, "active")),
                            verificationStatus: CodeableConcept(Coding(HandoffURI.conditionVerification, "confirmed")),
                            category: [
                                CodeableConcept(
                                    Coding(HandoffURI.conditionCategory, "problem-list-item", "Problem List Item")
                                )
                            ],
                            code: CodeableConcept(text: text(a.substance) ?? "感染症"),
                            subject: c.patient,
                            recordedDate: FHIRTime.date(a.recordedDate),
                            note: text(a.reaction).map { [Annotation(text: $0)] }
                        )
                    )
                )
            } else {
                var coding: [Coding]?
                if let yj = a.yjCode { coding = [Coding(HandoffURI.yjCode, yj, a.substance)] }
                ref = add(
                    id,
                    .allergyIntolerance(
                        AllergyIntolerance(
                            id: id,
                            meta: Meta(profile: [HandoffURI.jpCore("JP_AllergyIntolerance")]),
                            clinicalStatus: CodeableConcept(Coding(HandoffURI.allergyClinical, "active")),
                            verificationStatus: CodeableConcept(Coding(HandoffURI.allergyVerification, "confirmed")),
                            type: a.kind == .contraindication ? "intolerance" : "allergy",
                            category: a.kind == .food
                                ? ["food"] : (a.kind == .drug || a.kind == .contraindication ? ["medication"] : nil),
                            code: CodeableConcept(coding, text: text(a.substance) ?? kindWord(a.kind)),
                            patient: c.patient,
                            recordedDate: FHIRTime.date(a.recordedDate),
                            reaction: text(a.reaction).map {
                                [AllergyReaction(manifestation: [CodeableConcept(text: $0)])]
                            }
                        )
                    )
                )
            }
            refs.append(ref)
            byKey[Self.allergyKey(a.kind, a.substance)] = ref
            lines.append("\(kindWord(a.kind)): \(a.substance)" + (text(a.reaction).map { "（\($0)）" } ?? ""))
        }
        if refs.isEmpty {
            return Listed(
                section: section("アレルギー・禁忌", code, lines: ["記録なし"], empty: "nilknown"),
                byKey: [:]
            )
        }
        return Listed(section: section("アレルギー・禁忌", code, lines: lines, entries: refs), byKey: byKey)
    }

    func kindWord(_ kind: Allergy.Kind) -> String {
        switch kind {
        case .drug: "薬剤アレルギー"
        case .food: "食物アレルギー"
        case .contraindication: "禁忌"
        case .infection: "感染症"
        case .other: "その他"
        }
    }

    /// Surgery (every operation) and treatment (the latest of each procedure code, with the count), as Procedures.
    mutating func addProcedureHistory(_ c: Context) -> Listed {
        let code = sectionCode(HandoffURI.loinc, "47519-4", "History of Procedures Document")
        var refs: [Reference] = []
        var byKey: [String: Reference] = [:]
        var lines: [String] = []
        let surgeries = records(.surgery) { if case .surgery(let r) = $0 { r } else { nil } }
            .sorted { ($0.date, $0.code) > ($1.date, $1.code) }
        for s in surgeries {
            let id = reserve()
            let ref = add(
                id,
                .procedure(
                    Procedure(
                        id: id,
                        meta: Meta(profile: [HandoffURI.jpCore("JP_Procedure")]),
                        status: "completed",
                        category: CodeableConcept(Coding(HandoffURI.kyukyuCodes, "surgery", "手術")),
                        code: CodeableConcept(
                            text(s.code).map { [Coding(HandoffURI.onshiProcedure, $0, s.name)] },
                            text: text(s.name) ?? "手術"
                        ),
                        subject: c.patient,
                        performedDateTime: FHIRTime.date(s.date),
                        note: text(s.institutionName).map { [Annotation(text: $0)] }
                    )
                )
            )
            refs.append(ref)
            byKey["surgery|\(s.name)|\(s.date.xmlText)"] = ref
            lines.append("手術 \(FHIRTime.date(s.date)) \(s.name)（\(s.institutionName)）")
        }
        let treatments = records(.treatment) { if case .treatment(let r) = $0 { r } else { nil } }
        var latest: [String: (Treatment, Int, OnshiDate)] = [:]
        for t in treatments {
            if let seen = latest[t.code] {
                let newer = t.date > seen.0.date ? t : seen.0
                latest[t.code] = (newer, seen.1 + 1, min(seen.2, t.date))
            } else {
                latest[t.code] = (t, 1, t.date)
            }
        }
        for (t, count, first) in latest.values.sorted(by: { ($0.0.date, $0.0.code) > ($1.0.date, $1.0.code) }) {
            let id = reserve()
            let summary = "記録 \(count) 回（\(FHIRTime.date(first)) 〜 \(FHIRTime.date(t.date))）\(t.institutionName)"
            let ref = add(
                id,
                .procedure(
                    Procedure(
                        id: id,
                        meta: Meta(profile: [HandoffURI.jpCore("JP_Procedure")]),
                        status: "completed",
                        category: CodeableConcept(
                            t.dialysis
                                ? Coding(HandoffURI.kyukyuCodes, "dialysis", "透析")
                                : Coding(HandoffURI.kyukyuCodes, "treatment", "診療行為")
                        ),
                        code: CodeableConcept(
                            text(t.code).map { [Coding(HandoffURI.onshiProcedure, $0, t.name)] },
                            text: text(t.name) ?? "診療行為"
                        ),
                        subject: c.patient,
                        performedDateTime: FHIRTime.date(t.date),
                        note: [Annotation(text: summary)]
                    )
                )
            )
            refs.append(ref)
            if t.dialysis { byKey["dialysis"] = ref }
            lines.append("\(t.dialysis ? "透析" : "診療行為") 最終 \(FHIRTime.date(t.date)) \(t.name)・\(summary)")
        }
        let missing = [MedicalCategory.surgery, .treatment].filter { !has($0) }
        let title = "手術・処置歴"
        if refs.isEmpty {
            let lines = missing.isEmpty ? ["記録なし"] : missing.map(missingLine)
            return Listed(
                section: section(title, code, lines: lines, empty: missing.isEmpty ? "nilknown" : "unavailable"),
                byKey: [:]
            )
        }
        return Listed(
            section: section(title, code, lines: lines + missing.map(missingLine), entries: refs),
            byKey: byKey
        )
    }

    mutating func problemsSection(_ c: Context) -> Section {
        let code = sectionCode(HandoffURI.loinc, "11450-4", "Problem list - Reported")
        guard has(.diagnoses) else {
            return section("傷病名・既往歴", code, lines: [missingLine(.diagnoses)], empty: emptyReason(.diagnoses))
        }
        let all = records(.diagnoses) { if case .diagnoses(let r) = $0 { r } else { nil } }
            .sorted { ($0.startDate, $0.icd10, $0.name) > ($1.startDate, $1.icd10, $1.name) }
        var refs: [Reference] = []
        var lines: [String] = []
        for d in all {
            let id = reserve()
            let clinical =
                switch d.outcome {
                case .ongoing, .transferred: "active"
                case .cured: "resolved"
                case .discontinued: "inactive"
                }
            refs.append(
                add(
                    id,
                    .condition(
                        Condition(
                            id: id,
                            meta: Meta(profile: [HandoffURI.jpCore("JP_Condition")]),
                            clinicalStatus: CodeableConcept(Coding(HandoffURI.conditionClinical, clinical)),
                            verificationStatus: CodeableConcept(Coding(HandoffURI.conditionVerification, "confirmed")),
                            category: [
                                CodeableConcept(
                                    Coding(HandoffURI.conditionCategory, "problem-list-item", "Problem List Item")
                                )
                            ],
                            code: CodeableConcept(
                                text(d.icd10).map { [Coding(HandoffURI.icd10, $0, d.name)] },
                                text: text(d.name) ?? d.icd10
                            ),
                            subject: c.patient,
                            onsetDateTime: FHIRTime.date(d.startDate),
                            note: text(d.institutionName).map { [Annotation(text: $0)] }
                        )
                    )
                )
            )
            lines.append("\(d.name)（\(d.icd10)）\(FHIRTime.date(d.startDate))〜 \(outcomeWord(d.outcome))")
        }
        if refs.isEmpty { return section("傷病名・既往歴", code, lines: ["記録なし"], empty: "nilknown") }
        return section("傷病名・既往歴", code, lines: lines, entries: refs)
    }

    func outcomeWord(_ o: Diagnosis.Outcome) -> String {
        switch o {
        case .ongoing: "継続"
        case .cured: "治癒"
        case .discontinued: "中止"
        case .transferred: "転医"
        }
    }

    /// The latest checkup's items, with JLAC10.
    mutating func resultsSection(_ c: Context) -> Section {
        let code = sectionCode(HandoffURI.loinc, "30954-2", "Relevant diagnostic tests/laboratory data Narrative")
        guard has(.checkups) else {
            return section("特定健診", code, lines: [missingLine(.checkups)], empty: emptyReason(.checkups))
        }
        let all = records(.checkups) { if case .checkups(let r) = $0 { r } else { nil } }
        guard let latest = all.max(by: { $0.date < $1.date }), !latest.items.isEmpty else {
            return section("特定健診", code, lines: ["記録なし"], empty: "nilknown")
        }
        var refs: [Reference] = []
        var lines: [String] = ["\(FHIRTime.date(latest.date)) \(latest.institutionName)"]
        for item in latest.items {
            let id = reserve()
            var o = Observation(
                id: id,
                code: CodeableConcept(
                    Coding(HandoffURI.jlac10, item.jlac10, item.name),
                    text: text(item.name) ?? item.jlac10
                )
            )
            o.meta = Meta(profile: [HandoffURI.jpCore("JP_Observation_Common")])
            o.category = [
                CodeableConcept(Coding(HandoffURI.jpObservationCategory, "laboratory")),
                CodeableConcept(Coding(HandoffURI.observationCategory, "laboratory", "Laboratory")),
            ]
            o.subject = c.patient
            o.effectiveDateTime = FHIRTime.date(latest.date)
            if let value = Double(item.value), value.isFinite {
                o.valueQuantity = Quantity(value: value, unit: text(item.unit))
            } else if let value = text(item.value) {
                o.valueString = value
            }
            if item.outOfRange {
                o.interpretation = [CodeableConcept(Coding(HandoffURI.v3Interpretation, "A", "Abnormal"))]
            }
            refs.append(add(id, .observation(o)))
            lines.append("\(item.name) \(item.value)\(item.unit ?? "")\(item.outOfRange ? "（基準外）" : "")")
        }
        return section("特定健診（直近）", code, lines: lines, entries: refs)
    }

    mutating func presentIllnessSection(_ c: Context) -> Section {
        let code = sectionCode(HandoffURI.loinc, "10164-2", "History of Present illness Narrative")
        var lines: [String] = []
        var refs: [Reference] = []
        if let onset = input.observations.onset {
            let id = reserve()
            let (key, word) =
                onset.kind == .onset ? ("onset", "発症時刻") : ("last-known-well", "最終健常確認時刻")
            var o = Observation(id: id, code: CodeableConcept(Coding(HandoffURI.kyukyuCodes, key, word), text: word))
            o.subject = c.patient
            o.encounter = c.encounter
            o.performer = [c.crew]
            o.valueDateTime = FHIRTime.instant(onset.at)
            refs.append(add(id, .observation(o)))
            lines.append("\(word): \(FHIRTime.instant(onset.at))")
        }
        if has(.visits) {
            let visits = records(.visits) { if case .visits(let r) = $0 { r } else { nil } }
                .sorted { ($0.date, $0.institutionCode) > ($1.date, $1.institutionCode) }
            for v in visits.prefix(5) {
                lines.append(
                    "受診 \(FHIRTime.date(v.date)) \(v.institutionName)" + (v.department.map { " \($0)" } ?? "")
                        + "（\(settingWord(v.setting))）"
                )
            }
            if visits.isEmpty { lines.append("受診歴の記録なし") }
        } else {
            lines.append(missingLine(.visits))
        }
        return section("現病歴", code, lines: lines, entries: refs)
    }

    func settingWord(_ s: Visit.Setting) -> String {
        switch s {
        case .outpatient: "外来"
        case .inpatient: "入院"
        case .emergency: "救急"
        case .home: "在宅"
        }
    }

    // MARK: - Sections from the crew

    mutating func chiefComplaintSection(_ c: Context) -> Section {
        let code = sectionCode(HandoffURI.loinc, "10154-3", "Chief complaint Narrative - Reported")
        guard let complaint = input.observations.chiefComplaint else {
            return section("主訴", code, lines: ["未入力"], empty: "notstarted")
        }
        let id = reserve()
        let word = Words.complaint(complaint)
        var o = Observation(
            id: id,
            code: CodeableConcept(Coding(HandoffURI.kyukyuCodes, "chief-complaint", "主訴"), text: "主訴")
        )
        o.subject = c.patient
        o.encounter = c.encounter
        o.performer = [c.crew]
        o.valueCodeableConcept = CodeableConcept(
            Coding(HandoffURI.chiefComplaint, complaint.rawValue, word),
            text: word
        )
        let note = text(input.observations.complaintNote)
        o.note = note.map { [Annotation(text: $0)] }
        let ref = add(id, .observation(o))
        return section("主訴", code, lines: [word + (note.map { "（\($0)）" } ?? "")], entries: [ref])
    }

    mutating func vitalSignsSection(_ c: Context) -> Section {
        let code = sectionCode(HandoffURI.loinc, "8716-3", "Vital signs")
        let sets = input.observations.vitals.sorted { $0.takenAt < $1.takenAt }
        guard !sets.isEmpty else { return section("バイタルサイン", code, lines: ["未測定"], empty: "notstarted") }
        var refs: [Reference] = []
        var lines: [String] = []
        for set in sets {
            var parts: [String] = []
            func vital(_ code: Coding, _ text: String, _ fill: (inout Observation) -> Void) {
                let id = reserve()
                var o = Observation(id: id, code: CodeableConcept(code, text: text))
                o.meta = Meta(profile: [HandoffURI.jpCore("JP_Observation_VitalSigns")])
                o.category = [
                    CodeableConcept(Coding(HandoffURI.jpObservationCategory, "vital-signs")),
                    CodeableConcept(Coding(HandoffURI.observationCategory, "vital-signs", "Vital Signs")),
                ]
                o.subject = c.patient
                o.encounter = c.encounter
                o.effectiveDateTime = FHIRTime.instant(set.takenAt)
                o.performer = [c.crew]
                fill(&o)
                refs.append(add(id, .observation(o)))
            }
            func quantity(_ value: Double, _ unit: String, _ ucum: String) -> Quantity {
                Quantity(value: value, unit: unit, system: HandoffURI.ucum, code: ucum)
            }
            if let jcs = set.jcs {
                vital(Coding(HandoffURI.kyukyuCodes, "jcs", "Japan Coma Scale"), "JCS") {
                    $0.valueCodeableConcept = CodeableConcept(
                        Coding(HandoffURI.jcs, jcs.label, jcs.label),
                        text: jcs.label
                    )
                }
                parts.append("JCS \(jcs.label)")
            }
            if let gcs = set.gcs {
                vital(Coding(HandoffURI.loinc, "9269-2", "Glasgow coma score total"), "GCS") {
                    $0.valueInteger = gcs.total
                    $0.component = [
                        ObservationComponent(
                            code: CodeableConcept(Coding(HandoffURI.loinc, "9267-6", "Glasgow coma score eye opening")),
                            valueInteger: gcs.eye
                        ),
                        ObservationComponent(
                            code: CodeableConcept(Coding(HandoffURI.loinc, "9270-0", "Glasgow coma score verbal")),
                            valueInteger: gcs.verbal
                        ),
                        ObservationComponent(
                            code: CodeableConcept(Coding(HandoffURI.loinc, "9268-4", "Glasgow coma score motor")),
                            valueInteger: gcs.motor
                        ),
                    ]
                }
                parts.append("GCS \(gcs.total)（E\(gcs.eye)V\(gcs.verbal)M\(gcs.motor)）")
            }
            if let hr = set.heartRate {
                vital(Coding(HandoffURI.loinc, "8867-4", "Heart rate"), "心拍数") {
                    $0.valueQuantity = quantity(Double(hr), "/min", "/min")
                }
                parts.append("HR \(hr)")
            }
            if set.systolic != nil || set.diastolic != nil {
                vital(Coding(HandoffURI.loinc, "85354-9", "Blood pressure panel with all children optional"), "血圧") {
                    var components: [ObservationComponent] = []
                    if let s = set.systolic {
                        components.append(
                            ObservationComponent(
                                code: CodeableConcept(Coding(HandoffURI.loinc, "8480-6", "Systolic blood pressure")),
                                valueQuantity: quantity(Double(s), "mmHg", "mm[Hg]")
                            )
                        )
                    }
                    if let d = set.diastolic {
                        components.append(
                            ObservationComponent(
                                code: CodeableConcept(Coding(HandoffURI.loinc, "8462-4", "Diastolic blood pressure")),
                                valueQuantity: quantity(Double(d), "mmHg", "mm[Hg]")
                            )
                        )
                    }
                    $0.component = components
                }
                parts.append("BP \(set.systolic.map(String.init) ?? "-")/\(set.diastolic.map(String.init) ?? "-")")
            }
            if let rr = set.respiratoryRate {
                vital(Coding(HandoffURI.loinc, "9279-1", "Respiratory rate"), "呼吸数") {
                    $0.valueQuantity = quantity(Double(rr), "/min", "/min")
                }
                parts.append("RR \(rr)")
            }
            if let spo2 = set.spo2 {
                vital(
                    Coding(HandoffURI.loinc, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
                    "SpO2"
                ) {
                    $0.code.coding?.append(Coding(HandoffURI.loinc, "2708-6", "Oxygen saturation in Arterial blood"))
                    $0.valueQuantity = quantity(Double(spo2), "%", "%")
                }
                parts.append("SpO2 \(spo2)%")
            }
            if let t = set.temperature {
                vital(Coding(HandoffURI.loinc, "8310-5", "Body temperature"), "体温") {
                    $0.valueQuantity = quantity(t, "℃", "Cel")
                }
                parts.append("BT \(format(t))")
            }
            if let g = set.bloodGlucose {
                vital(Coding(HandoffURI.loinc, "2339-0", "Glucose [Mass/volume] in Blood"), "血糖") {
                    $0.valueQuantity = quantity(Double(g), "mg/dL", "mg/dL")
                }
                parts.append("BS \(g)")
            }
            lines.append("\(FHIRTime.instant(set.takenAt)) " + parts.joined(separator: " "))
        }
        return section("バイタルサイン", code, lines: lines, entries: refs)
    }

    mutating func treatmentSection(_ c: Context) -> Section {
        let code = sectionCode(HandoffURI.kyukyuCodes, "prehospital-treatment", "Treatment given by the crew")
        let treatments = input.observations.treatments.sorted { ($0.at, $0.kind.rawValue) < ($1.at, $1.kind.rawValue) }
        guard !treatments.isEmpty else { return section("救急隊の処置", code, lines: ["なし"], empty: "notstarted") }
        var refs: [Reference] = []
        var lines: [String] = []
        for t in treatments {
            let id = reserve()
            let word = Words.treatment(t.kind)
            refs.append(
                add(
                    id,
                    .procedure(
                        Procedure(
                            id: id,
                            meta: Meta(profile: [HandoffURI.jpCore("JP_Procedure")]),
                            status: "completed",
                            category: CodeableConcept(Coding(HandoffURI.kyukyuCodes, "prehospital", "救急救命処置")),
                            code: CodeableConcept(
                                Coding(HandoffURI.prehospitalTreatment, t.kind.rawValue, word),
                                text: word
                            ),
                            subject: c.patient,
                            encounter: c.encounter,
                            performedDateTime: FHIRTime.instant(t.at),
                            performer: [ProcedurePerformer(actor: c.crew)]
                        )
                    )
                )
            )
            lines.append("\(FHIRTime.instant(t.at)) \(word)")
        }
        return section("救急隊の処置", code, lines: lines, entries: refs)
    }

    mutating func incidentSection(_ c: Context) -> Section {
        let code = sectionCode(HandoffURI.kyukyuCodes, "incident", "Incident, injury, priority and ETA")
        let obs = input.observations
        var refs: [Reference] = []
        var lines: [String] = []
        func crewObservation(_ key: String, _ word: String, _ fill: (inout Observation) -> Void) -> Reference {
            let id = reserve()
            var o = Observation(id: id, code: CodeableConcept(Coding(HandoffURI.kyukyuCodes, key, word), text: word))
            o.subject = c.patient
            o.encounter = c.encounter
            o.performer = [c.crew]
            fill(&o)
            return add(id, .observation(o))
        }
        if let p = obs.priority {
            refs.append(
                crewObservation("triage-priority", "緊急度") {
                    $0.valueCodeableConcept = CodeableConcept(
                        Coding(HandoffURI.triagePriority, p.rawValue, Words.priority(p)),
                        text: Words.priority(p)
                    )
                }
            )
            lines.append("緊急度: \(Words.priority(p))")
        }
        if let eta = obs.etaMinutes, let at = obs.etaRecordedAt {
            refs.append(
                crewObservation("eta", "到着予定") {
                    $0.effectiveDateTime = FHIRTime.instant(at)
                    $0.valueQuantity = Quantity(value: Double(eta), unit: "分", system: HandoffURI.ucum, code: "min")
                }
            )
            lines.append("到着予定: \(eta)分後（\(FHIRTime.instant(at)) 時点）")
        }
        if let trauma = obs.trauma, trauma.mechanism != nil || !trauma.injuries.isEmpty {
            refs.append(
                crewObservation("trauma", "外傷（MIST）") {
                    if let m = trauma.mechanism {
                        $0.valueCodeableConcept = CodeableConcept(
                            Coding(HandoffURI.traumaMechanism, m.rawValue, Words.mechanism(m)),
                            text: Words.mechanism(m)
                        )
                    }
                    let regions = trauma.injuries.map { r in
                        ObservationComponent(
                            code: CodeableConcept(Coding(HandoffURI.kyukyuCodes, "injury-region", "損傷部位")),
                            valueCodeableConcept: CodeableConcept(
                                Coding(HandoffURI.bodyRegion, r.rawValue, Words.region(r)),
                                text: Words.region(r)
                            )
                        )
                    }
                    $0.component = regions.isEmpty ? nil : regions
                }
            )
            var line = "外傷: " + (trauma.mechanism.map(Words.mechanism) ?? "受傷機転 不明")
            if !trauma.injuries.isEmpty { line += "・部位 " + trauma.injuries.map(Words.region).joined(separator: "、") }
            lines.append(line)
        }
        if refs.isEmpty { return section("事案・外傷・緊急度", code, lines: ["未入力"], empty: "notstarted") }
        return section("事案・外傷・緊急度", code, lines: lines, entries: refs)
    }

    // MARK: - Red flags, consent, provenance

    func redFlagsSection(medications: Listed, allergies: Listed, history: Listed) -> Section {
        let code = sectionCode(HandoffURI.kyukyuCodes, "red-flags", "Red flags")
        let flags = RedFlags.compute(
            medications: records(.medications) { if case .medications(let r) = $0 { r } else { nil } },
            treatments: records(.treatment) { if case .treatment(let r) = $0 { r } else { nil } },
            allergies: records(.allergies) { if case .allergies(let r) = $0 { r } else { nil } },
            surgeries: records(.surgery) { if case .surgery(let r) = $0 { r } else { nil } },
            today: today
        )
        var lines: [String] = []
        var refs: [Reference] = []
        func note(_ ref: Reference?) {
            if let ref, !refs.contains(ref) { refs.append(ref) }
        }
        for flag in flags {
            switch flag {
            case .drug(let drugClass, let names):
                lines.append("⚠ \(classWord(drugClass)): " + names.joined(separator: "、"))
                for name in names { note(medications.byKey[name]) }
            case .dialysis(let last):
                lines.append("⚠ 透析患者（最終 \(FHIRTime.date(last))）")
                note(history.byKey["dialysis"])
            case .allergy(let kind, let substance):
                lines.append("⚠ \(kindWord(kind)): \(substance)")
                note(allergies.byKey[Self.allergyKey(kind, substance)])
            case .recentSurgery(let name, let date):
                lines.append("⚠ 最近の手術: \(name)（\(FHIRTime.date(date))）")
                note(history.byKey["surgery|\(name)|\(date.xmlText)"])
            }
        }
        let missing = [MedicalCategory.medications, .treatment, .allergies, .surgery].filter { !has($0) }
        if !missing.isEmpty {
            lines.append("未取得のため判定できない区分: " + missing.map(Words.category).joined(separator: "、"))
        }
        if flags.isEmpty {
            return section(
                "レッドフラグ",
                code,
                lines: ["該当なし"] + lines,
                empty: missing.isEmpty ? "nilknown" : "unavailable"
            )
        }
        return section("レッドフラグ", code, lines: lines, entries: refs.isEmpty ? nil : refs)
    }

    func classWord(_ c: DrugClass) -> String {
        switch c {
        case .anticoagulant: "抗凝固薬"
        case .antiplatelet: "抗血小板薬"
        case .insulin: "インスリン"
        case .otherHypoglycaemic: "血糖降下薬"
        case .antiepileptic: "抗てんかん薬"
        case .corticosteroid: "ステロイド"
        case .opioid: "オピオイド"
        }
    }

    func consentSection(_ provenance: Reference) -> Section {
        let code = sectionCode(HandoffURI.kyukyuCodes, "consent", "Consent basis")
        let words = input.consent.map(Words.consent) ?? "同意未記録（オンライン資格確認の情報なし）"
        return section("閲覧の根拠", code, lines: [words], entries: [provenance])
    }

    func provenanceSection(_ provenance: Reference) -> Section {
        let code = sectionCode(HandoffURI.kyukyuCodes, "provenance", "Provenance")
        var lines = [
            "救急隊員: \(input.crewID)",
            "端末: \(input.deviceID)",
            "データ取得時点: \(FHIRTime.instant(input.dataAsOf))",
            "作成: \(FHIRTime.instant(input.builtAt))（第\(input.version)版）",
        ]
        for gap in sortedGaps() { lines.append("未着・遅延: \(Words.category(gap.category))（\(gap.status)）") }
        return section("出典", code, lines: lines, entries: [provenance])
    }

    // MARK: - Helpers

    func missingLine(_ category: MedicalCategory) -> String {
        let status = input.gaps.first { $0.category == category }?.status ?? "missing"
        return "\(Words.category(category)): 未取得（\(status)）"
    }

    /// `unavailable` when the category did not arrive.
    func emptyReason(_ category: MedicalCategory) -> String { "unavailable" }

    func sectionCode(_ system: String, _ code: String, _ display: String) -> CodeableConcept {
        CodeableConcept(Coding(system, code, display))
    }

    func section(
        _ title: String,
        _ code: CodeableConcept,
        lines: [String],
        entries: [Reference]? = nil,
        empty: String? = nil
    ) -> Section {
        let items = lines.map { "<li>\(escape($0))</li>" }.joined()
        let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul>\(items)</ul></div>"
        return Section(
            title: title,
            code: code,
            text: Narrative(status: "generated", div: div),
            entry: (entries?.isEmpty ?? true) ? nil : entries,
            emptyReason: (entries?.isEmpty ?? true)
                ? empty.map { CodeableConcept(Coding(HandoffURI.listEmptyReason, $0)) } : nil
        )
    }

    func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }

    func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
