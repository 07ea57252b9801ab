import Clocks
import Foundation
import KyukyuNetworkSim
import Logging
import NIOCore
import NIOPosix
import Testing

/// Echoes every byte back (the upstream behind the proxy).
private final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// A real echo server on loopback, and a client connection to any port.
private struct Loopback {
    let server: any Channel

    static func echo() async throws -> Loopback {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return Loopback(server: server)
    }

    var port: Int { server.localAddress?.port ?? 0 }

    static func connect(_ port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }
}

/// Reads until `count` bytes came, or the stream ended.
private func read(
    _ count: Int,
    from inbound: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
) async throws -> String? {
    var text = ""
    while text.utf8.count < count {
        guard let piece = try await inbound.next() else { return nil }
        text += String(buffer: piece)
    }
    return text
}

private let quiet = Logger(label: "kyukyu.netsim.test") { _ in SwiftLogNoOpLogHandler() }

/// An echo server with a proxy in front of it under `conditions`, for `body`; both closed after.
private func withProxy(
    _ conditions: LinkConditions = LinkConditions(),
    _ body: (FaultProxy) async throws -> Void
) async throws {
    let echo = try await Loopback.echo()
    defer { echo.server.close(promise: nil) }
    let proxy = try await FaultProxy.start(
        port: 0,
        upstreamHost: "127.0.0.1",
        upstreamPort: echo.port,
        conditions: conditions,
        logger: quiet
    )
    do {
        try await body(proxy)
    } catch {
        await proxy.close()
        throw error
    }
    await proxy.close()
}

/// The proxy through real sockets on loopback, with a real echo server behind it.
@Suite("Network simulator: the proxy on loopback", .serialized, .timeLimit(.minutes(1)))
struct FaultProxyTests {
    @Test func bytesPassBothWaysNoSoonerThanTheLatency() async throws {
        try await withProxy(LinkConditions(latencyMilliseconds: 50)) { proxy in
            let client = try await Loopback.connect(proxy.port)
            try await client.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                let start = ContinuousClock.now
                try await outbound.write(ByteBuffer(string: "ping"))
                #expect(try await read(4, from: &iterator) == "ping")
                // A lower bound only (the machine may be slow, never the link fast): 50 ms each way.
                #expect(ContinuousClock.now - start >= .milliseconds(100))
            }
        }
    }

    @Test func aDeadZoneHoldsTheBytesAndLetsThemThroughWhenItEnds() async throws {
        try await withProxy() { proxy in
            let client = try await Loopback.connect(proxy.port)
            try await client.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                try await outbound.write(ByteBuffer(string: "one"))
                #expect(try await read(3, from: &iterator) == "one")
                proxy.set(LinkConditions(mode: .blackhole))
                try await outbound.write(ByteBuffer(string: "two"))
                // The proxy has the bytes and holds them (bounded by the suite's time limit).
                while proxy.heldBytes < 3 { await Task.yield() }
                #expect(proxy.connections == 2, "the client's connection and the upstream one stay open")
                proxy.set(LinkConditions())
                #expect(try await read(3, from: &iterator) == "two")
                #expect(proxy.heldBytes == 0)
            }
        }
    }

    @Test func aResetClosesOpenConnectionsAndRefusesNewOnes() async throws {
        try await withProxy() { proxy in
            let client = try await Loopback.connect(proxy.port)
            try await client.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                try await outbound.write(ByteBuffer(string: "hi"))
                #expect(try await read(2, from: &iterator) == "hi")
                proxy.set(LinkConditions(mode: .reset))
                // The stream ends, or fails with the reset.
                let ended: Bool
                do {
                    ended = try await iterator.next() == nil
                } catch {
                    ended = true
                }
                #expect(ended)
            }
            // A new connection is accepted and reset at once: it ends before any byte comes back.
            let late = try await Loopback.connect(proxy.port)
            try await late.executeThenClose { inbound, outbound in
                try? await outbound.write(ByteBuffer(string: "anyone?"))
                var iterator = inbound.makeAsyncIterator()
                let reply: String?
                do {
                    reply = try await read(7, from: &iterator)
                } catch {
                    reply = nil
                }
                #expect(reply == nil)
            }
        }
    }

    @Test func aScheduleIsFollowedOnTheInjectedClock() async throws {
        try await withProxy() { proxy in
            let clock = TestClock()
            let schedule = LinkSchedule(
                base: .lte,
                windows: [.init(at: 30, seconds: 10, conditions: LinkConditions(mode: .blackhole))]
            )
            let following = Task { try await proxy.follow(schedule, clock: clock) }
            while proxy.conditions != .lte { await Task.yield() }
            await clock.advance(by: .seconds(29))
            #expect(proxy.conditions == .lte)
            await clock.advance(by: .seconds(1))
            while proxy.conditions.mode != .blackhole { await Task.yield() }
            await clock.advance(by: .seconds(10))
            while proxy.conditions != .lte { await Task.yield() }
            try await following.value
        }
    }
}
