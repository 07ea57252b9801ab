import Foundation
import Logging
import NIOCore
import NIOPosix

/// What is on the simulated reader, as the control reports it (`GET /card`).
///
/// When no card is present, only ``present``, ``connected``, ``commands`` and ``removeAfterApdus`` are encoded.
public struct CardOnReader: Sendable, Hashable, Codable {
    /// Whether a card is in the reader (it may still be connecting to vpcd).
    public var present: Bool
    /// Whether the card's vpcd link is open right now (always `false` without a card). pcscd polls a vpcd reader,
    /// so PC/SC clients see a new card up to about half a second after this turns `true`.
    public var connected: Bool
    /// The synthetic holder number, when a card is present.
    public var holder: Int?
    /// The token profile (`card`, `old-card`, `android`, `iphone`), when a card is present.
    public var profile: String?
    /// The user-authentication certificate (`valid`, `expired`, `not-yet-valid`), when a card is present.
    public var certificate: String?
    /// Tries left on the user-authentication PIN, when a card is present.
    public var authPinTriesLeft: Int?
    /// Command APDUs answered since the simulator started.
    public var commands: Int
    /// Command APDUs still to be answered before an armed removal, or absent when none is armed.
    public var removeAfterApdus: Int?

    /// Makes a report.
    public init(
        present: Bool,
        connected: Bool,
        holder: Int? = nil,
        profile: String? = nil,
        certificate: String? = nil,
        authPinTriesLeft: Int? = nil,
        commands: Int = 0,
        removeAfterApdus: Int? = nil
    ) {
        self.present = present
        self.connected = connected
        self.holder = holder
        self.profile = profile
        self.certificate = certificate
        self.authPinTriesLeft = authPinTriesLeft
        self.commands = commands
        self.removeAfterApdus = removeAfterApdus
    }
}

extension CardSimulator {
    /// What is on the reader now.
    public var cardOnReader: CardOnReader {
        guard self.isInserted else {
            return CardOnReader(
                present: false,
                connected: false,
                commands: self.commandCount,
                removeAfterApdus: self.apdusUntilRemoval
            )
        }
        return CardOnReader(
            present: true,
            connected: self.isConnected,
            holder: self.configuration.holder,
            profile: self.configuration.profile.rawValue,
            certificate: self.configuration.certificateValidity.rawValue,
            authPinTriesLeft: self.authPINTriesLeft,
            commands: self.commandCount,
            removeAfterApdus: self.apdusUntilRemoval
        )
    }
}

/// One request to the control, as the HTTP server hands it over (already read whole).
public struct CardSimulatorControlRequest: Sendable {
    /// The method, upper case (`GET`, `PUT`, …).
    public var method: String
    /// The request target's path (a query string is ignored).
    public var path: String
    /// The `Content-Type` header, if any.
    public var contentType: String?
    /// The body.
    public var body: [UInt8]

    /// Makes a request.
    public init(method: String, path: String, contentType: String? = nil, body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.contentType = contentType
        self.body = body
    }
}

/// The control's answer.
public struct CardSimulatorControlResponse: Sendable, Hashable {
    /// The HTTP status code.
    public var status: Int
    /// Extra headers (besides `Content-Type` and `Content-Length`).
    public var headers: [String: String]
    /// The content type of ``body``.
    public var contentType: String
    /// The body (JSON).
    public var body: [UInt8]

    /// Makes a response.
    public init(status: Int, headers: [String: String] = [:], contentType: String, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.contentType = contentType
        self.body = body
    }

    static func json(_ value: some Encodable, status: Int = 200) -> Self {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(value)).map(Array.init) ?? Array("{}".utf8)
        return Self(status: status, contentType: "application/json", body: body)
    }

    static func problem(_ status: Int, _ title: String, _ detail: String, headers: [String: String] = [:]) -> Self {
        struct Problem: Encodable {
            var title: String
            var status: Int
            var detail: String
        }
        var response = Self.json(Problem(title: title, status: status, detail: detail), status: status)
        response.contentType = "application/problem+json"
        response.headers = headers
        return response
    }
}

