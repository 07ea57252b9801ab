public import Crypto
public import Foundation
internal import GRDB
internal import HummingbirdBcrypt
internal import KyukyuVault
public import Logging
internal import Synchronization

/// Crew accounts and shift sessions (issue 8, "Crew sign-in"), stored in one SQLite file.
///
/// - A crew member signs in once a shift with crew ID, password (bcrypt) and a TOTP code (RFC 6238, the current
///   30 s step ±1; a code of a step already used is refused). The session lasts ``Policy/sessionLifetime``.
/// - After ``Policy/idleLock`` without a crew action (``touch(token:)``), the session locks; the crew PIN (bcrypt)
///   unlocks it. ``Policy/maxPINFailures`` wrong PINs end the session.
/// - ``Policy/maxSignInFailures`` failed sign-ins lock the account for ``Policy/lockoutBase``, doubling with each
///   further failure up to ``Policy/lockoutCap``; a success resets the count. A sign-in for an unknown crew ID
///   spends the same bcrypt time, so the time taken does not tell which IDs exist.
/// - Only the SHA-256 of a session token is stored; TOTP secrets are sealed with the key given to
///   ``open(path:secretKey:policy:now:logger:audit:)``. Sessions survive a restart of the gateway.
///
/// Every time comes from the injected `now`. bcrypt runs on a dedicated thread, never on Swift's cooperative pool,
/// and credential checks (sign-in, unlock) run one at a time, so parallel guesses cannot overtake the failure
/// counters.
public final class CrewDirectory: Sendable {
    /// The rules of sign-in, sessions and lockout.
    public struct Policy: Sendable, Hashable {
        /// How long a shift session lasts from sign-in, whatever happens (24 h).
        public var sessionLifetime: Duration
        /// How long without a crew action before the session locks (300 s).
        public var idleLock: Duration
        /// Failed sign-ins in a row that lock the account (5).
        public var maxSignInFailures: Int
        /// How long the first lockout lasts (60 s); each further failure doubles it.
        public var lockoutBase: Duration
        /// The longest lockout (1 h).
        public var lockoutCap: Duration
        /// Wrong PINs in a row that end a locked session (5).
        public var maxPINFailures: Int
        /// bcrypt's cost (log2 of its rounds) for new password and PIN hashes: 10 (tests may use 4). A password
        /// hashed with another cost is rehashed at its next successful sign-in.
        public var bcryptCost: UInt8
        /// The issuer shown by authenticator apps.
        public var totpIssuer: String

        /// Creates a policy; every default is the one issue 8 asks for.
        public init(
            sessionLifetime: Duration = .seconds(24 * 60 * 60),
            idleLock: Duration = .seconds(300),
            maxSignInFailures: Int = 5,
            lockoutBase: Duration = .seconds(60),
            lockoutCap: Duration = .seconds(60 * 60),
            maxPINFailures: Int = 5,
            bcryptCost: UInt8 = 10,
            totpIssuer: String = "Myna Kyukyu"
        ) {
            self.sessionLifetime = sessionLifetime
            self.idleLock = idleLock
            self.maxSignInFailures = maxSignInFailures
            self.lockoutBase = lockoutBase
            self.lockoutCap = lockoutCap
            self.maxPINFailures = maxPINFailures
            self.bcryptCost = bcryptCost
            self.totpIssuer = totpIssuer
        }
    }

    /// The policy in force.
    public let policy: Policy

    private let database: DatabasePool
    private let secrets: SecretBox
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let audit: (any CrewAuditSink)?
    /// A bcrypt hash of a random string nobody knows, at the policy's cost: verified against when the crew ID is
    /// unknown, so that such a sign-in costs the same time.
    let dummyHash: String
    private let bcrypt = BcryptRunner()
    private let credentialChecks = AsyncSerializer()

    private init(
        database: DatabasePool,
        policy: Policy,
        secrets: SecretBox,
        now: @escaping @Sendable () -> Date,
        logger: Logger,
        audit: (any CrewAuditSink)?,
        dummyHash: String
    ) {
        self.database = database
        self.policy = policy
        self.secrets = secrets
        self.now = now
        self.logger = logger
        self.audit = audit
        self.dummyHash = dummyHash
    }

    // MARK: - Opening

