import Foundation
import GRDB
import KyukyuDomain
import Testing

@testable import KyukyuVault

@Suite("Incident vault (in memory)")
struct VaultTests {
    @Test func storesVersionedRecordsAndDecryptsThem() async throws {
        let (vault, _) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        let first = try await vault.putRecord(incident: incident, kind: .medications, payload: Data("v1".utf8))
        let second = try await vault.putRecord(incident: incident, kind: .medications, payload: Data("v2".utf8))
        let other = try await vault.putRecord(incident: incident, kind: .visits, payload: Data("visits".utf8))
        #expect(first == 1)
        #expect(second == 2)
        #expect(other == 1)

        let all = try await vault.records(incident: incident, viewer: testCrew)
        #expect(all.map(\.kind) == [.medications, .medications, .visits])
        #expect(all.map { String(decoding: $0.payload, as: UTF8.self) } == ["v1", "v2", "visits"])

        let latest = try await vault.latestRecords(incident: incident, viewer: testCrew)
        #expect(latest.map { String(decoding: $0.payload, as: UTF8.self) } == ["v2", "visits"])
        let one = try await vault.latestRecord(incident: incident, kind: .medications, viewer: testCrew)
        #expect(one?.version == 2)
        #expect(try await vault.latestRecord(incident: incident, kind: .surgery, viewer: testCrew) == nil)
    }

