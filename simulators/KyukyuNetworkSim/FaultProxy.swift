public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix

/// A TCP proxy that plays the mobile network between one ambulance and one service (onshi, or a hospital's
/// receiver): each connection it accepts is forwarded to the upstream address through ``LinkConditions`` (latency
/// with jitter, a bandwidth cap, loss as retransmission, dead zones and resets), which can change at any time
/// (``set(_:)``, or ``follow(_:clock:)`` for a scenario's schedule). TLS passes through untouched.
///
/// Buffers are not bounded: the simulator trusts its drill's clients (a real link's buffers would push back).
public final class FaultProxy: Sendable {
    /// The port the proxy listens on (useful when it was asked for port 0).
    public let port: Int
    private let listener: any Channel
    let core: ProxyCore

    private init(port: Int, listener: any Channel, core: ProxyCore) {
        self.port = port
        self.listener = listener
        self.core = core
    }

    /// Listens on `host`:`port` (0 for any free port) and forwards to `upstreamHost`:`upstreamPort` under
    /// `conditions`. `random` draws the jitter and the losses (uniform in 0..<1; seed it for a repeatable drill).
    public static func start(
        host: String = "127.0.0.1",
        port: Int,
        upstreamHost: String,
        upstreamPort: Int,
        conditions: LinkConditions = LinkConditions(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) async throws -> FaultProxy {
        let core = ProxyCore(conditions: conditions, random: random, logger: logger)
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        Forwarder(core: core, upstream: (upstreamHost, upstreamPort))
                    )
                }
            }
            .bind(host: host, port: port)
            .get()
        guard let bound = listener.localAddress?.port else {
            try? await listener.close()
            throw FaultProxyError("the proxy's listening socket has no port")
        }
        logger.info(
            "network simulator listening",
            metadata: ["kyukyu.netsim.port": "\(bound)", "kyukyu.netsim.upstream": "\(upstreamHost):\(upstreamPort)"]
        )
        return FaultProxy(port: bound, listener: listener, core: core)
    }

    /// The conditions now.
    public var conditions: LinkConditions { core.conditions }

    /// Changes the conditions for every connection, open or new: a reset closes the open ones at once; the end of
    /// a dead zone lets through what it held.
    public func set(_ conditions: LinkConditions) {
        core.set(conditions)
    }

    /// Follows `schedule` from now until it has no more changes (or the task is cancelled), on `clock`.
    public func follow<C: Clock<Duration>>(_ schedule: LinkSchedule, clock: C) async throws {
        let start = clock.now
        var elapsed = 0.0
        set(schedule.conditions(at: 0))
        while let next = schedule.nextChange(after: elapsed) {
            try await clock.sleep(
                until: start.advanced(by: .milliseconds(Int64((next * 1000).rounded()))),
                tolerance: nil
            )
            elapsed = next
            set(schedule.conditions(at: next))
        }
    }

    /// Bytes a dead zone holds now, both directions, every connection (for the control API and tests).
    public var heldBytes: Int { core.heldBytes }

    /// Connections open now.
    public var connections: Int { core.connectionCount }

    /// Stops listening and closes every connection.
    public func close() async {
        try? await listener.close()
        core.closeAll()
    }
}

/// The proxy could not start.
public struct FaultProxyError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}

/// What every connection of one proxy shares: the conditions, the random draws, and the open connections.
final class ProxyCore: Sendable {
    private struct State {
        var conditions: LinkConditions
        var channels: [ObjectIdentifier: any Channel] = [:]
        var held = 0
    }
    private let state: NIOLockedValueBox<State>
    let random: @Sendable () -> Double
    let logger: Logger

    init(conditions: LinkConditions, random: @escaping @Sendable () -> Double, logger: Logger) {
        self.state = NIOLockedValueBox(State(conditions: conditions))
        self.random = random
        self.logger = logger
    }

    var conditions: LinkConditions { state.withLockedValue { $0.conditions } }
    var heldBytes: Int { state.withLockedValue { $0.held } }
    var connectionCount: Int { state.withLockedValue { $0.channels.count } }

    func set(_ conditions: LinkConditions) {
        let channels = state.withLockedValue { state -> [any Channel] in
            state.conditions = conditions
            return Array(state.channels.values)
        }
        logger.debug("network conditions changed", metadata: ["kyukyu.netsim.mode": "\(conditions.mode.rawValue)"])
        for channel in channels {
            channel.eventLoop.execute {
                try? channel.pipeline.syncOperations.handler(type: Forwarder.self).linkChanged()
            }
        }
    }

