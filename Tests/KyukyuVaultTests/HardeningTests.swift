import Foundation
import GRDB
import Testing

@testable import KyukyuVault

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Issue 7, items 14–19: the record set, the WAL at start-up, rotation between processes, file checks,
/// fail-closed credentials and strict export verification.
@Suite("Vault hardening")
struct HardeningTests {
    // MARK: 17: the set of record versions is authenticated

    @Test func deletedNewestVersionIsAnIntegrityErrorNotTheOlderVersion() async throws {
        let (vault, queue) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .medications, payload: Data("SYNTHETIC-DRUG-1".utf8))
        try await vault.putRecord(incident: incident, kind: .medications, payload: Data("SYNTHETIC-DRUG-2".utf8))
        try await vault.putRecord(incident: incident, kind: .visits, payload: Data("visits".utf8))
        try await queue.write { db in
            try db.execute(
                sql: "DELETE FROM record WHERE incident_id = ? AND kind = 'medications' AND version = 2",
                arguments: [incident.description]
            )
        }
        await #expect(throws: VaultError.integrityViolation(reason: "")) {
            _ = try await vault.latestRecord(incident: incident, kind: .medications, viewer: testCrew)
        }
        await #expect(throws: VaultError.integrityViolation(reason: "")) {
            _ = try await vault.latestRecords(incident: incident, viewer: testCrew)
        }
        await #expect(throws: VaultError.integrityViolation(reason: "")) {
            _ = try await vault.records(incident: incident, viewer: testCrew)
        }
        // A new version would otherwise be numbered 2 again and hide the deletion.
        await #expect(throws: VaultError.integrityViolation(reason: "")) {
            try await vault.putRecord(incident: incident, kind: .medications, payload: Data("v3".utf8))
        }
        // The untouched kind still reads.
        let visits = try await vault.latestRecord(incident: incident, kind: .visits, viewer: testCrew)
        #expect(visits?.payload == Data("visits".utf8))
        do {
            _ = try await vault.latestRecord(incident: incident, kind: .medications, viewer: testCrew)
        } catch let error as VaultError {
            #expect(error.reason.contains("deleted or rolled back"), "\(error.reason)")
            #expect(!error.reason.contains("SYNTHETIC"), "no payload in the reason")
        }
    }

    @Test func deletedOrRolledBackCountIsDetected() async throws {
        let (vault, queue) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .medications, payload: Data("v1".utf8))
        try await vault.putRecord(incident: incident, kind: .medications, payload: Data("v2".utf8))
        // Deleting the newest row and lowering the count without the data key: the tag no longer fits.
        try await queue.write { db in
            try db.execute(
                sql: "DELETE FROM record WHERE incident_id = ? AND version = 2",
                arguments: [incident.description]
            )
            try db.execute(sql: "UPDATE record_head SET version = 1")
        }
        await #expect(throws: VaultError.integrityViolation(reason: "")) {
            _ = try await vault.records(incident: incident, viewer: testCrew)
        }
        // Deleting the count row as well.
        try await queue.write { db in try db.execute(sql: "DELETE FROM record_head") }
        await #expect(throws: VaultError.integrityViolation(reason: "")) {
            _ = try await vault.latestRecords(incident: incident, viewer: testCrew)
        }
    }

    @Test func incidentsWrittenBeforeRecordHeadsStillRead() async throws {
        let keyring = DeviceKeyring.generate()
        let (vault, queue) = try makeMemoryVault(keyring: keyring)
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .patient, payload: Data("legacy".utf8))
        // Turn it into an incident as the v1 code stored it: data key wrapped under the v1 associated
        // data, no record heads (this needs the device key: an attacker cannot do it).
        try await queue.write { db in
            let wrapped = try Data.fetchOne(db, sql: "SELECT wrapped_key FROM incident_key")!
            let unwrapped = try IncidentVault.unwrap(
                wrapped,
                incident: incident,
                keyID: keyring.currentKeyID,
                keyring: keyring
            )
            #expect(unwrapped.bindsRecordSet, "new incidents bind their record set")
            let legacy = try IncidentVault.wrap(
                dataKey: unwrapped.bytes,
                incident: incident,
                keyID: keyring.currentKeyID,
                keyring: keyring,
                bindsRecordSet: false
            )
            try db.execute(sql: "UPDATE incident_key SET wrapped_key = ?", arguments: [legacy])
            try db.execute(sql: "DELETE FROM record_head")
        }
        let read = try await vault.latestRecord(incident: incident, kind: .patient, viewer: testCrew)
        #expect(read?.payload == Data("legacy".utf8))
        #expect(try await vault.putRecord(incident: incident, kind: .patient, payload: Data("more".utf8)) == 2)
        #expect(try await vault.records(incident: incident, viewer: testCrew).count == 2)
    }

    // MARK: 16: the WAL is truncated at every start

    @Test func startUpTruncatesAWALLeftByACrashAfterAShred() async throws {
        let original = try makeTemporaryDirectory()
        let restored = try makeTemporaryDirectory()
        defer {
            removeDirectory(original)
            removeDirectory(restored)
        }
        let capture = LogCapture()
        let vault = try await IncidentVault.open(stateDirectory: original, logger: capture.logger())
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .medications, payload: Data(repeating: 0x42, count: 20_000))
        let pool = try DatabasePool(path: original + "/" + VaultDatabase.fileName)
        let stored = try await pool.read { db in
            [
                Data(try Data.fetchOne(db, sql: "SELECT sealed FROM record")!.dropFirst(12).prefix(32)),
                try Data.fetchOne(db, sql: "SELECT wrapped_key FROM incident_key")!,
            ]
        }
        // The shred commits (key, then rows) but the process dies before its WAL checkpoint: copy the
        // files as they are on the disk at that moment.
        #expect(try await vault.shredWithoutCheckpoint(incident: incident, reason: .acknowledged))
        for name in [VaultDatabase.fileName, VaultDatabase.fileName + "-wal", KeyFileProvider.defaultFileName] {
            try FileManager.default.copyItem(atPath: original + "/" + name, toPath: restored + "/" + name)
            chmod(restored + "/" + name, 0o600)
        }
        let walBefore = try #require(FileManager.default.contents(atPath: restored + "/vault.sqlite-wal"))
        #expect(stored.contains { walBefore.contains(bytes: $0) }, "the crash image holds the shredded data in its WAL")

        // Nothing is left to purge at this start, and yet the WAL must be emptied.
        let reopened = try await IncidentVault.open(stateDirectory: restored, logger: capture.logger())
        #expect(try await reopened.status().incidentCount == 0)
        for name in [VaultDatabase.fileName, VaultDatabase.fileName + "-wal"] {
            let contents = FileManager.default.contents(atPath: restored + "/" + name) ?? Data()
            for needle in stored {
                #expect(!contents.contains(bytes: needle), "shredded bytes remain in \(name)")
            }
        }
        let wal = try FileManager.default.attributesOfItem(atPath: restored + "/vault.sqlite-wal")[.size] as? Int
        #expect(wal == 0)
    }

    // MARK: 18: rotation between processes

    @Test(.timeLimit(.minutes(1)))
    func aSecondVaultOnTheSameFolderNoticesARotation() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let capture = LogCapture()
        let first = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        let second = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        let before = try await second.createIncident()
        try await second.putRecord(incident: before, kind: .patient, payload: Data("before".utf8))

        let report = try await first.rotateDeviceKey(provider: KeyFileProvider(stateDirectory: directory))
        // The second instance still holds the old keyring in memory; it must not wrap under the removed key.
        let after = try await second.createIncident()
        try await second.putRecord(incident: after, kind: .patient, payload: Data("after".utf8))
        #expect(second.currentDeviceKeyID == report.current)
        // Its older incident was re-wrapped by the first instance; the second re-reads and reads it.
        #expect(
            try await second.latestRecord(incident: before, kind: .patient, viewer: testCrew)?.payload
                == Data("before".utf8)
        )

        // A fresh start holds only the new key and reads both.
        let fresh = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        #expect(try await fresh.status().dataKeysPendingRewrap == 0)
        #expect(
            try await fresh.latestRecord(incident: after, kind: .patient, viewer: testCrew)?.payload
                == Data("after".utf8)
        )
        #expect(
            try await fresh.latestRecord(incident: before, kind: .patient, viewer: testCrew)?.payload
                == Data("before".utf8)
        )
        #expect(permissionBits(directory + "/" + KeyFileProvider.defaultFileName + ".lock") == 0o600)
    }

    @Test(.timeLimit(.minutes(1)))
    func wrappingWaitsForARotationInProgress() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let vault = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        let provider = KeyFileProvider(stateDirectory: directory)
        // Play the rotating process: hold the exclusive lock and replace the key file.
        let lock = try await FileLock.acquire(path: provider.lockPath, exclusive: true)
        let rotated = try provider.loadKeyring().addingWrappingKey().removingRetiredKeys()
        let creating = Task { try await vault.createIncident() }
        try provider.storeKeyring(rotated)
        lock.release()
        let incident = try await creating.value
        let keyID = try await vault.incidents().first { $0.id == incident }?.deviceKeyID
        #expect(keyID == rotated.currentKeyID, "the wrap happened after the rotation, under its key")
    }

    // MARK: 19: file checks

    @Test func openRestrictsTheStateFolderAndTheDatabase() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        _ = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        chmod(directory, 0o755)
        chmod(directory + "/" + VaultDatabase.fileName, 0o644)
        let capture = LogCapture()
        _ = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        #expect(permissionBits(directory) == 0o700)
        #expect(permissionBits(directory + "/" + VaultDatabase.fileName) == 0o600)
        #expect(capture.text.contains("restricted to 0700"))
        #expect(capture.text.contains("restricted to 0600"))
    }

    @Test func symlinkedDatabaseOrStateFolderIsRefused() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        _ = try await IncidentVault.open(stateDirectory: directory + "/real", logger: LogCapture().logger())
        symlink(directory + "/real", directory + "/link")
        await #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) {
            _ = try await IncidentVault.open(stateDirectory: directory + "/link", logger: LogCapture().logger())
        }
        try FileManager.default.createDirectory(atPath: directory + "/other", withIntermediateDirectories: false)
        symlink(directory + "/real/" + VaultDatabase.fileName, directory + "/other/" + VaultDatabase.fileName)
        #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) {
            _ = try VaultDatabase.openPool(path: directory + "/other/" + VaultDatabase.fileName)
        }
    }

    @Test func privateFileCheckForTheTerminalKey() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/terminal.key.pem"
        #expect(
            FileManager.default.createFile(
                atPath: path,
                contents: Data("k".utf8),
                attributes: [.posixPermissions: 0o600]
            )
        )
        try FilePermissions.requirePrivate(path: path)
        for loose in [0o640, 0o604, 0o644] {
            chmod(path, mode_t(loose))
            #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) {
                try FilePermissions.requirePrivate(path: path)
            }
        }
        chmod(path, 0o600)
        symlink(path, directory + "/link.pem")
        #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) {
            try FilePermissions.requirePrivate(path: directory + "/link.pem")
        }
        #expect(throws: VaultError.fileSystem(reason: "")) {
            try FilePermissions.requirePrivate(path: directory + "/absent.pem")
        }
    }

    // MARK: 15: fail closed with systemd credentials

    @Test func credentialsDirectorySetNeverFallsBackToAKeyFile() throws {
        let state = try makeTemporaryDirectory()
        let credentials = try makeTemporaryDirectory()
        defer {
            removeDirectory(state)
            removeDirectory(credentials)
        }
        let environment = ["CREDENTIALS_DIRECTORY": credentials]
        let auto = try DeviceKeySource.auto.provider(
            stateDirectory: state,
            createIfMissing: true,
            environment: environment
        )
        #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) { try auto.loadKeyring() }
        #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) {
            try DeviceKeySource.file.provider(stateDirectory: state, createIfMissing: true, environment: environment)
        }
        // The key file provider itself refuses to create a plaintext key while credentials are in use.
        #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) {
            try KeyFileProvider(stateDirectory: state, credentialsDirectory: credentials).loadKeyring()
        }
        #expect(!FileManager.default.fileExists(atPath: state + "/" + KeyFileProvider.defaultFileName))

        // With the credential under its one name, it is used.
        let keyring = DeviceKeyring.generate()
        #expect(
            FileManager.default.createFile(
                atPath: credentials + "/" + SystemdCredentialProvider.defaultName,
                contents: keyring.serialized(),
                attributes: [.posixPermissions: 0o400]
            )
        )
        #expect(try auto.loadKeyring().currentKeyID == keyring.currentKeyID)
        // Without CREDENTIALS_DIRECTORY, auto is the key file.
        let plain = try DeviceKeySource.auto.provider(stateDirectory: state, createIfMissing: true, environment: [:])
        #expect(plain is KeyFileProvider)
    }

    @Test func oneCredentialNameInCodeAndDeployNotes() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        for document in ["deploy/README.md", "docs/vault.md"] {
            let text = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)
            #expect(text.contains(SystemdCredentialProvider.defaultName), "\(document)")
            let otherNames = text.components(separatedBy: "kyukyu-device-key").dropFirst().filter {
                !$0.hasPrefix("ring")
            }
            #expect(otherNames.isEmpty, "\(document) names another credential")
        }
    }

    // MARK: synchronous = FULL, clock back across a reboot

    @Test func everyConnectionRunsWithSynchronousFullAndSecureDelete() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let pool = try VaultDatabase.openPool(path: directory + "/" + VaultDatabase.fileName)
        let onWriter = try await pool.write { db in
            [try Int.fetchOne(db, sql: "PRAGMA synchronous"), try Int.fetchOne(db, sql: "PRAGMA secure_delete")]
        }
        let onReader = try await pool.read { db in
            [try Int.fetchOne(db, sql: "PRAGMA synchronous"), try Int.fetchOne(db, sql: "PRAGMA secure_delete")]
        }
        // SQLite: 2 = FULL (1 = NORMAL, the WAL default GRDB would otherwise keep).
        #expect(onWriter == [2, 1])
        #expect(onReader == [2, 1])
    }

    @Test func wallClockGoingBackAcrossARebootIsReported() async throws {
        let clock = TestClock()
        let (vault, _) = try makeMemoryVault(clock: clock)
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        clock.reboot()
        clock.jumpWall(seconds: -3 * 3600)
        let afterReboot = try await vault.audit.append(.crewSignIn(crew: testCrew))
        clock.advance(seconds: 5)
        try await vault.audit.append(.crewSignOut(crew: testCrew))
        let verification = try await vault.audit.verify()
        #expect(verification.isIntact, "a clock jump is not tampering")
        #expect(verification.clockJumps.count == 1)
        let jump = try #require(verification.clockJumps.first)
        #expect(jump.sequence == afterReboot)
        #expect(jump.acrossReboot)
        #expect(jump.skewSeconds < -3 * 3600 + 1)
    }

    // MARK: 14: exports

    @Test func exportWithItsFirstEntriesRemovedFailsUnlessPartialIsAsked() async throws {
        let (vault, _) = try makeMemoryVault()
        for _ in 0..<6 { try await vault.audit.append(.crewSignIn(crew: testCrew)) }
        let export = try await vault.audit.exportSnapshot()
        let head = try #require(export.head)
        let key = vault.audit.signingPublicKey
        #expect(AuditTrail.verifyExport(entries: export.entries, head: head, signingPublicKey: key).isIntact)

        let cut = Array(export.entries.dropFirst(2))
        let strict = AuditTrail.verifyExport(entries: cut, head: head, signingPublicKey: key)
        #expect(strict.problems.map(\.kind) == [.missing])
        #expect(strict.problems.first?.detail.contains("#1–#2") == true)

        let partial = AuditTrail.verifyExport(entries: cut, head: head, signingPublicKey: key, allowingPartial: true)
        #expect(partial.isIntact)
        #expect(partial.uncheckedBefore == 3)
        #expect(
            AuditTrail.verifyExport(entries: export.entries, head: head, signingPublicKey: key, allowingPartial: true)
                .uncheckedBefore == nil
        )
    }

    @Test(.timeLimit(.minutes(1)))
    func exportSnapshotNeverDisagreesWithItsHeadWhileAppending() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let vault = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        let key = vault.audit.signingPublicKey
        let appending = Task {
            for _ in 0..<300 { try await vault.audit.append(.crewSignIn(crew: testCrew)) }
        }
        var checked = 0
        while checked < 200 {
            let export = try await vault.audit.exportSnapshot()
            if let head = export.head {
                let verification = AuditTrail.verifyExport(entries: export.entries, head: head, signingPublicKey: key)
                #expect(verification.isIntact, "\(verification.problems)")
                #expect(export.entries.last?.sequence == head.sequence)
            }
            checked += 1
        }
        try await appending.value
    }
}

