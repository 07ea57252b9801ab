import Foundation
import KyukyuDomain
import KyukyuOperations
import KyukyuReceiver
import KyukyuVault
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
        #expect(configuration.placementExpiry == .seconds(3600))
        #expect(configuration.logLevel == .info)
        #expect(configuration.logDestination == .auto)
        #expect(configuration.keySource == .auto)
        #expect(configuration.storageEngine == .sqlite)
        #expect(configuration.postgres == nil)
        #expect(configuration.hospitals == [RegionHospital(code: configuration.hospital, name: nil)])
        let documentation = HospitalConfiguration.documentation()
        for (key, value) in [
            ("http.host", "127.0.0.1"), ("http.port", "9443"), ("state.directory", "state/hospital"),
            ("hospital.code", "1312345678"), ("tls.directory", "<state>/pki"), ("events.keep-alive-seconds", "15"),
            ("staff.session-hours", "12"), ("staff.max-failures", "5"), ("log.level", "info"),
            ("log.destination", "auto"), ("keys.source", "auto"), ("storage.engine", "sqlite"),
            ("storage.postgresql.tls", "auto"), ("storage.postgresql.max-connections", "10"),
            ("placement.expiry-minutes", "60"),
        ] {
            #expect(documentation.contains("| `\(key)` |") && documentation.contains("| `\(value)` |"), "\(key)")
        }
        #expect(HospitalConfiguration.keyNames.count == 19)
    }

    @Test func aRegionsHubOnPostgreSQL() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let password = directory + "/password"
        FileManager.default.createFile(
            atPath: password,
            contents: Data("synthetic-secret\n".utf8),
            attributes: [.posixPermissions: 0o600]
        )
        let hospitals = directory + "/hospitals.json"
        try Data(#"[{"code": "1310000001", "name": "テスト第一病院 (架空)"}, {"code": "1310000002", "name": "二"}]"#.utf8)
            .write(to: URL(fileURLWithPath: hospitals))
        let region = [
            "--storage-engine", "postgresql", "--storage-postgresql-password-file", password, "--region-hospitals",
            hospitals,
        ]
        let configuration = try HospitalConfiguration.load(
            arguments: region + ["--storage-postgresql-url", "postgresql://hub@db.example:6432/region"],
            environment: [:]
        )
        #expect(configuration.storageEngine == .postgresql)
        let settings = try #require(configuration.postgres)
        #expect(settings.host == "db.example" && settings.port == 6432 && settings.database == "region")
        #expect(settings.user == "hub" && settings.password == "synthetic-secret")
        #expect(settings.tls, "TLS is required off loopback")
        #expect(settings.description == "postgresql://hub@db.example:6432/region")
        #expect(configuration.hospitals.map(\.code.rawValue) == ["1310000001", "1310000002"])
        let loopback = try HospitalConfiguration.load(
            arguments: region + ["--storage-postgresql-url", "postgresql://hub@127.0.0.1/region"],
            environment: [:]
        )
        #expect(loopback.postgres?.tls == false)
        #expect(loopback.postgres?.port == 5432)

        // What is wrong is named: a password in the URL, a password file others may read, tenants on SQLite, a
        // hospitals file that repeats a code.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: password)
        try Data(#"[{"code": "1310000001", "name": "一"}, {"code": "1310000001", "name": "二"}]"#.utf8)
            .write(to: URL(fileURLWithPath: hospitals))
        do {
            _ = try HospitalConfiguration.load(
                arguments: region + ["--storage-postgresql-url", "postgresql://hub:pw@db.example/region"],
                environment: [:]
            )
            Issue.record("a wrong region configuration loaded")
        } catch {
            for name in ["holds a password", "may be read by others", "repeats the code"] {
                #expect(error.reason.contains(name), "\(name): \(error.reason)")
            }
            #expect(!error.reason.contains("synthetic-secret") && !error.reason.contains(":pw@"))
        }
        #expect(throws: ReceiverError.invalidInput("")) {
            try HospitalConfiguration.load(arguments: ["--region-hospitals", hospitals], environment: [:])
        }
        #expect(throws: ReceiverError.invalidInput("")) {
            try HospitalConfiguration.load(arguments: ["--storage-engine", "postgresql"], environment: [:])
        }
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

    @Test func thePlacementExpiryIsInMinutesFrom5To1440() throws {
        let set = try HospitalConfiguration.load(arguments: ["--placement-expiry-minutes", "30"], environment: [:])
        #expect(set.placementExpiry == .seconds(1800))
        let fromEnvironment = try HospitalConfiguration.load(
            arguments: [],
            environment: ["KYUKYU_HOSPITAL_PLACEMENT_EXPIRY_MINUTES": "1440"]
        )
        #expect(fromEnvironment.placementExpiry == .seconds(86400))
        for wrong in ["4", "1441", "soon"] {
            do {
                _ = try HospitalConfiguration.load(arguments: ["--placement-expiry-minutes", wrong], environment: [:])
                Issue.record("placement.expiry-minutes \(wrong) loaded")
            } catch {
                #expect(error.reason.contains("placement.expiry-minutes"), "\(error.reason)")
            }
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
