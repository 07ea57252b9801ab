import Foundation
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuFHIR
import KyukyuOnshi
import KyukyuSummary
import Testing

@Suite("The pre-arrival document: builder")
struct HandoffDocumentBuilderTests {
    @Test(
        "Every archetype, with vitals and without, with every category or some missing: the validator accepts it",
        arguments: Archetype.allCases,
        [true, false]
    )
    func everyArchetypeValidates(archetype: Archetype, vitals: Bool) throws {
        for missing in [false, true] {
            let input = Fixture.input(archetype, vitals: vitals, missing: missing)
            let data = try HandoffDocumentBuilder.build(input)
            let document = try HandoffDocumentValidator.validate(data)
            #expect(document.documentSet == Fixture.documentSet)
            #expect(document.version == 1)
            #expect(document.versionIdentifier == "urn:uuid:\(Fixture.versionID.uuidString.lowercased())")
            #expect(document.bundleID == Fixture.versionID.uuidString.lowercased())
            #expect(document.replaces == nil)
            #expect(document.hospital == Fixture.hospital)
            #expect(document.senderDevice == "ambulance-01")
            #expect(document.auditAnchor == Fixture.anchor())
            #expect(document.timestamp == Fixture.builtAt)

            let observations = Fixture.resources(data, "Observation")
            let vitalSigns = observations.filter {
                (($0["meta"] as? [String: Any])?["profile"] as? [String])?.first?.hasSuffix("JP_Observation_VitalSigns")
                    == true
            }
            // First set: JCS, GCS, HR, BP, RR, SpO2, BT, BS (8); second: JCS, HR, BP (3).
            #expect(vitalSigns.count == (vitals ? 11 : 0))
            let gaps = try #require(Fixture.resources(data, "Provenance").first?["extension"] as? [[String: Any]])
            #expect(gaps.count == 1 + (missing ? Fixture.gaps.count : 0))
        }
    }

    @Test("The same input gives the same bytes; another version uuid gives other fullUrls")
    func deterministic() throws {
        let input = Fixture.input(.atrialFibrillationWarfarin)
        let a = try HandoffDocumentBuilder.build(input)
        let b = try HandoffDocumentBuilder.build(input)
        #expect(a == b)
        var other = input
        other.versionID = UUID(uuidString: "99999999-8888-4777-8666-555555555555")!
        let c = try HandoffDocumentBuilder.build(other)
        let urls = { (data: Data) in
            Set((Fixture.tree(data)["entry"] as! [[String: Any]]).map { $0["fullUrl"] as! String })
        }
        #expect(urls(a).isDisjoint(with: urls(c)))
        #expect(urls(a).count == (Fixture.tree(a)["entry"] as! [Any]).count)
    }

