import Foundation

/// A crew member's shift session as the API sees it.
public struct CrewSessionInfo: Sendable, Hashable {
    /// The crew member.
    public var crewID: String
    /// The bearer token, only right after sign-in (it goes into the cookie, never into a body).
    public var token: String?
    /// The CSRF token every state-changing request must carry.
    public var csrfToken: String
    /// When the shift session ends.
    public var expiresAt: Date
    /// Whether the tablet is locked (the crew PIN unlocks it).
    public var locked: Bool

    /// Makes a session description.
    public init(crewID: String, token: String?, csrfToken: String, expiresAt: Date, locked: Bool) {
        self.crewID = crewID
        self.token = token
        self.csrfToken = csrfToken
        self.expiresAt = expiresAt
        self.locked = locked
    }
}

/// Why a crew session operation was refused.
public enum CrewSessionFailure: Error, Sendable, Hashable {
    /// Wrong crew ID, password or code (never says which).
    case signInFailed
    /// Too many failures: the account is locked for this long.
    case accountLocked(retryAfterSeconds: Int)
    /// No valid session: sign in again.
    case unauthenticated
    /// The crew PIN was wrong.
    case wrongPIN(triesLeft: Int)
    /// A field is malformed.
    case invalid(field: String, reason: String)
}

/// Crew sign-in and shift sessions, as the HTTP layer uses them: the crew module's directory in the service.
public protocol CrewAuthenticating: Sendable {
    /// Seconds without a touch before the tablet locks.
    var idleLockSeconds: Int { get }
    /// Signs a crew member in with password and TOTP code.
    func signIn(crewID: String, password: String, totp: String) async throws(CrewSessionFailure) -> CrewSessionInfo
    /// The session behind a cookie's token.
    func session(token: String) async throws(CrewSessionFailure) -> CrewSessionInfo
    /// A crew action: resets the idle timer.
    func touch(token: String) async
    /// Locks the tablet.
    func lock(token: String) async
    /// Unlocks with the crew PIN.
    func unlock(token: String, pin: String) async throws(CrewSessionFailure) -> CrewSessionInfo
    /// Ends the session.
    func endSession(token: String) async
}
