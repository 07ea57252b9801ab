import Foundation
import GRDB
import KyukyuDomain
import Testing

@testable import KyukyuVault

@Suite("Audit trail")
struct AuditTests {
    /// A vault with ten audit entries (incident created, fetches, views, sign-in…).
    func makeTrail(clock: TestClock = TestClock()) async throws -> (IncidentVault, DatabaseQueue) {
        let (vault, queue) = try makeMemoryVault(clock: clock)
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        let id = try await vault.createIncident()
        let serial = vault.audit.serialDigest(ofCertificateSerial: Data([0x01, 0x23, 0x45, 0x67]))
        try await vault.audit.append(
            .cardRead(incident: id, tokenType: .individualNumberCard, serial: serial, by: testCrew)
        )
        try await vault.audit.append(.consentRecorded(incident: id, basis: .lifeOrBodyException, recordedBy: testCrew))
        try await vault.putRecord(incident: id, kind: .medications, payload: Data("m".utf8))
        try await vault.putRecord(incident: id, kind: .visits, payload: Data("v".utf8))
        _ = try await vault.records(incident: id, viewer: testCrew)  // two views
        try await vault.markHandoffSent(incident: id, destination: FacilityCode("1312345678")!, by: testCrew)
        try await vault.audit.append(.crewSignOut(crew: testCrew))
        #expect(try await vault.audit.count() == 10)
        return (vault, queue)
    }

    func tamper(_ queue: DatabaseQueue, _ sql: String) async throws {
        try await queue.write { db in
            try db.execute(
                sql: "DROP TRIGGER IF EXISTS audit_entry_no_update; DROP TRIGGER IF EXISTS audit_entry_no_delete"
            )
            try db.execute(sql: sql)
        }
    }

