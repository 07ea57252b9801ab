import AsyncHTTPClient
import Foundation
import KyukyuEligibility
import KyukyuTestbed
import NIOCore
import NIOHTTP1
import Testing

/// The gateway as systemd runs it, through the real executable: readiness (`READY=1`) once it listens, the watchdog
/// fed at half of `WATCHDOG_USEC`, `STOPPING=1` on SIGTERM, `/metrics` in Prometheus's format with no patient data,
/// and `check-config` explaining every error of a bad file.
@Suite("kyukyu-gateway under systemd's protocol (real process)", .serialized, .timeLimit(.minutes(3)))
struct OperationsProcessTests {
    static let port = Bed.basePort + 160

    /// The next notification, skipping none; `nil` after `attempts` receive timeouts of the sink.
    func next(_ sink: DatagramSink, attempts: Int = 6) -> String? {
        for _ in 0..<attempts {
            if let text = sink.receiveText() { return text }
        }
        return nil
    }

    @Test("READY=1 once listening, WATCHDOG=1 while alive, /metrics, then STOPPING=1 and exit 0 on SIGTERM")
    func readinessWatchdogMetricsAndStop() async throws {
        let files = try OnshiBed.terminalFiles()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-ops-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let sink = try DatagramSink()
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = sink.path
        environment["WATCHDOG_USEC"] = "600000"
        environment["PCSCLITE_CSOCK_NAME"] = state + "/no-pcscd.comm"
        let gateway = try Commands.spawn(
            try Commands.executable("kyukyu-gateway"),
            [
                "serve", "--state-directory", state + "/gateway", "--http-port", String(Self.port),
                "--onshi-url", "https://127.0.0.1:9", "--onshi-tls-directory",
                (files.certificatePath as NSString).deletingLastPathComponent, "--terminal-id", OnshiBed.device,
                "--log-destination", "stderr",
            ],
            log: state + "/gateway.log",
            environment: environment
        )
        let log = { (try? String(contentsOfFile: state + "/gateway.log", encoding: .utf8)) ?? "" }

        // The watchdog is fed from the start (systemd counts from the start too); READY=1 comes once it listens.
        var ready: String?
        for _ in 0..<40 {
            guard let text = next(sink) else { break }
            if text != "WATCHDOG=1" {
                ready = text
                break
            }
        }
        let lines = try #require(ready, "no READY=1 from the gateway: \(log())").split(separator: "\n").map(String.init)
        #expect(lines.first == "READY=1", "\(log())")
        #expect(lines.contains("STATUS=serving the tablet on port \(Self.port)"))
        #expect(lines.contains("MAINPID=\(gateway.pid)"))
        #expect(next(sink) == "WATCHDOG=1")
        #expect(next(sink) == "WATCHDOG=1")

        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let response = try await client.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(Self.port)/metrics"),
            timeout: .seconds(30)
        )
        #expect(response.status == .ok)
        #expect(response.headers["Content-Type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        try await client.shutdown()
        for line in [
            "kyukyu_vault_incidents 0.0", "kyukyu_onshi_breaker_state 0.0", "kyukyu_outbox_depth 0.0",
            "kyukyu_vault_oldest_incident_age_seconds 0.0", "kyukyu_vault_bytes 0.0",
        ] {
            #expect(text.contains(line + "\n"), "\(line) in:\n\(text)")
        }
        #expect(text.contains(#"kyukyu_certificate_expiry_timestamp_seconds{certificate="onshi-terminal"}"#))

