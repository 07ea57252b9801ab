import Foundation

/// A crew member's shift session, as the HTTP layer needs it.
///
/// The raw bearer ``token`` is only set on the value that ``CrewDirectory/signIn(crewID:password:totp:)`` returns:
/// the directory stores only its SHA-256, so it can never give it out again. ``description`` leaves the token and
/// the CSRF token out, so a session can be logged.
public struct CrewSession: Sendable, Hashable, CustomStringConvertible {
    /// A random identifier of the session (not a credential): for logs and the audit, in place of the token.
    public let id: String
    /// The crew member's ID, for example `A1-TANAKA`.
    public let crewID: String
    /// The bearer token (the `kyukyu_session` cookie's value): 32 random bytes, base64url. Only set by sign-in.
    public let token: String?
    /// The session's CSRF token, to be echoed in `X-CSRF-Token` by every state-changing request.
    public let csrfToken: String
    /// When the crew member signed in.
    public let createdAt: Date
    /// When the session ends whatever happens (sign-in + ``CrewDirectory/Policy/sessionLifetime``).
    public let expiresAt: Date
    /// Whether the screen is locked (idle for ``CrewDirectory/Policy/idleLock``, or locked by the crew): only the
    /// PIN unlocks it.
    public let locked: Bool
    /// The last crew action (sign-in, ``CrewDirectory/touch(token:)``, unlock).
    public let lastActivity: Date

    /// Creates a session value (the directory makes these; public for test doubles of the HTTP layer).
    public init(
        id: String,
        crewID: String,
        token: String?,
        csrfToken: String,
        createdAt: Date,
        expiresAt: Date,
        locked: Bool,
        lastActivity: Date
    ) {
        self.id = id
        self.crewID = crewID
        self.token = token
        self.csrfToken = csrfToken
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.locked = locked
        self.lastActivity = lastActivity
    }

    /// Whether `candidate` (the `X-CSRF-Token` header) is this session's CSRF token, compared in constant time.
    public func acceptsCSRFToken(_ candidate: String) -> Bool {
        constantTimeEquals(Array(candidate.utf8), Array(self.csrfToken.utf8))
    }

    /// The session without its secrets: id, crew, times and lock state.
    public var description: String {
        "CrewSession(id: \(self.id), crewID: \(self.crewID), locked: \(self.locked), "
            + "createdAt: \(self.createdAt), expiresAt: \(self.expiresAt), lastActivity: \(self.lastActivity))"
    }
}

/// A crew account as administration sees it: never a hash, a secret or a PIN.
public struct CrewAccount: Sendable, Hashable, Codable {
    /// The crew ID.
    public let crewID: String
    /// A disabled account cannot sign in; ``CrewDirectory/reset(crewID:password:pin:)`` enables it again.
    public let disabled: Bool
    /// Until when sign-ins are refused after repeated failures; `nil` when not locked now.
    public let lockedUntil: Date?
    /// Failed sign-ins since the last successful one.
    public let failedSignIns: Int
    /// When the account was added.
    public let createdAt: Date
    /// The last successful sign-in, if any.
    public let lastSignInAt: Date?

    /// Creates an account value.
    public init(
        crewID: String,
        disabled: Bool,
        lockedUntil: Date?,
        failedSignIns: Int,
        createdAt: Date,
        lastSignInAt: Date?
    ) {
        self.crewID = crewID
        self.disabled = disabled
        self.lockedUntil = lockedUntil
        self.failedSignIns = failedSignIns
        self.createdAt = createdAt
        self.lastSignInAt = lastSignInAt
    }
}

/// What a crew member needs once, when an account is added or reset: the TOTP secret for the authenticator app.
/// Shown once and never stored in the clear; ``description`` leaves the secret out.
public struct CrewEnrolment: Sendable, Hashable, CustomStringConvertible {
    /// The crew ID.
    public let crewID: String
    /// The TOTP secret in base32 (RFC 4648, no padding), to type into an authenticator app.
    public let totpSecret: String
    /// The `otpauth://totp/...` URI (SHA-1, 6 digits, 30 s) for a QR code.
    public let otpauthURI: String

    /// Creates an enrolment value.
    public init(crewID: String, totpSecret: String, otpauthURI: String) {
        self.crewID = crewID
        self.totpSecret = totpSecret
        self.otpauthURI = otpauthURI
    }

    /// The crew ID only.
    public var description: String { "CrewEnrolment(crewID: \(self.crewID), totpSecret: <redacted>)" }
}

/// One thing that happened to a crew account or session, for the gateway's audit trail.
///
/// Never carries a password, a PIN, a TOTP code or secret, or a token; the session appears by its ``CrewSession/id``.
public struct CrewAuditEvent: Sendable, Hashable {
    /// What happened.
    public let action: Action
    /// The crew ID concerned, or `nil` when a sign-in named no well-formed crew ID (what was typed is not kept: it
    /// may be a password typed into the wrong field).
    public let crewID: String?
    /// When it happened (the directory's clock).
    public let at: Date
    /// Details: `session` (the session id), `reason` (for example `password`, `totp`, `totp-replayed`,
    /// `unknown-crew`, `disabled`, `locked`, `idle`, `crew`, `pin-failures`), `failures`, `lockedForSeconds`,
    /// `triesLeft`.
    public let attributes: [String: String]

    /// Creates an event.
    public init(action: Action, crewID: String?, at: Date, attributes: [String: String] = [:]) {
        self.action = action
        self.crewID = crewID
        self.at = at
        self.attributes = attributes
    }

    /// The kind of a ``CrewAuditEvent``; its ``rawValue`` is the audit's action name.
    public struct Action: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        /// The action name, for example `sign-in-failed`.
        public let rawValue: String

        /// Creates an action from its name.
        public init(rawValue: String) { self.rawValue = rawValue }

        /// A successful sign-in; a session started.
        public static let signIn = Action(rawValue: "sign-in")
        /// A refused sign-in; `reason` says why (the audit may say which factor; the client is never told).
        public static let signInFailed = Action(rawValue: "sign-in-failed")
        /// Repeated failures locked the account; `lockedForSeconds` says for how long.
        public static let accountLocked = Action(rawValue: "account-locked")
        /// A session's screen locked (`reason`: `idle` or `crew`).
        public static let sessionLocked = Action(rawValue: "session-locked")
        /// The PIN unlocked a session.
        public static let unlocked = Action(rawValue: "unlocked")
        /// A wrong PIN; `triesLeft` says how many are left.
        public static let unlockFailed = Action(rawValue: "unlock-failed")
        /// A session ended without a sign-out (`reason`: `expired`, `pin-failures`, `disabled`).
        public static let sessionEnded = Action(rawValue: "session-ended")
        /// The crew member signed out.
        public static let signedOut = Action(rawValue: "signed-out")
        /// An account was added.
        public static let accountAdded = Action(rawValue: "account-added")
        /// An account was disabled (its sessions ended).
        public static let accountDisabled = Action(rawValue: "account-disabled")
        /// An account got new credentials (its sessions ended, lockout cleared, enabled).
        public static let accountReset = Action(rawValue: "account-reset")

        /// The action name.
        public var description: String { self.rawValue }
    }
}

/// Where ``CrewDirectory`` sends its audit events (the gateway writes them to the vault's audit trail).
public protocol CrewAuditSink: Sendable {
    /// Records one event. Called after the change it describes is stored; must not throw.
    func record(_ event: CrewAuditEvent) async
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
