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
}
