/// An error thrown by ``CrewDirectory``.
///
/// Callers (the HTTP layer) switch on ``code`` to choose the response; ``retryAfter``, ``triesLeft`` and ``field``
/// carry the numbers and names a response needs. The ``reason`` is a sentence for a person and never contains a
/// password, a PIN, a TOTP code or secret, or a session token. A failed sign-in never says which factor was wrong.
/// Equality and hashing consider only the ``code``, so a test can compare a thrown error with one built by the
/// same static member.
public struct CrewError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of error, for mapping to an HTTP status.
    public let code: Code
    /// What went wrong, in words, without any secret.
    public let reason: String
    /// With ``Code/accountLocked``: how long until the account accepts a sign-in again.
    public let retryAfter: Duration?
    /// With ``Code/wrongPIN``: how many PIN tries are left before the session ends.
    public let triesLeft: Int?
    /// With ``Code/invalidInput``: the name of the input that was refused (`crewId`, `password`, `pin`, `totp`).
    public let field: String?
    /// The file where the error was created.
    public let file: String
    /// The line where the error was created.
    public let line: UInt

    private init(
        code: Code,
        reason: String,
        retryAfter: Duration? = nil,
        triesLeft: Int? = nil,
        field: String? = nil,
        file: String,
        line: UInt
    ) {
        self.code = code
        self.reason = reason
        self.retryAfter = retryAfter
        self.triesLeft = triesLeft
        self.field = field
        self.file = file
        self.line = line
    }

    /// ``retryAfter`` in whole seconds, rounded up (a `Retry-After` header or `retryAfterSeconds`).
    public var retryAfterSeconds: Int? {
        self.retryAfter.map(Self.wholeSecondsRoundedUp)
    }

    private static func wholeSecondsRoundedUp(_ duration: Duration) -> Int {
        let components = duration.components
        return Int(components.seconds) + (components.attoseconds > 0 ? 1 : 0)
    }

    /// A textual description: code, reason and source location.
    public var description: String {
        "CrewError.\(self.code): \(self.reason) (\(self.file):\(self.line))"
    }

    /// Compares errors by ``code`` only.
    public static func == (lhs: CrewError, rhs: CrewError) -> Bool { lhs.code == rhs.code }

    /// Hashes the ``code`` only.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }

    /// The crew ID, password or TOTP code was wrong, the crew ID is unknown, or the account is disabled. The
    /// reason is the same in every case, so that a response cannot tell which.
    public static func signInFailed(file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(
            code: .signInFailed,
            reason: "sign-in failed: check the crew ID, the password and the code from the authenticator",
            file: file,
            line: line
        )
    }

    /// The account is locked after repeated failed sign-ins; it accepts a sign-in again after `retryAfter`.
    public static func accountLocked(retryAfter: Duration, file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(
            code: .accountLocked,
            reason:
                "too many failed sign-ins: the account is locked; try again in \(wholeSecondsRoundedUp(retryAfter)) s",
            retryAfter: retryAfter,
            file: file,
            line: line
        )
    }

    /// No session for this token: never signed in, signed out, expired, ended by an administrator or by too
    /// many wrong PINs. A full sign-in is needed.
    public static func unauthenticated(reason: String, file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(code: .unauthenticated, reason: reason, file: file, line: line)
    }

    /// The session is locked (idle, or locked by the crew); it needs the PIN before any other crew action.
    public static func sessionLocked(file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(
            code: .sessionLocked,
            reason: "the screen is locked: unlock it with the crew PIN",
            file: file,
            line: line
        )
    }

    /// The unlock PIN was wrong; `triesLeft` more wrong PINs are allowed before the session ends.
    public static func wrongPIN(triesLeft: Int, file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(
            code: .wrongPIN,
            reason: "wrong PIN: \(triesLeft) \(triesLeft == 1 ? "try" : "tries") left before a full sign-in is needed",
            triesLeft: triesLeft,
            file: file,
            line: line
        )
    }

    /// An input was refused before any check of a credential (its format). `reason` says what is expected, never
    /// what was given.
    public static func invalidInput(
        field: String,
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> CrewError {
        CrewError(code: .invalidInput, reason: reason, field: field, file: file, line: line)
    }

    /// No crew account with this ID (administration only; sign-in says ``signInFailed(file:line:)``).
    public static func notFound(crewID: String, file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(code: .notFound, reason: "no crew account \(crewID)", file: file, line: line)
    }

    /// A crew account with this ID exists already.
    public static func exists(crewID: String, file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(
            code: .exists,
            reason: "crew account \(crewID) exists already (use reset to give it new credentials)",
            file: file,
            line: line
        )
    }

    /// The crew database or its files failed: cannot be opened, read or written, has unsafe permissions, or was
    /// sealed with another secret key.
    public static func storage(reason: String, file: String = #fileID, line: UInt = #line) -> CrewError {
        CrewError(code: .storage, reason: reason, file: file, line: line)
    }

    /// The kind of a ``CrewError``. New codes may be added in later versions: keep a `default` when switching.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case signInFailed
            case accountLocked
            case unauthenticated
            case sessionLocked
            case wrongPIN
            case invalidInput
            case notFound
            case exists
            case storage
        }

        private let backing: Backing

        private init(_ backing: Backing) { self.backing = backing }

        /// See ``CrewError/signInFailed(file:line:)``. HTTP 401 `sign-in-failed`.
        public static let signInFailed = Code(.signInFailed)
        /// See ``CrewError/accountLocked(retryAfter:file:line:)``. HTTP 423 `account-locked`.
        public static let accountLocked = Code(.accountLocked)
        /// See ``CrewError/unauthenticated(reason:file:line:)``. HTTP 401 `unauthenticated`.
        public static let unauthenticated = Code(.unauthenticated)
        /// See ``CrewError/sessionLocked(file:line:)``. HTTP 423 `session-locked`.
        public static let sessionLocked = Code(.sessionLocked)
        /// See ``CrewError/wrongPIN(triesLeft:file:line:)``. HTTP 401 `wrong-pin`.
        public static let wrongPIN = Code(.wrongPIN)
        /// See ``CrewError/invalidInput(field:reason:file:line:)``. HTTP 422 `validation`.
        public static let invalidInput = Code(.invalidInput)
        /// See ``CrewError/notFound(crewID:file:line:)``.
        public static let notFound = Code(.notFound)
        /// See ``CrewError/exists(crewID:file:line:)``.
        public static let exists = Code(.exists)
        /// See ``CrewError/storage(reason:file:line:)``. HTTP 500.
        public static let storage = Code(.storage)

        /// The code's name.
        public var description: String { self.backing.rawValue }
    }
}
