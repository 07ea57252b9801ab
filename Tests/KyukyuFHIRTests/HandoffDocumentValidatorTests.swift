import Foundation
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuFHIR
import KyukyuOnshi
import Testing

@Suite("The pre-arrival document: validator")
struct HandoffDocumentValidatorTests {
    /// A valid document of the polypharmacy patient (the one with the most records), as a tree to break.
    static func valid() -> [String: Any] {
        Fixture.tree(try! HandoffDocumentBuilder.build(Fixture.input(.elderlyPolypharmacy)))
    }

    static func entries(_ tree: [String: Any]) -> [[String: Any]] { tree["entry"] as! [[String: Any]] }

    /// Index of the first entry whose resource is of `type`.
    static func index(_ tree: [String: Any], _ type: String) -> Int {
        entries(tree).firstIndex { ($0["resource"] as? [String: Any])?["resourceType"] as? String == type }!
    }

    static func editResource(_ tree: inout [String: Any], _ index: Int, _ edit: (inout [String: Any]) -> Void) {
        var list = entries(tree)
        var resource = list[index]["resource"] as! [String: Any]
        edit(&resource)
        list[index]["resource"] = resource
        tree["entry"] = list
    }

    /// A hand-broken document and the issue (code, expression) it must produce.
    struct Broken: CustomTestStringConvertible, Sendable {
        let name: String
        let code: FHIRIssue.IssueType
        let expression: String?
        let breakIt: @Sendable (inout [String: Any]) -> Void
        var testDescription: String { name }
    }

