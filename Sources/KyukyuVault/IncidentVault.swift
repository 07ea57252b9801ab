import Crypto
import Foundation
public import GRDB
public import Logging

/// The handoff state of an incident.
public struct HandoffState: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The state name as stored.
    public let rawValue: String
    /// Wraps a state name.
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The state name.
    public var description: String { self.rawValue }

    /// Data is being collected; nothing sent yet.
    public static let open = HandoffState(rawValue: "open")
    /// The handoff was sent to a hospital and awaits acknowledgement.
    public static let sent = HandoffState(rawValue: "sent")
    /// A purge has started: the data key is gone, rows are being removed.
    public static let purging = HandoffState(rawValue: "purging")
}

/// One decrypted record of an incident.
public struct VaultRecord: Hashable, Sendable {
    /// The incident it belongs to.
    public var incident: IncidentID
    /// Its category.
    public var kind: RecordKind
    /// Its version within (incident, kind), from 1.
    public var version: Int
    /// When it was stored.
    public var storedAt: Date
    /// The decrypted payload.
    public var payload: Data
}

/// What the vault knows about an incident without decrypting anything.
public struct IncidentSummary: Hashable, Sendable, Codable {
    /// The incident id.
    public var id: IncidentID
    /// When it was created.
    public var createdAt: Date
    /// When it will be purged at the latest.
    public var expiresAt: Date
    /// Its handoff state.
    public var handoffState: HandoffState
    /// The number of stored record versions.
    public var recordCount: Int
    /// The device wrapping key its data key is wrapped with (`nil` once shredded).
    public var deviceKeyID: DeviceKeyID?
}

/// The result of a purge or wipe.
public struct PurgeSummary: Hashable, Sendable, Codable {
    /// The incidents purged, with the reason for each.
    public var purged: [Purged]
    /// Whether the WAL was checkpointed and truncated afterwards.
    public var walTruncated: Bool

    /// Creates a summary.
    public init(purged: [Purged], walTruncated: Bool) {
        self.purged = purged
        self.walTruncated = walTruncated
    }

    /// One purged incident.
    public struct Purged: Hashable, Sendable, Codable {
        /// The incident id.
        public var incident: IncidentID
        /// Why it was purged.
        public var reason: PurgeReason

        /// Creates an entry.
        public init(incident: IncidentID, reason: PurgeReason) {
            self.incident = incident
            self.reason = reason
        }
    }

    /// The number of incidents purged.
    public var count: Int { self.purged.count }
}

/// Counts and ages only: safe to print or send anywhere.
public struct VaultStatus: Hashable, Sendable, Codable {
    /// Incidents stored (including any mid-purge).
    public var incidentCount: Int
    /// Incidents per handoff state.
    public var incidentsByState: [String: Int]
    /// Stored record versions.
    public var recordCount: Int
    /// Total ciphertext bytes stored.
    public var ciphertextBytes: Int
    /// Age of the oldest incident, in seconds.
    public var oldestIncidentAgeSeconds: Double?
    /// Seconds until the next incident reaches its maximum age.
    public var nextExpiryInSeconds: Double?
    /// The configured maximum age, in seconds.
    public var maximumAgeSeconds: Double
    /// The current device wrapping key id.
    public var currentDeviceKeyID: DeviceKeyID
    /// Data keys still wrapped with a retired device key.
    public var dataKeysPendingRewrap: Int
    /// Audit entries stored.
    public var auditEntryCount: Int
    /// The signed audit head sequence.
    public var auditHeadSequence: Int64?
    /// The device's audit signing public key (raw Ed25519, base64): pin it to verify exports elsewhere.
    public var auditSigningPublicKey: String
}

/// The outcome of a device key rotation.
public struct KeyRotationReport: Hashable, Sendable, Codable {
    /// The wrapping keys retired.
    public var retired: [DeviceKeyID]
    /// The new current wrapping key.
    public var current: DeviceKeyID
    /// The number of data keys re-wrapped.
    public var rewrapped: Int
}

/// The encrypted incident store.
///
/// Each incident has its own random AES-256 data key. The data key is stored only sealed with the
/// device wrapping key (AES-256-GCM, associated data = incident id and device key id). Each record is
/// sealed with the data key (AES-256-GCM, associated data = incident id, kind and version), so a row
/// moved to another incident, kind or version fails to open. Plaintext columns hold only random ids,
/// category names, versions, times and states.
///
/// Every write is one short transaction; every access-relevant action appends its audit entry in the
/// same transaction, so an action and its audit entry commit or vanish together.
public final class IncidentVault: Sendable {
    /// Vault settings.
    public struct Configuration: Sendable {
        /// The hard maximum age of an incident, in seconds (default 24 h).
        public var maximumAge: TimeInterval
        /// Whether the process keeps freed large buffers for reuse (glibc `mallopt`, process-wide; default
        /// on): without it every 1 MB record costs page faults on fresh memory for the ciphertext buffers,
        /// which is most of the encryption's cost.
        public var retainsLargeBuffers: Bool

        /// Creates a configuration.
        public init(maximumAge: TimeInterval = 24 * 60 * 60, retainsLargeBuffers: Bool = true) {
            self.maximumAge = maximumAge
            self.retainsLargeBuffers = retainsLargeBuffers
        }
    }

    private let writer: any DatabaseWriter
    private let keyring: LockedBox<DeviceKeyring>
    /// Where the keyring is re-read from before wrapping new data keys (never creating a key file).
    private let keyProvider: (any DeviceKeyProvider)?
    private let logger: Logger
    /// The audit trail stored in the same database.
    public let audit: AuditTrail
    /// The settings in force.
    public let configuration: Configuration

