import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// One request to onshi.
public struct OnshiHTTPRequest: Sendable, Hashable {
    /// HTTP method.
    public enum Method: String, Sendable { case get = "GET", post = "POST" }
    /// The method.
    public var method: Method
    /// The path below the base URL, e.g. `/onshi/v1/sessions`.
    public var path: String
    /// The XML body (empty for GET).
    public var body: [UInt8]

    /// Creates a request.
    public init(method: Method, path: String, body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.body = body
    }
}

/// One complete answer from onshi: status and the whole body.
public struct OnshiHTTPResponse: Sendable, Hashable {
    /// HTTP status code.
    public var status: Int
    /// `Retry-After`, when given in seconds.
    public var retryAfter: Duration?
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, retryAfter: Duration? = nil, body: [UInt8]) {
        self.status = status
        self.retryAfter = retryAfter
        self.body = body
    }
}

/// The boundary to onshi: one exchange, with no deadline of its own.
///
/// The client owns every deadline (as swift-certificates' OCSP policy does for its requester): it cancels the
/// calling task when the deadline passes, and tells a timeout from a cancellation itself. ``HTTPOnshiTransport``
/// is the real transport (HTTPS with the terminal's client certificate); tests use doubles.
public protocol OnshiTransport: Sendable {
    /// Sends the request and returns the complete response, or throws an ``EligibilityError``.
    ///
    /// Sets no deadline of its own; stops its network work promptly when the calling task is cancelled;
    /// refuses a body larger than `maxBodyBytes`. Throws ``EligibilityError/Code/unreachable`` only when the
    /// request provably never left (no connection could be made), and ``EligibilityError/Code/connectionLost``
    /// when the connection failed after the request may have been written: only the first is safe to repeat
    /// for a request that records a viewing or consumes a nonce.
    func exchange(_ request: OnshiHTTPRequest, maxBodyBytes: Int) async throws -> OnshiHTTPResponse
    /// The same exchange, with the answer's bytes reserved in `account` as they arrive: when the fetch's budget
    /// cannot hold them, it throws ``EligibilityError/Code/responseTooLarge`` without reading further. A returned
    /// answer's `body.count` bytes stay reserved (the caller releases them once it has decoded the answer); after
    /// a throw, nothing stays reserved.
    func exchange(
        _ request: OnshiHTTPRequest,
        maxBodyBytes: Int,
        account: FetchMemoryAccount
    ) async throws -> OnshiHTTPResponse
    /// Opens connections ahead of need, so that a tap on the card does not pay for TLS handshakes.
    func prewarm(connections: Int) async
}

extension OnshiTransport {
    /// Reserves the answer once it has arrived, for transports (test doubles) that hold whole answers anyway.
    public func exchange(
        _ request: OnshiHTTPRequest,
        maxBodyBytes: Int,
        account: FetchMemoryAccount
    ) async throws -> OnshiHTTPResponse {
        let response = try await exchange(request, maxBodyBytes: maxBodyBytes)
        guard account.reserve(response.body.count) else {
            throw EligibilityError.overMemoryBudget(budget: account.budget.maxHeldBytes)
        }
        return response
    }
}

/// A terminal's mutual-TLS identity towards one service: its client certificate and key, and the CA that signs the
/// service's server certificate. onshi is one such service; the hospitals' receivers are another.
public struct TerminalTLSFiles: Sendable, Hashable {
    /// PEM file with the terminal's client certificate (chain).
    public var certificatePath: String
    /// PEM file with the terminal's private key.
    public var keyPath: String
    /// PEM file with the CA that issued the service's server certificate.
    public var trustRootsPath: String

    /// Creates the file set.
    public init(certificatePath: String, keyPath: String, trustRootsPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.trustRootsPath = trustRootsPath
    }

    /// A client TLS configuration presenting the certificate and trusting only the CA: TLS 1.2 or later, full
    /// verification. Throws when a file cannot be loaded.
    public func clientConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustRootsPath))
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        return configuration
    }
}

/// HTTPS to onshi with mutual TLS over async-http-client: one client per process, kept-alive connections.
///
/// Only `https` base URLs are accepted: the lookup fields carry a name, a birth date and an address.
public final class HTTPOnshiTransport: OnshiTransport {
    private let clients: ReloadableHTTPClient
    var client: HTTPClient { clients.current }
    let baseURL: String
    let logger: Logger

