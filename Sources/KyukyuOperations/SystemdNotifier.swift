#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Tells systemd how the service is doing (`sd_notify(3)`), when it runs under a `Type=notify` unit.
///
/// Made from the environment systemd gives the main process: `$NOTIFY_SOCKET` (a path, or an abstract name with a
/// leading `@`) and, with `WatchdogSec=`, `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, the process it is meant for).
/// Outside systemd neither is set and every call does nothing, so the programs run the same by hand.
public struct SystemdNotifier: Sendable, Hashable {
    /// Where notifications go, or `nil` when not started by systemd with `Type=notify`.
    public let socketAddress: String?
    /// How often systemd expects `WATCHDOG=1` at the latest, or `nil` with no watchdog for this process.
    public let watchdogTimeout: Duration?

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `environment`.
    ///
    /// - Parameters:
    ///   - environment: The process environment (`ProcessInfo.processInfo.environment`).
    ///   - processID: This process's ID: a watchdog meant for another process (`WATCHDOG_PID`) is not ours.
    /// - Throws: ``OperationsError/invalidEnvironment(_:_:)`` when `WATCHDOG_USEC` or `WATCHDOG_PID` is not a
    ///   positive integer, as systemd never sets them.
    public init(environment: [String: String], processID: Int32 = getpid()) throws(OperationsError) {
        let socket = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketAddress = socket
        guard let usec = environment["WATCHDOG_USEC"] else {
            watchdogTimeout = nil
            return
        }
        guard let microseconds = Int64(usec), microseconds > 0 else {
            throw .invalidEnvironment("WATCHDOG_USEC", usec)
        }
        if let pid = environment["WATCHDOG_PID"] {
            guard let owner = Int32(pid), owner > 0 else { throw .invalidEnvironment("WATCHDOG_PID", pid) }
            guard owner == processID else {
                watchdogTimeout = nil
                return
            }
        }
        watchdogTimeout = socket == nil ? nil : .microseconds(microseconds)
    }

    /// Whether systemd listens (`$NOTIFY_SOCKET` is set).
    public var isActive: Bool { socketAddress != nil }

    /// Sends `assignments` (`READY=1`, `STATUS=…`) as one notification; does nothing when systemd does not listen.
    ///
    /// - Throws: ``OperationsError`` when the socket address is unusable or the datagram cannot be sent.
    public func notify(_ assignments: [String]) throws(OperationsError) {
        guard let socketAddress else { return }
        try UnixDatagram.send(Array(assignments.joined(separator: "\n").utf8), to: socketAddress)
    }

    /// Start-up is finished: the service listens. `status` is shown by `systemctl status`.
    public func ready(status: String) throws(OperationsError) {
        try notify(["READY=1", "STATUS=\(Self.oneLine(status))", "MAINPID=\(getpid())"])
    }

    /// The service is shutting down gracefully.
    public func stopping(status: String) throws(OperationsError) {
        try notify(["STOPPING=1", "STATUS=\(Self.oneLine(status))"])
    }

    /// The service is alive and well: resets systemd's watchdog timer.
    public func watchdog() throws(OperationsError) {
        try notify(["WATCHDOG=1"])
    }

    /// A status line for `systemctl status`, nothing else.
    public func status(_ status: String) throws(OperationsError) {
        try notify(["STATUS=\(Self.oneLine(status))"])
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
