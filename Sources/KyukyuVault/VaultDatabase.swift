import Foundation
public import GRDB

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
    public static func openPool(path: String) throws -> DatabasePool {
        try FileSecurity.touchOwnerOnly(path)
        let pool = try DatabasePool(path: path, configuration: configuration())
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
        try migrator.migrate(writer)
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
        return migrator
    }
}
