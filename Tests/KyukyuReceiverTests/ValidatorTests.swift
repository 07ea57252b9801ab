import Foundation
import KyukyuDomain
import KyukyuReceiver
import Testing

@Suite("The structural validator reads the contract's identity fields")
struct ValidatorTests {
    let validator = StructuralHandoffValidator()

    @Test func readsEveryIdentityField() throws {
        var document = SyntheticDocument()
        document.version = 2
        document.replaces = "urn:uuid:" + UUID().uuidString.lowercased()
        let info = try validator.validate(document.data)
        #expect(info.documentSet == document.set)
        #expect(info.version == 2)
        #expect(info.versionIdentifier == document.versionIdentifier)
        #expect(info.destination == hospitalCode)
        #expect(info.senderDevice == "ambulance-01")
        #expect(info.replaces == document.replaces)
        #expect(info.auditAnchor?.sequence == 42)
        #expect(info.auditAnchor?.hash == String(repeating: "ab", count: 32))
        // 2026-11-27T03:11:59.123Z in milliseconds: the exact value a head's signature covers.
        #expect(info.auditAnchor?.signedAtMilliseconds == 1_795_749_119_123)
    }

    @Test func notJSONIsInvalidJSON() {
        #expect(throws: HandoffValidationError.self) { try validator.validate(Data("{\"resourceType\": ".utf8)) }
        do {
            _ = try validator.validate(Data("[1, 2]".utf8))
            Issue.record("an array was accepted")
        } catch {
            #expect(error.isInvalidJSON)
        }
    }

    @Test func missingDestinationAndSenderAreNamedWithoutQuotingTheDocument() throws {
        var json = SyntheticDocument().json
        var entries = json["entry"] as! [[String: Any]]
        entries.removeAll { (($0["resource"] as? [String: Any])?["resourceType"] as? String) == "Organization" }
        entries.removeAll { (($0["resource"] as? [String: Any])?["resourceType"] as? String) == "Device" }
        json["entry"] = entries
        let data = try JSONSerialization.data(withJSONObject: json)
        do {
            _ = try validator.validate(data)
            Issue.record("a document without destination and sender was accepted")
        } catch {
            #expect(!error.isInvalidJSON)
            let expressions = error.issues.flatMap { $0.expression ?? [] }
            #expect(expressions.contains("Encounter.hospitalization.destination"))
            #expect(expressions.contains("Provenance.agent"))
            #expect(!error.description.contains(Synthetic.familyName))
        }
    }

    @Test func aLaterVersionMustSayWhatItReplaces() {
        // Version 3 with the Composition's relatesTo taken out (the builder never makes such a document).
        var bundle = SyntheticDocument().next().next().json
        var entries = bundle["entry"] as! [[String: Any]]
        var composition = entries[0]["resource"] as! [String: Any]
        #expect(composition["relatesTo"] != nil)
        composition["relatesTo"] = nil
        entries[0]["resource"] = composition
        bundle["entry"] = entries
        let data = try! JSONSerialization.data(withJSONObject: bundle)
        #expect(throws: HandoffValidationError.self) { try validator.validate(data) }
        #expect(throws: HandoffValidationError.self) { try FHIRHandoffValidator().validate(data) }
    }

    @Test func identifiersMustBeUUIDURNs() throws {
        var json = SyntheticDocument().json
        json["identifier"] = ["system": "urn:ietf:rfc:3986", "value": "not-a-uuid"]
        let data = try JSONSerialization.data(withJSONObject: json)
        do {
            _ = try validator.validate(data)
            Issue.record("a bad identifier was accepted")
        } catch {
            #expect(error.issues.contains { $0.expression == ["Bundle.identifier.value"] })
        }
    }
}
