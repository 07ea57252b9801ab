import Foundation
import Logging
import Synchronization

/// A region's hub as real processes, for tests, benchmarks and `make run-region`: a database on a private
/// PostgreSQL, N `kyukyu-hospital serve` instances on it (storage.engine postgresql), and HAProxy in front of them.
/// Made with the product's own commands: `ca init`, `device issue` and `staff add` with `--config`.
public final class RegionHub: Sendable {
    /// A hospital of the region.
    public struct Hospital: Sendable, Hashable {
        /// The 10-digit code.
        public var code: String
        /// Its name (synthetic).
        public var name: String
        /// A tenant.
        public init(code: String, name: String) {
            self.code = code
            self.name = name
        }
    }

    /// A staff account made for the hub.
    public struct Staff: Sendable, Hashable {
        /// The staff ID.
        public var id: String
        /// The hospital it works at.
        public var hospital: String
        /// Its password.
        public var password: String
        /// Its TOTP secret (base32), for ``totp(_:at:)``.
        public var totpSecret: String
    }

    /// The folder: the shared state (keyring, PKI), the configuration, the devices' certificates and the logs.
    public let directory: String
    /// The configuration every instance runs with (`--config`).
    public let configurationPath: String
    /// The instances' ports.
    public let instancePorts: [Int]
    /// The load balancer.
    public let balancer: TCPLoadBalancer
    /// The staff accounts, by ID.
    public let staff: [String: Staff]
    /// The hospitals.
    public let hospitals: [Hospital]
    private let instances: Mutex<[SpawnedProcess?]>
    private let executable: String

    /// The CA every client trusts.
    public var caPath: String { directory + "/state/pki/ca.cert.pem" }
    /// The folder with `<device>.cert.pem` and `<device>.key.pem` of every device, and the CA's `ca.cert.pem`.
    public func deviceDirectory(_ device: String) -> String { directory + "/devices" }
    /// The balancer's URL, which ambulances and boards use.
    public var url: String { "https://127.0.0.1:\(balancer.port)" }
    /// One instance's URL.
    public func url(instance: Int) -> String { "https://127.0.0.1:\(instancePorts[instance])" }

