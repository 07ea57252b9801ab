import AsyncHTTPClient
import Foundation
import KyukyuTestbed
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// The drill's one HTTP client: plain HTTP to the gateways and the simulators' controls, HTTPS to the receivers
/// (trusting only the region's CA).
final class DrillHTTP: Sendable {
    let client: HTTPClient

    init(regionalCA: String) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(regionalCA)
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// One request; the answer's status and body (at most 16 MiB).
    func send(
        _ method: HTTPMethod,
        _ url: String,
        headers: [(String, String)] = [],
        json body: String? = nil,
        timeout: TimeAmount = .seconds(20)
    ) async throws -> (status: Int, body: Data, headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), Data(buffer: bytes), response.headers)
    }

    /// Polls `url` until it answers 200, for at most `seconds` (a part that has just been started).
    func waitUntilUp(_ url: String, seconds: Int, alive: () -> Bool) async throws(DrillError) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let answer = try? await send(.GET, url, timeout: .seconds(2)), answer.status == 200 { return }
            guard alive() else { throw .startUp("the process behind \(url) exited; see its log") }
            try? await Task.sleep(for: .milliseconds(100))
        }
        throw .startUp("\(url) did not answer within \(seconds) s")
    }

    func shutdown() async { try? await client.shutdown() }
}

/// What the tablet shows of an incident: the parts of the gateway's `IncidentView` the drill reads.
struct IncidentView: Sendable, Decodable {
    struct Card: Sendable, Decodable {
        var state: String
    }
    struct Category: Sendable, Decodable {
        var status: String
        var milliseconds: Int?
    }
    struct Authentication: Sendable, Decodable {
        var status: String
    }
    struct Handoff: Sendable, Decodable {
        var documentSet: String
        var hospital: String
        var status: String
        var latestVersion: Int
        var deliveredVersion: Int
    }

    var id: String
    var phase: String
    var closure: String?
    var identification: String?
    var card: Card?
    var authentication: Authentication?
    var categories: [String: Category]?
    var handoff: Handoff?

    /// Whether the summary shows data (a category arrived or is on record as empty).
    var hasData: Bool {
        (categories ?? [:]).values.contains { ["arrived", "none-on-record", "late"].contains($0.status) }
    }
}

/// A signed-in session on a gateway or a receiver: the cookie and CSRF token, and one authenticator per account.
final class SignedInSession: @unchecked Sendable {  // Safe: `cookie` and `csrf` are touched under `lock` only.
    let http: DrillHTTP
    let base: String
    /// The sign-in body's ID field: `crewId` on a gateway, `staffId` on a receiver.
    let idField: String
    private let lock = NSLock()
    private var cookie = ""
    private var csrf = ""
    private let codes = OneTimeCodes()

    init(http: DrillHTTP, base: String, idField: String) {
        self.http = http
        self.base = base
        self.idField = idField
    }

    /// Signs in with the password and a TOTP code, as a person does: a code already used is refused (replay), so
    /// after a sign-in in this 30-second step the next step's code is awaited (at most 30 s). Never guesses.
    func signIn(_ account: CrewAccount) async throws {
        let code = await codes.next(account.totpSecret)
        let body = #"{"\#(idField)":"\#(account.id)","password":"\#(account.password)","totp":"\#(code)"}"#
        let answer = try await http.send(.POST, base + "/api/v1/session", json: body)
        guard answer.status == 200, let setCookie = answer.headers.first(name: "set-cookie") else {
            throw DrillError.step("the sign-in of \(account.id) was refused (HTTP \(answer.status))")
        }
        let token = (try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any])?["csrfToken"]
        lock.withLock {
            cookie = String(setCookie.split(separator: ";")[0])
            csrf = token as? String ?? ""
        }
    }

    /// The cookie and the CSRF token.
    var headers: [(String, String)] {
        lock.withLock { [("Cookie", cookie), ("X-CSRF-Token", csrf)] }
    }
}

/// A crew member's tablet on one gateway: the incident routes.
final class CrewTablet: Sendable {
    let http: DrillHTTP
    let base: String
    private let session: SignedInSession

    init(http: DrillHTTP, base: String) {
        self.http = http
        self.base = base
        self.session = SignedInSession(http: http, base: base, idField: "crewId")
    }

    /// Signs the crew in (``SignedInSession/signIn(_:)``).
    func signIn(crew: CrewAccount) async throws { try await session.signIn(crew) }

    private var authHeaders: [(String, String)] { session.headers }

    /// A state-changing call; the status and the body.
    @discardableResult
    func post(_ path: String, _ body: String = "{}") async throws -> (status: Int, body: Data) {
        let answer = try await http.send(.POST, base + path, headers: authHeaders, json: body)
        return (answer.status, answer.body)
    }

