import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import Testing

@Suite struct PopulationTests {
    let today = OnshiDate(year: 2026, month: 11, day: 23)

    @Test(arguments: 1...30)
    func deterministicAndSynthetic(number: Int) throws {
        let a = SyntheticPatient(number: number, today: today)
        let b = SyntheticPatient(number: number, today: today)
        #expect(a == b)
        for category in MedicalCategory.allCases {
            let records = a.records(category)
            #expect(records == b.records(category))
            #expect(records.category == category)
            let response = CategoryResponse(
                header: Fixture.header,
                result: .completed,
                category: category,
                records: records
            )
            let bytes = OnshiXML.encode(response)
            #expect(try OnshiXML.decode(CategoryResponse.self, from: bytes) == response)
            // Every record carries the synthetic marker.
            let text = String(decoding: bytes, as: UTF8.self)
            let recordElements = text.components(separatedBy: "<\(category.recordElementName) ").count - 1
            let marked = text.components(separatedBy: "<\(category.recordElementName) synthetic=\"true\">").count - 1
            #expect(recordElements == records.count)
            #expect(marked == records.count)
        }
        guard case .qualification(let q?) = a.records(.qualification) else {
            Issue.record("no qualification")
            return
        }
        let holder = SyntheticHolder(number: number)
        #expect(q.name == holder.fullName)
        #expect(q.address.contains(SyntheticHolder.syntheticMarker))
        #expect(q.synthetic)
    }

    @Test func archetypesOfTheFirstHolders() {
        let expected: [Archetype] = [
            .elderlyPolypharmacy, .insulinDiabetic, .atrialFibrillationApixaban, .atrialFibrillationWarfarin,
            .epilepsy, .dialysis, .healthyYoungAdult,
        ]
        for (i, archetype) in expected.enumerated() {
            #expect(SyntheticPatient(number: i + 1, today: today).archetype == archetype)
        }
    }

    func medications(_ n: Int) -> [Medication] {
        guard case .medications(let m) = SyntheticPatient(number: n, today: today).records(.medications) else {
            return []
        }
        return m
    }

    func diagnoses(_ n: Int) -> [Diagnosis] {
        guard case .diagnoses(let d) = SyntheticPatient(number: n, today: today).records(.diagnoses) else { return [] }
        return d
    }

    @Test func historiesMakeSense() throws {
        // AF on apixaban: DOAC + AF diagnosis.
        #expect(medications(3).contains { $0.genericName.contains("アピキサバン") })
        #expect(diagnoses(3).contains { $0.icd10.hasPrefix("I48") })
        // AF on warfarin, with PT-INR monitoring.
        #expect(medications(4).contains { $0.genericName.contains("ワルファリン") })
        #expect(diagnoses(4).contains { $0.icd10.hasPrefix("I48") })
        // Insulin diabetic: glargine, E11, HbA1c out of range.
        #expect(medications(2).contains { $0.genericName.contains("グラルギン") })
        #expect(diagnoses(2).contains { $0.icd10.hasPrefix("E11") })
        guard case .checkups(let checkups) = SyntheticPatient(number: 2, today: today).records(.checkups) else {
            Issue.record("no checkups")
            return
        }
        #expect(checkups.count == 5)
        #expect(checkups.allSatisfy { $0.items.contains { $0.name.hasPrefix("HbA1c") && $0.outOfRange } })
        // Dialysis: ESRD, dialysis treatment three times a week.
        #expect(diagnoses(6).contains { $0.icd10 == "N18.5" })
        guard case .treatment(let treatment) = SyntheticPatient(number: 6, today: today).records(.treatment) else {
            Issue.record("no treatment")
            return
        }
        #expect(treatment.count > 300)
        #expect(treatment.allSatisfy { $0.dialysis })
        // Epilepsy.
        #expect(medications(5).contains { $0.genericName.contains("レベチラセタム") })
        #expect(diagnoses(5).contains { $0.icd10.hasPrefix("G40") })
        // Healthy young adult: nothing but the qualification.
        let healthy = SyntheticPatient(number: 7, today: today)
        #expect(healthy.age < 40)
        for category in MedicalCategory.allCases where category != .qualification {
            #expect(healthy.records(category).count == 0, "\(category)")
        }
        // Every drug has a 12-character YJ code.
        for n in 1...7 { #expect(medications(n).allSatisfy { $0.yjCode.utf8.count == 12 }) }
    }

    @Test func polypharmacyIsFifteenDrugsForFiveYearsAndMegabytes() {
        let patient = SyntheticPatient(number: 1, today: today)
        #expect(patient.age >= 75)
        let meds = medications(1)
        #expect(Set(meds.map(\.yjCode)).count == 15)
        let oldest = meds.map(\.dispensedDate).min()!
        #expect(oldest.daysSinceEpoch - today.daysSinceEpoch < -(5 * 365 - 14))
        let bytes = OnshiXML.encode(
            CategoryResponse(
                header: Fixture.header,
                result: .completed,
                category: .medications,
                records: .medications(meds)
            )
        )
        #expect(bytes.count > 1_000_000)
    }

    @Test(arguments: 1...12)
    func lookBackPeriodsHold(number: Int) {
        let patient = SyntheticPatient(number: number, today: today)
        let fiveYears = OnshiDate(year: today.year - 5, month: today.month, day: today.day)
        if case .medications(let m) = patient.records(.medications) {
            #expect(m.allSatisfy { $0.dispensedDate >= fiveYears && $0.dispensedDate <= today })
        }
        if case .prescriptions(let p) = patient.records(.prescriptions) {
            #expect(p.allSatisfy { today.daysSinceEpoch - $0.issuedDate.daysSinceEpoch <= 100 })
        }
        if case .visits(let v) = patient.records(.visits) {
            #expect(v.allSatisfy { $0.date >= fiveYears })
        }
        #expect(patient.records(.checkups).count <= 5)
    }

    @Test func insurersFollowAge() {
        for n in 1...30 {
            let patient = SyntheticPatient(number: n, today: today)
            if patient.age >= 75 {
                #expect(patient.insurer.insurerNumber.hasPrefix("39"))
                #expect(patient.insurer.copaymentPercent == 10)
            } else {
                #expect([6, 8].contains(patient.insurer.insurerNumber.count))
            }
        }
    }
}
