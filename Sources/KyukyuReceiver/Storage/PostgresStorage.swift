public import Foundation
import KyukyuDomain
import Logging
import NIOSSL
import PostgresNIO

/// Where a region's PostgreSQL is, and who the hub is there.
public struct PostgresSettings: Sendable, Hashable, CustomStringConvertible {
    /// The server's host name or address (TCP), or nil with ``socketPath``.
    public var host: String?
    /// The TCP port.
    public var port: Int
    /// A Unix socket's path instead of TCP.
    public var socketPath: String?
    /// The database.
    public var database: String
    /// The role.
    public var user: String
    /// The role's password (from a file or credential, never from the command line).
    public var password: String?
    /// TLS to the server: required (checked against ``caFile`` or the system's roots) unless false (loopback, or the
    /// Unix socket).
    public var tls: Bool
    /// The CA that signed the server's certificate (PEM), when ``tls``.
    public var caFile: String?
    /// The most connections this instance opens.
    public var maximumConnections: Int

    /// Settings; `password` is given apart from the URL.
    public init(
        host: String? = "127.0.0.1",
        port: Int = 5432,
        socketPath: String? = nil,
        database: String,
        user: String,
        password: String?,
        tls: Bool = false,
        caFile: String? = nil,
        maximumConnections: Int = 20
    ) {
        self.host = host
        self.port = port
        self.socketPath = socketPath
        self.database = database
        self.user = user
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.maximumConnections = maximumConnections
    }

    /// Reads `postgresql://user[:password]@host[:port]/database` (a password in the URL is taken, but the
    /// configuration keeps it in a file instead); nil when it is not such a URL.
    public init?(url: String, password: String? = nil) {
        guard let components = URLComponents(string: url),
            ["postgresql", "postgres"].contains(components.scheme?.lowercased() ?? ""),
            let host = components.host, !host.isEmpty,
            let user = components.user, !user.isEmpty,
            components.path.count > 1
        else { return nil }
        let database = String(components.path.dropFirst())
        guard !database.contains("/") else { return nil }
        self.init(
            host: host,
            port: components.port ?? 5432,
            database: database,
            user: user,
            password: password ?? components.password
        )
    }

    /// `postgresql://user@host:port/database`, without the password.
    public var description: String {
        if let socketPath { return "postgresql://\(user)@[\(socketPath)]/\(database)" }
        return "postgresql://\(user)@\(host ?? "?"):\(port)/\(database)"
    }
}

/// The PostgreSQL engine (postgres-nio): a region's hub, where many stateless instances share one database.
///
/// - Positions come from counter rows locked in the writing transaction (the device's, then the hospital's: the same
///   order everywhere, so two transactions never wait on each other in a cycle), so they commit in order.
/// - Every event's transaction ends with `NOTIFY kyukyu_events, '<id>'`, delivered at commit; every instance
///   `LISTEN`s on one connection and hands the ids to its streams. After a lost listening connection, the events
///   committed meanwhile are read back from the last id seen.
/// - Migrations run in one transaction under an advisory lock, so that instances started together migrate once.
final class PostgresStorage: HospitalStorage {
    let engine = "postgresql"
    /// The notification channel of new events.
    static let eventsChannel = "kyukyu_events"
    /// The advisory lock of the migrations ("kyukyu" in ASCII).
    static let migrationLock: Int64 = 0x6B79_756B_7975

    let client: PostgresClient
    private let runner: Task<Void, Never>
    let logger: Logger