    /// Creates a vault over `database`, applying the schema migrations.
    ///
    /// Use ``VaultDatabase/openPool(path:)`` for a file (WAL) and ``VaultDatabase/makeInMemory()`` in
    /// unit tests, or ``open(stateDirectory:keyProvider:configuration:clock:logger:now:runStartUpDuties:)`` for the
    /// whole start-up sequence.
    ///
    /// - Parameter keyProvider: where `keyring` came from. When given, the vault re-reads it (under the
    ///   shared rotation lock of a key file) before wrapping each new data key, and once when a stored data
    ///   key names a wrapping key it does not hold, so that a rotation by another process is noticed.
    public init(
        database: any DatabaseWriter,
        keyring: DeviceKeyring,
        keyProvider: (any DeviceKeyProvider)? = nil,
        configuration: Configuration = Configuration(),
        clock: any AuditClock = SystemAuditClock(),
        logger: Logger
    ) throws {
        if configuration.retainsLargeBuffers, !LargeRecordAllocator.applied {
            logger.debug("allocator tuning for large records not available")
        }
        try VaultDatabase.migrate(database)
        self.writer = database
        self.keyring = LockedBox(keyring)
        if let file = keyProvider as? KeyFileProvider {
            // Re-reading must never generate a key: a key file that vanished while running is an error.
            self.keyProvider = KeyFileProvider(
                path: file.path,
                createIfMissing: false,
                credentialsDirectory: file.credentialsDirectory
            )
        } else {
            self.keyProvider = keyProvider
        }
        self.logger = logger
        self.configuration = configuration
        self.audit = AuditTrail(database: database, keyring: keyring, clock: clock, logger: logger)
    }

    /// Opens the vault in `stateDirectory`: creates it with mode 0700 (or removes group/other bits from an
    /// existing one), loads the device keyring (by default ``DeviceKeySource/auto``: the systemd credential
    /// whenever `$CREDENTIALS_DIRECTORY` is set, else the key file there, created only for a new vault),
    /// opens the WAL database (`vault.sqlite` and its `-wal`/`-shm` forced to 0600), then runs the start-up
    /// duties (``startUp(now:)``) unless `runStartUpDuties` is false (read-only tools such as audit
    /// verification). Blocking file work runs off the cooperative pool.
    public static func open(
        stateDirectory: String,
        keyProvider: (any DeviceKeyProvider)? = nil,
        configuration: Configuration = Configuration(),
        clock: any AuditClock = SystemAuditClock(),
        logger: Logger,
        now: Date = Date(),
        runStartUpDuties: Bool = true
    ) async throws -> IncidentVault {
        let databasePath = stateDirectory + "/" + VaultDatabase.fileName
        let vault = try await runBlocking { () throws -> IncidentVault in
            if try FileSecurity.ensurePrivateDirectory(stateDirectory) {
                logger.warning("state folder was accessible to others; restricted to 0700")
            }
            // A new key file is generated only for a new vault: if the database exists but the key file is
            // gone, generating a fresh key would silently orphan every incident and break the audit chain.
            let databaseExists = FileManager.default.fileExists(atPath: databasePath)
            let provider =
                try keyProvider
                ?? DeviceKeySource.auto.provider(stateDirectory: stateDirectory, createIfMissing: !databaseExists)
            let keyring = try provider.loadKeyring()
            let pool = try VaultDatabase.openPool(path: databasePath, logger: logger)
            return try IncidentVault(
                database: pool,
                keyring: keyring,
                keyProvider: provider,
                configuration: configuration,
                clock: clock,
                logger: logger
            )
        }
        if runStartUpDuties {
            try await vault.startUp(now: now)
        }
        return vault
    }

    /// Start-up duties: finish interrupted purges, purge expired incidents, re-wrap data keys under
    /// retired device keys, and always checkpoint and truncate the WAL: after a crash the WAL can still hold
    /// frames of an incident that was shredded before the crash (its wrapped key and ciphertext), whether or
    /// not this start purges anything.
    @discardableResult
    public func startUp(now: Date = Date()) async throws -> PurgeSummary {
        var summary = try await self.purgeExpired(now: now, truncatingWAL: false)
        if !self.keyring.value.retiredKeyIDs.isEmpty || self.keyProvider != nil {
            let lock = try await self.keyringLock(exclusive: false)
            defer { lock?.release() }
            try await self.reloadKeyring()
            if !self.keyring.value.retiredKeyIDs.isEmpty {
                _ = try await self.rewrapDataKeys(truncatingWAL: false)
            }
        }
        summary.walTruncated = await self.truncateWAL()
        return summary
    }

    /// The lock file of a key-file keyring (`nil` for other providers, which cannot be rotated in place).
    private var keyringLockPath: String? { (self.keyProvider as? KeyFileProvider)?.lockPath }

    private func keyringLock(exclusive: Bool, path: String? = nil) async throws -> FileLock? {
        guard let path = path ?? self.keyringLockPath else { return nil }
        return try await FileLock.acquire(path: path, exclusive: exclusive)
    }

    /// Re-reads the keyring from its provider (off the cooperative pool) and adopts it.
    private func reloadKeyring() async throws {
        guard let provider = self.keyProvider else { return }
        let fresh = try await runBlocking { try provider.loadKeyring() }
        let previous = self.keyring.value
        self.keyring.value = fresh
        if fresh.currentKeyID != previous.currentKeyID {
            self.logger.notice(
                "device keyring changed on disk; adopted",
                metadata: ["kyukyu.key.current": "\(fresh.currentKeyID)"]
            )
        }
    }

    /// Runs `body` with the keyring; if a stored data key names a wrapping key the keyring does not hold
    /// (another process rotated), re-reads the keyring once and retries.
    private func withKeyring<T>(_ body: (DeviceKeyring) async throws -> T) async throws -> T {
        do {
            return try await body(self.keyring.value)
        } catch let error as VaultError where error.code == .unknownDeviceKey && self.keyProvider != nil {
            try await self.reloadKeyring()
            return try await body(self.keyring.value)
        }
    }