    /// Opens the crew database at `path`, creating it (mode 0600, its folder 0700) if missing.
    ///
    /// - Parameters:
    ///   - path: The SQLite file, normally `<state-dir>/crew.sqlite`. A symbolic link is refused; group and other
    ///     permission bits on the file, its `-wal` and `-shm` files and the folder are removed.
    ///   - secretKey: A 256-bit key that seals the TOTP secrets. A database sealed with another key is refused.
    ///   - policy: Lifetimes, limits and bcrypt cost.
    ///   - now: The clock; tests move it.
    ///   - logger: Logs at `info` and below; never a secret.
    ///   - audit: Receives every sign-in, failure and administration action.
    ///
    /// Blocking (file system, migration, and on the first open one bcrypt hash): call it at start-up, or off the
    /// cooperative pool.
    public static func open(
        path: String,
        secretKey: SymmetricKey,
        policy: Policy = .init(),
        now: @escaping @Sendable () -> Date = Date.init,
        logger: Logger,
        audit: (any CrewAuditSink)? = nil
    ) throws(CrewError) -> CrewDirectory {
        guard secretKey.bitCount == 256 else {
            throw .invalidInput(field: "secretKey", reason: "the crew secret key must be 256 bits")
        }
        guard (4...31).contains(policy.bcryptCost) else {
            throw .invalidInput(field: "bcryptCost", reason: "the bcrypt cost must be between 4 and 31")
        }
        guard policy.maxSignInFailures >= 1, policy.maxPINFailures >= 1 else {
            throw .invalidInput(field: "policy", reason: "the failure limits must be at least 1")
        }
        let folder = (path as NSString).deletingLastPathComponent
        try CrewFiles.ensurePrivateDirectory(folder.isEmpty ? "." : folder)
        try CrewFiles.ensurePrivateFile(path, create: true)
        for suffix in ["-wal", "-shm"] { try CrewFiles.ensurePrivateFile(path + suffix, create: false) }

        let secrets = SecretBox(key: secretKey)
        let database: DatabasePool
        let dummyHash: String
        do {
            database = try DatabasePool(path: path, configuration: CrewDatabase.configuration())
            // GRDB sets `synchronous = NORMAL` on its writer when it enables WAL: set FULL again.
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try CrewDatabase.migrator.migrateForwardOnly(database, name: "the crew database")
            dummyHash = try database.write { db throws -> String in
                if let check = try MetaRow.fetchOne(db, key: "key-check") {
                    guard secrets.opensKeyCheck(check.value) else {
                        throw CrewError.storage(
                            reason: "the crew secret key does not open this crew database (another key file?)"
                        )
                    }
                } else {
                    try MetaRow(name: "key-check", value: try secrets.sealKeyCheck()).insert(db)
                }
                let name = "dummy-hash-\(policy.bcryptCost)"
                if let stored = try MetaRow.fetchOne(db, key: name) {
                    return String(decoding: stored.value, as: UTF8.self)
                }
                let hash = Bcrypt.hash(randomToken(), cost: policy.bcryptCost)
                try MetaRow(name: name, value: Data(hash.utf8)).insert(db)
                return hash
            }
        } catch let error as CrewError {
            throw error
        } catch {
            throw .storage(reason: "cannot open the crew database \(path): \(Self.describe(error))")
        }
        logger.debug("crew database open", metadata: ["kyukyu.crew.path": "\(path)"])
        return CrewDirectory(
            database: database,
            policy: policy,
            secrets: secrets,
            now: now,
            logger: logger,
            audit: audit,
            dummyHash: dummyHash
        )
    }

    /// Closes the database (at shutdown). Later calls fail with ``CrewError/Code/storage``.
    public func close() throws(CrewError) {
        do {
            try self.database.close()
        } catch {
            throw .storage(reason: "cannot close the crew database: \(Self.describe(error))")
        }
    }

    // MARK: - Administration

