import Foundation

// A minimal, hand-written model of the FHIR R4 JSON this module writes: only the elements the handoff document
// uses. Every optional is omitted when nil (the synthesised `encodeIfPresent`), and the builder never sets an
// empty array, object or string (FHIR's JSON rules), so none appears in the output.

struct Coding: Encodable, Hashable, Sendable {
    var system: String?
    var code: String?
    var display: String?

    init(_ system: String, _ code: String, _ display: String? = nil) {
        self.system = system
        self.code = code
        self.display = display
    }
}

struct CodeableConcept: Encodable, Hashable, Sendable {
    var coding: [Coding]?
    var text: String?

    init(_ coding: [Coding]? = nil, text: String? = nil) {
        self.coding = coding
        self.text = text
    }

    init(_ coding: Coding, text: String? = nil) {
        self.init([coding], text: text)
    }
}

struct Identifier: Encodable, Hashable, Sendable {
    var system: String?
    var value: String?
    var assigner: Reference?

    init(_ system: String, _ value: String, assigner: Reference? = nil) {
        self.system = system
        self.value = value
        self.assigner = assigner
    }
}

struct Reference: Encodable, Hashable, Sendable {
    var reference: String?
    var display: String?

    init(_ reference: String, display: String? = nil) {
        self.reference = reference
        self.display = display
    }
}

struct Extension: Encodable, Hashable, Sendable {
    var url: String
    var valueString: String?
    var valueCode: String?
    var valueInstant: String?
    var valueBase64Binary: String?
    var valueDateTime: String?
    var `extension`: [Extension]?

    init(
        url: String,
        valueString: String? = nil,
        valueCode: String? = nil,
        valueInstant: String? = nil,
        valueBase64Binary: String? = nil,
        valueDateTime: String? = nil,
        extension: [Extension]? = nil
    ) {
        self.url = url
        self.valueString = valueString
        self.valueCode = valueCode
        self.valueInstant = valueInstant
        self.valueBase64Binary = valueBase64Binary
        self.valueDateTime = valueDateTime
        self.extension = `extension`
    }
}

struct Meta: Encodable, Hashable, Sendable {
    var versionId: String?
    var profile: [String]?
}

struct Narrative: Encodable, Hashable, Sendable {
    var status: String
    var div: String
}

struct HumanName: Encodable, Hashable, Sendable {
    var `extension`: [Extension]?
    var use: String?
    var text: String?
    var family: String?
    var given: [String]?
}

struct Address: Encodable, Hashable, Sendable {
    var text: String?
    var postalCode: String?
    var country: String?
}

struct Period: Encodable, Hashable, Sendable {
    var start: String?
    var end: String?
}

struct Quantity: Encodable, Hashable, Sendable {
    var value: Double?
    var unit: String?
    var system: String?
    var code: String?
}

struct Annotation: Encodable, Hashable, Sendable {
    var text: String
}

struct Dosage: Encodable, Hashable, Sendable {
    var text: String?
}

// MARK: - Resources

struct Patient: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var identifier: [Identifier]?
    var name: [HumanName]?
    var gender: String?
    var birthDate: String?
    var address: [Address]?
}

struct Organization: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var identifier: [Identifier]?
    var type: [CodeableConcept]?
    var name: String?
}

struct Practitioner: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var identifier: [Identifier]?
}

struct DeviceName: Encodable, Hashable, Sendable {
    var name: String
    var type: String
}

struct Device: Encodable, Hashable, Sendable {
    var id: String
    var identifier: [Identifier]?
    var deviceName: [DeviceName]?
    var type: CodeableConcept?
}

struct Coverage: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var `extension`: [Extension]?
    var identifier: [Identifier]?
    var status: String
    var type: CodeableConcept?
    var dependent: String?
    var beneficiary: Reference
    var period: Period?
    var payor: [Reference]
}

struct Hospitalization: Encodable, Hashable, Sendable {
    var destination: Reference?
}

struct Encounter: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var status: String
    var `class`: Coding
    var type: [CodeableConcept]?
    var subject: Reference?
    var hospitalization: Hospitalization?
}

struct Condition: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var clinicalStatus: CodeableConcept?
    var verificationStatus: CodeableConcept?
    var category: [CodeableConcept]?
    var code: CodeableConcept?
    var subject: Reference
    var onsetDateTime: String?
    var recordedDate: String?
    var note: [Annotation]?
}

struct MedicationStatement: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var status: String
    var medicationCodeableConcept: CodeableConcept
    var subject: Reference
    var effectivePeriod: Period?
    var dateAsserted: String?
    var note: [Annotation]?
    var dosage: [Dosage]?
}

struct ProcedurePerformer: Encodable, Hashable, Sendable {
    var actor: Reference
}

struct Procedure: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var status: String
    var category: CodeableConcept?
    var code: CodeableConcept?
    var subject: Reference
    var encounter: Reference?
    var performedDateTime: String?
    var performer: [ProcedurePerformer]?
    var note: [Annotation]?
}

