import Foundation
import KyukyuOnshi

enum Fixtures {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static let header = MessageHeader(
        processedAt: now,
        medicalInstitutionCode: "9912345678",
        referenceClassification: MessageHeader.emergencyReference,
        resultSegment: .success,
        errorCode: nil,
        messageID: "req-0001"
    )
    static let errorHeader = MessageHeader(
        processedAt: now,
        medicalInstitutionCode: "9912345678",
        resultSegment: .error,
        errorCode: OnshiResultCode.certificateExpired
    )
    static let day = OnshiDate(year: 2026, month: 11, day: 2)

    static let qualification = Qualification(
        insurerNumber: "06139999",
        insurerName: "テスト健康保険組合 & <架空>",
        symbol: "101",
        number: "2345",
        branchNumber: "01",
        insuredKind: .insured,
        name: "佐藤\u{3000}花子",
        nameKana: "サトウ\u{3000}ハナコ",
        birthDate: OnshiDate(year: 1950, month: 2, day: 28),
        sex: .female,
        postalCode: "999-0001",
        address: "東京都架空市テスト町1丁目2番3号（SYNTHETIC）",
        validFrom: OnshiDate(year: 2020, month: 4, day: 1),
        validUntil: nil,
        copaymentPercent: 10,
        synthetic: true
    )

    static let medication = Medication(
        dispensedDate: day,
        yjCode: "3339001F1020",
        genericName: "アピキサバン錠",
        brandName: "エリキュース錠5mg",
        dose: 10,
        unit: "mg",
        usage: "1日2回朝夕食後",
        days: 28,
        pharmacyName: "テスト薬局",
        prescriberName: "架空市立病院",
        synthetic: true
    )

    static let allRecords: [CategoryRecords] = [
        .qualification(qualification),
        .qualification(nil),
        .visits([
            Visit(
                date: day,
                institutionCode: "1312345678",
                institutionName: "架空市立病院",
                department: "循環器内科",
                setting: .outpatient,
                synthetic: true
            ),
            Visit(
                date: day.adding(days: -30),
                institutionCode: "1312345679",
                institutionName: "テスト診療所",
                department: nil,
                setting: .emergency,
                synthetic: true
            ),
        ]),
        .diagnoses([
            Diagnosis(
                icd10: "I48.9",
                name: "心房細動",
                startDate: OnshiDate(year: 2021, month: 5, day: 10),
                outcome: .ongoing,
                institutionName: "架空市立病院",
                synthetic: true
            )
        ]),
        .medications([medication, medication]),
        .prescriptions([
            Prescription(
                prescriptionID: "RX-SYN-0001",
                issuedDate: day,
                institutionName: "架空市立病院",
                yjCode: "3969010F1027",
                genericName: "メトホルミン塩酸塩錠",
                brandName: nil,
                dose: 1500,
                unit: "mg",
                usage: "1日3回毎食後",
                days: 30,
                dispensed: false,
                synthetic: true
            )
        ]),
        .surgery([
            Surgery(
                date: OnshiDate(year: 2023, month: 1, day: 5),
                code: "K6335",
                name: "鼠径ヘルニア手術",
                institutionName: "架空市立病院",
                synthetic: true
            )
        ]),
        .treatment([
            Treatment(
                date: day,
                code: "J0384",
                name: "人工腎臓（慢性維持透析）",
                institutionName: "テスト透析クリニック",
                dialysis: true,
                synthetic: true
            )
        ]),
        .checkups([
            Checkup(
                date: day,
                institutionName: "テスト健診センター",
                items: [
                    .init(jlac10: "3D046000001906202", name: "HbA1c", value: "8.1", unit: "%", outOfRange: true),
                    .init(jlac10: "1A020000000191111", name: "尿蛋白", value: "(-)", unit: nil, outOfRange: false),
                ],
                synthetic: true
            )
        ]),
        .allergies([
            Allergy(
                kind: .drug,
                substance: "ペニシリン系抗菌薬",
                yjCode: "6131001C1025",
                reaction: "蕁麻疹",
                recordedDate: day,
                synthetic: true
            ),
            Allergy(kind: .food, substance: "そば", yjCode: nil, reaction: nil, recordedDate: day, synthetic: true),
        ]),
        .visits([]),
    ]

    static func categoryResponse(_ records: CategoryRecords) -> CategoryResponse {
        CategoryResponse(
            header: header,
            result: records.count == 0
                ? ProcessingResult(status: .completed, code: OnshiResultCode.noRecords)
                : .completed,
            category: records.category,
            records: records
        )
    }

    static func xml(_ s: String) -> [UInt8] { Array(s.utf8) }
}
