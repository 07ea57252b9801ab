public import Foundation
public import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuFHIR
import KyukyuOnshi

/// Pre-arrival documents for synthetic patients, built by the gateway's own builder (``HandoffDocumentBuilder``),
/// for benchmarks and load tests of the hospital's receiver. No real patient: the records are the stub's synthetic
/// population's.
public enum SyntheticHandoff {
    /// One document ready to post.
    public struct Document: Sendable {
        /// The FHIR document Bundle, as the gateway sends it.
        public var body: Data
        /// This version's id (the POST's idempotency key is `urn:uuid:<versionID>`).
        public var versionID: UUID
        /// The document set (the patient's handoff) this version belongs to.
        public var documentSet: UUID
    }

    /// The day the synthetic records are read on.
    public static let today = OnshiDate(year: 2026, month: 11, day: 27)

    /// A pre-arrival document for synthetic patient `index % 7 + 1`, from `device` to `hospital`, with the crew's
    /// vitals; with `records` false, the crew's observations only (no card was read).
    public static func document(
        device: String,
        index: Int,
        hospital: HospitalCode,
        hospitalName: String,
        records withRecords: Bool = true
    ) throws -> Document {
        let patient = SyntheticPatient(number: index % 7 + 1, today: today)
        var records: [MedicalCategory: CategoryRecords] = [:]
        if withRecords {
            for category in MedicalCategory.allCases { records[category] = patient.records(category) }
        }
        let builtAt = Date()
        var observations = CrewObservations()
        observations.chiefComplaint = .chestPain
        observations.priority = .red
        var vitals = VitalSigns(takenAt: builtAt.addingTimeInterval(-300))
        vitals.heartRate = 100 + index % 20
        vitals.systolic = 120
        vitals.diastolic = 80
        vitals.spo2 = 95
        observations.vitals = [vitals]
        observations.etaMinutes = 10
        observations.etaRecordedAt = builtAt
        observations.hospital = hospital
        let set = UUID()
        let version = UUID()
        let input = HandoffInput(
            documentSet: set,
            version: 1,
            versionID: version,
            previousVersionID: nil,
            builtAt: builtAt,
            dataAsOf: builtAt.addingTimeInterval(-60),
            records: records,
            gaps: [],
            observations: observations,
            consent: .verbal,
            crewID: "BENCH-CREW",
            deviceID: device,
            hospital: hospital,
            hospitalName: hospitalName,
            auditAnchor: AuditAnchor(
                sequence: Int64(index + 1),
                hash: String(repeating: "ab", count: 32),
                signedAtMilliseconds: Int64(builtAt.timeIntervalSince1970 * 1000),
                signingPublicKey: Data(repeating: 7, count: 32).base64EncodedString(),
                signature: Data(repeating: 9, count: 64).base64EncodedString()
            )
        )
        return Document(body: try HandoffDocumentBuilder.build(input), versionID: version, documentSet: set)
    }
}