    /// Adds a crew account and returns its TOTP enrolment (shown once).
    ///
    /// The crew ID is trimmed and upper-cased, then must be 2–32 of `A-Z`, `0-9` and `-`; the password at least 10
    /// characters (at most 72 UTF-8 bytes, bcrypt's limit); the PIN 4 to 6 digits.
    public func add(crewID: String, password: String, pin: String) async throws(CrewError) -> CrewEnrolment {
        let crewID = try Self.validatedCrewID(crewID)
        try Self.validate(password: password)
        try Self.validate(pin: pin)
        let exists = try await self.read("look up a crew account") { db in try CrewRow.exists(db, key: crewID) }
        if exists { throw .exists(crewID: crewID) }
        let credentials = try await self.makeCredentials(crewID: crewID, password: password, pin: pin)
        let at = self.now().timeIntervalSince1970
        try await self.write("add a crew account") { db in
            if try CrewRow.exists(db, key: crewID) { throw CrewError.exists(crewID: crewID) }
            try CrewRow(
                id: crewID,
                passwordHash: credentials.passwordHash,
                pinHash: credentials.pinHash,
                totpSealed: credentials.sealedSecret,
                lastTotpStep: nil,
                disabled: false,
                failedSignIns: 0,
                lockedUntil: nil,
                createdAt: at,
                lastSignInAt: nil
            ).insert(db)
        }
        self.logger.info("crew account added", metadata: ["kyukyu.crew": "\(crewID)"])
        await self.record(.accountAdded, crewID: crewID)
        return credentials.enrolment
    }

    /// Every account, by crew ID.
    public func list() async throws(CrewError) -> [CrewAccount] {
        let at = self.now().timeIntervalSince1970
        let rows = try await self.read("list the crew accounts") { db in try CrewRow.order(Column("id")).fetchAll(db) }
        return rows.map { row in
            CrewAccount(
                crewID: row.id,
                disabled: row.disabled,
                lockedUntil: row.lockedUntil.flatMap { $0 > at ? Date(timeIntervalSince1970: $0) : nil },
                failedSignIns: row.failedSignIns,
                createdAt: Date(timeIntervalSince1970: row.createdAt),
                lastSignInAt: row.lastSignInAt.map(Date.init(timeIntervalSince1970:))
            )
        }
    }

    /// Disables an account and ends its sessions. Disabling a disabled account does nothing more.
    public func disable(crewID: String) async throws(CrewError) {
        let crewID = Self.normalizedCrewID(crewID)
        let ended = try await self.write("disable a crew account") { db -> Int in
            guard var row = try CrewRow.fetchOne(db, key: crewID) else { throw CrewError.notFound(crewID: crewID) }
            row.disabled = true
            try row.update(db)
            return try SessionRow.filter(Column("crew_id") == crewID).deleteAll(db)
        }
        self.logger.info("crew account disabled", metadata: ["kyukyu.crew": "\(crewID)"])
        await self.record(.accountDisabled, crewID: crewID, ["sessionsEnded": "\(ended)"])
    }

    /// Gives an account a new password, PIN and TOTP secret; clears its lockout, ends its sessions and enables it.
    public func reset(crewID: String, password: String, pin: String) async throws(CrewError) -> CrewEnrolment {
        let crewID = try Self.validatedCrewID(crewID)
        try Self.validate(password: password)
        try Self.validate(pin: pin)
        let exists = try await self.read("look up a crew account") { db in try CrewRow.exists(db, key: crewID) }
        guard exists else { throw .notFound(crewID: crewID) }
        let credentials = try await self.makeCredentials(crewID: crewID, password: password, pin: pin)
        let ended = try await self.write("reset a crew account") { db -> Int in
            guard var row = try CrewRow.fetchOne(db, key: crewID) else { throw CrewError.notFound(crewID: crewID) }
            row.passwordHash = credentials.passwordHash
            row.pinHash = credentials.pinHash
            row.totpSealed = credentials.sealedSecret
            row.lastTotpStep = nil
            row.disabled = false
            row.failedSignIns = 0
            row.lockedUntil = nil
            try row.update(db)
            return try SessionRow.filter(Column("crew_id") == crewID).deleteAll(db)
        }
        self.logger.info("crew account reset", metadata: ["kyukyu.crew": "\(crewID)"])
        await self.record(.accountReset, crewID: crewID, ["sessionsEnded": "\(ended)"])
        return credentials.enrolment
    }

    private struct Credentials: Sendable {
        var passwordHash: String
        var pinHash: String
        var sealedSecret: Data
        var enrolment: CrewEnrolment
    }

