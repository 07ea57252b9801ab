import Foundation
import Histogram
import KyukyuEligibilitySim
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing

@testable import KyukyuLoad

/// How the raw test server answers request number `n` (from 0) on the whole server.
private enum Answer: Sendable {
    case ok
    case status500
    case close
}

/// A raw HTTP/1.1 server on loopback: reads each request head and answers as `plan` says (200 "ok", 500, or a close
/// without an answer), with optional TLS. Deliberately not Hummingbird, so that the client is checked against bytes
/// it did not write itself.
private final class RawServer: Sendable {
    let channel: any Channel
    let port: Int

    init(group: any EventLoopGroup, tls: NIOSSLContext? = nil, plan: @escaping @Sendable (Int) -> Answer) async throws {
        let counter = Counter()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(RawHandler(counter: counter, plan: plan))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    func stop() async { try? await channel.close() }
}

private final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int {
        value.withLock { count in
            defer { count += 1 }
            return count
        }
    }
}

private final class RawHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let counter: Counter
    let plan: @Sendable (Int) -> Answer
    var pending = ""

    init(counter: Counter, plan: @escaping @Sendable (Int) -> Answer) {
        self.counter = counter
        self.plan = plan
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += String(buffer: unwrapInboundIn(data))
        while let end = pending.range(of: "\r\n\r\n") {
            pending.removeSubrange(pending.startIndex..<end.upperBound)
            switch plan(counter.next()) {
            case .ok:
                // Chunked, in two chunks, to exercise the parser's chunked framing.
                let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
            case .status500:
                let text = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
            case .close:
                context.close(promise: nil)
                return
            }
        }
    }
}

private let logger = Logger(label: "kyukyu.load.test") { _ in SwiftLogNoOpLogHandler() }

private func getRoot(port: Int, tls: [NIOSSLContext] = []) -> HTTPLoadTarget {
    let request = HTTPLoadTarget.requestBytes(path: "/", host: "127.0.0.1:\(port)")
    return HTTPLoadTarget(host: "127.0.0.1", port: port, tls: tls) { _, _ in request }
}

@Suite("Load: the NIO HTTP/1.1 client", .serialized, .timeLimit(.minutes(1)))
struct HTTPOpenLoopTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test func everyAnswerIsCountedAgainstARealServer() async throws {
        let server = try await RawServer(group: group) { _ in .ok }
        let plan = OpenLoopPlan(rate: 400, duration: .milliseconds(500), connections: 4)
        let result = try await HTTPOpenLoop.run(plan, against: getRoot(port: server.port), group: group, logger: logger)
        await server.stop()
        #expect(result.sent == 200 && result.failed == 0 && result.dropped == 0)
        #expect(result.corrected.totalCount == 200)
        #expect(result.answersPerSecond.reduce(0, +) == 200)
    }

    @Test func answers500AndConnectionsClosedByTheServerCountAsFailures() async throws {
        // Every 5th request gets a 500, every 7th (not a 5th) a close without an answer; the client reconnects.
        let server = try await RawServer(group: group) { n in n % 5 == 0 ? .status500 : n % 7 == 0 ? .close : .ok }
        let plan = OpenLoopPlan(rate: 200, duration: .milliseconds(500), connections: 2)
        let result = try await HTTPOpenLoop.run(plan, against: getRoot(port: server.port), group: group, logger: logger)
        await server.stop()
        let expected = (0..<100).filter { $0 % 5 == 0 || $0 % 7 == 0 }.count
        #expect(result.sent == 100)
        #expect(result.failed == expected, "failed \(result.failed)")
        #expect(!result.clean)
    }

    @Test func itSpeaksMutualTLS() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-load-tls-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try TerminalPKI.loadOrCreate(directory: directory, logger: logger)
        let serverCredentials = try pki.serverCredentials(logger: logger)
        var serverConfiguration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(serverCredentials.certificatePEM.utf8))
                .map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(serverCredentials.keyPEM.utf8), format: .pem))
        )
        let caPEM = try String(contentsOfFile: directory + "/" + TerminalPKI.caCertificateFileName, encoding: .utf8)
        serverConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        serverConfiguration.certificateVerification = .noHostnameVerification
        let server = try await RawServer(group: group, tls: try NIOSSLContext(configuration: serverConfiguration)) {
            _ in .ok
        }
        let client = try pki.issueClientCertificate(deviceID: "LOAD-TEST-1")
        var clientConfiguration = TLSConfiguration.makeClientConfiguration()
        clientConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        clientConfiguration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(client.certificatePEM.utf8))
            .map { .certificate($0) }
        clientConfiguration.privateKey = .privateKey(
            try NIOSSLPrivateKey(bytes: Array(client.keyPEM.utf8), format: .pem)
        )
        let target = getRoot(port: server.port, tls: [try NIOSSLContext(configuration: clientConfiguration)])
        let plan = OpenLoopPlan(rate: 100, duration: .milliseconds(500), connections: 2)
        let result = try await HTTPOpenLoop.run(plan, against: target, group: group, logger: logger)

        // Without a client certificate, the server refuses the handshake: every request fails, none hangs.
        var anonymous = TLSConfiguration.makeClientConfiguration()
        anonymous.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        let refused = try await HTTPOpenLoop.run(
            OpenLoopPlan(rate: 100, duration: .milliseconds(100), connections: 1),
            against: getRoot(port: server.port, tls: [try NIOSSLContext(configuration: anonymous)]),
            group: group,
            logger: logger
        )
        await server.stop()
        #expect(result.sent == 50 && result.failed == 0)
        #expect(refused.sent == 10 && refused.failed == 10)
    }

    @Test func aServerThatIsNotThereIsRefusedInWords() async throws {
        // A port nothing listens on: bind one, close it, aim at it.
        let probe = try await RawServer(group: group) { _ in .ok }
        let port = probe.port
        await probe.stop()
        await #expect(throws: LoadError.self) {
            _ = try await HTTPOpenLoop.run(
                OpenLoopPlan(rate: 10, duration: .milliseconds(100), connections: 1),
                against: getRoot(port: port),
                group: group,
                logger: logger
            )
        }
    }

    @Test func aSaturationProbeStopsSendingAndCountsTheRestAsDropped() async throws {
        let server = try await RawServer(group: group) { _ in .ok }
        let plan = OpenLoopPlan(rate: 1_000_000, duration: .milliseconds(200), connections: 2)
        let result = try await HTTPOpenLoop.run(
            plan,
            against: getRoot(port: server.port),
            group: group,
            stopSendingAfter: .milliseconds(200),
            logger: logger
        )
        await server.stop()
        #expect(result.sent > 0 && result.dropped > 0)
        #expect(result.sent + result.dropped == plan.requests)
    }
}

