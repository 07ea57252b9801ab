import Foundation
internal import GRDB
import KyukyuDomain
import KyukyuVault
import Logging

/// The SQLite engine (GRDB): one file in the receiver's state folder (WAL, `synchronous = FULL`), one writer.
/// Documents that arrive together are written in one transaction, each in its own savepoint (``GroupCommit``).
final class SQLiteStorage: HospitalStorage {
    let engine = "sqlite"
    let database: DatabasePool
    private let commits: GroupCommit<IntakeRow, Result<IntakeStep, ReceiverError>>
    private init(database: DatabasePool, commitBatch: Int) {
        self.database = database
        self.commits = GroupCommit(maximumBatch: commitBatch)
    }

    /// Opens (creating if missing, mode 0600 in a 0700 folder) and migrates the database at `path`. `hospital` owns
    /// the rows written before tenancy (migration v2); without it, such a database is refused. Blocking: call at
    /// start-up.
    static func open(path: String, hospital: HospitalCode?, commitBatch: Int) throws(ReceiverError) -> SQLiteStorage {
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try PrivateFiles.ensureDirectory(folder.isEmpty ? "." : folder)
            try PrivateFiles.touch(path)
        } catch {
            throw .storage("cannot prepare \(path): \(error)")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB sets `synchronous = NORMAL` on its writer when it enables WAL: FULL again.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try migrator(hospital: hospital).migrateForwardOnly(pool, name: "the receiver's database")
            for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                try PrivateFiles.restrict(path + suffix)
            }
            return SQLiteStorage(database: pool, commitBatch: commitBatch)
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .storage("cannot open the receiver's database \(path): \(describe(error))")
        }
    }

    /// The migrations; PostgresStorage has the same ones in PostgreSQL's dialect.
    static func migrator(hospital: HospitalCode?) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device (
                        id TEXT PRIMARY KEY NOT NULL,
                        issued_at INTEGER NOT NULL,
                        revoked_at INTEGER
                    );
                    CREATE TABLE document_set (
                        set_uuid TEXT PRIMARY KEY NOT NULL,
                        device TEXT NOT NULL,
                        status TEXT NOT NULL,
                        latest_version INTEGER NOT NULL,
                        reason TEXT,
                        note_sealed BLOB,
                        first_received_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL
                    );
                    CREATE TABLE document (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        set_uuid TEXT NOT NULL REFERENCES document_set(set_uuid),
                        version INTEGER NOT NULL,
                        version_identifier TEXT NOT NULL UNIQUE,
                        bundle_id TEXT NOT NULL,
                        sha256 TEXT NOT NULL,
                        sender_device TEXT NOT NULL,
                        received_at INTEGER NOT NULL,
                        built_at INTEGER NOT NULL,
                        key_id TEXT NOT NULL,
                        sealed BLOB NOT NULL,
                        UNIQUE (set_uuid, version)
                    );
                    CREATE TABLE event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        device TEXT NOT NULL,
                        sequence INTEGER NOT NULL,
                        set_uuid TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        reason TEXT,
                        note_sealed BLOB,
                        at INTEGER NOT NULL,
                        UNIQUE (device, sequence)
                    );
                    CREATE INDEX event_set ON event(set_uuid);
                    CREATE TABLE anchor (
                        version_identifier TEXT PRIMARY KEY NOT NULL REFERENCES document(version_identifier),
                        device TEXT NOT NULL,
                        sequence INTEGER NOT NULL,
                        hash TEXT NOT NULL,
                        signed_at_ms INTEGER NOT NULL,
                        signing_public_key TEXT NOT NULL,
                        signature TEXT NOT NULL,
                        set_uuid TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        received_at INTEGER NOT NULL
                    );
                    CREATE INDEX anchor_device ON anchor(device, sequence);
                    """
            )
        }
        // Tenancy: every set, version and event names its hospital, a set is one hospital's (the same set goes to
        // another hospital after a divert), and positions come from counter rows. The rows written before belong to
        // this receiver's hospital, and stay sealed the old way (`sealing` 1: the receiver-wide key).
        migrator.registerMigration("v2") { db in
            let earlier = try Int.fetchOne(
                db,
                sql: "SELECT (SELECT COUNT(*) FROM document_set) + (SELECT COUNT(*) FROM event)"
            )
            guard let code = hospital?.rawValue ?? (earlier == 0 ? "" : nil) else {
                throw ReceiverError.invalidInput(
                    "this receiver's database was written by a release before tenancy: give its hospital's code "
                        + "(hospital.code; --hospital for the offline commands) once to upgrade it"
                )
            }
            try db.execute(
                sql: """
                    CREATE TABLE tenant (
                        code TEXT PRIMARY KEY NOT NULL,
                        last_board_sequence INTEGER NOT NULL DEFAULT 0
                    );
                    INSERT INTO tenant (code, last_board_sequence)
                        SELECT ?, MAX(id) FROM event HAVING COUNT(*) > 0;
                    CREATE TABLE device_sequence (
                        device TEXT PRIMARY KEY NOT NULL,
                        last_sequence INTEGER NOT NULL
                    );
                    INSERT INTO device_sequence (device, last_sequence)
                        SELECT device, MAX(sequence) FROM event GROUP BY device;
                    CREATE TABLE document_set_v2 (
                        hospital TEXT NOT NULL,
                        set_uuid TEXT NOT NULL,
                        device TEXT NOT NULL,
                        status TEXT NOT NULL,
                        latest_version INTEGER NOT NULL,
                        reason TEXT,
                        note_sealed BLOB,
                        sealing INTEGER NOT NULL,
                        first_received_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        PRIMARY KEY (hospital, set_uuid)
                    );
                    INSERT INTO document_set_v2
                        SELECT ?, set_uuid, device, status, latest_version, reason, note_sealed, 1, first_received_at,
                            updated_at
                        FROM document_set;
                    CREATE TABLE document_v2 (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        hospital TEXT NOT NULL,
                        set_uuid TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        version_identifier TEXT NOT NULL UNIQUE,
                        bundle_id TEXT NOT NULL,
                        sha256 TEXT NOT NULL,
                        sender_device TEXT NOT NULL,
                        received_at INTEGER NOT NULL,
                        built_at INTEGER NOT NULL,
                        key_id TEXT NOT NULL,
                        sealing INTEGER NOT NULL,
                        sealed BLOB NOT NULL,
                        UNIQUE (hospital, set_uuid, version),
                        FOREIGN KEY (hospital, set_uuid) REFERENCES document_set(hospital, set_uuid)
                    );
                    INSERT INTO document_v2
                        SELECT id, ?, set_uuid, version, version_identifier, bundle_id, sha256, sender_device,
                            received_at, built_at, key_id, 1, sealed
                        FROM document;
                    DROP TABLE document;
                    DROP TABLE document_set;
                    ALTER TABLE document_set_v2 RENAME TO document_set;
                    ALTER TABLE document_v2 RENAME TO document;
                    CREATE INDEX document_set_device ON document_set(set_uuid, device);
                    CREATE INDEX document_set_open ON document_set(hospital, status, first_received_at);
                    ALTER TABLE event ADD COLUMN hospital TEXT NOT NULL DEFAULT '';
                    ALTER TABLE event ADD COLUMN board_sequence INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE event ADD COLUMN sealing INTEGER NOT NULL DEFAULT 1;
                    UPDATE event SET hospital = ?, board_sequence = id;
                    CREATE UNIQUE INDEX event_board ON event(hospital, board_sequence);
                    """,
                arguments: [code, code, code, code]
            )
        }
        // Hospitals' acceptance and placement requests (PostgresStorage has the same, in its dialect).
        migrator.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    CREATE TABLE acceptance (
                        hospital TEXT PRIMARY KEY NOT NULL,
                        revision INTEGER NOT NULL,
                        body TEXT NOT NULL,
                        staff TEXT,
                        at INTEGER NOT NULL
                    );
                    CREATE TABLE acceptance_history (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        hospital TEXT NOT NULL,
                        revision INTEGER NOT NULL,
                        body TEXT NOT NULL,
                        staff TEXT,
                        at INTEGER NOT NULL,
                        UNIQUE (hospital, revision)
                    );
                    CREATE INDEX acceptance_history_at ON acceptance_history(at);
                    CREATE TABLE placement (
                        id TEXT PRIMARY KEY NOT NULL,
                        device TEXT NOT NULL,
                        set_uuid TEXT NOT NULL,
                        request_sha TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        placed_hospital TEXT,
                        placed_at INTEGER,
                        cancelled_at INTEGER
                    );
                    CREATE INDEX placement_created ON placement(created_at);
                    CREATE TABLE placement_target (
                        placement TEXT NOT NULL REFERENCES placement(id),
                        hospital TEXT NOT NULL,
                        answer TEXT NOT NULL,
                        reason TEXT,
                        note_sealed BLOB,
                        summary_sealed BLOB NOT NULL,
                        answered_at INTEGER,
                        staff TEXT,
                        PRIMARY KEY (placement, hospital)
                    );
                    CREATE INDEX placement_target_hospital ON placement_target(hospital, answer);
                    CREATE TABLE placement_event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        hospital TEXT NOT NULL,
                        board_sequence INTEGER NOT NULL,
                        device TEXT NOT NULL,
                        sequence INTEGER NOT NULL,
                        placement TEXT NOT NULL,
                        set_uuid TEXT NOT NULL,
                        answer TEXT NOT NULL,
                        reason TEXT,
                        note_sealed BLOB,
                        at INTEGER NOT NULL,
                        UNIQUE (device, sequence),
                        UNIQUE (hospital, board_sequence)
                    );
                    """
            )
        }
        return migrator
    }

    // MARK: - Devices

    func registerDevice(_ id: String, at: Int64) async throws(ReceiverError) {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO device (id, issued_at, revoked_at) VALUES (?, ?, NULL)
                    ON CONFLICT(id) DO UPDATE SET issued_at = excluded.issued_at, revoked_at = NULL
                    """,
                arguments: [id, at]
            )
        }
    }

    func revokeDevice(_ id: String, at: Int64) async throws(ReceiverError) -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE device SET revoked_at = ? WHERE id = ?", arguments: [at, id])
            return db.changesCount > 0
        }
    }

    func device(_ id: String) async throws(ReceiverError) -> DeviceRecord? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM device WHERE id = ?"), arguments: [id])
                .map(Self.device)
        }
    }

    func devices() async throws(ReceiverError) -> [DeviceRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM device ORDER BY id").map(Self.device) }
    }

    // MARK: - Intake

    func intake(_ row: IntakeRow) async -> Result<IntakeStep, ReceiverError> {
        await commits.submit(row) { rows in await self.store(rows) }
    }

    /// Stores the rows of one group commit in one transaction, each in its own savepoint: a refused row (thrown
    /// inside its savepoint) leaves nothing behind and does not touch the others. Runs on the writer.
    func store(_ rows: [IntakeRow]) async -> [Result<IntakeStep, ReceiverError>] {
        do {
            return try await database.write { db in
                rows.map { row in
                    var step: IntakeStep?
                    do {
                        try db.inSavepoint {
                            step = try Self.store(row, db)
                            return .commit
                        }
                        return .success(step!)
                    } catch let error as ReceiverError {
                        return .failure(error)
                    } catch {
                        return .failure(.storage("the receiver's database cannot be written: \(Self.describe(error))"))
                    }
                }
            }
        } catch {
            let failure = ReceiverError.storage("the receiver's database cannot be written: \(Self.describe(error))")
            return rows.map { _ in .failure(failure) }
        }
    }

    /// One document's rows, or the stored version for a resend. Throws ``ReceiverError`` to refuse it.
    private static func store(_ row: IntakeRow, _ db: Database) throws -> IntakeStep {
        if let owner = try String.fetchOne(
            try db.cachedStatement(sql: "SELECT device FROM document_set WHERE set_uuid = ? AND device <> ? LIMIT 1"),
            arguments: [row.set, row.device]
        ), owner != row.device {
            throw ReceiverError.forbidden("this document set was sent by another device")
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO document_set (hospital, set_uuid, device, status, latest_version, sealing,
                    first_received_at, updated_at)
                VALUES (?, ?, ?, 'received', ?, 2, ?, ?)
                ON CONFLICT(hospital, set_uuid) DO NOTHING
                """
        ).execute(arguments: [row.hospital, row.set, row.device, row.version, row.at, row.at])
        do {
            try db.cachedStatement(
                sql: """
                    INSERT INTO document (hospital, set_uuid, version, version_identifier, bundle_id, sha256,
                        sender_device, received_at, built_at, key_id, sealing, sealed)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(version_identifier) DO NOTHING
                    """
            ).execute(arguments: [
                row.hospital, row.set, row.version, row.versionIdentifier, row.bundleID, row.sha, row.device, row.at,
                row.builtAt, row.keyID, row.sealing, row.sealed,
            ])
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ReceiverError.conflict("version \(row.version) of this document set is stored under another key")
        }
        if db.changesCount == 0 {
            guard
                let stored = try Row.fetchOne(
                    try db.cachedStatement(sql: "SELECT * FROM document WHERE version_identifier = ?"),
                    arguments: [row.versionIdentifier]
                ).map(Self.version)
            else { throw ReceiverError.conflict("the key is stored but cannot be read") }
            guard stored.sha256 == row.sha, stored.device == row.device, stored.hospital == row.hospital else {
                throw ReceiverError.conflict("this key is stored with other content (SHA-256 differs)")
            }
            return .resent(stored)
        }
        try db.cachedStatement(
            sql: """
                UPDATE document_set SET latest_version = MAX(latest_version, ?), updated_at = ?,
                    status = CASE status WHEN 'withdrawn' THEN 'received' ELSE status END
                WHERE hospital = ? AND set_uuid = ?
                """
        ).execute(arguments: [row.version, row.at, row.hospital, row.set])
        if let anchor = row.anchor {
            try db.cachedStatement(
                sql: """
                    INSERT INTO anchor (version_identifier, device, sequence, hash, signed_at_ms, signing_public_key,
                        signature, set_uuid, version, received_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                row.versionIdentifier, row.device, anchor.sequence, anchor.hash, anchor.signedAtMilliseconds,
                anchor.signingPublicKey, anchor.signature, row.set, row.version, row.at,
            ])
        }
        let version = StoredVersionRow(
            hospital: row.hospital,
            set: row.set,
            version: row.version,
            versionIdentifier: row.versionIdentifier,
            bundleID: row.bundleID,
            sha256: row.sha,
            device: row.device,
            receivedAt: row.at,
            builtAt: row.builtAt
        )
        let event = try appendEvent(
            db,
            EventRow(
                id: 0,
                hospital: row.hospital,
                boardSequence: 0,
                device: row.device,
                sequence: 0,
                set: row.set,
                version: row.version,
                status: HandoffStatus.received.rawValue,
                reason: nil,
                noteSealed: nil,
                sealing: 2,
                at: row.at
            )
        )
        return .created(version, event)
    }

    // MARK: - Status changes

    func transition(_ change: StatusChange) async throws(ReceiverError) -> TransitionStep {
        try await write { db in
            guard
                var set = try Row.fetchOne(
                    db,
                    sql: "SELECT * FROM document_set WHERE hospital = ? AND set_uuid = ?",
                    arguments: [change.hospital, change.set]
                ).map(Self.set)
            else { return .notFound }
            let current = HandoffStatus(rawValue: set.status) ?? .received
            switch TransitionRule.decide(current: current, owner: set.device, to: change.status, by: change.actor) {
            case .notFound: return .notFound
            case .conflict(let reason): return .conflict(reason)
            case .unchanged: return .done(set, nil)
            case .apply: break
            }
            let event = try Self.appendEvent(
                db,
                EventRow(
                    id: 0,
                    hospital: change.hospital,
                    boardSequence: 0,
                    device: set.device,
                    sequence: 0,
                    set: change.set,
                    version: set.latestVersion,
                    status: change.status.rawValue,
                    reason: change.reason,
                    noteSealed: change.noteSealed,
                    sealing: 2,
                    at: change.at
                )
            )
            try db.execute(
                sql: """
                    UPDATE document_set SET status = ?, reason = ?, note_sealed = ?, sealing = 2, updated_at = ?
                    WHERE hospital = ? AND set_uuid = ?
                    """,
                arguments: [
                    change.status.rawValue, change.reason, change.noteSealed, change.at, change.hospital, change.set,
                ]
            )
            set.status = change.status.rawValue
            set.reason = change.reason
            set.noteSealed = change.noteSealed
            set.sealing = 2
            set.updatedAt = change.at
            return .done(set, event)
        }
    }

    /// Numbers the event from the device's and the hospital's counters (in that order, on every engine) and inserts
    /// it.
    private static func appendEvent(_ db: Database, _ event: EventRow) throws -> EventRow {
        let (sequence, board) = try nextPositions(db, device: event.device, hospital: event.hospital)
        try db.cachedStatement(
            sql: """
                INSERT INTO event (hospital, board_sequence, device, sequence, set_uuid, version, status, reason,
                    note_sealed, sealing, at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            event.hospital, board, event.device, sequence, event.set, event.version, event.status, event.reason,
            event.noteSealed, event.sealing, event.at,
        ])
        var stored = event
        stored.id = db.lastInsertedRowID
        stored.sequence = sequence
        stored.boardSequence = board
        return stored
    }

    /// The next positions in the device's stream and on the hospital's board, from their counters (the device's,
    /// then the hospital's: the same order on every engine).
    static func nextPositions(_ db: Database, device: String, hospital: String) throws -> (Int64, Int64) {
        let sequence =
            try Int64.fetchOne(
                try db.cachedStatement(
                    sql: """
                        INSERT INTO device_sequence (device, last_sequence) VALUES (?, 1)
                        ON CONFLICT(device) DO UPDATE SET last_sequence = last_sequence + 1
                        RETURNING last_sequence
                        """
                ),
                arguments: [device]
            ) ?? 1
        let board =
            try Int64.fetchOne(
                try db.cachedStatement(
                    sql: """
                        INSERT INTO tenant (code, last_board_sequence) VALUES (?, 1)
                        ON CONFLICT(code) DO UPDATE SET last_board_sequence = last_board_sequence + 1
                        RETURNING last_board_sequence
                        """
                ),
                arguments: [hospital]
            ) ?? 1
        return (sequence, board)
    }

    // MARK: - Reading

    func events(device: String, after sequence: Int64) async throws(ReceiverError) -> [EventRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM event WHERE device = ? AND sequence > ? ORDER BY sequence",
                arguments: [device, sequence]
            ).map(Self.event)
        }
    }

    func events(device: String, openOrClosedSince closedSince: Int64) async throws(ReceiverError) -> [EventRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT e.* FROM event e
                    JOIN document_set s ON s.hospital = e.hospital AND s.set_uuid = e.set_uuid
                    WHERE e.device = ? AND (s.status NOT IN ('arrived', 'withdrawn') OR s.updated_at >= ?)
                    ORDER BY e.sequence
                    """,
                arguments: [device, closedSince]
            ).map(Self.event)
        }
    }

    func boardEvents(hospital: String, after position: Int64) async throws(ReceiverError) -> [EventRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM event WHERE hospital = ? AND board_sequence > ? ORDER BY board_sequence",
                arguments: [hospital, position]
            ).map(Self.event)
        }
    }

    func events(hospital: String, set: String) async throws(ReceiverError) -> [EventRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM event WHERE hospital = ? AND set_uuid = ? ORDER BY board_sequence",
                arguments: [hospital, set]
            ).map(Self.event)
        }
    }

    func events(ids: [Int64]) async throws(ReceiverError) -> [EventRow] {
        guard !ids.isEmpty else { return [] }
        return try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM event WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ","))) ORDER BY id",
                arguments: StatementArguments(ids)
            ).map(Self.event)
        }
    }

    func openSets(hospital: String?) async throws(ReceiverError) -> [SetRow] {
        try await read { db in
            if let hospital {
                return try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM document_set WHERE hospital = ? AND status NOT IN ('arrived', 'withdrawn')
                        ORDER BY first_received_at DESC
                        """,
                    arguments: [hospital]
                ).map(Self.set)
            }
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM document_set WHERE status NOT IN ('arrived', 'withdrawn')
                    ORDER BY first_received_at DESC
                    """
            ).map(Self.set)
        }
    }

    func set(hospital: String, set: String) async throws(ReceiverError) -> SetRow? {
        try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM document_set WHERE hospital = ? AND set_uuid = ?",
                arguments: [hospital, set]
            ).map(Self.set)
        }
    }

    func hospitals(holding set: String) async throws(ReceiverError) -> [String] {
        try await read { db in
            try String.fetchAll(
                db,
                sql: "SELECT hospital FROM document_set WHERE set_uuid = ? ORDER BY updated_at DESC",
                arguments: [set]
            )
        }
    }

    func versions(hospital: String, set: String) async throws(ReceiverError) -> [StoredVersionRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM document WHERE hospital = ? AND set_uuid = ? ORDER BY version",
                arguments: [hospital, set]
            ).map(Self.version)
        }
    }

    func sealedDocument(versionIdentifier: String) async throws(ReceiverError) -> SealedDocumentRow? {
        try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM document WHERE version_identifier = ?",
                arguments: [versionIdentifier]
            ).map(Self.sealed)
        }
    }

    func sealedDocuments(hospital: String?) async throws(ReceiverError) -> [SealedDocumentRow] {
        try await read { db in
            if let hospital {
                return try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM document WHERE hospital = ? ORDER BY id",
                    arguments: [hospital]
                ).map(Self.sealed)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM document ORDER BY id").map(Self.sealed)
        }
    }

    func anchors(device: String?) async throws(ReceiverError) -> [StoredAnchor] {
        try await read { db in
            let rows: [Row] =
                if let device {
                    try Row.fetchAll(
                        db,
                        sql: "SELECT * FROM anchor WHERE device = ? ORDER BY sequence, received_at",
                        arguments: [device]
                    )
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM anchor ORDER BY device, sequence, received_at")
                }
            return rows.map { row in
                StoredAnchor(
                    device: row["device"],
                    anchor: AuditAnchor(
                        sequence: row["sequence"],
                        hash: row["hash"],
                        signedAtMilliseconds: row["signed_at_ms"],
                        signingPublicKey: row["signing_public_key"],
                        signature: row["signature"]
                    ),
                    documentSet: UUID(uuidString: row["set_uuid"]) ?? UUID(),
                    version: row["version"],
                    receivedAt: StorageTime.date(row["received_at"])
                )
            }
        }
    }

    // MARK: - Lifecycle

    func run(changed: @escaping @Sendable ([StorageNotice]) async -> Void) async throws {
        // One process writes this file: its events are published as they are written; nothing to listen for.
    }

    func checkpoint() async {
        _ = try? await database.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
    }

    func close() async throws(ReceiverError) {
        do {
            try database.close()
        } catch {
            throw .storage("cannot close the database: \(Self.describe(error))")
        }
    }

    // MARK: - Rows

    private static func event(_ row: Row) -> EventRow {
        EventRow(
            id: row["id"],
            hospital: row["hospital"],
            boardSequence: row["board_sequence"],
            device: row["device"],
            sequence: row["sequence"],
            set: row["set_uuid"],
            version: row["version"],
            status: row["status"],
            reason: row["reason"],
            noteSealed: row["note_sealed"],
            sealing: row["sealing"],
            at: row["at"]
        )
    }

    private static func set(_ row: Row) -> SetRow {
        SetRow(
            hospital: row["hospital"],
            set: row["set_uuid"],
            device: row["device"],
            status: row["status"],
            latestVersion: row["latest_version"],
            reason: row["reason"],
            noteSealed: row["note_sealed"],
            sealing: row["sealing"],
            firstReceivedAt: row["first_received_at"],
            updatedAt: row["updated_at"]
        )
    }

    private static func version(_ row: Row) -> StoredVersionRow {
        StoredVersionRow(
            hospital: row["hospital"],
            set: row["set_uuid"],
            version: row["version"],
            versionIdentifier: row["version_identifier"],
            bundleID: row["bundle_id"],
            sha256: row["sha256"],
            device: row["sender_device"],
            receivedAt: row["received_at"],
            builtAt: row["built_at"]
        )
    }

    private static func sealed(_ row: Row) -> SealedDocumentRow {
        SealedDocumentRow(version: version(row), keyID: row["key_id"], sealing: row["sealing"], sealed: row["sealed"])
    }

    private static func device(_ row: Row) -> DeviceRecord {
        DeviceRecord(
            id: row["id"],
            issuedAt: StorageTime.date(row["issued_at"]),
            revokedAt: (row["revoked_at"] as Int64?).map(StorageTime.date)
        )
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ReceiverError) -> T {
        do {
            return try await database.write(body)
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .storage("the receiver's database cannot be written: \(Self.describe(error))")
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ReceiverError) -> T {
        do {
            return try await database.read(body)
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .storage("the receiver's database cannot be read: \(Self.describe(error))")
        }
    }

    /// A database error in words that carry no data (the vault's errors carry none either).
    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return "SQLite \(error.resultCode)" }
        if let error = error as? VaultError { return error.reason }
        return String(describing: type(of: error))
    }
}
