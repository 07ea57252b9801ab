import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuSummary
import Testing

@Suite("Red flags and current medications")
struct RedFlagTests {
    static let today = OnshiDate(year: 2026, month: 11, day: 27)

    static func flags(holder: Int) -> [RedFlag] {
        let patient = SyntheticPatient(number: holder, today: today)
        guard case .medications(let medications) = patient.records(.medications),
            case .treatment(let treatments) = patient.records(.treatment),
            case .allergies(let allergies) = patient.records(.allergies),
            case .surgery(let surgeries) = patient.records(.surgery)
        else { return [] }
        return RedFlags.compute(
            medications: medications,
            treatments: treatments,
            allergies: allergies,
            surgeries: surgeries,
            today: today
        )
    }

    static func drugClasses(_ flags: [RedFlag]) -> [DrugClass] {
        flags.compactMap { if case .drug(let drugClass, _) = $0 { drugClass } else { nil } }
    }

    /// Every synthetic archetype (holders 1–7), and the flags a paramedic must see for it.
    @Test(arguments: [
        (1, Archetype.elderlyPolypharmacy, [DrugClass.antiplatelet], false, 2),
        (2, .insulinDiabetic, [.insulin, .otherHypoglycaemic], false, 1),
        (3, .atrialFibrillationApixaban, [.anticoagulant], false, 0),
        (4, .atrialFibrillationWarfarin, [.anticoagulant], false, 0),
        (5, .epilepsy, [.antiepileptic], false, 1),
        (6, .dialysis, [], true, 1),
        (7, .healthyYoungAdult, [], false, 0),
    ])
    func everyArchetype(holder: Int, archetype: Archetype, classes: [DrugClass], dialysis: Bool, allergies: Int) {
        #expect(SyntheticPatient(number: holder, today: Self.today).archetype == archetype)
        let flags = Self.flags(holder: holder)
        #expect(Self.drugClasses(flags) == classes, "\(flags)")
        #expect(flags.contains { if case .dialysis = $0 { true } else { false } } == dialysis, "\(flags)")
        #expect(flags.filter { if case .allergy = $0 { true } else { false } }.count == allergies, "\(flags)")
    }

    @Test func theDrugsOfAFlagAreNamed() {
        let flags = Self.flags(holder: 2)
        #expect(flags.contains(.drug(.otherHypoglycaemic, names: ["メトホルミン塩酸塩錠"])), "\(flags)")
        guard case .drug(.insulin, let names) = flags.first else {
            Issue.record("insulin first: \(flags)")
            return
        }
        #expect(names.count == 2, "glargine and aspart")
    }

    @Test(arguments: [
        ("3332001F1030", DrugClass.anticoagulant), ("3339004F2024", .anticoagulant), ("3334400A1030", .anticoagulant),
        ("3399007H1021", .antiplatelet), ("2492415G1037", .insulin), ("3962002F2047", .otherHypoglycaemic),
        ("3961008F1020", .otherHypoglycaemic), ("1139010F2021", .antiepileptic), ("2456001F1310", .corticosteroid),
        ("2454002F1020", .corticosteroid), ("8114004X1010", .opioid), ("8219400A1020", .opioid),
    ])
    func drugClassesFromTheYJCode(code: String, drugClass: DrugClass) {
        #expect(DrugClass(yjCode: code) == drugClass)
    }

    @Test(arguments: [
        "2451400A1034",  // adrenaline: a hormone of the adrenal medulla, not a steroid
        "8121700X1019",  // cocaine: a narcotic, not an opioid
        "2171022F1063",  // amlodipine
        "1149019F1560",  // loxoprofen
        "2491400A1020",  // another hormone of 249, not insulin
        "", "33", "ABCD004F2024",
    ])
    func otherCodesAreNoClass(code: String) {
        #expect(DrugClass(yjCode: code) == nil)
    }

    /// 200 dispensings become one row per drug, the latest; drugs no longer supplied drop out.
    @Test func currentMedicationsAreTheLatestDispensingOfEachDrug() {
        let patient = SyntheticPatient(number: 1, today: Self.today)
        guard case .medications(let all) = patient.records(.medications) else {
            Issue.record("no medications")
            return
        }
        let current = RedFlags.currentMedications(all, today: Self.today)
        #expect(all.count > 1000)
        #expect(Set(current.map(\.yjCode)).count == current.count, "one row per drug")
        for medication in current {
            let latest = all.filter { $0.yjCode == medication.yjCode }.map(\.dispensedDate).max()
            #expect(medication.dispensedDate == latest)
        }
        #expect((1...15).contains(current.count), "\(current.count)")

        var stopped = all[0]
        stopped.yjCode = "9999999F9999"
        stopped.dispensedDate = Self.today.adding(days: -(stopped.days + RedFlags.supplyGraceDays + 1))
        #expect(!RedFlags.currentMedications([stopped], today: Self.today).contains(stopped))
        stopped.dispensedDate = stopped.dispensedDate.adding(days: 1)
        #expect(RedFlags.currentMedications([stopped], today: Self.today) == [stopped])
    }

    @Test func surgeryIsRecentForNinetyDays() {
        let recent = Surgery(
            date: Self.today.adding(days: -RedFlags.recentSurgeryDays),
            code: "K000",
            name: "試験手術（架空）",
            institutionName: "架空市立総合病院",
            synthetic: true
        )
        var old = recent
        old.date = recent.date.adding(days: -1)
        let flags = RedFlags.compute(
            medications: [],
            treatments: [],
            allergies: [],
            surgeries: [old, recent],
            today: Self.today
        )
        #expect(flags == [.recentSurgery(name: "試験手術（架空）", date: recent.date)])
    }
}
