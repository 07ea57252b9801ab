import Foundation
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuFHIR
import KyukyuOnshi

/// Synthetic inputs for the document: every archetype, with and without the crew's vitals, with every category or
/// some missing.
enum Fixture {
    static let today = OnshiDate(year: 2026, month: 11, day: 27)
    /// 2026-11-27T09:00:00Z (18:00 in Japan, the same day).
    static let builtAt = Date(timeIntervalSince1970: 1_795_770_000)
    static let hospital = HospitalCode(rawValue: "1312345678")!
    static let documentSet = UUID(uuidString: "6F1C2A34-5B6D-4E7F-8091-A2B3C4D5E6F7")!
    static let versionID = UUID(uuidString: "0A1B2C3D-4E5F-4061-8273-8495A6B7C8D9")!
    /// The categories left out in the "some missing" variant, with the gateway's words.
    static let gaps = [
        CategoryGap(.medications, status: "timed-out"), CategoryGap(.allergies, status: "late"),
        CategoryGap(.checkups, status: "failed"),
    ]

    /// The first synthetic patient of `archetype` (holders 1–7 cover every archetype).
    static func patient(_ archetype: Archetype) -> SyntheticPatient {
        let number = (1...7).first { Archetype.of(patient: $0, today: today) == archetype }!
        return SyntheticPatient(number: number, today: today)
    }

    static func anchor() -> AuditAnchor {
        AuditAnchor(
            sequence: 42,
            hash: String(repeating: "ab", count: 32),
            signedAtMilliseconds: 1_795_769_998_123,
            signingPublicKey: Data(repeating: 7, count: 32).base64EncodedString(),
            signature: Data(repeating: 9, count: 64).base64EncodedString()
        )
    }

    /// A crew's full set of observations: complaint, trauma, onset, priority, two timed vital sets, treatment, ETA.
    static func observations() -> CrewObservations {
        var o = CrewObservations()
        o.chiefComplaint = .trauma
        o.complaintNote = "転倒後の頭痛（テスト）"
        o.trauma = TraumaDetails(mechanism: .fallFromHeight, injuries: [.head, .upperLimb])
        o.onset = OnsetTime(.lastKnownWell, at: builtAt.addingTimeInterval(-3600))
        o.priority = .red
        var first = VitalSigns(takenAt: builtAt.addingTimeInterval(-900))
        first.jcs = .ii10
        first.gcs = try! GCSScore(eye: 3, verbal: 4, motor: 6)
        first.heartRate = 112
        first.systolic = 92
        first.diastolic = 60
        first.respiratoryRate = 24
        first.spo2 = 93
        first.temperature = 36.8
        first.bloodGlucose = 142
        var second = VitalSigns(takenAt: builtAt.addingTimeInterval(-300))
        second.jcs = .i3
        second.heartRate = 104
        second.systolic = 100
        o.vitals = [first, second]
        o.treatments = [
            TreatmentGiven(.oxygen, at: builtAt.addingTimeInterval(-840)),
            TreatmentGiven(.spinalImmobilisation, at: builtAt.addingTimeInterval(-600)),
        ]
        o.etaMinutes = 12
        o.etaRecordedAt = builtAt.addingTimeInterval(-60)
        o.hospital = hospital
        return o
    }

    static func input(
        _ archetype: Archetype,
        vitals: Bool = true,
        missing: Bool = false,
        version: Int = 1,
        versionID: UUID = versionID
    ) -> HandoffInput {
        let patient = patient(archetype)
        var records: [MedicalCategory: CategoryRecords] = [:]
        for category in MedicalCategory.allCases { records[category] = patient.records(category) }
        if missing { for gap in gaps { records[gap.category] = nil } }
        return HandoffInput(
            documentSet: documentSet,
            version: version,
            versionID: versionID,
            previousVersionID: version > 1 ? UUID(uuidString: "11111111-2222-4333-8444-555555555555")! : nil,
            builtAt: builtAt,
            dataAsOf: builtAt.addingTimeInterval(-1200),
            records: records,
            gaps: missing ? gaps : [],
            observations: vitals ? observations() : CrewObservations(),
            consent: archetype == .epilepsy ? .lifeOrBodyException : .verbal,
            crewID: "crew-07",
            deviceID: "ambulance-01",
            hospital: hospital,
            hospitalName: "架空市立救命救急センター（テスト）",
            auditAnchor: anchor()
        )
    }

    /// Every variant the issue asks for, named for the file it is written to.
    static var variants: [(name: String, input: HandoffInput)] {
        Archetype.allCases.flatMap { archetype in
            [true, false].flatMap { vitals in
                [false, true].map { missing in
                    (
                        "\(archetype.rawValue)-\(vitals ? "vitals" : "novitals")-\(missing ? "missing" : "complete")",
                        input(archetype, vitals: vitals, missing: missing)
                    )
                }
            }
        }
    }

    /// The document as a mutable JSON tree.
    static func tree(_ data: Data) -> [String: Any] {
        try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static func data(_ tree: [String: Any]) -> Data {
        try! JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys])
    }

    /// The resources of a document of one type.
    static func resources(_ data: Data, _ type: String) -> [[String: Any]] {
        let entries = tree(data)["entry"] as! [[String: Any]]
        return entries.compactMap { $0["resource"] as? [String: Any] }.filter { $0["resourceType"] as? String == type }
    }
}
