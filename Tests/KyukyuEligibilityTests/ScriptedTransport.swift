import Clocks
import Foundation
import KyukyuDomain
import KyukyuOnshi
import Synchronization

@testable import KyukyuEligibility

/// An in-memory onshi for unit tests: a handler per request. Like the real transport it sets no deadline of its
/// own; the client's deadline cancels the handler.
final class ScriptedTransport: OnshiTransport {
    typealias Handler = @Sendable (OnshiHTTPRequest, Int) async throws -> OnshiHTTPResponse
    let handler: Handler
    let log = Mutex<[OnshiHTTPRequest]>([])
    let inFlight = Mutex<(now: Int, max: Int, waiters: [(Int, CheckedContinuation<Void, Never>)])>((0, 0, []))

    /// The most requests that were in flight at the same time.
    var maxInFlight: Int { inFlight.withLock { $0.max } }

    init(_ handler: @escaping Handler) { self.handler = handler }

    var requests: [OnshiHTTPRequest] { log.withLock { $0 } }
    func count(_ suffix: String) -> Int { requests.filter { $0.path.hasSuffix(suffix) }.count }

    /// Returns once `count` requests are in flight together.
    func inFlight(atLeast count: Int) async {
        await withCheckedContinuation { continuation in
            let ready = inFlight.withLock { state -> Bool in
                if state.now >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func exchange(_ request: OnshiHTTPRequest, maxBodyBytes: Int) async throws -> OnshiHTTPResponse {
        let index = log.withLock { log in
            log.append(request)
            return log.filter { $0.path == request.path }.count
        }
        let ready = inFlight.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.now += 1
            state.max = max(state.max, state.now)
            let now = state.now
            let ready = state.waiters.filter { $0.0 <= now }.map(\.1)
            state.waiters.removeAll { $0.0 <= now }
            return ready
        }
        for waiter in ready { waiter.resume() }
        defer { inFlight.withLock { $0.now -= 1 } }
        let response = try await handler(request, index)
        if response.body.count > maxBodyBytes { throw EligibilityError.responseTooLarge(limit: maxBodyBytes) }
        return response
    }

    func prewarm(connections: Int) async {}
}

/// swift-clocks' `TestClock`, which also keeps the deadlines of the sleeps in progress, so that a test can wait
/// until the client has started a timer (a backoff, a hedge delay) before it moves time.
final class VirtualClock: Clock, Sendable {
    typealias Duration = Swift.Duration
    typealias Instant = TestClock<Swift.Duration>.Instant

    private let base = TestClock()
    private let sleeps = Mutex<(deadlines: [UUID: Instant], waiters: [(Instant, CheckedContinuation<Instant, Never>)])>(
        ([:], [])
    )

    var now: Instant { base.now }
    var minimumResolution: Duration { base.minimumResolution }
    /// The clock's start.
    var origin: Instant { Instant(offset: .zero) }
    /// The instant `offset` after the clock's start.
    func at(_ offset: Duration) -> Instant { origin.advanced(by: offset) }

    /// Sleeps until `deadline`; returns at once when it is due already, as a real clock does.
    func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try Task.checkCancellation()
        if deadline <= base.now { return }
        let id = UUID()
        let ready = sleeps.withLock { state -> [CheckedContinuation<Instant, Never>] in
            state.deadlines[id] = deadline
            let ready = state.waiters.filter { deadline <= $0.0 }.map(\.1)
            state.waiters.removeAll { deadline <= $0.0 }
            return ready
        }
        for waiter in ready { waiter.resume(returning: deadline) }
        defer { _ = sleeps.withLock { $0.deadlines.removeValue(forKey: id) } }
        try await base.sleep(until: deadline, tolerance: tolerance)
    }

    /// Waits until some task sleeps until an instant after now and no later than `deadline` (a timer not yet
    /// due), and returns the earliest such instant.
    @discardableResult
    func sleeper(until deadline: Instant) async -> Instant {
        let now = self.now
        return await withCheckedContinuation { continuation in
            let found = sleeps.withLock { state -> Instant? in
                if let due = state.deadlines.values.filter({ $0 > now && $0 <= deadline }).min() { return due }
                state.waiters.append((deadline, continuation))
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }

    /// Waits until some task sleeps for at most `duration` from now; returns when that sleep is due.
    @discardableResult
    func sleeper(within duration: Duration) async -> Instant { await sleeper(until: now.advanced(by: duration)) }

    /// Moves time to the next timer due within `duration` (once one is set), and no further: timers the wake-up
    /// sets in turn stay pending.
    func advanceToNextTimer(within duration: Duration) async {
        await base.advance(to: await sleeper(within: duration))
    }

    /// Moves time forward by `duration`, waking every sleep that falls due on the way, in order.
    func advance(by duration: Duration) async { await base.advance(by: duration) }

    /// Moves time forward to `offset` after the clock's start.
    func advance(to offset: Duration) async { await base.advance(to: origin.advanced(by: offset)) }
}

/// A gate a scripted handler waits at, ignoring cancellation (a card that does not stop when asked).
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
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

    static func nonce(_ bytes: [UInt8]) -> OnshiHTTPResponse {
        OnshiHTTPResponse(
            status: 200,
            body: OnshiXML.encode(
                NonceResponse(header: header, result: .completed, nonceID: "n-1", nonce: bytes, expiresAt: nil)
            )
        )
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

    static func category(_ category: MedicalCategory, _ records: CategoryRecords) -> OnshiHTTPResponse {
        OnshiHTTPResponse(
            status: 200,
            body: OnshiXML.encode(
                CategoryResponse(header: header, result: .completed, category: category, records: records)
            )
        )
    }

    static func empty(_ category: MedicalCategory) -> OnshiHTTPResponse {
        self.category(category, .empty(category))
    }

    /// Answers sessions with a token and every category with `records(category)`.
    static func onshi(
        _ records: @escaping @Sendable (MedicalCategory, Int) async throws -> OnshiHTTPResponse = { category, _ in
            empty(category)
        }
    ) -> ScriptedTransport {
        ScriptedTransport { request, attempt in
            if request.path.hasSuffix("/sessions") || request.path.hasSuffix("/lookup") { return session() }
            let name = String(request.path.split(separator: "/").last!)
            return try await records(MedicalCategory(rawValue: name)!, attempt)
        }
    }
}
