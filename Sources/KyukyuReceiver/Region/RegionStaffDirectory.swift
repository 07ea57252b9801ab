import Crypto
public import Foundation
public import KyukyuCrew
public import KyukyuDomain
import KyukyuVault
public import Logging
import NIOCore
import PostgresNIO

/// A staff account of a region's hub, as listed (never a secret).
public struct RegionStaffAccount: Sendable, Hashable {
    /// The staff ID.
    public var staffID: String
    /// The hospital the staff member works at: they see its patients only.
    public var hospital: HospitalCode
    /// Whether the account is disabled.
    public var disabled: Bool
    /// Until when it is locked after failed sign-ins, if it is.
    public var lockedUntil: Date?
    /// When it was made.
    public var createdAt: Date
}

/// A region's staff accounts and sessions, in the region's PostgreSQL, so that every instance of the hub signs staff
/// in and knows their sessions: a board may reach any instance behind the load balancer. Each account belongs to one
/// hospital, its tenant; its sessions see that hospital's patients only.
///
/// The rules are KyukyuCrew's, with its parts: bcrypt off the cooperative pool, TOTP (RFC 6238) with replay
/// protection (a step is accepted once, across every instance: the update that records it is conditional), lockout
/// with doubling backoff after ``CrewDirectory/Policy/maxSignInFailures`` failures, session tokens stored only as
/// SHA-256, TOTP secrets sealed with a key derived from the region's keyring (which the database never sees).
public final class RegionStaffDirectory: StaffAuthenticating {
    private let storage: PostgresStorage
    private let box: SecretBox
    private let bcrypt = BcryptRunner()
    private let dummyHash: String
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// The rules of sign-in and sessions (the board never locks for idleness).
    public let policy: CrewDirectory.Policy

