import Crypto
public import Foundation
internal import GRDB
public import KyukyuDomain
public import KyukyuVault
public import Logging

/// The receiver's own SQLite database (WAL, `synchronous = FULL`) in its state folder.
///
/// Every document version is sealed with AES-GCM under a key derived from the device keyring (KyukyuVault's
/// 0600 key file, or its systemd credential); the plaintext columns hold only non-patient metadata: the random set
/// and version identifiers, the version number, the SHA-256, the sender device, times and statuses. Staff notes
/// are sealed too. Intake is idempotent through a UNIQUE constraint on the version identifier, so two identical
/// posts at once store one row.
public final class HospitalStore: Sendable {
    /// The database's file name in the state folder.
    public static let fileName = "hospital.sqlite"
    /// The HKDF purpose of the sealing key.
    static let purpose = "kyukyu-hospital documents"

    private let database: DatabasePool
    private let keyring: DeviceKeyring
    private let logger: Logger
    /// Gathers the documents that arrive together into one transaction (one fsync).
    private let commits: GroupCommit<IntakeRow, Result<IntakeStep, ReceiverError>>
    /// The database file.
    public let path: String

    private init(database: DatabasePool, keyring: DeviceKeyring, path: String, commitBatch: Int, logger: Logger) {
        self.commits = GroupCommit(maximumBatch: commitBatch)
        self.database = database
        self.keyring = keyring
        self.path = path
        self.logger = logger
    }

