import Foundation
import KyukyuDomain
import KyukyuEligibility
import KyukyuGateway
import KyukyuReceiver
import KyukyuReceiverProbe
import KyukyuTestbed
import KyukyuVault
import KyukyuWorkflow
import Logging
import Testing

/// Killing a hub instance loses nothing: ambulances' real outboxes deliver through HAProxy to three
/// `kyukyu-hospital serve` instances on one PostgreSQL; one instance is killed with SIGKILL in the middle of the run;
/// every document is then stored exactly once, and each hospital's board counts each exactly once.
@Suite("A region's hub survives a killed instance", .serialized, .timeLimit(.minutes(4)))
struct RegionKillTests {
    static let hospitals = [
        RegionHub.Hospital(code: "1310000001", name: "テスト第一病院 (架空)"),
        RegionHub.Hospital(code: "1310000002", name: "テスト第二病院 (架空)"),
    ]
    static let quiet = Logger(label: "kyukyu.test.region") { _ in SwiftLogNoOpLogHandler() }

    @Test func killingAnInstanceMidRunLosesAndDuplicatesNothing() async throws {
        let postgres = try await PostgresServer.shared(
            directory: "/tmp/kyukyu-test-postgres-it-\(Bed.basePort)",
            port: Bed.basePort + 176,
            logger: Self.quiet
        )
        let devices = (1...12).map { String(format: "AMB-KILL-%02d", $0) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kyukyu-region-kill-\(UUID().uuidString.prefix(8))"
        ).path
        let database = "region_kill_" + String(UUID().uuidString.lowercased().prefix(8))
        let hub = try await RegionHub.start(
            directory: directory,
            postgres: postgres,
            database: database,
            hospitals: Self.hospitals,
            instances: 3,
            basePort: Bed.basePort + 170,
            devices: devices,
            staff: [],
            logLevel: "warning"
        )
        defer {
            hub.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let receiving = Self.hospitals.map {
            ReceivingHospital(code: HospitalCode(rawValue: $0.code)!, name: $0.name, url: hub.url)
        }
        let fleet = try OutboxFleet(
            ambulances: devices.map { device in
                OutboxFleet.Ambulance(
                    device: device,
                    tls: ReceiverTLSFiles(
                        certificatePath: hub.deviceDirectory(device) + "/\(device).cert.pem",
                        keyPath: hub.deviceDirectory(device) + "/\(device).key.pem",
                        trustRootsPath: hub.caPath
                    )
                )
            },
            hospitals: receiving,
            backoff: DeliveryBackoff(initial: .milliseconds(100), maximum: .seconds(1)),
            logger: Self.quiet
        )
        // Built before the run: 15 documents per ambulance, alternating between the two hospitals.
        let perAmbulance = 15
        var documents: [(device: String, hospital: HospitalCode, document: SyntheticHandoff.Document)] = []
        for (index, device) in devices.enumerated() {
            for round in 0..<perAmbulance {
                let hospital = receiving[(index + round) % 2]
                documents.append(
                    (
                        device,
                        hospital.code,
                        try SyntheticHandoff.document(
                            device: device,
                            index: index * perAmbulance + round,
                            hospital: hospital.code,
                            hospitalName: hospital.name,
                            records: round % 4 == 0
                        )
                    )
                )
            }
        }
        let delivering = Task { await fleet.run() }
        defer { delivering.cancel() }
        // The run: every ambulance sends a document every 50 ms; the middle third is queued at once, and instance 2
        // is killed while the outboxes work through it (requests in flight on it are cut).
        let third = documents.count / 3
        for (index, entry) in documents.enumerated() {
            await fleet.send(
                entry.document.body,
                versionID: entry.document.versionID,
                documentSet: entry.document.documentSet,
                from: entry.device,
                to: entry.hospital
            )
            if index == 2 * third - 1 {
                hub.kill(1)
                #expect(!hub.isRunning(1))
            }
            if index < third || index >= 2 * third, index % devices.count == devices.count - 1 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        // Bounded: every outbox empties within a minute.
        let deadline = ContinuousClock.now + .seconds(60)
        while !fleet.isIdle, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let tally = fleet.tally
        delivering.cancel()
        await fleet.shutdown()
        #expect(fleet.isIdle, "the outboxes still hold documents: \(tally)")
        #expect(tally.queued == documents.count)
        #expect(tally.delivered == documents.count)
        #expect(tally.refused == 0)
        #expect(tally.retries > 0, "the kill interrupted nothing: the test proved nothing")

        // Exactly once, read from the database itself.
        let store = try await HospitalStore.open(
            postgres: PostgresSettings(
                port: postgres.port,
                database: database,
                user: postgres.user,
                password: postgres.password
            ),
            keyProvider: KeyFileProvider(stateDirectory: hub.directory + "/state"),
            logger: Self.quiet
        )
        var stored: [String] = []
        try await store.forEachDocument { version, _ in stored.append(version.versionIdentifier) }
        #expect(stored.count == documents.count)
        #expect(
            Set(stored) == Set(documents.map { "urn:uuid:" + $0.document.versionID.uuidString.lowercased() })
        )
        for hospital in receiving {
            let board = try await store.boardEvents(hospital: hospital.code, after: 0)
            let sent = documents.filter { $0.hospital == hospital.code }.count
            #expect(board.count == sent, "\(hospital.code)")
            #expect(board.map(\.id) == Array(1...Int64(sent)), "the board's positions have no gap and no repeat")
        }
        for device in devices {
            let events = try await store.events(device: device, after: 0)
            #expect(events.map(\.sequence) == Array(1...Int64(perAmbulance)), "\(device)")
        }
        try await store.close()
    }
}