    func register(_ channel: any Channel) {
        state.withLockedValue { $0.channels[ObjectIdentifier(channel)] = channel }
    }

    func unregister(_ channel: any Channel) {
        _ = state.withLockedValue { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func held(_ delta: Int) {
        state.withLockedValue { $0.held += delta }
    }

    func closeAll() {
        let channels = state.withLockedValue { Array($0.channels.values) }
        for channel in channels { channel.close(promise: nil) }
    }
}

/// One side of one proxied connection: reads what arrives on its channel and sends it to the partner channel at
/// the time the link allows, in order. The accepted side connects the upstream side.
final class Forwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let core: ProxyCore
    private let upstream: (host: String, port: Int)?
    private var context: ChannelHandlerContext?
    private var eventLoop: (any EventLoop)?
    private var partner: (any Channel)?
    private var shaper = LinkShaper()
    /// Pieces waiting for their time, in order.
    private var queue: [(release: Int64, bytes: ByteBuffer)] = []
    private var pumpScheduled = false
    /// Pieces a dead zone holds (or that came before the partner was connected).
    private var held: [ByteBuffer] = []
    private var closing = false

    /// The accepted side (it connects `upstream`), or the upstream side (`upstream` nil, partner given).
    init(core: ProxyCore, upstream: (String, Int)?, partner: (any Channel)? = nil) {
        self.core = core
        self.upstream = upstream.map { (host: $0.0, port: $0.1) }
        self.partner = partner
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.eventLoop = context.eventLoop
    }

    func channelActive(context: ChannelHandlerContext) {
        core.register(context.channel)
        if core.conditions.mode == .reset {
            Self.reset(context.channel)
            return
        }
        guard let upstream else {
            context.read()
            return
        }
        let accepted = context.channel
        let core = self.core
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        Forwarder(core: core, upstream: nil, partner: accepted)
                    )
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    loopBoundSelf.value.partnerConnected(channel)
                case .failure:
                    core.logger.debug("the upstream refused a connection")
                    Self.reset(accepted)
                }
            }
        context.read()
    }

    private func partnerConnected(_ channel: any Channel) {
        partner = channel
        channel.read()
        let waiting = held
        held = []
        core.held(-waiting.reduce(0) { $0 + $1.readableBytes })
        for bytes in waiting { forward(bytes) }
        // The client went away while the upstream connection was being made: nothing more will come.
        if closing, queue.isEmpty { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        forward(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.read()
    }

    private func forward(_ bytes: ByteBuffer) {
        let conditions = core.conditions
        guard partner != nil, conditions.mode == .open else {
            held.append(bytes)
            core.held(bytes.readableBytes)
            return
        }
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        let release = shaper.release(
            bytes: bytes.readableBytes,
            arrivedAt: now,
            conditions: conditions,
            jitterDraw: core.random(),
            lossDraw: core.random()
        )
        queue.append((release, bytes))
        pump()
    }

    /// Sends every piece whose time has come, then waits for the next.
    private func pump() {
        // The loop, not the context: the channel may have closed with pieces still on their way to the partner.
        guard let eventLoop, !pumpScheduled else { return }
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        var sent = false
        while let first = queue.first, first.release <= now {
            queue.removeFirst()
            partner?.write(first.bytes, promise: nil)
            sent = true
        }
        if sent { partner?.flush() }
        if let next = queue.first {
            pumpScheduled = true
            let loopBoundSelf = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.scheduleTask(deadline: .uptimeNanoseconds(UInt64(max(0, next.release)))) {
                loopBoundSelf.value.pumpScheduled = false
                loopBoundSelf.value.pump()
            }
        } else if closing {
            partner?.close(promise: nil)
        }
    }

    /// The conditions changed: reset, or let held bytes through.
    func linkChanged() {
        guard let context else { return }
        switch core.conditions.mode {
        case .reset:
            Self.reset(context.channel)
        case .open:
            guard partner != nil, !held.isEmpty else { return }
            let waiting = held
            held = []
            core.held(-waiting.reduce(0) { $0 + $1.readableBytes })
            for bytes in waiting { forward(bytes) }
        case .blackhole:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.unregister(context.channel)
        // Bytes a dead zone held die with the connection; bytes waiting for the upstream connection still go.
        if partner != nil {
            core.held(-held.reduce(0) { $0 + $1.readableBytes })
            held = []
        }
        // The partner closes once what is on its way has left.
        closing = true
        if queue.isEmpty { partner?.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Closes `channel` with a TCP reset (SO_LINGER 0), as a network that drops the connection does.
    static func reset(_ channel: any Channel) {
        if let provider = channel as? any SocketOptionProvider {
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }
}
