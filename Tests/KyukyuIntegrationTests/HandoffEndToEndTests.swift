import AsyncHTTPClient
import Crypto
import Foundation
import KyukyuCardSim
import KyukyuCrew
import KyukyuDomain
import KyukyuGateway
import KyukyuReceiver
import KyukyuTestbed
import KyukyuVault
import KyukyuWorkflow
import Logging
import NIOCore
import Testing

/// No staff sign-in on this receiver: the test acts for the hospital through its desk.
struct NoStaff: StaffAuthenticating {
    func signIn(staffID: String, password: String, totp: String) async -> StaffSession? { nil }
    func session(token: String) async -> StaffSession? { nil }
    func endSession(token: String) async {}
}

/// The handoff through its real parts: the gateway (real pcscd and card, the onshi stub, its vault in a SQLite
/// file) sends to a real receiver over mutual TLS on loopback, with its own SQLite store and KyukyuFHIR's validator.
@Suite("Handoff end to end (gateway and receiver over mutual TLS)", .serialized, .timeLimit(.minutes(3)))
struct HandoffEndToEndTests {
    static let hospitalCode = HospitalCode(rawValue: "1312345678")!
    static let receiverPort = Bed.basePort + 40

    /// The outage test of issue 9: the receiver is down when the crew sends, an update follows, a second patient
    /// is sent to the same hospital, the gateway is restarted during the outage; then the receiver comes up. Each
    /// document arrives once (the first patient's latest version), in the order sent, the acknowledgements reach
    /// the tablet, and after the handovers the ambulance's vault holds nothing.
    @Test(.enabled(if: realPartsAvailable))
    func throughAnOutageAndARestartTheDocumentsArriveOnceInOrderAndTheHandoversEmptyTheVault() async throws {
        try await withSimulatedCard({ $0.holder = 6 }) { _, _ in
            try await withOnshi { onshi in
                let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-ho-\(UUID())").path
                defer { try? FileManager.default.removeItem(atPath: state) }
                try FileManager.default.createDirectory(atPath: state + "/gateway", withIntermediateDirectories: true)
                try FileManager.default.createDirectory(atPath: state + "/hospital", withIntermediateDirectories: true)

                // The hospital's CA, its server certificate, and this ambulance's certificate for it.
                let pki = HospitalPKI(directory: state + "/hospital/pki")
                try pki.initialize(hospital: Self.hospitalCode.rawValue, serverNames: ["localhost", "127.0.0.1"])
                _ = try pki.issueDevice(OnshiBed.device, outDirectory: state + "/gateway/hospital-tls")

                var policy = CrewDirectory.Policy()
                policy.bcryptCost = 4
                let settings = GatewaySettings(
                    port: 0,
                    stateDirectory: state + "/gateway",
                    terminalID: OnshiBed.device,
                    onshiURL: "https://127.0.0.1:\(onshi.port)",
                    onshiTLSDirectory: OnshiBed.tlsDirectory + "/terminals",
                    readerName: Bed.readerName,
                    readerPoll: .milliseconds(200),
                    hospitals: [
                        ReceivingHospital(
                            code: Self.hospitalCode,
                            name: "テスト受入病院 (架空)",
                            url: "https://127.0.0.1:\(Self.receiverPort)"
                        )
                    ],
                    handoffTLSDirectory: state + "/gateway/hospital-tls"
                )
                let crewKey = SymmetricKey(size: .bits256)

                /// Starts the gateway over the state folder (a fresh vault object each time, as a restart has).
                func startGateway() async throws -> (Gateway, Task<Void, any Error>, TabletClient, IncidentVault) {
                    let vault = try await IncidentVault.open(
                        stateDirectory: settings.stateDirectory,
                        logger: OnshiBed.quiet
                    )
                    let crew = try CrewDirectory.open(
                        path: settings.stateDirectory + "/crew.sqlite",
                        secretKey: crewKey,
                        policy: policy,
                        logger: OnshiBed.quiet,
                        audit: VaultCrewAudit(vault: vault, terminalID: OnshiBed.device)
                    )
                    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
                    let gateway = try Gateway.make(
                        settings: settings,
                        vault: vault,
                        crew: crew,
                        onRunning: { portContinuation.yield($0) },
                        logger: OnshiBed.quiet
                    )
                    let running = Task { try await gateway.run() }
                    var iterator = ports.makeAsyncIterator()
                    let port = try #require(await iterator.next())
                    let api = TabletClient(base: "http://127.0.0.1:\(port)")
                    try await api.waitUntilReady()
                    return (gateway, running, api, vault)
                }

                // The first gateway: a crew member, an incident, the summary.
                var (gateway, running, api, vault) = try await startGateway()
                let enrolment = try await CrewDirectory.open(
                    path: settings.stateDirectory + "/crew.sqlite",
                    secretKey: crewKey,
                    policy: policy,
                    logger: OnshiBed.quiet
                ).add(crewID: "TEST-HO", password: "synthetic-pass-0002", pin: "2468")
                try await api.signIn(
                    crewID: "TEST-HO",
                    password: "synthetic-pass-0002",
                    totp: totp(enrolment.totpSecret)
                )
                let id = try #require(try await api.post("/api/v1/incidents", "{}")["id"] as? String)
                _ = try await api.post("/api/v1/incidents/\(id)/consent", #"{"basis":"verbal"}"#)
                _ = try await api.waitFor(id) { view in
                    view["phase"] as? String == "summary"
                        && ((view["categories"] as? [String: [String: Any]])?.values.allSatisfy {
                            !["pending", "retrying"].contains($0["status"] as? String ?? "")
                        } ?? false)
                }

                // The receiver is down: the document waits, and the tablet says why.
                _ = try await api.post("/api/v1/incidents/\(id)/handoff", #"{"hospital":"\#(Self.hospitalCode)"}"#)
                let queued = try await api.waitFor(id) { view in
                    let handoff = view["handoff"] as? [String: Any]
                    return handoff?["status"] as? String == "queued" && handoff?["problem"] != nil
                }
                #expect(
                    (queued["handoff"] as? [String: Any])?["problem"] as? String
                        == "the hospital's receiver cannot be reached"
                )
                // Vitals on the way: version 2 replaces the waiting version 1.
                _ = try await api.post("/api/v1/incidents/\(id)/vitals", #"{"heartRate":118,"spo2":93}"#)
                _ = try await api.waitFor(id) { ($0["handoff"] as? [String: Any])?["latestVersion"] as? Int == 2 }

                // A second patient for the same hospital, sent after the first during the same outage.
                let second = try #require(try await api.post("/api/v1/incidents", "{}")["id"] as? String)
                _ = try await api.post("/api/v1/incidents/\(second)/consent", #"{"basis":"verbal"}"#)
                _ = try await api.waitFor(second) { view in
                    view["phase"] as? String == "summary"
                        && ((view["categories"] as? [String: [String: Any]])?.values.allSatisfy {
                            !["pending", "retrying"].contains($0["status"] as? String ?? "")
                        } ?? false)
                }
                _ = try await api.post(
                    "/api/v1/incidents/\(second)/handoff",
                    #"{"hospital":"\#(Self.hospitalCode)"}"#
                )
                _ = try await api.waitFor(second) {
                    ($0["handoff"] as? [String: Any])?["status"] as? String == "queued"
                }

                // The gateway restarts during the outage.
                let (cookie, csrf) = (api.cookie, api.csrf)
                await gateway.shutdown()
                try await running.value
                try await api.http.shutdown()
                (gateway, running, api, vault) = try await startGateway()
                defer { running.cancel() }
                api.cookie = cookie
                api.csrf = csrf
                let restored = try await api.get("/api/v1/incidents/\(id)")
                #expect((restored["handoff"] as? [String: Any])?["status"] as? String == "queued")

                // The receiver comes up.
                let store = try HospitalStore.open(
                    path: state + "/hospital/hospital.sqlite",
                    hospital: Self.hospitalCode,
                    keyProvider: KeyFileProvider(stateDirectory: state + "/hospital"),
                    logger: OnshiBed.quiet
                )
                try await store.registerDevice(OnshiBed.device)
                let desk = HospitalDesk(
                    hospitals: [Self.hospitalCode],
                    store: store,
                    validator: FHIRHandoffValidator(),
                    logger: OnshiBed.quiet
                )
                let receiver = try HospitalReceiver.make(
                    settings: HospitalSettings(
                        host: "127.0.0.1",
                        port: Self.receiverPort,
                        tls: try pki.serverTLSConfiguration()
                    ),
                    desk: desk,
                    staff: NoStaff(),
                    signals: [],
                    logger: OnshiBed.quiet
                )
                let receiving = Task { try await receiver.run() }
                defer { receiving.cancel() }

                let received = try await api.waitFor(id) { view in
                    ["received", "sent"].contains((view["handoff"] as? [String: Any])?["status"] as? String ?? "")
                        && (view["handoff"] as? [String: Any])?["deliveredVersion"] as? Int == 2
                }
                let set = try #require(
                    ((received["handoff"] as? [String: Any])?["documentSet"] as? String).flatMap {
                        UUID(uuidString: String($0.dropFirst("urn:uuid:".count)))
                    }
                )
                // Once: version 2 only (version 1 was superseded while it waited), stored one time.
                let versions = try await store.versions(of: set, at: Self.hospitalCode)
                #expect(versions.map(\.version) == [2])
                // The second patient's document follows the first's, in the order they were sent.
                let secondReceived = try await api.waitFor(second) {
                    ["received", "sent"].contains(($0["handoff"] as? [String: Any])?["status"] as? String ?? "")
                }
                let secondSet = try #require(
                    ((secondReceived["handoff"] as? [String: Any])?["documentSet"] as? String).flatMap {
                        UUID(uuidString: String($0.dropFirst("urn:uuid:".count)))
                    }
                )
                #expect(try await store.versions(of: secondSet, at: Self.hospitalCode).map(\.version) == [1])
                let arrivals = try await store.events(device: OnshiBed.device, after: 0).filter {
                    $0.status == .received
                }
                #expect(arrivals.map(\.documentSet) == [set, secondSet])

                // The hospital acknowledges: the tablet hears it over the gateway's own connection.
                _ = try await desk.acknowledge(set, at: Self.hospitalCode)
                _ = try await api.waitFor(id) {
                    ($0["handoff"] as? [String: Any])?["status"] as? String == "acknowledged"
                }

                _ = try await desk.acknowledge(secondSet, at: Self.hospitalCode)
                _ = try await api.waitFor(second) {
                    ($0["handoff"] as? [String: Any])?["status"] as? String == "acknowledged"
                }

                // The patients arrive: the ambulance forgets them.
                _ = try await desk.arrived(set, at: Self.hospitalCode)
                _ = try await desk.arrived(secondSet, at: Self.hospitalCode)
                let closed = try await api.waitFor(id) { $0["phase"] as? String == "closed" }
                #expect(closed["closure"] as? String == "handed-over")
                _ = try await api.waitFor(second) { $0["phase"] as? String == "closed" }

                // A third patient is sent, then the crew closes the incident before arrival (the patient was taken
                // elsewhere): the hospital is told, and stops waiting.
                let third = try #require(try await api.post("/api/v1/incidents", "{}")["id"] as? String)
                _ = try await api.post("/api/v1/incidents/\(third)/consent", #"{"basis":"verbal"}"#)
                _ = try await api.waitFor(third) { $0["phase"] as? String == "summary" }
                _ = try await api.post("/api/v1/incidents/\(third)/handoff", #"{"hospital":"\#(Self.hospitalCode)"}"#)
                let thirdReceived = try await api.waitFor(third) {
                    ($0["handoff"] as? [String: Any])?["status"] as? String == "received"
                }
                let thirdSet = try #require(
                    ((thirdReceived["handoff"] as? [String: Any])?["documentSet"] as? String).flatMap {
                        UUID(uuidString: String($0.dropFirst("urn:uuid:".count)))
                    }
                )
                // The board's own event stream says when the withdrawal arrives (bounded by the suite's time limit).
                let (boardLines, boardLine) = AsyncStream.makeStream(of: String.self)
                let board = Task {
                    await desk.runBoardStream(hospital: Self.hospitalCode, lastEventID: nil) { boardLine.yield($0) }
                }
                defer { board.cancel() }
                _ = try await api.post("/api/v1/incidents/\(third)/close", "{}")
                let setURN = "urn:uuid:" + thirdSet.uuidString.lowercased()
                for await line in boardLines where line.contains(setURN) && line.contains(#""status":"withdrawn""#) {
                    break
                }
                let withdrawn = try await store.set(thirdSet, at: Self.hospitalCode)
                #expect(withdrawn?.status == .withdrawn)
                #expect(withdrawn?.reason == "closed")
                #expect(try await vault.incidents().isEmpty)
                #expect(try await vault.audit.verify().isIntact)
                // The receiver kept the anchor each document carried.
                #expect(try await store.anchors(device: OnshiBed.device).count == 3)

                await receiver.shutdown()
                try await receiving.value
                await gateway.shutdown()
                try await running.value
                try await api.http.shutdown()
            }
        }
    }
}
