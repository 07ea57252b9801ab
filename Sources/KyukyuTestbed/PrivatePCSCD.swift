import Foundation
import Logging

/// A private pcscd with its own vpcd virtual readers, beside any system pcscd.
///
/// pcscd 1.9 keeps its socket at a fixed path, so the daemon runs in its own mount namespace with a tmpfs on
/// `/run/pcscd`; clients reach it through a symlink to `/proc/<pid>/root/run/pcscd/pcscd.comm`, which
/// `PCSCLITE_CSOCK_NAME` names. libpcsclite reads that variable once per process, so a restart re-points the
/// same symlink rather than changing the variable. Needs root (for `unshare --mount`).
public final class PrivatePCSCD: Sendable {
    /// The folder holding the reader configuration, the socket symlink and the daemon's log.
    public let directory: String
    /// The TCP ports on which the virtual readers wait for a virtual card, in reader order.
    public let ports: [Int]
    /// The symlink to give libpcsclite as `PCSCLITE_CSOCK_NAME`.
    public var socketPath: String { directory + "/pcscd.comm" }
    /// The reader friendly-name prefix (each vpcd entry adds two readers).
    public let friendlyName: String

    private let process: LockedProcess
    private let logger: Logger

    /// Why the private pcscd cannot run on this machine, or nil when it can.
    public static var unavailableReason: String? {
        let fm = FileManager.default
        if getuid() != 0 { return "a private pcscd needs root (unshare --mount)" }
        for path in ["/usr/sbin/pcscd", "/usr/bin/unshare", vpcdDriver] where !fm.fileExists(atPath: path) {
            return "\(path) is missing; install pcscd and vsmartcard-vpcd (make deps)"
        }
        return nil
    }

    static let vpcdDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

    /// Starts a private pcscd with `readerPairs` vpcd entries on ports `basePort`, `basePort + 1`, ….
    ///
    /// - Parameters:
    ///   - basePort: The first TCP port; the entry *k* uses `basePort + 2k` and `basePort + 2k + 1`.
    ///   - readerPairs: How many vpcd entries (two readers each).
    ///   - directory: A folder for the configuration, log and socket symlink (created).
    ///   - exportEnvironment: Sets `PCSCLITE_CSOCK_NAME` in this process so the PC/SC client finds the daemon.
    public init(
        basePort: Int,
        readerPairs: Int = 1,
        directory: String,
        friendlyName: String = "Kyukyu Sim",
        exportEnvironment: Bool = true,
        logger: Logger
    ) async throws {
        if let reason = Self.unavailableReason { throw TestbedError(reason) }
        self.directory = directory
        self.friendlyName = friendlyName
        self.ports = (0..<(readerPairs * 2)).map { basePort + $0 }
        self.logger = logger
        self.process = LockedProcess()
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory + "/reader.conf.d", withIntermediateDirectories: true)
        for pair in 0..<readerPairs {
            let port = basePort + pair * 2
            let conf = """
                FRIENDLYNAME "\(friendlyName)"
                DEVICENAME   /dev/null:\(port)
                LIBPATH      \(Self.vpcdDriver)
                CHANNELID    \(port)

                """
            try conf.write(toFile: directory + "/reader.conf.d/vpcd-\(pair)", atomically: true, encoding: .utf8)
        }
        try fm.createDirectory(atPath: "/run/pcscd", withIntermediateDirectories: true)
        Self.killLeftover(pidFile: directory + "/pcscd.pid")
        let busy = Set(ports).intersection(Self.listeningTCPPorts())
        guard busy.isEmpty else {
            throw TestbedError("TCP ports \(busy.sorted()) are in use by another process; choose another base port")
        }
        if exportEnvironment { setenv("PCSCLITE_CSOCK_NAME", socketPath, 1) }
        try await start()
    }

    /// Starts the daemon (again) and re-points the socket symlink.
    public func start() async throws {
        let log = directory + "/pcscd.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = [
            "--mount", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs tmpfs /run/pcscd && exec /usr/sbin/pcscd --foreground --apdu -c '\(directory)/reader.conf.d'",
        ]
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process.set(process)
        let pid = process.processIdentifier
        try? "\(pid)".write(toFile: directory + "/pcscd.pid", atomically: true, encoding: .utf8)
        let target = "/proc/\(pid)/root/run/pcscd/pcscd.comm"
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: target) {
            guard process.isRunning else {
                throw TestbedError("pcscd exited at start; see \(log)")
            }
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw TestbedError("pcscd did not create its socket within 10 s; see \(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try? FileManager.default.removeItem(atPath: socketPath)
        try FileManager.default.createSymbolicLink(atPath: socketPath, withDestinationPath: target)
        // The readers exist once vpcd listens on their ports (a connection would be a card, so don't probe).
        while !Set(ports).isSubset(of: Self.listeningTCPPorts()) {
            guard ContinuousClock.now < deadline else {
                throw TestbedError("vpcd did not listen on \(ports) within 10 s; see \(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        logger.info(
            "private pcscd started",
            metadata: ["kyukyu.pcscd.pid": "\(pid)", "kyukyu.pcscd.ports": "\(ports)"]
        )
    }

    /// Kills a daemon left behind by an earlier run in the same folder (a test process that crashed).
    static func killLeftover(pidFile: String) {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text),
            let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
            cmdline.contains("pcscd")
        else { return }
        kill(pid, SIGKILL)
        for _ in 0..<100 where FileManager.default.fileExists(atPath: "/proc/\(pid)/cmdline") {
            usleep(20_000)
        }
    }

    /// The TCP ports in LISTEN state on this machine, from /proc/net/tcp and /proc/net/tcp6.
    public static func listeningTCPPorts() -> Set<Int> {
        var ports = Set<Int>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[3] == "0A", let port = fields[1].split(separator: ":").last else {
                    continue
                }
                if let value = Int(port, radix: 16) { ports.insert(value) }
            }
        }
        return ports
    }

    /// Stops the daemon (SIGTERM, then SIGKILL) and waits for it to exit.
    public func stop() async {
        guard let process = self.process.take() else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        logger.info("private pcscd stopped")
    }

    /// Whether the daemon is running.
    public var isRunning: Bool { process.get()?.isRunning ?? false }

    deinit {
        if let process = process.take(), process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }
}

/// A `Process` behind a lock: Foundation's `Process` is not `Sendable`.
final class LockedProcess: @unchecked Sendable {  // Safe: every access to `process` holds `lock`.
    private let lock = NSLock()
    private var process: Process?

    func set(_ value: Process) { lock.withLock { process = value } }
    func get() -> Process? { lock.withLock { process } }
    func take() -> Process? {
        lock.withLock {
            defer { process = nil }
            return process
        }
    }
}

/// A failure to set up the test bed.
public struct TestbedError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public let description: String
    /// Creates an error.
    public init(_ description: String) { self.description = description }
}