    @Test("Bundle and Composition carry the contract's identity; Composition first with the mPSC sections")
    func identityAndSections() throws {
        let data = try HandoffDocumentBuilder.build(Fixture.input(.dialysis))
        let bundle = Fixture.tree(data)
        #expect(bundle["resourceType"] as? String == "Bundle")
        #expect(bundle["type"] as? String == "document")
        #expect((bundle["meta"] as? [String: Any])?["versionId"] as? String == "1")
        let identifier = try #require(bundle["identifier"] as? [String: String])
        #expect(
            identifier == [
                "system": "urn:ietf:rfc:3986", "value": "urn:uuid:\(Fixture.versionID.uuidString.lowercased())",
            ]
        )
        #expect(bundle["timestamp"] as? String == "2026-11-27T09:00:00Z")
        let first = try #require((bundle["entry"] as? [[String: Any]])?.first?["resource"] as? [String: Any])
        #expect(first["resourceType"] as? String == "Composition")
        #expect(
            first["identifier"] as? [String: String]
                == ["system": "urn:ietf:rfc:3986", "value": "urn:uuid:\(Fixture.documentSet.uuidString.lowercased())"]
        )
        let sections = try #require(first["section"] as? [[String: Any]])
        let codes = sections.compactMap {
            (($0["code"] as? [String: Any])?["coding"] as? [[String: String]])?.first?["code"]
        }
        for loinc in ["10154-3", "10164-2", "11450-4", "10160-0", "48765-2", "8716-3", "47519-4", "30954-2", "48768-6"]
        {
            #expect(codes.contains(loinc), "section \(loinc)")
        }
        for local in ["red-flags", "prehospital-treatment", "incident", "consent", "provenance"] {
            #expect(codes.contains(local), "section \(local)")
        }
        #expect(codes.first == "red-flags")
    }

    @Test("Patient: kanji and kana names marked IDE and SYL, birth date, sex, address; JP Core Coverage identifiers")
    func patientAndCoverage() throws {
        let input = Fixture.input(.insulinDiabetic)
        guard case .qualification(let q?) = input.records[.qualification] else {
            Issue.record("no qualification")
            return
        }
        let data = try HandoffDocumentBuilder.build(input)
        let patient = try #require(Fixture.resources(data, "Patient").first)
        let names = try #require(patient["name"] as? [[String: Any]])
        #expect(names.count == 2)
        let representation = names.map {
            (($0["extension"] as? [[String: Any]])?.first?["valueCode"] as? String, $0["text"] as? String)
        }
        #expect(representation.map(\.0) == ["IDE", "SYL"])
        #expect(representation.map(\.1) == [q.name, q.nameKana])
        #expect(
            (names[0]["extension"] as? [[String: Any]])?.first?["url"] as? String
                == "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
        )
        #expect(
            patient["birthDate"] as? String
                == String(format: "%04d-%02d-%02d", q.birthDate.year, q.birthDate.month, q.birthDate.day)
        )
        #expect((patient["address"] as? [[String: Any]])?.first?["text"] as? String == q.address)
        // The patient's identifier is the incident's random set uuid, never a card number.
        let patientID = (patient["identifier"] as? [[String: String]])?.first
        #expect(patientID?["system"] == "urn:kyukyu:incident-patient")
        #expect(data.range(of: Data(q.number.utf8)) != nil)  // the insurance number is in the Coverage, on purpose

        let coverage = try #require(Fixture.resources(data, "Coverage").first)
        let member = (coverage["identifier"] as? [[String: Any]])?.first
        #expect(member?["system"] as? String == "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID")
        #expect(member?["value"] as? String == "\(q.insurerNumber):\(q.symbol):\(q.number):\(q.branchNumber)")
        let urls = (coverage["extension"] as? [[String: Any]])?.compactMap { $0["url"] as? String } ?? []
        #expect(urls.contains { $0.hasSuffix("JP_Coverage_InsuredPersonNumber") })
        let insurer = Fixture.resources(data, "Organization").first {
            (($0["identifier"] as? [[String: String]])?.first?["system"])
                == "http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber"
        }
        #expect((insurer?["identifier"] as? [[String: String]])?.first?["value"] == q.insurerNumber)
    }

    @Test(
        "Medications: one MedicationStatement per drug, the latest dispensing (RedFlags.currentMedications), YJ coded"
    )
    func medicationsDeduplicated() throws {
        let input = Fixture.input(.elderlyPolypharmacy)
        guard case .medications(let all) = input.records[.medications] else {
            Issue.record("no medications")
            return
        }
        let current = RedFlags.currentMedications(all, today: Fixture.today)
        #expect(all.count > current.count * 10)  // weekly for years: deduplication matters
        let data = try HandoffDocumentBuilder.build(input)
        let statements = Fixture.resources(data, "MedicationStatement").filter { $0["status"] as? String == "active" }
        #expect(statements.count == current.count)
        let codings = statements.compactMap {
            (($0["medicationCodeableConcept"] as? [String: Any])?["coding"] as? [[String: String]])?.first
        }
        #expect(Set(codings.compactMap { $0["code"] }) == Set(current.map(\.yjCode)))
        #expect(codings.allSatisfy { $0["system"] == "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code" })
        let starts = statements.compactMap { ($0["effectivePeriod"] as? [String: String])?["start"] }
        let latest = current.map {
            String(format: "%04d-%02d-%02d", $0.dispensedDate.year, $0.dispensedDate.month, $0.dispensedDate.day)
        }
        #expect(starts.sorted() == latest.sorted())
    }

    @Test("Without the dispensing category, undispensed electronic prescriptions still show, as intended")
    func undispensedPrescriptions() throws {
        var input = Fixture.input(.insulinDiabetic, missing: true)
        #expect(input.records[.medications] == nil)
        guard case .prescriptions(var prescriptions) = input.records[.prescriptions], prescriptions.count > 2 else {
            Issue.record("no prescriptions")
            return
        }
        // One issued today and not dispensed yet; one never dispensed whose days ran out long ago (not shown).
        prescriptions[0].issuedDate = Fixture.today
        prescriptions[0].dispensed = false
        prescriptions[prescriptions.count - 1].dispensed = false
        prescriptions[prescriptions.count - 1].issuedDate = Fixture.today.adding(days: -400)
        input.records[.prescriptions] = .prescriptions(prescriptions)
        let pending = Set(
            prescriptions.filter { !$0.dispensed && $0.issuedDate.adding(days: $0.days) >= Fixture.today }.map(\.yjCode)
        )
        #expect(pending == [prescriptions[0].yjCode])
        let statements = Fixture.resources(try HandoffDocumentBuilder.build(input), "MedicationStatement")
        #expect(statements.allSatisfy { $0["status"] as? String == "intended" })
        let codes = statements.compactMap {
            (($0["medicationCodeableConcept"] as? [String: Any])?["coding"] as? [[String: String]])?.first?["code"]
        }
        #expect(Set(codes) == pending)
        #expect(codes.count == pending.count)
    }

    @Test("Red flags: the anticoagulant and dialysis are flagged and point at their resources")
    func redFlags() throws {
        for (archetype, word) in [(Archetype.atrialFibrillationApixaban, "抗凝固薬"), (.dialysis, "透析患者")] {
            let data = try HandoffDocumentBuilder.build(Fixture.input(archetype))
            let composition = try #require(Fixture.resources(data, "Composition").first)
            let flags = try #require((composition["section"] as? [[String: Any]])?.first)
            let div = try #require((flags["text"] as? [String: String])?["div"])
            #expect(div.contains(word))
            let entries = (flags["entry"] as? [[String: String]])?.compactMap { $0["reference"] } ?? []
            #expect(!entries.isEmpty)
        }
        let healthy = try HandoffDocumentBuilder.build(Fixture.input(.healthyYoungAdult))
        let flags = (Fixture.resources(healthy, "Composition").first?["section"] as? [[String: Any]])?.first
        #expect(flags?["entry"] == nil)
        #expect((flags?["emptyReason"] as? [String: Any]) != nil)
    }

    @Test("Codes: ICD-10 2013, YJ, JLAC10, LOINC vitals and GCS 9269-2 with its components, JCS")
    func codeSystems() throws {
        let data = try HandoffDocumentBuilder.build(Fixture.input(.insulinDiabetic))
        let text = String(decoding: data, as: UTF8.self)
        for system in [HandoffURI.icd10, HandoffURI.yjCode, HandoffURI.jlac10, HandoffURI.loinc, HandoffURI.jcs] {
            #expect(text.contains("\"\(system)\""), "\(system)")
        }
        let gcs = Fixture.resources(data, "Observation").first {
            (($0["code"] as? [String: Any])?["coding"] as? [[String: String]])?.first?["code"] == "9269-2"
        }
        #expect(gcs?["valueInteger"] as? Int == 13)
        let components = (gcs?["component"] as? [[String: Any]])?.compactMap {
            (($0["code"] as? [String: Any])?["coding"] as? [[String: String]])?.first?["code"]
        }
        #expect(components == ["9267-6", "9270-0", "9268-4"])
        #expect(text.contains("\"II-10\""))
        // Japanese text is UTF-8, not escaped.
        #expect(text.contains("転倒後の頭痛（テスト）"))
    }

    @Test("Version 2 replaces version 1 (Composition.relatesTo) and the validator returns it")
    func secondVersion() throws {
        let data = try HandoffDocumentBuilder.build(Fixture.input(.epilepsy, version: 2))
        let document = try HandoffDocumentValidator.validate(data)
        #expect(document.version == 2)
        #expect(document.replaces == "urn:uuid:11111111-2222-4333-8444-555555555555")
    }

    @Test("The builder refuses input out of form, naming the field and not its value")
    func refusesBadInput() throws {
        var noPrevious = Fixture.input(.epilepsy)
        noPrevious.version = 2
        var firstWithPrevious = Fixture.input(.epilepsy)
        firstWithPrevious.previousVersionID = UUID()
        var device = Fixture.input(.epilepsy)
        device.deviceID = "ambulance 01/../"
        var anchor = Fixture.input(.epilepsy)
        anchor.auditAnchor.signature = "not base64!"
        var hash = Fixture.input(.epilepsy)
        hash.auditAnchor.hash = "XYZ"
        var word = Fixture.input(.epilepsy)
        word.gaps = [CategoryGap(.visits, status: "Late ")]
        var vitals = Fixture.input(.epilepsy)
        vitals.observations.vitals[0].spo2 = 140
        for input in [noPrevious, firstWithPrevious, device, anchor, hash, word, vitals] {
            #expect(throws: HandoffBuildError.invalidInput("")) { try HandoffDocumentBuilder.build(input) }
        }
        do {
            _ = try HandoffDocumentBuilder.build(device)
        } catch {
            #expect(!error.reason.contains("ambulance 01"))
        }
    }
}
