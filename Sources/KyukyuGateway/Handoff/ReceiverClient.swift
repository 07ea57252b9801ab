import AsyncHTTPClient
import Foundation
import KyukyuDomain
import KyukyuEligibility
import KyukyuIncident
import KyukyuWorkflow
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// What one delivery attempt came to.
public enum DeliveryResult: Sendable, Hashable {
    /// The receiver took it (201, or 200 for a resend it already holds).
    case delivered
    /// It may pass (no network, the receiver down or busy): try again later. The words are for the crew.
    case retry(String)
    /// The receiver refused it for good (invalid, not for this hospital, a different document under the same
    /// key): it is dropped and the crew told. The words are for the crew.
    case refused(String)
}

/// One status the receiver reported for one of this gateway's document sets.
public struct ReceiverEvent: Sendable, Hashable {
    /// The event's id (for `Last-Event-ID`).
    public var id: String?
    /// The document set.
    public var documentSet: UUID
    /// The hospital that reported it.
    public var hospital: HospitalCode
    /// The status.
    public var status: HandoffStatus
    /// The divert, for ``HandoffStatus/diverted``.
    public var divert: Divert?
}

/// The hospitals' receivers, as the outbox and the event listener use them (HTTPS with the gateway's device
/// certificate; a double in unit tests).
public protocol ReceiverDelivering: Sendable {
    /// `POST {url}/fhir/Bundle` with the document and its idempotency key.
    func post(_ document: Data, versionID: UUID, to hospital: ReceivingHospital) async -> DeliveryResult
    /// `POST {url}/ambulance/v1/document-sets/{set}/withdraw`.
    func withdraw(documentSet: UUID, reason: String, at hospital: ReceivingHospital) async -> DeliveryResult
    /// The receiver's event stream for this device, from after `lastEventID`; ends (or throws) when the
    /// connection does.
    func events(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverEvent, any Error
    >
    /// The same device event stream with every kind of message the gateway acts on: the handoff's statuses and the
    /// answers to placement requests. The default wraps ``events(from:after:)`` (no placement answers).
    func messages(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverMessage, any Error
    >
    /// `GET {baseURL}/ambulance/v1/acceptance`: every publication of the hub's hospitals (a snapshot on connect,
    /// then each change); ends (or throws) when the connection does. The default ends at once (no hub).
    func acceptance(from baseURL: String) -> AsyncThrowingStream<HospitalAcceptance, any Error>
    /// `POST {baseURL}/ambulance/v1/placements`: asks several hospitals at once (idempotent by the request's id).
    func submitPlacement(_ request: PlacementRequest, at baseURL: String) async -> PlacementCallResult
    /// `POST {baseURL}/ambulance/v1/placements/{id}/cancel`: withdraws a request no hospital accepted yet.
    func cancelPlacement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult
    /// `GET {baseURL}/ambulance/v1/placements/{id}`: the request's answers as the hub holds them.
    func placement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult
}

extension ReceiverDelivering {
    /// The handoff's statuses only, from ``events(from:after:)``.
    public func messages(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverMessage, any Error
    > {
        let events = self.events(from: hospital, after: lastEventID)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in events { continuation.yield(.handoff(event)) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// No hub: the stream ends at once.
    public func acceptance(from baseURL: String) -> AsyncThrowingStream<HospitalAcceptance, any Error> {
        AsyncThrowingStream { $0.finish() }
    }

    /// No hub: the request waits.
    public func submitPlacement(_ request: PlacementRequest, at baseURL: String) async -> PlacementCallResult {
        .retry(PlacementCallResult.noHub)
    }

    /// No hub: the cancel waits.
    public func cancelPlacement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult {
        .retry(PlacementCallResult.noHub)
    }

    /// No hub: nothing to read.
    public func placement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult {
        .retry(PlacementCallResult.noHub)
    }
}

/// The gateway's certificate and key for the hospitals' receivers, and the CA that issued their server
/// certificates (`kyukyu-hospital device issue` writes all three).
public typealias ReceiverTLSFiles = TerminalTLSFiles

/// ``ReceiverDelivering`` over async-http-client with mutual TLS.
public final class HTTPReceiverClient: ReceiverDelivering {
    private let clients: ReloadableHTTPClient
    var client: HTTPClient { clients.current }
    let logger: Logger
    /// How long one POST may take, body included.
    let requestTimeout: TimeAmount

    /// A client presenting `tls`'s certificate. Throws when the files cannot be loaded or do not match.
    public init(tls: ReceiverTLSFiles, requestTimeout: TimeAmount = .seconds(10), logger: Logger) throws {
        self.clients = try ReloadableHTTPClient(tls: tls) { configuration in
            var pool = HTTPClient.Configuration.ConnectionPool(idleTimeout: .seconds(60))
            pool.retryConnectionEstablishment = false
            return HTTPClient.Configuration(
                tlsConfiguration: configuration,
                redirectConfiguration: .disallow,
                timeout: .init(connect: .seconds(5)),
                connectionPool: pool,
                decompression: .disabled
            )
        }
        self.requestTimeout = requestTimeout
        self.logger = logger
    }

    /// Uses the device certificate and key as they are now on disk for the next connections (a renewal without
    /// a restart); returns the certificate's `notAfter`, or throws and keeps the one in use.
    @discardableResult
    public func reloadTLS() throws -> Date { try clients.reload() }

    /// Closes the connections.
    public func shutdown() async {
        await clients.shutdown()
    }

    /// Posts one version of the document.
    public func post(_ document: Data, versionID: UUID, to hospital: ReceivingHospital) async -> DeliveryResult {
        var request = HTTPClientRequest(url: Self.url(hospital, "/fhir/Bundle"))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/fhir+json")
        request.headers.add(name: "Idempotency-Key", value: "urn:uuid:\(versionID.uuidString.lowercased())")
        request.body = .bytes(ByteBuffer(data: document))
        return await exchange(request, at: hospital)
    }

    /// Tells the hospital the patient goes elsewhere.
    public func withdraw(documentSet: UUID, reason: String, at hospital: ReceivingHospital) async -> DeliveryResult {
        var request = HTTPClientRequest(
            url: Self.url(hospital, "/ambulance/v1/document-sets/\(documentSet.uuidString.lowercased())/withdraw")
        )
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        // The hospital is named: on a region's hub the same set may be at two hospitals (after a divert).
        request.body = .bytes(
            ByteBuffer(string: #"{"reason":"\#(reason)","hospital":"\#(hospital.code.rawValue)"}"#)
        )
        return await exchange(request, at: hospital)
    }

    private func exchange(_ request: HTTPClientRequest, at hospital: ReceivingHospital) async -> DeliveryResult {
        do {
            let response = try await client.execute(request, timeout: requestTimeout)
            let body = try await response.body.collect(upTo: 64 * 1024)
            return Self.result(status: response.status, body: Data(buffer: body))
        } catch {
            logger.info(
                "a hospital's receiver could not be reached",
                metadata: ["kyukyu.hospital": "\(hospital.code)", "kyukyu.error": "\(type(of: error))"]
            )
            return .retry("the hospital's receiver cannot be reached")
        }
    }

    /// What an answer means for the outbox.
    static func result(status: HTTPResponseStatus, body: Data) -> DeliveryResult {
        switch status.code {
        case 200, 201: return .delivered
        case 408, 425, 429, 500...599: return .retry("the hospital's receiver is busy or failing (HTTP \(status.code))")
        case 409: return .refused("the hospital already holds a different document under this version's key")
        case 422: return .refused("the hospital refused it: this document is for another hospital")
        case 403: return .refused("the hospital does not know this ambulance's certificate")
        case 413: return .refused("the document is too large for the hospital's receiver")
        default:
            return .refused(
                "the hospital refused the document (HTTP \(status.code)\(diagnostics(body).map { ": \($0)" } ?? ""))"
            )
        }
    }

    /// The first issue's diagnostics of an OperationOutcome (the receiver never puts patient data there).
    static func diagnostics(_ body: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let issues = object["issue"] as? [[String: Any]],
            let text = issues.first?["diagnostics"] as? String
        else { return nil }
        return String(text.prefix(200))
    }

    /// The receiver's event stream: the handoff's statuses.
    public func events(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverEvent, any Error
    > {
        let messages = self.messages(from: hospital, after: lastEventID)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await case .handoff(let event) in messages { continuation.yield(event) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The receiver's event stream: the handoff's statuses and the placement answers that name `hospital`.
    public func messages(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverMessage, any Error
    > {
        let client = self.client
        return AsyncThrowingStream { continuation in
            let task = Task {
                var request = HTTPClientRequest(url: Self.url(hospital, "/ambulance/v1/events"))
                request.headers.add(name: "Accept", value: "text/event-stream")
                if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
                do {
                    let response = try await client.execute(request, timeout: .hours(24 * 365))
                    guard response.status == .ok else {
                        throw ReceiverStreamError(status: Int(response.status.code))
                    }
                    var parser = ServerSentEventParser()
                    for try await buffer in response.body {
                        for message in parser.feed(Data(buffer: buffer)) {
                            if let event = Self.event(message, from: hospital) {
                                continuation.yield(.handoff(event))
                            } else if let answer = Self.placementMessage(message, from: hospital) {
                                continuation.yield(.placement(answer))
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

    /// A `handoff` message as an event; nil for anything else (a keep-alive, another kind, a malformed one).
    static func event(_ message: ServerSentEventParser.Message, from hospital: ReceivingHospital) -> ReceiverEvent? {
        guard message.event == "handoff",
            let object = try? JSONSerialization.jsonObject(with: Data(message.data.utf8)) as? [String: Any],
            let setText = object["documentSet"] as? String,
            let documentSet = UUID(uuidString: String(setText.dropFirst(setText.hasPrefix("urn:uuid:") ? 9 : 0))),
            let statusText = object["status"] as? String,
            let status = Self.status(statusText)
        else { return nil }
        if let code = object["hospital"] as? String, code != hospital.code.rawValue { return nil }
        var divert: Divert?
        if status == .diverted {
            let code = (object["reason"] as? String).flatMap(DivertReason.init(rawValue:)) ?? .other
            divert = Divert(code, note: (object["note"] as? String).map { String($0.prefix(200)) })
        }
        return ReceiverEvent(
            id: message.id,
            documentSet: documentSet,
            hospital: hospital.code,
            status: status,
            divert: divert
        )
    }

    /// The receiver's status words (the outbox's own `queued` and `sent`, and `withdrawn`, the echo of the
    /// gateway's own withdrawal, are nothing for the machine).
    static func status(_ text: String) -> HandoffStatus? {
        guard let status = HandoffStatus(rawValue: text),
            [.received, .acknowledged, .diverted, .arrived].contains(status)
        else { return nil }
        return status
    }

    static func url(_ hospital: ReceivingHospital, _ path: String) -> String {
        var base = hospital.url
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }
}

/// The event stream answered with something other than 200.
struct ReceiverStreamError: Error {
    let status: Int
}

/// A `text/event-stream` parser (the HTML standard's rules: `id`, `event`, `data` lines, a blank line ends a
/// message, `:` starts a comment), fed in pieces as they arrive.
public struct ServerSentEventParser: Sendable {
    /// One message.
    public struct Message: Sendable, Hashable {
        /// Its `id`, or the last one seen before it.
        public var id: String?
        /// Its `event` (`message` when none is given).
        public var event: String
        /// Its `data` lines, joined with newlines.
        public var data: String
    }

    private var buffer = Data()
    private var lastID: String?
    private var event: String?
    private var data: [String] = []

    /// An empty parser.
    public init() {}

    /// Feeds bytes and returns every message they completed.
    public mutating func feed(_ bytes: Data) -> [Message] {
        buffer.append(bytes)
        var messages: [Message] = []
        while let newline = buffer.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
            var lineData = buffer[buffer.startIndex..<newline]
            var next = buffer.index(after: newline)
            if buffer[newline] == 0x0D {
                // A lone CR at the end of what has arrived may be half of a CRLF: wait for the next piece.
                if next == buffer.endIndex { break }
                if buffer[next] == 0x0A { next = buffer.index(after: next) }
            }
            if lineData.first == 0xEF, lineData.starts(with: [0xEF, 0xBB, 0xBF]) { lineData = lineData.dropFirst(3) }
            let line = String(decoding: lineData, as: UTF8.self)
            buffer = Data(buffer[next...])
            if line.isEmpty {
                if !data.isEmpty {
                    messages.append(Message(id: lastID, event: event ?? "message", data: data.joined(separator: "\n")))
                }
                event = nil
                data = []
                continue
            }
            if line.hasPrefix(":") { continue }
            let field: Substring
            var value: Substring
            if let colon = line.firstIndex(of: ":") {
                field = line[..<colon]
                value = line[line.index(after: colon)...]
                if value.hasPrefix(" ") { value = value.dropFirst() }
            } else {
                field = Substring(line)
                value = ""
            }
            switch field {
            case "id": if !value.contains("\0") { lastID = String(value) }
            case "event": event = String(value)
            case "data": data.append(String(value))
            default: break
            }
        }
        return messages
    }
}
