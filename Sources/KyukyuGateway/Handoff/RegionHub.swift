import AsyncHTTPClient
public import Foundation
public import KyukyuDomain
import KyukyuWorkflow
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

// The regional hub's ambulance API beside the handoff (docs/architecture.md, "Regional hub"): the hospitals'
// acceptance publications as a live stream, and placement requests sent to several hospitals at once, answered on
// the device event stream. The same mutual-TLS client as the documents; nothing here carries patient data but
// the placement's summary (an age band, sex, complaint, triage, needs, ETA), and that only in a request body.

/// One message of the device event stream the gateway acts on.
public enum ReceiverMessage: Sendable, Hashable {
    /// A status of the handoff.
    case handoff(ReceiverEvent)
    /// A hospital's answer to a placement request.
    case placement(PlacementMessage)
}

/// A hospital's answer to one of this gateway's placement requests (`event: placement` on the device stream).
public struct PlacementMessage: Sendable, Hashable {
    /// The event's id (the device stream's sequence, for `Last-Event-ID`).
    public var id: String?
    /// The request.
    public var placement: UUID
    /// The incident's document set.
    public var documentSet: UUID
    /// The hospital that answered.
    public var hospital: HospitalCode
    /// Its answer.
    public var answer: PlacementAnswer
    /// Why it declined, with its staff's note (declined only).
    public var divert: Divert?
    /// When it answered, as the hub says.
    public var at: Date?

    /// A message.
    public init(
        id: String?,
        placement: UUID,
        documentSet: UUID,
        hospital: HospitalCode,
        answer: PlacementAnswer,
        divert: Divert? = nil,
        at: Date? = nil
    ) {
        self.id = id
        self.placement = placement
        self.documentSet = documentSet
        self.hospital = hospital
        self.answer = answer
        self.divert = divert
        self.at = at
    }
}

/// A placement request as the hub takes it (`POST /ambulance/v1/placements`).
public struct PlacementRequest: Sendable, Hashable {
    /// The request's id (the idempotency key: the same id with the same content is the same request).
    public var placement: UUID
    /// The incident's document set.
    public var documentSet: UUID
    /// The hospitals asked (1 to 10).
    public var hospitals: [HospitalCode]
    /// What they are told.
    public var summary: PlacementSummary

    /// A request.
    public init(placement: UUID, documentSet: UUID, hospitals: [HospitalCode], summary: PlacementSummary) {
        self.placement = placement
        self.documentSet = documentSet
        self.hospitals = hospitals
        self.summary = summary
    }

    /// The request's JSON body (keys sorted, so that a resend is byte for byte the same).
    public func body() throws -> Data {
        struct Body: Encodable {
            var placement: String
            var documentSet: String
            var hospitals: [String]
            var summary: PlacementSummary
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(
            Body(
                placement: placement.uuidString.lowercased(),
                documentSet: "urn:uuid:\(documentSet.uuidString.lowercased())",
                hospitals: hospitals.map(\.rawValue),
                summary: summary
            )
        )
    }
}

/// The hub's view of a placement request: each hospital's answer.
public struct PlacementHubView: Sendable, Hashable {
    /// The request.
    public var placement: UUID
    /// Each asked hospital's answer.
    public var answers: [HospitalCode: PlacementAnswer]

    /// A view.
    public init(placement: UUID, answers: [HospitalCode: PlacementAnswer]) {
        self.placement = placement
        self.answers = answers
    }

    /// The view in a response body (`{"placement":…,"documentSet":…,"answers":{code: answer}}`); nil when it is not
    /// one. Unknown answers are left out.
    static func decode(_ data: Data) -> PlacementHubView? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let text = object["placement"] as? String, let placement = UUID(uuidString: text)
        else { return nil }
        var answers: [HospitalCode: PlacementAnswer] = [:]
        for (code, value) in object["answers"] as? [String: Any] ?? [:] {
            guard let code = HospitalCode(rawValue: code), let word = value as? String,
                let answer = PlacementAnswer(rawValue: word)
            else { continue }
            answers[code] = answer
        }
        return PlacementHubView(placement: placement, answers: answers)
    }
}

/// What one call about a placement request came to.
public enum PlacementCallResult: Sendable, Hashable {
    /// The hub holds the request (stored, the same again, cancelled, or read), with its answers.
    case done(PlacementHubView)
    /// It may pass (no network, the hub down or busy): try again later. The words are for the crew.
    case retry(String)
    /// The hub refused because of the request's state: the same id with other content, or a cancel after a
    /// hospital accepted. The words are for the crew.
    case conflict(String)
    /// The hub refused it for good (invalid, this ambulance unknown). The words are for the crew.
    case refused(String)

    /// The words when the gateway has no hub to talk to.
    public static let noHub = "this ambulance cannot reach the regional hub yet; the request waits"

    /// What an answer means.
    static func result(status: HTTPResponseStatus, body: Data) -> PlacementCallResult {
        switch status.code {
        case 200, 201:
            guard let view = PlacementHubView.decode(body) else {
                return .refused("the regional hub's answer could not be read")
            }
            return .done(view)
        case 408, 425, 429, 500...599: return .retry("the regional hub is busy or failing (HTTP \(status.code))")
        case 409: return .conflict("the regional hub holds this request in another state (HTTP 409)")
        case 403: return .refused("the regional hub does not know this ambulance's certificate")
        case 404: return .refused("the regional hub does not know this request")
        default:
            return .refused(
                "the regional hub refused the request (HTTP \(status.code)\(detail(body).map { ": \($0)" } ?? ""))"
            )
        }
    }

