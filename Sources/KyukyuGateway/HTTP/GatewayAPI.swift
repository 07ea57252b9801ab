import Crypto
public import Foundation
public import HTTPTypes
public import Hummingbird
import KyukyuCard
import KyukyuDomain
import KyukyuIncident
import KyukyuOnshi
public import KyukyuOperations
import KyukyuVault
public import KyukyuWorkflow
public import Logging
import ServiceLifecycle

/// The gateway's HTTP API (docs/gateway-api.yaml) and the tablet's files, on one router.
public struct GatewayAPI: Sendable {
    /// The session cookie's name.
    public static let sessionCookie = "kyukyu_session"
    /// The header every state-changing request carries.
    public static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    let desk: IncidentDesk
    let crew: any CrewAuthenticating
    let board: ReaderBoard
    let readiness: Readiness
    let card: any PatientCard
    let ui: UIFiles
    let dispatchToken: String?
    let secureCookies: Bool
    let keepAlive: Duration
    let hospitals: [ReceivingHospital]
    let acceptance: AcceptanceBoard
    let placements: PlacementDispatcher?
    let now: @Sendable () -> Date
    let metrics: MetricsExposition?
    let sampleGauges: @Sendable () async -> Void
    let logger: Logger

    /// Assembles the API over the desk, the crew sessions, the reader and the readiness checks. `hospitals` are the
    /// receiving hospitals the crew may pick; `now` is the clock that times what the crew records (an ETA, a set of
    /// vital signs or a treatment without its own time). With `metrics`, `GET /metrics` serves them in Prometheus's
    /// text format, after `sampleGauges` has brought the state gauges (vault, breaker) up to date. `acceptance` holds
    /// the hospitals' live publications (an empty board when not given); `placements` sends placement requests to
    /// the regional hub (without it, the placement routes answer 409).
    public init(
        desk: IncidentDesk,
        crew: any CrewAuthenticating,
        board: ReaderBoard,
        readiness: Readiness,
        card: any PatientCard,
        ui: UIFiles,
        dispatchToken: String?,
        secureCookies: Bool = true,
        keepAlive: Duration = .seconds(15),
        hospitals: [ReceivingHospital] = ReceivingHospital.demo,
        acceptance: AcceptanceBoard? = nil,
        placements: PlacementDispatcher? = nil,
        now: @escaping @Sendable () -> Date = Date.init,
        metrics: MetricsExposition? = nil,
        sampleGauges: @escaping @Sendable () async -> Void = {},
        logger: Logger
    ) {
        self.metrics = metrics
        self.sampleGauges = sampleGauges
        self.desk = desk
        self.crew = crew
        self.board = board
        self.readiness = readiness
        self.card = card
        self.ui = ui
        self.dispatchToken = dispatchToken
        self.secureCookies = secureCookies
        self.keepAlive = keepAlive
        self.hospitals = hospitals
        self.acceptance = acceptance ?? AcceptanceBoard(hospitals: hospitals.map(\.code))
        self.placements = placements
        self.now = now
        self.logger = logger
    }

    /// Every route the router serves, as (method, path) pairs in OpenAPI's spelling (`{id}`; the tablet's files
    /// under `/ui/` as `/ui/{file}`), recorded as the routes are registered: the OpenAPI document's test compares
    /// this list with docs/gateway-api.yaml.
    public var routes: [(method: String, path: String)] {
        let recorder = RouteRecorder(Router(context: GatewayRequestContext.self))
        register(on: recorder)
        return recorder.routes.map { ($0.method, $0.path == "/ui/**" ? "/ui/{file}" : $0.path) }
    }

    /// The router.
    public func router() -> Router<GatewayRequestContext> {
        let recorder = RouteRecorder(Router(context: GatewayRequestContext.self))
        register(on: recorder)
        return recorder.router
    }

