import Foundation
import Logging
import Synchronization

/// A private PostgreSQL server for tests, benchmarks and `make run-region`: Debian's `postgresql` binaries, a new
/// cluster (`initdb`) in its own folder, listening on a Unix socket in that folder and on `127.0.0.1:port`.
///
/// The cluster's superuser (`postgres`) connects only over the socket (trust: the folder is the server's own); the
/// product connects as ``user`` over TCP with a SCRAM password, as it would in a region. PostgreSQL refuses to run as
/// root, so under root the server runs as Debian's `postgres` system user (`setpriv`, which execs: the process
/// this value holds is the postmaster itself).
public final class PostgresServer: Sendable {
    /// The folder: `data/` (the cluster), the socket, and `postgres.log`.
    public let directory: String
    /// The TCP port on 127.0.0.1 (the socket carries the same number in its name).
    public let port: Int
    /// The product's role (owner of the databases ``createDatabase(_:)`` makes).
    public let user = "kyukyu"
    /// The role's password (random per server).
    public let password: String
    /// The folder with `postgres`, `initdb`, `psql` and `pg_isready`.
    public let binDirectory: String

    private let process: Mutex<SpawnedProcess?>
    private let logger: Logger

    /// The folder holding Debian's server binaries: `$KYUKYU_POSTGRES_BIN`, else the newest
    /// `/usr/lib/postgresql/<version>/bin`; nil when PostgreSQL is not installed.
    public static func installedBinDirectory() -> String? {
        if let bin = ProcessInfo.processInfo.environment["KYUKYU_POSTGRES_BIN"], !bin.isEmpty { return bin }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init)
        for version in versions.sorted(by: >) {
            let bin = "\(root)/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: bin + "/postgres") { return bin }
        }
        return nil
    }

    /// Why a private server cannot run here, or nil when it can.
    public static var unavailableReason: String? {
        guard let bin = installedBinDirectory() else {
            return "PostgreSQL is not installed (Debian's postgresql package; make deps installs it)"
        }
        for tool in ["initdb", "postgres", "psql", "pg_isready"]
        where !FileManager.default.isExecutableFile(atPath: "\(bin)/\(tool)") {
            return "\(bin)/\(tool) is missing"
        }
        if getuid() == 0, getpwnam("postgres") == nil {
            return "running as root needs Debian's postgres system user to run the server"
        }
        return nil
    }

    /// Creates a cluster in `directory` (emptied first) and starts it on `port`.
    ///
    /// - Parameters:
    ///   - directory: The server's folder (created; anything in it is removed). Under root its parents must be
    ///     traversable by the `postgres` user (a folder in `/tmp` is).
    ///   - port: A free TCP port on 127.0.0.1.
    ///   - settings: More `postgresql.conf` lines (`name = value`).
    ///   - timeout: How long the start may take before it is given up.
    public static func start(
        directory: String,
        port: Int,
        settings: [String] = [],
        timeout: Duration = .seconds(60),
        logger: Logger
    ) async throws -> PostgresServer {
        if let reason = unavailableReason { throw TestbedError(reason) }
        let bin = installedBinDirectory()!
        let fm = FileManager.default
        stopLeftover(directory: directory)
        try? fm.removeItem(atPath: directory)
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try ownByServer(directory)
        let password = (0..<24).map { _ in String("abcdefghijkmnpqrstuvwxyz23456789".randomElement()!) }.joined()
        let server = PostgresServer(
            directory: directory,
            port: port,
            password: password,
            binDirectory: bin,
            logger: logger
        )
        let (program, arguments) = asServer(
            bin + "/initdb",
            [
                "-D", server.dataDirectory, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                "--encoding=UTF8", "--locale=C", "--no-instructions",
            ]
        )
        let initdb = try await Commands.run(program, arguments, timeout: timeout)
        guard initdb.status == 0 else { throw TestbedError("initdb failed: \(initdb.stderr.suffix(800))") }
        let configuration =
            [
                "listen_addresses = '127.0.0.1'",
                "port = \(port)",
                "unix_socket_directories = '\(directory)'",
                "max_connections = 200",
                "password_encryption = 'scram-sha-256'",
                "log_min_messages = warning",
                "log_connections = off",
            ] + settings
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: server.dataDirectory + "/postgresql.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(("\n" + configuration.joined(separator: "\n") + "\n").utf8))
        try handle.close()
        try server.launch(timeout: timeout)
        try await server.waitUntilReady(timeout: timeout)
        try await server.psql("CREATE ROLE \(server.user) LOGIN PASSWORD '\(password)' CREATEDB")
        logger.info("private PostgreSQL started", metadata: ["port": "\(port)", "directory": "\(directory)"])
        return server
    }

    private init(directory: String, port: Int, password: String, binDirectory: String, logger: Logger) {
        self.directory = directory
        self.port = port
        self.password = password
        self.binDirectory = binDirectory
        self.process = Mutex(nil)
        self.logger = logger
    }

    /// The cluster's folder.
    public var dataDirectory: String { directory + "/data" }
    /// The server's log.
    public var logPath: String { directory + "/postgres.log" }

    /// `postgresql://kyukyu:…@127.0.0.1:port/<database>`: what the product is configured with.
    public func url(database: String) -> String {
        "postgresql://\(user):\(password)@127.0.0.1:\(port)/\(database)"
    }

    /// Whether the server process runs.
    public var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    /// The postmaster's process id (0 when stopped).
    public var pid: Int32 { process.withLock { $0?.pid ?? 0 } }

    /// Makes an empty database owned by ``user``.
    public func createDatabase(_ name: String) async throws {
        try Self.checkName(name)
        try await psql("CREATE DATABASE \(name) OWNER \(user) TEMPLATE template0")
    }

    /// Drops a database, ending its connections first.
    public func dropDatabase(_ name: String) async throws {
        try Self.checkName(name)
        try await psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs SQL as the superuser over the socket; returns psql's unaligned, tuples-only output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        let result = try await Commands.run(
            binDirectory + "/psql",
            [
                "-h", directory, "-p", "\(port)", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-A",
                "-t", "-q", "-c", sql,
            ],
            timeout: .seconds(60)
        )
        guard result.status == 0 else { throw TestbedError("psql failed: \(result.stderr.suffix(800))") }
        return result.stdout
    }

    /// Stops the server (fast shutdown: open sessions are ended) and waits for it.
    public func stop() {
        process.withLock { $0 }?.stop(signal: SIGINT)
        process.withLock { $0 = nil }
    }

    /// Starts a stopped server again on the same cluster.
    public func restart(timeout: Duration = .seconds(60)) async throws {
        stop()
        try launch(timeout: timeout)
        try await waitUntilReady(timeout: timeout)
    }

    deinit { process.withLock { $0 }?.stop(signal: SIGINT) }

    // MARK: - Private

    private func launch(timeout: Duration) throws {
        let (program, arguments) = Self.asServer(binDirectory + "/postgres", ["-D", dataDirectory])
        let spawned = try Commands.spawn(program, arguments, log: logPath)
        process.withLock { $0 = spawned }
    }

    private func waitUntilReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard isRunning else {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                throw TestbedError("PostgreSQL exited at start: \(log.suffix(800))")
            }
            let ready = try await Commands.run(
                binDirectory + "/pg_isready",
                ["-h", directory, "-p", "\(port)", "-U", "postgres", "-d", "postgres", "-q"],
                timeout: .seconds(10)
            )
            if ready.status == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestbedError("PostgreSQL did not accept connections within \(timeout)")
    }

    /// Stops a server a crashed run left on this folder (its `postmaster.pid`), waiting up to 10 s.
    private static func stopLeftover(directory: String) {
        guard let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
            let line = text.split(separator: "\n").first, let pid = Int32(line), pid > 0, kill(pid, SIGINT) == 0
        else { return }
        let deadline = ContinuousClock.now + .seconds(10)
        while kill(pid, 0) == 0, ContinuousClock.now < deadline { usleep(50_000) }
    }

    private static func checkName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 63,
            name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
        else { throw TestbedError("a database name of 1 to 63 lower-case letters, digits and underscores") }
    }

    /// The command line that runs `program` as the server's user: itself, or through `setpriv` (which execs it) as
    /// Debian's `postgres` user when this process is root.
    private static func asServer(_ program: String, _ arguments: [String]) -> (String, [String]) {
        guard getuid() == 0 else { return (program, arguments) }
        return (
            "/usr/bin/setpriv",
            ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", program] + arguments
        )
    }

    private static func ownByServer(_ path: String) throws {
        guard getuid() == 0, let entry = getpwnam("postgres") else { return }
        guard chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0, chmod(path, 0o700) == 0 else {
            throw TestbedError("cannot give \(path) to the postgres user")
        }
    }
}

/// The postmaster of ``PostgresServer/shared(directory:port:logger:)``, stopped when the process exits.
nonisolated(unsafe) private var sharedPostmaster: Int32 = 0

extension PostgresServer {
    private actor Shared {
        var server: PostgresServer?

        func get(directory: String, port: Int, logger: Logger) async throws -> PostgresServer {
            if let server, server.isRunning { return server }
            let server = try await PostgresServer.start(
                directory: directory,
                port: port,
                settings: ["shared_buffers = 64MB"],
                logger: logger
            )
            self.server = server
            if sharedPostmaster == 0 {
                atexit {
                    if sharedPostmaster > 0 { kill(sharedPostmaster, SIGINT) }
                }
            }
            sharedPostmaster = server.pid
            return server
        }
    }

    private static let sharedServer = Shared()

    /// One server for the whole test process (every suite makes its own databases on it): started at the first call
    /// (the later calls' folder and port are not used), stopped when the process exits.
    public static func shared(directory: String, port: Int, logger: Logger) async throws -> PostgresServer {
        try await sharedServer.get(directory: directory, port: port, logger: logger)
    }
}