    /// Creates the transport.
    /// - Parameters:
    ///   - baseURL: e.g. `https://127.0.0.1:8443`; anything but an `https` URL with a host (and no user-info,
    ///     query or fragment) is refused with ``EligibilityError/Code/configuration`` before anything is sent.
    ///   - tls: The terminal's certificate, key and onshi's CA.
    ///   - maxConnections: Kept-alive HTTP/1.1 connections; one per category fetched in parallel, per session.
    public init(baseURL: String, tls: TerminalTLSFiles, maxConnections: Int = 16, logger: Logger) throws {
        let base = try Self.validated(baseURL: baseURL)
        do {
            self.clients = try ReloadableHTTPClient(tls: tls) { tlsConfiguration in
                // A connection is closed when its exchange was cancelled (a deadline, a losing hedge); NIOSSL would
                // wait up to 5 s for the peer's close_notify, which a stalled onshi never sends, holding shutdown()
                // that long (ReloadableHTTPClient sets 100 ms).
                var pool = HTTPClient.Configuration.ConnectionPool(
                    idleTimeout: .seconds(120),
                    concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections
                )
                // A failed connection fails the request at once (the client decides whether to try again, within
                // its deadline), with the real cause (refused, TLS refusal) rather than a connect timeout later.
                pool.retryConnectionEstablishment = false
                var configuration = HTTPClient.Configuration(
                    tlsConfiguration: tlsConfiguration,
                    redirectConfiguration: .disallow,
                    // No read timeout: the client's deadline bounds every exchange, body included.
                    timeout: .init(connect: .seconds(2)),
                    connectionPool: pool,
                    decompression: .disabled
                )
                configuration.httpVersion = .automatic
                return configuration
            }
        } catch let error as EligibilityError {
            throw error
        } catch {
            throw EligibilityError.configuration("cannot load the terminal's TLS files: \(error)")
        }
        self.baseURL = base
        self.logger = logger
    }

    /// Uses the terminal's certificate and key as they are now on disk for the next connections (a renewed
    /// certificate, without a restart); the connections open finish as they are. Returns the certificate's
    /// `notAfter`; throws ``EligibilityError/Code/configuration`` and keeps the certificate in use when the files
    /// cannot be read or do not match.
    @discardableResult
    public func reloadTLS() throws -> Date { try clients.reload() }

