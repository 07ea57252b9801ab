import Foundation
public import GRDB
public import Logging

/// Opening and migrating the vault's SQLite database.
///
/// Every connection runs with `secure_delete = ON` (deleted content is overwritten with zeros),
/// `synchronous = FULL` (in WAL mode each commit fsyncs the WAL, so a write that returned survives
/// power loss, not only a process kill) and `temp_store = MEMORY` (no temporary files).
public enum VaultDatabase {
    /// The database file name inside a state directory. It says nothing about any patient.
    public static let fileName = "vault.sqlite"

    /// The GRDB configuration with the vault's pragmas.
    public static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        return configuration
    }

    /// Opens (creating with mode 0600 if needed) a WAL-mode pool at `path` and migrates it.
    ///
    /// The database file must be a regular file of the current user (not a symlink); group and other bits
    /// on it and on its `-wal` and `-shm` files are removed (and logged) before SQLite opens them.
    /// Blocking: from async code, call it off the cooperative pool.
    public static func openPool(path: String, logger: Logger? = nil) throws -> DatabasePool {
        if try FileSecurity.ensurePrivateFile(path, create: true) {
            logger?.warning("vault database was accessible to others; restricted to 0600")
        }
        for suffix in ["-wal", "-shm"] where try FileSecurity.ensurePrivateFile(path + suffix, create: false) {
            logger?.warning("vault database \(suffix) file was accessible to others; restricted to 0600")
        }
        let pool = try DatabasePool(path: path, configuration: configuration())
        // GRDB switches its writer connection to `synchronous = NORMAL` when it enables WAL, after
        // `prepareDatabase` ran: set FULL again on that (single, long-lived) connection, or a commit that
        // returned could be lost on power loss.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try migrate(pool)
        return pool
    }

    /// An in-memory database with the vault schema, for unit tests.
    public static func makeInMemory() throws -> DatabaseQueue {
        let queue = try DatabaseQueue(configuration: configuration())
        try migrate(queue)
        return queue
    }

    /// Applies the schema migrations (idempotent). Shipped migrations are never edited.
    public static func migrate(_ writer: any DatabaseWriter) throws {
        try migrator.migrateForwardOnly(writer, name: "the vault")
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Plaintext columns hold only random ids, category names, versions, times and states.
            try db.execute(
                sql: """
                    CREATE TABLE incident (
                        id TEXT PRIMARY KEY NOT NULL,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        handoff_state TEXT NOT NULL DEFAULT 'open',
                        handoff_changed_at REAL
                    );
                    CREATE INDEX incident_expires_at ON incident(expires_at);
                    CREATE TABLE incident_key (
                        incident_id TEXT PRIMARY KEY NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
                        device_key_id TEXT NOT NULL,
                        wrapped_key BLOB NOT NULL
                    );
                    CREATE INDEX incident_key_device_key ON incident_key(device_key_id);
                    CREATE TABLE record (
                        incident_id TEXT NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
                        kind TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        stored_at REAL NOT NULL,
                        sealed BLOB NOT NULL,
                        PRIMARY KEY (incident_id, kind, version)
                    );
                    CREATE TABLE audit_entry (
                        seq INTEGER PRIMARY KEY NOT NULL,
                        wall_time REAL NOT NULL,
                        body BLOB NOT NULL,
                        prev_hash BLOB NOT NULL,
                        hash BLOB NOT NULL
                    );
                    CREATE INDEX audit_entry_wall_time ON audit_entry(wall_time);
                    CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
                    BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
                    CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
                    BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
                    CREATE TABLE audit_head (
                        id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
                        seq INTEGER NOT NULL,
                        hash BLOB NOT NULL,
                        signed_at INTEGER NOT NULL,
                        signing_key BLOB NOT NULL,
                        signature BLOB NOT NULL
                    );
                    """
            )
        }
        migrator.registerMigration("v2-record-heads") { db in
            // One row per (incident, kind): the number of versions stored, authenticated with the incident's
            // data key (AES-GCM over nothing, associated data = incident, kind, count). The AAD of each record
            // binds the row; this binds the set, so a deleted newest version is detected, not silently
            // replaced by the one before it.
            try db.execute(
                sql: """
                    CREATE TABLE record_head (
                        incident_id TEXT NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
                        kind TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        tag BLOB NOT NULL,
                        PRIMARY KEY (incident_id, kind)
                    );
                    """
            )
        }
        return migrator
    }
}
