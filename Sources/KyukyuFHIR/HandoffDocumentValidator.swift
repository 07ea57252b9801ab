public import Foundation
public import KyukyuDomain

/// What the receiver may know and log about a valid incoming document: identity, destination, sender and audit
/// anchor. Nothing here is patient data.
public struct ValidatedHandoffDocument: Sendable, Hashable, Codable {
    /// The incident's document set (`Composition.identifier`, `urn:uuid:<this>`).
    public var documentSet: UUID
    /// The version number (`Bundle.meta.versionId`).
    public var version: Int
    /// This version's identifier, `Bundle.identifier.value` (`urn:uuid:…`): the idempotency key.
    public var versionIdentifier: String
    /// `Bundle.id` (the `Location` of the stored document).
    public var bundleID: String
    /// The identifier of the version this one replaces (`Composition.relatesTo`), for versions after the first.
    public var replaces: String?
    /// The receiving hospital (`Encounter.hospitalization.destination` → `Organization.identifier`).
    public var hospital: HospitalCode
    /// The sending device's id (`Provenance.agent.who` → `Device.identifier`, system `urn:kyukyu:device`).
    public var senderDevice: String
    /// The gateway's signed audit head at build time (the Provenance's `audit-anchor` extension).
    public var auditAnchor: AuditAnchor
    /// `Bundle.timestamp`: when the version was built.
    public var timestamp: Date
}

/// Checks incoming bytes as a pre-arrival handoff document (for the receiver). Pure.
///
/// Checked: JSON and UTF-8; `Bundle` of type `document` with an identifier (system and value), a timestamp and a
/// positive integer `meta.versionId`; the Composition first; `fullUrl`s present and unique; every reference
/// resolving inside the bundle; the required elements and cardinalities of every resource type the builder
/// writes (others are refused); no empty strings, arrays or objects; every `Coding.system` a known code system;
/// and the handoff's own rules (document set, version chain, destination, sender device, audit anchor).
public enum HandoffDocumentValidator {
    /// The document, or ``FHIRValidationError`` listing every issue found.
    public static func validate(_ data: Data) throws(FHIRValidationError) -> ValidatedHandoffDocument {
        guard let root = JSONValue.parse(data) else {
            throw .notJSON([
                FHIRIssue(
                    severity: .fatal,
                    code: .structure,
                    diagnostics:
                        "the body is not valid UTF-8 JSON (or nests deeper than \(JSONValue.maximumDepth), or repeats a key)",
                    expression: nil
                )
            ])
        }
        var checker = Checker()
        let result = checker.document(root)
        if let result, checker.issues.allSatisfy({ $0.severity == .warning || $0.severity == .information }) {
            return result
        }
        if checker.issues.isEmpty {
            checker.fail(.processing, "the document could not be read", nil)
        }
        // Dictionary order varies between processes: the issues are sorted by path (then found order) so that the
        // same bytes give the same OperationOutcome.
        let sorted = checker.issues.enumerated().sorted {
            ($0.element.expression ?? "", $0.offset) < ($1.element.expression ?? "", $1.offset)
        }
        throw .invalidDocument(sorted.map(\.element))
    }
}

/// The shape of one element of a resource: how many, of what kind.
private struct Rule {
    enum Kind {
        case string, code, uri, date, dateTime, instant, integer, boolean, object, reference
        case codeIn(Set<String>)
    }
    let name: String
    let required: Bool
    let many: Bool
    let kind: Kind

    init(_ name: String, _ kind: Kind, required: Bool = false, many: Bool = false) {
        self.name = name
        self.kind = kind
        self.required = required
        self.many = many
    }
}

