import KyukyuCardSim
import NIOCore
import NIOPosix
import Testing

/// The simulator's vpcd link against an in-process stand-in for vpcd on loopback (no pcscd needed).
@Suite("vpcd link", .timeLimit(.minutes(1)))
struct CardSimulatorLinkTests {
    @Test func answersControlBytesAndAPDUsAndHonoursRemoveAndInsert() async throws {
        try await withFakeVPCD { port, connections in
            let simulator = try CardSimulator(
                configuration: CardSimulatorConfiguration(port: port, reconnectDelay: .milliseconds(20)),
                credentials: Fixtures.credentials(),
                logger: Fixtures.logger
            )
            let run = Task { try await simulator.run() }
            defer { run.cancel() }

            try await connections.next { (first: inout FakeVPCDConnection) async throws in
                #expect(try await first.exchange([0x04]) == JPKICardFiles.contactATR)
                try await first.send([0x01])  // power on: no answer
                #expect(try await first.exchange(Commands.selectAP(JPKICardFiles.jpkiAID)) == [0x90, 0x00])
                #expect(try await first.exchange(Commands.selectEF(0x0018)) == [0x90, 0x00])
                #expect(try await first.exchange(Commands.verify("0000")) == [0x63, 0xC2])
                try await first.send([0x02])  // reset drops the selection
                #expect(try await first.exchange(Commands.verify("")) == [0x69, 0x85])
                #expect(await simulator.commandCount == 4)
                #expect(await simulator.authPINTriesLeft == 2)

                await simulator.removeCard()
                try await first.waitForClose()
                #expect(await simulator.isInserted == false)
            }
            await simulator.insertCard()
            try await connections.next { (second: inout FakeVPCDConnection) async throws in
                #expect(try await second.exchange([0x04]) == JPKICardFiles.contactATR)
                #expect(try await second.exchange(Commands.selectAP(JPKICardFiles.jpkiAID)) == [0x90, 0x00])
                #expect(try await second.exchange(Commands.selectEF(0x0018)) == [0x90, 0x00])
                #expect(try await second.exchange(Commands.verify("")) == [0x63, 0xC2])  // counters survive removal
            }
            #expect(await simulator.userAuthCertificateDER == Fixtures.credentials().userAuthCertificateDER)
        }
    }

    @Test func removesAfterNAPDUsThenComesBackAndReconnectsAfterADrop() async throws {
        try await withFakeVPCD { port, connections in
            let simulator = try CardSimulator(
                configuration: CardSimulatorConfiguration(
                    port: port,
                    removeAfterAPDUs: 2,
                    reinsertAfter: .milliseconds(50),
                    reconnectDelay: .milliseconds(20)
                ),
                credentials: Fixtures.credentials(),
                logger: Fixtures.logger
            )
            let run = Task { try await simulator.run() }
            defer { run.cancel() }

            try await connections.next { (first: inout FakeVPCDConnection) async throws in
                #expect(try await first.exchange(Commands.selectAP(JPKICardFiles.jpkiAID)) == [0x90, 0x00])
                #expect(try await first.exchange(Commands.selectEF(0x000A)) == [0x90, 0x00])
                try await first.waitForClose()  // removed after the second APDU's answer
            }
            // Reinserted by itself; removal happens only once. Leaving the closure closes the link, as a
            // restarting pcscd would, and the card reconnects.
            try await connections.next { (second: inout FakeVPCDConnection) async throws in
                #expect(try await second.exchange(Commands.selectAP(JPKICardFiles.jpkiAID)) == [0x90, 0x00])
                #expect(try await second.exchange(Commands.selectEF(0x000A)) == [0x90, 0x00])
            }
            try await connections.next { (third: inout FakeVPCDConnection) async throws in
                #expect(try await third.exchange([0x04]) == JPKICardFiles.contactATR)
            }
            #expect(await simulator.commandCount == 4)
        }
    }

