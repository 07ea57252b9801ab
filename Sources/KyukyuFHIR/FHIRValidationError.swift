public import Foundation

/// One problem found in an incoming document, as an `OperationOutcome.issue` carries it. The diagnostics and the
/// expression never contain a value from the document (patient data): only element paths and what is expected.
public struct FHIRIssue: Sendable, Hashable, Codable {
    /// `OperationOutcome.issue.severity`.
    public enum Severity: String, Sendable, Hashable, Codable, CaseIterable {
        /// The issue stopped processing.
        case fatal
        /// The content is invalid.
        case error
        /// Not an error, worth knowing.
        case warning
        /// For information (the receiver's "stored").
        case information
    }

    /// `OperationOutcome.issue.code`: FHIR R4's IssueType value set (http://hl7.org/fhir/issue-type).
    public enum IssueType: String, Sendable, Hashable, Codable, CaseIterable {
        /// Invalid content.
        case invalid
        /// Structural issue (not JSON, wrong shape).
        case structure
        /// A required element is missing.
        case required
        /// An element's value is invalid.
        case value
        /// A content invariant failed.
        case invariant
        /// A security problem.
        case security
        /// Login failure.
        case login
        /// Unknown user.
        case unknown
        /// Session expired.
        case expired
        /// Forbidden.
        case forbidden
        /// Information suppressed.
        case suppressed
        /// Processing failure.
        case processing
        /// Content not supported.
        case notSupported = "not-supported"
        /// Duplicate.
        case duplicate
        /// Multiple matches.
        case multipleMatches = "multiple-matches"
        /// Not found (a reference that does not resolve).
        case notFound = "not-found"
        /// Deleted.
        case deleted
        /// Content too long.
        case tooLong = "too-long"
        /// Invalid code (an unknown code system).
        case codeInvalid = "code-invalid"
        /// Unacceptable extension.
        case `extension`
        /// Operation too costly.
        case tooCostly = "too-costly"
        /// A business rule.
        case businessRule = "business-rule"
        /// Edit version conflict.
        case conflict
        /// Transient issue.
        case transient
        /// Lock error.
        case lockLoss = "lock-loss"
        /// No store available.
        case noStore = "no-store"
        /// Exception.
        case exception
        /// Timeout.
        case timeout
        /// Incomplete results.
        case incomplete
        /// Throttled.
        case throttled
        /// Informational note.
        case informational
    }

    /// The severity.
    public var severity: Severity
    /// The issue type.
    public var code: IssueType
    /// What is wrong, in words without patient data.
    public var diagnostics: String
    /// The FHIRPath of the element (`Bundle.entry[3].resource.subject`), when known.
    public var expression: String?

    /// An issue.
    public init(severity: Severity, code: IssueType, diagnostics: String, expression: String?) {
        self.severity = severity
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
    }
}

/// An incoming document was refused: ``issues`` says why, each as an `OperationOutcome.issue`.
///
/// Equality compares the kind only (as ``HandoffBuildError`` and the vault's errors do); tests read ``issues``.
public struct FHIRValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable {
        case notJSON = "not-json"
        case invalidDocument = "invalid-document"
    }

    private let code: Code
    /// The issues, in document order; at least one has severity `error` or `fatal`.
    public let issues: [FHIRIssue]
    /// The file where the error was created.
    public let file: String
    /// The line where the error was created.
    public let line: UInt

    private init(_ code: Code, _ issues: [FHIRIssue], file: String, line: UInt) {
        self.code = code
        self.issues = issues
        self.file = file
        self.line = line
    }

    /// A stable identifier of the kind of error: `not-json` or `invalid-document`.
    public var kind: String { code.rawValue }

    /// The kind and the issues' diagnostics (no patient data).
    public var description: String {
        "FHIRValidationError.\(code.rawValue): "
            + issues.map { "\($0.code.rawValue) at \($0.expression ?? "-"): \($0.diagnostics)" }.joined(separator: "; ")
    }

    /// The body is not JSON (or not UTF-8): HTTP 400 "invalid JSON".
    public static func notJSON(_ issues: [FHIRIssue], file: String = #fileID, line: UInt = #line) -> Self {
        Self(.notJSON, issues, file: file, line: line)
    }

    /// The body is JSON but not a valid handoff document: HTTP 400 "invalid FHIR".
    public static func invalidDocument(_ issues: [FHIRIssue], file: String = #fileID, line: UInt = #line) -> Self {
        Self(.invalidDocument, issues, file: file, line: line)
    }

    /// The issues as a FHIR `OperationOutcome` (UTF-8 JSON, `application/fhir+json`).
    public func operationOutcome() -> Data { OperationOutcome.json(issues) }

    /// Errors match by kind.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the kind.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// Writes FHIR `OperationOutcome` resources.
public enum OperationOutcome {
    /// An `OperationOutcome` with these issues (sorted keys, UTF-8). An empty list gives one `information` issue
    /// "ok", since `issue` is required (1..*).
    public static func json(_ issues: [FHIRIssue]) -> Data {
        struct Issue: Encodable {
            var severity: String
            var code: String
            var diagnostics: String?
            var expression: [String]?
        }
        struct Outcome: Encodable {
            var resourceType = "OperationOutcome"
            var issue: [Issue]
        }
        let list =
            issues.isEmpty
            ? [FHIRIssue(severity: .information, code: .informational, diagnostics: "ok", expression: nil)] : issues
        let outcome = Outcome(
            issue: list.map {
                Issue(
                    severity: $0.severity.rawValue,
                    code: $0.code.rawValue,
                    diagnostics: $0.diagnostics.isEmpty ? nil : $0.diagnostics,
                    expression: $0.expression.map { [$0] }
                )
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings and arrays only: encoding cannot fail.
        return (try? encoder.encode(outcome)) ?? Data()
    }

    /// An `OperationOutcome` with one `information` issue (e.g. the receiver's "stored").
    public static func information(_ diagnostics: String) -> Data {
        json([FHIRIssue(severity: .information, code: .informational, diagnostics: diagnostics, expression: nil)])
    }
}
