import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import KyukyuDomain
import KyukyuOnshi
import Logging
import NIOCore
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The request context of the onshi endpoints: keeps the channel, for the terminal's client certificate and
/// for the connection-reset fault.
public struct OnshiRequestContext: RequestContext {
    /// Hummingbird's core storage.
    public var coreContext: CoreRequestContextStorage
    /// The connection's channel.
    public let channel: any Channel

    /// Makes a context for a request on `source.channel`.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The device ID of the terminal: the CN of its TLS client certificate; `no-client-certificate` without TLS
    /// (only test servers run without TLS).
    public func deviceID() async -> String {
        guard let certificate = try? await self.channel.nioSSL_peerCertificate().get(),
            let der = try? certificate.toDERBytes()
        else { return "no-client-certificate" }
        return TerminalPKI.deviceID(ofCertificateDER: der) ?? "unnamed-terminal"
    }
}

/// Builds the two servers of the stub: the onshi API (HTTPS with mutual TLS) and the admin API (plain HTTP,
/// loopback).
public enum EligibilitySimServer {
    /// The largest request body accepted (a certificate and a signature fit many times over).
    public static let maxRequestBytes = 256 * 1024

    /// Mutual-TLS configuration: the server certificate, and client certificates required and verified
    /// against the terminal CA (a client without one is refused during the handshake).
    public static func tlsConfiguration(pki: TerminalPKI, logger: Logger) throws -> TLSConfiguration {
        let server = try pki.serverCredentials(logger: logger)
        do {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(server.certificatePEM.utf8)).map {
                    .certificate($0)
                },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(server.keyPEM.utf8), format: .pem))
            )
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(try pki.caCertificatePEM.utf8)))
            tls.minimumTLSVersion = .tlsv12
            return tls
        } catch {
            throw EligibilitySimError.tls("cannot load the server certificate: \(error)")
        }
    }

    /// The onshi API's router.
    public static func onshiRouter(service: EligibilityService, faults: FaultEngine) -> Router<OnshiRequestContext> {
        let router = Router(context: OnshiRequestContext.self)
        router.post("/onshi/v1/nonces") { request, context in
            try await handle(key: "sessions", request: request, context: context, service: service, faults: faults) {
                device,
                body in
                let message = try OnshiXML.decode(NonceRequest.self, from: body)
                return OnshiXML.encode(service.nonce(message, deviceID: device))
            } failure: { result in
                OnshiXML.encode(
                    NonceResponse(
                        header: service.failureHeader(result),
                        result: result,
                        nonceID: nil,
                        nonce: nil,
                        expiresAt: nil
                    )
                )
            }
        }
        router.post("/onshi/v1/sessions") { request, context in
            try await handle(key: "sessions", request: request, context: context, service: service, faults: faults) {
                device,
                body in
                let message = try OnshiXML.decode(AuthenticationRequest.self, from: body)
                return OnshiXML.encode(await service.authenticate(message, deviceID: device))
            } failure: { result in
                OnshiXML.encode(SessionResponse(header: service.failureHeader(result), result: result))
            }
        }
        router.post("/onshi/v1/lookup") { request, context in
            try await handle(key: "sessions", request: request, context: context, service: service, faults: faults) {
                device,
                body in
                let message = try OnshiXML.decode(LookupRequest.self, from: body)
                return OnshiXML.encode(await service.lookup(message, deviceID: device))
            } failure: { result in
                OnshiXML.encode(SessionResponse(header: service.failureHeader(result), result: result))
            }
        }
        router.get("/onshi/v1/sessions/:token/:category") { request, context in
            let token = context.parameters.get("token") ?? ""
            guard let category = context.parameters.get("category").flatMap(MedicalCategory.init(rawValue:)) else {
                return Response(status: .notFound)
            }
            return try await handle(
                key: category.rawValue,
                request: request,
                context: context,
                service: service,
                faults: faults,
                readBody: false
            ) { device, _ in
                OnshiXML.encode(await service.category(token: token, category: category, deviceID: device))
            } failure: { result in
                OnshiXML.encode(
                    CategoryResponse(
                        header: service.failureHeader(result),
                        result: result,
                        category: category,
                        records: .empty(category)
                    )
                )
            }
        }
        return router
    }

    static let xmlType = "application/xml; charset=utf-8"

    static func xmlResponse(_ status: HTTPResponse.Status, _ bytes: [UInt8], extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: xmlType]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func handle(
        key: String,
        request: Request,
        context: OnshiRequestContext,
        service: EligibilityService,
        faults: FaultEngine,
        readBody: Bool = true,
        _ respond: @Sendable (String, [UInt8]) async throws -> [UInt8],
        failure: @Sendable (ProcessingResult) -> [UInt8]
    ) async throws -> Response {
        let decision = await faults.decide(key: key, now: Date())
        if decision.maintenance || decision.failure?.kind == .maintenance {
            return xmlResponse(.serviceUnavailable, failure(.failed(OnshiResultCode.maintenance, "maintenance window")))
        }
        if decision.delayMs > 0 { try await Task.sleep(for: .milliseconds(decision.delayMs)) }
        switch decision.failure?.kind {
        case .serverError:
            let status = HTTPResponse.Status(code: decision.failure?.status ?? 500)
            return xmlResponse(status, failure(.failed(OnshiResultCode.internalError, "internal error")))
        case .throttle:
            let seconds = decision.failure?.retryAfterSeconds ?? 1
            return xmlResponse(
                .tooManyRequests,
                failure(.failed(OnshiResultCode.throttled, "too many requests")),
                extra: [.retryAfter: String(seconds)]
            )
        case .reset:
            await resetConnection(context.channel)
            throw CancellationError()
        default:
            break
        }

        let device = await context.deviceID()
        let bytes: [UInt8]
        var status = HTTPResponse.Status.ok
        do {
            let body = readBody ? Array(buffer: try await request.body.collect(upTo: maxRequestBytes)) : []
            bytes = try await respond(device, body)
        } catch let error as OnshiXMLError {
            status = .badRequest
            bytes = failure(.failed(OnshiResultCode.requestInvalid, error.description))
        } catch is HTTPError {
            status = .contentTooLarge
            bytes = failure(.failed(OnshiResultCode.requestInvalid, "request body too large"))
        }

        guard let failureSpec = decision.failure else { return xmlResponse(status, bytes) }
        switch failureSpec.kind {
        case .dropAfterProcessing:
            await resetConnection(context.channel)
            throw CancellationError()
        case .stall:
            let stall = failureSpec.stallMs ?? 600_000
            return Response(
                status: status,
                headers: [.contentType: xmlType],
                body: ResponseBody(contentLength: bytes.count) { writer in
                    try await Task.sleep(for: .milliseconds(stall))
                    await closeConnection(context.channel)
                    throw CancellationError()
                }
            )
        case .slowDrip:
            let chunk = failureSpec.chunkBytes ?? 64
            let interval = failureSpec.intervalMs ?? 200
            return Response(
                status: status,
                headers: [.contentType: xmlType],
                body: ResponseBody(contentLength: bytes.count) { writer in
                    var offset = 0
                    while offset < bytes.count {
                        let end = min(bytes.count, offset + chunk)
                        try await writer.write(ByteBuffer(bytes: bytes[offset..<end]))
                        offset = end
                        if offset < bytes.count { try await Task.sleep(for: .milliseconds(interval)) }
                    }
                    try await writer.finish(nil)
                }
            )
        case .truncated:
            let fraction = failureSpec.fraction ?? 0.6
            return xmlResponse(status, Array(bytes.prefix(Int(Double(bytes.count) * fraction))))
        case .malformed:
            return xmlResponse(status, malform(bytes))
        case .oversized:
            let size = max(failureSpec.sizeBytes ?? (64 << 20), bytes.count + 8)
            return Response(
                status: status,
                headers: [.contentType: xmlType],
                body: ResponseBody(contentLength: size) { writer in
                    try await writer.write(ByteBuffer(bytes: bytes))
                    var remaining = size - bytes.count - 8
                    try await writer.write(ByteBuffer(string: "\n<!--"))
                    let block = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
                    while remaining > 0 {
                        let n = min(remaining, block.readableBytes)
                        try await writer.write(block.getSlice(at: 0, length: n)!)
                        remaining -= n
                    }
                    try await writer.write(ByteBuffer(string: "-->"))
                    try await writer.finish(nil)
                }
            )
        case .bloated:
            let size = max(failureSpec.sizeBytes ?? (15 << 20), bytes.count)
            // The padding goes before the root's end tag, so the document stays well-formed to the end.
            let rootEnd = bytes.lastIndex(of: UInt8(ascii: "<")) ?? bytes.endIndex
            return Response(
                status: status,
                headers: [.contentType: xmlType],
                body: ResponseBody(contentLength: size) { writer in
                    try await writer.write(ByteBuffer(bytes: bytes[..<rootEnd]))
                    var remaining = size - bytes.count
                    let element = Array("<Pad/>".utf8)
                    let block = ByteBuffer(
                        bytes: Array((0..<(64 * 1024 / element.count)).map { _ in element }.joined())
                    )
                    while remaining >= element.count {
                        let n = min(remaining - remaining % element.count, block.readableBytes)
                        try await writer.write(block.getSlice(at: 0, length: n)!)
                        remaining -= n
                    }
                    if remaining > 0 {
                        try await writer.write(ByteBuffer(repeating: UInt8(ascii: " "), count: remaining))
                    }
                    try await writer.write(ByteBuffer(bytes: bytes[rootEnd...]))
                    try await writer.finish(nil)
                }
            )
        case .serverError, .throttle, .reset, .maintenance:
            return xmlResponse(status, bytes)
        }
    }

    /// A body that is not well-formed: the first end tag of `MessageBody` is misspelt.
    static func malform(_ bytes: [UInt8]) -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let range = text.range(of: "</MessageBody>") else { return Array("<MessageBody>".utf8) + bytes }
        return Array(text.replacingCharacters(in: range, with: "</MessageBodx>").utf8)
    }

    /// Closes the TCP connection with an RST (SO_LINGER 0), below TLS so that no close_notify is sent.
    static func resetConnection(_ channel: any Channel) async {
        if let provider = channel as? any SocketOptionProvider {
            _ = try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        await closeConnection(channel)
    }

    /// Closes the connection below TLS (no close_notify), or the channel when there is no TLS.
    static func closeConnection(_ channel: any Channel) async {
        let closed: Void? = try? await channel.eventLoop.submit {
            let context = try channel.pipeline.syncOperations.context(handlerType: NIOSSLServerHandler.self)
            context.close(promise: nil)
        }.get()
        if closed == nil { _ = try? await channel.close() }
    }

    /// The admin API's router (plain HTTP; bind it to loopback).
    public static func adminRouter(service: EligibilityService, faults: FaultEngine, initialFaults: FaultConfiguration)
        -> Router<BasicRequestContext>
    {
        let router = Router(context: BasicRequestContext.self)
        router.get("/admin/health") { _, _ in json(Array(#"{"status":"ok"}"#.utf8)) }
        router.get("/admin/viewings") { _, _ in
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return json(Array(try encoder.encode(await service.viewings.all())))
        }
        router.get("/admin/faults") { _, _ in json(await faults.current().json()) }
        router.put("/admin/faults") { request, _ in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            do {
                try await faults.replace(try FaultConfiguration.decode(json: body))
            } catch let error as EligibilitySimError {
                return json(Array(try JSONEncoder().encode(["error": error.description])), status: .badRequest)
            }
            return json(await faults.current().json())
        }
        router.get("/admin/revocations") { _, _ in
            json(Array(try JSONEncoder().encode(service.revocations)))
        }
        router.put("/admin/revocations") { request, _ in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            guard let list = try? JSONDecoder().decode(RevocationList.self, from: Data(body)) else {
                return json(Array(#"{"error":"not a revocation list"}"#.utf8), status: .badRequest)
            }
            service.setRevocations(list)
            return json(Array(try JSONEncoder().encode(list)))
        }
        router.post("/admin/reset") { _, _ in
            await service.reset()
            try await faults.replace(initialFaults)
            return json(Array(#"{"status":"reset"}"#.utf8))
        }
        return router
    }

    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }
}