        let status = await Task.detached { gateway.stop() }.value
        #expect(status == 0, "\(log())")
        // Whatever watchdog pings were still queued, the last notification is STOPPING=1.
        var last: String?
        while let text = sink.receiveTextNow() { last = text }
        #expect(last?.hasPrefix("STOPPING=1\n") == true, "\(String(describing: last))")
    }

    @Test("check-config names every wrong setting and missing file, exit 78; a good configuration exits 0")
    func checkConfig() async throws {
        let files = try OnshiBed.terminalFiles()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-check-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let bad = folder + "/bad.json"
        try Data(
            #"{"http": {"port": 70000}, "terminal.id": "ambulance 01", "log": {"destination": "syslog"}, "onshi.tls-directory": "/nonexistent/tls", "colour": "red"}"#
                .utf8
        ).write(to: URL(fileURLWithPath: bad))
        let refused = try await Commands.run(
            try Commands.executable("kyukyu-gateway"),
            ["check-config", "--config", bad]
        )
        #expect(refused.status == 78)
        // The settings first: the files they name are checked once the settings are valid.
        #expect(refused.stderr.hasPrefix("4 problems in the configuration:"), "\(refused.stderr)")
        for key in ["http.port: ", "terminal.id: ", "log.destination: ", "colour: "] {
            #expect(refused.stderr.contains("  - " + key), "\(key) in \(refused.stderr)")
        }

        // Valid values, but the onshi folder lacks the files: each missing one is named.
        let missing = try await Commands.run(
            try Commands.executable("kyukyu-gateway"),
            ["check-config", "--onshi-tls-directory", folder, "--state-directory", folder + "/state"]
        )
        #expect(missing.status == 78)
        #expect(missing.stderr.contains("ambulance-01.cert.pem is missing"), "\(missing.stderr)")
        #expect(missing.stderr.contains("ca.cert.pem is missing"))

        let good = try await Commands.run(
            try Commands.executable("kyukyu-gateway"),
            [
                "check-config", "--onshi-tls-directory", (files.certificatePath as NSString).deletingLastPathComponent,
                "--terminal-id", OnshiBed.device, "--state-directory", folder + "/state",
            ]
        )
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("configuration OK"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/state"), "check-config created the state folder")
    }

    @Test("cert request, the CA signs, cert install, SIGHUP: the running gateway uses and reports the renewal")
    func renewalWithoutRestart() async throws {
        let files = try OnshiBed.terminalFiles()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-renew-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        // This test's own copy of the terminal's files (the shared ones stay as they are).
        let tls = state + "/terminal-tls"
        try FileManager.default.createDirectory(atPath: tls, withIntermediateDirectories: true)
        for path in [files.certificatePath, files.keyPath, files.trustRootsPath] {
            try FileManager.default.copyItem(atPath: path, toPath: tls + "/" + (path as NSString).lastPathComponent)
        }
        let configuration = ["--onshi-tls-directory", tls, "--terminal-id", OnshiBed.device]
        let gatewayBinary = try Commands.executable("kyukyu-gateway")
        let notifications = try DatagramSink()
        let gateway = try Commands.spawn(
            gatewayBinary,
            ["serve", "--state-directory", state + "/gateway", "--http-port", String(Self.port + 1)]
                + ["--onshi-url", "https://127.0.0.1:9", "--log-destination", "stderr"] + configuration,
            log: state + "/gateway.log",
            environment: ProcessInfo.processInfo.environment.merging(
                ["PCSCLITE_CSOCK_NAME": state + "/no-pcscd.comm", "NOTIFY_SOCKET": notifications.path]
            ) { $1 }
        )
        let log = { (try? String(contentsOfFile: state + "/gateway.log", encoding: .utf8)) ?? "" }
        // Listening once it says READY=1 (an event with the sink's time limit, no polling).
        #expect(next(notifications)?.hasPrefix("READY=1") == true, "\(log())")
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let expiry = { () async -> String? in
            guard
                let response = try? await client.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(Self.port + 1)/metrics"),
                    timeout: .seconds(5)
                ),
                let body = try? await response.body.collect(upTo: 1 << 20)
            else { return nil }
            return String(buffer: body).split(separator: "\n").first {
                $0.hasPrefix(#"kyukyu_certificate_expiry_timestamp_seconds{certificate="onshi-terminal"}"#)
            }.map(String.init)
        }
        let original = try #require(await expiry(), "the gateway did not serve /metrics: \(log())")

        let request = try await Commands.run(gatewayBinary, ["cert", "request", "onshi"] + configuration)
        #expect(request.status == 0, "\(request.stderr)")
        #expect(request.stdout.hasPrefix("-----BEGIN CERTIFICATE REQUEST-----"))
        try request.stdout.write(toFile: state + "/request.csr", atomically: true, encoding: .utf8)
        let signed = try await Commands.run(
            try Commands.executable("kyukyu-eligibility-sim"),
            [
                "issue-terminal-cert", "--csr", state + "/request.csr", "--out", state + "/issued.pem", "--tls-dir",
                OnshiBed.tlsDirectory, "--days", "20",
            ]
        )
        #expect(signed.status == 0, "\(signed.stderr)")
        let install = try await Commands.run(
            gatewayBinary,
            ["cert", "install", "onshi", state + "/issued.pem"] + configuration
        )
        #expect(install.status == 0, "\(install.stderr)")
        let status = try await Commands.run(gatewayBinary, ["cert", "status"] + configuration)
        #expect(status.status == 1, "20 days left is within the 30-day warning: \(status.stdout)")
        #expect(status.stdout.contains("EXPIRES SOON"))

        // The running gateway: the old certificate until SIGHUP, the new one after, with no restart.
        #expect(await expiry() == original)
        kill(gateway.pid, SIGHUP)
        var after: String?
        for _ in 0..<200 {
            after = await expiry()
            if after != original { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(after != original, "the expiry did not change after SIGHUP: \(log())")
        let value = after.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(abs(value - Date().addingTimeInterval(20 * 86_400).timeIntervalSince1970) < 86_400)
        #expect(gateway.isRunning)
        #expect(log().contains("certificate reloaded for the next connections"))
        #expect(log().contains("a certificate expires soon"))
        try await client.shutdown()
        #expect(await Task.detached { gateway.stop() }.value == 0)
    }
}
