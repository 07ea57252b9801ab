public import Logging
public import NIOCore
import NIOPosix
public import NIOSSL
import NIOTLS

/// An HTTP/1.1 endpoint for ``HTTPOpenLoop``: where to connect, the bytes of request `i`, and which answers count as
/// successes. Requests are written as prepared bytes; nothing is encoded per request.
public struct HTTPLoadTarget: Sendable {
    /// The server's host (a name or an address).
    public var host: String
    /// The server's port.
    public var port: Int
    /// TLS per connection: empty for plain HTTP; one context for every connection; or one per connection (connection
    /// `c` uses `tls[c % tls.count]`, e.g. one device certificate per ambulance).
    public var tls: [NIOSSLContext]
    /// The name TLS checks the server's certificate against (the host when nil and the host is a name).
    public var serverHostname: String?
    /// The bytes of request `index` on connection `connection`, called on the connection's event loop.
    public var request: @Sendable (_ index: Int, _ connection: Int) -> ByteBuffer
    /// Whether an answer's status counts as a success (2xx unless told otherwise).
    public var accepts: @Sendable (_ status: Int) -> Bool

    /// A target sending `request(index, connection)` to `host:port`.
    public init(
        host: String,
        port: Int,
        tls: [NIOSSLContext] = [],
        serverHostname: String? = nil,
        accepts: @escaping @Sendable (Int) -> Bool = { (200..<300).contains($0) },
        request: @escaping @Sendable (Int, Int) -> ByteBuffer
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.serverHostname = serverHostname
        self.accepts = accepts
        self.request = request
    }

    /// The bytes of one HTTP/1.1 request with keep-alive: the request line, Host, `headers`, Content-Length when
    /// there is a body, and the body.
    public static func requestBytes(
        method: String = "GET",
        path: String,
        host: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) -> ByteBuffer {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        var buffer = ByteBuffer(string: text)
        if let body { buffer.writeBytes(body) }
        return buffer
    }
}

/// Runs open-loop plans over HTTP/1.1 directly on SwiftNIO, light enough to compare with wrk at saturation.
///
/// Each connection runs its own share of the plan on its event loop: request `i` (for `i ≡ c mod connections`) is due
/// at `start + i / rate`, computed, not timed per request. When the previous answer arrives after the next due time,
/// the next request goes out at once, with no timer; only a connection that is ahead of the plan arms one timer, for
/// the next due time. Latency counts from the due time (corrected for coordinated omission) and from the send
/// (uncorrected), as ``OpenLoop`` counts it.
///
/// A connection the server closes, or that fails, counts its request in flight as failed and reconnects for the next
/// one; a request unanswered after `requestTimeout` closes its connection and counts as failed.
public enum HTTPOpenLoop {
    /// Runs `plan` against `target` on `group`; throws ``LoadError/cannotConnect(_:_:)`` when the connections cannot
    /// be opened before the run. With `stopSendingAfter`, requests not yet sent by then are dropped (and counted):
    /// a plan due faster than the server answers then measures the server's saturation rate.
    public static func run(
        _ plan: OpenLoopPlan,
        against target: HTTPLoadTarget,
        group: any EventLoopGroup,
        requestTimeout: TimeAmount = .seconds(60),
        stopSendingAfter: Duration? = nil,
        logger: Logger
    ) async throws -> LoadResult {
        let total = plan.requests
        let loops = (0..<plan.connections).map { connection in
            ConnectionLoop(
                eventLoop: group.next(),
                connection: connection,
                plan: plan,
                total: total,
                target: target,
                requestTimeout: requestTimeout,
                logger: logger
            )
        }
        do {
            try await EventLoopFuture.andAllSucceed(loops.map { $0.openFirst() }, on: group.any()).get()
        } catch {
            for loop in loops { loop.eventLoop.execute { loop.abandon() } }
            throw LoadError.cannotConnect("\(target.host):\(target.port)", "\(error)")
        }
        // Every connection is open; the plan starts a moment later, on every loop at once.
        let start = NIODeadline.now() + .milliseconds(20)
        let tallies = try await EventLoopFuture.whenAllSucceed(
            loops.map { loop in
                loop.eventLoop.flatSubmit {
                    loop.begin(
                        at: start,
                        stopAt: stopSendingAfter.map { start + .nanoseconds(OpenLoop.nanoseconds($0)) }
                    )
                }
            },
            on: group.any()
        ).get()
        let finished = tallies.map(\.lastAnswer).max() ?? start.uptimeNanoseconds
        let elapsed = Duration.nanoseconds(Int64(finished) - Int64(start.uptimeNanoseconds))
        return LoadResult(merging: tallies.map(\.tally), elapsed: max(elapsed, .zero))
    }
}

