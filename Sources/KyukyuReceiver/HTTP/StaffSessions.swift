public import Foundation
public import KyukyuCrew
public import KyukyuDomain

/// A staff member's session as the API sees it.
public struct StaffSession: Sendable, Hashable {
    /// The staff member's ID.
    public var staffID: String
    /// The hospital the staff member works at: they see its patients only. Nil for the staff of a receiver that
    /// serves one hospital (their directory knows no other).
    public var hospital: HospitalCode?
    /// The bearer token, only right after sign-in (it goes into the cookie, never into a body).
    public var token: String?
    /// The CSRF token every state-changing request must carry.
    public var csrfToken: String
    /// When the session ends.
    public var expiresAt: Date

    /// Makes a session description.
    public init(staffID: String, hospital: HospitalCode? = nil, token: String?, csrfToken: String, expiresAt: Date) {
        self.staffID = staffID
        self.hospital = hospital
        self.token = token
        self.csrfToken = csrfToken
        self.expiresAt = expiresAt
    }
}

/// Staff sign-in (password and TOTP) and sessions. KyukyuCrew's `CrewDirectory`, opened on the receiver's own
/// staff database, conforms.
public protocol StaffAuthenticating: Sendable {
    /// Signs in; nil when the ID, password or code is wrong, or the account is locked or disabled (never says which).
    func signIn(staffID: String, password: String, totp: String) async -> StaffSession?
    /// The live session behind a cookie's token, touched (its idle timer reset); nil when there is none.
    func session(token: String) async -> StaffSession?
    /// Ends the session.
    func endSession(token: String) async
}

extension CrewDirectory: StaffAuthenticating {
    /// Signs in with password and TOTP.
    public func signIn(staffID: String, password: String, totp: String) async -> StaffSession? {
        guard let session = try? await signIn(crewID: staffID, password: password, totp: totp) else { return nil }
        return StaffSession(
            staffID: session.crewID,
            token: session.token,
            csrfToken: session.csrfToken,
            expiresAt: session.expiresAt
        )
    }

    /// The session behind a token, touched.
    public func session(token: String) async -> StaffSession? {
        guard let session = try? await touch(token: token) else { return nil }
        return StaffSession(
            staffID: session.crewID,
            token: nil,
            csrfToken: session.csrfToken,
            expiresAt: session.expiresAt
        )
    }

    /// Ends the session.
    public func endSession(token: String) async { try? await signOut(token: token) }
}
