import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

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

/// The boundary to onshi: one exchange, bounded by an absolute deadline that covers the body too.
///
/// ``HTTPOnshiTransport`` is the real one (HTTPS with the terminal's client certificate); tests use doubles.
public protocol OnshiTransport: Sendable {
    /// Sends the request and returns the complete response, or throws an ``EligibilityError``.
    ///
    /// Must return or throw by `deadline`, must refuse a body larger than `maxBodyBytes`, and must stop
    /// its network work when the calling task is cancelled.
    func exchange(_ request: OnshiHTTPRequest, deadline: ContinuousClock.Instant, maxBodyBytes: Int) async throws
        -> OnshiHTTPResponse
    /// Opens connections ahead of need, so that a tap on the card does not pay for TLS handshakes.
    func prewarm(connections: Int) async
}

/// The terminal's TLS identity: its client certificate and key, and the CA that signs onshi's server certificate.
public struct TerminalTLSFiles: Sendable, Hashable {
    /// PEM file with the terminal's client certificate (chain).
    public var certificatePath: String
    /// PEM file with the terminal's private key.
    public var keyPath: String
    /// PEM file with the CA that issued onshi's server certificate.
    public var trustRootsPath: String

    /// Creates the file set.
    public init(certificatePath: String, keyPath: String, trustRootsPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.trustRootsPath = trustRootsPath
    }
}

/// HTTPS to onshi with mutual TLS over async-http-client: one client per process, kept-alive connections.
public final class HTTPOnshiTransport: OnshiTransport {
    let client: HTTPClient
    let baseURL: String
    let logger: Logger

    /// Creates the transport.
    /// - Parameters:
    ///   - baseURL: e.g. `https://127.0.0.1:8443`.
    ///   - tls: The terminal's certificate, key and onshi's CA.
    ///   - maxConnections: Kept-alive HTTP/1.1 connections; one per category fetched in parallel, per session.
    public init(baseURL: String, tls: TerminalTLSFiles, maxConnections: Int = 16, logger: Logger) throws {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        do {
            tlsConfiguration.certificateChain = try NIOSSLCertificate.fromPEMFile(tls.certificatePath).map {
                .certificate($0)
            }
            tlsConfiguration.privateKey = .privateKey(try NIOSSLPrivateKey(file: tls.keyPath, format: .pem))
            tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(tls.trustRootsPath))
        } catch {
            throw EligibilityError.configuration("cannot load the terminal's TLS files: \(error)")
        }
        tlsConfiguration.minimumTLSVersion = .tlsv12
        // A connection closed around a stalled or cancelled request waits this long for onshi's close_notify
        // (NIOSSL's default is 5 s, which held every exit and shutdown of the client for 5 s).
        tlsConfiguration.shutdownTimeout = .milliseconds(100)
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tlsConfiguration,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(2), read: .seconds(30)),
            connectionPool: .init(
                idleTimeout: .seconds(120),
                concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections
            ),
            decompression: .disabled
        )
        configuration.httpVersion = .automatic
        self.client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.logger = logger
    }

    /// Closes the connections.
    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Opens `connections` connections at once with cheap requests.
    public func prewarm(connections: Int) async {
        let deadline = ContinuousClock.now + .seconds(3)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    _ = try? await self.exchange(
                        OnshiHTTPRequest(method: .get, path: "/onshi/v1/health"),
                        deadline: deadline,
                        maxBodyBytes: 4096
                    )
                }
            }
        }
    }

    /// One exchange; the deadline covers the response head and the whole body.
    public func exchange(_ request: OnshiHTTPRequest, deadline: ContinuousClock.Instant, maxBodyBytes: Int)
        async throws -> OnshiHTTPResponse
    {
        var http = HTTPClientRequest(url: baseURL + request.path)
        http.method = request.method == .get ? .GET : .POST
        http.headers.add(name: "Accept", value: "application/xml")
        if request.method == .post {
            http.headers.add(name: "Content-Type", value: "application/xml; charset=utf-8")
            http.body = .bytes(request.body)
        }
        let client = self.client
        let prepared = http
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else { throw EligibilityError.timedOut("no time left for the request") }
        return try await withDeadline(deadline) {
            let response: HTTPClientResponse
            do {
                response = try await client.execute(prepared, timeout: .nanoseconds(Int64(remaining.nanoseconds)))
            } catch {
                throw Self.map(error, beforeResponse: true)
            }
            if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBodyBytes {
                throw EligibilityError.responseTooLarge(limit: maxBodyBytes)
            }
            let body: ByteBuffer
            do {
                body = try await response.body.collect(upTo: maxBodyBytes)
            } catch is NIOTooManyBytesError {
                throw EligibilityError.responseTooLarge(limit: maxBodyBytes)
            } catch {
                throw Self.map(error, beforeResponse: false)
            }
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds($0) }
            return OnshiHTTPResponse(
                status: Int(response.status.code),
                retryAfter: retryAfter,
                body: Array(body.readableBytesView)
            )
        }
    }

    /// Maps a transport failure to the code a paramedic can act on.
    static func map(_ error: any Error, beforeResponse: Bool) -> EligibilityError {
        if let error = error as? EligibilityError { return error }
        if error is CancellationError { return .cancelled() }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .socksHandshakeTimeout, .tlsHandshakeTimeout:
                return .unreachable("no connection to onshi (connect timed out)")
            case .deadlineExceeded, .readTimeout:
                return .timedOut("onshi did not answer in time")
            case .cancelled:
                return .cancelled()
            case .remoteConnectionClosed:
                return beforeResponse
                    ? .unreachable("onshi closed the connection before answering")
                    : .connectionLost("the connection to onshi broke during the answer")
            default:
                break
            }
        }
        if error is NIOSSLError {
            return .unreachable("TLS with onshi failed (check the terminal certificate)")
        }
        if let io = error as? IOError {
            return beforeResponse
                ? .unreachable("no connection to onshi (\(String(cString: strerror(io.errnoCode))))")
                : .connectionLost("the connection to onshi broke (\(String(cString: strerror(io.errnoCode))))")
        }
        return beforeResponse
            ? .unreachable("no connection to onshi (\(type(of: error)))")
            : .connectionLost("the answer from onshi was cut off (\(type(of: error)))")
    }
}

/// Runs `body`, and throws ``EligibilityError/Code/timedOut`` (cancelling it) if it has not finished by `deadline`.
///
/// This is where deadlines are enforced: in the policy, not in the transport's own timeouts, which stop at the
/// response head.
public func withDeadline<T: Sendable>(
    _ deadline: ContinuousClock.Instant,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(until: deadline, clock: .continuous)
            return nil
        }
        defer { group.cancelAll() }
        for try await result in group {
            if let result { return result }
            throw EligibilityError.timedOut("no complete answer from onshi before the deadline")
        }
        throw EligibilityError.cancelled()
    }
}

extension Duration {
    /// Whole nanoseconds.
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
