import Foundation
import KyukyuDomain
import KyukyuFHIR

/// The receiver's validator on KyukyuFHIR: the whole FHIR check of the pre-arrival document (structure,
/// cardinalities, code systems, references inside the bundle, the document's identity, destination, sender and
/// audit anchor), the one `kyukyu-hospital serve` uses. Its issues become the `OperationOutcome` the ambulance gets.
public struct FHIRHandoffValidator: HandoffDocumentValidating {
    /// The validator.
    public init() {}

    /// Validates `body` as a pre-arrival document.
    public func validate(_ body: Data) throws(HandoffValidationError) -> ValidatedDocumentInfo {
        let document: ValidatedHandoffDocument
        do {
            document = try HandoffDocumentValidator.validate(body)
        } catch {
            let issues = error.issues.map { issue in
                HandoffIssue(
                    severity: issue.severity.rawValue,
                    code: issue.code.rawValue,
                    diagnostics: issue.diagnostics,
                    expression: issue.expression.map { [$0] }
                )
            }
            if error.kind == "not-json" {
                throw .invalidJSON(issues.first?.diagnostics ?? "the body is not valid JSON")
            }
            throw .invalidDocument(issues)
        }
        return ValidatedDocumentInfo(
            documentSet: document.documentSet,
            version: document.version,
            versionIdentifier: document.versionIdentifier,
            bundleID: document.bundleID,
            destination: document.hospital,
            senderDevice: document.senderDevice,
            auditAnchor: document.auditAnchor,
            timestamp: document.timestamp,
            replaces: document.replaces
        )
    }
}
