import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuEligibility
import KyukyuGateway
import KyukyuTestbed
import KyukyuWorkflow
import Logging
import NIOCore
import Synchronization

/// Crew sessions in memory for the router tests: one crew member, password `correct horse 1`, TOTP `123456`,
/// PIN `2468`. The real directory (KyukyuCrew, SQLite) is exercised by the gateway's end-to-end test.
final class InMemoryCrew: CrewAuthenticating {
    struct Session: Sendable {
        var crewID: String
        var csrf: String
        var locked: Bool
    }
    let sessions = Mutex<[String: Session]>([:])
    let touches = Mutex(0)
    var idleLockSeconds: Int { 300 }

    func signIn(crewID: String, password: String, totp: String) async throws(CrewSessionFailure) -> CrewSessionInfo {
        guard crewID == "TEST-A1", password == "correct horse 1", totp == "123456" else { throw .signInFailed }
        let token = UUID().uuidString
        let csrf = UUID().uuidString
        sessions.withLock { $0[token] = Session(crewID: crewID, csrf: csrf, locked: false) }
        return CrewSessionInfo(crewID: crewID, token: token, csrfToken: csrf, expiresAt: .distantFuture, locked: false)
    }

    func session(token: String) async throws(CrewSessionFailure) -> CrewSessionInfo {
        guard let session = sessions.withLock({ $0[token] }) else { throw .unauthenticated }
        return CrewSessionInfo(
            crewID: session.crewID,
            token: nil,
            csrfToken: session.csrf,
            expiresAt: .distantFuture,
            locked: session.locked
        )
    }

    func touch(token: String) async { touches.withLock { $0 += 1 } }

    func lock(token: String) async { sessions.withLock { $0[token]?.locked = true } }

    func unlock(token: String, pin: String) async throws(CrewSessionFailure) -> CrewSessionInfo {
        guard pin == "2468" else { throw .wrongPIN(triesLeft: 4) }
        sessions.withLock { $0[token]?.locked = false }
        return try await session(token: token)
    }

    func endSession(token: String) async { _ = sessions.withLock { $0.removeValue(forKey: token) } }
}

let silent = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The API over in-memory doubles: the store, onshi, the card, the crew, and the handoff's builder and outbox.
struct APIHarness {
    let store = InMemoryIncidentStore()
    let outbox = RecordingHandoffOutbox()
    let onshi: InMemoryOnshi
    let card = FakeCard()
    let crew = InMemoryCrew()
    let desk: IncidentDesk
    let board = ReaderBoard()
    let readiness = Readiness()
    let api: GatewayAPI

    /// The API over fresh doubles; `now` is the gateway's clock for what the crew records. With `handoff` the desk
    /// sends documents (``SetBuilder``) to `hospitals` through ``outbox``; without it the terminal has none configured.
    ///
    /// `patient` is the synthetic patient onshi answers for (6 is on dialysis); `acceptance` and `placements` are the
    /// live publications and the hub's placement dispatcher (none by default).
    init(
        now: @escaping @Sendable () -> Date = Date.init,
        hospitals: [ReceivingHospital] = ReceivingHospital.demo,
        handoff: Bool = true,
        patient: Int = 1,
        acceptance: AcceptanceBoard? = nil,
        placements: PlacementDispatcher? = nil
    ) throws {
        onshi = InMemoryOnshi(patient: patient)
        let client = EligibilityClient(
            transport: onshi,
            configuration: EligibilityClientConfiguration(hedgeAfter: nil),
            logger: silent
        )
        desk = IncidentDesk(
            effects: WorkflowEffects(
                store: store,
                fetching: client,
                handoff: handoff
                    ? HandoffEffects(
                        builder: SetBuilder(),
                        outbox: outbox,
                        hospitals: hospitals,
                        placements: placements
                    ) : nil
            ),
            configuration: WorkflowConfiguration(
                terminalID: "ambulance-test",
                deadlines: FetchDeadlines(overall: .seconds(20), perCategory: .seconds(20))
            ),
            logger: silent
        )
        api = GatewayAPI(
            desk: desk,
            crew: crew,
            board: board,
            readiness: readiness,
            card: card,
            ui: try UIFiles(),
            dispatchToken: "dispatch-test-token",
            hospitals: hospitals,
            acceptance: acceptance,
            placements: placements,
            now: now,
            logger: silent
        )
    }

    func application() -> some ApplicationProtocol {
        Application(router: api.router(), logger: silent)
    }
}

/// A signed-in test client: the cookie and the CSRF token.
struct SignedIn {
    var cookie: String
    var csrf: String

    var headers: HTTPFields {
        [.cookie: cookie, GatewayAPI.csrfHeader: csrf, .contentType: "application/json"]
    }

    static func signIn(_ client: some TestClientProtocol) async throws -> SignedIn {
        try await client.execute(
            uri: "/api/v1/session",
            method: .post,
            headers: [.contentType: "application/json"],
            body: ByteBuffer(string: #"{"crewId":"TEST-A1","password":"correct horse 1","totp":"123456"}"#)
        ) { response in
            let setCookie = response.headers[.setCookie] ?? ""
            let cookie = String(setCookie.split(separator: ";").first ?? "")
            let session = try JSONDecoder().decode([String: JSONAny].self, from: Data(response.body.readableBytesView))
            guard case .string(let csrf) = session["csrfToken"] else { throw CancellationError() }
            return SignedIn(cookie: cookie, csrf: csrf)
        }
    }
}

/// Loose JSON for reading responses.
enum JSONAny: Decodable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONAny]), object([String: JSONAny])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONAny].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONAny].self))
        }
    }

    subscript(_ key: String) -> JSONAny? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    var string: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }
}

func body(_ response: TestResponse) throws -> JSONAny {
    try JSONDecoder().decode(JSONAny.self, from: Data(response.body.readableBytesView))
}
