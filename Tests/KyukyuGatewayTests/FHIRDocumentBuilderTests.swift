import Foundation
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuFHIR
import KyukyuOnshi
import KyukyuWorkflow
import Testing

@testable import KyukyuGateway

/// The workflow's build request through KyukyuFHIR's builder, checked by the receiver's validator.
@Suite("Gateway: the document the outbox sends")
struct FHIRDocumentBuilderTests {
    static let hospital = ReceivingHospital(
        code: HospitalCode(rawValue: "9999999999")!,
        name: "テスト救命救急センター (架空)",
        url: "https://127.0.0.1:20640"
    )
    static let anchor = AuditAnchor(
        sequence: 42,
        hash: String(repeating: "ab", count: 32),
        signedAtMilliseconds: 1_800_000_000_000,
        signingPublicKey: Data(repeating: 1, count: 65).base64EncodedString(),
        signature: Data(repeating: 2, count: 64).base64EncodedString()
    )

    static func request(anchor: AuditAnchor?, consent: ConsentBasis?) -> HandoffBuildRequest {
        let today = OnshiDate(japanDayOf: Date(timeIntervalSince1970: 1_800_000_000))
        let patient = SyntheticPatient(number: 6, today: today)
        var records: [MedicalCategory: CategoryRecords] = [:]
        var status: [MedicalCategory: String] = [:]
        for category in MedicalCategory.allCases where category != .medications {
            records[category] = patient.records(category)
            status[category] = CategoryProgress.Status.arrived.rawValue
        }
        status[.medications] = CategoryProgress.Status.timedOut.rawValue
        var observations = CrewObservations()
        observations.priority = .red
        return HandoffBuildRequest(
            documentSet: UUID(),
            version: 1,
            versionID: UUID(),
            previousVersionID: nil,
            builtAt: Date(timeIntervalSince1970: 1_800_000_100),
            dataAsOf: Date(timeIntervalSince1970: 1_800_000_050),
            records: records,
            categoryStatus: status,
            observations: observations,
            consent: consent,
            crewID: "TEST-A1",
            terminalID: "ambulance-01",
            hospital: hospital,
            anchor: anchor
        )
    }

    @Test func theDocumentValidatesAndNamesSetVersionHospitalSenderAndAnchor() throws {
        let request = Self.request(anchor: Self.anchor, consent: .verbal)
        let data = try FHIRDocumentBuilder().build(request)
        let document = try HandoffDocumentValidator.validate(data)
        #expect(document.documentSet == request.documentSet)
        #expect(document.version == 1)
        #expect(document.versionIdentifier == "urn:uuid:\(request.versionID.uuidString.lowercased())")
        #expect(document.hospital == Self.hospital.code)
        #expect(document.senderDevice == "ambulance-01")
        #expect(document.auditAnchor == Self.anchor)
        // The category that timed out is named as a gap, with its status word.
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(HandoffURI.categoryGap))
        #expect(text.contains("timed-out"))
    }

    @Test func withoutConsentTheDocumentStillGoesAndSaysSo() throws {
        var request = Self.request(anchor: Self.anchor, consent: nil)
        request.records = [:]
        request.categoryStatus = [:]
        let data = try FHIRDocumentBuilder().build(request)
        _ = try HandoffDocumentValidator.validate(data)
        #expect(String(decoding: data, as: UTF8.self).contains("同意未記録"))
    }

    @Test func withoutASignedAuditHeadNothingIsBuilt() {
        #expect(throws: HandoffBuildError.self) {
            try FHIRDocumentBuilder().build(Self.request(anchor: nil, consent: .verbal))
        }
    }
}
