import Foundation
import KyukyuDomain
import KyukyuFHIR
import KyukyuWorkflow

/// The workflow's document builder, on KyukyuFHIR: the FHIR R4 document Bundle (docs/handoff-document.md).
struct FHIRDocumentBuilder: HandoffDocumentBuilding {
    /// Statuses that are not gaps: the category arrived in time, or onshi holds nothing for it.
    static let complete: Set<String> = [
        CategoryProgress.Status.arrived.rawValue, CategoryProgress.Status.noneOnRecord.rawValue,
    ]

    func build(_ request: HandoffBuildRequest) throws -> Data {
        guard let anchor = request.anchor else {
            throw HandoffBuildError.invalidInput("the audit trail has no signed head to anchor the document")
        }
        var gaps: [CategoryGap] = []
        for category in MedicalCategory.allCases {
            let status = request.categoryStatus[category] ?? "not-fetched"
            if !Self.complete.contains(status) { gaps.append(CategoryGap(category, status: status)) }
        }
        let input = HandoffInput(
            documentSet: request.documentSet,
            version: request.version,
            versionID: request.versionID,
            previousVersionID: request.previousVersionID,
            builtAt: request.builtAt,
            dataAsOf: request.dataAsOf ?? request.builtAt,
            records: request.records,
            gaps: gaps,
            observations: request.observations,
            consent: request.consent,
            crewID: request.crewID,
            deviceID: request.terminalID,
            hospital: request.hospital.code,
            hospitalName: request.hospital.name,
            auditAnchor: anchor
        )
        return try HandoffDocumentBuilder.build(input)
    }
}