    private func makeCredentials(crewID: String, password: String, pin: String) async throws(CrewError) -> Credentials {
        let passwordHash = await self.bcrypt.hash(password, cost: self.policy.bcryptCost)
        let pinHash = await self.bcrypt.hash(pin, cost: self.policy.bcryptCost)
        let secret = TOTPCheck.makeSecret()
        let sealed: Data
        do {
            sealed = try self.secrets.sealTOTPSecret(secret, crewID: crewID)
        } catch {
            throw .storage(reason: "cannot seal the TOTP secret")
        }
        return Credentials(
            passwordHash: passwordHash,
            pinHash: pinHash,
            sealedSecret: sealed,
            enrolment: TOTPCheck.enrolment(crewID: crewID, secret: secret, issuer: self.policy.totpIssuer)
        )
    }

    // MARK: - Sign-in

    /// Signs a crew member in with both factors and starts a shift session.
    ///
    /// Returns the session with its raw bearer ``CrewSession/token`` (the only time it is known). Throws
    /// ``CrewError/Code/signInFailed`` for a wrong or unknown crew ID, password or TOTP code, a replayed code or a
    /// disabled account (the same error for all); ``CrewError/Code/accountLocked`` while the account is locked,
    /// without checking the password, and when this failure locks it.
    public func signIn(crewID: String, password: String, totp: String) async throws(CrewError) -> CrewSession {
        try await self.credentialChecks.run { () async throws(CrewError) -> CrewSession in
            try await self.signInOneAtATime(crewID: crewID, password: password, totp: totp)
        }
    }

    private enum SignInOutcome: Sendable {
        case started
        case gone
        case locked(until: Double)
        case replayed
    }

    private func signInOneAtATime(crewID rawID: String, password: String, totp: String) async throws(CrewError)
        -> CrewSession
    {
        let at = self.now()
        let crewID = Self.normalizedCrewID(rawID)
        let wellFormed = Self.isWellFormedCrewID(crewID)
        let found: CrewRow? =
            wellFormed
            ? try await self.read("look up a crew account") { db in try CrewRow.fetchOne(db, key: crewID) } : nil
        guard let account = found else {
            _ = await self.bcrypt.verify(password, hash: self.dummyHash)
            await self.record(.signInFailed, crewID: wellFormed ? crewID : nil, at: at, ["reason": "unknown-crew"])
            throw .signInFailed()
        }
        if let until = account.lockedUntil, until > at.timeIntervalSince1970 {
            await self.record(.signInFailed, crewID: crewID, at: at, ["reason": "locked"])
            throw .accountLocked(retryAfter: .seconds(until - at.timeIntervalSince1970))
        }
        // bcrypt reads at most 72 bytes, up to the first NUL: a longer password, or one with a NUL, would match on
        // its prefix alone. Enrolment refuses both, so such a password is wrong (after the same bcrypt time).
        let passwordMatches =
            await self.bcrypt.verify(password, hash: account.passwordHash)
            && password.utf8.count <= 72 && !password.utf8.contains(0)
        if account.disabled {
            await self.record(.signInFailed, crewID: crewID, at: at, ["reason": "disabled"])
            throw .signInFailed()
        }
        guard passwordMatches else { try await self.failSignIn(crewID: crewID, at: at, reason: "password") }
        let secret: String
        do {
            secret = try self.secrets.openTOTPSecret(account.totpSealed, crewID: crewID)
        } catch {
            throw .storage(reason: "the TOTP secret of \(crewID) does not open with this crew key")
        }
        let steps = TOTPCheck.matchingSteps(code: totp, secret: secret, at: at)
        guard !steps.isEmpty else { try await self.failSignIn(crewID: crewID, at: at, reason: "totp") }

        var rehash: String? = nil
        if BcryptRunner.cost(of: account.passwordHash) != self.policy.bcryptCost {
            rehash = await self.bcrypt.hash(password, cost: self.policy.bcryptCost)
        }
        let token = randomToken()
        let session = SessionRow(
            id: randomToken(bytes: 16),
            tokenHash: tokenDigest(token),
            crewId: crewID,
            csrfToken: randomToken(),
            createdAt: at.timeIntervalSince1970,
            expiresAt: at.timeIntervalSince1970 + self.policy.sessionLifetime.seconds,
            lastActivity: at.timeIntervalSince1970,
            locked: false,
            pinFailures: 0
        )
        let newHash = rehash
        let outcome = try await self.write("start a session") { db -> SignInOutcome in
            guard var row = try CrewRow.fetchOne(db, key: crewID), !row.disabled else { return .gone }
            if let until = row.lockedUntil, until > at.timeIntervalSince1970 { return .locked(until: until) }
            // Replay protection: only a step later than the last one accepted.
            guard let step = steps.filter({ $0 > (row.lastTotpStep ?? .min) }).max() else { return .replayed }
            row.lastTotpStep = step
            row.failedSignIns = 0
            row.lockedUntil = nil
            row.lastSignInAt = at.timeIntervalSince1970
            if let newHash { row.passwordHash = newHash }
            try row.update(db)
            try session.insert(db)
            return .started
        }
        switch outcome {
        case .started:
            break
        case .gone:
            await self.record(.signInFailed, crewID: crewID, at: at, ["reason": "disabled"])
            throw .signInFailed()
        case .locked(let until):
            await self.record(.signInFailed, crewID: crewID, at: at, ["reason": "locked"])
            throw .accountLocked(retryAfter: .seconds(until - at.timeIntervalSince1970))
        case .replayed:
            try await self.failSignIn(crewID: crewID, at: at, reason: "totp-replayed")
        }
        self.logger.info("crew signed in", metadata: ["kyukyu.crew": "\(crewID)", "kyukyu.session": "\(session.id)"])
        await self.record(.signIn, crewID: crewID, at: at, ["session": session.id])
        let started = session.session
        return CrewSession(
            id: started.id,
            crewID: started.crewID,
            token: token,
            csrfToken: started.csrfToken,
            createdAt: started.createdAt,
            expiresAt: started.expiresAt,
            locked: started.locked,
            lastActivity: started.lastActivity
        )
    }