    /// Registers every route on `router`.
    func register(on router: RouteRecorder<GatewayRequestContext>) {
        router.add(middleware: SecurityHeadersMiddleware())
        router.get("/health/live") { _, _ in try json(["status": "live"]) }
        router.get("/metrics") { _, _ in
            // Off when the program was assembled without metrics (tests); never patient data when on.
            guard let metrics else { throw Problem.notFound("metrics are not served by this instance") }
            await sampleGauges()
            return Response(
                status: .ok,
                headers: [.contentType: MetricsExposition.contentType, .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render()))
            )
        }
        router.get("/health/ready") { _, _ in
            let checks = readiness.checks
            let body = ReadyBody(
                status: readiness.isReady ? "ready" : "not-ready",
                checks: [
                    "server": "ok",
                    "vault": checks.vault && checks.restored ? "ok" : "down",
                    "onshiPool": checks.onshi ? "ok" : "warming",
                ]
            )
            return try json(body, status: readiness.isReady ? .ok : .serviceUnavailable)
        }
        ui.register(on: router)

        let api = router.group("api/v1")
        api.get("session") { request, context in
            let session = try await session(request, locked: true)
            return try json(SessionView(session, idleLockSeconds: crew.idleLockSeconds))
        }
        api.post("session") { request, context in
            try checkOrigin(request)
            let body = try await RequestBody.object(request, context: context, allowed: ["crewId", "password", "totp"])
            let crewID = try RequestBody.string(body, "crewId", minLength: 1, maxLength: 64)
            guard Self.isCrewID(crewID) else {
                throw Problem.validation(
                    "crewId",
                    "must be letters, digits, '.', '_' or '-', starting with a letter or digit"
                )
            }
            let password = try RequestBody.string(body, "password", minLength: 1, maxLength: 256)
            let totp = try RequestBody.digits(body, "totp", lengths: [6], words: "the 6 digits of the one-time code")
            let session: CrewSessionInfo
            do {
                session = try await crew.signIn(crewID: crewID, password: password, totp: totp)
            } catch let failure as CrewSessionFailure {
                throw Self.problem(failure)
            }
            var response = try json(SessionView(session, idleLockSeconds: crew.idleLockSeconds))
            if let token = session.token {
                response.setCookie(
                    Cookie(
                        name: Self.sessionCookie,
                        value: token,
                        expires: session.expiresAt,
                        path: "/",
                        secure: secureCookies,
                        httpOnly: true,
                        sameSite: .strict
                    )
                )
            }
            return response
        }
        api.delete("session") { request, context in
            let session = try await session(request, locked: true, csrf: true)
            if let token = request.cookies[Self.sessionCookie]?.value { await crew.endSession(token: token) }
            logger.info("crew signed out", metadata: ["kyukyu.crew": "\(session.crewID)"])
            var response = Response(status: .noContent)
            response.setCookie(
                Cookie(
                    name: Self.sessionCookie,
                    value: "",
                    maxAge: 0,
                    path: "/",
                    secure: secureCookies,
                    httpOnly: true,
                    sameSite: .strict
                )
            )
            return response
        }
        api.post("session/lock") { request, context in
            _ = try await session(request, locked: true, csrf: true)
            if let token = request.cookies[Self.sessionCookie]?.value { await crew.lock(token: token) }
            return Response(status: .noContent)
        }
        api.post("session/unlock") { request, context in
            let current = try await session(request, locked: true, csrf: true)
            let body = try await RequestBody.object(request, context: context, allowed: ["pin"])
            let pin = try RequestBody.digits(body, "pin", lengths: [4, 5, 6], words: "the crew PIN, 4 to 6 digits")
            guard let token = request.cookies[Self.sessionCookie]?.value else { throw Problem.unauthenticated }
            do {
                let unlocked = try await crew.unlock(token: token, pin: pin)
                return try json(SessionView(unlocked, idleLockSeconds: crew.idleLockSeconds))
            } catch let failure as CrewSessionFailure {
                _ = current
                throw Self.problem(failure)
            }
        }

        api.get("reader") { request, _ in
            _ = try await session(request, touch: false)
            return try json(await board.state())
        }

