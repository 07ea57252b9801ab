import AsyncHTTPClient
import Foundation
import KyukyuNetworkSim
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

/// The simulator as the drill runs it: its links and its control API over real HTTP on loopback, in a
/// `ServiceGroup` that shuts it down.
@Suite("Network simulator: the control API", .serialized, .timeLimit(.minutes(1)))
struct ControlAPITests {
    @Test func aDrillSetsALinksConditionsAndBadOnesAreRefusedInWords() async throws {
        let quiet = Logger(label: "kyukyu.netsim.test") { _ in SwiftLogNoOpLogHandler() }
        let (running, started) = AsyncStream.makeStream(of: ([String: Int], Int).self)
        let simulator = NetworkSimulator(
            links: [
                LinkSpec(
                    name: "onshi",
                    port: 0,
                    upstreamHost: "127.0.0.1",
                    upstreamPort: 9,
                    schedule: LinkSchedule(base: .lte)
                )
            ],
            controlPort: 0,
            onRunning: { ports, control in started.yield((ports, control)) },
            logger: quiet
        )
        let group = ServiceGroup(services: [simulator], logger: quiet)
        let service = Task { try await group.run() }
        var iterator = running.makeAsyncIterator()
        let (ports, control) = try #require(await iterator.next())
        #expect(ports["onshi"].map { $0 > 0 } == true)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let base = "http://127.0.0.1:\(control)"

        func call(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            if let body { request.body = .bytes(ByteBuffer(string: body)) }
            let response = try await http.execute(request, timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            return (Int(response.status.code), text)
        }

        let (status, listed) = try await call(.GET, "/links")
        #expect(status == 200)
        let links = try JSONDecoder().decode([String: LinkInfo].self, from: Data(listed.utf8))
        #expect(links["onshi"]?.conditions == .lte)
        #expect(links["onshi"]?.port == ports["onshi"])

        // A dead zone for this ambulance's onshi link; a missing key takes its default.
        let (setStatus, set) = try await call(.PUT, "/links/onshi/conditions", #"{"mode":"blackhole"}"#)
        #expect(setStatus == 200)
        #expect(try JSONDecoder().decode(LinkConditions.self, from: Data(set.utf8)) == LinkConditions(mode: .blackhole))
        let (_, current) = try await call(.GET, "/links/onshi/conditions")
        #expect(try JSONDecoder().decode(LinkConditions.self, from: Data(current.utf8)).mode == .blackhole)

        // Bad input: a clear error, and nothing changes.
        let (badStatus, bad) = try await call(.PUT, "/links/onshi/conditions", #"{"lossRate":3}"#)
        #expect(badStatus == 400)
        #expect(bad.contains("loss must be 0…1"))
        let (notJSON, _) = try await call(.PUT, "/links/onshi/conditions", "blackhole")
        #expect(notJSON == 400)
        let (unknown, _) = try await call(.GET, "/links/hospital-9/conditions")
        #expect(unknown == 404)
        let (_, after) = try await call(.GET, "/links/onshi/conditions")
        #expect(try JSONDecoder().decode(LinkConditions.self, from: Data(after.utf8)).mode == .blackhole)

        try await http.shutdown()
        await group.triggerGracefulShutdown()
        try await service.value
    }
}

/// A link as `GET /links` shows it.
private struct LinkInfo: Decodable {
    var port: Int
    var conditions: LinkConditions
    var heldBytes: Int
}
