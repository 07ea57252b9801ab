import Foundation
public import Hummingbird
import Logging

/// Every refusal of the receiver's HTTP API. Under `/fhir` it is a FHIR `OperationOutcome`
/// (`application/fhir+json`); elsewhere an RFC 9457 problem (`application/problem+json`), as the gateway's. The
/// words never carry patient data.
public struct ReceiverHTTPError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// The problem's slug (`https://kyukyu.invalid/problems/<slug>`).
    public let slug: String
    /// The FHIR issue type (`invalid`, `structure`, `security`, `conflict`, `too-long`, `not-supported`, …).
    public let issueType: String
    /// What is wrong, in words.
    public let detail: String
    /// The document's findings (400), each an `OperationOutcome.issue`.
    public var issues: [HandoffIssue] = []

    /// Makes an error.
    public init(_ status: HTTPResponse.Status, _ slug: String, issueType: String, detail: String) {
        self.status = status
        self.slug = slug
        self.issueType = issueType
        self.detail = detail
    }

    /// A problem+json response (an OperationOutcome is made by ``outcome(from:)``).
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        if request.uri.path.hasPrefix("/fhir") { return outcome() }
        var body: [String: Any] = [
            "type": "https://kyukyu.invalid/problems/\(slug)",
            "title": status.reasonPhrase,
            "status": status.code,
            "detail": detail,
        ]
        if !issues.isEmpty { body["issues"] = issues.map { ["code": $0.code, "diagnostics": $0.diagnostics] } }
        return Response(
            status: status,
            headers: [.contentType: "application/problem+json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: Self.json(body)))
        )
    }

    /// The FHIR `OperationOutcome`.
    func outcome() -> Response {
        let list = issues.isEmpty ? [HandoffIssue(code: issueType, diagnostics: detail)] : issues
        return Self.operationOutcome(status: status, issues: list)
    }

    /// An `OperationOutcome` response with `issues`.
    static func operationOutcome(status: HTTPResponse.Status, issues: [HandoffIssue], headers: HTTPFields = [:])
        -> Response
    {
        operationOutcome(status: status, body: ByteBuffer(bytes: outcomeJSON(issues)), headers: headers)
    }

    /// An `OperationOutcome` whose JSON is already written (the intake's fixed answers, made once).
    static func operationOutcome(status: HTTPResponse.Status, body: ByteBuffer, headers: HTTPFields = [:]) -> Response {
        var fields: HTTPFields = [.contentType: "application/fhir+json; charset=utf-8", .cacheControl: "no-store"]
        fields.append(contentsOf: headers)
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: body))
    }

    /// The JSON of an `OperationOutcome` with `issues`.
    static func outcomeJSON(_ issues: [HandoffIssue]) -> Data {
        let body: [String: Any] = [
            "resourceType": "OperationOutcome",
            "issue": issues.map { issue -> [String: Any] in
                var object: [String: Any] = [
                    "severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics,
                ]
                if let expression = issue.expression { object["expression"] = expression }
                return object
            },
        ]
        return json(body)
    }

    static func json(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
    }

    // MARK: Common refusals

    /// No staff session.
    public static let unauthenticated = ReceiverHTTPError(
        .unauthorized,
        "unauthenticated",
        issueType: "login",
        detail: "sign in with your staff ID, password and one-time code"
    )
    /// No client certificate on an ambulance route.
    public static let noClientCertificate = ReceiverHTTPError(
        .forbidden,
        "client-certificate",
        issueType: "security",
        detail: "ambulance routes need the device's client certificate from this hospital's CA"
    )

    /// A malformed request.
    public static func badRequest(_ detail: String) -> Self {
        Self(.badRequest, "bad-request", issueType: "invalid", detail: detail)
    }
    /// A field-level refusal.
    public static func validation(_ field: String, _ reason: String) -> Self {
        Self(.unprocessableContent, "validation", issueType: "invalid", detail: "\(field): \(reason)")
    }
    /// Not found.
    public static func notFound(_ detail: String) -> Self {
        Self(.notFound, "not-found", issueType: "not-found", detail: detail)
    }
    /// A CSRF or origin refusal.
    public static func csrf(_ detail: String) -> Self {
        Self(.forbidden, "csrf", issueType: "security", detail: detail)
    }

    /// The receiver's error as an HTTP refusal.
    static func from(_ error: ReceiverError) -> Self {
        switch error.code {
        case .notFound: .notFound(error.reason)
        case .conflict: Self(.conflict, "conflict", issueType: "conflict", detail: error.reason)
        case .forbidden: Self(.forbidden, "forbidden", issueType: "forbidden", detail: error.reason)
        case .invalidInput: Self(.unprocessableContent, "validation", issueType: "invalid", detail: error.reason)
        default:
            Self(
                .serviceUnavailable,
                "storage",
                issueType: "exception",
                detail: "the receiver cannot store or read now"
            )
        }
    }
}

/// Renders every error as the path's error format and adds the security headers.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = ReceiverRequestContext

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as ReceiverHTTPError {
            response = try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let mapped: ReceiverHTTPError =
                switch error.status.code {
                case 404: .notFound("no such route")
                case 405:
                    ReceiverHTTPError(
                        .methodNotAllowed,
                        "method",
                        issueType: "not-supported",
                        detail: "method not allowed"
                    )
                case 413:
                    ReceiverHTTPError(
                        .contentTooLarge,
                        "too-large",
                        issueType: "too-long",
                        detail: "the body is larger than 4 MiB"
                    )
                default: .badRequest(error.body ?? "refused")
                }
            response = try mapped.response(from: request, context: context)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            context.logger.error("request failed", metadata: ["kyukyu.error": "\(type(of: error))"])
            response = try ReceiverHTTPError(
                .internalServerError,
                "internal",
                issueType: "exception",
                detail: "the receiver failed to answer; the log says more"
            ).response(from: request, context: context)
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        response.headers[.contentSecurityPolicy] = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
        return response
    }
}