    /// Checks that `baseURL` is an absolute `https` URL with a host, and returns it without a trailing slash.
    static func validated(baseURL: String) throws -> String {
        guard let components = URLComponents(string: baseURL), let scheme = components.scheme else {
            throw EligibilityError.configuration("the onshi URL must be an https:// URL")
        }
        guard scheme.lowercased() == "https" else {
            throw EligibilityError.configuration(
                "the onshi URL must use https (it was \(scheme)); onshi is reached only over mutual TLS"
            )
        }
        guard let host = components.host, !host.isEmpty else {
            throw EligibilityError.configuration("the onshi URL has no host")
        }
        guard components.user == nil, components.password == nil else {
            throw EligibilityError.configuration("the onshi URL must not carry a user name or password")
        }
        guard components.query == nil, components.fragment == nil else {
            throw EligibilityError.configuration("the onshi URL must not carry a query or fragment")
        }
        return baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    /// Closes the connections.
    public func shutdown() async {
        await clients.shutdown()
    }

    /// Opens `connections` connections at once with cheap requests (each bounded at 3 s: this is not an
    /// exchange of the client's, and nothing waits for its answer).
    public func prewarm(connections: Int) async {
        var http = HTTPClientRequest(url: baseURL + "/onshi/v1/health")
        http.headers.add(name: "Accept", value: "application/xml")
        let request = http
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    guard let response = try? await self.client.execute(request, timeout: .seconds(3)) else { return }
                    _ = try? await response.body.collect(upTo: 4096)
                }
            }
        }
    }

    /// One exchange, with no deadline of its own: the client cancels the calling task at its deadline, which
    /// cancels the request and the body collection.
    public func exchange(_ request: OnshiHTTPRequest, maxBodyBytes: Int) async throws -> OnshiHTTPResponse {
        try await exchange(request, maxBodyBytes: maxBodyBytes, account: nil)
    }

    /// One exchange whose answer is reserved in `account` as it arrives (the whole `Content-Length` at once
    /// when onshi sends one), so that nine large answers are never held together beyond the fetch's budget.
    public func exchange(
        _ request: OnshiHTTPRequest,
        maxBodyBytes: Int,
        account: FetchMemoryAccount
    ) async throws -> OnshiHTTPResponse {
        try await exchange(request, maxBodyBytes: maxBodyBytes, account: Optional(account))
    }

    func exchange(
        _ request: OnshiHTTPRequest,
        maxBodyBytes: Int,
        account: FetchMemoryAccount?
    ) async throws -> OnshiHTTPResponse {
        var http = HTTPClientRequest(url: baseURL + request.path)
        http.method = request.method == .get ? .GET : .POST
        http.headers.add(name: "Accept", value: "application/xml")
        // Whether the request may have left: async-http-client pulls a streamed body only once the request head
        // has been written to a connection. Until then, nothing of the request was sent.
        let probe = SendProbe()
        if request.method == .post {
            http.headers.add(name: "Content-Type", value: "application/xml; charset=utf-8")
            http.body = .stream(
                ProbedBody(bytes: request.body, probe: probe),
                length: .known(Int64(request.body.count))
            )
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(http, deadline: .distantFuture, logger: logger)
        } catch {
            throw Self.map(error, sent: request.method == .post ? probe.pulled : nil)
        }
        let declared = response.headers.first(name: "Content-Length").flatMap(Int.init)
        if let declared, declared > maxBodyBytes {
            throw EligibilityError.responseTooLarge(limit: maxBodyBytes)
        }
        var reserved = 0
        func reserve(_ bytes: Int) throws {
            guard let account else { return }
            guard account.reserve(bytes) else {
                throw EligibilityError.overMemoryBudget(budget: account.budget.maxHeldBytes)
            }
            reserved += bytes
        }
        // Chunks are appended straight into the bytes handed back: one copy of the answer, not a buffer and a copy.
        var body: [UInt8] = []
        do {
            if let declared {
                try reserve(declared)
                body.reserveCapacity(declared)
            }
            for try await chunk in response.body {
                guard body.count + chunk.readableBytes <= maxBodyBytes else {
                    throw EligibilityError.responseTooLarge(limit: maxBodyBytes)
                }
                if body.count + chunk.readableBytes > reserved { try reserve(chunk.readableBytes) }
                body.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            account?.release(reserved)
            if let error = error as? EligibilityError { throw error }
            throw Self.map(error, sent: true)
        }
        // What stays reserved is exactly the answer handed back.
        if reserved > body.count { account?.release(reserved - body.count) }
        let retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds($0) }
        return OnshiHTTPResponse(
            status: Int(response.status.code),
            retryAfter: retryAfter,
            body: body
        )
    }

    /// Maps a transport failure to the code a paramedic can act on.
    ///
    /// `sent` says whether the request may have left: `false` when it provably did not (its body was never
    /// pulled), `true` when it may have, nil when unknown (a GET). ``EligibilityError/Code/unreachable`` only for
    /// a failure to connect of a request that provably never left, or, when unknown, for an error that only
    /// connection set-up produces; everything else is ``EligibilityError/Code/connectionLost``.
    static func map(_ error: any Error, sent: Bool?) -> EligibilityError {
        if let error = error as? EligibilityError { return error }
        if error is CancellationError { return .cancelled() }
        if let error = error as? HTTPClientError, error == .cancelled { return .cancelled() }
        if let refusal = tlsRefusal(error) {
            // BoringSSL's reason names the check that failed, never data of the request.
            let reason = refusal == .other ? "TLS with onshi failed (\(error))" : reason(for: refusal)
            return sent == false ? .unreachable(reason, tls: refusal) : .connectionLost(reason, tls: refusal)
        }
        if let cause = connectFailure(error), sent == false || (sent == nil && isConnectPhase(error)) {
            return .unreachable("no connection to onshi (\(cause))")
        }
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed {
            return .connectionLost("onshi closed the connection before it had answered in full")
        }
        if let io = error as? IOError {
            return .connectionLost("the connection to onshi broke (\(String(cString: strerror(io.errnoCode))))")
        }
        return .connectionLost("the exchange with onshi failed (\(type(of: error)))")
    }

    /// A short cause when `error` is a failure to connect, nil otherwise.
    static func connectFailure(_ error: any Error) -> String? {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .socksHandshakeTimeout, .tlsHandshakeTimeout, .httpProxyHandshakeTimeout:
                return "connect timed out"
            default:
                return nil
            }
        }
        if error is NIOConnectionError { return "connection refused or unreachable" }
        if let error = error as? ChannelError, case .connectTimeout = error { return "connect timed out" }
        if let io = error as? IOError, [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ETIMEDOUT].contains(io.errnoCode) {
            return String(cString: strerror(io.errnoCode))
        }
        return nil
    }

    /// Whether `error` can only come from connection set-up, before any request is written on it.
    static func isConnectPhase(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return [.connectTimeout, .socksHandshakeTimeout, .tlsHandshakeTimeout, .httpProxyHandshakeTimeout]
                .contains(error)
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let io = error as? IOError { return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH].contains(io.errnoCode) }
        return error is NIOConnectionError
    }

    /// Which TLS check refused the connection, when `error` is a TLS failure.
    static func tlsRefusal(_ error: any Error) -> EligibilityError.TLSRefusal? {
        if let error = error as? NIOSSLExtraError {
            return error == .failedToValidateHostname || error == .serverHostnameImpossibleToMatch
                ? .hostNameMismatch : .other
        }
        guard error is NIOSSLError || error is BoringSSLError else { return nil }
        let text = String(describing: error).uppercased()
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return .untrustedServer }
        if text.contains("CERTIFICATE_REQUIRED") || text.contains("ALERT_HANDSHAKE_FAILURE")
            || text.contains("ALERT_BAD_CERTIFICATE") || text.contains("ALERT_UNKNOWN_CA")
            || text.contains("ALERT_CERTIFICATE_UNKNOWN") || text.contains("ALERT_ACCESS_DENIED")
            // onshi could not verify what this terminal signed with its certificate's key.
            || text.contains("ALERT_DECRYPT_ERROR")
        {
            return .clientCertificateRefused
        }
        if text.contains("UNSUPPORTED_PROTOCOL") || text.contains("PROTOCOL_VERSION") { return .protocolVersion }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG")
            || text.contains("HTTP_REQUEST")
        {
            return .notTLS
        }
        return .other
    }

    static func reason(for refusal: EligibilityError.TLSRefusal) -> String {
        switch refusal {
        case .untrustedServer:
            return "onshi's server certificate is not from the configured CA; refused (check ca.cert.pem)"
        case .hostNameMismatch:
            return "onshi's server certificate does not name the host of the onshi URL; refused"
        case .clientCertificateRefused:
            return "onshi refused this terminal's certificate (missing, expired or not issued for onshi)"
        case .protocolVersion:
            return "onshi offers no TLS version this terminal accepts (TLS 1.2 or later)"
        case .notTLS:
            return "the onshi URL's port does not speak TLS"
        default:
            return "TLS with onshi failed (check the terminal certificate)"
        }
    }
}

/// Remembers whether async-http-client has started to send a request's body.
final class SendProbe: Sendable {
    private let state = Mutex(false)
    /// Whether the body was pulled: the request head is on a connection and may have reached onshi.
    var pulled: Bool { state.withLock { $0 } }
    func markPulled() { state.withLock { $0 = true } }
}

/// A request body that tells its ``SendProbe`` when async-http-client first asks for it.
struct ProbedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    let probe: SendProbe

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: [UInt8]?
        let probe: SendProbe

        mutating func next() async -> ByteBuffer? {
            probe.markPulled()
            guard let bytes = remaining else { return nil }
            remaining = nil
            return ByteBuffer(bytes: bytes)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        probe.markPulled()
        return AsyncIterator(remaining: bytes, probe: probe)
    }
}

extension Duration {
    /// Whole nanoseconds.
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