    /// An RFC 9457 problem's `detail`, or an OperationOutcome's first diagnostics (the hub never puts patient
    /// data there), at most 200 characters.
    static func detail(_ body: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
        if let detail = object["detail"] as? String { return String(detail.prefix(200)) }
        if let issues = object["issue"] as? [[String: Any]], let text = issues.first?["diagnostics"] as? String {
            return String(text.prefix(200))
        }
        return nil
    }
}

extension HTTPReceiverClient {
    /// The hub's acceptance stream.
    public func acceptance(from baseURL: String) -> AsyncThrowingStream<HospitalAcceptance, any Error> {
        let client = self.client
        let logger = self.logger
        return AsyncThrowingStream { continuation in
            let task = Task {
                var request = HTTPClientRequest(url: Self.url(baseURL, "/ambulance/v1/acceptance"))
                request.headers.add(name: "Accept", value: "text/event-stream")
                do {
                    let response = try await client.execute(request, timeout: .hours(24 * 365))
                    guard response.status == .ok else {
                        throw ReceiverStreamError(status: Int(response.status.code))
                    }
                    var parser = ServerSentEventParser()
                    let decoder = JSONDecoder()
                    for try await buffer in response.body {
                        for message in parser.feed(Data(buffer: buffer)) where message.event == "acceptance" {
                            do {
                                continuation.yield(
                                    try decoder.decode(HospitalAcceptance.self, from: Data(message.data.utf8))
                                )
                            } catch let error as AcceptanceError {
                                logger.info(
                                    "the hub sent an acceptance publication that does not check",
                                    metadata: ["kyukyu.error": "\(error.kind) \(error.field)"]
                                )
                            } catch {
                                logger.info("the hub sent an acceptance publication that is not JSON")
                            }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Sends a placement request.
    public func submitPlacement(_ request: PlacementRequest, at baseURL: String) async -> PlacementCallResult {
        let body: Data
        do {
            body = try request.body()
        } catch {
            return .refused("the placement request could not be encoded")
        }
        var http = HTTPClientRequest(url: Self.url(baseURL, "/ambulance/v1/placements"))
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.body = .bytes(ByteBuffer(data: body))
        return await placementExchange(http)
    }

    /// Withdraws a placement request.
    public func cancelPlacement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult {
        var http = HTTPClientRequest(
            url: Self.url(baseURL, "/ambulance/v1/placements/\(placement.uuidString.lowercased())/cancel")
        )
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.body = .bytes(ByteBuffer(string: "{}"))
        return await placementExchange(http)
    }

    /// Reads a placement request's answers.
    public func placement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult {
        await placementExchange(
            HTTPClientRequest(url: Self.url(baseURL, "/ambulance/v1/placements/\(placement.uuidString.lowercased())"))
        )
    }

    private func placementExchange(_ request: HTTPClientRequest) async -> PlacementCallResult {
        do {
            let response = try await client.execute(request, timeout: requestTimeout)
            let body = try await response.body.collect(upTo: 64 * 1024)
            return PlacementCallResult.result(status: response.status, body: Data(buffer: body))
        } catch {
            logger.info("the regional hub could not be reached", metadata: ["kyukyu.error": "\(type(of: error))"])
            return .retry("the regional hub cannot be reached")
        }
    }

    /// A `placement` message naming `hospital`, as an answer; nil for anything else.
    static func placementMessage(
        _ message: ServerSentEventParser.Message,
        from hospital: ReceivingHospital
    ) -> PlacementMessage? {
        guard message.event == "placement",
            let object = try? JSONSerialization.jsonObject(with: Data(message.data.utf8)) as? [String: Any],
            let placementText = object["placement"] as? String, let placement = UUID(uuidString: placementText),
            let setText = object["documentSet"] as? String,
            let documentSet = UUID(uuidString: String(setText.dropFirst(setText.hasPrefix("urn:uuid:") ? 9 : 0))),
            let code = object["hospital"] as? String, code == hospital.code.rawValue,
            let answerText = object["answer"] as? String, let answer = PlacementAnswer(rawValue: answerText),
            answer != .pending
        else { return nil }
        var divert: Divert?
        if answer == .declined {
            let reason = (object["reason"] as? String).flatMap(DivertReason.init(rawValue:)) ?? .other
            divert = Divert(reason, note: (object["note"] as? String).map { String($0.prefix(200)) })
        }
        let at = (object["at"] as? String).flatMap { try? Date.ISO8601FormatStyle().parse($0) }
        return PlacementMessage(
            id: message.id,
            placement: placement,
            documentSet: documentSet,
            hospital: hospital.code,
            answer: answer,
            divert: divert,
            at: at
        )
    }

    /// `base` without trailing slashes, then `path`.
    static func url(_ base: String, _ path: String) -> String {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }
}

extension ReceivingHospital {
    /// The receiver's base URL without trailing slashes: hospitals served by one hub share it.
    var baseURL: String {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }
}
