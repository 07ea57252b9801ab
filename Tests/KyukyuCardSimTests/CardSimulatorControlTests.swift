import KyukyuCardSim
import NIOCore
import NIOPosix
import Testing

/// The run-time control over a real loopback HTTP socket, with its effect seen by an in-process stand-in for vpcd
/// (what the reader sees: the link closing, a new link, the new card's ATR and files).
@Suite("card simulator control", .timeLimit(.minutes(1)))
struct CardSimulatorControlTests {
    @Test func putSwapsTheCardTheReaderSeesARemovalThenTheNewCard() async throws {
        try await withFakeVPCD { port, connections in
            let simulator = try Self.simulator(port: port)
            let run = Task { try await simulator.run() }
            defer { run.cancel() }
            try await withControlServer(simulator) { client in
                try await connections.next { (first: inout FakeVPCDConnection) async throws in
                    #expect(try await first.exchange([0x04]) == JPKICardFiles.contactATR)
                    let before = try await client.get("/card")
                    #expect(before.status == 200)
                    #expect(before.headers["content-type"]?.hasPrefix("application/json") == true)
                    #expect(before.json["present"] as? Bool == true)
                    #expect(before.json["holder"] as? Int == 1)
                    #expect(before.json["profile"] as? String == "card")
                    #expect(before.json["certificate"] as? String == "valid")
                    #expect(before.json["connected"] as? Bool == true)

                    let swapped = try await client.put(
                        "/card",
                        json: #"{"holder": 2, "profile": "android", "certificate": "expired", "pin": "4321"}"#
                    )
                    #expect(swapped.status == 200)
                    #expect(swapped.json["present"] as? Bool == true)
                    #expect(swapped.json["holder"] as? Int == 2)
                    #expect(swapped.json["profile"] as? String == "android")
                    #expect(swapped.json["certificate"] as? String == "expired")
                    #expect(swapped.json["connected"] as? Bool == true)
                    #expect(swapped.json["authPinTriesLeft"] as? Int == 3)
                    try await first.waitForClose()  // the reader saw the old card go
                }
                try await connections.next { (second: inout FakeVPCDConnection) async throws in
                    #expect(try await second.exchange([0x04]) == [0x3B, 0x80, 0x80, 0x01, 0x01])  // a phone now
                    #expect(try await second.exchange(Commands.selectAP(JPKICardFiles.jpkiAID)) == [0x90, 0x00])
                    #expect(try await second.exchange(Commands.selectEF(0x0006)) == [0x90, 0x00])
                    let tokenInfo = try #require(try await second.exchange(Commands.readBinary(offset: 0, le: 0x20)))
                    #expect(tokenInfo.starts(with: Array("JPKIAPGPSETOKEN".utf8)))
                    #expect(try await second.exchange(Commands.selectEF(0x000A)) == [0x90, 0x00])
                    #expect(try await second.exchange(Commands.readBinary(offset: 0, le: 4)) == [0x69, 0x82])
                    #expect(try await second.exchange(Commands.selectEF(0x0018)) == [0x90, 0x00])
                    #expect(try await second.exchange(Commands.verify("1234")) == [0x63, 0xC2])  // the old PIN is wrong
                    #expect(try await second.exchange(Commands.verify("4321")) == [0x90, 0x00])
                    #expect(try await second.exchange(Commands.selectEF(0x000A)) == [0x90, 0x00])
                    let certificate = try await second.readFile()
                    #expect(certificate.starts(with: Fixtures.credentials(2, .expired).userAuthCertificateDER))
                    #expect(
                        await simulator.userAuthCertificateDER
                            == Fixtures.credentials(2, .expired).userAuthCertificateDER
                    )
                }
            }
        }
    }

    @Test func removeAfterAPDUsThenDeleteKeepsTheReaderEmptyUntilTheNextPut() async throws {
        try await withFakeVPCD { port, connections in
            let simulator = try Self.simulator(port: port)
            let run = Task { try await simulator.run() }
            defer { run.cancel() }
            try await withControlServer(simulator) { client in
                try await connections.next { (first: inout FakeVPCDConnection) async throws in
                    #expect(try await first.exchange([0x04]) == JPKICardFiles.contactATR)
                    let armed = try await client.post(
                        "/card/remove-after-apdus",
                        json: #"{"apdus": 2, "reinsertAfterMs": 0}"#
                    )
                    #expect(armed.status == 200)
                    #expect(armed.json["removeAfterApdus"] as? Int == 2)
                    #expect(try await first.exchange(Commands.selectAP(JPKICardFiles.jpkiAID)) == [0x90, 0x00])
                    #expect(try await first.exchange(Commands.selectEF(0x000A)) == [0x90, 0x00])
                    try await first.waitForClose()  // lost after the second answer
                }
                try await connections.next { (second: inout FakeVPCDConnection) async throws in
                    #expect(try await second.exchange([0x04]) == JPKICardFiles.contactATR)  // the same card is back
                    let state = try await client.get("/card")
                    #expect(state.json["present"] as? Bool == true)
                    #expect(state.json["removeAfterApdus"] == nil)  // once only
                    #expect(state.json["commands"] as? Int == 2)

                    let deleted = try await client.delete("/card")
                    #expect(deleted.status == 200)
                    #expect(deleted.json["present"] as? Bool == false)
                    #expect(deleted.json["holder"] == nil)
                    try await second.waitForClose()
                }
                let empty = try await client.get("/card")
                #expect(empty.json["present"] as? Bool == false)
                #expect(empty.json["connected"] as? Bool == false)

                let put = try await client.put("/card", json: #"{"holder": 1, "profile": "iphone"}"#)
                #expect(put.status == 200)
                #expect(put.json["connected"] as? Bool == true)
                // The next link is the new card, so the removed one never came back in between.
                try await connections.next { (third: inout FakeVPCDConnection) async throws in
                    #expect(try await third.exchange([0x04]) == [0x3B, 0x80, 0x80, 0x01, 0x01])
                }
                #expect(await simulator.connectionCount == 3)
            }
        }
    }

    @Test func refusesBadRequestsAndLeavesTheCardAlone() async throws {
        try await withFakeVPCD { port, connections in
            let simulator = try Self.simulator(port: port)
            let run = Task { try await simulator.run() }
            defer { run.cancel() }
            try await withControlServer(simulator) { client in
                try await connections.next { (first: inout FakeVPCDConnection) async throws in
                    #expect(try await first.exchange([0x04]) == JPKICardFiles.contactATR)
                    let badBodies: [(String, String)] = [
                        (#"{"holder": 0}"#, "holder"),
                        (#"{"holder": 2, "profile": "nokia"}"#, "profile"),
                        (#"{"holder": 2, "certificate": "revoked"}"#, "certificate"),
                        (#"{"holder": 2, "pin": "12a4"}"#, "pin"),
                        (#"{"holder": 2, "removalMs": -5}"#, "removalMs"),
                        (#"{"profile": "card"}"#, "holder"),
                        (#"{"holder": "two"}"#, "holder"),
                        ("not json", "JSON"),
                    ]
                    for (body, word) in badBodies {
                        let response = try await client.put("/card", json: body)
                        #expect(response.status == 400, "\(body)")
                        #expect(response.headers["content-type"]?.hasPrefix("application/problem+json") == true)
                        #expect(
                            (response.json["detail"] as? String)?.contains(word) == true,
                            "\(body): \(response.json)"
                        )
                    }
                    let negative = try await client.post("/card/remove-after-apdus", json: #"{"apdus": -1}"#)
                    #expect(negative.status == 400)
                    let noType = try await client.send("PUT", "/card", body: #"{"holder": 2}"#)
                    #expect(noType.status == 415)
                    let textPlain = try await client.send(
                        "PUT",
                        "/card",
                        body: #"{"holder": 2}"#,
                        headers: ["Content-Type": "text/plain"]
                    )
                    #expect(textPlain.status == 415)
                    #expect(try await client.get("/nope").status == 404)
                    let wrongMethod = try await client.send("POST", "/card")
                    #expect(wrongMethod.status == 405)
                    #expect(wrongMethod.headers["allow"] == "GET, PUT, DELETE")
                    let fromPage = try await client.send(
                        "DELETE",
                        "/card",
                        headers: ["Origin": "http://127.0.0.1:8080"]
                    )
                    #expect(fromPage.status == 403)
                    let rebound = try await client.send("DELETE", "/card", headers: ["Host": "evil.example:80"])
                    #expect(rebound.status == 403)
                    let tooLarge = try await client.put("/card", json: String(repeating: " ", count: 20_000) + "{}")
                    #expect(tooLarge.status == 413)

                    let state = try await client.get("/card")
                    #expect(state.json["holder"] as? Int == 1)
                    #expect(state.json["present"] as? Bool == true)
                    #expect(await simulator.connectionCount == 1)
                    #expect(await simulator.isInserted)
                    // The link is still the first one and still answers.
                    #expect(try await first.exchange(Commands.selectAP(JPKICardFiles.jpkiAID)) == [0x90, 0x00])
                }
            }
        }
    }

    @Test func serverStopsWhenCancelledEvenWithAnIdleClientConnected() async throws {
        let simulator = try Self.simulator(port: 1)
        let control = CardSimulatorControl(
            simulator: simulator,
            credentials: { holder, validity in Fixtures.credentials(holder, validity) },
            logger: Fixtures.logger
        )
        let server = try await CardSimulatorControlServer.bind(port: 0, control: control, logger: Fixtures.logger)
        let serving = Task { try await server.run() }
        let idle = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: server.port)
            .get()
        // Proves the server answers before it is stopped.
        #expect(try await ControlHTTPClient(port: server.port).get("/card").json["present"] as? Bool == true)
        serving.cancel()
        try await serving.value
        try await idle.closeFuture.get()  // the server closed the idle connection
        await #expect(throws: (any Error).self) {
            try await ControlHTTPClient(port: server.port).get("/card")
        }
    }

    static func simulator(port: Int) throws -> CardSimulator {
        try CardSimulator(
            configuration: CardSimulatorConfiguration(port: port, reconnectDelay: .milliseconds(20)),
            credentials: Fixtures.credentials(),
            logger: Fixtures.logger
        )
    }
}

/// Runs `body` with a control server for `simulator` on a free loopback port; swaps keep the card out no time.
func withControlServer(
    _ simulator: CardSimulator,
    _ body: (ControlHTTPClient) async throws -> Void
) async throws {
    let control = CardSimulatorControl(
        simulator: simulator,
        credentials: { holder, validity in Fixtures.credentials(holder, validity) },
        defaultRemovalGap: .zero,
        connectTimeout: .seconds(10),
        logger: Fixtures.logger
    )
    let server = try await CardSimulatorControlServer.bind(port: 0, control: control, logger: Fixtures.logger)
    let serving = Task { try await server.run() }
    defer { serving.cancel() }
    try await body(ControlHTTPClient(port: server.port))
}

extension FakeVPCDConnection {
    /// Reads the selected EF whole, 256 bytes at a time, until `6B00` or a short read.
    mutating func readFile() async throws -> [UInt8] {
        var data: [UInt8] = []
        while true {
            let reply = try #require(try await self.exchange(Commands.readBinary(offset: data.count, le: 0)))
            guard reply.suffix(2) == [0x90, 0x00] else { return data }
            data += reply.dropLast(2)
            if reply.count - 2 < 256 { return data }
        }
    }
}