private let rules: [String: [Rule]] = [
    "Composition": [
        Rule("identifier", .object, required: true),
        Rule("status", .codeIn(["preliminary", "final", "amended", "entered-in-error"]), required: true),
        Rule("type", .object, required: true), Rule("subject", .reference, required: true),
        Rule("encounter", .reference, required: true), Rule("date", .dateTime, required: true),
        Rule("author", .reference, required: true, many: true), Rule("title", .string, required: true),
        Rule("confidentiality", .code), Rule("relatesTo", .object, many: true),
        Rule("section", .object, required: true, many: true),
    ],
    "Patient": [
        Rule("identifier", .object, required: true, many: true), Rule("name", .object, many: true),
        Rule("gender", .codeIn(["male", "female", "other", "unknown"])), Rule("birthDate", .date),
        Rule("address", .object, many: true),
    ],
    "Organization": [
        Rule("identifier", .object, many: true), Rule("type", .object, many: true), Rule("name", .string),
    ],
    "Practitioner": [Rule("identifier", .object, many: true)],
    "Device": [
        Rule("identifier", .object, many: true), Rule("deviceName", .object, many: true), Rule("type", .object),
    ],
    "Coverage": [
        Rule("identifier", .object, many: true),
        Rule("status", .codeIn(["active", "cancelled", "draft", "entered-in-error"]), required: true),
        Rule("type", .object), Rule("dependent", .string), Rule("beneficiary", .reference, required: true),
        Rule("period", .object), Rule("payor", .reference, required: true, many: true),
    ],
    "Encounter": [
        Rule(
            "status",
            .codeIn([
                "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error",
                "unknown",
            ]),
            required: true
        ),
        Rule("class", .object, required: true), Rule("type", .object, many: true), Rule("subject", .reference),
        Rule("hospitalization", .object),
    ],
    "Condition": [
        Rule("clinicalStatus", .object), Rule("verificationStatus", .object), Rule("category", .object, many: true),
        Rule("code", .object), Rule("subject", .reference, required: true), Rule("onsetDateTime", .dateTime),
        Rule("recordedDate", .dateTime), Rule("note", .object, many: true),
    ],
    "MedicationStatement": [
        Rule(
            "status",
            .codeIn([
                "active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken",
            ]),
            required: true
        ),
        Rule("medicationCodeableConcept", .object), Rule("medicationReference", .reference),
        Rule("subject", .reference, required: true), Rule("effectivePeriod", .object), Rule("dateAsserted", .dateTime),
        Rule("note", .object, many: true), Rule("dosage", .object, many: true),
    ],
    "Procedure": [
        Rule(
            "status",
            .codeIn([
                "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error",
                "unknown",
            ]),
            required: true
        ),
        Rule("category", .object), Rule("code", .object), Rule("subject", .reference, required: true),
        Rule("encounter", .reference), Rule("performedDateTime", .dateTime), Rule("performer", .object, many: true),
        Rule("note", .object, many: true),
    ],
    "Observation": [
        Rule(
            "status",
            .codeIn([
                "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error",
                "unknown",
            ]),
            required: true
        ),
        Rule("category", .object, many: true), Rule("code", .object, required: true), Rule("subject", .reference),
        Rule("encounter", .reference), Rule("effectiveDateTime", .dateTime), Rule("performer", .reference, many: true),
        Rule("valueQuantity", .object), Rule("valueCodeableConcept", .object), Rule("valueString", .string),
        Rule("valueInteger", .integer), Rule("valueDateTime", .dateTime), Rule("interpretation", .object, many: true),
        Rule("note", .object, many: true), Rule("component", .object, many: true),
    ],
    "AllergyIntolerance": [
        Rule("clinicalStatus", .object), Rule("verificationStatus", .object),
        Rule("type", .codeIn(["allergy", "intolerance"])),
        Rule("category", .codeIn(["food", "medication", "environment", "biologic"]), many: true),
        Rule("code", .object), Rule("patient", .reference, required: true), Rule("recordedDate", .dateTime),
        Rule("reaction", .object, many: true),
    ],
    "Provenance": [
        Rule("target", .reference, required: true, many: true), Rule("occurredDateTime", .dateTime),
        Rule("recorded", .instant, required: true), Rule("reason", .object, many: true),
        Rule("agent", .object, required: true, many: true),
    ],
]