/// The run-time control of a ``CardSimulator``: what `kyukyu-card-sim --control-port` serves on loopback, and
/// what a demo or a test calls to swap what is on the reader.
///
/// Routes (JSON bodies, `Content-Type: application/json`):
/// - `GET /card` → ``CardOnReader``.
/// - `PUT /card` `{"holder": N, "profile"?: "card", "certificate"?: "valid", "pin"?: "1234", "removalMs"?: 1000}`
///   → the current card goes out, stays out `removalMs` (default ``defaultRemovalGap``), and the new card goes in;
///   answers once the new card is connected to vpcd (or after ``connectTimeout``) with ``CardOnReader``.
/// - `DELETE /card` → no card on the reader; ``CardOnReader``.
/// - `POST /card/remove-after-apdus` `{"apdus": N, "reinsertAfterMs"?: M}` → the card goes out after N more
///   command APDUs and comes back after M ms (stays out without M); ``CardOnReader``.
///
/// Errors are `application/problem+json` (`{"title", "status", "detail"}`): 400 for a body that is not valid, 404,
/// 405 (with `Allow`), 415 for a body that is not JSON, 500 when the test PKI cannot give the holder's credentials.
public struct CardSimulatorControl: Sendable {
    /// Gives the credentials of holder N with the requested certificate (usually from the test PKI on disk).
    public typealias CredentialsSource =
        @Sendable (_ holder: Int, _ validity: CertificateValidity) async throws ->
        HolderCredentials

    /// The simulator it drives.
    public let simulator: CardSimulator
    /// How long a swapped card stays out when the request does not say (pcscd polls about every 400 ms).
    public var defaultRemovalGap: Duration
    /// How long `PUT /card` waits for the new card's vpcd link before answering anyway (`"connected": false`).
    public var connectTimeout: Duration

    private let credentials: CredentialsSource
    private let logger: Logger