    /// Counts a failed sign-in, locks the account when the count reaches the limit, and throws what the client is
    /// told: ``CrewError/Code/accountLocked`` if this failure locked it, else ``CrewError/Code/signInFailed``.
    private func failSignIn(crewID: String, at: Date, reason: String) async throws(CrewError) -> Never {
        let policy = self.policy
        let (failures, lockSeconds) = try await self.write("count a failed sign-in") { db -> (Int, Double?) in
            guard var row = try CrewRow.fetchOne(db, key: crewID) else { return (0, nil) }
            row.failedSignIns += 1
            var lockSeconds: Double? = nil
            if row.failedSignIns >= policy.maxSignInFailures {
                let seconds = Self.lockout(failures: row.failedSignIns, policy: policy)
                row.lockedUntil = at.timeIntervalSince1970 + seconds
                lockSeconds = seconds
            }
            try row.update(db)
            return (row.failedSignIns, lockSeconds)
        }
        self.logger.info(
            "crew sign-in failed",
            metadata: ["kyukyu.crew": "\(crewID)", "kyukyu.crew.failures": "\(failures)"]
        )
        await self.record(.signInFailed, crewID: crewID, at: at, ["reason": reason, "failures": "\(failures)"])
        guard let lockSeconds else { throw .signInFailed() }
        await self.record(
            .accountLocked,
            crewID: crewID,
            at: at,
            ["failures": "\(failures)", "lockedForSeconds": "\(Int(lockSeconds.rounded(.up)))"]
        )
        throw .accountLocked(retryAfter: .seconds(lockSeconds))
    }

    /// The lockout after `failures` failed sign-ins (at least the limit): the base, doubled per failure beyond the
    /// limit, capped.
    static func lockout(failures: Int, policy: Policy) -> Double {
        let doublings = failures - policy.maxSignInFailures
        let cap = policy.lockoutCap.seconds
        guard doublings < 62 else { return cap }
        return min(policy.lockoutBase.seconds * Double(Int64(1) << doublings), cap)
    }

    // MARK: - Sessions

    /// The session of `token`.
    ///
    /// Throws ``CrewError/Code/unauthenticated`` when there is none (unknown, signed out, ended), and when it has
    /// expired (then it is deleted). A session idle for ``Policy/idleLock`` is locked (stored) and returned with
    /// ``CrewSession/locked`` set. Does not count as a crew action.
    public func session(token: String) async throws(CrewError) -> CrewSession {
        try await self.resolve(token: token, at: self.now()).session
    }

