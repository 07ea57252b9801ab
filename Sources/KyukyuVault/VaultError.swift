/// An error thrown by the `KyukyuVault` module.
///
/// Callers match on ``code``; the reason, file and line are diagnostics only and never carry
/// patient data. Equality and hashing consider only the ``code``, so a test can compare a thrown
/// error with one built by the same static member.
public struct VaultError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of error that was encountered.
    public let code: Code
    /// A human-readable reason. Never contains patient data.
    public let reason: String
    /// The file where the error was created.
    public let file: String
    /// The line where the error was created.
    public let line: UInt

    private init(code: Code, reason: String, file: String, line: UInt) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// A textual description: code, reason and source location.
    public var description: String {
        "VaultError.\(self.code): \(self.reason) (\(self.file):\(self.line))"
    }

    /// Compares errors by ``code`` only.
    public static func == (lhs: VaultError, rhs: VaultError) -> Bool { lhs.code == rhs.code }

    /// Hashes the ``code`` only.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }

    /// The device key file is readable or writable by someone other than its owner.
    public static func keyFilePermissionsTooOpen(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .keyFilePermissionsTooOpen, reason: reason, file: file, line: line)
    }

    /// The device key material is missing, unreadable or malformed.
    public static func deviceKeyUnavailable(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .deviceKeyUnavailable, reason: reason, file: file, line: line)
    }

    /// A wrapped data key was made with a device key that the keyring no longer holds.
    public static func unknownDeviceKey(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .unknownDeviceKey, reason: reason, file: file, line: line)
    }

    /// The incident does not exist, or has been shredded.
    public static func incidentNotFound(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .incidentNotFound, reason: reason, file: file, line: line)
    }

    /// A ciphertext failed to authenticate: altered, moved to another incident, kind or version,
    /// or sealed under another key.
    public static func authenticationFailed(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .authenticationFailed, reason: reason, file: file, line: line)
    }

    /// Stored rows are authentic one by one but the set is not: a record version was deleted or rolled
    /// back (its authenticated version count no longer matches what is stored).
    public static func integrityViolation(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .integrityViolation, reason: reason, file: file, line: line)
    }

    /// An argument was outside what the vault accepts (for example a malformed record kind).
    public static func invalidArgument(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .invalidArgument, reason: reason, file: file, line: line)
    }

    /// The operation is not allowed in the incident's current handoff state.
    public static func invalidState(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .invalidState, reason: reason, file: file, line: line)
    }

    /// The audit trail could not be read or written consistently.
    public static func auditFailure(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .auditFailure, reason: reason, file: file, line: line)
    }

    /// A file-system call on the state directory failed.
    public static func fileSystem(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .fileSystem, reason: reason, file: file, line: line)
    }

    /// The database was migrated by a newer release than this one: migrations only move forward, and a downgrade
    /// would write with an older schema's rules.
    public static func newerDatabase(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> VaultError {
        VaultError(code: .newerDatabase, reason: reason, file: file, line: line)
    }

    /// The kind of a ``VaultError``. New codes may be added in later versions.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case keyFilePermissionsTooOpen
            case deviceKeyUnavailable
            case unknownDeviceKey
            case incidentNotFound
            case authenticationFailed
            case integrityViolation
            case invalidArgument
            case invalidState
            case auditFailure
            case fileSystem
            case newerDatabase
        }

        private let backing: Backing

        private init(_ backing: Backing) { self.backing = backing }

        /// See ``VaultError/keyFilePermissionsTooOpen(reason:file:line:)``.
        public static let keyFilePermissionsTooOpen = Code(.keyFilePermissionsTooOpen)
        /// See ``VaultError/deviceKeyUnavailable(reason:file:line:)``.
        public static let deviceKeyUnavailable = Code(.deviceKeyUnavailable)
        /// See ``VaultError/unknownDeviceKey(reason:file:line:)``.
        public static let unknownDeviceKey = Code(.unknownDeviceKey)
        /// See ``VaultError/incidentNotFound(reason:file:line:)``.
        public static let incidentNotFound = Code(.incidentNotFound)
        /// See ``VaultError/authenticationFailed(reason:file:line:)``.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// See ``VaultError/integrityViolation(reason:file:line:)``.
        public static let integrityViolation = Code(.integrityViolation)
        /// See ``VaultError/invalidArgument(reason:file:line:)``.
        public static let invalidArgument = Code(.invalidArgument)
        /// See ``VaultError/invalidState(reason:file:line:)``.
        public static let invalidState = Code(.invalidState)
        /// See ``VaultError/newerDatabase(reason:file:line:)``.
        public static let newerDatabase = Code(.newerDatabase)
        /// See ``VaultError/auditFailure(reason:file:line:)``.
        public static let auditFailure = Code(.auditFailure)
        /// See ``VaultError/fileSystem(reason:file:line:)``.
        public static let fileSystem = Code(.fileSystem)

        /// The code's name.
        public var description: String { String(describing: self.backing) }
    }
}