    /// Makes a control for `simulator`, taking new cards' credentials from `credentials`.
    public init(
        simulator: CardSimulator,
        credentials: @escaping CredentialsSource,
        defaultRemovalGap: Duration = .seconds(1),
        connectTimeout: Duration = .seconds(3),
        logger: Logger
    ) {
        self.simulator = simulator
        self.credentials = credentials
        self.defaultRemovalGap = defaultRemovalGap
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    /// A credentials source reading (or making) the test PKI in `directory`, off the caller's executor: making a
    /// new holder's keys takes seconds.
    public static func testPKICredentials(directory: String, logger: Logger) -> CredentialsSource {
        { holder, validity in
            try await NIOThreadPool.singleton.runIfActive {
                try TestPKI.loadOrCreate(directory: directory, logger: logger).holder(holder, validity: validity)
            }
        }
    }

    /// Answers one request. Never throws: every failure is a problem response.
    public func respond(to request: CardSimulatorControlRequest) async -> CardSimulatorControlResponse {
        let path = request.path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.path
        switch (path, request.method) {
        case ("/card", "GET"):
            return .json(await self.simulator.cardOnReader)
        case ("/card", "DELETE"):
            await self.simulator.removeCard()
            self.logger.info("control: card removed")
            return .json(await self.simulator.cardOnReader)
        case ("/card", "PUT"):
            return await self.withJSONBody(request, SwapRequest.self) { try await self.swap($0) }
        case ("/card/remove-after-apdus", "POST"):
            return await self.withJSONBody(request, RemovalRequest.self) { try await self.armRemoval($0) }
        case ("/card", _):
            return .problem(
                405,
                "Method not allowed",
                "/card takes GET, PUT or DELETE",
                headers: ["Allow": "GET, PUT, DELETE"]
            )
        case ("/card/remove-after-apdus", _):
            return .problem(
                405,
                "Method not allowed",
                "/card/remove-after-apdus takes POST",
                headers: ["Allow": "POST"]
            )
        default:
            return .problem(404, "Not found", "the control has /card and /card/remove-after-apdus")
        }
    }

    // MARK: - Routes

    struct SwapRequest: Decodable {
        var holder: Int
        var profile: String?
        var certificate: String?
        var pin: String?
        var removalMs: Int?
    }

    struct RemovalRequest: Decodable {
        var apdus: Int
        var reinsertAfterMs: Int?
    }

    private struct BadRequest: Error {
        var detail: String
    }

    private func swap(_ request: SwapRequest) async throws -> CardSimulatorControlResponse {
        var next = await self.simulator.configuration
        guard request.holder >= 1, request.holder <= 1_000_000 else {
            throw BadRequest(detail: "holder must be 1 to 1000000")
        }
        next.holder = request.holder
        if let name = request.profile {
            guard let profile = SimulatedTokenProfile(rawValue: name) else {
                throw BadRequest(detail: "profile must be one of: card, old-card, android, iphone")
            }
            next.profile = profile
        } else {
            next.profile = .card
        }
        if let name = request.certificate {
            guard let validity = CertificateValidity(rawValue: name) else {
                throw BadRequest(detail: "certificate must be one of: valid, expired, not-yet-valid")
            }
            next.certificateValidity = validity
        } else {
            next.certificateValidity = .valid
        }
        if let pin = request.pin {
            guard PINRules.isValidFourDigitPIN(pin) else { throw BadRequest(detail: "pin must be 4 digits") }
            next.authPIN = pin
            next.attributesPIN = nil
        }
        next.authPINTriesLeft = 3
        let gap = request.removalMs.map { Duration.milliseconds($0) } ?? self.defaultRemovalGap
        guard gap >= .zero, gap <= .seconds(10) else { throw BadRequest(detail: "removalMs must be 0 to 10000") }

        let credentials: HolderCredentials
        do {
            credentials = try await self.credentials(next.holder, next.certificateValidity)
        } catch {
            self.logger.error("control: no credentials for the new card", metadata: ["kyukyu.sim.error": "\(error)"])
            return .problem(500, "No credentials", "the test PKI could not give this holder's credentials")
        }
        let connectionsBefore = await self.simulator.connectionCount
        let done: Bool
        do {
            done = try await self.simulator.replaceCard(with: next, credentials: credentials, removalGap: gap)
        } catch let error as CardSimulatorError where error.code == .invalidConfiguration {
            throw BadRequest(detail: error.reason)
        }
        self.logger.info(
            "control: card swapped",
            metadata: [
                "kyukyu.sim.holder": "\(next.holder)", "kyukyu.sim.profile": "\(next.profile.rawValue)",
                "kyukyu.sim.certificate": "\(next.certificateValidity.rawValue)", "kyukyu.sim.overtaken": "\(!done)",
            ]
        )
        if done {
            await self.waitForConnection(after: connectionsBefore)
        }
        return .json(await self.simulator.cardOnReader)
    }

    private func armRemoval(_ request: RemovalRequest) async throws -> CardSimulatorControlResponse {
        guard (0...100_000).contains(request.apdus) else { throw BadRequest(detail: "apdus must be 0 to 100000") }
        if let after = request.reinsertAfterMs, !(0...600_000).contains(after) {
            throw BadRequest(detail: "reinsertAfterMs must be 0 to 600000")
        }
        try await self.simulator.armRemoval(
            afterAPDUs: request.apdus,
            reinsertAfter: request.reinsertAfterMs.map { .milliseconds($0) }
        )
        return .json(await self.simulator.cardOnReader)
    }

    /// Waits (bounded by ``connectTimeout``) until the simulator has made a vpcd connection after
    /// `connections` and holds it. Polls: the simulator's link has no event for it, and this is a control path.
    private func waitForConnection(after connections: Int) async {
        let clock = ContinuousClock()
        let deadline = clock.now + self.connectTimeout
        while clock.now < deadline {
            if await self.simulator.connectionCount > connections, await self.simulator.isConnected { return }
            guard (try? await Task.sleep(for: .milliseconds(10))) != nil else { return }
        }
    }

    private func withJSONBody<Body: Decodable>(
        _ request: CardSimulatorControlRequest,
        _ type: Body.Type,
        _ body: (Body) async throws -> CardSimulatorControlResponse
    ) async -> CardSimulatorControlResponse {
        let mediaType = request.contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
        guard mediaType?.lowercased() == "application/json" else {
            return .problem(415, "Unsupported media type", "send the body as application/json")
        }
        let decoded: Body
        do {
            decoded = try JSONDecoder().decode(Body.self, from: Data(request.body))
        } catch {
            return .problem(400, "Bad request", "the body is not the expected JSON object: \(Self.describe(error))")
        }
        do {
            return try await body(decoded)
        } catch let error as BadRequest {
            return .problem(400, "Bad request", error.detail)
        } catch let error as CardSimulatorError where error.code == .invalidConfiguration {
            return .problem(400, "Bad request", error.reason)
        } catch {
            self.logger.error("control: request failed", metadata: ["kyukyu.sim.error": "\(error)"])
            return .problem(500, "Internal error", "the simulator could not do this; see its log")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _): "\"\(key.stringValue)\" is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "\"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        case .dataCorrupted: "not JSON"
        case .none: "unreadable"
        @unknown default: "unreadable"
        }
    }
}