    private init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
        // The pool runs from open to close, so the store can be used at once (commands, tests) as in service.
        self.runner = Task { await client.run() }
    }

    /// Connects and migrates.
    static func open(_ settings: PostgresSettings, logger: Logger) async throws(ReceiverError) -> PostgresStorage {
        var configuration: PostgresClient.Configuration
        if let socketPath = settings.socketPath {
            configuration = .init(
                unixSocketPath: socketPath,
                username: settings.user,
                password: settings.password,
                database: settings.database
            )
        } else {
            var tls: PostgresClient.Configuration.TLS = .disable
            if settings.tls {
                var client = TLSConfiguration.makeClientConfiguration()
                if let caFile = settings.caFile {
                    do {
                        client.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                    } catch {
                        throw .startUp("the PostgreSQL CA file \(caFile) cannot be read")
                    }
                }
                tls = .require(client)
            }
            configuration = .init(
                host: settings.host ?? "127.0.0.1",
                port: settings.port,
                username: settings.user,
                password: settings.password,
                database: settings.database,
                tls: tls
            )
        }
        configuration.options.maximumConnections = max(2, settings.maximumConnections)
        // One connection listens for the other instances; the others answer queries without a new connection first.
        configuration.options.minimumConnections = 2
        configuration.options.connectionIdleTimeout = .seconds(60)
        let storage = PostgresStorage(
            client: PostgresClient(configuration: configuration, backgroundLogger: logger),
            logger: logger
        )
        do {
            try await storage.migrate()
        } catch {
            await storage.shutdown()
            throw error
        }
        return storage
    }

    // MARK: - Migrations

    /// The migrations: SQLiteStorage's, in PostgreSQL's dialect, under the same names.
    static let migrations: [(identifier: String, statements: [String])] = [
        (
            "v1",
            [
                """
                CREATE TABLE device (
                    id TEXT NOT NULL CONSTRAINT device_key PRIMARY KEY,
                    issued_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                """
                CREATE TABLE document_set (
                    set_uuid TEXT NOT NULL CONSTRAINT document_set_key PRIMARY KEY,
                    device TEXT NOT NULL,
                    status TEXT NOT NULL,
                    latest_version INTEGER NOT NULL,
                    reason TEXT,
                    note_sealed BYTEA,
                    first_received_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE document (
                    id BIGSERIAL PRIMARY KEY,
                    set_uuid TEXT NOT NULL CONSTRAINT document_set_reference REFERENCES document_set(set_uuid),
                    version INTEGER NOT NULL,
                    version_identifier TEXT NOT NULL CONSTRAINT document_version_identifier UNIQUE,
                    bundle_id TEXT NOT NULL,
                    sha256 TEXT NOT NULL,
                    sender_device TEXT NOT NULL,
                    received_at BIGINT NOT NULL,
                    built_at BIGINT NOT NULL,
                    key_id TEXT NOT NULL,
                    sealed BYTEA NOT NULL,
                    CONSTRAINT document_set_version UNIQUE (set_uuid, version)
                )
                """,
                """
                CREATE TABLE event (
                    id BIGSERIAL PRIMARY KEY,
                    device TEXT NOT NULL,
                    sequence BIGINT NOT NULL,
                    set_uuid TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    reason TEXT,
                    note_sealed BYTEA,
                    at BIGINT NOT NULL,
                    CONSTRAINT event_device_sequence UNIQUE (device, sequence)
                )
                """,
                "CREATE INDEX event_set ON event(set_uuid)",
                """
                CREATE TABLE anchor (
                    version_identifier TEXT NOT NULL PRIMARY KEY REFERENCES document(version_identifier),
                    device TEXT NOT NULL,
                    sequence BIGINT NOT NULL,
                    hash TEXT NOT NULL,
                    signed_at_ms BIGINT NOT NULL,
                    signing_public_key TEXT NOT NULL,
                    signature TEXT NOT NULL,
                    set_uuid TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    received_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX anchor_device ON anchor(device, sequence)",
            ]
        ),
        (
            // Tenancy, as SQLite's v2. A region's database starts with this release: v1 holds no rows here.
            "v2",
            [
                """
                CREATE TABLE tenant (
                    code TEXT NOT NULL PRIMARY KEY,
                    last_board_sequence BIGINT NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE TABLE device_sequence (
                    device TEXT NOT NULL PRIMARY KEY,
                    last_sequence BIGINT NOT NULL
                )
                """,
                "ALTER TABLE document DROP CONSTRAINT document_set_reference",
                "ALTER TABLE document DROP CONSTRAINT document_set_version",
                """
                ALTER TABLE document_set ADD COLUMN hospital TEXT NOT NULL,
                    ADD COLUMN sealing INTEGER NOT NULL,
                    DROP CONSTRAINT document_set_key,
                    ADD CONSTRAINT document_set_key PRIMARY KEY (hospital, set_uuid)
                """,
                """
                ALTER TABLE document ADD COLUMN hospital TEXT NOT NULL,
                    ADD COLUMN sealing INTEGER NOT NULL,
                    ADD CONSTRAINT document_set_version UNIQUE (hospital, set_uuid, version),
                    ADD CONSTRAINT document_set_reference FOREIGN KEY (hospital, set_uuid)
                        REFERENCES document_set(hospital, set_uuid)
                """,
                "CREATE INDEX document_set_device ON document_set(set_uuid, device)",
                "CREATE INDEX document_set_open ON document_set(hospital, status, first_received_at)",
                """
                ALTER TABLE event ADD COLUMN hospital TEXT NOT NULL,
                    ADD COLUMN board_sequence BIGINT NOT NULL,
                    ADD COLUMN sealing INTEGER NOT NULL
                """,
                "CREATE UNIQUE INDEX event_board ON event(hospital, board_sequence)",
            ]
        ),
        regionMigration,
    ]

    /// Applies the migrations this database lacks, refusing one migrated by a newer release.
    func migrate() async throws(ReceiverError) {
        try await migrate(Self.migrations, table: "kyukyu_migration", name: "the region's database")
    }

    /// Applies those of `migrations` that `table` does not list, in order, in one transaction under the migrations'
    /// advisory lock (instances started together migrate once); refuses a database that lists one this release does
    /// not know.
    func migrate(
        _ migrations: [(identifier: String, statements: [String])],
        table: String,
        name: String
    ) async throws(ReceiverError) {
        try await transaction { connection in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(Self.migrationLock))",
                logger: self.logger
            )
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS \(unescaped: table) (
                    identifier TEXT NOT NULL PRIMARY KEY,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """,
                logger: self.logger
            )
            var applied: Set<String> = []
            for try await identifier in try await connection.query(
                "SELECT identifier FROM \(unescaped: table)",
                logger: self.logger
            ).decode(String.self) {
                applied.insert(identifier)
            }
            let unknown = applied.subtracting(migrations.map(\.identifier))
            guard unknown.isEmpty else {
                throw ReceiverError.storage(
                    "\(name) was migrated by a newer release (migrations \(unknown.sorted()) are "
                        + "unknown to this one): downgrades are not supported; run the newer release"
                )
            }
            for migration in migrations where !applied.contains(migration.identifier) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO \(unescaped: table) (identifier) VALUES (\(migration.identifier))",
                    logger: self.logger
                )
            }
        }
    }

    // MARK: - Devices

    func registerDevice(_ id: String, at: Int64) async throws(ReceiverError) {
        try await execute(
            """
            INSERT INTO device (id, issued_at, revoked_at) VALUES (\(id), \(at), NULL)
            ON CONFLICT (id) DO UPDATE SET issued_at = excluded.issued_at, revoked_at = NULL
            """
        )
    }

    func revokeDevice(_ id: String, at: Int64) async throws(ReceiverError) -> Bool {
        let rows = try await fetch("UPDATE device SET revoked_at = \(at) WHERE id = \(id) RETURNING id") { _ in 1 }
        return !rows.isEmpty
    }

    func device(_ id: String) async throws(ReceiverError) -> DeviceRecord? {
        try await fetch("SELECT id, issued_at, revoked_at FROM device WHERE id = \(id)", Self.device).first
    }

    func devices() async throws(ReceiverError) -> [DeviceRecord] {
        try await fetch("SELECT id, issued_at, revoked_at FROM device ORDER BY id", Self.device)
    }

    // MARK: - Intake

    func intake(_ row: IntakeRow) async -> Result<IntakeStep, ReceiverError> {
        do {
            return .success(try await transaction { connection in try await self.store(row, connection) })
        } catch {
            return .failure(error)
        }
    }

    private func store(_ row: IntakeRow, _ connection: PostgresConnection) async throws -> IntakeStep {
        let owners = try await connection.query(
            "SELECT device FROM document_set WHERE set_uuid = \(row.set) AND device <> \(row.device) LIMIT 1",
            logger: logger
        ).collect()
        guard owners.isEmpty else { throw ReceiverError.forbidden("this document set was sent by another device") }
        try await connection.query(
            """
            INSERT INTO document_set (hospital, set_uuid, device, status, latest_version, sealing, first_received_at,
                updated_at)
            VALUES (\(row.hospital), \(row.set), \(row.device), 'received', \(row.version), 2, \(row.at), \(row.at))
            ON CONFLICT (hospital, set_uuid) DO NOTHING
            """,
            logger: logger
        )
        let inserted: [PostgresRow]
        do {
            inserted = try await connection.query(
                """
                INSERT INTO document (hospital, set_uuid, version, version_identifier, bundle_id, sha256,
                    sender_device, received_at, built_at, key_id, sealing, sealed)
                VALUES (\(row.hospital), \(row.set), \(row.version), \(row.versionIdentifier), \(row.bundleID),
                    \(row.sha), \(row.device), \(row.at), \(row.builtAt), \(row.keyID), \(row.sealing), \(row.sealed))
                ON CONFLICT (version_identifier) DO NOTHING
                RETURNING id
                """,
                logger: logger
            ).collect()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw {
            throw ReceiverError.conflict("version \(row.version) of this document set is stored under another key")
        }
        if inserted.isEmpty {
            guard
                let stored = try await connection.query(
                    "SELECT \(unescaped: Self.versionColumns) FROM document WHERE version_identifier = \(row.versionIdentifier)",
                    logger: logger
                ).collect().first.map(Self.version)
            else { throw ReceiverError.conflict("the key is stored but cannot be read") }
            guard stored.sha256 == row.sha, stored.device == row.device, stored.hospital == row.hospital else {
                throw ReceiverError.conflict("this key is stored with other content (SHA-256 differs)")
            }
            return .resent(stored)
        }
        try await connection.query(
            """
            UPDATE document_set SET latest_version = GREATEST(latest_version, \(row.version)), updated_at = \(row.at),
                status = CASE status WHEN 'withdrawn' THEN 'received' ELSE status END
            WHERE hospital = \(row.hospital) AND set_uuid = \(row.set)
            """,
            logger: logger
        )
        if let anchor = row.anchor {
            try await connection.query(
                """
                INSERT INTO anchor (version_identifier, device, sequence, hash, signed_at_ms, signing_public_key,
                    signature, set_uuid, version, received_at)
                VALUES (\(row.versionIdentifier), \(row.device), \(anchor.sequence), \(anchor.hash),
                    \(anchor.signedAtMilliseconds), \(anchor.signingPublicKey), \(anchor.signature), \(row.set),
                    \(row.version), \(row.at))
                """,
                logger: logger
            )
        }
        let event = try await appendEvent(
            connection,
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
        return .created(
            StoredVersionRow(
                hospital: row.hospital,
                set: row.set,
                version: row.version,
                versionIdentifier: row.versionIdentifier,
                bundleID: row.bundleID,
                sha256: row.sha,
                device: row.device,
                receivedAt: row.at,
                builtAt: row.builtAt
            ),
            event
        )
    }

    /// Numbers the event from the device's, then the hospital's counter, inserts it, and announces it at commit.
    private func appendEvent(_ connection: PostgresConnection, _ event: EventRow) async throws -> EventRow {
        let sequence =
            try await connection.query(
                """
                INSERT INTO device_sequence (device, last_sequence) VALUES (\(event.device), 1)
                ON CONFLICT (device) DO UPDATE SET last_sequence = device_sequence.last_sequence + 1
                RETURNING last_sequence
                """,
                logger: logger
            ).collect().first.map({ try $0.decode(Int64.self) }) ?? 1
        let board =
            try await connection.query(
                """
                INSERT INTO tenant (code, last_board_sequence) VALUES (\(event.hospital), 1)
                ON CONFLICT (code) DO UPDATE SET last_board_sequence = tenant.last_board_sequence + 1
                RETURNING last_board_sequence
                """,
                logger: logger
            ).collect().first.map({ try $0.decode(Int64.self) }) ?? 1
        let id =
            try await connection.query(
                """
                INSERT INTO event (hospital, board_sequence, device, sequence, set_uuid, version, status, reason,
                    note_sealed, sealing, at)
                VALUES (\(event.hospital), \(board), \(event.device), \(sequence), \(event.set), \(event.version),
                    \(event.status), \(event.reason), \(event.noteSealed), \(event.sealing), \(event.at))
                RETURNING id
                """,
                logger: logger
            ).collect().first.map({ try $0.decode(Int64.self) }) ?? 0
        try await connection.query("SELECT pg_notify(\(Self.eventsChannel), \(String(id)))", logger: logger)
        var stored = event
        stored.id = id
        stored.sequence = sequence
        stored.boardSequence = board
        return stored
    }

    // MARK: - Status changes

    func transition(_ change: StatusChange) async throws(ReceiverError) -> TransitionStep {
        try await transaction { connection in
            guard
                var set = try await connection.query(
                    """
                    SELECT \(unescaped: Self.setColumns) FROM document_set
                    WHERE hospital = \(change.hospital) AND set_uuid = \(change.set) FOR UPDATE
                    """,
                    logger: self.logger
                ).collect().first.map(Self.set)
            else { return .notFound }
            let current = HandoffStatus(rawValue: set.status) ?? .received
            switch TransitionRule.decide(current: current, owner: set.device, to: change.status, by: change.actor) {
            case .notFound: return .notFound
            case .conflict(let reason): return .conflict(reason)
            case .unchanged: return .done(set, nil)
            case .apply: break
            }
            let event = try await self.appendEvent(
                connection,
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
            try await connection.query(
                """
                UPDATE document_set SET status = \(change.status.rawValue), reason = \(change.reason),
                    note_sealed = \(change.noteSealed), sealing = 2, updated_at = \(change.at)
                WHERE hospital = \(change.hospital) AND set_uuid = \(change.set)
                """,
                logger: self.logger
            )
            set.status = change.status.rawValue
            set.reason = change.reason
            set.noteSealed = change.noteSealed
            set.sealing = 2
            set.updatedAt = change.at
            return .done(set, event)
        }
    }

    // MARK: - Reading

    static let eventColumns =
        "id, hospital, board_sequence, device, sequence, set_uuid, version, status, reason, note_sealed, sealing, at"
    static let setColumns =
        "hospital, set_uuid, device, status, latest_version, reason, note_sealed, sealing, first_received_at, updated_at"
    static let versionColumns =
        "hospital, set_uuid, version, version_identifier, bundle_id, sha256, sender_device, received_at, built_at"

    func events(device: String, after sequence: Int64) async throws(ReceiverError) -> [EventRow] {
        try await fetch(
            """
            SELECT \(unescaped: Self.eventColumns) FROM event WHERE device = \(device) AND sequence > \(sequence)
            ORDER BY sequence
            """,
            Self.event
        )
    }

    func events(device: String, openOrClosedSince closedSince: Int64) async throws(ReceiverError) -> [EventRow] {
        try await fetch(
            """
            SELECT e.id, e.hospital, e.board_sequence, e.device, e.sequence, e.set_uuid, e.version, e.status,
                e.reason, e.note_sealed, e.sealing, e.at
            FROM event e JOIN document_set s ON s.hospital = e.hospital AND s.set_uuid = e.set_uuid
            WHERE e.device = \(device) AND (s.status NOT IN ('arrived', 'withdrawn') OR s.updated_at >= \(closedSince))
            ORDER BY e.sequence
            """,
            Self.event
        )
    }

    func boardEvents(hospital: String, after position: Int64) async throws(ReceiverError) -> [EventRow] {
        try await fetch(
            """
            SELECT \(unescaped: Self.eventColumns) FROM event WHERE hospital = \(hospital) AND board_sequence > \(position)
            ORDER BY board_sequence
            """,
            Self.event
        )
    }

    func events(hospital: String, set: String) async throws(ReceiverError) -> [EventRow] {
        try await fetch(
            """
            SELECT \(unescaped: Self.eventColumns) FROM event WHERE hospital = \(hospital) AND set_uuid = \(set)
            ORDER BY board_sequence
            """,
            Self.event
        )
    }

    func events(ids: [Int64]) async throws(ReceiverError) -> [EventRow] {
        guard !ids.isEmpty else { return [] }
        return try await fetch(
            "SELECT \(unescaped: Self.eventColumns) FROM event WHERE id = ANY(\(ids)) ORDER BY id",
            Self.event
        )
    }

    /// The ids of the events after `id`, for the listener's catch-up.
    func eventIDs(after id: Int64) async throws(ReceiverError) -> [Int64] {
        try await fetch("SELECT id FROM event WHERE id > \(id) ORDER BY id") { try $0.decode(Int64.self) }
    }

    func openSets(hospital: String?) async throws(ReceiverError) -> [SetRow] {
        if let hospital {
            return try await fetch(
                """
                SELECT \(unescaped: Self.setColumns) FROM document_set
                WHERE hospital = \(hospital) AND status NOT IN ('arrived', 'withdrawn')
                ORDER BY first_received_at DESC
                """,
                Self.set
            )
        }
        return try await fetch(
            """
            SELECT \(unescaped: Self.setColumns) FROM document_set WHERE status NOT IN ('arrived', 'withdrawn')
            ORDER BY first_received_at DESC
            """,
            Self.set
        )
    }

    func set(hospital: String, set: String) async throws(ReceiverError) -> SetRow? {
        try await fetch(
            "SELECT \(unescaped: Self.setColumns) FROM document_set WHERE hospital = \(hospital) AND set_uuid = \(set)",
            Self.set
        ).first
    }

    func hospitals(holding set: String) async throws(ReceiverError) -> [String] {
        try await fetch("SELECT hospital FROM document_set WHERE set_uuid = \(set) ORDER BY updated_at DESC") {
            try $0.decode(String.self)
        }
    }

    func versions(hospital: String, set: String) async throws(ReceiverError) -> [StoredVersionRow] {
        try await fetch(
            """
            SELECT \(unescaped: Self.versionColumns) FROM document WHERE hospital = \(hospital) AND set_uuid = \(set)
            ORDER BY version
            """,
            Self.version
        )
    }

    func sealedDocument(versionIdentifier: String) async throws(ReceiverError) -> SealedDocumentRow? {
        try await fetch(
            """
            SELECT \(unescaped: Self.versionColumns), key_id, sealing, sealed FROM document
            WHERE version_identifier = \(versionIdentifier)
            """,
            Self.sealed
        ).first
    }

    func sealedDocuments(hospital: String?) async throws(ReceiverError) -> [SealedDocumentRow] {
        if let hospital {
            return try await fetch(
                """
                SELECT \(unescaped: Self.versionColumns), key_id, sealing, sealed FROM document
                WHERE hospital = \(hospital) ORDER BY id
                """,
                Self.sealed
            )
        }
        return try await fetch(
            "SELECT \(unescaped: Self.versionColumns), key_id, sealing, sealed FROM document ORDER BY id",
            Self.sealed
        )
    }

    func anchors(device: String?) async throws(ReceiverError) -> [StoredAnchor] {
        let columns =
            "device, sequence, hash, signed_at_ms, signing_public_key, signature, set_uuid, version, received_at"
        let decode: @Sendable (PostgresRow) throws -> StoredAnchor = { row in
            let (device, sequence, hash, signedAt, key, signature, set, version, receivedAt) = try row.decode(
                (String, Int64, String, Int64, String, String, String, Int, Int64).self
            )
            return StoredAnchor(
                device: device,
                anchor: AuditAnchor(
                    sequence: sequence,
                    hash: hash,
                    signedAtMilliseconds: signedAt,
                    signingPublicKey: key,
                    signature: signature
                ),
                documentSet: UUID(uuidString: set) ?? UUID(),
                version: version,
                receivedAt: StorageTime.date(receivedAt)
            )
        }
        if let device {
            return try await fetch(
                "SELECT \(unescaped: columns) FROM anchor WHERE device = \(device) ORDER BY sequence, received_at",
                decode
            )
        }
        return try await fetch(
            "SELECT \(unescaped: columns) FROM anchor ORDER BY device, sequence, received_at",
            decode
        )
    }

    // MARK: - Lifecycle

    /// Listens for what other instances commit, until cancelled; reconnects after a lost connection (1 s, then up to
    /// 10 s apart), catching up from the last ids seen (and every publication).
    func run(changed: @escaping @Sendable ([StorageNotice]) async -> Void) async throws {
        var lastEvent =
            try await fetch("SELECT COALESCE(MAX(id), 0) FROM event") { try $0.decode(Int64.self) }.first
            ?? 0
        var lastPlacement =
            try await fetch("SELECT COALESCE(MAX(id), 0) FROM placement_event") { try $0.decode(Int64.self) }.first
            ?? 0
        var failures = 0
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.eventsChannel) { notifications in
                        // Listening now: what committed since the last id seen (before the first connection, or
                        // while the connection was lost) is read back; the streams drop what they sent already.
                        do {
                            var missed: [StorageNotice] = []
                            for id in try await self.eventIDs(after: lastEvent) {
                                lastEvent = id
                                missed.append(.event(id))
                            }
                            for id in try await self.fetch(
                                "SELECT id FROM placement_event WHERE id > \(lastPlacement) ORDER BY id",
                                { try $0.decode(Int64.self) }
                            ) {
                                lastPlacement = id
                                missed.append(.placementEvent(id))
                            }
                            missed += try await self.acceptances().map { .acceptance($0.hospital) }
                            if !missed.isEmpty { await changed(missed) }
                        }
                        failures = 0
                        for try await notification in notifications {
                            let payload = notification.payload
                            if payload.hasPrefix("p:"), let id = Int64(payload.dropFirst(2)) {
                                lastPlacement = max(lastPlacement, id)
                                await changed([.placementEvent(id)])
                            } else if payload.hasPrefix("a:") {
                                await changed([.acceptance(String(payload.dropFirst(2)))])
                            } else if let id = Int64(payload) {
                                lastEvent = max(lastEvent, id)
                                await changed([.event(id)])
                            }
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning(
                    "the region's event listener lost its connection; reconnecting",
                    metadata: ["kyukyu.error": "\(type(of: error))", "kyukyu.failures": "\(failures)"]
                )
            }
            try? await Task.sleep(for: .seconds(min(10, max(1, failures))))
        }
    }

    func checkpoint() async {}

    func close() async throws(ReceiverError) { await shutdown() }

    private func shutdown() async {
        runner.cancel()
        await runner.value
    }

    // MARK: - Queries

    /// Runs `body` in one transaction on one connection; the closure's own error is rethrown as it is (a
    /// ``ReceiverError`` refusal stays one), after the rollback.
    func transaction<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(ReceiverError) -> T {
        // A deadlock or a serialization failure rolls the whole transaction back: it is run again (the lock order
        // makes them rare; PostgreSQL detects a cycle whatever the order).
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await client.withConnection { connection in
                    try await connection.query("BEGIN", logger: self.logger)
                    do {
                        let value = try await body(connection)
                        try await connection.query("COMMIT", logger: self.logger)
                        return value
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: self.logger)
                        throw error
                    }
                }
            } catch let error as ReceiverError {
                throw error
            } catch let error as PSQLError
                where attempt < 3
                && [PostgresError.Code.deadlockDetected.raw, PostgresError.Code.serializationFailure.raw].contains(
                    error.serverInfo?[.sqlState] ?? ""
                )
            {
                logger.notice(
                    "a transaction met another and is run again",
                    metadata: ["kyukyu.sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"]
                )
                continue
            } catch {
                throw .storage("the region's database cannot be written: \(Self.describe(error))")
            }
        }
    }

    func execute(_ query: PostgresQuery) async throws(ReceiverError) {
        do {
            try await client.query(query, logger: logger)
        } catch {
            throw .storage("the region's database cannot be written: \(Self.describe(error))")
        }
    }

    func fetch<T: Sendable>(
        _ query: PostgresQuery,
        _ decode: @escaping @Sendable (PostgresRow) throws -> T
    ) async throws(ReceiverError) -> [T] {
        do {
            return try await client.query(query, logger: logger).collect().map(decode)
        } catch {
            throw .storage("the region's database cannot be read: \(Self.describe(error))")
        }
    }

    /// A database error in words that carry no data: the SQLSTATE, or the kind of failure.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] { return "PostgreSQL SQLSTATE \(state)" }
            return "PostgreSQL \(error.code)"
        }
        if let error = error as? ReceiverError { return error.reason }
        return String(describing: type(of: error))
    }

    // MARK: - Rows

    private static func event(_ row: PostgresRow) throws -> EventRow {
        let (id, hospital, board, device, sequence, set, version, status, reason, note, sealing, at) = try row.decode(
            (Int64, String, Int64, String, Int64, String, Int, String, String?, Data?, Int, Int64).self
        )
        return EventRow(
            id: id,
            hospital: hospital,
            boardSequence: board,
            device: device,
            sequence: sequence,
            set: set,
            version: version,
            status: status,
            reason: reason,
            noteSealed: note,
            sealing: sealing,
            at: at
        )
    }

    private static func set(_ row: PostgresRow) throws -> SetRow {
        let (hospital, set, device, status, latest, reason, note, sealing, first, updated) = try row.decode(
            (String, String, String, String, Int, String?, Data?, Int, Int64, Int64).self
        )
        return SetRow(
            hospital: hospital,
            set: set,
            device: device,
            status: status,
            latestVersion: latest,
            reason: reason,
            noteSealed: note,
            sealing: sealing,
            firstReceivedAt: first,
            updatedAt: updated
        )
    }

    private static func version(_ row: PostgresRow) throws -> StoredVersionRow {
        let (hospital, set, version, identifier, bundle, sha, device, received, built) = try row.decode(
            (String, String, Int, String, String, String, String, Int64, Int64).self
        )
        return StoredVersionRow(
            hospital: hospital,
            set: set,
            version: version,
            versionIdentifier: identifier,
            bundleID: bundle,
            sha256: sha,
            device: device,
            receivedAt: received,
            builtAt: built
        )
    }

    private static func sealed(_ row: PostgresRow) throws -> SealedDocumentRow {
        let columns = try row.decode(
            (String, String, Int, String, String, String, String, Int64, Int64, String, Int, Data).self
        )
        return SealedDocumentRow(
            version: StoredVersionRow(
                hospital: columns.0,
                set: columns.1,
                version: columns.2,
                versionIdentifier: columns.3,
                bundleID: columns.4,
                sha256: columns.5,
                device: columns.6,
                receivedAt: columns.7,
                builtAt: columns.8
            ),
            keyID: columns.9,
            sealing: columns.10,
            sealed: columns.11
        )
    }

    private static func device(_ row: PostgresRow) throws -> DeviceRecord {
        let (id, issued, revoked) = try row.decode((String, Int64, Int64?).self)
        return DeviceRecord(
            id: id,
            issuedAt: StorageTime.date(issued),
            revokedAt: revoked.map(StorageTime.date)
        )
    }
}
