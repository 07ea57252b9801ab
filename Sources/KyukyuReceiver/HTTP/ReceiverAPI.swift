import Foundation
public import HTTPTypes
public import Hummingbird
import KyukyuDomain
public import KyukyuOperations
import Logging

/// The receiver's HTTP API (docs/receiver-api.yaml): the ambulances' intake and event stream (mutual TLS), and the
/// staff's board API (session cookie and CSRF header, like the gateway's).
public struct ReceiverAPI: Sendable {
    /// The staff session cookie's name.
    public static let sessionCookie = "kyukyu_staff_session"
    /// The header every state-changing staff request carries.
    public static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    /// The idempotency header of `POST /fhir/Bundle`.
    public static let idempotencyHeader = HTTPField.Name("Idempotency-Key")!

    let desk: HospitalDesk
    let staff: any StaffAuthenticating
    let identity: any ClientDeviceIdentifying
    let secureCookies: Bool
    let metrics: MetricsExposition?

    /// Assembles the API.
    ///
    /// - Parameters:
    ///   - desk: The receiver's work.
    ///   - staff: Staff sign-in and sessions.
    ///   - identity: Who is calling an ambulance route (``TLSClientCertificateIdentity`` in service).
    ///   - secureCookies: Whether the session cookie is `Secure` (always over TLS).
    ///   - metrics: The process's metrics, served on `GET /metrics` (Prometheus's text format); `nil` serves no
    ///     such route.
    public init(
        desk: HospitalDesk,
        staff: any StaffAuthenticating,
        identity: any ClientDeviceIdentifying = TLSClientCertificateIdentity(),
        secureCookies: Bool = true,
        metrics: MetricsExposition? = nil
    ) {
        self.desk = desk
        self.staff = staff
        self.identity = identity
        self.secureCookies = secureCookies
        self.metrics = metrics
    }

    /// Every route, as (method, path) in OpenAPI's spelling, for the test that compares them with
    /// docs/receiver-api.yaml.
    public static let routes: [(method: String, path: String)] = [
        ("GET", "/health/live"),
        ("GET", "/metrics"),
        ("POST", "/fhir/Bundle"),
        ("GET", "/ambulance/v1/events"),
        ("POST", "/ambulance/v1/document-sets/{set}/withdraw"),
        ("GET", "/ambulance/v1/acceptance"),
        ("POST", "/ambulance/v1/placements"),
        ("GET", "/ambulance/v1/placements/{placement}"),
        ("POST", "/ambulance/v1/placements/{placement}/cancel"),
        ("GET", "/api/v1/session"),
        ("POST", "/api/v1/session"),
        ("DELETE", "/api/v1/session"),
        ("GET", "/api/v1/patients"),
        ("GET", "/api/v1/patients/{set}"),
        ("POST", "/api/v1/patients/{set}/acknowledge"),
        ("POST", "/api/v1/patients/{set}/divert"),
        ("POST", "/api/v1/patients/{set}/arrived"),
        ("GET", "/api/v1/board/events"),
        ("GET", "/api/v1/acceptance"),
        ("PUT", "/api/v1/acceptance"),
        ("GET", "/api/v1/placements"),
        ("POST", "/api/v1/placements/{placement}/accept"),
        ("POST", "/api/v1/placements/{placement}/decline"),
        ("GET", "/board/"),
        ("GET", "/board/{file}"),
    ]

