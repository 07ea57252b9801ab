import Foundation
internal import GRDB

/// The crew database's schema and records. GRDB stays inside the module.
///
/// Plaintext columns hold crew IDs, bcrypt hashes, times, counters and random session ids; the TOTP secret is
/// sealed (``SecretBox``) and a session token is stored only as its SHA-256.
enum CrewDatabase {
    /// The database file name in a state folder.
    static let fileName = "crew.sqlite"

    static func configuration() -> Configuration {
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

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (
                        name TEXT PRIMARY KEY NOT NULL,
                        value BLOB NOT NULL
                    );
                    CREATE TABLE crew (
                        id TEXT PRIMARY KEY NOT NULL,
                        password_hash TEXT NOT NULL,
                        pin_hash TEXT NOT NULL,
                        totp_sealed BLOB NOT NULL,
                        last_totp_step INTEGER,
                        disabled INTEGER NOT NULL DEFAULT 0,
                        failed_sign_ins INTEGER NOT NULL DEFAULT 0,
                        locked_until REAL,
                        created_at REAL NOT NULL,
                        last_sign_in_at REAL
                    );
                    CREATE TABLE session (
                        id TEXT PRIMARY KEY NOT NULL,
                        token_hash BLOB NOT NULL UNIQUE,
                        crew_id TEXT NOT NULL REFERENCES crew(id) ON DELETE CASCADE,
                        csrf_token TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        last_activity REAL NOT NULL,
                        locked INTEGER NOT NULL DEFAULT 0,
                        pin_failures INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX session_crew_id ON session(crew_id);
                    CREATE INDEX session_expires_at ON session(expires_at);
                    """
            )
        }
        return migrator
    }
}

/// One crew account. Times are seconds since 1970.
struct CrewRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "crew"
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }

    var id: String
    var passwordHash: String
    var pinHash: String
    var totpSealed: Data
    /// The last TOTP time step accepted: a code of this step or an earlier one is refused (replay).
    var lastTotpStep: Int64?
    var disabled: Bool
    var failedSignIns: Int
    var lockedUntil: Double?
    var createdAt: Double
    var lastSignInAt: Double?
}

/// One shift session. Times are seconds since 1970.
struct SessionRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "session"
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }

    var id: String
    /// SHA-256 of the bearer token.
    var tokenHash: Data
    var crewId: String
    var csrfToken: String
    var createdAt: Double
    var expiresAt: Double
    var lastActivity: Double
    var locked: Bool
    var pinFailures: Int

    /// The public value; the token is never known here.
    var session: CrewSession {
        CrewSession(
            id: self.id,
            crewID: self.crewId,
            token: nil,
            csrfToken: self.csrfToken,
            createdAt: Date(timeIntervalSince1970: self.createdAt),
            expiresAt: Date(timeIntervalSince1970: self.expiresAt),
            locked: self.locked,
            lastActivity: Date(timeIntervalSince1970: self.lastActivity)
        )
    }
}

/// A named value of the `meta` table: the key check, the dummy bcrypt hashes.
struct MetaRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "meta"
    var name: String
    var value: Data
}
