import Foundation
public import KyukyuCrew
public import KyukyuVault

/// The crew directory (KyukyuCrew, SQLite) as the API's crew sessions.
extension CrewDirectory: CrewAuthenticating {
    /// Seconds without a touch before the tablet locks.
    public var idleLockSeconds: Int { Int(policy.idleLock.components.seconds) }

    /// Signs in with password and TOTP.
    public func signIn(crewID: String, password: String, totp: String) async throws(CrewSessionFailure)
        -> CrewSessionInfo
    {
        do {
            return Self.info(try await signIn(crewID: crewID, password: password, totp: totp) as CrewSession)
        } catch {
            throw Self.failure(error)
        }
    }

    /// The session behind a token.
    public func session(token: String) async throws(CrewSessionFailure) -> CrewSessionInfo {
        do {
            return Self.info(try await session(token: token) as CrewSession)
        } catch {
            throw Self.failure(error)
        }
    }

    /// A crew action.
    public func touch(token: String) async {
        _ = try? await touch(token: token) as CrewSession
    }

    /// Locks the tablet.
    public func lock(token: String) async {
        _ = try? await lock(token: token) as CrewSession
    }

    /// Unlocks with the crew PIN.
    public func unlock(token: String, pin: String) async throws(CrewSessionFailure) -> CrewSessionInfo {
        do {
            return Self.info(try await unlock(token: token, pin: pin) as CrewSession)
        } catch {
            throw Self.failure(error)
        }
    }

    /// Ends the session.
    public func endSession(token: String) async {
        try? await signOut(token: token)
    }

    static func info(_ session: CrewSession) -> CrewSessionInfo {
        CrewSessionInfo(
            crewID: session.crewID,
            token: session.token,
            csrfToken: session.csrfToken,
            expiresAt: session.expiresAt,
            locked: session.locked
        )
    }

    static func failure(_ error: CrewError) -> CrewSessionFailure {
        switch error.code {
        case .signInFailed: .signInFailed
        case .accountLocked: .accountLocked(retryAfterSeconds: error.retryAfterSeconds ?? 60)
        case .wrongPIN: .wrongPIN(triesLeft: error.triesLeft ?? 0)
        case .invalidInput: .invalid(field: error.field ?? "input", reason: error.reason)
        default: .unauthenticated
        }
    }
}

/// The crew directory's events, written to the vault's audit trail with this terminal's id.
public struct VaultCrewAudit: CrewAuditSink {
    /// The vault whose audit trail records them.
    public let vault: IncidentVault
    /// This terminal's id.
    public let terminalID: String

    /// Writes crew events to `vault`'s audit trail.
    public init(vault: IncidentVault, terminalID: String) {
        self.vault = vault
        self.terminalID = terminalID
    }

    /// Records one event (never a secret: the crew module gives none).
    public func record(_ event: CrewAuditEvent) async {
        let audit: AuditEvent
        switch event.action {
        case .signIn: audit = .crewSignIn(crew: CrewID(event.crewID ?? "unknown") ?? CrewID("unknown")!)
        case .signedOut: audit = .crewSignOut(crew: CrewID(event.crewID ?? "unknown") ?? CrewID("unknown")!)
        default:
            audit = .crewEvent(
                event.action.rawValue,
                crew: event.crewID ?? "unknown",
                terminal: terminalID,
                attributes: event.attributes
            )
        }
        _ = try? await vault.audit.append(audit)
    }
}