    /// Records a crew action on the session: resets its idle timer. Throws ``CrewError/Code/sessionLocked`` while
    /// the session is locked (including when it has just become idle), ``CrewError/Code/unauthenticated`` when it
    /// has ended.
    @discardableResult
    public func touch(token: String) async throws(CrewError) -> CrewSession {
        let at = self.now()
        var row = try await self.resolve(token: token, at: at)
        guard !row.locked else { throw .sessionLocked() }
        // Within a second of the last write, the timer is already as good as reset: spare the fsync.
        guard at.timeIntervalSince1970 - row.lastActivity >= 1 else { return row.session }
        let id = row.id
        let changed = try await self.write("record a crew action") { db in
            try SessionRow.filter(Column("id") == id && Column("locked") == false)
                .updateAll(db, Column("last_activity").set(to: at.timeIntervalSince1970))
        }
        guard changed == 1 else { throw .sessionLocked() }
        row.lastActivity = at.timeIntervalSince1970
        return row.session
    }

    /// Locks the session (the tablet's lock button). Locking a locked session does nothing more.
    @discardableResult
    public func lock(token: String) async throws(CrewError) -> CrewSession {
        let at = self.now()
        var row = try await self.resolve(token: token, at: at)
        guard !row.locked else { return row.session }
        let id = row.id
        let changed = try await self.write("lock a session") { db in
            try SessionRow.filter(Column("id") == id && Column("locked") == false)
                .updateAll(db, Column("locked").set(to: true))
        }
        if changed == 1 {
            await self.record(.sessionLocked, crewID: row.crewId, at: at, ["session": id, "reason": "crew"])
        }
        row.locked = true
        return row.session
    }

    /// Unlocks a locked session with the crew member's PIN and resets its idle timer.
    ///
    /// A session that is not locked is returned as it is (the PIN is not checked). A PIN that is not 4–6 digits is
    /// ``CrewError/Code/invalidInput`` and costs no try. A wrong PIN throws ``CrewError/Code/wrongPIN`` with
    /// ``CrewError/triesLeft``; the ``Policy/maxPINFailures``-th wrong PIN in a row ends the session and throws
    /// ``CrewError/Code/unauthenticated`` (a full sign-in is needed).
    public func unlock(token: String, pin: String) async throws(CrewError) -> CrewSession {
        try await self.credentialChecks.run { () async throws(CrewError) -> CrewSession in
            try await self.unlockOneAtATime(token: token, pin: pin)
        }
    }

    private func unlockOneAtATime(token: String, pin: String) async throws(CrewError) -> CrewSession {
        let at = self.now()
        var row = try await self.resolve(token: token, at: at)
        guard row.locked else { return row.session }
        guard Self.isWellFormedPIN(pin) else {
            throw .invalidInput(field: "pin", reason: "the PIN is 4 to 6 digits")
        }
        let crewID = row.crewId
        let pinHash = try await self.read("look up a crew PIN") { db in try CrewRow.fetchOne(db, key: crewID)?.pinHash }
        guard let pinHash else { throw .unauthenticated(reason: "the crew account no longer exists: sign in") }
        let id = row.id
        if await self.bcrypt.verify(pin, hash: pinHash) {
            var rehash: String? = nil
            if BcryptRunner.cost(of: pinHash) != self.policy.bcryptCost {
                rehash = await self.bcrypt.hash(pin, cost: self.policy.bcryptCost)
            }
            let newPINHash = rehash
            let changed = try await self.write("unlock a session") { db in
                if let newPINHash {
                    try CrewRow.filter(Column("id") == crewID && Column("pin_hash") == pinHash)
                        .updateAll(db, Column("pin_hash").set(to: newPINHash))
                }
                return try SessionRow.filter(Column("id") == id).updateAll(
                    db,
                    Column("locked").set(to: false),
                    Column("pin_failures").set(to: 0),
                    Column("last_activity").set(to: at.timeIntervalSince1970)
                )
            }
            guard changed == 1 else { throw .unauthenticated(reason: "the shift session has ended: sign in again") }
            await self.record(.unlocked, crewID: crewID, at: at, ["session": id])
            row.locked = false
            row.pinFailures = 0
            row.lastActivity = at.timeIntervalSince1970
            return row.session
        }
        let limit = self.policy.maxPINFailures
        let (failures, ended) = try await self.write("count a wrong PIN") { db -> (Int, Bool) in
            guard var current = try SessionRow.fetchOne(db, key: id) else { return (limit, false) }
            current.pinFailures += 1
            if current.pinFailures >= limit {
                try current.delete(db)
                return (current.pinFailures, true)
            }
            try current.update(db)
            return (current.pinFailures, false)
        }
        let triesLeft = max(0, limit - failures)
        await self.record(.unlockFailed, crewID: crewID, at: at, ["session": id, "triesLeft": "\(triesLeft)"])
        if ended {
            self.logger.info(
                "crew session ended after wrong PINs",
                metadata: ["kyukyu.crew": "\(crewID)", "kyukyu.session": "\(id)"]
            )
            await self.record(.sessionEnded, crewID: crewID, at: at, ["session": id, "reason": "pin-failures"])
        }
        guard triesLeft > 0 else {
            throw .unauthenticated(reason: "wrong PIN \(limit) times: the shift session has ended; sign in again")
        }
        throw .wrongPIN(triesLeft: triesLeft)
    }