    @Test func waitsTheConfiguredLatencyAndApprovalDelay() async throws {
        try await withFakeVPCD { port, connections in
            let simulator = try CardSimulator(
                configuration: CardSimulatorConfiguration(
                    port: port,
                    profile: .iphone,
                    apduLatency: .milliseconds(30),
                    iphoneApproval: .approve(after: .milliseconds(200))
                ),
                credentials: Fixtures.credentials(),
                logger: Fixtures.logger
            )
            let run = Task { try await simulator.run() }
            defer { run.cancel() }
            try await connections.next { (connection: inout FakeVPCDConnection) async throws in
                let clock = ContinuousClock()
                #expect(try await connection.exchange([0x04]) == [0x3B, 0x80, 0x80, 0x01, 0x01])
                var start = clock.now
                let select = try await connection.exchange(Commands.selectAP(JPKICardFiles.jpkiAID))
                let selectTime = clock.now - start
                _ = try await connection.exchange(Commands.selectEF(0x000A))
                start = clock.now
                let read = try await connection.exchange(Commands.readBinary(offset: 0, le: 4))
                let approvalTime = clock.now - start
                #expect(select == [0x90, 0x00])
                #expect(read?.suffix(2) == [0x90, 0x00])
                // Lower bounds only: the delays are floors, not timings to assert on.
                #expect(selectTime >= .milliseconds(30))
                #expect(approvalTime >= .milliseconds(230))
            }
        }
    }

    @Test func runReturnsWhenCancelledEvenWithoutVPCD() async throws {
        let simulator = try CardSimulator(
            configuration: CardSimulatorConfiguration(port: 1, reconnectDelay: .milliseconds(10)),
            credentials: Fixtures.credentials(),
            logger: Fixtures.logger
        )
        let run = Task { try await simulator.run() }
        try await Task.sleep(for: .milliseconds(100))
        run.cancel()
        try await run.value
        #expect(await simulator.isConnected == false)
    }
}

// MARK: - A stand-in for vpcd

/// Accepted connections of the fake vpcd, in order.
struct FakeVPCDConnections {
    var iterator: NIOAsyncChannelInboundStream<NIOAsyncChannel<ByteBuffer, ByteBuffer>>.AsyncIterator

    /// Waits for the card's next connection and runs `body` with it; the connection is closed afterwards.
    mutating func next(_ body: (inout FakeVPCDConnection) async throws -> Void) async throws {
        guard let channel = try await self.iterator.next() else { throw FakeVPCDError() }
        try await channel.executeThenClose { inbound, outbound in
            var connection = FakeVPCDConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound)
            try await body(&connection)
        }
    }
}

/// One card connection as vpcd sees it: frames out, frames in.
struct FakeVPCDConnection {
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var decoder = VPCDFrameDecoder()

    init(
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) {
        self.inbound = inbound
        self.outbound = outbound
    }

    func send(_ payload: [UInt8]) async throws {
        try await self.outbound.write(ByteBuffer(bytes: VPCDFraming.frame(payload)))
    }

    /// Sends a payload and waits for the framed answer; `nil` when the card went away.
    mutating func exchange(_ payload: [UInt8]) async throws -> [UInt8]? {
        try await self.send(payload)
        while true {
            if let answer = self.decoder.nextPayload() { return answer }
            guard let buffer = try await self.inbound.next() else { return nil }
            self.decoder.append(buffer.readableBytesView)
        }
    }

    /// Waits until the card closes the connection.
    mutating func waitForClose() async throws {
        while try await self.inbound.next() != nil {}
    }
}

struct FakeVPCDError: Error {}

/// Runs `body` with a loopback listener standing in for vpcd.
func withFakeVPCD(
    _ body: (_ port: Int, _ connections: inout FakeVPCDConnections) async throws -> Void
) async throws {
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .bind(host: "127.0.0.1", port: 0) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    let port = try #require(server.channel.localAddress?.port)
    try await server.executeThenClose { inbound in
        var connections = FakeVPCDConnections(iterator: inbound.makeAsyncIterator())
        try await body(port, &connections)
    }
}