    /// The router.
    public func router() -> Router<ReceiverRequestContext> {
        let router = Router(context: ReceiverRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        router.get("/health/live") { _, _ in Self.json(["status": "live"]) }
        router.get("/metrics") { _, _ in
            // Off when the program was assembled without metrics (tests); never patient data when on.
            guard let metrics else { return Response(status: .notFound) }
            await desk.recordPendingAcknowledgements()
            return Response(
                status: .ok,
                headers: [.contentType: MetricsExposition.contentType, .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render()))
            )
        }
        BoardFiles.bundled.register(on: router)

        // MARK: Ambulance side
        router.post("/fhir/Bundle") { request, context in try await intake(request, context) }
        let ambulance = router.group("ambulance/v1")
        ambulance.get("events") { request, context in
            let device = try await device(request, context)
            let last = try Self.lastEventID(request)
            return Self.eventStream { emit in await desk.runDeviceStream(device: device, lastEventID: last, emit: emit)
            }
        }
        ambulance.post("document-sets/:set/withdraw") { request, context in
            let device = try await device(request, context)
            let set = try Self.set(context)
            let body = try await JSONBody.object(request, context: context, allowed: ["reason", "hospital"])
            let text = try JSONBody.oneOf(body, "reason", WithdrawReason.allCases.map(\.rawValue))
            let hospital = try JSONBody.optionalString(body, "hospital", maxLength: 10).map { text in
                guard let code = HospitalCode(rawValue: text) else {
                    throw ReceiverHTTPError.badRequest("hospital: a 10-digit hospital code")
                }
                return code
            }
            let summary = try await receiver { () async throws(ReceiverError) in
                try await desk.withdraw(set, from: hospital, reason: WithdrawReason(rawValue: text)!, device: device)
            }
            return Self.json(Self.view(summary))
        }

        ambulance.get("acceptance") { request, context in
            _ = try await device(request, context)
            return Self.eventStream { emit in await desk.runAcceptanceStream(emit: emit) }
        }
        ambulance.post("placements") { request, context in
            let device = try await device(request, context)
            let body = try await JSONBody.object(
                request,
                context: context,
                allowed: ["placement", "documentSet", "hospitals", "summary"]
            )
            let id = try Self.uuid(JSONBody.string(body, "placement", minLength: 36, maxLength: 45), "placement")
            let set = try Self.uuid(JSONBody.string(body, "documentSet", minLength: 36, maxLength: 45), "documentSet")
            guard let codes = body["hospitals"] as? [Any] else {
                throw ReceiverHTTPError.badRequest("hospitals: an array of 10-digit hospital codes")
            }
            let hospitals = try codes.map { value in
                guard let text = value as? String, let code = HospitalCode(rawValue: text) else {
                    throw ReceiverHTTPError.badRequest("hospitals: an array of 10-digit hospital codes")
                }
                return code
            }
            let summary: PlacementSummary
            do {
                let object = body["summary"] ?? [String: Any]()
                guard JSONSerialization.isValidJSONObject(object) else { throw PlacementError("summary: an object") }
                summary = try JSONDecoder().decode(
                    PlacementSummary.self,
                    from: try JSONSerialization.data(withJSONObject: object)
                )
            } catch {
                throw ReceiverHTTPError.badRequest("summary: \(Self.decodingReason(error))")
            }
            let (view, created) = try await receiver { () async throws(ReceiverError) in
                try await desk.createPlacement(
                    id,
                    device: device,
                    documentSet: set,
                    hospitals: hospitals,
                    summary: summary
                )
            }
            return Self.json(view.json(), status: created ? .created : .ok)
        }
        ambulance.get("placements/:placement") { request, context in
            let device = try await device(request, context)
            let id = try Self.placement(context)
            let view = try await receiver { () async throws(ReceiverError) in
                guard let view = try await desk.store.placement(id, device: device) else {
                    throw .notFound("no such placement")
                }
                return view
            }
            return Self.json(view.json())
        }
        ambulance.post("placements/:placement/cancel") { request, context in
            let device = try await device(request, context)
            let id = try Self.placement(context)
            _ = try await JSONBody.optionalObject(request, context: context, allowed: [])
            let view = try await receiver { () async throws(ReceiverError) in
                try await desk.cancelPlacement(id, device: device)
            }
            return Self.json(view.json())
        }

        // MARK: Staff side
        let api = router.group("api/v1")
        api.get("session") { request, _ in
            let session = try await session(request)
            return Self.json(sessionView(session))
        }
        api.post("session") { request, context in
            try Self.checkOrigin(request)
            let body = try await JSONBody.object(request, context: context, allowed: ["staffId", "password", "totp"])
            let staffID = try JSONBody.string(body, "staffId", minLength: 1, maxLength: 64)
            let password = try JSONBody.string(body, "password", minLength: 1, maxLength: 256)
            let totp = try JSONBody.string(body, "totp", minLength: 6, maxLength: 6)
            guard let session = await staff.signIn(staffID: staffID, password: password, totp: totp),
                let token = session.token
            else {
                throw ReceiverHTTPError(
                    .unauthorized,
                    "sign-in-failed",
                    issueType: "login",
                    detail: "the staff ID, password or one-time code is wrong, or the account is locked"
                )
            }
            var response = Self.json(sessionView(session))
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
            return response
        }
        api.delete("session") { request, _ in
            _ = try await session(request, csrf: true)
            if let token = request.cookies[Self.sessionCookie]?.value { await staff.endSession(token: token) }
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
        api.get("patients") { request, _ in
            let hospital = try tenant(try await session(request))
            let sets = try await receiver { () async throws(ReceiverError) in
                try await desk.store.openSets(at: hospital)
            }
            var patients: [[String: Any]] = []
            for summary in sets {
                var view = Self.view(summary)
                view["document"] = try await latestDocument(summary)
                patients.append(view)
            }
            return Self.json(["patients": patients])
        }
        api.get("patients/:set") { request, context in
            let hospital = try tenant(try await session(request))
            let set = try Self.set(context)
            let summary = try await receiver { () async throws(ReceiverError) in
                guard let summary = try await desk.store.set(set, at: hospital) else {
                    throw .notFound("no such patient")
                }
                return summary
            }
            var view = Self.view(summary)
            view["document"] = try await latestDocument(summary)
            let versions = try await receiver { () async throws(ReceiverError) in
                try await desk.store.versions(of: set, at: hospital)
            }
            view["versions"] = versions.map { version -> [String: Any] in
                [
                    "version": version.version,
                    "versionIdentifier": version.versionIdentifier,
                    "builtAt": Instant.string(version.builtAt),
                    "receivedAt": Instant.string(version.receivedAt),
                ]
            }
            let events = try await receiver { () async throws(ReceiverError) in
                try await desk.store.events(of: set, at: hospital)
            }
            view["events"] = events.map { $0.json(board: true) }
            return Self.json(view)
        }
        api.post("patients/:set/acknowledge") { request, context in
            let hospital = try tenant(try await session(request, csrf: true))
            let set = try Self.set(context)
            _ = try await JSONBody.optionalObject(request, context: context, allowed: [])
            let summary = try await receiver { () async throws(ReceiverError) in
                try await desk.acknowledge(set, at: hospital)
            }
            return Self.json(Self.view(summary))
        }
        api.post("patients/:set/divert") { request, context in
            let hospital = try tenant(try await session(request, csrf: true))
            let set = try Self.set(context)
            let body = try await JSONBody.object(request, context: context, allowed: ["reason", "note"])
            let reason = try JSONBody.oneOf(body, "reason", DivertReason.allCases.map(\.rawValue))
            let note = try JSONBody.optionalString(body, "note", maxLength: 200)
            let summary = try await receiver { () async throws(ReceiverError) in
                try await desk.divert(set, at: hospital, reason: DivertReason(rawValue: reason)!, note: note)
            }
            return Self.json(Self.view(summary))
        }
        api.post("patients/:set/arrived") { request, context in
            let hospital = try tenant(try await session(request, csrf: true))
            let set = try Self.set(context)
            _ = try await JSONBody.optionalObject(request, context: context, allowed: [])
            let summary = try await receiver { () async throws(ReceiverError) in
                try await desk.arrived(set, at: hospital)
            }
            return Self.json(Self.view(summary))
        }
        api.get("acceptance") { request, _ in
            let hospital = try tenant(try await session(request))
            let acceptance = try await receiver { () async throws(ReceiverError) in
                try await desk.store.acceptance(of: hospital)
            }
            return Self.json(try Self.acceptanceJSON(acceptance, hospital: hospital))
        }
        api.put("acceptance") { request, context in
            let session = try await session(request, csrf: true)
            let hospital = try tenant(session)
            let body = try await JSONBody.object(request, context: context, allowed: ["conditions"])
            guard let conditions = body["conditions"] as? [String: Any], !conditions.isEmpty else {
                throw ReceiverHTTPError.badRequest("conditions: an object of conditions (stroke, stemi, …)")
            }
            var setting: [AcceptanceCondition: ConditionAcceptance] = [:]
            var withdrawing: Set<AcceptanceCondition> = []
            for (name, value) in conditions {
                guard let condition = AcceptanceCondition(rawValue: name) else {
                    throw ReceiverHTTPError.badRequest(
                        "conditions.\(FieldName.shown(name)): not a condition (\(AcceptanceCondition.allCases.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
                if value is NSNull {
                    withdrawing.insert(condition)
                    continue
                }
                do {
                    guard JSONSerialization.isValidJSONObject(value) else { throw PlacementError("an object") }
                    setting[condition] = try JSONDecoder().decode(
                        ConditionAcceptance.self,
                        from: try JSONSerialization.data(withJSONObject: value)
                    )
                } catch {
                    throw ReceiverHTTPError.badRequest("conditions.\(name): \(Self.decodingReason(error))")
                }
            }
            let acceptance = try await receiver { () async throws(ReceiverError) in
                try await desk.publishAcceptance(
                    hospital,
                    setting: setting,
                    withdrawing: withdrawing,
                    staff: session.staffID
                )
            }
            return Self.json(try Self.acceptanceJSON(acceptance, hospital: hospital))
        }
        api.get("placements") { request, _ in
            let hospital = try tenant(try await session(request))
            let views = try await receiver { () async throws(ReceiverError) in
                try await desk.store.placements(at: hospital, pendingOnly: false)
            }
            return Self.json(["placements": views.prefix(100).map { $0.json() }])
        }
        api.post("placements/:placement/accept") { request, context in
            let session = try await session(request, csrf: true)
            let hospital = try tenant(session)
            let id = try Self.placement(context)
            _ = try await JSONBody.optionalObject(request, context: context, allowed: [])
            let view = try await receiver { () async throws(ReceiverError) in
                try await desk.answerPlacement(
                    id,
                    at: hospital,
                    answer: .accepted,
                    reason: nil,
                    note: nil,
                    staff: session.staffID
                )
            }
            return Self.json(view.json())
        }
        api.post("placements/:placement/decline") { request, context in
            let session = try await session(request, csrf: true)
            let hospital = try tenant(session)
            let id = try Self.placement(context)
            let body = try await JSONBody.object(request, context: context, allowed: ["reason", "note"])
            let reason = try JSONBody.oneOf(body, "reason", DivertReason.allCases.map(\.rawValue))
            let note = try JSONBody.optionalString(body, "note", maxLength: 200)
            let view = try await receiver { () async throws(ReceiverError) in
                try await desk.answerPlacement(
                    id,
                    at: hospital,
                    answer: .declined,
                    reason: DivertReason(rawValue: reason),
                    note: note,
                    staff: session.staffID
                )
            }
            return Self.json(view.json())
        }
        api.get("board/events") { request, _ in
            let hospital = try tenant(try await session(request))
            let last = try Self.lastEventID(request)
            return Self.eventStream { emit in
                await desk.runBoardStream(hospital: hospital, lastEventID: last, emit: emit)
            }
        }
        return router
    }

    // MARK: - Intake

    func intake(_ request: Request, _ context: ReceiverRequestContext) async throws -> Response {
        let device = try await device(request, context)
        let type = (request.headers[.contentType] ?? "").lowercased()
        let mediaType = type.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let parameters = type.split(separator: ";").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
        guard mediaType == "application/fhir+json",
            parameters.allSatisfy({ $0 == "charset=utf-8" || $0 == "charset=\"utf-8\"" || $0 == "fhirversion=4.0" })
        else {
            throw ReceiverHTTPError(
                .unsupportedMediaType,
                "unsupported-media-type",
                issueType: "not-supported",
                detail: "send the document as application/fhir+json (charset utf-8)"
            )
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > HospitalDesk.maximumDocumentBytes {
            throw Self.tooLarge
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: HospitalDesk.maximumDocumentBytes)
        } catch {
            throw Self.tooLarge
        }
        let body = Data(buffer.readableBytesView)
        let (outcome, info) = try await refusal { () async throws(HospitalDesk.IntakeRefusal) in
            // `device(_:_:)` has just checked that the device may send.
            try await desk.intake(
                body: body,
                idempotencyKey: request.headers[Self.idempotencyHeader],
                device: device,
                authorized: true
            )
        }
        switch outcome {
        case .created:
            return ReceiverHTTPError.operationOutcome(
                status: .created,
                body: Self.storedOutcome,
                headers: [.location: "/fhir/Bundle/\(info.bundleID)"]
            )
        case .resent:
            return ReceiverHTTPError.operationOutcome(
                status: .ok,
                body: Self.resentOutcome,
                headers: [.location: "/fhir/Bundle/\(info.bundleID)"]
            )
        }
    }

    /// The intake's answers, written once.
    static let storedOutcome = ByteBuffer(
        bytes: ReceiverHTTPError.outcomeJSON([
            HandoffIssue(severity: "information", code: "informational", diagnostics: "stored")
        ])
    )
    static let resentOutcome = ByteBuffer(
        bytes: ReceiverHTTPError.outcomeJSON([
            HandoffIssue(severity: "information", code: "informational", diagnostics: "already stored (resend)")
        ])
    )

    static let tooLarge = ReceiverHTTPError(
        .contentTooLarge,
        "too-large",
        issueType: "too-long",
        detail: "the document is larger than 4 MiB"
    )

    func refusal<T>(_ body: () async throws(HospitalDesk.IntakeRefusal) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            switch error {
            case .badKey(let detail): throw ReceiverHTTPError.badRequest(detail)
            case .invalid(let validation):
                var refusal = ReceiverHTTPError(
                    .badRequest,
                    validation.isInvalidJSON ? "invalid-json" : "invalid-document",
                    issueType: validation.isInvalidJSON ? "structure" : "invalid",
                    detail: validation.isInvalidJSON ? "the body is not valid JSON" : "the document is not valid"
                )
                refusal.issues = validation.issues
                throw refusal
            case .forbidden(let detail):
                throw ReceiverHTTPError(.forbidden, "forbidden", issueType: "security", detail: detail)
            case .wrongDestination:
                throw ReceiverHTTPError(
                    .unprocessableContent,
                    "wrong-destination",
                    issueType: "business-rule",
                    detail: "the document is addressed to another hospital (Encounter.hospitalization.destination)"
                )
            case .conflict(let detail):
                throw ReceiverHTTPError(.conflict, "conflict", issueType: "conflict", detail: detail)
            case .storage:
                throw ReceiverHTTPError(
                    .serviceUnavailable,
                    "storage",
                    issueType: "transient",
                    detail: "the receiver cannot store now; try again"
                )
            }
        }
    }

    // MARK: - Helpers

    func device(_ request: Request, _ context: ReceiverRequestContext) async throws -> String {
        guard let device = await identity.device(of: request, context: context) else {
            throw ReceiverHTTPError.noClientCertificate
        }
        try await refusal { () async throws(HospitalDesk.IntakeRefusal) in try await desk.authorize(device: device) }
        return device
    }

    /// The staff session: 401 without one; with `csrf`, 403 without the session's CSRF header or from another origin.
    func session(_ request: Request, csrf: Bool = false) async throws -> StaffSession {
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty,
            let session = await staff.session(token: token)
        else { throw ReceiverHTTPError.unauthenticated }
        if csrf {
            try Self.checkOrigin(request)
            guard let sent = request.headers[Self.csrfHeader],
                Self.constantTimeEqual(Array(sent.utf8), Array(session.csrfToken.utf8))
            else { throw ReceiverHTTPError.csrf("this request needs the session's X-CSRF-Token header") }
        }
        return session
    }

    /// The hospital whose patients a session sees: its own, or the receiver's one hospital for the staff of a
    /// receiver that serves one. A session of a hospital this receiver does not serve sees nothing (403).
    func tenant(_ session: StaffSession) throws -> HospitalCode {
        if let hospital = session.hospital {
            guard desk.hospitals.contains(hospital) else {
                throw ReceiverHTTPError(
                    .forbidden,
                    "forbidden",
                    issueType: "security",
                    detail: "not a hospital served here"
                )
            }
            return hospital
        }
        guard desk.hospitals.count == 1 else {
            throw ReceiverHTTPError(
                .forbidden,
                "forbidden",
                issueType: "security",
                detail: "this account has no hospital"
            )
        }
        return desk.hospitals[0]
    }

    static func checkOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        guard let host = request.head.authority, origin == "https://\(host)" else {
            throw ReceiverHTTPError.csrf("requests from another origin are refused")
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    func receiver<T>(_ body: () async throws(ReceiverError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw ReceiverHTTPError.from(error)
        }
    }

    func latestDocument(_ summary: DocumentSetSummary) async throws -> Any {
        let versions = try await receiver { () async throws(ReceiverError) in
            try await desk.store.versions(of: summary.documentSet, at: summary.hospital)
        }
        guard let latest = versions.last else { return NSNull() }
        let data = try await receiver { () async throws(ReceiverError) in
            try await desk.store.document(versionIdentifier: latest.versionIdentifier, at: summary.hospital)
        }
        return (try? JSONSerialization.jsonObject(with: data)) ?? NSNull()
    }

    static func set(_ context: ReceiverRequestContext) throws -> UUID {
        guard var text = context.parameters.get("set") else { throw ReceiverHTTPError.notFound("no such document set") }
        if text.hasPrefix("urn:uuid:") { text.removeFirst(9) }
        guard let uuid = UUID(uuidString: text) else { throw ReceiverHTTPError.notFound("no such document set") }
        return uuid
    }

    static func placement(_ context: ReceiverRequestContext) throws -> UUID {
        guard let text = context.parameters.get("placement"), let uuid = UUID(uuidString: text) else {
            throw ReceiverHTTPError.notFound("no such placement")
        }
        return uuid
    }

    /// A UUID, bare or as `urn:uuid:`.
    static func uuid(_ text: String, _ field: String) throws -> UUID {
        let bare = text.hasPrefix("urn:uuid:") ? String(text.dropFirst(9)) : text
        guard let uuid = UUID(uuidString: bare) else { throw ReceiverHTTPError.badRequest("\(field): a UUID") }
        return uuid
    }

    /// What a decoding error says, without the values it read.
    static func decodingReason(_ error: any Error) -> String {
        if let error = error as? PlacementError { return error.reason }
        if let error = error as? AcceptanceError { return error.description }
        if case DecodingError.dataCorrupted(let context) = error { return context.debugDescription }
        if case DecodingError.keyNotFound(let key, _) = error { return "\(key.stringValue) is required" }
        if case DecodingError.typeMismatch(_, let context) = error {
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type"
        }
        if case DecodingError.valueNotFound(_, let context) = error {
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")) is missing"
        }
        return "not valid"
    }

    /// A hospital's publication as JSON; one that never published is an empty revision 0.
    static func acceptanceJSON(_ acceptance: HospitalAcceptance?, hospital: HospitalCode) throws -> Any {
        let value =
            try acceptance ?? HospitalAcceptance(hospital: hospital, conditions: [:], revision: 0, updatedAt: Date())
        return try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value))
    }

    static func lastEventID(_ request: Request) throws -> Int64? {
        guard let text = request.headers[.init("Last-Event-ID")!], !text.isEmpty else { return nil }
        guard let value = Int64(text), value >= 0 else {
            throw ReceiverHTTPError.badRequest("Last-Event-ID must be the id of an event received earlier")
        }
        return value
    }

    static func view(_ summary: DocumentSetSummary) -> [String: Any] {
        var view: [String: Any] = [
            "documentSet": "urn:uuid:" + summary.documentSet.uuidString.lowercased(),
            "set": summary.documentSet.uuidString.lowercased(),
            "device": summary.device,
            "hospital": summary.hospital.rawValue,
            "status": summary.status.rawValue,
            "version": summary.latestVersion,
            "firstReceivedAt": Instant.string(summary.firstReceivedAt),
            "updatedAt": Instant.string(summary.updatedAt),
        ]
        if let reason = summary.reason { view["reason"] = reason }
        if let note = summary.note { view["note"] = note }
        return view
    }

    /// The session as the board reads it, with the hospital whose patients it sees.
    func sessionView(_ session: StaffSession) -> [String: Any] {
        var view: [String: Any] = [
            "staffId": session.staffID, "csrfToken": session.csrfToken,
            "expiresAt": Instant.string(session.expiresAt),
        ]
        if let hospital = try? tenant(session) { view["hospital"] = hospital.rawValue }
        return view
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: ReceiverHTTPError.json(object)))
        )
    }

    static func eventStream(
        _ run: @escaping @Sendable (@escaping @Sendable (String) async throws -> Void) async -> Void
    ) -> Response {
        let body = ResponseBody { writer in
            let (lines, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1024))
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await run { line in continuation.yield(line) }
                    continuation.finish()
                }
                for await line in lines {
                    do {
                        try await writer.write(ByteBuffer(string: line))
                    } catch {
                        break  // The client went away.
                    }
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