    /// Opens (creating if missing, mode 0600 in a 0700 folder) the store at `path`, sealing with `keyProvider`'s
    /// keyring (created on first start by a ``KyukyuVault/KeyFileProvider``). Blocking: call at start-up.
    ///
    /// `commitBatch` is the most documents stored in one transaction when many arrive at once (group commit);
    /// 1 stores each in its own transaction (the benchmark's comparison).
    public static func open(
        path: String,
        keyProvider: any DeviceKeyProvider,
        commitBatch: Int = 256,
        logger: Logger
    ) throws(ReceiverError) -> HospitalStore {
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try PrivateFiles.ensureDirectory(folder.isEmpty ? "." : folder)
            try PrivateFiles.touch(path)
        } catch {
            throw .storage("cannot prepare \(path): \(error)")
        }
        let keyring: DeviceKeyring
        do {
            keyring = try keyProvider.loadKeyring()
        } catch let error as VaultError {
            throw .storage("the device keyring cannot be loaded: \(error.reason)")
        } catch {
            throw .storage("the device keyring cannot be loaded")
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
            try Self.migrator.migrateForwardOnly(pool, name: "the receiver's database")
            for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                try PrivateFiles.restrict(path + suffix)
            }
            return HospitalStore(
                database: pool,
                keyring: keyring,
                path: path,
                commitBatch: commitBatch,
                logger: logger
            )
        } catch {
            throw .storage("cannot open the receiver's database \(path): \(Self.describe(error))")
        }
    }

    static var migrator: DatabaseMigrator {
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
        return migrator
    }

    // MARK: - Devices

    /// Records a device whose certificate was just issued (again: clears a revocation).
    public func registerDevice(_ id: String, at: Date = Date()) async throws(ReceiverError) {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO device (id, issued_at, revoked_at) VALUES (?, ?, NULL)
                    ON CONFLICT(id) DO UPDATE SET issued_at = excluded.issued_at, revoked_at = NULL
                    """,
                arguments: [id, Self.ms(at)]
            )
        }
    }

    /// Revokes a device: its posts and streams are refused (403) from now on.
    public func revokeDevice(_ id: String, at: Date = Date()) async throws(ReceiverError) {
        let changed = try await write { db in
            try db.execute(sql: "UPDATE device SET revoked_at = ? WHERE id = ?", arguments: [Self.ms(at), id])
            return db.changesCount
        }
        if changed == 0 { throw .notFound("no device \(id)") }
    }

    /// The device, if known.
    public func device(_ id: String) async throws(ReceiverError) -> DeviceRecord? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM device WHERE id = ?"), arguments: [id])
                .map(Self.device)
        }
    }

    /// Every known device.
    public func devices() async throws(ReceiverError) -> [DeviceRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM device ORDER BY id").map(Self.device) }
    }

    // MARK: - Intake

    /// Stores a validated version: a new row (with its `received` event and its audit anchor) the first time, a
    /// resend when the same key arrives with the same SHA-256, ``ReceiverError/Code/conflict`` when it arrives with
    /// other bytes (or another key claims a stored set and version), ``ReceiverError/Code/forbidden`` when the set
    /// belongs to another device.
    public func intake(
        _ info: ValidatedDocumentInfo,
        body: Data,
        device: String,
        at: Date
    ) async throws(ReceiverError) -> IntakeOutcome {
        let sha = Self.hex(SHA256.hash(data: body))
        let keyID = keyring.currentKeyID
        let sealed: Data
        do {
            let key = try keyring.derivedKey(purpose: Self.purpose, keyID: keyID)
            sealed = try AES.GCM.seal(
                body,
                using: key,
                authenticating: Data(("document " + info.versionIdentifier).utf8)
            )
            .combined!
        } catch {
            throw .storage("the document cannot be sealed")
        }
        let set = Self.text(info.documentSet)
        let version = StoredVersion(
            documentSet: info.documentSet,
            version: info.version,
            versionIdentifier: info.versionIdentifier,
            bundleID: info.bundleID,
            sha256: sha,
            device: device,
            receivedAt: at,
            builtAt: info.timestamp
        )
        let step = await commits.submit(
            IntakeRow(info: info, set: set, sha: sha, keyID: keyID.rawValue, sealed: sealed, device: device, at: at)
        ) { rows in await self.store(rows) }
        switch step {
        case .success(.created(let event)): return .created(version, event)
        case .success(.resent(let stored)): return .resent(stored)
        case .failure(let error): throw error
        }
    }

    /// One document to store, sealed, with its metadata.
    struct IntakeRow: Sendable {
        var info: ValidatedDocumentInfo
        var set: String
        var sha: String
        var keyID: String
        var sealed: Data
        var device: String
        var at: Date
    }

    /// What storing one document came to.
    enum IntakeStep: Sendable {
        case created(HandoffEvent)
        case resent(StoredVersion)
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
                            step = try self.store(row, db)
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

    /// One document's rows: the set, the version, its anchor and its `received` event; or the stored version, for a
    /// resend. Throws ``ReceiverError`` to refuse it.
    private func store(_ row: IntakeRow, _ db: Database) throws -> IntakeStep {
        let (info, set, device, at) = (row.info, row.set, row.device, row.at)
        if let owner = try String.fetchOne(
            try db.cachedStatement(sql: "SELECT device FROM document_set WHERE set_uuid = ?"),
            arguments: [set]
        ), owner != device {
            throw ReceiverError.forbidden("this document set was sent by another device")
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO document_set (set_uuid, device, status, latest_version, first_received_at, updated_at)
                VALUES (?, ?, 'received', ?, ?, ?)
                ON CONFLICT(set_uuid) DO NOTHING
                """
        ).execute(arguments: [set, device, info.version, Self.ms(at), Self.ms(at)])
        do {
            try db.cachedStatement(
                sql: """
                    INSERT INTO document (set_uuid, version, version_identifier, bundle_id, sha256, sender_device,
                        received_at, built_at, key_id, sealed)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(version_identifier) DO NOTHING
                    """
            ).execute(arguments: [
                set, info.version, info.versionIdentifier, info.bundleID, row.sha, device, Self.ms(at),
                Self.ms(info.timestamp), row.keyID, row.sealed,
            ])
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ReceiverError.conflict("version \(info.version) of this document set is stored under another key")
        }
        if db.changesCount == 0 {
            guard
                let stored = try Row.fetchOne(
                    try db.cachedStatement(sql: "SELECT * FROM document WHERE version_identifier = ?"),
                    arguments: [info.versionIdentifier]
                ).map(Self.version)
            else { throw ReceiverError.conflict("the key is stored but cannot be read") }
            guard stored.sha256 == row.sha, stored.device == device else {
                throw ReceiverError.conflict("this key is stored with other content (SHA-256 differs)")
            }
            return .resent(stored)
        }
        try db.cachedStatement(
            sql: """
                UPDATE document_set SET latest_version = MAX(latest_version, ?), updated_at = ?,
                    status = CASE status WHEN 'withdrawn' THEN 'received' ELSE status END
                WHERE set_uuid = ?
                """
        ).execute(arguments: [info.version, Self.ms(at), set])
        if let anchor = info.auditAnchor {
            try db.cachedStatement(
                sql: """
                    INSERT INTO anchor (version_identifier, device, sequence, hash, signed_at_ms, signing_public_key,
                        signature, set_uuid, version, received_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                info.versionIdentifier, device, anchor.sequence, anchor.hash, anchor.signedAtMilliseconds,
                anchor.signingPublicKey, anchor.signature, set, info.version, Self.ms(at),
            ])
        }
        let event = try appendEvent(
            db,
            device: device,
            set: info.documentSet,
            version: info.version,
            status: .received,
            reason: nil,
            note: nil,
            at: at
        )
        return .created(event)
    }

    // MARK: - Status changes

    /// Who changes a status.
    public enum Actor: Sendable, Hashable {
        /// Staff on the board.
        case staff
        /// The device that sends the set (withdraw).
        case device(String)
    }

    /// Moves a set to `status` and records the event. The same status again changes nothing (nil event). Refused
    /// (``ReceiverError/Code/conflict``) from a closed set, or a staff action after a divert; a device may only
    /// withdraw its own sets (``ReceiverError/Code/notFound`` otherwise).
    public func transition(
        _ documentSet: UUID,
        to status: HandoffStatus,
        reason: String?,
        note: String?,
        by actor: Actor,
        at: Date
    ) async throws(ReceiverError) -> (DocumentSetSummary, HandoffEvent?) {
        let set = Self.text(documentSet)
        enum Step { case done(DocumentSetSummary, HandoffEvent?), notFound, conflict(String) }
        let step: Step = try await write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM document_set WHERE set_uuid = ?", arguments: [set])
            else { return .notFound }
            var summary = try self.summary(row)
            if case .device(let device) = actor, device != summary.device { return .notFound }
            let current = summary.status
            if current == status && current != .diverted { return .done(summary, nil) }
            switch (actor, current, status) {
            case (_, .arrived, _):
                return .conflict("the patient has arrived: the set is closed")
            case (.staff, .withdrawn, _):
                return .conflict("the ambulance withdrew this patient")
            case (.staff, .diverted, _):
                return .conflict("this patient was diverted")
            default:
                break
            }
            let event = try self.appendEvent(
                db,
                device: summary.device,
                set: documentSet,
                version: summary.latestVersion,
                status: status,
                reason: reason,
                note: note,
                at: at
            )
            try db.execute(
                sql:
                    "UPDATE document_set SET status = ?, reason = ?, note_sealed = ?, updated_at = ? WHERE set_uuid = ?",
                arguments: [
                    status.rawValue, reason, try note.map { try self.sealNote($0, set: set) }, Self.ms(at), set,
                ]
            )
            summary.status = status
            summary.reason = reason
            summary.note = note
            summary.updatedAt = at
            return .done(summary, event)
        }
        switch step {
        case .done(let summary, let event): return (summary, event)
        case .notFound: throw .notFound("no such document set")
        case .conflict(let reason): throw .conflict(reason)
        }
    }

    private func appendEvent(
        _ db: Database,
        device: String,
        set: UUID,
        version: Int,
        status: HandoffStatus,
        reason: String?,
        note: String?,
        at: Date
    ) throws -> HandoffEvent {
        let sequence =
            try Int64.fetchOne(
                try db.cachedStatement(sql: "SELECT COALESCE(MAX(sequence), 0) + 1 FROM event WHERE device = ?"),
                arguments: [device]
            )
            ?? 1
        try db.cachedStatement(
            sql: """
                INSERT INTO event (device, sequence, set_uuid, version, status, reason, note_sealed, at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            device, sequence, Self.text(set), version, status.rawValue, reason,
            try note.map { try sealNote($0, set: Self.text(set)) }, Self.ms(at),
        ])
        return HandoffEvent(
            id: db.lastInsertedRowID,
            device: device,
            sequence: sequence,
            documentSet: set,
            version: version,
            status: status,
            reason: reason,
            note: note,
            at: Date(timeIntervalSince1970: Double(Self.ms(at)) / 1000)
        )
    }

    // MARK: - Reading

    /// The device's events after `sequence`; with `nil`, every event of its sets that are not closed, and of sets
    /// closed within `closedWithin` (so that a gateway that lost its place still learns of an arrival).
    public func events(
        device: String,
        after sequence: Int64?,
        closedWithin: TimeInterval = 24 * 3600,
        now: Date = Date()
    ) async throws(ReceiverError) -> [HandoffEvent] {
        try await read { db in
            let rows: [Row]
            if let sequence {
                rows = try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM event WHERE device = ? AND sequence > ? ORDER BY sequence",
                    arguments: [device, sequence]
                )
            } else {
                rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT e.* FROM event e JOIN document_set s ON s.set_uuid = e.set_uuid
                        WHERE e.device = ? AND (s.status NOT IN ('arrived', 'withdrawn') OR s.updated_at >= ?)
                        ORDER BY e.sequence
                        """,
                    arguments: [device, Self.ms(now.addingTimeInterval(-closedWithin))]
                )
            }
            return try rows.map { try self.event($0) }
        }
    }

    /// Every event after board id `id` (every event with `nil`: the board rebuilds from the list instead).
    public func boardEvents(after id: Int64) async throws(ReceiverError) -> [HandoffEvent] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE id > ? ORDER BY id", arguments: [id]).map {
                try self.event($0)
            }
        }
    }

    /// Every event of one set, in order (the board's timeline).
    public func events(of documentSet: UUID) async throws(ReceiverError) -> [HandoffEvent] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM event WHERE set_uuid = ? ORDER BY id",
                arguments: [Self.text(documentSet)]
            )
            .map { try self.event($0) }
        }
    }

    /// The sets that are not closed, newest first.
    public func openSets() async throws(ReceiverError) -> [DocumentSetSummary] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT * FROM document_set WHERE status NOT IN ('arrived', 'withdrawn') ORDER BY first_received_at DESC"
            ).map { try self.summary($0) }
        }
    }

    /// One set.
    public func set(_ documentSet: UUID) async throws(ReceiverError) -> DocumentSetSummary? {
        try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM document_set WHERE set_uuid = ?",
                arguments: [Self.text(documentSet)]
            )
            .map { try self.summary($0) }
        }
    }

    /// Every stored version of a set, oldest first.
    public func versions(of documentSet: UUID) async throws(ReceiverError) -> [StoredVersion] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM document WHERE set_uuid = ? ORDER BY version",
                arguments: [Self.text(documentSet)]
            ).map(Self.version)
        }
    }

    /// The decrypted bytes of one version, exactly as posted.
    public func document(versionIdentifier: String) async throws(ReceiverError) -> Data {
        let row = try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM document WHERE version_identifier = ?",
                arguments: [versionIdentifier]
            )
            .map(SealedRow.init)
        }
        guard let row else { throw .notFound("no such document version") }
        return try open(row)
    }

    /// Every stored version with its decrypted bytes, in the order they arrived (for `export`).
    public func forEachDocument(_ body: (StoredVersion, Data) throws -> Void) async throws(ReceiverError) {
        let rows = try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM document ORDER BY id").map(SealedRow.init)
        }
        for row in rows {
            let data = try open(row)
            do {
                try body(row.version, data)
            } catch let error as ReceiverError {
                throw error
            } catch {
                throw .storage("cannot export: \(error)")
            }
        }
    }

    /// The audit anchors received from `device` (every device when nil), by sequence.
    public func anchors(device: String?) async throws(ReceiverError) -> [StoredAnchor] {
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
                    receivedAt: Self.date(row["received_at"])
                )
            }
        }
    }

    /// Moves the WAL into the database and truncates it (at shutdown).
    public func checkpoint() async {
        _ = try? await database.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
    }

    /// Closes the database.
    public func close() throws(ReceiverError) {
        do {
            try database.close()
        } catch {
            throw .storage("cannot close the database: \(Self.describe(error))")
        }
    }

    // MARK: - Rows and sealing

    /// A document row with its sealed bytes, read out of the database.
    private struct SealedRow: Sendable {
        var version: StoredVersion
        var keyID: String
        var sealed: Data
        init(_ row: Row) {
            version = HospitalStore.version(row)
            keyID = row["key_id"]
            sealed = row["sealed"]
        }
    }

    private func open(_ row: SealedRow) throws(ReceiverError) -> Data {
        do {
            let key = try keyring.derivedKey(purpose: Self.purpose, keyID: DeviceKeyID(rawValue: row.keyID))
            let box = try AES.GCM.SealedBox(combined: row.sealed)
            return try AES.GCM.open(
                box,
                using: key,
                authenticating: Data(("document " + row.version.versionIdentifier).utf8)
            )
        } catch {
            logger.error("a stored document cannot be opened", metadata: ["kyukyu.error": "\(type(of: error))"])
            throw .storage("a stored document cannot be opened (another keyring, or a damaged row)")
        }
    }

    private func sealNote(_ note: String, set: String) throws -> Data {
        let key = try keyring.derivedKey(purpose: Self.purpose, keyID: keyring.currentKeyID)
        let sealed = try AES.GCM.seal(Data(note.utf8), using: key, authenticating: Data(("note " + set).utf8)).combined!
        return Data(keyring.currentKeyID.rawValue.utf8) + Data([0]) + sealed
    }

    private func openNote(_ data: Data?, set: String) throws -> String? {
        guard let data, let separator = data.firstIndex(of: 0) else { return nil }
        let keyID = DeviceKeyID(rawValue: String(decoding: data[data.startIndex..<separator], as: UTF8.self))
        let key = try keyring.derivedKey(purpose: Self.purpose, keyID: keyID)
        let box = try AES.GCM.SealedBox(combined: data[(separator + 1)...])
        return String(
            decoding: try AES.GCM.open(box, using: key, authenticating: Data(("note " + set).utf8)),
            as: UTF8.self
        )
    }

    private func event(_ row: Row) throws -> HandoffEvent {
        let set: String = row["set_uuid"]
        return HandoffEvent(
            id: row["id"],
            device: row["device"],
            sequence: row["sequence"],
            documentSet: UUID(uuidString: set) ?? UUID(),
            version: row["version"],
            status: HandoffStatus(rawValue: row["status"]) ?? .received,
            reason: row["reason"],
            note: try openNote(row["note_sealed"], set: set),
            at: Self.date(row["at"])
        )
    }

    private func summary(_ row: Row) throws -> DocumentSetSummary {
        let set: String = row["set_uuid"]
        return DocumentSetSummary(
            documentSet: UUID(uuidString: set) ?? UUID(),
            device: row["device"],
            status: HandoffStatus(rawValue: row["status"]) ?? .received,
            latestVersion: row["latest_version"],
            reason: row["reason"],
            note: try openNote(row["note_sealed"], set: set),
            firstReceivedAt: Self.date(row["first_received_at"]),
            updatedAt: Self.date(row["updated_at"])
        )
    }

    private static func version(_ row: Row) -> StoredVersion {
        StoredVersion(
            documentSet: UUID(uuidString: row["set_uuid"]) ?? UUID(),
            version: row["version"],
            versionIdentifier: row["version_identifier"],
            bundleID: row["bundle_id"],
            sha256: row["sha256"],
            device: row["sender_device"],
            receivedAt: date(row["received_at"]),
            builtAt: date(row["built_at"])
        )
    }

    private static func device(_ row: Row) -> DeviceRecord {
        DeviceRecord(
            id: row["id"],
            issuedAt: date(row["issued_at"]),
            revokedAt: (row["revoked_at"] as Int64?).map(date)
        )
    }

    static func text(_ uuid: UUID) -> String { uuid.uuidString.lowercased() }

    private static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of a digest (without `String(format:)`, which costs a formatter per byte).
    static func hex(_ digest: some Sequence<UInt8>) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ReceiverError) -> T
    {
        do {
            return try await database.write(body)
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .storage("the receiver's database cannot be written: \(Self.describe(error))")
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ReceiverError) -> T
    {
        do {
            return try await database.read(body)
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .storage("the receiver's database cannot be read: \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return "SQLite \(error.resultCode)" }
        // The vault's errors carry no patient data (the migration guard's names the unknown migrations).
        if let error = error as? VaultError { return error.reason }
        return String(describing: type(of: error))
    }
}