    /// Ends the session of `token`. Signing out a session that has already ended does nothing.
    public func signOut(token: String) async throws(CrewError) {
        let digest = tokenDigest(token)
        let ended = try await self.write("end a session") { db -> SessionRow? in
            guard let row = try SessionRow.filter(Column("token_hash") == digest).fetchOne(db) else { return nil }
            try row.delete(db)
            return row
        }
        guard let ended else { return }
        self.logger.info(
            "crew signed out",
            metadata: ["kyukyu.crew": "\(ended.crewId)", "kyukyu.session": "\(ended.id)"]
        )
        await self.record(.signedOut, crewID: ended.crewId, ["session": ended.id])
    }

    /// Deletes every expired session (also done lazily when one is used); returns how many. Run it now and then,
    /// for example at start-up and hourly.
    @discardableResult
    public func purgeExpiredSessions() async throws(CrewError) -> Int {
        let at = self.now()
        let ended = try await self.write("purge expired sessions") { db -> [SessionRow] in
            let expired = try SessionRow.filter(Column("expires_at") <= at.timeIntervalSince1970).fetchAll(db)
            for row in expired { try row.delete(db) }
            return expired
        }
        for row in ended {
            await self.record(.sessionEnded, crewID: row.crewId, at: at, ["session": row.id, "reason": "expired"])
        }
        return ended.count
    }

    /// Finds the session of `token` and applies time to it: an expired session (or one whose account is gone or
    /// disabled) is deleted and refused; an idle one is locked.
    private func resolve(token: String, at: Date) async throws(CrewError) -> SessionRow {
        let digest = tokenDigest(token)
        let found = try await self.read("look up a session") { db -> (SessionRow, Bool)? in
            guard let row = try SessionRow.filter(Column("token_hash") == digest).fetchOne(db) else { return nil }
            let usable = try CrewRow.fetchOne(db, key: row.crewId).map { !$0.disabled } ?? false
            return (row, usable)
        }
        guard let found else { throw .unauthenticated(reason: "not signed in, or the session has ended: sign in") }
        let (row, accountUsable) = found
        let now = at.timeIntervalSince1970
        if !accountUsable || now >= row.expiresAt {
            let id = row.id
            let deleted = try await self.write("end a session") { db in try SessionRow.deleteOne(db, key: id) }
            if deleted {
                let reason = accountUsable ? "expired" : "disabled"
                await self.record(.sessionEnded, crewID: row.crewId, at: at, ["session": id, "reason": reason])
            }
            throw .unauthenticated(reason: "the shift session has ended: sign in again")
        }
        guard !row.locked, now - row.lastActivity >= self.policy.idleLock.seconds else { return row }
        let id = row.id
        let lastActivity = row.lastActivity
        let changed = try await self.write("lock an idle session") { db in
            try SessionRow.filter(
                Column("id") == id && Column("locked") == false && Column("last_activity") == lastActivity
            ).updateAll(db, Column("locked").set(to: true))
        }
        if changed == 1 {
            await self.record(.sessionLocked, crewID: row.crewId, at: at, ["session": id, "reason": "idle"])
            var locked = row
            locked.locked = true
            return locked
        }
        // Touched, locked, or ended in between: look again.
        return try await self.resolve(token: token, at: at)
    }

