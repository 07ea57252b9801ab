#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why an operational part (the systemd notification socket, the journal) could not be used. Built like
/// swift-certificates' errors: a public struct with a private code, compared by code.
public struct OperationsError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case invalidSocketAddress
        case socketFailure
        case invalidEnvironment
    }

    private let code: Code
    /// What went wrong, with no patient data (the messages carry only service states and paths).
    public let reason: String

    private init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Compares by kind only.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the kind.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// A socket address that cannot be a unix socket (empty, or longer than `sun_path`).
    public static func invalidSocketAddress(_ address: String) -> Self {
        Self(.invalidSocketAddress, "'\(address)' is not a usable unix socket address (empty or too long)")
    }

    /// The socket could not be made or the datagram not sent (errno's description).
    public static func socketFailure(_ what: String, errno: Int32) -> Self {
        Self(.socketFailure, "\(what): \(String(cString: strerror(errno)))")
    }

    /// A variable systemd sets has a value that systemd would not set.
    public static func invalidEnvironment(_ variable: String, _ value: String) -> Self {
        Self(.invalidEnvironment, "\(variable)=\(value) is not valid")
    }

    /// The reason.
    public var description: String { "OperationsError: \(reason)" }
}