    /// The current device wrapping key id.
    public var currentDeviceKeyID: DeviceKeyID { self.keyring.value.currentKeyID }

    // MARK: - Incidents and records

    /// Creates an incident with a fresh data key and returns its random id.
    public func createIncident(now: Date = Date()) async throws -> IncidentID {
        let id = IncidentID()
        // The shared rotation lock is held until the wrapped key is committed, and the keyring is re-read
        // under it: a rotation in another process either re-wraps this key (it started later and sees the
        // row) or has finished (and this wrap uses its new key) — never a wrap under a removed key.
        let lock = try await self.keyringLock(exclusive: false)
        defer { lock?.release() }
        try await self.reloadKeyring()
        let keyring = self.keyring.value
        let dataKey = randomBytes(32)
        let wrapped = try Self.wrap(dataKey: dataKey, incident: id, keyID: keyring.currentKeyID, keyring: keyring)
        let expiresAt = now.addingTimeInterval(self.configuration.maximumAge)
        try await self.writer.write { db in
            try db.execute(
                sql: "INSERT INTO incident (id, created_at, expires_at, handoff_state) VALUES (?, ?, ?, ?)",
                arguments: [
                    id.description, now.timeIntervalSince1970, expiresAt.timeIntervalSince1970,
                    HandoffState.open.rawValue,
                ]
            )
            try db.execute(
                sql: "INSERT INTO incident_key (incident_id, device_key_id, wrapped_key) VALUES (?, ?, ?)",
                arguments: [id.description, keyring.currentKeyID.rawValue, wrapped]
            )
            try self.audit.append(.incidentCreated(incident: id), in: db)
        }
        self.logger(for: id).info("incident created")
        return id
    }

    /// Stores a new version of the `kind` record of an incident and returns its version number.
    ///
    /// Also appends a `category.fetched` audit entry in the same transaction. When this returns, the
    /// record is durable (synchronous = FULL).
    @discardableResult
    public func putRecord(incident: IncidentID, kind: RecordKind, payload: Data, now: Date = Date()) async throws -> Int
    {
        let version = try await self.withKeyring { keyring in
            try await self.writer.write { db -> Int in
                let dataKey = try Self.dataKey(for: incident, in: db, keyring: keyring)
                return try self.insertRecord(
                    incident: incident,
                    kind: kind,
                    payload: payload,
                    now: now,
                    dataKey: dataKey,
                    in: db
                )
            }
        }
        self.logStored(incident: incident, kind: kind, version: version, bytes: payload.count)
        return version
    }

    /// Stores a new version of each of `records`, in order, and then reads back the latest version of each kind in
    /// `readBack`, all in one transaction: one commit (one fsync) for what would otherwise be a write per record
    /// and an audited read. Each stored record gets its `category.fetched` entry and each kind read back its
    /// `category.viewed` entry naming `viewer`, as ``putRecord(incident:kind:payload:now:)`` and
    /// ``latestRecord(incident:kind:viewer:)`` would. What is returned was decrypted from the rows just written.
    public func putRecords(
        incident: IncidentID,
        _ records: [(kind: RecordKind, payload: Data)],
        readingBack readBack: Set<RecordKind>,
        viewer: CrewID,
        now: Date = Date()
    ) async throws -> [VaultRecord] {
        let (versions, read) = try await self.withKeyring { keyring in
            try await self.writer.write { db -> ([Int], [VaultRecord]) in
                let dataKey = try Self.dataKey(for: incident, in: db, keyring: keyring)
                var versions: [Int] = []
                for record in records {
                    versions.append(
                        try self.insertRecord(
                            incident: incident,
                            kind: record.kind,
                            payload: record.payload,
                            now: now,
                            dataKey: dataKey,
                            in: db
                        )
                    )
                }
                var read: [VaultRecord] = []
                for kind in readBack.sorted(by: { $0.rawValue < $1.rawValue }) {
                    read += try self.read(
                        incident: incident,
                        kind: kind,
                        viewer: viewer,
                        latestOnly: true,
                        keyring: keyring,
                        in: db
                    )
                }
                return (versions, read)
            }
        }
        for (record, version) in zip(records, versions) {
            self.logStored(incident: incident, kind: record.kind, version: version, bytes: record.payload.count)
        }
        return read
    }