    @Test func intactChainVerifies() async throws {
        let (vault, _) = try await makeTrail()
        let verification = try await vault.audit.verify()
        #expect(verification.isIntact, "\(verification.problems)")
        #expect(verification.entryCount == 10)
        #expect(verification.head?.sequence == 10)
        #expect(verification.clockJumps.isEmpty)
        let actions = try await vault.audit.export().map(\.event.action)
        #expect(
            actions == [
                .crewSignIn, .incidentCreated, .cardRead, .consentRecorded, .categoryFetched, .categoryFetched,
                .categoryViewed, .categoryViewed, .handoffSent, .crewSignOut,
            ]
        )
    }

    @Test func triggersRejectOrdinaryEditsAndDeletes() async throws {
        let (_, queue) = try await makeTrail()
        await #expect(throws: DatabaseError.self) {
            try await queue.write { db in try db.execute(sql: "DELETE FROM audit_entry WHERE seq = 3") }
        }
        await #expect(throws: DatabaseError.self) {
            try await queue.write { db in try db.execute(sql: "UPDATE audit_entry SET wall_time = 0 WHERE seq = 3") }
        }
    }

    @Test func editIsReportedAsAltered() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(
            queue,
            "UPDATE audit_entry SET body = CAST(replace(CAST(body AS TEXT), 'life-or-body-exception', 'verbal') AS BLOB) WHERE seq = 4"
        )
        let verification = try await vault.audit.verify()
        #expect(verification.problems.map(\.kind) == [.altered])
        #expect(verification.problems.first?.sequence == 4)
    }

    @Test func editOfTheWallTimeColumnIsReportedAsAltered() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(queue, "UPDATE audit_entry SET wall_time = wall_time - 86400 WHERE seq = 2")
        let verification = try await vault.audit.verify()
        #expect(verification.problems.map(\.kind) == [.altered])
        #expect(verification.problems.first?.sequence == 2)
    }

    @Test func editWithRecomputedHashesIsCaughtByTheSignedHead() async throws {
        let (vault, queue) = try await makeTrail()
        // The attacker edits entry 4 and rebuilds every hash after it (SHA-256 is not keyed)…
        try await queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_entry_no_update")
            var previous = try Data.fetchOne(db, sql: "SELECT hash FROM audit_entry WHERE seq = 3")!
            for seq in 4...10 {
                var body = try Data.fetchOne(db, sql: "SELECT body FROM audit_entry WHERE seq = ?", arguments: [seq])!
                if seq == 4 {
                    body = Data(
                        String(decoding: body, as: UTF8.self).replacingOccurrences(
                            of: "life-or-body-exception",
                            with: "verbal"
                        ).utf8
                    )
                }
                let hash = AuditTrail.entryHash(previous: previous, body: body)
                try db.execute(
                    sql: "UPDATE audit_entry SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                    arguments: [body, previous, hash, seq]
                )
                previous = hash
            }
        }
        // …but cannot sign a new head.
        let verification = try await vault.audit.verify()
        #expect(verification.problems.map(\.kind) == [.headInvalid])
    }

    @Test func deletionIsReportedAsMissing() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(queue, "DELETE FROM audit_entry WHERE seq IN (5, 6)")
        let verification = try await vault.audit.verify()
        #expect(verification.problems.map(\.kind) == [.missing])
        #expect(verification.problems.first?.sequence == 5)
        #expect(verification.problems.first?.detail.contains("#5–#6") == true)
    }

    @Test func reorderIsReportedAsReordered() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(
            queue,
            """
            UPDATE audit_entry SET seq = -4 WHERE seq = 4;
            UPDATE audit_entry SET seq = 4 WHERE seq = 6;
            UPDATE audit_entry SET seq = 6 WHERE seq = -4;
            """
        )
        let verification = try await vault.audit.verify()
        #expect(verification.problems.map(\.kind) == [.reordered, .reordered])
        #expect(verification.problems.map(\.sequence) == [4, 6])
    }

    @Test func truncationIsReportedAsTruncated() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(queue, "DELETE FROM audit_entry WHERE seq > 7")
        let verification = try await vault.audit.verify()
        #expect(verification.problems.map(\.kind) == [.truncated])
        #expect(verification.problems.first?.sequence == 8)
        // A later append continues after the signed head, so the gap stays visible.
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        let after = try await vault.audit.verify()
        #expect(after.problems.map(\.kind) == [.missing])
        #expect(after.problems.first?.detail.contains("#8–#10") == true)
    }

    @Test func truncationOfEverythingIsReported() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(queue, "DELETE FROM audit_entry")
        #expect(try await vault.audit.verify().problems.map(\.kind) == [.truncated])
    }

    @Test func deletedHeadIsReported() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(queue, "DELETE FROM audit_head")
        #expect(try await vault.audit.verify().problems.map(\.kind) == [.headMissing])
    }

    @Test func forgedAppendIsReportedAsUnsigned() async throws {
        let (vault, queue) = try await makeTrail()
        try await queue.write { db in
            let previous = try Data.fetchOne(db, sql: "SELECT hash FROM audit_entry WHERE seq = 10")!
            let timestamp = TestClock().now()
            let body = try AuditTrail.encodeBody(
                sequence: 11,
                timestamp: timestamp,
                event: .crewSignIn(crew: CrewID("intruder")!)
            )
            try db.execute(
                sql: "INSERT INTO audit_entry (seq, wall_time, body, prev_hash, hash) VALUES (11, ?, ?, ?, ?)",
                arguments: [
                    timestamp.wall.timeIntervalSince1970, body, previous,
                    AuditTrail.entryHash(previous: previous, body: body),
                ]
            )
        }
        #expect(try await vault.audit.verify().problems.map(\.kind) == [.unsignedEntries])
    }

    @Test func tamperingStaysVisibleAfterLaterAppends() async throws {
        // Head deleted (to hide a truncation), then the device appends again.
        let (vault, queue) = try await makeTrail()
        try await tamper(queue, "DELETE FROM audit_entry WHERE seq > 7; DELETE FROM audit_head")
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        #expect(try await vault.audit.verify().problems.map(\.kind) == [.chainBroken])

        // A forged row appended without the key, then a genuine append signs past it.
        let (forgedVault, forgedQueue) = try await makeTrail()
        try await forgedQueue.write { db in
            let previous = try Data.fetchOne(db, sql: "SELECT hash FROM audit_entry WHERE seq = 10")!
            let timestamp = TestClock().now()
            let body = try AuditTrail.encodeBody(
                sequence: 11,
                timestamp: timestamp,
                event: .crewSignOut(crew: CrewID("intruder")!)
            )
            try db.execute(
                sql: "INSERT INTO audit_entry (seq, wall_time, body, prev_hash, hash) VALUES (11, ?, ?, ?, ?)",
                arguments: [
                    timestamp.wall.timeIntervalSince1970, body, previous,
                    AuditTrail.entryHash(previous: previous, body: body),
                ]
            )
        }
        let next = try await forgedVault.audit.append(.crewSignIn(crew: testCrew))
        #expect(next == 12)
        let verification = try await forgedVault.audit.verify()
        #expect(verification.problems.map(\.kind) == [.chainBroken])
        #expect(verification.problems.first?.sequence == 12)
    }

    @Test func forgedHeadSignatureIsReported() async throws {
        let (vault, queue) = try await makeTrail()
        try await tamper(queue, "UPDATE audit_head SET signed_at = signed_at + 1")
        #expect(try await vault.audit.verify().problems.map(\.kind) == [.headInvalid])
    }

    @Test func rollbackToAnOlderSignedStateIsCaughtByAnAnchor() async throws {
        let (vault, queue) = try makeMemoryVault()
        for _ in 0..<7 { try await vault.audit.append(.crewSignIn(crew: testCrew)) }
        // An attacker keeps a copy of the whole database at 7 entries…
        let snapshot = try DatabaseQueue()
        try queue.backup(to: snapshot)
        for _ in 0..<3 { try await vault.audit.append(.crewSignOut(crew: testCrew)) }
        // …while the device exports its head (kept off the device, e.g. sent with the handoff).
        let anchor = try #require(try await vault.audit.head())
        #expect(anchor.sequence == 10)
        // Later the attacker restores the old copy: genuine entries, genuinely signed head.
        try snapshot.backup(to: queue)
        let local = try await vault.audit.verify()
        #expect(local.isIntact, "a rollback to a genuine older state cannot be seen locally")
        #expect(local.head?.sequence == 7)
        let anchored = try await vault.audit.verify(anchor: anchor)
        #expect(anchored.problems.map(\.kind) == [.anchorMismatch])
    }

    @Test func clockJumpsAreFlagged() async throws {
        let clock = TestClock()
        let (vault, _) = try makeMemoryVault(clock: clock)
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        clock.advance(seconds: 30)
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        clock.jumpWall(seconds: 3600)
        let jumped = try await vault.audit.append(.crewSignIn(crew: testCrew))
        clock.jumpWall(seconds: -7200)
        let back = try await vault.audit.append(.crewSignIn(crew: testCrew))
        clock.reboot()
        clock.advance(seconds: 10)
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        let verification = try await vault.audit.verify()
        #expect(verification.isIntact)
        #expect(verification.clockJumps.map(\.sequence) == [jumped, back])
        #expect((verification.clockJumps.first?.skewSeconds ?? 0) > 3599)
        #expect((verification.clockJumps.last?.skewSeconds ?? 0) < -7199)
    }

    @Test func serialIsOnlyStoredAsKeyedHash() async throws {
        let (vault, queue) = try makeMemoryVault()
        let serial = Data("0123456789ABCDEF".utf8)
        let digest = vault.audit.serialDigest(ofCertificateSerial: serial)
        #expect(digest == vault.audit.serialDigest(ofCertificateSerial: serial))
        let (other, _) = try makeMemoryVault()
        #expect(digest != other.audit.serialDigest(ofCertificateSerial: serial))
        let id = try await vault.createIncident()
        try await vault.audit.append(
            .cardRead(incident: id, tokenType: .individualNumberCard, serial: digest, by: testCrew)
        )
        let bodies = try await queue.read { db in try Data.fetchAll(db, sql: "SELECT body FROM audit_entry") }
        for body in bodies {
            #expect(!body.contains(bytes: serial))
            #expect(!body.contains(bytes: Data(hex(serial).utf8)))
        }
        let exported = try await vault.audit.export()
        #expect(exported.last?.event.attributes["serial-hmac"] == digest.hexValue)
        #expect(exported.last?.event.attributes["token-type"] == "individual-number-card")
    }

    /// The audit trail records the domain spellings (what entries already written contain).
    @Test func attributesUseTheDomainSpellings() {
        let id = IncidentID()
        let digest = CertificateSerialDigest(hexValue: "00")
        for type in TokenType.allCases {
            let event = AuditEvent.cardRead(incident: id, tokenType: type, serial: digest, by: testCrew)
            #expect(event.attributes["token-type"] == type.rawValue)
        }
        let bases = ConsentBasis.allCases.map {
            AuditEvent.consentRecorded(incident: id, basis: $0, recordedBy: testCrew).attributes["basis"]
        }
        #expect(bases == ["verbal", "life-or-body-exception", "refused"])
        let fetched = AuditEvent.categoryFetched(incident: id, category: .prescriptions, version: 1)
        #expect(fetched.attributes["category"] == "prescriptions")
    }

    /// Writes entries as the CLI does (JSON lines, ISO 8601 dates) and reads them back.
    func roundTrip(_ entries: [AuditEntry]) throws -> [AuditEntry] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try entries.map { try decoder.decode(AuditEntry.self, from: encoder.encode($0)) }
    }

    @Test func exportsVerifyOffTheDeviceWithThePinnedKey() async throws {
        let clock = TestClock()
        let (vault, _) = try await makeTrail(clock: clock)
        let key = vault.audit.signingPublicKey
        let head = try #require(try await vault.audit.head())
        let all = try roundTrip(try await vault.audit.export())
        #expect(AuditTrail.verifyExport(entries: all, head: head, signingPublicKey: key).isIntact)
        let tail = Array(all.suffix(4))
        // A tail (an export made with `since`) verifies only when a partial check is asked for.
        #expect(
            AuditTrail.verifyExport(entries: tail, head: head, signingPublicKey: key).problems.map(\.kind) == [.missing]
        )
        #expect(
            AuditTrail.verifyExport(entries: tail, head: head, signingPublicKey: key, allowingPartial: true).isIntact
        )

        var edited = all
        edited[3].body = edited[3].body.replacingOccurrences(of: "life-or-body-exception", with: "verbal")
        #expect(
            AuditTrail.verifyExport(entries: edited, head: head, signingPublicKey: key).problems.map(\.kind) == [
                .altered
            ]
        )

        var relabelled = all
        relabelled[3].event = .consentRecorded(incident: IncidentID(), basis: .verbal, recordedBy: testCrew)
        #expect(
            AuditTrail.verifyExport(entries: relabelled, head: head, signingPublicKey: key).problems.map(\.kind)
                == [.altered]
        )

        var dropped = all
        dropped.remove(at: 5)
        #expect(
            AuditTrail.verifyExport(entries: dropped, head: head, signingPublicKey: key).problems.map(\.kind) == [
                .missing
            ]
        )

        let cut = Array(all.prefix(8))
        #expect(
            AuditTrail.verifyExport(entries: cut, head: head, signingPublicKey: key).problems.map(\.kind) == [
                .truncated
            ]
        )

        let (stranger, _) = try makeMemoryVault()
        let wrongKey = stranger.audit.signingPublicKey
        #expect(
            AuditTrail.verifyExport(entries: all, head: head, signingPublicKey: wrongKey).problems.map(\.kind)
                == [.chainBroken, .headInvalid]
        )
    }

    @Test func exportSinceFiltersByWallClock() async throws {
        let clock = TestClock()
        let (vault, _) = try makeMemoryVault(clock: clock)
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        clock.advance(seconds: 3600)
        let cut = clock.now().wall
        try await vault.audit.append(.crewSignOut(crew: testCrew))
        let entries = try await vault.audit.export(since: cut)
        #expect(entries.map(\.event.action) == [.crewSignOut])
        #expect(entries.first?.sequence == 2)
        let all = try await vault.audit.export()
        #expect(all[1].previousHash == all[0].hash)
    }
}