/// One connection's share of the plan. Every method runs on `eventLoop`.
final class ConnectionLoop: @unchecked Sendable {  // Safe: confined to `eventLoop`; every method runs on it.
    struct Finished {
        var tally: ConnectionTally
        var lastAnswer: UInt64
    }

    let eventLoop: any EventLoop
    private let connection: Int
    private let step: Int
    private let total: Int
    private let intervalNanoseconds: Double
    private let lateAfterNanoseconds: UInt64
    private let requestTimeoutNanoseconds: UInt64
    private let target: HTTPLoadTarget
    private let logger: Logger

    private var channel: (any Channel)?
    private var connecting = false
    private var start: UInt64 = 0
    private var stopAt: UInt64 = .max
    private var index: Int
    private var inFlight = false
    private var due: UInt64 = 0
    private var sent: UInt64 = 0
    private var lastAnswer: UInt64 = 0
    private var tally = ConnectionTally()
    private var done: EventLoopPromise<ConnectionLoop.Finished>?
    private var watchdog: RepeatedTask?

    init(
        eventLoop: any EventLoop,
        connection: Int,
        plan: OpenLoopPlan,
        total: Int,
        target: HTTPLoadTarget,
        requestTimeout: TimeAmount,
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.connection = connection
        self.step = plan.connections
        self.total = total
        self.intervalNanoseconds = 1e9 / plan.rate
        self.lateAfterNanoseconds = UInt64(max(0, OpenLoop.nanoseconds(plan.lateAfter)))
        self.requestTimeoutNanoseconds = UInt64(max(1, requestTimeout.nanoseconds))
        self.target = target
        self.index = connection
        self.logger = logger
    }