    /// Inserts the next version of `kind` with its head and its `category.fetched` audit entry; returns the version.
    private func insertRecord(
        incident: IncidentID,
        kind: RecordKind,
        payload: Data,
        now: Date,
        dataKey: UnwrappedDataKey,
        in db: Database
    ) throws -> Int {
        let version: Int
        if dataKey.bindsRecordSet {
            version =
                try Self.authenticatedRecordCount(incident: incident, kind: kind, dataKey: dataKey.key, in: db) + 1
        } else {
            version =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COALESCE(MAX(version), 0) + 1 FROM record WHERE incident_id = ? AND kind = ?",
                    arguments: [incident.description, kind.rawValue]
                ) ?? 1
        }
        let sealed = try Self.seal(payload, dataKey: dataKey.key, incident: incident, kind: kind, version: version)
        try db.execute(
            sql: "INSERT INTO record (incident_id, kind, version, stored_at, sealed) VALUES (?, ?, ?, ?, ?)",
            arguments: [incident.description, kind.rawValue, version, now.timeIntervalSince1970, sealed]
        )
        if dataKey.bindsRecordSet {
            try db.execute(
                sql: """
                    INSERT INTO record_head (incident_id, kind, version, tag) VALUES (?, ?, ?, ?)
                    ON CONFLICT(incident_id, kind) DO UPDATE SET version = excluded.version, tag = excluded.tag
                    """,
                arguments: [
                    incident.description, kind.rawValue, version,
                    try Self.recordHeadTag(dataKey: dataKey.key, incident: incident, kind: kind, version: version),
                ]
            )
        }
        try self.audit.append(.categoryFetched(incident: incident, category: kind, version: version), in: db)
        return version
    }

    private func logStored(incident: IncidentID, kind: RecordKind, version: Int, bytes: Int) {
        var logger = self.logger(for: incident)
        logger[metadataKey: "kyukyu.kind"] = "\(kind)"
        logger[metadataKey: "kyukyu.version"] = "\(version)"
        logger[metadataKey: "kyukyu.bytes"] = "\(bytes)"
        logger.debug("record stored")
    }

    /// Decrypts every record version of an incident, ordered by kind and version, and appends a
    /// `category.viewed` audit entry for each kind, naming `viewer`.
    public func records(incident: IncidentID, viewer: CrewID) async throws -> [VaultRecord] {
        try await self.read(incident: incident, kind: nil, viewer: viewer, latestOnly: false)
    }

    /// Decrypts the latest version of each kind of an incident (audited like ``records(incident:viewer:)``).
    public func latestRecords(incident: IncidentID, viewer: CrewID) async throws -> [VaultRecord] {
        try await self.read(incident: incident, kind: nil, viewer: viewer, latestOnly: true)
    }

    /// Decrypts the latest version of one kind, or returns `nil` if none is stored (audited).
    public func latestRecord(incident: IncidentID, kind: RecordKind, viewer: CrewID) async throws -> VaultRecord? {
        try await self.read(incident: incident, kind: kind, viewer: viewer, latestOnly: true).first
    }

    private func read(incident: IncidentID, kind: RecordKind?, viewer: CrewID, latestOnly: Bool) async throws
        -> [VaultRecord]
    {
        // A write transaction: the read and its audit entries are one atomic step.
        try await self.withKeyring { keyring in
            try await self.writer.write { db in
                try self.read(
                    incident: incident,
                    kind: kind,
                    viewer: viewer,
                    latestOnly: latestOnly,
                    keyring: keyring,
                    in: db
                )
            }
        }
    }

    private func read(
        incident: IncidentID,
        kind: RecordKind?,
        viewer: CrewID,
        latestOnly: Bool,
        keyring: DeviceKeyring,
        in db: Database
    ) throws -> [VaultRecord] {
        let dataKey = try Self.dataKey(for: incident, in: db, keyring: keyring)
        var sql = "SELECT kind, version, stored_at, sealed FROM record WHERE incident_id = ?"
        var arguments: StatementArguments = [incident.description]
        if let kind {
            sql += " AND kind = ?"
            arguments += [kind.rawValue]
        }
        if dataKey.bindsRecordSet {
            if latestOnly {
                sql += " AND version = (SELECT h.version FROM record_head h WHERE h.incident_id = record.incident_id"
                sql += " AND h.kind = record.kind)"
            }
        } else if latestOnly {
            sql += " AND version = (SELECT MAX(version) FROM record r2 WHERE r2.incident_id = record.incident_id"
            sql += " AND r2.kind = record.kind)"
        }
        sql += " ORDER BY kind, version"
        var records: [VaultRecord] = []
        for row in try Row.fetchAll(db, sql: sql, arguments: arguments) {
            let kindText: String = row["kind"]
            guard let rowKind = RecordKind(kindText) else {
                throw VaultError.authenticationFailed(reason: "a stored record has a malformed kind")
            }
            let version: Int = row["version"]
            let payload = try Self.open(
                sealed: row["sealed"],
                dataKey: dataKey.key,
                incident: incident,
                kind: rowKind,
                version: version
            )
            records.append(
                VaultRecord(
                    incident: incident,
                    kind: rowKind,
                    version: version,
                    storedAt: Date(timeIntervalSince1970: row["stored_at"]),
                    payload: payload
                )
            )
        }
        if dataKey.bindsRecordSet {
            // The set of versions must be exactly 1…n, n being the authenticated count of the kind: a deleted
            // newest version (or any deleted version, or a deleted count) is an integrity error, never a
            // silent fallback to an older version. (Checked after decryption, so a row moved to another
            // incident, kind or version still reports as an authentication failure.)
            try Self.checkRecordSet(incident: incident, kind: kind, dataKey: dataKey.key, in: db)
        }
        var seen = Set<RecordKind>()
        for record in records where seen.insert(record.kind).inserted {
            try self.audit.append(.categoryViewed(incident: incident, category: record.kind, by: viewer), in: db)
        }
        return records
    }

    /// Metadata of every stored incident, oldest first. Decrypts nothing.
    public func incidents() async throws -> [IncidentSummary] {
        try await self.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT i.id, i.created_at, i.expires_at, i.handoff_state, k.device_key_id,
                        (SELECT count(*) FROM record r WHERE r.incident_id = i.id) AS records
                    FROM incident i LEFT JOIN incident_key k ON k.incident_id = i.id
                    ORDER BY i.created_at
                    """
            ).compactMap { row in
                guard let id = IncidentID(row["id"] as String) else { return nil }
                let keyID: String? = row["device_key_id"]
                return IncidentSummary(
                    id: id,
                    createdAt: Date(timeIntervalSince1970: row["created_at"]),
                    expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
                    handoffState: HandoffState(rawValue: row["handoff_state"]),
                    recordCount: row["records"],
                    deviceKeyID: keyID.map(DeviceKeyID.init(rawValue:))
                )
            }
        }
    }

    // MARK: - Handoff

    /// Records that the handoff was sent to `destination` by `crew`.
    public func markHandoffSent(
        incident: IncidentID,
        destination: FacilityCode,
        by crew: CrewID,
        now: Date = Date()
    ) async throws {
        try await self.writer.write { db in
            try db.execute(
                sql:
                    "UPDATE incident SET handoff_state = ?, handoff_changed_at = ? WHERE id = ? AND handoff_state != ?",
                arguments: [
                    HandoffState.sent.rawValue, now.timeIntervalSince1970, incident.description,
                    HandoffState.purging.rawValue,
                ]
            )
            guard db.changesCount == 1 else {
                throw VaultError.incidentNotFound(reason: "incident \(incident) is not stored")
            }
            try self.audit.append(.handoffSent(incident: incident, destination: destination, by: crew), in: db)
        }
        self.logger(for: incident).info("handoff sent")
    }

    /// Records the hospital's acknowledgement, then crypto-shreds the incident.
    public func acknowledgeHandoff(incident: IncidentID) async throws {
        try await self.writer.write { db in
            guard
                try Bool.fetchOne(db, sql: "SELECT 1 FROM incident WHERE id = ?", arguments: [incident.description])
                    != nil
            else {
                throw VaultError.incidentNotFound(reason: "incident \(incident) is not stored")
            }
            try self.audit.append(.handoffAcknowledged(incident: incident), in: db)
        }
        self.logger(for: incident).info("handoff acknowledged")
        try await self.shred(incident: incident, reason: .acknowledged)
    }

    // MARK: - Lifecycle

    /// Crypto-shreds an incident: first destroys its wrapped data key (with the audit entry, in one
    /// transaction: from then on nothing of it can be decrypted), then deletes its records, then the
    /// incident row, each in a short transaction; finally checkpoints and truncates the WAL.
    ///
    /// - Returns: `false` if no such incident is stored.
    @discardableResult
    public func shred(incident: IncidentID, reason: PurgeReason = .manual) async throws -> Bool {
        let done = try await self.shredWithoutCheckpoint(incident: incident, reason: reason)
        if done { _ = await self.truncateWAL() }
        return done
    }

    func shredWithoutCheckpoint(incident: IncidentID, reason: PurgeReason) async throws -> Bool {
        let found = try await self.writer.write { db -> Bool in
            let exists =
                try Bool.fetchOne(db, sql: "SELECT 1 FROM incident WHERE id = ?", arguments: [incident.description])
                != nil
            guard exists else { return false }
            try db.execute(sql: "DELETE FROM incident_key WHERE incident_id = ?", arguments: [incident.description])
            try db.execute(
                sql: "UPDATE incident SET handoff_state = ? WHERE id = ?",
                arguments: [HandoffState.purging.rawValue, incident.description]
            )
            try self.audit.append(.incidentPurged(incident: incident, reason: reason), in: db)
            return true
        }
        guard found else { return false }
        try await self.deleteRemnants(of: incident)
        var logger = self.logger(for: incident)
        logger[metadataKey: "kyukyu.purge.reason"] = "\(reason)"
        logger.notice("incident crypto-shredded")
        return true
    }

    private func deleteRemnants(of incident: IncidentID) async throws {
        try await self.writer.write { db in
            try db.execute(sql: "DELETE FROM record WHERE incident_id = ?", arguments: [incident.description])
            try db.execute(sql: "DELETE FROM record_head WHERE incident_id = ?", arguments: [incident.description])
        }
        try await self.writer.write { db in
            try db.execute(sql: "DELETE FROM incident WHERE id = ?", arguments: [incident.description])
        }
    }

    /// Purges every incident past its maximum age (by its stored expiry or by the configured maximum
    /// age, whichever is sooner) and finishes purges that were interrupted (data key already gone).
    public func purgeExpired(now: Date = Date()) async throws -> PurgeSummary {
        try await self.purgeExpired(now: now, truncatingWAL: true)
    }

    private func purgeExpired(now: Date, truncatingWAL: Bool) async throws -> PurgeSummary {
        let cutoff = now.addingTimeInterval(-self.configuration.maximumAge).timeIntervalSince1970
        let (expired, interrupted) = try await self.writer.read { db in
            let expired = try String.fetchAll(
                db,
                sql: """
                    SELECT i.id FROM incident i JOIN incident_key k ON k.incident_id = i.id
                    WHERE i.expires_at <= ? OR i.created_at <= ? ORDER BY i.created_at
                    """,
                arguments: [now.timeIntervalSince1970, cutoff]
            )
            let interrupted = try String.fetchAll(
                db,
                sql: "SELECT id FROM incident WHERE id NOT IN (SELECT incident_id FROM incident_key)"
            )
            return (expired, interrupted)
        }
        var purged: [PurgeSummary.Purged] = []
        for text in interrupted {
            guard let id = IncidentID(text) else { continue }
            try await self.deleteRemnants(of: id)
            purged.append(.init(incident: id, reason: .interruptedPurge))
        }
        for text in expired {
            guard let id = IncidentID(text) else { continue }
            if try await self.shredWithoutCheckpoint(incident: id, reason: .expired) {
                purged.append(.init(incident: id, reason: .expired))
            }
        }
        var walTruncated = false
        if !purged.isEmpty {
            if truncatingWAL { walTruncated = await self.truncateWAL() }
            self.logger.notice("purge finished", metadata: ["kyukyu.purge.count": "\(purged.count)"])
        }
        return PurgeSummary(purged: purged, walTruncated: walTruncated)
    }

    /// Purges every incident now: all data keys first (one transaction, with the audit entry), then
    /// all records, then all incident rows; then truncates the WAL. The audit trail is kept.
    public func wipeAll(actor: String = "operator") async throws -> PurgeSummary {
        let ids = try await self.writer.write { db -> [String] in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM incident ORDER BY created_at")
            try db.execute(sql: "DELETE FROM incident_key")
            try db.execute(sql: "UPDATE incident SET handoff_state = ?", arguments: [HandoffState.purging.rawValue])
            let safeActor = isShortToken(actor) ? actor : "operator"
            try self.audit.append(.vaultWiped(incidents: ids.count, actor: safeActor), in: db)
            return ids
        }
        try await self.writer.write { db in try db.execute(sql: "DELETE FROM record; DELETE FROM record_head") }
        try await self.writer.write { db in try db.execute(sql: "DELETE FROM incident") }
        let walTruncated = await self.truncateWAL()
        self.logger.notice("vault wiped", metadata: ["kyukyu.purge.count": "\(ids.count)"])
        return PurgeSummary(
            purged: ids.compactMap { IncidentID($0) }.map { .init(incident: $0, reason: .manual) },
            walTruncated: walTruncated
        )
    }

    /// Checkpoints the WAL into the database and truncates it to zero bytes, so deleted pages do not
    /// linger in the WAL file. Returns `false` (and logs) if readers prevented it.
    @discardableResult
    public func truncateWAL() async -> Bool {
        do {
            try await self.writer.writeWithoutTransaction { db in
                _ = try db.checkpoint(.truncate)
            }
            return true
        } catch {
            self.logger.warning("WAL checkpoint failed", metadata: ["kyukyu.error": "\(error)"])
            return false
        }
    }

    /// Counts and ages only.
    public func status(now: Date = Date()) async throws -> VaultStatus {
        let keyring = self.keyring.value
        let maximumAge = self.configuration.maximumAge
        return try await self.writer.read { db in
            var byState: [String: Int] = [:]
            for row in try Row.fetchAll(
                db,
                sql: "SELECT handoff_state, count(*) AS n FROM incident GROUP BY handoff_state"
            ) {
                byState[row["handoff_state"]] = row["n"]
            }
            let oldest = try Double.fetchOne(db, sql: "SELECT MIN(created_at) FROM incident")
            let nextExpiry = try Double.fetchOne(
                db,
                sql: "SELECT MIN(MIN(expires_at), MIN(created_at) + ?) FROM incident",
                arguments: [maximumAge]
            )
            let pending =
                try Int.fetchOne(
                    db,
                    sql: "SELECT count(*) FROM incident_key WHERE device_key_id != ?",
                    arguments: [keyring.currentKeyID.rawValue]
                ) ?? 0
            let head = try AuditTrail.fetchHead(db)
            return VaultStatus(
                incidentCount: byState.values.reduce(0, +),
                incidentsByState: byState,
                recordCount: try Int.fetchOne(db, sql: "SELECT count(*) FROM record") ?? 0,
                ciphertextBytes: try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(length(sealed)), 0) FROM record") ?? 0,
                oldestIncidentAgeSeconds: oldest.map { now.timeIntervalSince1970 - $0 },
                nextExpiryInSeconds: nextExpiry.map { $0 - now.timeIntervalSince1970 },
                maximumAgeSeconds: maximumAge,
                currentDeviceKeyID: keyring.currentKeyID,
                dataKeysPendingRewrap: pending,
                auditEntryCount: try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_entry") ?? 0,
                auditHeadSequence: head?.sequence,
                auditSigningPublicKey: keyring.signingPublicKey.base64EncodedString()
            )
        }
    }

    // MARK: - Key rotation

    /// Switches to `keyring` (which must still hold every wrapping key in use) without re-wrapping.
    public func adoptKeyring(_ keyring: DeviceKeyring) {
        self.keyring.value = keyring
    }

    /// Re-wraps every data key not under the current device key, one short transaction each.
    /// The records are not touched. Returns the number re-wrapped.
    public func rewrapDataKeys() async throws -> Int {
        try await self.rewrapDataKeys(truncatingWAL: true)
    }

    private func rewrapDataKeys(truncatingWAL: Bool) async throws -> Int {
        let keyring = self.keyring.value
        let pending = try await self.writer.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT incident_id FROM incident_key WHERE device_key_id != ?",
                arguments: [keyring.currentKeyID.rawValue]
            )
        }
        var count = 0
        for text in pending {
            guard let incident = IncidentID(text) else { continue }
            let done = try await self.writer.write { db -> Bool in
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: "SELECT device_key_id, wrapped_key FROM incident_key WHERE incident_id = ?",
                        arguments: [text]
                    )
                else { return false }
                let oldKeyID = DeviceKeyID(rawValue: row["device_key_id"])
                guard oldKeyID != keyring.currentKeyID else { return false }
                let dataKey = try Self.unwrap(row["wrapped_key"], incident: incident, keyID: oldKeyID, keyring: keyring)
                // The format (whether the key binds the record set) is kept as it was.
                let rewrapped = try Self.wrap(
                    dataKey: dataKey.bytes,
                    incident: incident,
                    keyID: keyring.currentKeyID,
                    keyring: keyring,
                    bindsRecordSet: dataKey.bindsRecordSet
                )
                try db.execute(
                    sql: "UPDATE incident_key SET device_key_id = ?, wrapped_key = ? WHERE incident_id = ?",
                    arguments: [keyring.currentKeyID.rawValue, rewrapped, text]
                )
                return true
            }
            if done { count += 1 }
        }
        if count > 0, truncatingWAL {
            _ = await self.truncateWAL()
        }
        return count
    }

    /// Rotates the device wrapping key held by `provider`: stores a keyring with a new current key
    /// (old keys retired but kept), re-wraps every data key, then stores the keyring without the retired
    /// keys and records the rotation in the audit. Each step is crash-safe: after a crash, the next
    /// ``startUp(now:)`` finishes re-wrapping with the keyring that was stored.
    ///
    /// For a ``KeyFileProvider`` the whole rotation holds an exclusive `flock` on its ``KeyFileProvider/lockPath``;
    /// every vault wrapping a new data key holds the same lock shared and re-reads the key file under it, so a
    /// second process on the same state folder never wraps under a key this rotation removes.
    public func rotateDeviceKey(provider: any WritableDeviceKeyProvider) async throws -> KeyRotationReport {
        let lock = try await self.keyringLock(exclusive: true, path: (provider as? KeyFileProvider)?.lockPath)
        defer { lock?.release() }
        let stored = try await runBlocking { try provider.loadKeyring() }
        let rotated = stored.addingWrappingKey()
        try await runBlocking { try provider.storeKeyring(rotated) }
        self.adoptKeyring(rotated)
        let count = try await self.rewrapDataKeys()
        let remaining = try await self.status().dataKeysPendingRewrap
        guard remaining == 0 else {
            throw VaultError.invalidState(reason: "\(remaining) data keys still use a retired device key")
        }
        let retired = rotated.retiredKeyIDs
        let final = rotated.removingRetiredKeys()
        try await runBlocking { try provider.storeKeyring(final) }
        self.adoptKeyring(final)
        try await self.audit.append(.keyRotated(from: retired, to: final.currentKeyID, rewrapped: count))
        self.logger.notice(
            "device key rotated",
            metadata: ["kyukyu.key.current": "\(final.currentKeyID)", "kyukyu.key.rewrapped": "\(count)"]
        )
        return KeyRotationReport(retired: retired, current: final.currentKeyID, rewrapped: count)
    }

    // MARK: - Crypto

    private func logger(for incident: IncidentID) -> Logger {
        var logger = self.logger
        logger[metadataKey: "kyukyu.incident"] = "\(incident)"
        return logger
    }

    /// A data key, and whether its incident keeps an authenticated record count per kind.
    ///
    /// Incidents created before record heads existed have data keys wrapped under the `v1` associated data;
    /// they are read as before (they expire within the maximum age). Every newer incident's key is wrapped
    /// under `v2`, which only the device key can produce, so an attacker cannot turn a new incident into an
    /// old one to drop its record heads.
    struct UnwrappedDataKey {
        var key: SymmetricKey
        var bindsRecordSet: Bool

        /// The raw key, for re-wrapping.
        var bytes: Data { self.key.withUnsafeBytes { Data($0) } }
    }

    static func dekAssociatedData(incident: IncidentID, keyID: DeviceKeyID, bindsRecordSet: Bool = true) -> Data {
        Data("kyukyu.vault.dek.\(bindsRecordSet ? "v2" : "v1")\0\(incident)\0\(keyID.rawValue)".utf8)
    }

    /// Seals and opens `payload` as a record of a fresh random data key, once each, and returns the two
    /// durations: the encryption's own cost, without I/O (for the benchmark).
    @_spi(Benchmarks)
    public static func measureRecordCrypto(payload: Data) throws -> (seal: Duration, open: Duration) {
        let key = SymmetricKey(size: .bits256)
        let incident = IncidentID()
        let clock = ContinuousClock()
        let start = clock.now
        let sealed = try Self.seal(payload, dataKey: key, incident: incident, kind: .medications, version: 1)
        let sealedAt = clock.now
        let opened = try Self.open(sealed: sealed, dataKey: key, incident: incident, kind: .medications, version: 1)
        let openedAt = clock.now
        guard opened.count == payload.count else {
            throw VaultError.authenticationFailed(reason: "benchmark round trip changed the length")
        }
        return (sealedAt - start, openedAt - sealedAt)
    }

    static func recordAssociatedData(incident: IncidentID, kind: RecordKind, version: Int) -> Data {
        var data = Data("kyukyu.vault.record.v1\0\(incident)\0\(kind.rawValue)\0".utf8)
        withUnsafeBytes(of: UInt64(version).bigEndian) { data.append(contentsOf: $0) }
        return data
    }

    static func recordHeadAssociatedData(incident: IncidentID, kind: RecordKind, version: Int) -> Data {
        var data = Data("kyukyu.vault.record-head.v1\0\(incident)\0\(kind.rawValue)\0".utf8)
        withUnsafeBytes(of: UInt64(version).bigEndian) { data.append(contentsOf: $0) }
        return data
    }

    /// The tag of a record head: AES-GCM over an empty message under the data key, the associated data
    /// binding incident, kind and the number of versions. Only a holder of the data key can make one.
    static func recordHeadTag(dataKey: SymmetricKey, incident: IncidentID, kind: RecordKind, version: Int) throws
        -> Data
    {
        let box = try AES.GCM.seal(
            Data(),
            using: dataKey,
            authenticating: recordHeadAssociatedData(incident: incident, kind: kind, version: version)
        )
        return box.combined!
    }

    static func headIsAuthentic(tag: Data, dataKey: SymmetricKey, incident: IncidentID, kind: RecordKind, version: Int)
        -> Bool
    {
        guard let box = try? AES.GCM.SealedBox(combined: tag) else { return false }
        let aad = recordHeadAssociatedData(incident: incident, kind: kind, version: version)
        return (try? AES.GCM.open(box, using: dataKey, authenticating: aad)) != nil
    }

    /// The authenticated number of versions of `kind` (0 if none); the newest stored version must be it.
    static func authenticatedRecordCount(incident: IncidentID, kind: RecordKind, dataKey: SymmetricKey, in db: Database)
        throws -> Int
    {
        let head = try Row.fetchOne(
            db,
            sql: "SELECT version, tag FROM record_head WHERE incident_id = ? AND kind = ?",
            arguments: [incident.description, kind.rawValue]
        )
        let count: Int = head?["version"] ?? 0
        if let head,
            !headIsAuthentic(tag: head["tag"], dataKey: dataKey, incident: incident, kind: kind, version: count)
        {
            throw VaultError.integrityViolation(
                reason: "the version count of record \(kind) of incident \(incident) does not authenticate"
            )
        }
        let newest =
            try Int.fetchOne(
                db,
                sql: "SELECT COALESCE(MAX(version), 0) FROM record WHERE incident_id = ? AND kind = ?",
                arguments: [incident.description, kind.rawValue]
            ) ?? 0
        guard newest == count else {
            throw VaultError.integrityViolation(
                reason:
                    "record \(kind) of incident \(incident): newest stored version is v\(newest), the authenticated count is \(count)"
            )
        }
        return count
    }

    /// Checks that, for each kind (or for `kind`), the stored versions are exactly 1…n with n the
    /// authenticated count: a deleted or rolled-back version fails with ``VaultError/Code/integrityViolation``.
    static func checkRecordSet(incident: IncidentID, kind: RecordKind?, dataKey: SymmetricKey, in db: Database) throws {
        var headSQL = "SELECT kind, version, tag FROM record_head WHERE incident_id = ?"
        var versionSQL =
            "SELECT kind, count(*) AS n, MIN(version) AS low, MAX(version) AS high FROM record WHERE incident_id = ?"
        var arguments: StatementArguments = [incident.description]
        if let kind {
            headSQL += " AND kind = ?"
            versionSQL += " AND kind = ?"
            arguments += [kind.rawValue]
        }
        versionSQL += " GROUP BY kind"
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: headSQL, arguments: arguments) {
            let kindText: String = row["kind"]
            let version: Int = row["version"]
            guard let rowKind = RecordKind(kindText),
                headIsAuthentic(tag: row["tag"], dataKey: dataKey, incident: incident, kind: rowKind, version: version)
            else {
                throw VaultError.integrityViolation(
                    reason: "a version count of incident \(incident) does not authenticate"
                )
            }
            counts[kindText] = version
        }
        var stored: [String: (n: Int, low: Int, high: Int)] = [:]
        for row in try Row.fetchAll(db, sql: versionSQL, arguments: arguments) {
            stored[row["kind"]] = (row["n"], row["low"], row["high"])
        }
        for kindText in Set(counts.keys).union(stored.keys).sorted() {
            let expected = counts[kindText] ?? 0
            let found = stored[kindText] ?? (0, 0, 0)
            let complete =
                expected == 0 ? found.n == 0 : (found.n == expected && found.low == 1 && found.high == expected)
            guard complete else {
                throw VaultError.integrityViolation(
                    reason: "record \(kindText) of incident \(incident): \(found.n) stored version(s) up to "
                        + "v\(found.high), the authenticated count is \(expected); a version was deleted or rolled back"
                )
            }
        }
    }

    static func wrap(
        dataKey: Data,
        incident: IncidentID,
        keyID: DeviceKeyID,
        keyring: DeviceKeyring,
        bindsRecordSet: Bool = true
    ) throws -> Data {
        let box = try AES.GCM.seal(
            dataKey,
            using: try keyring.wrappingKey(keyID),
            authenticating: dekAssociatedData(incident: incident, keyID: keyID, bindsRecordSet: bindsRecordSet)
        )
        return box.combined!
    }

    static func unwrap(_ wrapped: Data, incident: IncidentID, keyID: DeviceKeyID, keyring: DeviceKeyring) throws
        -> UnwrappedDataKey
    {
        let key = try keyring.wrappingKey(keyID)
        guard let box = try? AES.GCM.SealedBox(combined: wrapped) else {
            throw VaultError.authenticationFailed(reason: "the data key of incident \(incident) does not authenticate")
        }
        for bindsRecordSet in [true, false] {
            let aad = dekAssociatedData(incident: incident, keyID: keyID, bindsRecordSet: bindsRecordSet)
            if let bytes = try? AES.GCM.open(box, using: key, authenticating: aad) {
                return UnwrappedDataKey(key: SymmetricKey(data: bytes), bindsRecordSet: bindsRecordSet)
            }
        }
        throw VaultError.authenticationFailed(reason: "the data key of incident \(incident) does not authenticate")
    }

    static func dataKey(for incident: IncidentID, in db: Database, keyring: DeviceKeyring) throws -> UnwrappedDataKey {
        guard
            let row = try Row.fetchOne(
                db,
                sql: "SELECT device_key_id, wrapped_key FROM incident_key WHERE incident_id = ?",
                arguments: [incident.description]
            )
        else {
            throw VaultError.incidentNotFound(reason: "incident \(incident) is not stored or was shredded")
        }
        return try unwrap(
            row["wrapped_key"],
            incident: incident,
            keyID: DeviceKeyID(rawValue: row["device_key_id"]),
            keyring: keyring
        )
    }

    /// Seals a record: `nonce ‖ ciphertext ‖ tag`.
    static func seal(_ payload: Data, dataKey: SymmetricKey, incident: IncidentID, kind: RecordKind, version: Int)
        throws
        -> Data
    {
        try AES.GCM.seal(
            payload,
            using: dataKey,
            authenticating: recordAssociatedData(incident: incident, kind: kind, version: version)
        ).combined!
    }

    static func open(sealed: Data, dataKey: SymmetricKey, incident: IncidentID, kind: RecordKind, version: Int) throws
        -> Data
    {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return try AES.GCM.open(
                box,
                using: dataKey,
                authenticating: recordAssociatedData(incident: incident, kind: kind, version: version)
            )
        } catch {
            throw VaultError.authenticationFailed(
                reason: "record \(kind) v\(version) of incident \(incident) does not authenticate"
            )
        }
    }
}

/// Enforces the maximum age: purges expired incidents now and then every `interval` until cancelled.
public struct VaultPurgeService: Sendable {
    private let vault: IncidentVault
    private let interval: Duration
    private let logger: Logger

    /// A purge loop over `vault`, running every `interval` (default one minute).
    public init(vault: IncidentVault, interval: Duration = .seconds(60), logger: Logger) {
        self.vault = vault
        self.interval = interval
        self.logger = logger
    }

    /// Runs until the task is cancelled. A failed pass is logged and retried at the next interval.
    public func run() async {
        while !Task.isCancelled {
            do {
                _ = try await self.vault.purgeExpired(now: Date())
            } catch is CancellationError {
                return
            } catch {
                self.logger.error("purge pass failed", metadata: ["kyukyu.error": "\(error)"])
            }
            do {
                try await Task.sleep(for: self.interval)
            } catch {
                return
            }
        }
    }
}
