import Foundation
import KyukyuOnshi
import Synchronization

@testable import KyukyuEligibility

/// An in-memory onshi for unit tests: a handler per request, the deadline enforced like the real transport.
final class ScriptedTransport: OnshiTransport {
    typealias Handler = @Sendable (OnshiHTTPRequest, Int) async throws -> OnshiHTTPResponse
    let handler: Handler
    let log = Mutex<[OnshiHTTPRequest]>([])
    let inFlight = Mutex<(now: Int, max: Int)>((0, 0))

    /// The most requests that were in flight at the same time.
    var maxInFlight: Int { inFlight.withLock { $0.max } }

    init(_ handler: @escaping Handler) { self.handler = handler }

    var requests: [OnshiHTTPRequest] { log.withLock { $0 } }
    func count(_ suffix: String) -> Int { requests.filter { $0.path.hasSuffix(suffix) }.count }

    func exchange(_ request: OnshiHTTPRequest, deadline: ContinuousClock.Instant, maxBodyBytes: Int) async throws
        -> OnshiHTTPResponse
    {
        let index = log.withLock { log in
            log.append(request)
            return log.filter { $0.path == request.path }.count
        }
        let handler = self.handler
        inFlight.withLock {
            $0.now += 1
            $0.max = max($0.max, $0.now)
        }
        defer { inFlight.withLock { $0.now -= 1 } }
        let response = try await withDeadline(deadline) { try await handler(request, index) }
        if response.body.count > maxBodyBytes { throw EligibilityError.responseTooLarge(limit: maxBodyBytes) }
        return response
    }

    func prewarm(connections: Int) async {}
}

enum Fixture {
    static let header = MessageHeader(
        processedAt: Date(timeIntervalSince1970: 1_800_000_000),
        medicalInstitutionCode: "9999999999",
        referenceClassification: MessageHeader.emergencyReference,
        resultSegment: .success
    )

    static func session(token: String = "tok-1") -> OnshiHTTPResponse {
        OnshiHTTPResponse(
            status: 200,
            body: OnshiXML.encode(
                SessionResponse(header: header, result: .completed, sessionToken: token, qualificationValidity: 1)
            )
        )
    }

    static func failedSession(_ code: String) -> OnshiHTTPResponse {
        OnshiHTTPResponse(status: 200, body: OnshiXML.encode(SessionResponse(header: header, result: .failed(code))))
    }

    static func visits(_ count: Int) -> OnshiHTTPResponse {
        let visits = (0..<count).map { index in
            Visit(
                date: OnshiDate(year: 2026, month: 10, day: 1 + index % 28),
                institutionCode: "1310000000",
                institutionName: "架空総合病院（SYNTHETIC）",
                department: "内科",
                setting: .outpatient,
                synthetic: true
            )
        }
        return category(.visits, .visits(visits))
    }

    static func category(_ category: OnshiCategory, _ records: CategoryRecords) -> OnshiHTTPResponse {
        OnshiHTTPResponse(
            status: 200,
            body: OnshiXML.encode(
                CategoryResponse(header: header, result: .completed, category: category, records: records)
            )
        )
    }

    static func empty(_ category: OnshiCategory) -> OnshiHTTPResponse {
        self.category(category, .empty(category))
    }

    /// Answers sessions with a token and every category with `records(category)`.
    static func onshi(
        _ records: @escaping @Sendable (OnshiCategory, Int) async throws -> OnshiHTTPResponse = { category, _ in
            empty(category)
        }
    ) -> ScriptedTransport {
        ScriptedTransport { request, attempt in
            if request.path.hasSuffix("/sessions") || request.path.hasSuffix("/lookup") { return session() }
            let name = String(request.path.split(separator: "/").last!)
            return try await records(OnshiCategory(rawValue: name)!, attempt)
        }
    }
}