    /// Makes the region and starts it.
    ///
    /// - Parameters:
    ///   - postgres: The server; a database `database` is made on it.
    ///   - instances: How many hub instances.
    ///   - basePort: The balancer's port; the instances take the next ones.
    ///   - devices: Ambulances to issue certificates to.
    ///   - staff: Staff accounts to make: (ID, hospital code).
    public static func start(
        directory: String,
        postgres: PostgresServer,
        database: String,
        hospitals: [Hospital],
        instances: Int,
        basePort: Int,
        devices: [String],
        staff: [(id: String, hospital: String)],
        logLevel: String = "info"
    ) async throws -> RegionHub {
        let fm = FileManager.default
        try? fm.removeItem(atPath: directory)
        try fm.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        try await postgres.createDatabase(database)
        let executable = try Commands.executable("kyukyu-hospital")
        let hospitalsFile = directory + "/hospitals.json"
        let list = hospitals.map { ["code": $0.code, "name": $0.name] }
        try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: hospitalsFile))
        let passwordFile = directory + "/postgres-password"
        fm.createFile(
            atPath: passwordFile,
            contents: Data((postgres.password + "\n").utf8),
            attributes: [
                .posixPermissions: 0o600
            ]
        )
        let configuration: [String: Any] = [
            "storage": [
                "engine": "postgresql",
                "postgresql": [
                    "url": "postgresql://\(postgres.user)@127.0.0.1:\(postgres.port)/\(database)",
                    "password-file": passwordFile,
                ],
            ],
            "region": ["hospitals": hospitalsFile],
            "hospital": ["code": hospitals[0].code],
            "state": ["directory": directory + "/state"],
            "keys": ["source": "file"],
            "log": ["level": logLevel, "destination": "stderr"],
        ]
        let configurationPath = directory + "/hub.json"
        try JSONSerialization.data(withJSONObject: configuration, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: configurationPath))

        func run(_ arguments: [String], stdin: String? = nil) async throws -> String {
            let result = try await Commands.run(executable, arguments, stdin: stdin, timeout: .seconds(120))
            guard result.status == 0 else {
                throw TestbedError("kyukyu-hospital \(arguments.prefix(2).joined(separator: " ")): \(result.stderr)")
            }
            return result.stdout
        }
        _ = try await run(["ca", "init", "--config", configurationPath, "--hospital", hospitals[0].code])
        for device in devices {
            _ = try await run([
                "device", "issue", "--config", configurationPath, "--device", device, "--out", directory + "/devices",
            ])
        }
        var accounts: [String: Staff] = [:]
        for (id, hospital) in staff {
            let password = "synthetic staff password \(id.lowercased())"
            let output = try await run(
                ["staff", "add", id, "--config", configurationPath, "--hospital", hospital],
                stdin: password + "\n"
            )
            guard
                let secret = output.split(separator: "\n").first(where: { $0.hasPrefix("TOTP secret (base32): ") })?
                    .split(separator: " ").last.map(String.init)
            else { throw TestbedError("staff add printed no TOTP secret") }
            accounts[id] = Staff(id: id, hospital: hospital, password: password, totpSecret: secret)
        }
        let ports = (1...instances).map { basePort + $0 }
        // The instances first: HAProxy takes servers that answer at its start as up, while one that it has seen
        // down must pass two checks before it gets connections.
        var processes: [SpawnedProcess] = []
        do {
            for (index, port) in ports.enumerated() {
                processes.append(
                    try await spawnInstance(
                        executable: executable,
                        configurationPath: configurationPath,
                        port: port,
                        log: directory + "/instance-\(index + 1).log",
                        name: "hub instance \(index + 1)"
                    )
                )
            }
        } catch {
            for process in processes { process.stop() }
            throw error
        }
        let balancer: TCPLoadBalancer
        do {
            balancer = try await TCPLoadBalancer.start(
                port: basePort,
                upstreams: ports,
                directory: directory + "/balancer"
            )
        } catch {
            for process in processes { process.stop() }
            throw error
        }
        let hub = RegionHub(
            directory: directory,
            configurationPath: configurationPath,
            instancePorts: ports,
            balancer: balancer,
            staff: accounts,
            hospitals: hospitals,
            executable: executable
        )
        hub.instances.withLock { $0 = processes }
        return hub
    }

    /// Starts `kyukyu-hospital serve` with the hub's configuration on `port`; returns once it listens.
    private static func spawnInstance(
        executable: String,
        configurationPath: String,
        port: Int,
        log: String,
        name: String,
        timeout: Duration = .seconds(60)
    ) async throws -> SpawnedProcess {
        let process = try Commands.spawn(
            executable,
            ["serve", "--config", configurationPath, "--http-port", String(port)],
            log: log
        )
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw TestbedError("\(name) exited: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            if PrivatePCSCD.listeningTCPPorts().contains(port) { return process }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.stop(signal: SIGKILL)
        throw TestbedError("\(name) did not listen on \(port) within \(timeout)")
    }

    private init(
        directory: String,
        configurationPath: String,
        instancePorts: [Int],
        balancer: TCPLoadBalancer,
        staff: [String: Staff],
        hospitals: [Hospital],
        executable: String
    ) {
        self.directory = directory
        self.configurationPath = configurationPath
        self.instancePorts = instancePorts
        self.balancer = balancer
        self.staff = staff
        self.hospitals = hospitals
        self.executable = executable
        self.instances = Mutex(Array(repeating: nil, count: instancePorts.count))
    }

    /// Starts instance `index` again and returns once it listens (HAProxy sends it connections after two passed
    /// checks, about 0.6 s later).
    public func startInstance(_ index: Int, timeout: Duration = .seconds(60)) async throws {
        let process = try await Self.spawnInstance(
            executable: executable,
            configurationPath: configurationPath,
            port: instancePorts[index],
            log: directory + "/instance-\(index + 1).log",
            name: "hub instance \(index + 1)",
            timeout: timeout
        )
        instances.withLock { $0[index] = process }
    }

    /// Kills instance `index` with SIGKILL: no shutdown of any kind.
    public func kill(_ index: Int) {
        let process = instances.withLock { instances in
            defer { instances[index] = nil }
            return instances[index]
        }
        process?.stop(signal: SIGKILL)
    }

    /// Whether instance `index` runs.
    public func isRunning(_ index: Int) -> Bool { instances.withLock { $0[index]?.isRunning ?? false } }

    /// An instance's log.
    public func log(_ index: Int) -> String {
        (try? String(contentsOfFile: directory + "/instance-\(index + 1).log", encoding: .utf8)) ?? ""
    }

    /// Stops every instance (SIGTERM) and the balancer.
    public func stop() {
        let all = instances.withLock { instances in
            defer { instances = instances.map { _ in nil } }
            return instances
        }
        for process in all { process?.stop() }
        balancer.stop()
    }

    deinit { stop() }
}
