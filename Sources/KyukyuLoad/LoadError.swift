/// Why a load run could not start or finish, in words for the person running it (in the style of
/// swift-certificates' errors: a struct over a private code, so that new reasons do not break callers).
public struct LoadError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case cannotConnect
        case badTarget
        case setupFailed
    }

    private let code: Code
    private let reason: String

    private init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The system under test could not be reached before the run began.
    public static func cannotConnect(_ address: String, _ underlying: String) -> LoadError {
        LoadError(.cannotConnect, "cannot connect to \(address) (\(underlying)); is the server running?")
    }

    /// The target's description cannot be sent (a bad URL, host or request).
    public static func badTarget(_ reason: String) -> LoadError {
        LoadError(.badTarget, reason)
    }

    /// Preparing the target (certificates, documents, sign-in, child servers) failed.
    public static func setupFailed(_ reason: String) -> LoadError {
        LoadError(.setupFailed, reason)
    }

    /// The reason, in words.
    public var description: String { reason }
}