    static let broken: [Broken] = [
        Broken(name: "wrong resourceType", code: .invalid, expression: "Bundle.resourceType") {
            $0["resourceType"] = "Patient"
        },
        Broken(name: "type collection", code: .value, expression: "Bundle.type") { $0["type"] = "collection" },
        Broken(name: "no identifier (bdl-9)", code: .invariant, expression: "Bundle.identifier") {
            $0["identifier"] = nil
        },
        Broken(name: "identifier without system (bdl-9)", code: .invariant, expression: "Bundle.identifier") {
            $0["identifier"] = ["value": "urn:uuid:0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9"]
        },
        Broken(name: "no timestamp (bdl-10)", code: .invariant, expression: "Bundle.timestamp") {
            $0["timestamp"] = nil
        },
        Broken(name: "timestamp not an instant", code: .value, expression: "Bundle.timestamp") {
            $0["timestamp"] = "2026-11-27 09:00"
        },
        Broken(name: "versionId 0", code: .value, expression: "Bundle.meta.versionId") {
            $0["meta"] = ["versionId": "0"]
        },
        Broken(name: "versionId 01", code: .value, expression: "Bundle.meta.versionId") {
            $0["meta"] = ["versionId": "01"]
        },
        Broken(name: "versionId not a number", code: .value, expression: "Bundle.meta.versionId") {
            $0["meta"] = ["versionId": "v1"]
        },
        Broken(name: "no versionId", code: .required, expression: "Bundle.meta.versionId") { $0["meta"] = nil },
        Broken(name: "Composition not first (bdl-11)", code: .invariant, expression: "Bundle.entry[0].resource") {
            var list = entries($0)
            list.swapAt(0, 1)
            $0["entry"] = list
        },
        Broken(name: "duplicate fullUrl (bdl-7)", code: .duplicate, expression: "Bundle.entry[2].fullUrl") {
            var list = entries($0)
            list[2]["fullUrl"] = list[1]["fullUrl"]
            $0["entry"] = list
        },
        Broken(name: "entry without fullUrl", code: .required, expression: "Bundle.entry[3].fullUrl") {
            var list = entries($0)
            list[3]["fullUrl"] = nil
            $0["entry"] = list
        },
        Broken(
            name: "dangling reference",
            code: .notFound,
            expression: "Bundle.entry[0].resource.subject.reference"
        ) {
            editResource(&$0, 0) { $0["subject"] = ["reference": "urn:uuid:00000000-0000-4000-8000-000000000000"] }
        },
        Broken(name: "relative reference to nothing", code: .notFound, expression: nil) {
            let i = index($0, "Coverage")
            editResource(&$0, i) { $0["beneficiary"] = ["reference": "Patient/nobody"] }
        },
        Broken(name: "Coverage without payor", code: .required, expression: nil) {
            let i = index($0, "Coverage")
            editResource(&$0, i) { $0["payor"] = nil }
        },
        Broken(name: "Observation without code", code: .required, expression: nil) {
            let i = index($0, "Observation")
            editResource(&$0, i) { $0["code"] = nil }
        },
        Broken(name: "Composition.subject repeated", code: .structure, expression: "Bundle.entry[0].resource.subject") {
            editResource(&$0, 0) { $0["subject"] = [$0["subject"]!] }
        },
        Broken(name: "unknown code system", code: .codeInvalid, expression: nil) {
            let i = index($0, "Condition")
            editResource(&$0, i) {
                $0["code"] = ["coding": [["system": "http://example.org/made-up", "code": "X"]]]
            }
        },
        Broken(name: "an empty string", code: .value, expression: nil) {
            let i = index($0, "Organization")
            editResource(&$0, i) { $0["name"] = "" }
        },
        Broken(name: "an unexpected resource type", code: .notSupported, expression: nil) {
            var list = entries($0)
            list.append([
                "fullUrl": "urn:uuid:12345678-1234-4234-8234-123456789012", "resource": ["resourceType": "Basic"],
            ])
            $0["entry"] = list
        },
        Broken(name: "destination without a hospital code", code: .value, expression: nil) {
            let i = index($0, "Organization")
            editResource(&$0, i) {
                $0["identifier"] = [["system": HandoffURI.medicalInstitution, "value": "12345"]]
            }
        },
        Broken(name: "sending Device without its identifier", code: .value, expression: nil) {
            let i = index($0, "Device")
            editResource(&$0, i) { $0["identifier"] = [["system": "urn:example:other", "value": "ambulance-01"]] }
        },
        Broken(name: "audit anchor with a signature that is not base64", code: .value, expression: nil) {
            let i = index($0, "Provenance")
            editResource(&$0, i) {
                var extensions = $0["extension"] as! [[String: Any]]
                var parts = extensions[0]["extension"] as! [[String: Any]]
                let signature = parts.firstIndex { $0["url"] as? String == "signature" }!
                parts[signature]["valueBase64Binary"] = "not base64!"
                extensions[0]["extension"] = parts
                $0["extension"] = extensions
            }
        },
        Broken(name: "no audit anchor", code: .required, expression: nil) {
            let i = index($0, "Provenance")
            editResource(&$0, i) { $0["extension"] = nil }
        },
        Broken(
            name: "version 2 that replaces nothing",
            code: .businessRule,
            expression: "Bundle.entry[0].resource.relatesTo"
        ) {
            $0["meta"] = ["versionId": "2"]
        },
        Broken(name: "section with entries and an emptyReason (cmp-2)", code: .invariant, expression: nil) {
            editResource(&$0, 0) {
                var sections = $0["section"] as! [[String: Any]]
                let withEntries = sections.firstIndex { $0["entry"] != nil }!
                sections[withEntries]["emptyReason"] = ["text": "x"]
                $0["section"] = sections
            }
        },
    ]

    @Test("A valid document passes")
    func valid() throws {
        let document = try HandoffDocumentValidator.validate(Fixture.data(Self.valid()))
        #expect(document.hospital == Fixture.hospital)
    }