/// Elements every resource may carry.
private let common: Set<String> = ["resourceType", "id", "meta", "text", "extension", "language"]

/// Every element a resource type may carry.
private let knownElements: [String: Set<String>] = rules.mapValues { Set($0.map(\.name)).union(common) }

/// One step of an element path.
private enum PathPart {
    case key(String)
    case index(Int)
}

private struct Checker {
    var issues: [FHIRIssue] = []
    /// fullUrl → (entry index, resource type).
    var entries: [String: (index: Int, type: String)] = [:]
    var resources: [(fullUrl: String?, type: String, value: JSONValue)] = []

    mutating func fail(_ code: FHIRIssue.IssueType, _ diagnostics: String, _ expression: String?) {
        issues.append(FHIRIssue(severity: .error, code: code, diagnostics: diagnostics, expression: expression))
    }

    // MARK: The bundle

    mutating func document(_ root: JSONValue) -> ValidatedHandoffDocument? {
        guard let bundle = root.object else {
            fail(.structure, "the body is not a JSON object", nil)
            return nil
        }
        guard bundle["resourceType"]?.string == "Bundle" else {
            fail(.invalid, "resourceType must be Bundle", "Bundle.resourceType")
            return nil
        }
        if bundle["type"]?.string != "document" {
            fail(.value, "Bundle.type must be document", "Bundle.type")
        }
        let bundleID = bundle["id"]?.string
        if bundleID.map(isResourceID) != true { fail(.required, "Bundle.id is required (a FHIR id)", "Bundle.id") }
        let versionIdentifier = bundleIdentifier(bundle["identifier"])
        var timestamp: Date?
        if let text = bundle["timestamp"]?.string {
            if let ms = FHIRTime.parseInstant(text) {
                timestamp = Date(timeIntervalSince1970: Double(ms) / 1000)
            } else {
                fail(.value, "Bundle.timestamp is not a FHIR instant", "Bundle.timestamp")
            }
        } else {
            fail(.invariant, "bdl-10: a document must have a timestamp", "Bundle.timestamp")
        }
        var version: Int?
        if let text = bundle["meta"]?["versionId"]?.string {
            if let v = Int(text), v >= 1, String(v) == text, text.utf8.count <= 9 {
                version = v
            } else {
                fail(.value, "Bundle.meta.versionId must be a positive integer", "Bundle.meta.versionId")
            }
        } else {
            fail(.required, "Bundle.meta.versionId is required (the version number)", "Bundle.meta.versionId")
        }
        guard let entryList = bundle["entry"]?.array, !entryList.isEmpty else {
            fail(.invariant, "bdl-11: a document must have entries, the Composition first", "Bundle.entry")
            return nil
        }
        collectEntries(entryList)
        if resources.first?.type != "Composition" {
            fail(.invariant, "bdl-11: the first entry of a document must be a Composition", "Bundle.entry[0].resource")
        }
        for (index, r) in resources.enumerated() {
            resource(r.value, type: r.type, path: "Bundle.entry[\(index)].resource")
        }
        var path: [PathPart] = []
        walk(root, &path)
        guard let composition = resources.first, composition.type == "Composition" else { return nil }
        return handoff(
            composition: composition.value,
            bundleID: bundleID,
            versionIdentifier: versionIdentifier,
            version: version,
            timestamp: timestamp
        )
    }

