import Foundation
import Synchronization

/// A TCP load balancer in front of a region's hub instances, for tests and `make run-region`: Debian's HAProxy in TCP
/// mode on 127.0.0.1, round robin, a health check every 300 ms, and a connection whose instance refuses it sent to
/// another (`option redispatch`). The hub knows nothing of it: any TCP load balancer does.
public final class TCPLoadBalancer: Sendable {
    /// The port the ambulances and boards connect to.
    public let port: Int
    /// The instances' ports.
    public let upstreams: [Int]
    /// The folder of the configuration and the log.
    public let directory: String
    private let process: Mutex<SpawnedProcess?>

    /// Where HAProxy is installed.
    public static let executable = "/usr/sbin/haproxy"

    /// Why it cannot run here, or nil.
    public static var unavailableReason: String? {
        FileManager.default.isExecutableFile(atPath: executable)
            ? nil : "HAProxy is not installed (Debian's haproxy package; make deps installs it)"
    }

    /// Starts HAProxy on `port` in front of `upstreams` (ports on 127.0.0.1); returns once it accepts connections.
    public static func start(
        port: Int,
        upstreams: [Int],
        directory: String,
        timeout: Duration = .seconds(20)
    ) async throws -> TCPLoadBalancer {
        if let reason = unavailableReason { throw TestbedError(reason) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let servers = upstreams.enumerated().map { index, upstream in
            "    server instance\(index + 1) 127.0.0.1:\(upstream) check inter 300ms fall 2 rise 2"
        }
        let configuration = """
            global
                maxconn 4096
            defaults
                mode tcp
                timeout connect 1s
                timeout client 1h
                timeout server 1h
                timeout tunnel 1h
                retries 3
                option redispatch
            frontend hub
                bind 127.0.0.1:\(port)
                default_backend instances
            backend instances
                balance roundrobin
            \(servers.joined(separator: "\n"))

            """
        let path = directory + "/haproxy.cfg"
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let check = try await Commands.run(executable, ["-c", "-q", "-f", path], timeout: .seconds(20))
        guard check.status == 0 else { throw TestbedError("haproxy -c: \(check.stderr.suffix(500))") }
        let spawned = try Commands.spawn(executable, ["-db", "-f", path], log: directory + "/haproxy.log")
        let balancer = TCPLoadBalancer(port: port, upstreams: upstreams, directory: directory, process: spawned)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard spawned.isRunning else {
                let log = (try? String(contentsOfFile: directory + "/haproxy.log", encoding: .utf8)) ?? ""
                throw TestbedError("HAProxy exited at start: \(log.suffix(500))")
            }
            if PrivatePCSCD.listeningTCPPorts().contains(port) { return balancer }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestbedError("HAProxy did not listen on \(port) within \(timeout)")
    }

    private init(port: Int, upstreams: [Int], directory: String, process: SpawnedProcess) {
        self.port = port
        self.upstreams = upstreams
        self.directory = directory
        self.process = Mutex(process)
    }

    /// Stops HAProxy.
    public func stop() {
        process.withLock { $0 }?.stop()
        process.withLock { $0 = nil }
    }

    deinit { process.withLock { $0 }?.stop() }
}