        api.get("incidents") { request, _ in
            _ = try await session(request, touch: false)
            let active = await desk.active
            let open = await desk.openIncidents().map {
                view($0, active: $0.state.id == active, includeSummary: false)
            }
            return try json(IncidentList(incidents: open))
        }
        api.post("incidents") { request, context in
            _ = try await session(request, csrf: true)
            _ = try await RequestBody.object(request, context: context, allowed: [])
            let runner = try await workflow { () throws(WorkflowError) in try await desk.open(source: .crew) }
            var response = try json(view(await runner.snapshot(), active: true), status: .created)
            response.headers[.location] = "/api/v1/incidents/\(runner.id)"
            return response
        }
        api.post("dispatch/incidents") { request, context in
            try checkDispatchToken(request)
            let body = try await RequestBody.object(
                request,
                context: context,
                allowed: ["receivedAt", "location", "note"]
            )
            let facts = DispatchFacts(
                receivedAt: try RequestBody.timestamp(body, "receivedAt"),
                location: try RequestBody.optionalString(body, "location", minLength: 1, maxLength: 500),
                note: try RequestBody.optionalString(body, "note", maxLength: 2000)
            )
            let runner = try await workflow { () throws(WorkflowError) in
                try await desk.open(source: .dispatch, dispatch: facts)
            }
            let active = await desk.active
            var response = try json(
                view(await runner.snapshot(), active: active == runner.id),
                status: .created
            )
            response.headers[.location] = "/api/v1/incidents/\(runner.id)"
            return response
        }
        api.get("incidents/:id") { request, context in
            _ = try await session(request, touch: false)
            let runner = try await runner(context)
            return try json(view(await runner.snapshot(), active: await desk.active == runner.id))
        }
        api.post("incidents/:id/activate") { request, context in
            _ = try await session(request, csrf: true)
            let runner = try await runner(context)
            try await workflow { () throws(WorkflowError) in try await desk.activate(runner.id) }
            return try json(view(await runner.snapshot(), active: true))
        }
        api.post("incidents/:id/consent") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(request, context: context, allowed: ["basis"])
            let text = try RequestBody.oneOf(body, "basis", ConsentBasis.allCases.map(\.rawValue))
            guard let basis = ConsentBasis(rawValue: text) else { throw Problem.validation("basis", "is unknown") }
            let crewID = try Self.crewID(session)
            let snapshot = try await workflow { () throws(WorkflowError) in
                try await runner.recordConsent(basis, by: crewID)
            }
            return try json(view(snapshot, active: await desk.active == runner.id))
        }
        api.post("incidents/:id/pin") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(request, context: context, allowed: ["pin", "confirmLastTry"])
            // The format first: a malformed PIN costs no try.
            let pin = try RequestBody.digits(body, "pin", lengths: [4], words: "the card's PIN, 4 digits")
            let confirm = try RequestBody.bool(body, "confirmLastTry") ?? false
            let crewID = try Self.crewID(session)
            let snapshot = try await workflow { () throws(WorkflowError) in
                try await runner.submitPIN(pin, confirmLastTry: confirm, card: card, by: crewID)
            }
            return try json(view(snapshot, active: await desk.active == runner.id))
        }
        api.post("incidents/:id/lookup") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(
                request,
                context: context,
                allowed: [
                    "kind", "name", "nameKana", "birthDate", "sex", "address", "insurerNumber", "insuredSymbol",
                    "insuredNumber",
                ]
            )
            let fields = try Self.lookupFields(body)
            let crewID = try Self.crewID(session)
            let snapshot = try await workflow { () throws(WorkflowError) in
                try await runner.lookup(try fields.query(), by: crewID)
            }
            return try json(view(snapshot, active: await desk.active == runner.id), status: .accepted)
        }
        api.post("incidents/:id/close") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            _ = try await RequestBody.object(request, context: context, allowed: [])
            let crewID = try Self.crewID(session)
            // The incident withdraws an open placement request itself as it closes (`PlacementWithdrawing`).
            let snapshot = try await workflow { () throws(WorkflowError) in try await runner.close(by: crewID) }
            return try json(view(snapshot, active: false))
        }
        api.get("incidents/:id/details/:category") { request, context in
            _ = try await session(request)
            let runner = try await runner(context)
            guard let name = context.parameters.get("category"), let category = MedicalCategory(rawValue: name) else {
                throw Problem.notFound(
                    "no such category; known: \(MedicalCategory.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard let records = await runner.records(category) else {
                throw Problem.notFound("\(category.rawValue) has not arrived for this incident")
            }
            return try json(CategoryDetails(category: category.rawValue, records: records))
        }
        api.get("incidents/:id/events") { request, context in
            _ = try await session(request, touch: false)
            let runner = try await runner(context)
            return events(runner)
        }
        registerObservations(on: api)
        registerHandoff(on: api)
        registerPlacement(on: api)
    }

    // MARK: - Sessions and CSRF

    /// The signed-in crew member: 401 without a valid session, 423 while locked (unless `locked` allows it),
    /// 403 for a state-changing request without the session's CSRF token or from another origin. A crew action
    /// (`touch`) resets the idle timer.
    func session(
        _ request: Request,
        locked allowLocked: Bool = false,
        csrf: Bool = false,
        touch: Bool = true
    ) async throws -> CrewSessionInfo {
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty else {
            throw Problem.unauthenticated
        }
        let session: CrewSessionInfo
        do {
            session = try await crew.session(token: token)
        } catch {
            throw Self.problem(error)
        }
        if csrf {
            try checkOrigin(request)
            guard let sent = request.headers[Self.csrfHeader],
                Self.constantTimeEqual(Array(sent.utf8), Array(session.csrfToken.utf8))
            else {
                throw Problem.csrf("this request needs the session's X-CSRF-Token header")
            }
        }
        if session.locked && !allowLocked { throw Problem.sessionLocked }
        if touch && !session.locked { await crew.touch(token: token) }
        return session
    }

    /// A request whose `Origin` is not this gateway's own is refused.
    func checkOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        guard let host = request.head.authority,
            origin == "https://\(host)" || origin == "http://\(host)"
        else {
            throw Problem.csrf("requests from another origin are refused")
        }
    }

    func checkDispatchToken(_ request: Request) throws {
        guard let dispatchToken else {
            throw Problem.notFound("dispatch pre-creation is not configured on this gateway")
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            Self.constantTimeEqual(Array(header.dropFirst(7).utf8), Array(dispatchToken.utf8))
        else {
            throw Problem(
                .unauthorized,
                "unauthenticated",
                "Dispatch token",
                detail: "a valid dispatch token is needed"
            )
        }
    }

    /// A crew ID's form (docs/gateway-api.yaml, `SignIn.crewId`).
    static func isCrewID(_ text: String) -> Bool {
        func allowed(_ byte: UInt8, first: Bool) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || (!first && (byte == 0x2E || byte == 0x5F || byte == 0x2D))
        }
        return text.utf8.enumerated().allSatisfy { allowed($0.element, first: $0.offset == 0) }
    }

    /// The lookup's fields, each checked against the document's form (`DemographicsLookup`, `InsuranceLookup`):
    /// the workflow checks the values (a real birth date, non-blank names) and asks onshi.
    static func lookupFields(_ body: [String: JSONValue]) throws -> LookupFields {
        let demographics = ["name", "nameKana", "birthDate", "sex", "address"]
        let insurance = ["insurerNumber", "insuredSymbol", "insuredNumber"]
        switch try RequestBody.oneOf(body, "kind", ["demographics", "insurance"]) {
        case "demographics":
            for key in insurance where body[key] != nil {
                throw Problem.validation(key, "is not a field of a lookup by the four fields")
            }
            if let kana = try RequestBody.optionalString(body, "nameKana", minLength: 1, maxLength: 100),
                !kana.unicodeScalars.allSatisfy({
                    (0x30A0...0x30FF).contains($0.value) || $0 == " " || $0 == "\u{3000}"
                })
            {
                throw Problem.validation("nameKana", "must be katakana and spaces")
            }
            let birthDate = try RequestBody.string(body, "birthDate", maxLength: 10)
            guard birthDate.utf8.count == 10,
                birthDate.utf8.enumerated().allSatisfy({
                    [4, 7].contains($0.offset) ? $0.element == 0x2D : ($0.element >= 0x30 && $0.element <= 0x39)
                })
            else {
                throw Problem.validation("birthDate", "must be YYYY-MM-DD")
            }
            return LookupFields(
                name: try RequestBody.string(body, "name", minLength: 1, maxLength: 100),
                birthDate: birthDate,
                sex: try RequestBody.oneOf(body, "sex", ["male", "female", "other"]),
                address: try RequestBody.string(body, "address", minLength: 1, maxLength: 200)
            )
        default:
            for key in demographics where body[key] != nil {
                throw Problem.validation(key, "is not a field of a lookup by the insurance card")
            }
            return LookupFields(
                insurerNumber: try RequestBody.digits(body, "insurerNumber", lengths: [6, 8], words: "6 or 8 digits"),
                insuredSymbol: try RequestBody.string(body, "insuredSymbol", minLength: 0, maxLength: 40),
                insuredNumber: try RequestBody.string(body, "insuredNumber", minLength: 1, maxLength: 40)
            )
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    static func crewID(_ session: CrewSessionInfo) throws -> CrewID {
        guard let id = CrewID(session.crewID) else { throw Problem.unauthenticated }
        return id
    }

    static func problem(_ error: any Error) -> Problem {
        guard let failure = error as? CrewSessionFailure else { return Problem.unauthenticated }
        switch failure {
        case .signInFailed:
            return Problem(
                .unauthorized,
                "sign-in-failed",
                "Sign-in failed",
                detail: "the crew ID, password or one-time code is wrong"
            )
        case .accountLocked(let seconds):
            var problem = Problem(
                .init(code: 423, reasonPhrase: "Locked"),
                "account-locked",
                "Account locked",
                detail: "too many failed sign-ins: try again in \(seconds) seconds"
            )
            problem.retryAfterSeconds = seconds
            return problem
        case .unauthenticated:
            return Problem.unauthenticated
        case .wrongPIN(let triesLeft):
            var problem = Problem(.unauthorized, "wrong-pin", "Wrong PIN", detail: "the crew PIN is wrong")
            problem.triesLeft = triesLeft
            return problem
        case .invalid(let field, let reason):
            return Problem.validation(field, reason)
        }
    }

    // MARK: - Incidents

    func runner(_ context: GatewayRequestContext) async throws -> IncidentRunner {
        guard let text = context.parameters.get("id"), let id = IncidentID(text) else {
            throw Problem.notFound("no such incident")
        }
        return try await workflow { () throws(WorkflowError) in try await desk.runner(id) }
    }

    func workflow<T>(_ body: () async throws(WorkflowError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw Problem.workflow(error)
        }
    }

    /// The incident's progress as server-sent events: every change of the incident (its full view), the reader's
    /// changes, the hospitals ranked for the patient (at once, and whenever a hospital's acceptance changes), and a
    /// keep-alive comment; it ends when the incident closes or the client goes.
    func events(_ runner: IncidentRunner) -> Response {
        let desk = self.desk
        let board = self.board
        let acceptance = self.acceptance
        let keepAlive = self.keepAlive
        let names = hospitalNames
        let encoder = APIJSON.encoder()
        let body = ResponseBody { writer in
            let (lines, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(16))
            // The picker's ranking for this incident, whole: right after the incident's first view (so that the
            // stream always opens with `incident`), then on every change of any hospital's publication (listened to
            // from the start, so that no change falls between).
            let changes = await acceptance.updates()
            let (opened, open) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            let sendRanking: @Sendable () async -> Void = {
                let snapshot = await runner.snapshot()
                guard snapshot.state.machine.phase != .closed,
                    let data = try? encoder.encode(await self.ranking(snapshot))
                else { return }
                continuation.yield("event: hospitals\ndata: \(String(decoding: data, as: UTF8.self))\n\n")
            }
            await withDiscardingTaskGroup { group in
                group.addTask {
                    var first = true
                    for await snapshot in await runner.updates() {
                        let view = IncidentView(
                            snapshot,
                            active: await desk.active == runner.id,
                            hospitalNames: names
                        )
                        guard let data = try? encoder.encode(view) else { continue }
                        continuation.yield(
                            "event: incident\nid: \(snapshot.state.version)\ndata: \(String(decoding: data, as: UTF8.self))\n\n"
                        )
                        if first {
                            first = false
                            await sendRanking()
                            open.yield()
                            open.finish()
                        }
                    }
                    open.finish()
                    continuation.finish()
                }
                group.addTask {
                    for await _ in opened {}
                    for await _ in changes { await sendRanking() }
                }
                group.addTask {
                    for await state in await board.updates() {
                        guard let data = try? encoder.encode(state) else { continue }
                        continuation.yield("event: reader\ndata: \(String(decoding: data, as: UTF8.self))\n\n")
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await Task.sleep(for: keepAlive)
                        } catch {
                            return
                        }
                        continuation.yield(": keep-alive\n\n")
                    }
                }
                // The stream ends when the service shuts down: the server's graceful shutdown waits for open
                // requests, and this one would otherwise stay open for as long as the incident does.
                await withGracefulShutdownHandler {
                    do {
                        for await line in lines {
                            try await writer.write(ByteBuffer(string: line))
                        }
                    } catch {
                        // The tablet went away.
                    }
                } onGracefulShutdown: {
                    continuation.finish()
                }
                group.cancelAll()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", .init("X-Accel-Buffering")!: "no"],
            body: body
        )
    }
}

/// A router that records each route as it is registered (method and path), so that the list of routes is the
/// router's own, not a copy kept by hand.
final class RouteRecorder<Context: RequestContext>: RouterMethods {
    /// The router the routes go to.
    let router: Router<Context>
    /// The routes registered so far.
    private(set) var routes: [(method: String, path: String)] = []

    init(_ router: Router<Context>) {
        self.router = router
    }

    @discardableResult func on<Responder: HTTPResponder>(
        _ path: RouterPath,
        method: HTTPRequest.Method,
        responder: Responder
    ) -> Self where Responder.Context == Context {
        routes.append((method.rawValue, path.description))
        router.on(path, method: method, responder: responder)
        return self
    }

    @discardableResult func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        router.add(middleware: middleware)
        return self
    }
}

