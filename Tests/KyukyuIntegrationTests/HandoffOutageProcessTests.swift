import AsyncHTTPClient
import Foundation
import KyukyuTestbed
import KyukyuVault
import Testing

/// Issue 9's outage test with every part a process, as `make run` starts them (`scripts/stack.sh` with the
/// receiver): the hospital's receiver is stopped, two patients are sent, the gateway is killed with SIGKILL and
/// started again during the outage, then the receiver comes back. Each document arrives once, in the order sent;
/// the staff acknowledge and mark the patients arrived through the receiver's HTTPS API; the gateway's vault file is
/// empty afterwards.
@Suite(
    "Handoff through an outage, every part a process",
    .serialized,
    .enabled(if: realPartsAvailable),
    .timeLimit(.minutes(4))
)
struct HandoffOutageProcessTests {
    func stack(_ arguments: [String], _ environment: [String: String] = Self.environment) async throws
        -> Commands.Result
    {
        try await Commands.run(
            "/bin/bash",
            [StackScriptTests.packageRoot + "/scripts/stack.sh"] + arguments,
            environment: environment,
            timeout: .seconds(120)
        )
    }

    static let environment = [
        "KYUKYU_STACK_RECEIVER": "1",
        "KYUKYU_STACK_PORT_BASE": String(Bed.basePort + 120),
        "KYUKYU_BIN_DIR": Commands.binDirectory(),
        "KYUKYU_STACK_HOLDER": "6",
        "KYUKYU_STACK_APDU_LATENCY_MS": "0",
    ]

    @Test func theReceiverDownTheGatewayKilledAndRestartedEachDocumentArrivesOnceInOrder() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("kyukyu-outage-\(Bed.basePort)").path
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = try await stack(["start", directory])
        #expect(start.status == 0, "\(start.stderr)")
        let values = try StackScriptTests.parse(directory + "/stack.env")
        let gatewayState = try #require(values["KYUKYU_STACK_GATEWAY_STATE_DIR"])
        do {
            try await run(directory: directory, values: values)
        } catch {
            _ = try? await stack(["stop", directory])
            throw error
        }
        #expect(try await stack(["stop", directory]).status == 0)

        // The gateway has stopped: its vault file holds no incident.
        let vault = try await IncidentVault.open(stateDirectory: gatewayState, logger: OnshiBed.quiet)
        #expect(try await vault.incidents().isEmpty)
        #expect(try await vault.audit.verify().isIntact)
    }

    private func run(directory: String, values: [String: String]) async throws {
        let hospital = try #require(values["KYUKYU_STACK_HOSPITAL_CODE"])
        #expect(try await stack(["stop-receiver", directory]).status == 0)

        // The crew sends two patients while the hospital cannot be reached.
        let tablet = TabletClient(base: try #require(values["KYUKYU_STACK_GATEWAY_URL"]))
        try await tablet.signIn(
            crewID: try #require(values["KYUKYU_DEMO_CREW_ID"]),
            password: try #require(values["KYUKYU_DEMO_CREW_PASSWORD"]),
            totp: totp(try #require(values["KYUKYU_DEMO_CREW_TOTP_SECRET"]))
        )
        var incidents: [String] = []
        for _ in 0..<2 {
            let id = try #require(try await tablet.post("/api/v1/incidents", "{}")["id"] as? String)
            _ = try await tablet.post("/api/v1/incidents/\(id)/consent", #"{"basis":"verbal"}"#)
            _ = try await tablet.waitFor(id) { $0["phase"] as? String == "summary" }
            _ = try await tablet.post("/api/v1/incidents/\(id)/handoff", #"{"hospital":"\#(hospital)"}"#)
            // The first document fails and is retried; the second waits behind it (in order).
            let first = incidents.isEmpty
            let queued = try await tablet.waitFor(id) { view in
                let handoff = view["handoff"] as? [String: Any]
                return handoff?["status"] as? String == "queued" && (!first || handoff?["problem"] != nil)
            }
            if first {
                #expect(
                    (queued["handoff"] as? [String: Any])?["problem"] as? String
                        == "the hospital's receiver cannot be reached"
                )
            }
            incidents.append(id)
        }

        // Power lost during the outage: SIGKILL, then the gateway starts again on the same state.
        #expect(try await stack(["kill-gateway", directory]).status == 0)
        let restart = try await stack(["restart-gateway", directory])
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect(try await stack(["start-receiver", directory]).status == 0)

        // Each document arrives (version 1, once), in the order the crew sent them.
        var sets: [String] = []
        for id in incidents {
            let view = try await tablet.waitFor(id) { view in
                let handoff = view["handoff"] as? [String: Any]
                return ["received", "sent"].contains(handoff?["status"] as? String ?? "")
                    && handoff?["deliveredVersion"] as? Int == 1
            }
            let set = try #require((view["handoff"] as? [String: Any])?["documentSet"] as? String)
            sets.append(String(set.dropFirst("urn:uuid:".count)).lowercased())
        }
        let staff = TabletClient(
            base: try #require(values["KYUKYU_STACK_RECEIVER_URL"]),
            caFile: try #require(values["KYUKYU_STACK_RECEIVER_CA"])
        )
        try await staff.signIn(
            crewID: try #require(values["KYUKYU_DEMO_STAFF_ID"]),
            password: try #require(values["KYUKYU_DEMO_STAFF_PASSWORD"]),
            totp: totp(try #require(values["KYUKYU_DEMO_STAFF_TOTP_SECRET"])),
            idField: "staffId"
        )
        let patients = try #require(try await staff.get("/api/v1/patients")["patients"] as? [[String: Any]])
        #expect(Set(patients.compactMap { $0["set"] as? String }) == Set(sets))
        let arrivals = patients.sorted {
            ($0["firstReceivedAt"] as? String ?? "") < ($1["firstReceivedAt"] as? String ?? "")
        }
        #expect(arrivals.compactMap { $0["set"] as? String } == sets, "in the order sent")
        for set in sets {
            let detail = try await staff.get("/api/v1/patients/\(set)")
            let versions = try #require(detail["versions"] as? [[String: Any]])
            #expect(versions.compactMap { $0["version"] as? Int } == [1], "stored once")
        }

        // The staff acknowledge, then mark each patient arrived: the ambulance forgets them.
        for (id, set) in zip(incidents, sets) {
            _ = try await staff.post("/api/v1/patients/\(set)/acknowledge", "{}")
            _ = try await tablet.waitFor(id) {
                ($0["handoff"] as? [String: Any])?["status"] as? String == "acknowledged"
            }
            _ = try await staff.post("/api/v1/patients/\(set)/arrived", "{}")
            let closed = try await tablet.waitFor(id) { $0["phase"] as? String == "closed" }
            #expect(closed["closure"] as? String == "handed-over")
        }
        try await tablet.http.shutdown()
        try await staff.http.shutdown()
    }
}
