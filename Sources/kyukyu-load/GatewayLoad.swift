import ArgumentParser
import AsyncHTTPClient
import Foundation
import KyukyuLoad
import KyukyuTestbed
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// `kyukyu-load gateway`: the gateway's HTTP API as the tablet reads it, for a signed-in crew: GET /api/v1/incidents
/// and GET /api/v1/incidents/{id} in turn (the list, then one incident with its summary read back from the vault).
/// It signs in once (password and TOTP), creates `--incidents` incidents if the list has fewer, then runs the plan
/// over HTTP/1.1 with the session cookie.
struct GatewayLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Read the gateway's incidents as a signed-in crew, at a constant rate.",
        discussion: """
            Against a running gateway (for example scripts/stack.sh start: its stack.env has the URL and the demo \
            crew's sign-in). The incidents it creates are left open on that gateway.
            """
    )

    @Option(help: "The gateway's base URL, e.g. http://127.0.0.1:20630.")
    var url: String

    @Option(help: "The crew ID to sign in with.")
    var crewID: String

    @Option(help: "The crew's password.")
    var password: String

    @Option(help: "The crew's TOTP secret (base32), to compute the sign-in code.")
    var totpSecret: String

    @Option(help: "Incidents to read (created when the gateway has fewer open).")
    var incidents = 4

    @OptionGroup var options: PlanOptions

    func validate() throws {
        guard let parsed = URL(string: url), parsed.scheme == "http", parsed.host != nil else {
            throw ValidationError("--url must be an http URL (the gateway listens on loopback)")
        }
        guard (1...100).contains(incidents) else { throw ValidationError("--incidents must be 1…100") }
        guard !totpSecret.isEmpty, totpSecret.allSatisfy({ "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=".contains($0) }) else {
            throw ValidationError("--totp-secret must be base32 (A-Z, 2-7)")
        }
        try options.check(measuredSaturation: true)
    }

    func run() async throws {
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let session: (cookie: String, ids: [String])
        do {
            session = try await Self.prepare(
                http: http,
                base: base,
                crewID: crewID,
                password: password,
                secret: totpSecret,
                incidents: incidents
            )
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()

        let parsed = URL(string: base)!
        let host = parsed.host!
        let port = parsed.port ?? 80
        let authority = "\(host):\(port)"
        let headers = [("Cookie", session.cookie), ("Accept", "application/json")]
        let list = HTTPLoadTarget.requestBytes(path: "/api/v1/incidents", host: authority, headers: headers)
        let single = session.ids.map { id in
            HTTPLoadTarget.requestBytes(path: "/api/v1/incidents/\(id)", host: authority, headers: headers)
        }
        let target = HTTPLoadTarget(host: host, port: port) { index, _ in
            index % 2 == 0 ? list : single[(index / 2) % single.count]
        }
        let logger = Logger(label: "kyukyu.load.gateway")
        try await withEventLoopGroup(threads: options.threads) { group in
            try await LoadSession(options: options, name: "gateway").execute { plan, stop in
                try await HTTPOpenLoop.run(plan, against: target, group: group, stopSendingAfter: stop, logger: logger)
            }
        }
    }

    /// Signs in; makes sure `incidents` incidents are open; returns the session cookie and their IDs.
    static func prepare(
        http: HTTPClient,
        base: String,
        crewID: String,
        password: String,
        secret: String,
        incidents: Int
    ) async throws -> (cookie: String, ids: [String]) {
        func call(_ method: HTTPMethod, _ path: String, _ body: [String: Any]?, headers: [(String, String)])
            async throws
            -> (status: UInt, headers: HTTPHeaders, json: [String: Any])
        {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            request.headers.add(name: "Accept", value: "application/json")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
            }
            let response = try await http.execute(request, timeout: .seconds(30))
            let data = Data(buffer: try await response.body.collect(upTo: 4 << 20))
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return (response.status.code, response.headers, json)
        }
        let signIn = try await call(
            .POST,
            "/api/v1/session",
            ["crewId": crewID, "password": password, "totp": totp(secret)],
            headers: []
        )
        guard signIn.status == 200,
            let cookie = signIn.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init),
            let csrf = signIn.json["csrfToken"] as? String
        else { throw LoadError.setupFailed("the crew sign-in failed (HTTP \(signIn.status))") }
        let auth = [("Cookie", cookie)]
        let listed = try await call(.GET, "/api/v1/incidents", nil, headers: auth)
        var ids = (listed.json["incidents"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        while ids.count < incidents {
            let created = try await call(.POST, "/api/v1/incidents", [:], headers: auth + [("X-CSRF-Token", csrf)])
            guard created.status == 201, let id = created.json["id"] as? String else {
                throw LoadError.setupFailed("creating an incident failed (HTTP \(created.status))")
            }
            ids.append(id)
        }
        return (cookie, Array(ids.prefix(incidents)))
    }
}