/// One category's raw records, as a plain array, for the details tap.
struct CategoryDetails: Encodable {
    var category: String
    var records: CategoryRecords

    enum CodingKeys: String, CodingKey { case category, records }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(category, forKey: .category)
        switch records {
        case .qualification(let value): try container.encode(value.map { [$0] } ?? [], forKey: .records)
        case .visits(let value): try container.encode(value, forKey: .records)
        case .diagnoses(let value): try container.encode(value, forKey: .records)
        case .medications(let value): try container.encode(value, forKey: .records)
        case .prescriptions(let value): try container.encode(value, forKey: .records)
        case .surgery(let value): try container.encode(value, forKey: .records)
        case .treatment(let value): try container.encode(value, forKey: .records)
        case .checkups(let value): try container.encode(value, forKey: .records)
        case .allergies(let value): try container.encode(value, forKey: .records)
        }
    }
}

struct ReadyBody: Encodable {
    var status: String
    var checks: [String: String]
}

struct IncidentList: Encodable {
    var incidents: [IncidentView]
}

struct SessionView: Encodable {
    var crewId: String
    var locked: Bool
    var expiresAt: Date
    var idleLockSeconds: Int
    var csrfToken: String

    init(_ session: CrewSessionInfo, idleLockSeconds: Int) {
        crewId = session.crewID
        locked = session.locked
        expiresAt = session.expiresAt
        self.idleLockSeconds = idleLockSeconds
        csrfToken = session.csrfToken
    }
}