    /// Whether the session is still signed in (false too when the gateway cannot be reached).
    func hasSession() async -> Bool {
        let answer = try? await http.send(.GET, base + "/api/v1/session", headers: authHeaders, timeout: .seconds(5))
        return answer?.status == 200
    }

    /// The incident as the tablet shows it.
    func incident(_ id: String) async throws -> IncidentView {
        let answer = try await http.send(.GET, base + "/api/v1/incidents/\(id)", headers: authHeaders)
        guard answer.status == 200 else { throw DrillError.step("GET incident: HTTP \(answer.status)") }
        return try JSONDecoder().decode(IncidentView.self, from: answer.body)
    }

    /// The ids of the open incidents.
    func openIncidents() async throws -> [String] {
        let answer = try await http.send(.GET, base + "/api/v1/incidents", headers: authHeaders)
        guard answer.status == 200,
            let list = (try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])?["incidents"]
                as? [[String: Any]]
        else { throw DrillError.step("GET incidents: HTTP \(answer.status)") }
        return list.compactMap { $0["id"] as? String }
    }

    /// Follows the incident's event stream until a view satisfies `condition` (that view) or `deadline` passes
    /// (nil). Throws when the stream fails (the gateway went away).
    func follow(
        _ id: String,
        until deadline: ContinuousClock.Instant,
        _ condition: @escaping @Sendable (IncidentView) -> Bool
    ) async throws -> IncidentView? {
        try await withThrowingTaskGroup(of: IncidentView?.self) { group in
            group.addTask { try await self.stream(id, condition) }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    private func stream(_ id: String, _ condition: @Sendable (IncidentView) -> Bool) async throws -> IncidentView? {
        var request = HTTPClientRequest(url: base + "/api/v1/incidents/\(id)/events")
        for (name, value) in authHeaders where name == "Cookie" { request.headers.add(name: name, value: value) }
        let response = try await http.client.execute(request, timeout: .hours(2))
        guard response.status == .ok else { throw DrillError.step("the event stream: HTTP \(response.status.code)") }
        var pending = ""
        let decoder = JSONDecoder()
        for try await chunk in response.body {
            pending += String(buffer: chunk)
            while let end = pending.range(of: "\n\n") {
                let event = String(pending[..<end.lowerBound])
                pending = String(pending[end.upperBound...])
                guard event.hasPrefix("event: incident"),
                    let line = event.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }),
                    let view = try? decoder.decode(IncidentView.self, from: Data(line.dropFirst(6).utf8))
                else { continue }
                if condition(view) { return view }
            }
        }
        throw DrillError.step("the incident's event stream ended")
    }
}

/// A staff member's session on one hospital's receiver (the ER board's API).
final class StaffDesk: Sendable {
    let http: DrillHTTP
    let base: String
    private let session: SignedInSession

    init(http: DrillHTTP, base: String) {
        self.http = http
        self.base = base
        self.session = SignedInSession(http: http, base: base, idField: "staffId")
    }

    /// Signs the staff member in (``SignedInSession/signIn(_:)``).
    func signIn(staff: CrewAccount) async throws { try await session.signIn(staff) }

    private var authHeaders: [(String, String)] { session.headers }

    /// Acknowledge, divert or arrived; the status.
    @discardableResult
    func act(_ set: String, _ action: String, _ body: String = "{}") async throws -> Int {
        try await http.send(.POST, base + "/api/v1/patients/\(set)/\(action)", headers: authHeaders, json: body).status
    }

    /// When each version of a document set was stored, or nil when this hospital has none.
    func receipts(_ set: String) async throws -> [(version: Int, receivedAt: Date)]? {
        let answer = try await http.send(.GET, base + "/api/v1/patients/\(set)", headers: authHeaders)
        guard answer.status == 200 else { return nil }
        let json = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        return (json?["versions"] as? [[String: Any]] ?? []).compactMap { entry in
            guard let version = entry["version"] as? Int, let text = entry["receivedAt"] as? String,
                let at = formatter.date(from: text) ?? plain.date(from: text)
            else { return nil }
            return (version, at)
        }
    }
}

/// One account's authenticator: hands out each 30-second step's code once, waiting for the next step when this
/// one's code has been used (a gateway refuses a code used twice, and counts it as a failed sign-in).
actor OneTimeCodes {
    private var lastStep: Int64 = 0

    func next(_ secret: String) async -> String {
        var now = Date()
        var step = Int64(now.timeIntervalSince1970 / 30)
        if step <= lastStep {
            let wait = Double(lastStep + 1) * 30 - now.timeIntervalSince1970 + 0.05
            try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
            now = Date()
            step = Int64(now.timeIntervalSince1970 / 30)
        }
        lastStep = step
        return totp(secret, at: now)
    }
}

/// A crew or staff account made for the drill.
struct CrewAccount: Sendable {
    var id: String
    var password: String
    var totpSecret: String
}
