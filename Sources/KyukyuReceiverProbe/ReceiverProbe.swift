import AsyncHTTPClient
public import Foundation
public import KyukyuDomain
public import KyukyuGateway
public import KyukyuWorkflow
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import Synchronization

/// Why a probe of the hospital's receiver failed, in words (a struct over a private code, as swift-certificates'
/// errors are).
public struct ReceiverProbeError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case notLive
        case signIn
        case acknowledge
        case noEvent
        case noPublication
    }

    private let code: Code
    /// The reason, in words.
    public let description: String

    private init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// The receiver did not answer its liveness check in time.
    public static func notLive(_ base: String, _ limit: Duration) -> Self {
        Self(.notLive, "the receiver did not come up at \(base) within \(limit)")
    }

    /// The staff sign-in was refused.
    public static func signIn(_ status: String) -> Self { Self(.signIn, "the staff sign-in failed: \(status)") }

    /// An acknowledgement was refused (or there was no session).
    public static func acknowledge(_ status: String) -> Self { Self(.acknowledge, "acknowledge: \(status)") }

    /// A publication did not reach every ambulance's feed in time.
    public static func noPublication(_ revision: Int64, _ limit: Duration) -> Self {
        Self(.noPublication, "revision \(revision) did not reach every feed within \(limit)")
    }

    /// The awaited event did not come on the ambulance's stream in time.
    public static func noEvent(_ status: HandoffStatus, _ limit: Duration) -> Self {
        Self(.noEvent, "no \(status.rawValue) event within \(limit)")
    }
}

/// The ER board's staff, over HTTPS: sign-in, then acknowledgements (with the session's CSRF header). Shared by the
/// receiver's benchmark and its load test.
public final class StaffClient: Sendable {
    /// The receiver's base URL.
    public let base: String
    let http: HTTPClient
    private let session = Mutex<(cookie: String, csrf: String)?>(nil)

    /// The session's cookie and CSRF token, once signed in.
    func sessionHeaders() -> (cookie: String, csrf: String)? { session.withLock { $0 } }

    /// A client trusting the hospital's CA (PEM).
    public init(base: String, caPEM: String) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        self.base = base
        self.http = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(tlsConfiguration: tls)
        )
    }

    /// Closes the connections.
    public func shutdown() async { try? await http.shutdown() }

    /// Waits until GET /health/live answers 200, for at most `timeout`.
    public func waitUntilLive(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let request = HTTPClientRequest(url: base + "/health/live")
            if let response = try? await http.execute(request, timeout: .seconds(2)), response.status == .ok { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ReceiverProbeError.notLive(base, timeout)
    }

    /// Signs in with password and TOTP code; keeps the session cookie and CSRF token.
    public func signIn(staffID: String, password: String, totp: String) async throws {
        var request = HTTPClientRequest(url: base + "/api/v1/session")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let body = try JSONSerialization.data(withJSONObject: [
            "staffId": staffID, "password": password, "totp": totp,
        ])
        request.body = .bytes(ByteBuffer(data: body))
        let response = try await http.execute(request, timeout: .seconds(10))
        let data = Data(buffer: try await response.body.collect(upTo: 64 * 1024))
        guard response.status == .ok,
            let cookie = response.headers["Set-Cookie"].first?.split(separator: ";").first,
            let csrf = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["csrfToken"] as? String
        else { throw ReceiverProbeError.signIn("\(response.status)") }
        session.withLock { $0 = (String(cookie), csrf) }
    }

    /// Acknowledges a patient's document set, as the board's button does.
    public func acknowledge(_ set: UUID) async throws {
        guard let (cookie, csrf) = session.withLock({ $0 }) else {
            throw ReceiverProbeError.acknowledge("not signed in")
        }
        var request = HTTPClientRequest(url: base + "/api/v1/patients/\(set.uuidString.lowercased())/acknowledge")
        request.method = .POST
        request.headers.add(name: "Cookie", value: cookie)
        request.headers.add(name: "X-CSRF-Token", value: csrf)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: "{}"))
        let response = try await http.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 64 * 1024)
        guard response.status == .ok else { throw ReceiverProbeError.acknowledge("\(response.status)") }
    }
}

extension StaffClient {
    /// Publishes the hospital's acceptance (`PUT /api/v1/acceptance`, as the board does): `accepting` for each of
    /// `conditions`; returns the new revision.
    public func publishAcceptance(_ conditions: [AcceptanceCondition: Bool]) async throws -> Int64 {
        guard let (cookie, csrf) = sessionHeaders() else { throw ReceiverProbeError.acknowledge("not signed in") }
        var request = HTTPClientRequest(url: base + "/api/v1/acceptance")
        request.method = .PUT
        request.headers.add(name: "Cookie", value: cookie)
        request.headers.add(name: "X-CSRF-Token", value: csrf)
        request.headers.add(name: "Content-Type", value: "application/json")
        var body: [String: Any] = [:]
        for (condition, accepting) in conditions {
            body[condition.rawValue] = accepting ? ["accepting": true] : ["accepting": false, "reason": "no-beds"]
        }
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: ["conditions": body])))
        let response = try await http.execute(request, timeout: .seconds(10))
        let data = Data(buffer: try await response.body.collect(upTo: 64 * 1024))
        guard response.status == .ok,
            let revision = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["revision"] as? Int
        else { throw ReceiverProbeError.acknowledge("publish: \(response.status)") }
        return Int64(revision)
    }
}

/// One ambulance's event stream, as the gateway listens to it: waits for a document set's status to arrive.
public actor AcknowledgementWatch {
    private let client: HTTPReceiverClient
    private let hospital: ReceivingHospital
    private var listening: Task<Void, Never>?
    private var waiting: [UUID: (status: HandoffStatus, continuation: CheckedContinuation<Void, Never>)] = [:]
    private var seen: Set<String> = []

    /// A watch on `client`'s stream at `hospital` (not yet listening).
    public init(client: HTTPReceiverClient, hospital: ReceivingHospital) {
        self.client = client
        self.hospital = hospital
    }

    /// Starts listening.
    public func start() {
        let stream = client.events(from: hospital, after: nil)
        listening = Task {
            do {
                for try await event in stream { self.arrived(event) }
            } catch {}
        }
    }

    /// Stops listening; every wait ends.
    public func stop() {
        listening?.cancel()
        for entry in waiting.values { entry.continuation.resume() }
        waiting = [:]
    }

    private func arrived(_ event: ReceiverEvent) {
        seen.insert("\(event.documentSet)/\(event.status.rawValue)")
        if let entry = waiting[event.documentSet], entry.status == event.status {
            waiting[event.documentSet] = nil
            entry.continuation.resume()
        }
    }

    /// Waits (up to `limit`) for `status` of `set` on the stream; returns at once if it came already.
    public func wait(for status: HandoffStatus, of set: UUID, limit: Duration = .seconds(30)) async throws {
        if seen.contains("\(set)/\(status.rawValue)") { return }
        let timeout = Task {
            try await Task.sleep(for: limit)
            self.expire(set)
        }
        defer { timeout.cancel() }
        await withCheckedContinuation { continuation in waiting[set] = (status, continuation) }
        guard seen.contains("\(set)/\(status.rawValue)") else { throw ReceiverProbeError.noEvent(status, limit) }
    }

    private func expire(_ set: UUID) {
        waiting.removeValue(forKey: set)?.continuation.resume()
    }
}
