import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuDomain
import KyukyuTestbed
import Logging
import NIOCore
import NIOPosix
import Testing

/// The card simulator's run-time control (what `make run` and the browser tests use to swap what is on the
/// reader), seen through the real path: the control's loopback HTTP socket → the simulator → vpcd → pcscd →
/// the reader monitor and the card client.
extension ThroughPCSCD {
    @Suite("Card simulator control")
    struct CardSimulatorControlThroughPCSCD {
        @Test func swapShowsARemovalThenTheNewTokenAndDeleteEmptiesTheReader() async throws {
            try await withSimulatedCard({ $0.holder = 3 }) { simulator, reader in
                let control = CardSimulatorControl(
                    simulator: simulator,
                    credentials: CardSimulatorControl.testPKICredentials(
                        directory: Bed.shared.pkiDirectory,
                        logger: Logger(label: "kyukyu.test.pki")
                    ),
                    logger: Logger(label: "kyukyu.test.control")
                )
                let server = try await CardSimulatorControlServer.bind(
                    port: 0,
                    control: control,
                    logger: Logger(label: "kyukyu.test.control")
                )
                let serving = Task { try await server.run() }
                defer { serving.cancel() }

                let log = ReaderEventLog()
                let consumer = Task {
                    for await event in reader.service.events(pollInterval: .milliseconds(100)) {
                        await log.append(event)
                    }
                }
                defer { consumer.cancel() }
                let first = try #require(await log.waitFor { if case .serviceAvailable = $0 { true } else { false } })
                guard case .serviceAvailable(let readers) = first.event else { return }
                #expect(readers.first { $0.name == Bed.readerName }?.cardPresent == true)

                // The default gap (1 s) is what makes pcscd, polling vpcd, see the card go.
                let swapped = try await httpRequest(
                    port: server.port,
                    "PUT",
                    "/card",
                    body: #"{"holder": 2, "profile": "android", "certificate": "expired"}"#
                )
                #expect(swapped.status == 200)
                #expect(swapped.body.contains(#""connected":true"#))

                let inserted = try #require(
                    await log.waitFor(after: first.index) {
                        if case .cardInserted(let status) = $0 { status.name == Bed.readerName } else { false }
                    }
                )
                let removal = await log.firstIndex(after: first.index) {
                    if case .cardRemoved(let name) = $0 { name == Bed.readerName } else { false }
                }
                #expect(removal.map { $0 < inserted.index } == true, "the reader saw the old card leave first")
                if case .cardInserted(let status) = inserted.event {
                    #expect(status.atr == [0x3B, 0x80, 0x80, 0x01, 0x01])
                }

                let summary = try await reader.readAuthenticationCertificate(
                    reader: Bed.readerName,
                    pin: try CardPIN("1234", kind: .userAuthentication)
                )
                #expect(summary.tokenType == .android)
                #expect(summary.validity == .expired)
                let pki = try TestPKI.loadOrCreate(directory: Bed.shared.pkiDirectory, logger: Logger(label: "t"))
                #expect(summary.der == (try pki.holder(2, validity: .expired)).userAuthCertificateDER)

                let deleted = try await httpRequest(port: server.port, "DELETE", "/card")
                #expect(deleted.status == 200)
                let emptied = await log.waitFor(after: inserted.index) {
                    if case .cardRemoved(let name) = $0 { name == Bed.readerName } else { false }
                }
                #expect(emptied != nil)
                let statuses = try await reader.service.readerStatuses()
                #expect(statuses.first { $0.name == Bed.readerName }?.cardPresent == false)
            }
        }
    }
}

/// The reader monitor's events as they come, for bounded waits on them.
private actor ReaderEventLog {
    private var events: [ReaderEvent] = []

    func append(_ event: ReaderEvent) {
        self.events.append(event)
    }

    /// The first event after `index` that matches, if any has come yet.
    func firstIndex(after index: Int, where matches: @Sendable (ReaderEvent) -> Bool) -> Int? {
        self.events.indices.first { $0 > index && matches(self.events[$0]) }
    }

    /// Waits (at most `timeout`, checking every 20 ms) for an event after `index` that matches.
    func waitFor(
        after index: Int = -1,
        timeout: Duration = .seconds(10),
        _ matches: @Sendable (ReaderEvent) -> Bool
    ) async -> (index: Int, event: ReaderEvent)? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let found = self.firstIndex(after: index, where: matches) { return (found, self.events[found]) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}

/// One HTTP/1.1 request over a real loopback socket; returns the status and the body as text.
private func httpRequest(
    port: Int,
    _ method: String,
    _ path: String,
    body: String = ""
) async throws -> (status: Int, body: String) {
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    request += "Content-Length: \(body.utf8.count)\r\n"
    if !body.isEmpty { request += "Content-Type: application/json\r\n" }
    request += "\r\n" + body
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    var received = ""
    try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: request))
        for try await buffer in inbound {
            received += String(buffer: buffer)
        }
    }
    let parts = received.components(separatedBy: "\r\n\r\n")
    let status = parts.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return (status, parts.dropFirst().joined(separator: "\r\n\r\n"))
}