@Suite("Load: the response parser")
struct ResponseParserTests {
    private func answers(_ pieces: [String]) throws -> [ResponseParser.Answer] {
        var parser = ResponseParser()
        var all: [ResponseParser.Answer] = []
        for piece in pieces { try parser.feed(ByteBuffer(string: piece)) { all.append($0) } }
        if let last = parser.closed() { all.append(last) }
        return all
    }

    @Test func itFramesByLengthByChunksAndByCloseWhateverTheSplit() throws {
        let text =
            "HTTP/1.1 100 Continue\r\n\r\n"
            + "HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello"
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n"
            + "HTTP/1.1 204 No Content\r\n\r\n"
            + "HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nbye"
        let expected = [
            ResponseParser.Answer(status: 201, closes: false), .init(status: 200, closes: false),
            .init(status: 204, closes: false), .init(status: 503, closes: true),
        ]
        #expect(try answers([text]) == expected)
        // Byte by byte.
        #expect(try answers(text.map { String($0) }) == expected)
    }

    @Test func garbageIsRefused() {
        #expect(throws: ResponseParser.Malformed.self) { try answers(["SSH-2.0-OpenSSH\r\n\r\n"]) }
        #expect(throws: ResponseParser.Malformed.self) {
            try answers(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
        }
    }
}

@Suite("Load: the sweep and its knee")
struct SweepTests {
    private func point(_ offered: Double, answered: Double? = nil, p99: Double) -> SweepPoint {
        SweepPoint(
            offered: offered,
            answered: answered ?? offered,
            p50: 1,
            p99: p99,
            p99FromSend: 1,
            late: 0,
            failed: 0
        )
    }

    @Test func theKneeIsTheHighestRateWithinTheBoundBeforeTheFirstBreak() {
        let points = [point(100, p99: 2), point(200, p99: 3.9), point(300, p99: 4.1), point(400, p99: 3)]
        // The bound is 2 × the lowest rate's p99 = 4 ms: 300 breaks it, so 400 (within it again) is not the knee.
        #expect(KneeRule().bound(points) == 4)
        #expect(KneeRule().knee(points) == 1)
        // An SLO of 5 ms lets 300 and 400 in.
        #expect(KneeRule(sloMilliseconds: 5).knee(points) == 3)
        // Answers that do not keep up (< 95 % of the offer) end it too, whatever the latency.
        let lagging = [point(100, p99: 1), point(200, answered: 189, p99: 1)]
        #expect(KneeRule().knee(lagging) == 0)
        #expect(KneeRule().knee([point(100, answered: 50, p99: 1)]) == nil)
        // Unsorted input: the index is into the input.
        #expect(KneeRule().knee([point(200, p99: 3), point(100, p99: 2)]) == 0)
    }

    @Test func ratesAreParsedAndScaledOrRefusedInWords() throws {
        #expect(try SweepRates.parse("25, 50,100", what: "--sweep") == [25, 50, 100])
        #expect(SweepRates.rates(percentages: [50, 25], of: 1000) == [250, 500])
        #expect(
            throws: LoadError.badTarget("--sweep must be a comma-separated list of positive numbers, such as 25,50,75")
        ) {
            try SweepRates.parse("25,x", what: "--sweep")
        }
        #expect(KneeRule(factor: 0.5).problem != nil)
        #expect(KneeRule(sloMilliseconds: 0).problem != nil)
    }
}
