import Foundation
public import Hummingbird
import KyukyuWorkflow

/// An RFC 9457 problem: every refusal the API gives, as `application/problem+json`, saying what is wrong in words.
/// Never carries patient data: `detail` comes from the workflow's and the crew module's reasons, which carry none.
public struct Problem: HTTPResponseError, Sendable {
    /// One field that failed validation.
    public struct InvalidParam: Codable, Sendable, Hashable {
        /// The field.
        public var name: String
        /// Why.
        public var reason: String
    }

    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// The problem's slug (`https://kyukyu.invalid/problems/<slug>`).
    public let slug: String
    /// A short title.
    public let title: String
    /// What is wrong, in words.
    public let detail: String
    /// Fields that failed validation.
    public var invalidParams: [InvalidParam] = []
    /// PIN tries left, where it applies.
    public var triesLeft: Int?
    /// When to try again, where it applies.
    public var retryAfterSeconds: Int?

    /// Makes a problem.
    public init(_ status: HTTPResponse.Status, _ slug: String, _ title: String, detail: String) {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
    }

    struct Body: Encodable {
        var type: String
        var title: String
        var status: Int
        var detail: String
        var invalidParams: [InvalidParam]?
        var triesLeft: Int?
        var retryAfterSeconds: Int?
    }

    /// The problem+json response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(
            type: "https://kyukyu.invalid/problems/\(slug)",
            title: title,
            status: status.code,
            detail: detail,
            invalidParams: invalidParams.isEmpty ? nil : invalidParams,
            triesLeft: triesLeft,
            retryAfterSeconds: retryAfterSeconds
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers: HTTPFields = [.contentType: "application/problem+json", .cacheControl: "no-store"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: (try? encoder.encode(body)) ?? Data()))
        )
    }

    // MARK: Common problems

    /// The request needs a signed-in crew member.
    public static let unauthenticated = Problem(
        .unauthorized,
        "unauthenticated",
        "Sign in",
        detail: "sign in with your crew ID, password and one-time code"
    )
    /// The tablet is locked.
    public static let sessionLocked = Problem(
        .init(code: 423, reasonPhrase: "Locked"),
        "session-locked",
        "Locked",
        detail: "the tablet locked itself after 5 minutes without a touch: enter your crew PIN"
    )

    /// A CSRF refusal.
    public static func csrf(_ detail: String) -> Problem { Problem(.forbidden, "csrf", "Refused", detail: detail) }

    /// A malformed request.
    public static func badRequest(_ detail: String) -> Problem {
        Problem(.badRequest, "bad-request", "Bad request", detail: detail)
    }

    /// A field-level validation failure.
    public static func validation(_ name: String, _ reason: String) -> Problem {
        var problem = Problem(.unprocessableContent, "validation", "Invalid input", detail: "\(name): \(reason)")
        problem.invalidParams = [InvalidParam(name: name, reason: reason)]
        return problem
    }

    /// Not found.
    public static func notFound(_ detail: String) -> Problem {
        Problem(.notFound, "not-found", "Not found", detail: detail)
    }

    /// The workflow's refusal as a problem.
    public static func workflow(_ error: WorkflowError) -> Problem {
        var problem: Problem
        switch error.kind {
        case .notFound: problem = .notFound(error.reason)
        case .conflict: problem = Problem(.conflict, "conflict", "Not now", detail: error.reason)
        case .invalidInput:
            problem = Problem(.unprocessableContent, "validation", "Invalid input", detail: error.reason)
        case .wrongPIN: problem = Problem(.unauthorized, "wrong-pin", "Wrong PIN", detail: error.reason)
        case .pinLastTry: problem = Problem(.conflict, "pin-last-try", "Last try", detail: error.reason)
        case .pinLocked:
            problem = Problem(
                .init(code: 423, reasonPhrase: "Locked"),
                "pin-locked",
                "PIN locked",
                detail: error.reason
            )
        case .card: problem = Problem(.conflict, "card", "Card", detail: error.reason)
        case .storage: problem = Problem(.serviceUnavailable, "storage", "Storage", detail: error.reason)
        }
        problem.triesLeft = error.triesLeft
        return problem
    }
}
