import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server for ``CardSimulatorControl``, on 127.0.0.1 only.
///
/// One request per connection (`Connection: close`). Because any web page in a browser on the same machine can
/// send requests to loopback, the server refuses requests carrying an `Origin` header or a `Host` other than a
/// loopback name (DNS rebinding) with 403, and the control takes bodies only as `application/json`, which a page
/// cannot send across origins without a CORS preflight that this server never grants.
///
/// ```swift
/// let server = try await CardSimulatorControlServer.bind(port: 0, control: control, logger: logger)
/// print(server.port)
/// try await server.run()     // until the task is cancelled
/// ```
public final class CardSimulatorControlServer: Sendable {
    /// The loopback port the server listens on (the one asked for, or the one picked for port 0).
    public let port: Int

    private typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    private let listener: NIOAsyncChannel<Connection, Never>
    private let control: CardSimulatorControl
    private let logger: Logger

    /// The largest request body accepted.
    public static let maximumBodyBytes = 16 * 1024

    private init(port: Int, listener: NIOAsyncChannel<Connection, Never>, control: CardSimulatorControl, logger: Logger)
    {
        self.port = port
        self.listener = listener
        self.control = control
        self.logger = logger
    }

    /// Binds 127.0.0.1:`port` (0 picks a free port). Serve with ``run()``.
    ///
    /// - Throws: ``CardSimulatorError/Code/invalidConfiguration`` for a port out of range; NIO's error when the
    ///   port is taken.
    public static func bind(port: Int, control: CardSimulatorControl, logger: Logger) async throws
        -> CardSimulatorControlServer
    {
        guard (0...65535).contains(port) else {
            throw CardSimulatorError.invalidConfiguration("control port \(port) out of range")
        }
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        guard let bound = listener.channel.localAddress?.port else {
            throw CardSimulatorError.invalidConfiguration("the control socket has no local port")
        }
        var logger = logger
        logger[metadataKey: "kyukyu.sim.control_port"] = "\(bound)"
        return CardSimulatorControlServer(port: bound, listener: listener, control: control, logger: logger)
    }

    /// Serves requests until the surrounding task is cancelled; then closes the listener and every open
    /// connection and returns.
    public func run() async throws {
        self.logger.info("control listening on 127.0.0.1")
        let listenerChannel = self.listener.channel
        do {
            try await withTaskCancellationHandler {
                try await self.listener.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in inbound {
                            group.addTask { await self.serve(connection) }
                        }
                    }
                }
            } onCancel: {
                listenerChannel.close(promise: nil)
            }
        } catch  where Task.isCancelled {
            // Closing the listener on cancellation may end the accept loop with an error: that is the stop.
        }
        self.logger.info("control stopped")
    }

    private func serve(_ connection: Connection) async {
        let channel = connection.channel
        await withTaskCancellationHandler {
            do {
                try await connection.executeThenClose { inbound, outbound in
                    var head: HTTPRequestHead?
                    var body = ByteBuffer()
                    var tooLarge = false
                    for try await part in inbound {
                        switch part {
                        case .head(let requestHead):
                            head = requestHead
                        case .body(var chunk):
                            if body.readableBytes + chunk.readableBytes > Self.maximumBodyBytes {
                                tooLarge = true
                            } else {
                                body.writeBuffer(&chunk)
                            }
                        case .end:
                            guard let head else { return }
                            let response: CardSimulatorControlResponse =
                                if tooLarge {
                                    .problem(413, "Too large", "bodies are at most \(Self.maximumBodyBytes) bytes")
                                } else {
                                    await self.respond(to: head, body: body)
                                }
                            try await Self.write(response, for: head, to: outbound)
                            return
                        }
                    }
                }
            } catch {
                self.logger.debug("control connection ended", metadata: ["kyukyu.sim.error": "\(error)"])
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    private func respond(to head: HTTPRequestHead, body: ByteBuffer) async -> CardSimulatorControlResponse {
        if head.headers.contains(name: "origin") {
            return .problem(403, "Forbidden", "the control does not answer requests from web pages")
        }
        guard let host = head.headers.first(name: "host"), Self.isLoopbackHost(host) else {
            return .problem(403, "Forbidden", "the Host header must name the loopback address")
        }
        let request = CardSimulatorControlRequest(
            method: head.method.rawValue,
            path: head.uri,
            contentType: head.headers.first(name: "content-type"),
            body: Array(body.readableBytesView)
        )
        let response = await self.control.respond(to: request)
        self.logger.debug(
            "control request",
            metadata: [
                "kyukyu.sim.method": "\(head.method.rawValue)",
                "kyukyu.sim.status": "\(response.status)",
            ]
        )
        return response
    }

    /// Whether a `Host` header names this machine's loopback (with or without a port).
    static func isLoopbackHost(_ host: String) -> Bool {
        var name = Substring(host.lowercased())
        if name.hasPrefix("["), let end = name.firstIndex(of: "]") {
            name = name[name.index(after: name.startIndex)..<end]
        } else if let colon = name.lastIndex(of: ":") {
            name = name[..<colon]
        }
        return name == "127.0.0.1" || name == "localhost" || name == "::1"
    }

    private static func write(
        _ response: CardSimulatorControlResponse,
        for head: HTTPRequestHead,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType + "; charset=utf-8")
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in response.headers.sorted(by: { $0.key < $1.key }) {
            headers.add(name: name, value: value)
        }
        let responseHead = HTTPResponseHead(
            version: head.version,
            status: HTTPResponseStatus(statusCode: response.status),
            headers: headers
        )
        try await outbound.write(.head(responseHead))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
        try await outbound.write(.end(nil))
    }
}