    /// The bcrypt costs of an account's stored password and PIN hashes (for tests of the rehash).
    func storedHashCosts(crewID: String) async throws(CrewError) -> (password: UInt8?, pin: UInt8?)? {
        try await self.read("look up a crew account") { db in
            try CrewRow.fetchOne(db, key: crewID).map {
                (BcryptRunner.cost(of: $0.passwordHash), BcryptRunner.cost(of: $0.pinHash))
            }
        }
    }

    // MARK: - Validation

    /// The crew ID as stored (trimmed, upper-cased), or `nil` when it is not 2–32 characters of `A-Z`, `0-9` and
    /// `-`. For callers that check input before calling (the `crew` command, the HTTP layer).
    public static func canonicalCrewID(_ raw: String) -> String? {
        let id = self.normalizedCrewID(raw)
        return self.isWellFormedCrewID(id) ? id : nil
    }

    /// Trims and upper-cases a crew ID as typed.
    static func normalizedCrewID(_ raw: String) -> String {
        raw.trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
    }

    /// 2–32 characters of `A-Z`, `0-9` and `-`.
    static func isWellFormedCrewID(_ id: String) -> Bool {
        (2...32).contains(id.utf8.count)
            && id.utf8.allSatisfy { (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }
    }

    static func isWellFormedPIN(_ pin: String) -> Bool {
        (4...6).contains(pin.utf8.count) && pin.utf8.allSatisfy { (0x30...0x39).contains($0) }
    }

    private static func validatedCrewID(_ raw: String) throws(CrewError) -> String {
        let id = self.normalizedCrewID(raw)
        guard self.isWellFormedCrewID(id) else {
            throw .invalidInput(field: "crewId", reason: "a crew ID is 2 to 32 characters of A-Z, 0-9 and '-'")
        }
        return id
    }

    private static func validate(password: String) throws(CrewError) {
        guard password.count >= 10 else {
            throw .invalidInput(field: "password", reason: "the password must be at least 10 characters")
        }
        guard password.utf8.count <= 72 else {
            throw .invalidInput(field: "password", reason: "the password must be at most 72 bytes (bcrypt's limit)")
        }
        guard !password.utf8.contains(0) else {
            throw .invalidInput(field: "password", reason: "the password must not contain a NUL character")
        }
    }

    private static func validate(pin: String) throws(CrewError) {
        guard self.isWellFormedPIN(pin) else { throw .invalidInput(field: "pin", reason: "the PIN is 4 to 6 digits") }
    }

    // MARK: - Storage and audit helpers

    private func read<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(CrewError) -> T {
        do {
            return try await self.database.read(body)
        } catch {
            throw self.storageError(what, error)
        }
    }

    private func write<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(CrewError) -> T {
        do {
            return try await self.database.write(body)
        } catch {
            throw self.storageError(what, error)
        }
    }

    private func storageError(_ what: String, _ error: any Error) -> CrewError {
        if let error = error as? CrewError { return error }
        let described = Self.describe(error)
        self.logger.info(
            "crew database failed",
            metadata: ["kyukyu.crew.operation": "\(what)", "error": "\(described)"]
        )
        return .storage(reason: "cannot \(what): the crew database failed (\(described))")
    }

    /// An error in words that carry no statement arguments: a GRDB error's result code and message only.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return "SQLite \(error.resultCode): \(error.message ?? "no message")"
        }
        return String(describing: type(of: error))
    }

    private func record(
        _ action: CrewAuditEvent.Action,
        crewID: String?,
        at: Date? = nil,
        _ attributes: [String: String] = [:]
    ) async {
        let event = CrewAuditEvent(action: action, crewID: crewID, at: at ?? self.now(), attributes: attributes)
        self.logger.debug(
            "crew audit event",
            metadata: ["kyukyu.crew.action": "\(action)", "kyukyu.crew": "\(crewID ?? "-")"]
        )
        await self.audit?.record(event)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let components = self.components
        return Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

// MARK: - One credential check at a time

/// Runs closures one at a time, in arrival order, across suspension points (an actor would interleave them at
/// every `await`). Waiters are not cancellable: a credential check is short.
final class AsyncSerializer: Sendable {
    private struct State: Sendable {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func run<T>(_ body: () async throws(CrewError) -> T) async throws(CrewError) -> T {
        await self.acquire()
        defer { self.release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = self.state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if granted { continuation.resume() }
        }
    }

    private func release() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