    @Test func plaintextColumnsHoldNoPayload() async throws {
        let (vault, queue) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        let marker = "SYNTHETIC-PATIENT-試験太郎"
        try await vault.putRecord(incident: incident, kind: .patient, payload: Data(marker.utf8))
        let dump = try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM record").map { $0.description }.joined()
                + (try Row.fetchAll(db, sql: "SELECT * FROM incident").map { $0.description }.joined())
                + (try Row.fetchAll(db, sql: "SELECT * FROM audit_entry").map { $0.description }.joined())
        }
        #expect(!dump.contains(marker))
        let sealed = try await queue.read { db in try Data.fetchOne(db, sql: "SELECT sealed FROM record")! }
        #expect(!sealed.contains(bytes: Data(marker.utf8)))
    }

    @Test(arguments: ["incident", "kind", "version"])
    func movedOrSwappedRowsFailToOpen(_ swap: String) async throws {
        let (vault, queue) = try makeMemoryVault()
        let a = try await vault.createIncident()
        let b = try await vault.createIncident()
        try await vault.putRecord(incident: a, kind: .medications, payload: Data("a-med-1".utf8))
        try await vault.putRecord(incident: a, kind: .medications, payload: Data("a-med-2".utf8))
        try await vault.putRecord(incident: a, kind: .visits, payload: Data("a-visits".utf8))
        try await vault.putRecord(incident: b, kind: .medications, payload: Data("b-med-1".utf8))
        try await queue.write { db in
            switch swap {
            case "incident":
                // Swap the ciphertexts of a/medications/1 and b/medications/1.
                try db.execute(
                    sql: """
                        UPDATE record SET sealed = CASE incident_id
                            WHEN ?1 THEN (SELECT sealed FROM record WHERE incident_id = ?2 AND kind = 'medications' AND version = 1)
                            ELSE (SELECT sealed FROM record WHERE incident_id = ?1 AND kind = 'medications' AND version = 1) END
                        WHERE kind = 'medications' AND version = 1
                        """,
                    arguments: [a.description, b.description]
                )
            case "kind":
                try db.execute(
                    sql: "UPDATE record SET kind = 'diagnoses' WHERE incident_id = ? AND kind = 'visits'",
                    arguments: [a.description]
                )
            default:
                for (from, to) in [(1, -1), (2, 1), (-1, 2)] {
                    try db.execute(
                        sql:
                            "UPDATE record SET version = ? WHERE incident_id = ? AND kind = 'medications' AND version = ?",
                        arguments: [to, a.description, from]
                    )
                }
            }
        }
        await #expect(throws: VaultError.authenticationFailed(reason: "")) {
            _ = try await vault.records(incident: a, viewer: testCrew)
        }
    }

    @Test func swappedWrappedKeysFailToOpen() async throws {
        let (vault, queue) = try makeMemoryVault()
        let a = try await vault.createIncident()
        let b = try await vault.createIncident()
        try await vault.putRecord(incident: a, kind: .patient, payload: Data("a".utf8))
        try await queue.write { db in
            let keyB = try Data.fetchOne(
                db,
                sql: "SELECT wrapped_key FROM incident_key WHERE incident_id = ?",
                arguments: [b.description]
            )!
            try db.execute(
                sql: "UPDATE incident_key SET wrapped_key = ? WHERE incident_id = ?",
                arguments: [keyB, a.description]
            )
        }
        await #expect(throws: VaultError.authenticationFailed(reason: "")) {
            _ = try await vault.records(incident: a, viewer: testCrew)
        }
    }

    @Test func anotherDeviceKeyCannotOpen() async throws {
        let queue = try VaultDatabase.makeInMemory()
        let capture = LogCapture()
        let vault = try IncidentVault(
            database: queue,
            keyring: .generate(),
            clock: TestClock(),
            logger: capture.logger()
        )
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .patient, payload: Data("x".utf8))
        let thief = try IncidentVault(
            database: queue,
            keyring: .generate(),
            clock: TestClock(),
            logger: capture.logger()
        )
        await #expect(throws: VaultError.unknownDeviceKey(reason: "")) {
            _ = try await thief.records(incident: incident, viewer: testCrew)
        }
    }

    @Test func shredDestroysKeyThenRows() async throws {
        let (vault, queue) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        let keep = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .patient, payload: Data("p".utf8))
        try await vault.putRecord(incident: keep, kind: .patient, payload: Data("q".utf8))
        #expect(try await vault.shred(incident: incident))
        #expect(try await vault.shred(incident: incident) == false)
        let counts = try await queue.read { db in
            (
                try Int.fetchOne(
                    db,
                    sql: "SELECT count(*) FROM incident_key WHERE incident_id = ?",
                    arguments: [incident.description]
                )!,
                try Int.fetchOne(
                    db,
                    sql: "SELECT count(*) FROM record WHERE incident_id = ?",
                    arguments: [incident.description]
                )!,
                try Int.fetchOne(
                    db,
                    sql: "SELECT count(*) FROM incident WHERE id = ?",
                    arguments: [incident.description]
                )!
            )
        }
        #expect(counts == (0, 0, 0))
        await #expect(throws: VaultError.incidentNotFound(reason: "")) {
            _ = try await vault.records(incident: incident, viewer: testCrew)
        }
        #expect(try await vault.records(incident: keep, viewer: testCrew).count == 1)
        await #expect(throws: VaultError.incidentNotFound(reason: "")) {
            try await vault.putRecord(incident: incident, kind: .patient, payload: Data())
        }
    }

    @Test func acknowledgedHandoffIsShreddedAndAudited() async throws {
        let (vault, _) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .observations, payload: Data("bp".utf8))
        try await vault.markHandoffSent(incident: incident, destination: FacilityCode("1312345678")!, by: testCrew)
        #expect(try await vault.incidents().first?.handoffState == .sent)
        try await vault.acknowledgeHandoff(incident: incident)
        #expect(try await vault.incidents().isEmpty)
        let actions = try await vault.audit.export().map(\.event.action)
        #expect(
            actions == [
                .incidentCreated, .categoryFetched, .handoffSent, .handoffAcknowledged, .incidentPurged,
            ]
        )
        #expect(try await vault.audit.verify().isIntact)
    }

    @Test func interruptedShredIsFinishedAtStartUp() async throws {
        let (vault, queue) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .patient, payload: Data("p".utf8))
        // Simulate a crash after the key was destroyed but before the rows went.
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM incident_key WHERE incident_id = ?", arguments: [incident.description])
        }
        let summary = try await vault.startUp()
        #expect(summary.purged == [.init(incident: incident, reason: .interruptedPurge)])
        #expect(try await queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM record")! } == 0)
    }

    @Test func purgeExpiredHonoursMaximumAge() async throws {
        let (vault, _) = try makeMemoryVault(maximumAge: 3600)
        let now = Date()
        let old = try await vault.createIncident(now: now.addingTimeInterval(-7200))
        let fresh = try await vault.createIncident(now: now.addingTimeInterval(-60))
        try await vault.putRecord(incident: old, kind: .patient, payload: Data("o".utf8))
        let summary = try await vault.purgeExpired(now: now)
        #expect(summary.purged.map(\.incident) == [old])
        #expect(summary.purged.first?.reason == .expired)
        #expect(try await vault.incidents().map(\.id) == [fresh])
        // A later, shorter configuration applies to incidents created under the longer one.
        let queue = try VaultDatabase.makeInMemory()
        let keyring = DeviceKeyring.generate()
        let long = try IncidentVault(
            database: queue,
            keyring: keyring,
            configuration: .init(maximumAge: 86400),
            logger: LogCapture().logger()
        )
        let id = try await long.createIncident(now: now.addingTimeInterval(-7200))
        let short = try IncidentVault(
            database: queue,
            keyring: keyring,
            configuration: .init(maximumAge: 3600),
            logger: LogCapture().logger()
        )
        #expect(try await short.purgeExpired(now: now).purged.map(\.incident) == [id])
    }

    @Test func purgeServiceRunsAndStopsOnCancellation() async throws {
        let (vault, _) = try makeMemoryVault(maximumAge: 0.05)
        _ = try await vault.createIncident()
        let service = VaultPurgeService(vault: vault, interval: .milliseconds(20), logger: LogCapture().logger())
        let task = Task { await service.run() }
        var remaining = 1
        for _ in 0..<100 where remaining > 0 {
            try await Task.sleep(for: .milliseconds(20))
            remaining = try await vault.status().incidentCount
        }
        #expect(remaining == 0)
        task.cancel()
        await task.value
    }

    @Test func wipeRemovesEverythingButTheAudit() async throws {
        let (vault, _) = try makeMemoryVault()
        for _ in 0..<5 {
            let id = try await vault.createIncident()
            try await vault.putRecord(incident: id, kind: .patient, payload: Data("p".utf8))
        }
        let summary = try await vault.wipeAll()
        #expect(summary.count == 5)
        let status = try await vault.status()
        #expect(status.incidentCount == 0)
        #expect(status.recordCount == 0)
        let verification = try await vault.audit.verify()
        #expect(verification.isIntact)
        #expect(try await vault.audit.export().last?.event.action == .vaultWiped)
    }

    @Test func statusReportsCountsAndAgesOnly() async throws {
        let (vault, _) = try makeMemoryVault()
        let now = Date()
        let id = try await vault.createIncident(now: now.addingTimeInterval(-600))
        try await vault.putRecord(incident: id, kind: .patient, payload: Data(repeating: 7, count: 100))
        try await vault.markHandoffSent(incident: id, destination: FacilityCode("H1")!, by: testCrew)
        _ = try await vault.createIncident(now: now)
        let status = try await vault.status(now: now)
        #expect(status.incidentCount == 2)
        #expect(status.incidentsByState == ["open": 1, "sent": 1])
        #expect(status.recordCount == 1)
        #expect(status.ciphertextBytes == 100 + 28)
        #expect(abs((status.oldestIncidentAgeSeconds ?? 0) - 600) < 1)
        #expect(abs((status.nextExpiryInSeconds ?? 0) - (86400 - 600)) < 1)
        #expect(status.dataKeysPendingRewrap == 0)
    }

    @Test func rotationRewrapsDataKeysWithoutTouchingRecords() async throws {
        let provider = InMemoryKeyProvider()
        let (vault, queue) = try makeMemoryVault(keyring: try provider.loadKeyring())
        var ids: [IncidentID] = []
        for index in 0..<4 {
            let id = try await vault.createIncident()
            try await vault.putRecord(incident: id, kind: .medications, payload: Data("m\(index)".utf8))
            ids.append(id)
        }
        let sealedBefore = try await queue.read { db in
            try Data.fetchAll(db, sql: "SELECT sealed FROM record ORDER BY incident_id")
        }
        let oldKey = vault.currentDeviceKeyID
        let report = try await vault.rotateDeviceKey(provider: provider)
        #expect(report.rewrapped == 4)
        #expect(report.retired == [oldKey])
        #expect(report.current != oldKey)
        #expect(try provider.loadKeyring().wrappingKeyIDs == [report.current])
        let sealedAfter = try await queue.read { db in
            try Data.fetchAll(db, sql: "SELECT sealed FROM record ORDER BY incident_id")
        }
        #expect(sealedBefore == sealedAfter)
        let keyIDs = try await queue.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT device_key_id FROM incident_key")
        }
        #expect(keyIDs == [report.current.rawValue])
        for (index, id) in ids.enumerated() {
            let record = try await vault.latestRecord(incident: id, kind: .medications, viewer: testCrew)
            #expect(record?.payload == Data("m\(index)".utf8))
        }
        #expect(try await vault.audit.export().contains { $0.event.action == .keyRotated })
    }

    @Test func interruptedRotationIsFinishedAtStartUp() async throws {
        let original = DeviceKeyring.generate()
        let (vault, queue) = try makeMemoryVault(keyring: original)
        let id = try await vault.createIncident()
        try await vault.putRecord(incident: id, kind: .patient, payload: Data("p".utf8))
        // The rotated keyring was stored, then the process died before re-wrapping.
        let rotated = original.addingWrappingKey()
        let restarted = try IncidentVault(
            database: queue,
            keyring: rotated,
            clock: TestClock(),
            logger: LogCapture().logger()
        )
        #expect(try await restarted.status().dataKeysPendingRewrap == 1)
        try await restarted.startUp()
        #expect(try await restarted.status().dataKeysPendingRewrap == 0)
        let final = try IncidentVault(
            database: queue,
            keyring: rotated.removingRetiredKeys(),
            clock: TestClock(),
            logger: LogCapture().logger()
        )
        #expect(try await final.records(incident: id, viewer: testCrew).first?.payload == Data("p".utf8))
    }

    /// Every medical category is stored under its domain spelling; the vault's own kinds are no category.
    @Test func recordKindsAreCategoryNames() {
        for category in MedicalCategory.allCases {
            #expect(RecordKind(category).rawValue == category.rawValue)
            #expect(RecordKind(category).category == category)
        }
        #expect(RecordKind.prescriptions.rawValue == "prescriptions")
        #expect(RecordKind.allergies.rawValue == "allergies")
        #expect(RecordKind.patient.category == nil)
        #expect(RecordKind.observations.category == nil)
        #expect(RecordKind.handoffDocument.category == nil)
    }

    @Test func identifiersAreValidated() {
        #expect(RecordKind("medications") != nil)
        #expect(RecordKind("Medications") == nil)
        #expect(RecordKind("山田") == nil)
        #expect(RecordKind("") == nil)
        #expect(CrewID("crew-01") != nil)
        #expect(CrewID("山田 太郎") == nil)
        #expect(FacilityCode("1312345678") != nil)
        #expect(FacilityCode("a b") == nil)
        let id = IncidentID()
        #expect(IncidentID(id.description) == id)
        #expect(IncidentID("not-a-uuid") == nil)
    }

    @Test func errorsCarryCodeAndLocation() {
        let error = VaultError.keyFilePermissionsTooOpen(reason: "mode 644")
        #expect(error.code == .keyFilePermissionsTooOpen)
        #expect(error == VaultError.keyFilePermissionsTooOpen(reason: "other"))
        #expect(error != VaultError.incidentNotFound(reason: "mode 644"))
        #expect(error.description.contains("VaultTests.swift"))
        #expect(error.description.contains("keyFilePermissionsTooOpen"))
    }

    @Test func logsCarryIdsButNoPayload() async throws {
        let capture = LogCapture()
        let (vault, _) = try makeMemoryVault(capture: capture)
        let id = try await vault.createIncident()
        try await vault.putRecord(incident: id, kind: .patient, payload: Data("SYNTHETIC-PATIENT-試験太郎".utf8))
        _ = try await vault.records(incident: id, viewer: testCrew)
        try await vault.shred(incident: id)
        #expect(capture.text.contains("kyukyu.incident=\(id)"))
        #expect(!capture.text.contains("SYNTHETIC"))
        #expect(!capture.text.contains("試験"))
    }
}