/// A JSON response.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try APIJSON.encoder().encode(value)
    return Response(
        status: status,
        headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
    )
}

/// Headers on every response: no framing, no sniffing, no referrer, and a content security policy that allows
/// nothing but the gateway itself.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let problem as Problem {
            response = try problem.response(from: request, context: context)
        } catch let error as HTTPError where error.status == .notFound {
            response = try Problem.notFound("no such route").response(from: request, context: context)
        } catch let error as HTTPError {
            response = try Self.problem(error).response(from: request, context: context)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // A fault of the gateway, not of the request: a 500 problem without the error's words (they may name
            // what was being read); the log has the type.
            context.logger.error("request failed", metadata: ["kyukyu.error": "\(type(of: error))"])
            response = try Problem(
                .internalServerError,
                "internal",
                "Gateway fault",
                detail: "the gateway failed to answer; the log says more"
            ).response(from: request, context: context)
        }
        Self.secure(&response)
        return response
    }

    /// Hummingbird's own refusals as the document's problems.
    static func problem(_ error: HTTPError) -> Problem {
        let detail = error.body ?? "refused"
        return switch error.status.code {
        case 413: Problem(.contentTooLarge, "too-large", "Too large", detail: detail)
        case 415: Problem(.unsupportedMediaType, "unsupported-media-type", "Unsupported media type", detail: detail)
        case 400..<500: Problem(.badRequest, "bad-request", "Bad request", detail: detail)
        default: Problem(error.status, "internal", "Gateway fault", detail: detail)
        }
    }

    static func secure(_ response: inout Response) {
        response.headers[.contentSecurityPolicy] =
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.init("X-Frame-Options")!] = "DENY"
    }
}