    /// Opens the connection before the run (its time is not measured).
    func openFirst() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { self.connect().map { _ in } }
    }

    /// Closes the connection without running (another connection failed to open).
    func abandon() {
        channel?.close(promise: nil)
        channel = nil
    }

    /// Starts this connection's share of the plan at `start`; the future gives its counts when every request is
    /// answered.
    func begin(at start: NIODeadline, stopAt: NIODeadline?) -> EventLoopFuture<Finished> {
        let promise = eventLoop.makePromise(of: Finished.self)
        self.start = start.uptimeNanoseconds
        self.stopAt = stopAt?.uptimeNanoseconds ?? .max
        self.lastAnswer = self.start
        done = promise
        let timeout = requestTimeoutNanoseconds
        watchdog = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            // One check a second rather than a timer per request: an answer overdue closes the connection.
            if self.inFlight, NIODeadline.now().uptimeNanoseconds &- self.sent > timeout {
                self.logger.info("a request went unanswered; closing its connection", metadata: self.metadata)
                self.channel?.close(promise: nil)
            }
        }
        next()
        return promise.futureResult
    }

    private var metadata: Logger.Metadata { ["kyukyu.load.connection": "\(connection)"] }

    /// Sends the next request when it is due, or finishes.
    private func next() {
        guard index < total else {
            finish()
            return
        }
        let due = start &+ UInt64(Double(index) * intervalNanoseconds)
        let now = NIODeadline.now().uptimeNanoseconds
        if now >= stopAt || due >= stopAt {
            tally.dropped += (total - index + step - 1) / step
            finish()
        } else if now >= due {
            send(due: due, now: now)
        } else {
            eventLoop.scheduleTask(deadline: .uptimeNanoseconds(due)) {
                self.send(due: due, now: NIODeadline.now().uptimeNanoseconds)
            }
        }
    }

    private func send(due: UInt64, now: UInt64) {
        self.due = due
        self.sent = now
        inFlight = true
        if let channel {
            channel.writeAndFlush(target.request(index, connection), promise: nil)
        } else {
            // Closed by the server or after a failure: reconnect; the time it takes counts against this request.
            connect().whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.writeAndFlush(self.target.request(self.index, self.connection), promise: nil)
                case .failure:
                    self.answered(ok: false)
                }
            }
        }
    }

    /// The answer (or the failure) of the request in flight.
    fileprivate func answered(ok: Bool) {
        guard inFlight else { return }
        inFlight = false
        let now = NIODeadline.now().uptimeNanoseconds
        lastAnswer = now
        tally.record(
            correctedNanoseconds: now &- due,
            uncorrectedNanoseconds: now &- sent,
            late: sent &- due > lateAfterNanoseconds,
            ok: ok,
            second: Int((now &- start) / 1_000_000_000)
        )
        index += step
        next()
    }

    fileprivate func received(_ answer: ResponseParser.Answer, on channel: any Channel) {
        guard self.channel === channel else { return }
        if answer.closes {
            // The server closes after this answer: the next request needs a new connection.
            if self.channel === channel { self.channel = nil }
            channel.close(promise: nil)
        }
        answered(ok: target.accepts(answer.status))
    }

    fileprivate func closed(_ channel: any Channel) {
        // Only the connection of the request in flight fails it; an old one closing late does not.
        guard self.channel === channel else { return }
        self.channel = nil
        answered(ok: false)
    }

    private func finish() {
        watchdog?.cancel()
        watchdog = nil
        channel?.close(promise: nil)
        channel = nil
        done?.succeed(Finished(tally: tally, lastAnswer: lastAnswer))
        done = nil
    }

    /// Opens a connection; with TLS, the future completes when the handshake has, so that a run's first requests do
    /// not carry it. The connection becomes this loop's only then: a close before is a failed connect, not a failed
    /// request.
    private func connect() -> EventLoopFuture<any Channel> {
        let target = self.target
        let tls = target.tls.isEmpty ? nil : target.tls[connection % target.tls.count]
        let hostname = target.serverHostname ?? (target.host.first?.isNumber == true ? nil : target.host)
        let ready = eventLoop.makePromise(of: Void.self)
        return ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: hostname)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        LoadConnectionHandler(loop: self, ready: tls == nil ? nil : ready)
                    )
                }
            }
            .connect(host: target.host, port: target.port)
            .flatMapError { error in
                ready.fail(error)
                return self.eventLoop.makeFailedFuture(error)
            }
            .flatMap { channel in
                if tls == nil { ready.succeed() }
                return ready.futureResult.map {
                    self.channel = channel
                    return channel
                }
            }
    }
}

/// Reads answers for its ``ConnectionLoop``.
private final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let loop: ConnectionLoop
    private var parser = ResponseParser()
    /// Completed when the TLS handshake is (nil without TLS, or once completed).
    private var ready: EventLoopPromise<Void>?

    init(loop: ConnectionLoop, ready: EventLoopPromise<Void>?) {
        self.loop = loop
        self.ready = ready
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            ready?.succeed()
            ready = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Answers are handed on after the parser is done with the bytes: handing one on may close the channel, and
        // the close comes back to this handler (channelInactive) at once.
        var first: ResponseParser.Answer?
        var more: [ResponseParser.Answer] = []
        do {
            try parser.feed(unwrapInboundIn(data)) { answer in
                if first == nil { first = answer } else { more.append(answer) }
            }
        } catch {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        if let first { loop.received(first, on: channel) }
        for answer in more { loop.received(answer, on: channel) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready?.fail(ChannelError.ioOnClosedChannel)
        ready = nil
        if let answer = parser.closed() {
            loop.received(answer, on: context.channel)
        }
        loop.closed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready?.fail(error)
        ready = nil
        context.close(promise: nil)
    }
}