    @Test("Each hand-broken document is refused with its own issue", arguments: broken)
    func refuses(_ broken: Broken) throws {
        var tree = Self.valid()
        broken.breakIt(&tree)
        let error = try #require(throws: FHIRValidationError.self) {
            try HandoffDocumentValidator.validate(Fixture.data(tree))
        }
        #expect(error.kind == "invalid-document")
        let match = error.issues.first {
            $0.code == broken.code && (broken.expression == nil || $0.expression == broken.expression)
        }
        #expect(match != nil, "\(error)")
        #expect(error.issues.allSatisfy { $0.severity == .error || $0.severity == .fatal })
    }

    @Test("Not JSON, not UTF-8, not an object: refused as not-json or structure")
    func notJSON() throws {
        let bodies = [
            Data("{\"resourceType\": \"Bundle\",".utf8), Data([0xFF, 0xFE, 0x00]), Data(),
            Data("{\"resourceType\": \"Bundle\", \"resourceType\": \"Bundle\"}".utf8),  // a repeated key
            Data((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8),  // too deep
            Data("{\"a\": \"\\ud800\"}".utf8),  // a lone surrogate
            Data("{\"a\": \"\u{01}\"}".utf8),  // a raw control character
            Data("{\"a\": 01}".utf8), Data("{} x".utf8), Data("{\"a\": NaN}".utf8),
        ]
        for body in bodies {
            let error = try #require(throws: FHIRValidationError.self) { try HandoffDocumentValidator.validate(body) }
            #expect(error.kind == "not-json")
            #expect(error.issues.first?.code == .structure)
        }
        let array = try #require(throws: FHIRValidationError.self) {
            try HandoffDocumentValidator.validate(Data("[1, 2]".utf8))
        }
        #expect(array.issues.first?.code == .structure)
        // Escapes, surrogate pairs and numbers of every form are read: the same document re-escaped still passes.
        let escaped = String(decoding: try HandoffDocumentBuilder.build(Fixture.input(.epilepsy)), as: UTF8.self)
            .replacingOccurrences(of: "テスト", with: "\\u30c6\\u30b9\\u30c8")
            .replacingOccurrences(of: "\"title\":", with: "\"title\" :\n\t")
        #expect(escaped.contains("\\u30c6"))
        let document = try HandoffDocumentValidator.validate(Data(escaped.utf8))
        #expect(document.version == 1)
    }

    @Test("Issues never carry patient data; the OperationOutcome lists them")
    func noPatientDataAndOutcome() throws {
        let input = Fixture.input(.elderlyPolypharmacy)
        guard case .qualification(let q?) = input.records[.qualification] else {
            Issue.record("no qualification")
            return
        }
        var tree = Fixture.tree(try HandoffDocumentBuilder.build(input))
        // Break many things at once, including around the patient's own elements.
        let patient = Self.index(tree, "Patient")
        Self.editResource(&tree, patient) {
            $0["gender"] = q.name
            $0["birthDate"] = q.address
        }
        tree["type"] = q.nameKana
        let error = try #require(throws: FHIRValidationError.self) {
            try HandoffDocumentValidator.validate(Fixture.data(tree))
        }
        #expect(error.issues.count >= 3)
        let outcome = error.operationOutcome()
        let text = String(decoding: outcome, as: UTF8.self) + error.description
        for secret in [q.name, q.nameKana, q.address, q.number] {
            #expect(!text.contains(secret))
        }
        let parsed = try #require(try JSONSerialization.jsonObject(with: outcome) as? [String: Any])
        #expect(parsed["resourceType"] as? String == "OperationOutcome")
        let issues = try #require(parsed["issue"] as? [[String: Any]])
        #expect(issues.count == error.issues.count)
        #expect(issues.allSatisfy { $0["severity"] as? String == "error" && $0["code"] != nil })
        #expect(issues.contains { ($0["expression"] as? [String]) == ["Bundle.type"] })
        let stored = try #require(
            try JSONSerialization.jsonObject(with: OperationOutcome.information("stored")) as? [String: Any]
        )
        #expect((stored["issue"] as? [[String: Any]])?.first?["severity"] as? String == "information")
    }
}
