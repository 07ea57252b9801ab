/// An error thrown while loading or applying the gateway's configuration.
///
/// Callers match on ``code``; ``key`` and ``source`` say which setting and where it came from, and
/// ``reason`` says in words what is wrong and what is allowed. Equality and hashing consider the ``code``,
/// the ``key`` and the ``source`` only, so a test can compare a thrown error with one built by the same
/// static member. Configuration values are not patient data; no error ever carries any.
public struct GatewayConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of error that was encountered.
    public let code: Code
    /// The dotted configuration key concerned (for example `http.port`), when there is one.
    public let key: String?
    /// Where the offending value came from, when a value is concerned.
    public let source: GatewayConfiguration.Source?
    /// What is wrong and what is allowed, in words.
    public let reason: String
    /// The file where the error was created.
    public let file: String
    /// The line where the error was created.
    public let line: UInt
    /// Every error found, in the order of the keys, when there was more than one (``Code/several``); empty
    /// otherwise.
    public let problems: [GatewayConfigurationError]

    private init(
        code: Code,
        key: String?,
        source: GatewayConfiguration.Source?,
        reason: String,
        file: String,
        line: UInt,
        problems: [GatewayConfigurationError] = []
    ) {
        self.code = code
        self.key = key
        self.source = source
        self.reason = reason
        self.file = file
        self.line = line
        self.problems = problems
    }

    /// A textual description: code, key, source, reason and source location.
    public var description: String {
        var text = "GatewayConfigurationError.\(self.code): "
        if let key { text += key + ": " }
        text += self.reason
        return text + " (\(self.file):\(self.line))"
    }

    /// Compares errors by ``code``, ``key`` and ``source``.
    public static func == (lhs: GatewayConfigurationError, rhs: GatewayConfigurationError) -> Bool {
        lhs.code == rhs.code && lhs.key == rhs.key && lhs.source == rhs.source
    }

    /// Hashes ``code``, ``key`` and ``source``.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.code)
        hasher.combine(self.key)
        hasher.combine(self.source)
    }

    /// A value is of the wrong type or outside what the key allows.
    public static func invalidValue(
        key: String,
        source: GatewayConfiguration.Source,
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> GatewayConfigurationError {
        GatewayConfigurationError(code: .invalidValue, key: key, source: source, reason: reason, file: file, line: line)
    }

    /// A key, environment variable or flag that the gateway does not know (a typo is never silently ignored).
    public static func unknownKey(
        key: String,
        source: GatewayConfiguration.Source,
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> GatewayConfigurationError {
        GatewayConfigurationError(code: .unknownKey, key: key, source: source, reason: reason, file: file, line: line)
    }

    /// The configuration file that was named explicitly does not exist, cannot be read, or is not a JSON object.
    public static func unreadableFile(
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> GatewayConfigurationError {
        GatewayConfigurationError(
            code: .unreadableFile,
            key: nil,
            source: .file,
            reason: reason,
            file: file,
            line: line
        )
    }

    /// The listening policy is broken: a non-loopback address without TLS.
    public static func listeningPolicy(
        key: String,
        source: GatewayConfiguration.Source,
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> GatewayConfigurationError {
        GatewayConfigurationError(
            code: .listeningPolicy,
            key: key,
            source: source,
            reason: reason,
            file: file,
            line: line
        )
    }

    /// The TLS certificate or key cannot be read, parsed, generated or stored, or the key file is not private.
    public static func tlsMaterial(
        key: String,
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> GatewayConfigurationError {
        GatewayConfigurationError(code: .tlsMaterial, key: key, source: nil, reason: reason, file: file, line: line)
    }

    /// A file-system call on the state folder failed.
    public static func fileSystem(
        key: String,
        reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> GatewayConfigurationError {
        GatewayConfigurationError(code: .fileSystem, key: key, source: nil, reason: reason, file: file, line: line)
    }

    /// Several settings are wrong: each is in ``problems``, and ``reason`` lists them one per line. A single
    /// problem is thrown as itself.
    public static func several(
        _ problems: [GatewayConfigurationError],
        file: String = #fileID,
        line: UInt = #line
    ) -> GatewayConfigurationError {
        if problems.count == 1 { return problems[0] }
        return GatewayConfigurationError(
            code: .several,
            key: nil,
            source: nil,
            reason: "\(problems.count) settings are wrong:\n"
                + problems.map { "  - " + ($0.key.map { "\($0): " } ?? "") + $0.reason }.joined(separator: "\n"),
            file: file,
            line: line,
            problems: problems
        )
    }

    /// The kind of a ``GatewayConfigurationError``. New codes may be added in later versions.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidValue
            case unknownKey
            case unreadableFile
            case listeningPolicy
            case tlsMaterial
            case fileSystem
            case several
        }

        private let backing: Backing

        private init(_ backing: Backing) { self.backing = backing }

        /// See ``GatewayConfigurationError/invalidValue(key:source:reason:file:line:)``.
        public static let invalidValue = Code(.invalidValue)
        /// See ``GatewayConfigurationError/unknownKey(key:source:reason:file:line:)``.
        public static let unknownKey = Code(.unknownKey)
        /// See ``GatewayConfigurationError/unreadableFile(reason:file:line:)``.
        public static let unreadableFile = Code(.unreadableFile)
        /// See ``GatewayConfigurationError/listeningPolicy(key:source:reason:file:line:)``.
        public static let listeningPolicy = Code(.listeningPolicy)
        /// See ``GatewayConfigurationError/tlsMaterial(key:reason:file:line:)``.
        public static let tlsMaterial = Code(.tlsMaterial)
        /// See ``GatewayConfigurationError/fileSystem(key:reason:file:line:)``.
        public static let fileSystem = Code(.fileSystem)
        /// See ``GatewayConfigurationError/several(_:file:line:)``.
        public static let several = Code(.several)

        /// The code's name.
        public var description: String { String(describing: self.backing) }
    }
}