    func isResourceID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D
                    || $0 == 0x2E
            }
    }

    mutating func bundleIdentifier(_ value: JSONValue?) -> String? {
        guard let identifier = value?.object, let system = identifier["system"]?.string,
            let value = identifier["value"]?.string
        else {
            fail(.invariant, "bdl-9: a document must have an identifier with a system and a value", "Bundle.identifier")
            return nil
        }
        guard system == HandoffURI.rfc3986, uuid(value) != nil else {
            fail(.value, "Bundle.identifier must be an urn:uuid in system urn:ietf:rfc:3986", "Bundle.identifier")
            return nil
        }
        return value
    }

    func uuid(_ urn: String) -> UUID? {
        guard urn.hasPrefix("urn:uuid:"), urn.utf8.count == 45 else { return nil }
        return UUID(uuidString: String(urn.dropFirst(9)))
    }

    mutating func collectEntries(_ list: [JSONValue]) {
        for (index, entry) in list.enumerated() {
            let path = "Bundle.entry[\(index)]"
            guard let object = entry.object else {
                fail(.structure, "an entry must be an object", path)
                continue
            }
            let fullUrl = object["fullUrl"]?.string
            if let fullUrl {
                if entries[fullUrl] != nil {
                    fail(.duplicate, "bdl-7: fullUrl must be unique in a bundle", "\(path).fullUrl")
                }
            } else {
                fail(.required, "every entry of a document needs a fullUrl", "\(path).fullUrl")
            }
            guard let resource = object["resource"], let type = resource["resourceType"]?.string else {
                fail(.required, "every entry of a document needs a resource with a resourceType", "\(path).resource")
                resources.append((fullUrl, "", .null))
                continue
            }
            if let fullUrl, entries[fullUrl] == nil { entries[fullUrl] = (index, type) }
            if let id = resource["id"]?.string, let fullUrl, !fullUrl.hasPrefix("urn:"),
                !fullUrl.hasSuffix("/\(type)/\(id)")
            {
                fail(.invariant, "bdl-8: fullUrl must end with the resource's type and id", "\(path).fullUrl")
            }
            resources.append((fullUrl, type, resource))
        }
    }

    // MARK: Resources

    mutating func resource(_ value: JSONValue, type: String, path: String) {
        guard let object = value.object, !type.isEmpty else { return }
        guard let shape = rules[type] else {
            fail(.notSupported, "resource type not expected in a handoff document", "\(path).resourceType")
            return
        }
        if let id = object["id"], id.string.map(isResourceID) != true {
            fail(.value, "id must be a FHIR id", "\(path).id")
        }
        let known = knownElements[type] ?? common
        for key in object.keys where !known.contains(key) && !key.hasPrefix("_") {
            fail(.structure, "unknown element for \(type)", "\(path).\(key)")
        }
        // Paths are written only for an issue (autoclosures): most elements have none.
        for rule in shape { element(object[rule.name], rule, "\(path).\(rule.name)") }
        if type == "MedicationStatement", object["medicationCodeableConcept"] == nil,
            object["medicationReference"] == nil
        {
            fail(.required, "MedicationStatement.medication[x] is required", "\(path).medication")
        }
        if type == "Composition", let sections = object["section"]?.array {
            for (i, s) in sections.enumerated() { section(s, "\(path).section[\(i)]") }
        }
        if type == "Provenance", let agents = object["agent"]?.array {
            for (i, a) in agents.enumerated() where a["who"] == nil {
                fail(.required, "Provenance.agent.who is required", "\(path).agent[\(i)].who")
            }
        }
        if type == "Encounter", let c = object["class"], c["code"] == nil {
            fail(.required, "Encounter.class needs a code", "\(path).class")
        }
        if type == "Observation", let components = object["component"]?.array {
            for (i, c) in components.enumerated() where c["code"] == nil {
                fail(.required, "Observation.component.code is required", "\(path).component[\(i)].code")
            }
        }
    }

    mutating func element(_ value: JSONValue?, _ rule: Rule, _ path: @autoclosure () -> String) {
        guard let value else {
            if rule.required { fail(.required, "required element missing", path()) }
            return
        }
        if rule.many {
            guard let list = value.array else {
                fail(.structure, "element must be an array", path())
                return
            }
            if rule.required, list.isEmpty { fail(.required, "at least one is required", path()) }
            for (i, item) in list.enumerated() { single(item, rule.kind, "\(path())[\(i)]") }
        } else {
            if value.array != nil {
                fail(.structure, "element cannot repeat", path())
                return
            }
            single(value, rule.kind, path())
        }
    }

    mutating func single(_ value: JSONValue, _ kind: Rule.Kind, _ path: @autoclosure () -> String) {
        switch kind {
        case .string, .uri:
            if value.string == nil { fail(.structure, "must be a string", path()) }
        case .code:
            if value.string.map({ !$0.isEmpty && !$0.hasPrefix(" ") && !$0.hasSuffix(" ") }) != true {
                fail(.value, "must be a code", path())
            }
        case .codeIn(let allowed):
            if value.string.map(allowed.contains) != true { fail(.value, "code not in the required value set", path()) }
        case .date:
            if value.string.map(FHIRTime.isDate) != true { fail(.value, "must be a FHIR date", path()) }
        case .dateTime:
            if value.string.map(FHIRTime.isDateTime) != true { fail(.value, "must be a FHIR dateTime", path()) }
        case .instant:
            if value.string.flatMap(FHIRTime.parseInstant) == nil { fail(.value, "must be a FHIR instant", path()) }
        case .integer:
            if case .integer = value {} else { fail(.value, "must be an integer", path()) }
        case .boolean:
            if case .bool = value {} else { fail(.value, "must be a boolean", path()) }
        case .object:
            if value.object == nil { fail(.structure, "must be an object", path()) }
        case .reference:
            if value.object == nil { fail(.structure, "must be a Reference", path()) }
        }
    }

    mutating func section(_ value: JSONValue, _ path: String) {
        guard let s = value.object else { return fail(.structure, "a section must be an object", path) }
        if s["title"]?.string == nil { fail(.required, "every section needs a title", "\(path).title") }
        if s["code"]?.object == nil { fail(.required, "every section needs a code", "\(path).code") }
        if let text = s["text"] {
            if text["status"]?.string == nil || text["div"]?.string?.hasPrefix("<div") != true {
                fail(.value, "section narrative needs a status and an XHTML div", "\(path).text")
            }
        }
        if let entry = s["entry"], entry.array == nil {
            fail(.structure, "section.entry must be an array", "\(path).entry")
        }
        let hasEntries = !(s["entry"]?.array?.isEmpty ?? true)
        if s["text"] == nil, !hasEntries, s["section"] == nil {
            fail(.invariant, "cmp-1: a section needs text, entries or sub-sections", path)
        }
        if s["emptyReason"] != nil, hasEntries {
            fail(.invariant, "cmp-2: a section with entries cannot have an emptyReason", "\(path).emptyReason")
        }
    }

    func resolve(_ reference: String) -> (index: Int, type: String)? {
        if let found = entries[reference] { return found }
        // A relative reference `Type/id` resolves to an entry whose fullUrl ends with it.
        let parts = reference.split(separator: "/")
        guard parts.count == 2 else { return nil }
        for (url, found) in entries where url.hasSuffix("/\(reference)") && found.type == parts[0] { return found }
        return nil
    }

    /// One pass over the whole bundle: FHIR's JSON rules (no null, no empty string, array or object), every
    /// `reference` resolving inside the bundle, every `Coding.system` (and `Quantity.system`) a known code system.
    /// The path is a stack of parts, rendered only for an issue.
    mutating func walk(_ value: JSONValue, _ path: inout [PathPart]) {
        switch value {
        case .null:
            fail(.structure, "null is not allowed in FHIR JSON", render(path))
        case .string(let s) where s.isEmpty:
            fail(.value, "empty strings are not allowed in FHIR JSON", render(path))
        case .array(let a):
            if a.isEmpty { fail(.structure, "empty arrays are not allowed in FHIR JSON", render(path)) }
            for (i, item) in a.enumerated() {
                path.append(.index(i))
                walk(item, &path)
                path.removeLast()
            }
        case .object(let o):
            if o.isEmpty { fail(.structure, "empty objects are not allowed in FHIR JSON", render(path)) }
            if let reference = o["reference"] {
                if let target = reference.string {
                    if !target.isEmpty, resolve(target) == nil {
                        fail(.notFound, "reference does not resolve inside the bundle", render(path) + ".reference")
                    }
                } else {
                    fail(.structure, "Reference.reference must be a string", render(path) + ".reference")
                }
            }
            if let system = o["system"], o["url"] == nil, o["value"] == nil || o["code"] != nil {
                // A Coding (system without value) or a Quantity (value, system and code); not an Identifier.
                if let system = system.string {
                    if !system.isEmpty, !HandoffURI.codeSystems.contains(system) {
                        fail(.codeInvalid, "unknown code system", render(path) + ".system")
                    }
                } else {
                    fail(.structure, "system must be a string", render(path) + ".system")
                }
            }
            for (key, item) in o {
                path.append(.key(key))
                walk(item, &path)
                path.removeLast()
            }
        default:
            break
        }
    }

    func render(_ path: [PathPart]) -> String {
        var text = "Bundle"
        for part in path {
            switch part {
            case .key(let key): text += "." + key
            case .index(let i): text += "[\(i)]"
            }
        }
        return text
    }

    // MARK: The handoff's own rules

    func target(_ reference: JSONValue?) -> (index: Int, type: String)? {
        reference?["reference"]?.string.flatMap(resolve)
    }

    mutating func handoff(
        composition: JSONValue,
        bundleID: String?,
        versionIdentifier: String?,
        version: Int?,
        timestamp: Date?
    ) -> ValidatedHandoffDocument? {
        let path = "Bundle.entry[0].resource"
        var documentSet: UUID?
        if let identifier = composition["identifier"]?.object, identifier["system"]?.string == HandoffURI.rfc3986,
            let value = identifier["value"]?.string, let set = uuid(value)
        {
            documentSet = set
        } else {
            fail(
                .value,
                "Composition.identifier must be the document set's urn:uuid (urn:ietf:rfc:3986)",
                "\(path).identifier"
            )
        }
        if let subject = target(composition["subject"]), subject.type != "Patient" {
            fail(.value, "Composition.subject must be the Patient", "\(path).subject")
        }
        var replaces: String?
        let replacing = (composition["relatesTo"]?.array ?? []).filter { $0["code"]?.string == "replaces" }
        if let first = replacing.first {
            if let value = first["targetIdentifier"]?["value"]?.string, uuid(value) != nil,
                first["targetIdentifier"]?["system"]?.string == HandoffURI.rfc3986
            {
                replaces = value
            } else {
                fail(.value, "relatesTo.targetIdentifier must be the previous version's urn:uuid", "\(path).relatesTo")
            }
        }
        if replacing.count > 1 { fail(.invariant, "a version replaces at most one version", "\(path).relatesTo") }
        if let version, version > 1, replacing.isEmpty {
            fail(.businessRule, "a version after the first must name the version it replaces", "\(path).relatesTo")
        }
        if version == 1, !replacing.isEmpty {
            fail(.businessRule, "the first version cannot replace another", "\(path).relatesTo")
        }

        // Destination: Composition.encounter → Encounter.hospitalization.destination → Organization.
        var hospital: HospitalCode?
        if let encounter = target(composition["encounter"]), encounter.type == "Encounter" {
            let encounterPath = "Bundle.entry[\(encounter.index)].resource"
            let destination = target(resources[encounter.index].value["hospitalization"]?["destination"])
            if let destination, destination.type == "Organization" {
                let identifiers = resources[destination.index].value["identifier"]?.array ?? []
                let codes = identifiers.filter { $0["system"]?.string == HandoffURI.medicalInstitution }
                if codes.count == 1, let value = codes[0]["value"]?.string, let code = HospitalCode(rawValue: value) {
                    hospital = code
                } else {
                    fail(
                        .value,
                        "the destination needs exactly one 10-digit medical-institution code",
                        "Bundle.entry[\(destination.index)].resource.identifier"
                    )
                }
            } else {
                fail(
                    .required,
                    "the destination hospital (an Organization) is required",
                    "\(encounterPath).hospitalization.destination"
                )
            }
        } else {
            fail(.required, "Composition.encounter must be the transport Encounter", "\(path).encounter")
        }

        // Sender and audit anchor: the Provenance whose target is the Composition.
        let compositionURL = resources[0].fullUrl
        let provenances = resources.enumerated().filter { _, r in
            r.type == "Provenance"
                && (r.value["target"]?.array ?? []).contains { $0["reference"]?.string == compositionURL }
        }
        guard provenances.count == 1, let (provenanceIndex, provenance) = provenances.first else {
            fail(.required, "exactly one Provenance must target the Composition", "Bundle.entry")
            return nil
        }
        let provenancePath = "Bundle.entry[\(provenanceIndex)].resource"
        var sender: String?
        for (i, agent) in (provenance.value["agent"]?.array ?? []).enumerated() {
            guard let who = target(agent["who"]), who.type == "Device" else { continue }
            let ids = (resources[who.index].value["identifier"]?.array ?? []).filter {
                $0["system"]?.string == HandoffURI.device
            }
            if ids.count == 1, let value = ids[0]["value"]?.string, HandoffDocumentBuilder.isIdentifierToken(value) {
                sender = value
            } else {
                fail(
                    .value,
                    "the sending Device needs one urn:kyukyu:device identifier",
                    "\(provenancePath).agent[\(i)].who"
                )
            }
        }
        if sender == nil, !issues.contains(where: { $0.expression?.hasPrefix("\(provenancePath).agent") == true }) {
            fail(.required, "a Provenance.agent must be the sending Device", "\(provenancePath).agent")
        }
        let anchor = auditAnchor(provenance.value, provenancePath)

        guard let documentSet, let bundleID, let versionIdentifier, let version, let timestamp, let hospital,
            let sender, let anchor
        else { return nil }
        return ValidatedHandoffDocument(
            documentSet: documentSet,
            version: version,
            versionIdentifier: versionIdentifier,
            bundleID: bundleID,
            replaces: replaces,
            hospital: hospital,
            senderDevice: sender,
            auditAnchor: anchor,
            timestamp: timestamp
        )
    }

    mutating func auditAnchor(_ provenance: JSONValue, _ path: String) -> AuditAnchor? {
        let anchors = (provenance["extension"]?.array ?? []).enumerated().filter {
            $0.element["url"]?.string == HandoffURI.auditAnchor
        }
        guard anchors.count == 1, let (index, anchor) = anchors.first else {
            fail(.required, "exactly one audit-anchor extension is required", "\(path).extension")
            return nil
        }
        let at = "\(path).extension[\(index)]"
        func part(_ name: String, _ key: String) -> String? {
            let found = (anchor["extension"]?.array ?? []).filter { $0["url"]?.string == name }
            return found.count == 1 ? found[0][key]?.string : nil
        }
        let sequence = part("sequence", "valueString").flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil }
        let hash = part("hash", "valueString").flatMap { HandoffDocumentBuilder.isHex($0) ? $0 : nil }
        let signedAt = part("signedAt", "valueInstant").flatMap(FHIRTime.parseInstant)
        let key = part("signingPublicKey", "valueBase64Binary").flatMap { Data(base64Encoded: $0) != nil ? $0 : nil }
        let signature = part("signature", "valueBase64Binary").flatMap { Data(base64Encoded: $0) != nil ? $0 : nil }
        guard let sequence, let hash, let signedAt, let key, let signature else {
            fail(
                .value,
                "the audit anchor needs sequence (decimal), hash (hex), signedAt (instant), signingPublicKey and signature (base64)",
                at
            )
            return nil
        }
        return AuditAnchor(
            sequence: sequence,
            hash: hash,
            signedAtMilliseconds: signedAt,
            signingPublicKey: key,
            signature: signature
        )
    }
}
