import Foundation
import KyukyuDomain
import KyukyuOperations
import KyukyuReceiver
import Logging
import Testing

@Suite("kyukyu-hospital configuration")
struct ConfigurationTests {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
        }
        return "."
    }()

    @Test func theDocumentIsTheCodesDocumentation() throws {
        let path = Self.packageRoot + "/docs/hospital-configuration.md"
        // KYUKYU_REGENERATE_DOCS=1 rewrites the file first (then review and commit the diff).
        if ProcessInfo.processInfo.environment["KYUKYU_REGENERATE_DOCS"] == "1" {
            try HospitalConfiguration.documentation().write(toFile: path, atomically: true, encoding: .utf8)
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            text == HospitalConfiguration.documentation(),
            "regenerate docs/hospital-configuration.md from HospitalConfiguration.documentation()"
        )
    }

    @Test func everyDefaultIsTheDocumentedOne() throws {
        let configuration = try HospitalConfiguration.load(arguments: [], environment: [:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 9443)
        #expect(configuration.stateDirectory == "state/hospital")
        #expect(configuration.hospital.rawValue == "1312345678")
        #expect(configuration.tlsDirectory == "state/hospital/pki")
        #expect(configuration.keepAlive == .seconds(15))
        #expect(configuration.staffSession == .seconds(12 * 3600))
        #expect(configuration.staffMaximumFailures == 5)
        #expect(configuration.logLevel == .info)
        #expect(configuration.logDestination == .auto)
        let documentation = HospitalConfiguration.documentation()
        for (key, value) in [
            ("http.host", "127.0.0.1"), ("http.port", "9443"), ("state.directory", "state/hospital"),
            ("hospital.code", "1312345678"), ("tls.directory", "<state>/pki"), ("events.keep-alive-seconds", "15"),
            ("staff.session-hours", "12"), ("staff.max-failures", "5"), ("log.level", "info"),
            ("log.destination", "auto"),
        ] {
            #expect(documentation.contains("| `\(key)` |") && documentation.contains("| `\(value)` |"), "\(key)")
        }
        #expect(HospitalConfiguration.keyNames.count == 10)
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheFile() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/hospital.json"
        try Data(
            #"{"http": {"port": 10001, "host": "127.0.0.3"}, "hospital.code": "2712345678", "state": {"directory": "/tmp/h"}}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: file))
        let configuration = try HospitalConfiguration.load(
            arguments: ["--config", file, "--http-port", "10003"],
            environment: ["KYUKYU_HOSPITAL_HTTP_PORT": "10002", "KYUKYU_HOSPITAL_HTTP_HOST": "127.0.0.2"]
        )
        #expect(configuration.port == 10003)
        #expect(configuration.host == "127.0.0.2")
        #expect(configuration.hospital.rawValue == "2712345678")
        #expect(configuration.tlsDirectory == "/tmp/h/pki")
    }

    @Test func unknownKeysAndBadValuesAreErrorsThatNameThem() throws {
        #expect(throws: ReceiverError.invalidInput("")) {
            try HospitalConfiguration.load(arguments: ["--http-prot", "1"], environment: [:])
        }
        #expect(throws: ReceiverError.invalidInput("")) {
            try HospitalConfiguration.load(arguments: [], environment: ["KYUKYU_HOSPITAL_HTTP_PROT": "1"])
        }
        do {
            _ = try HospitalConfiguration.load(arguments: ["--hospital-code", "12345"], environment: [:])
            Issue.record("a 5-digit code was accepted")
        } catch {
            #expect(error.reason.contains("hospital.code"))
        }
        #expect(throws: ReceiverError.invalidInput("")) {
            try HospitalConfiguration.load(arguments: ["--events-keep-alive-seconds", "0"], environment: [:])
        }
        #expect(throws: ReceiverError.invalidInput("")) {
            try HospitalConfiguration.load(arguments: ["--config", "/nonexistent/kyukyu.json"], environment: [:])
        }
    }

    @Test func everyProblemIsNamedInOneRun() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/hospital.json"
        try Data(#"{"http": {"port": 0}, "hospital.code": "12345", "log": {"destination": "syslog"}, "extra": 1}"#.utf8)
            .write(to: URL(fileURLWithPath: file))
        do {
            _ = try HospitalConfiguration.load(
                arguments: ["--config", file, "--staff-max-failures", "99"],
                environment: ["KYUKYU_HOSPITAL_HTTP_PROT": "1"]
            )
            Issue.record("a configuration with six problems loaded")
        } catch {
            #expect(error.reason.hasPrefix("6 settings are wrong:\n"))
            for name in [
                "http.port", "hospital.code", "log.destination", "unknown key extra", "staff.max-failures",
                "KYUKYU_HOSPITAL_HTTP_PROT",
            ] {
                #expect(error.reason.contains(name), "\(name)")
            }
        }
    }
}