struct ObservationComponent: Encodable, Hashable, Sendable {
    var code: CodeableConcept
    var valueQuantity: Quantity?
    var valueCodeableConcept: CodeableConcept?
    var valueInteger: Int?
}

struct Observation: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var status: String
    var category: [CodeableConcept]?
    var code: CodeableConcept
    var subject: Reference?
    var encounter: Reference?
    var effectiveDateTime: String?
    var performer: [Reference]?
    var valueQuantity: Quantity?
    var valueCodeableConcept: CodeableConcept?
    var valueString: String?
    var valueInteger: Int?
    var valueDateTime: String?
    var interpretation: [CodeableConcept]?
    var note: [Annotation]?
    var component: [ObservationComponent]?

    init(id: String, status: String = "final", code: CodeableConcept) {
        self.id = id
        self.status = status
        self.code = code
    }
}

struct AllergyReaction: Encodable, Hashable, Sendable {
    var manifestation: [CodeableConcept]
}

struct AllergyIntolerance: Encodable, Hashable, Sendable {
    var id: String
    var meta: Meta?
    var clinicalStatus: CodeableConcept?
    var verificationStatus: CodeableConcept?
    var type: String?
    var category: [String]?
    var code: CodeableConcept?
    var patient: Reference
    var recordedDate: String?
    var reaction: [AllergyReaction]?
}

struct ProvenanceAgent: Encodable, Hashable, Sendable {
    var type: CodeableConcept?
    var who: Reference
}

struct Provenance: Encodable, Hashable, Sendable {
    var id: String
    var `extension`: [Extension]?
    var target: [Reference]
    var occurredDateTime: String?
    var recorded: String
    var reason: [CodeableConcept]?
    var agent: [ProvenanceAgent]
}

struct RelatesTo: Encodable, Hashable, Sendable {
    var code: String
    var targetIdentifier: Identifier
}

struct Section: Encodable, Hashable, Sendable {
    var title: String
    var code: CodeableConcept
    var text: Narrative
    var entry: [Reference]?
    var emptyReason: CodeableConcept?
}

struct Composition: Encodable, Hashable, Sendable {
    var id: String
    var identifier: Identifier
    var status: String
    var type: CodeableConcept
    var subject: Reference
    var encounter: Reference
    var date: String
    var author: [Reference]
    var title: String
    var confidentiality: String
    var relatesTo: [RelatesTo]?
    var section: [Section]
}

/// One resource of the bundle, written with its `resourceType`.
enum Resource: Hashable, Sendable {
    case composition(Composition)
    case patient(Patient)
    case organization(Organization)
    case practitioner(Practitioner)
    case device(Device)
    case coverage(Coverage)
    case encounter(Encounter)
    case condition(Condition)
    case medicationStatement(MedicationStatement)
    case procedure(Procedure)
    case observation(Observation)
    case allergyIntolerance(AllergyIntolerance)
    case provenance(Provenance)

    var resourceType: String {
        switch self {
        case .composition: "Composition"
        case .patient: "Patient"
        case .organization: "Organization"
        case .practitioner: "Practitioner"
        case .device: "Device"
        case .coverage: "Coverage"
        case .encounter: "Encounter"
        case .condition: "Condition"
        case .medicationStatement: "MedicationStatement"
        case .procedure: "Procedure"
        case .observation: "Observation"
        case .allergyIntolerance: "AllergyIntolerance"
        case .provenance: "Provenance"
        }
    }
}

extension Resource: Encodable {
    private enum Key: String, CodingKey { case resourceType }

    func encode(to encoder: any Encoder) throws {
        // JSONEncoder merges keyed containers taken twice from the same encoder: the resource's own keys and
        // `resourceType` end up in one object.
        switch self {
        case .composition(let r): try r.encode(to: encoder)
        case .patient(let r): try r.encode(to: encoder)
        case .organization(let r): try r.encode(to: encoder)
        case .practitioner(let r): try r.encode(to: encoder)
        case .device(let r): try r.encode(to: encoder)
        case .coverage(let r): try r.encode(to: encoder)
        case .encounter(let r): try r.encode(to: encoder)
        case .condition(let r): try r.encode(to: encoder)
        case .medicationStatement(let r): try r.encode(to: encoder)
        case .procedure(let r): try r.encode(to: encoder)
        case .observation(let r): try r.encode(to: encoder)
        case .allergyIntolerance(let r): try r.encode(to: encoder)
        case .provenance(let r): try r.encode(to: encoder)
        }
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(self.resourceType, forKey: .resourceType)
    }
}

struct BundleEntry: Encodable, Hashable, Sendable {
    var fullUrl: String
    var resource: Resource
}

struct DocumentBundle: Encodable, Hashable, Sendable {
    var resourceType = "Bundle"
    var id: String
    var meta: Meta
    var identifier: Identifier
    var type: String
    var timestamp: String
    var entry: [BundleEntry]
}