    /// The staff tables, PostgreSQL only (a hospital's own receiver keeps its staff in KyukyuCrew's SQLite file).
    static let migrations: [(identifier: String, statements: [String])] = [
        (
            "staff-v1",
            [
                """
                CREATE TABLE staff (
                    staff_id TEXT NOT NULL PRIMARY KEY,
                    hospital TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    totp_sealed BYTEA NOT NULL,
                    disabled BOOLEAN NOT NULL DEFAULT false,
                    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
                    locked_until BIGINT,
                    last_totp_step BIGINT,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE staff_session (
                    token_hash BYTEA NOT NULL PRIMARY KEY,
                    staff_id TEXT NOT NULL REFERENCES staff(staff_id),
                    csrf_token TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX staff_session_expiry ON staff_session(expires_at)",
            ]
        )
    ]

    private init(
        storage: PostgresStorage,
        keyring: DeviceKeyring,
        policy: CrewDirectory.Policy,
        now: @escaping @Sendable () -> Date,
        logger: Logger
    ) throws(ReceiverError) {
        self.storage = storage
        do {
            self.box = SecretBox(key: try keyring.derivedKey(purpose: "kyukyu-hospital staff"))
        } catch {
            throw .startUp("the staff key cannot be derived from the keyring")
        }
        self.policy = policy
        self.now = now
        self.logger = logger
        self.dummyHash = "$2b$\(String(format: "%02d", policy.bcryptCost))$" + String(repeating: "a", count: 53)
    }

    /// The directory on a region's store (its PostgreSQL connections and keyring), its tables migrated.
    public static func open(
        on store: HospitalStore,
        policy: CrewDirectory.Policy = CrewDirectory.Policy(),
        now: @escaping @Sendable () -> Date = Date.init,
        logger: Logger
    ) async throws(ReceiverError) -> RegionStaffDirectory {
        guard let storage = store.storage as? PostgresStorage else {
            throw .invalidInput("staff accounts in the database are a region's (storage.engine postgresql)")
        }
        try await storage.migrate(migrations, table: "kyukyu_staff_migration", name: "the region's staff tables")
        return try RegionStaffDirectory(
            storage: storage,
            keyring: store.sealer.keyring,
            policy: policy,
            now: now,
            logger: logger
        )
    }

    // MARK: - Accounts

    /// Adds a staff account at `hospital`; returns its TOTP enrolment, shown once.
    public func add(staffID raw: String, hospital: HospitalCode, password: String) async throws(ReceiverError)
        -> CrewEnrolment
    {
        guard let staffID = CrewDirectory.canonicalCrewID(raw) else {
            throw .invalidInput("staff ID: 2 to 32 characters of A-Z, 0-9 and '-'")
        }
        guard password.count >= 10, password.utf8.count <= 72, !password.utf8.contains(0) else {
            throw .invalidInput("password: 10 characters or more, at most 72 bytes, no NUL")
        }
        let secret = TOTPCheck.makeSecret()
        let sealed: Data
        do {
            sealed = try box.sealTOTPSecret(secret, crewID: staffID)
        } catch {
            throw .storage("the TOTP secret cannot be sealed")
        }
        let hash = await bcrypt.hash(password, cost: policy.bcryptCost)
        let at = StorageTime.ms(now())
        let inserted = try await storage.fetch(
            """
            INSERT INTO staff (staff_id, hospital, password_hash, totp_sealed, created_at)
            VALUES (\(staffID), \(hospital.rawValue), \(hash), \(ByteBuffer(bytes: sealed)), \(at))
            ON CONFLICT (staff_id) DO NOTHING RETURNING staff_id
            """
        ) { (row: PostgresRow) throws -> String in try row.decode(String.self) }
        guard !inserted.isEmpty else { throw .conflict("staff account \(staffID) exists") }
        logger.info("staff account added", metadata: ["kyukyu.staff": "\(staffID)", "kyukyu.hospital": "\(hospital)"])
        return TOTPCheck.enrolment(crewID: staffID, secret: secret, issuer: policy.totpIssuer)
    }

    /// Every account, by ID.
    public func list() async throws(ReceiverError) -> [RegionStaffAccount] {
        try await storage.fetch(
            "SELECT staff_id, hospital, disabled, locked_until, created_at FROM staff ORDER BY staff_id"
        ) { row in
            let (id, hospital, disabled, locked, created) = try row.decode((String, String, Bool, Int64?, Int64).self)
            return RegionStaffAccount(
                staffID: id,
                hospital: HospitalCode(rawValue: hospital) ?? HospitalCode(rawValue: "0000000000")!,
                disabled: disabled,
                lockedUntil: locked.map(StorageTime.date),
                createdAt: StorageTime.date(created)
            )
        }
    }

    /// Disables an account and ends its sessions on every instance.
    public func disable(staffID raw: String) async throws(ReceiverError) {
        guard let staffID = CrewDirectory.canonicalCrewID(raw) else { throw .notFound("no staff account \(raw)") }
        let found = try await storage.transaction { connection in
            let rows = try await connection.query(
                "UPDATE staff SET disabled = true WHERE staff_id = \(staffID) RETURNING staff_id",
                logger: self.logger
            ).collect()
            try await connection.query("DELETE FROM staff_session WHERE staff_id = \(staffID)", logger: self.logger)
            return !rows.isEmpty
        }
        guard found else { throw .notFound("no staff account \(staffID)") }
    }

    // MARK: - Sign-in and sessions

    /// Signs in with password and TOTP; nil when anything is wrong, the account is locked or disabled (never says
    /// which).
    public func signIn(staffID raw: String, password: String, totp: String) async -> StaffSession? {
        do {
            return try await signInChecked(raw, password: password, totp: totp)
        } catch {
            logger.warning("a staff sign-in could not be checked", metadata: ["kyukyu.error": "\(error.code)"])
            return nil
        }
    }

    private func signInChecked(_ raw: String, password: String, totp: String) async throws(ReceiverError)
        -> StaffSession?
    {
        let at = now()
        let atMS = StorageTime.ms(at)
        let staffID = CrewDirectory.canonicalCrewID(raw)
        let rows: [(String, String, Data, Bool, Int64?)] =
            if let staffID {
                try await storage.fetch(
                    """
                    SELECT hospital, password_hash, totp_sealed, disabled, locked_until FROM staff
                    WHERE staff_id = \(staffID)
                    """
                ) { try $0.decode((String, String, Data, Bool, Int64?).self) }
            } else { [] }
        guard let staffID, let (hospitalText, hash, sealed, disabled, lockedUntil) = rows.first,
            let hospital = HospitalCode(rawValue: hospitalText)
        else {
            _ = await bcrypt.verify(password, hash: dummyHash)
            return nil
        }
        if let lockedUntil, lockedUntil > atMS { return nil }
        let passwordMatches =
            await bcrypt.verify(password, hash: hash) && password.utf8.count <= 72 && !password.utf8.contains(0)
        if disabled { return nil }
        guard passwordMatches else {
            try await fail(staffID, at: atMS)
            return nil
        }
        guard let secret = try? box.openTOTPSecret(sealed, crewID: staffID) else {
            throw .storage("a staff TOTP secret does not open with this keyring")
        }
        let steps = TOTPCheck.matchingSteps(code: totp, secret: secret, at: at)
        guard let step = steps.max() else {
            try await fail(staffID, at: atMS)
            return nil
        }
        let token = randomToken()
        let csrf = randomToken()
        let expires = atMS + Int64(policy.sessionLifetime.components.seconds * 1000)
        // One statement decides, on whichever instance: a step not accepted before, an account not locked or
        // disabled meanwhile.
        let started = try await storage.transaction { connection in
            let accepted = try await connection.query(
                """
                UPDATE staff SET last_totp_step = \(step), failed_sign_ins = 0, locked_until = NULL
                WHERE staff_id = \(staffID) AND NOT disabled
                    AND (last_totp_step IS NULL OR last_totp_step < \(step))
                    AND (locked_until IS NULL OR locked_until <= \(atMS))
                RETURNING staff_id
                """,
                logger: self.logger
            ).collect()
            guard !accepted.isEmpty else { return false }
            try await connection.query(
                """
                INSERT INTO staff_session (token_hash, staff_id, csrf_token, created_at, expires_at)
                VALUES (\(tokenDigest(token)), \(staffID), \(csrf), \(atMS), \(expires))
                """,
                logger: self.logger
            )
            return true
        }
        guard started else {
            try await fail(staffID, at: atMS)
            return nil
        }
        logger.info("staff signed in", metadata: ["kyukyu.staff": "\(staffID)", "kyukyu.hospital": "\(hospital)"])
        return StaffSession(
            staffID: staffID,
            hospital: hospital,
            token: token,
            csrfToken: csrf,
            expiresAt: StorageTime.date(expires)
        )
    }

    /// Counts a failure; locks with doubling backoff from the policy's base, up to its cap.
    private func fail(_ staffID: String, at: Int64) async throws(ReceiverError) {
        let maximum = policy.maxSignInFailures
        let base = Int64(policy.lockoutBase.components.seconds * 1000)
        let cap = Int64(policy.lockoutCap.components.seconds * 1000)
        try await storage.execute(
            """
            UPDATE staff SET failed_sign_ins = failed_sign_ins + 1,
                locked_until = CASE WHEN failed_sign_ins + 1 >= \(maximum)
                    THEN \(at) + LEAST(\(cap), \(base) * (2 ^ LEAST(failed_sign_ins + 1 - \(maximum), 20))::BIGINT)
                    ELSE locked_until END
            WHERE staff_id = \(staffID)
            """
        )
    }

    /// The live session behind a token (any instance's), or nil.
    public func session(token: String) async -> StaffSession? {
        let at = StorageTime.ms(now())
        let rows = try? await storage.fetch(
            """
            SELECT s.staff_id, a.hospital, s.csrf_token, s.expires_at
            FROM staff_session s JOIN staff a ON a.staff_id = s.staff_id
            WHERE s.token_hash = \(tokenDigest(token)) AND s.expires_at > \(at) AND NOT a.disabled
            """
        ) { try $0.decode((String, String, String, Int64).self) }
        guard let (staffID, hospital, csrf, expires) = rows?.first else { return nil }
        return StaffSession(
            staffID: staffID,
            hospital: HospitalCode(rawValue: hospital),
            token: nil,
            csrfToken: csrf,
            expiresAt: StorageTime.date(expires)
        )
    }

    /// Ends the session on every instance.
    public func endSession(token: String) async {
        try? await storage.execute("DELETE FROM staff_session WHERE token_hash = \(tokenDigest(token))")
    }

    /// Removes expired sessions; returns how many.
    public func purgeExpiredSessions() async throws(ReceiverError) -> Int {
        let at = StorageTime.ms(now())
        return try await storage.fetch(
            "DELETE FROM staff_session WHERE expires_at <= \(at) RETURNING staff_id"
        ) { _ in 1 }.count
    }
}