/// Several records and their read-back in one transaction (the workflow stores what arrived together this way).
@Suite("Vault: records stored and read back together")
struct PutRecordsTests {
    @Test func storesEachVersionReadsBackAndAuditsBothInOneStep() async throws {
        let (vault, _) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .medications, payload: Data("SYNTHETIC-DRUG-1".utf8))
        let before = try await vault.audit.count()
        let read = try await vault.putRecords(
            incident: incident,
            [
                (.medications, Data("SYNTHETIC-DRUG-2".utf8)), (.visits, Data("SYNTHETIC-VISIT".utf8)),
                (.patient, Data("state".utf8)),
            ],
            readingBack: [.medications, .visits],
            viewer: testCrew
        )
        #expect(read.map(\.kind) == [.medications, .visits])
        #expect(read.map(\.version) == [2, 1])
        #expect(read.map { String(decoding: $0.payload, as: UTF8.self) } == ["SYNTHETIC-DRUG-2", "SYNTHETIC-VISIT"])
        let actions = try await vault.audit.export().dropFirst(before).map(\.event.action)
        #expect(actions == [.categoryFetched, .categoryFetched, .categoryFetched, .categoryViewed, .categoryViewed])
        let patient = try await vault.latestRecord(incident: incident, kind: .patient, viewer: testCrew)
        #expect(patient.map { String(decoding: $0.payload, as: UTF8.self) } == "state")
    }

    @Test func aFailureOnTheSecondRecordStoresNotEvenTheFirst() async throws {
        let (vault, queue) = try makeMemoryVault()
        let incident = try await vault.createIncident()
        try await vault.putRecord(incident: incident, kind: .visits, payload: Data("SYNTHETIC-VISIT".utf8))
        // The visits' stored version goes missing: storing the next one is an integrity error.
        try await queue.write { db in
            try db.execute(
                sql: "DELETE FROM record WHERE incident_id = ? AND kind = 'visits'",
                arguments: [incident.description]
            )
        }
        let before = try await vault.audit.count()
        await #expect(throws: VaultError.integrityViolation(reason: "")) {
            _ = try await vault.putRecords(
                incident: incident,
                [(.medications, Data("SYNTHETIC-DRUG".utf8)), (.visits, Data("SYNTHETIC-VISIT-2".utf8))],
                readingBack: [.medications],
                viewer: testCrew
            )
        }
        #expect(try await vault.latestRecord(incident: incident, kind: .medications, viewer: testCrew)?.version == nil)
        // The read just above is the only entry added (none for the medications that were not stored).
        #expect(try await vault.audit.count() == before)
    }
}
