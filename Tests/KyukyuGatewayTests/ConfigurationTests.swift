import Foundation
import KyukyuDomain
import KyukyuOperations
import KyukyuVault
import KyukyuWorkflow
import Logging
import Testing

@testable import KyukyuGateway

// MARK: - Support

/// A fresh folder under the system's temporary folder, removed afterwards.
private func withTemporaryFolder<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = FileManager.default.temporaryDirectory.path + "/kyukyu-config-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// The permission bits of a file or folder.
private func permissionBits(_ path: String) throws -> Int {
    try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
}

/// Loads with `arguments`, `environment`, and `json` written to a file in `folder` (when given).
private func load(
    _ arguments: [String] = [],
    environment: [String: String] = [:],
    json: String? = nil,
    in folder: String
) async throws(GatewayConfigurationError) -> GatewayConfiguration {
    var file: String?
    if let json {
        let path = folder + "/gateway-\(UUID().uuidString).json"
        FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        file = path
    }
    return try await GatewayConfiguration.load(arguments: arguments, environment: environment, file: file)
}

/// Expects loading to fail with `code` on `key` from `source`, with a reason that names `mentions`.
private func expectFailure(
    _ arguments: [String] = [],
    environment: [String: String] = [:],
    json: String? = nil,
    code: GatewayConfigurationError.Code,
    key: String?,
    source: GatewayConfiguration.Source?,
    mentions: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    try await withTemporaryFolder { folder in
        do throws(GatewayConfigurationError) {
            let configuration = try await load(arguments, environment: environment, json: json, in: folder)
            Issue.record("loaded \(configuration.http) instead of failing", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.key == key, "\(error)", sourceLocation: sourceLocation)
            #expect(error.source == source, "\(error)", sourceLocation: sourceLocation)
            for text in mentions {
                #expect(
                    error.description.contains(text),
                    "\(error) does not mention \(text)",
                    sourceLocation: sourceLocation
                )
            }
        }
    }
}

/// A key's loaded value, written as the documentation and the samples write it.
private func rendered(_ configuration: GatewayConfiguration, _ key: String) -> String {
    func milliseconds(_ duration: Duration) -> String {
        String(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
    func seconds(_ duration: Duration, per unit: Int64 = 1) -> String {
        String(duration.components.seconds / unit)
    }
    switch key {
    case "http.host": return configuration.http.host
    case "http.port": return String(configuration.http.port)
    case "http.tls.certificate": return configuration.http.tls.certificatePath ?? "none"
    case "http.tls.key": return configuration.http.tls.keyPath ?? "none"
    case "http.tls.generate": return String(configuration.http.tls.generate)
    case "state.directory": return configuration.stateDirectory
    case "terminal.id": return configuration.terminal.id
    case "terminal.institution-code": return configuration.terminal.institutionCode
    case "vault.path": return configuration.vault.path
    case "vault.key-source": return configuration.vault.keySource.rawValue
    case "vault.max-age-hours": return seconds(configuration.vault.maximumAge, per: 3600)
    case "vault.purge-interval-seconds": return seconds(configuration.vault.purgeInterval)
    case "crew.database": return configuration.crew.databasePath
    case "crew.session-hours": return seconds(configuration.crew.sessionLength, per: 3600)
    case "crew.idle-lock-seconds": return seconds(configuration.crew.idleLock)
    case "crew.max-failures": return String(configuration.crew.maximumFailures)
    case "onshi.url": return configuration.onshi.url
    case "onshi.tls-directory": return configuration.onshi.tlsDirectory
    case "onshi.pool-connections": return String(configuration.onshi.poolConnections)
    case "fetch.deadline-ms": return milliseconds(configuration.fetch.deadline)
    case "fetch.category-deadline-ms": return milliseconds(configuration.fetch.categoryDeadline)
    case "fetch.retry-initial-ms": return milliseconds(configuration.fetch.retryInitial)
    case "fetch.retry-max-ms": return milliseconds(configuration.fetch.retryMaximum)
    case "reader.name": return configuration.reader.name ?? "none"
    case "reader.poll-ms": return milliseconds(configuration.reader.pollInterval)
    case "dispatch.token-file": return configuration.dispatch.tokenFile ?? "none"
    case "handoff.hospitals": return configuration.handoff.hospitalsFile ?? "none"
    case "handoff.tls-directory": return configuration.handoff.tlsDirectory
    case "log.level": return configuration.logLevel.rawValue
    case "log.destination": return configuration.logDestination.rawValue
    default:
        Issue.record("no rendering for \(key): add it here")
        return ""
    }
}

/// The keys that must be set together with `key` for its sample to load.
private func companions(of key: GatewayConfigurationKey) -> [GatewayConfigurationKey] {
    switch key.name {
    case "http.tls.certificate": [.httpTLSKey]
    case "http.tls.key": [.httpTLSCertificate]
    default: []
    }
}

/// A JSON literal for a key's sample, typed as the file wants it.
private func jsonLiteral(_ key: GatewayConfigurationKey, _ value: String) -> String {
    switch key.type {
    case .string: "\"\(value)\""
    case .integer, .boolean: value
    }
}

// MARK: - Loading and precedence

@Suite("Gateway configuration: loading and precedence")
struct ConfigurationLoadingTests {
    @Test("with nothing set, every key has the default the documentation gives")
    func defaults() async throws {
        #expect(!FileManager.default.fileExists(atPath: GatewayConfiguration.defaultFilePath))
        let configuration = try await GatewayConfiguration.load(arguments: [], environment: [:])
        for key in GatewayConfigurationKey.all {
            let expected = key.defaultText.replacingOccurrences(of: "<state>", with: "state/gateway")
            #expect(rendered(configuration, key.name) == expected, "\(key.name)")
            #expect(configuration.source(of: key.name) == .embeddedDefault, "\(key.name)")
            #expect(key.sample != key.defaultText, "\(key.name): the sample must differ from the default")
        }
        #expect(!configuration.servesTLS)
        #expect(configuration.listensOnLoopback)
        #expect(configuration.vault.keySource == .auto)
        #expect(configuration.logLevel == .info)
    }

    @Test("a flag beats the environment, which beats the file, which beats the default")
    func precedence() async throws {
        try await withTemporaryFolder { folder in
            let json = #"{"http": {"port": 1001}, "crew.idle-lock-seconds": 301}"#
            let environment = ["KYUKYU_GATEWAY_HTTP_PORT": "1002", "KYUKYU_GATEWAY_CREW_IDLE_LOCK_SECONDS": "302"]
            let all = try await load(["--http-port", "1003"], environment: environment, json: json, in: folder)
            #expect(all.http.port == 1003)
            #expect(all.source(of: "http.port") == .flag)
            #expect(all.crew.idleLock == .seconds(302))
            #expect(all.source(of: "crew.idle-lock-seconds") == .environment)

            let noFlag = try await load(environment: environment, json: json, in: folder)
            #expect(noFlag.http.port == 1002)
            #expect(noFlag.source(of: "http.port") == .environment)

            let fileOnly = try await load(json: json, in: folder)
            #expect(fileOnly.http.port == 1001)
            #expect(fileOnly.source(of: "http.port") == .file)
            #expect(fileOnly.crew.idleLock == .seconds(301))

            let inlineFlag = try await load(["--http-port=1004"], environment: environment, json: json, in: folder)
            #expect(inlineFlag.http.port == 1004)
        }
    }

    @Test(
        "every key is set by its documented flag, environment variable and file key",
        arguments: [GatewayConfiguration.Source.flag, .environment, .file]
    )
    func everyKeyThroughEverySource(source: GatewayConfiguration.Source) async throws {
        try await withTemporaryFolder { folder in
            for key in GatewayConfigurationKey.all {
                let keys = [key] + companions(of: key)
                var arguments: [String] = []
                var environment: [String: String] = [:]
                var json: String?
                switch source {
                case .flag:
                    arguments = keys.flatMap { [$0.flagName, $0.sample] }
                case .environment:
                    environment = Dictionary(uniqueKeysWithValues: keys.map { ($0.environmentName, $0.sample) })
                default:
                    json =
                        "{" + keys.map { "\"\($0.name)\": \(jsonLiteral($0, $0.sample))" }.joined(separator: ", ")
                        + "}"
                }
                let configuration = try await load(arguments, environment: environment, json: json, in: folder)
                #expect(rendered(configuration, key.name) == key.sample, "\(key.name) from the \(source)")
                #expect(configuration.source(of: key.name) == source, "\(key.name)")
            }
        }
    }

    @Test("nested and dotted keys in the file mean the same; booleans accept yes/no in the environment")
    func fileShapesAndBooleans() async throws {
        try await withTemporaryFolder { folder in
            let nested = try await load(json: #"{"http": {"tls": {"generate": false}}}"#, in: folder)
            let dotted = try await load(json: #"{"http.tls.generate": false}"#, in: folder)
            #expect(!nested.http.tls.generate)
            #expect(!dotted.http.tls.generate)
            let environment = try await load(environment: ["KYUKYU_GATEWAY_HTTP_TLS_GENERATE": "no"], in: folder)
            #expect(!environment.http.tls.generate)
            let bareFlag = try await load(
                ["--http-tls-generate"],
                environment: ["KYUKYU_GATEWAY_HTTP_TLS_GENERATE": "false"],
                in: folder
            )
            #expect(bareFlag.http.tls.generate)
        }
    }

    @Test("an empty value turns an optional key back to none")
    func emptyOptional() async throws {
        try await withTemporaryFolder { folder in
            let configuration = try await load(
                environment: ["KYUKYU_GATEWAY_DISPATCH_TOKEN_FILE": ""],
                json: #"{"dispatch": {"token-file": "/etc/token"}, "reader.name": "Reader A"}"#,
                in: folder
            )
            #expect(configuration.dispatch.tokenFile == nil)
            #expect(configuration.reader.name == "Reader A")
        }
    }

    @Test("the state folder moves the derived defaults with it")
    func derivedDefaults() async throws {
        try await withTemporaryFolder { folder in
            let configuration = try await load(["--state-directory", folder + "/s"], in: folder)
            #expect(configuration.vault.path == folder + "/s/vault.sqlite")
            #expect(configuration.crew.databasePath == folder + "/s/crew.sqlite")
            #expect(configuration.generatedTLSDirectory == folder + "/s/tls")
        }
    }

    @Test("the file is named by the call, by --config or by KYUKYU_GATEWAY_CONFIG, in that order")
    func fileSelection() async throws {
        try await withTemporaryFolder { folder in
            let first = folder + "/first.json"
            let second = folder + "/second.json"
            let third = folder + "/third.json"
            FileManager.default.createFile(atPath: first, contents: Data(#"{"http.port": 1111}"#.utf8))
            FileManager.default.createFile(atPath: second, contents: Data(#"{"http.port": 2222}"#.utf8))
            FileManager.default.createFile(atPath: third, contents: Data(#"{"http.port": 3333}"#.utf8))
            let environment = [GatewayConfiguration.fileEnvironmentVariable: third]
            let byCall = try await GatewayConfiguration.load(
                arguments: ["--config", second],
                environment: environment,
                file: first
            )
            #expect(byCall.http.port == 1111)
            let byFlag = try await GatewayConfiguration.load(
                arguments: ["--config=" + second],
                environment: environment
            )
            #expect(byFlag.http.port == 2222)
            let byEnvironment = try await GatewayConfiguration.load(arguments: [], environment: environment)
            #expect(byEnvironment.http.port == 3333)
        }
    }
}

// MARK: - Errors

/// One value that must be refused.
struct RefusedValue: Sendable, CustomTestStringConvertible {
    var arguments: [String] = []
    var environment: [String: String] = [:]
    var json: String?
    var key: String
    var source: GatewayConfiguration.Source
    var mentions: [String]

    var testDescription: String { "\(self.key) from the \(self.source): \(self.mentions.joined(separator: ", "))" }

    static let all: [RefusedValue] = [
        .init(arguments: ["--http-port", "0"], key: "http.port", source: .flag, mentions: ["--http-port", "1-65535"]),
        .init(
            environment: ["KYUKYU_GATEWAY_HTTP_PORT": "65536"],
            key: "http.port",
            source: .environment,
            mentions: ["KYUKYU_GATEWAY_HTTP_PORT", "1-65535"]
        ),
        .init(
            environment: ["KYUKYU_GATEWAY_HTTP_PORT": "eighty"],
            key: "http.port",
            source: .environment,
            mentions: ["KYUKYU_GATEWAY_HTTP_PORT", "integer"]
        ),
        .init(
            json: #"{"http": {"port": "8443"}}"#,
            key: "http.port",
            source: .file,
            mentions: ["http.port", "integer"]
        ),
        .init(arguments: ["--http-host", "not a host!"], key: "http.host", source: .flag, mentions: ["host name"]),
        .init(
            environment: ["KYUKYU_GATEWAY_HTTP_TLS_GENERATE": "maybe"],
            key: "http.tls.generate",
            source: .environment,
            mentions: ["true or false"]
        ),
        .init(
            arguments: ["--http-tls-certificate", "/etc/c.pem"],
            key: "http.tls.key",
            source: .flag,
            mentions: ["set both or neither"]
        ),
        .init(
            environment: ["KYUKYU_GATEWAY_HTTP_TLS_KEY": "/etc/k.pem"],
            key: "http.tls.certificate",
            source: .environment,
            mentions: ["set both or neither"]
        ),
        .init(json: #"{"state": {"directory": ""}}"#, key: "state.directory", source: .file, mentions: ["path"]),
        .init(arguments: ["--terminal-id", "ambulance 01"], key: "terminal.id", source: .flag, mentions: ["1-64"]),
        .init(
            environment: ["KYUKYU_GATEWAY_TERMINAL_INSTITUTION_CODE": "123456789"],
            key: "terminal.institution-code",
            source: .environment,
            mentions: ["10 digits"]
        ),
        .init(
            json: #"{"terminal": {"institution-code": 1312345678}}"#,
            key: "terminal.institution-code",
            source: .file,
            mentions: ["string"]
        ),
        .init(
            arguments: ["--vault-key-source", "tpm"],
            key: "vault.key-source",
            source: .flag,
            mentions: ["auto, file or credential"]
        ),
        .init(
            arguments: ["--vault-max-age-hours", "0"],
            key: "vault.max-age-hours",
            source: .flag,
            mentions: ["1-168"]
        ),
        .init(
            environment: ["KYUKYU_GATEWAY_VAULT_PURGE_INTERVAL_SECONDS": "3601"],
            key: "vault.purge-interval-seconds",
            source: .environment,
            mentions: ["1-3600"]
        ),
        .init(json: #"{"crew.session-hours": 25}"#, key: "crew.session-hours", source: .file, mentions: ["1-24"]),
        .init(
            arguments: ["--crew-idle-lock-seconds", "10"],
            key: "crew.idle-lock-seconds",
            source: .flag,
            mentions: ["30-3600"]
        ),
        .init(arguments: ["--crew-max-failures", "0"], key: "crew.max-failures", source: .flag, mentions: ["1-20"]),
        .init(
            environment: ["KYUKYU_GATEWAY_ONSHI_URL": "http://127.0.0.1:18443"],
            key: "onshi.url",
            source: .environment,
            mentions: ["https only"]
        ),
        .init(arguments: ["--onshi-url", "https://"], key: "onshi.url", source: .flag, mentions: ["https URL"]),
        .init(
            json: #"{"onshi": {"url": "https://a.invalid/?x=1"}}"#,
            key: "onshi.url",
            source: .file,
            mentions: ["query"]
        ),
        .init(
            arguments: ["--onshi-pool-connections", "33"],
            key: "onshi.pool-connections",
            source: .flag,
            mentions: ["1-32"]
        ),
        .init(
            environment: ["KYUKYU_GATEWAY_ONSHI_POOL_CONNECTIONS": "0"],
            key: "onshi.pool-connections",
            source: .environment,
            mentions: ["1-32"]
        ),
        .init(
            arguments: ["--fetch-deadline-ms", "0"],
            key: "fetch.deadline-ms",
            source: .flag,
            mentions: ["1-120000"]
        ),
        .init(
            json: #"{"fetch": {"deadline-ms": 120001}}"#,
            key: "fetch.deadline-ms",
            source: .file,
            mentions: ["1-120000"]
        ),
        .init(
            arguments: ["--fetch-category-deadline-ms", "2000"],
            key: "fetch.category-deadline-ms",
            source: .flag,
            mentions: ["at least fetch.deadline-ms", "3000"]
        ),
        .init(
            environment: ["KYUKYU_GATEWAY_FETCH_RETRY_INITIAL_MS": "50"],
            key: "fetch.retry-initial-ms",
            source: .environment,
            mentions: ["100-600000"]
        ),
        .init(
            arguments: ["--fetch-retry-max-ms", "1000"],
            key: "fetch.retry-max-ms",
            source: .flag,
            mentions: ["at least fetch.retry-initial-ms", "2000"]
        ),
        .init(arguments: ["--reader-poll-ms", "10"], key: "reader.poll-ms", source: .flag, mentions: ["50-10000"]),
        .init(
            environment: ["KYUKYU_GATEWAY_LOG_LEVEL": "verbose"],
            key: "log.level",
            source: .environment,
            mentions: ["trace, debug, info, notice, warning, error or critical"]
        ),
        .init(arguments: ["--http-port", "1", "2"], key: "2", source: .flag, mentions: ["unexpected argument"]),
    ]
}

@Suite("Gateway configuration: errors")
struct ConfigurationErrorTests {
    @Test("a refused value names the key, the source and what is allowed", arguments: RefusedValue.all)
    func refused(_ value: RefusedValue) async throws {
        let code: GatewayConfigurationError.Code = value.key == "2" ? .unknownKey : .invalidValue
        try await expectFailure(
            value.arguments,
            environment: value.environment,
            json: value.json,
            code: code,
            key: value.key,
            source: value.source,
            mentions: value.mentions
        )
    }

    @Test("an unknown key in the file is reported, nested or dotted")
    func unknownFileKey() async throws {
        try await expectFailure(
            json: #"{"http": {"prot": 8443}}"#,
            code: .unknownKey,
            key: "http.prot",
            source: .file,
            mentions: ["unknown key http.prot"]
        )
        try await expectFailure(
            json: #"{"vault.max-age": 3}"#,
            code: .unknownKey,
            key: "vault.max-age",
            source: .file
        )
        try await expectFailure(
            json: #"{"http": {"port": {"value": 1}}}"#,
            code: .unknownKey,
            key: "http.port.value",
            source: .file
        )
    }

    @Test("an unknown flag or KYUKYU_GATEWAY_ variable is reported; other variables are not read")
    func unknownFlagAndVariable() async throws {
        try await expectFailure(["--http-prot", "1"], code: .unknownKey, key: "--http-prot", source: .flag)
        try await expectFailure(["-p", "1"], code: .unknownKey, key: "-p", source: .flag)
        try await expectFailure(
            environment: ["KYUKYU_GATEWAY_HTTP_PROT": "1"],
            code: .unknownKey,
            key: "KYUKYU_GATEWAY_HTTP_PROT",
            source: .environment
        )
        try await withTemporaryFolder { folder in
            let configuration = try await load(environment: ["HTTP_PORT": "1", "KYUKYU_STATE_DIR": "x"], in: folder)
            #expect(configuration.http.port == 8443)
        }
    }

    @Test("a named file must exist and hold a JSON object; a missing default file is fine")
    func fileProblems() async throws {
        try await withTemporaryFolder { folder in
            let missing = folder + "/missing.json"
            for (arguments, environment, file) in [
                ([String](), [String: String](), Optional(missing)),
                (["--config", missing], [:], nil),
                ([], [GatewayConfiguration.fileEnvironmentVariable: missing], nil),
            ] {
                await #expect(throws: GatewayConfigurationError.unreadableFile(reason: "")) {
                    try await GatewayConfiguration.load(arguments: arguments, environment: environment, file: file)
                }
            }
            let malformed = folder + "/malformed.json"
            FileManager.default.createFile(atPath: malformed, contents: Data(#"{"http": "#.utf8))
            await #expect(throws: GatewayConfigurationError.unreadableFile(reason: "")) {
                try await GatewayConfiguration.load(arguments: [], environment: [:], file: malformed)
            }
            let array = folder + "/array.json"
            FileManager.default.createFile(atPath: array, contents: Data("[1, 2]".utf8))
            await #expect(throws: GatewayConfigurationError.unreadableFile(reason: "")) {
                try await GatewayConfiguration.load(arguments: [], environment: [:], file: array)
            }
            await #expect(throws: GatewayConfigurationError.unreadableFile(reason: "")) {
                try await GatewayConfiguration.load(arguments: [], environment: [:], file: folder)
            }
        }
        try await expectFailure(["--config"], code: .invalidValue, key: "--config", source: .flag)
    }
}

// MARK: - The listening policy

@Suite("Gateway configuration: the listening policy")
struct ConfigurationListeningPolicyTests {
    @Test(
        "loopback may serve plain HTTP, even with certificate generation off",
        arguments: ["127.0.0.1", "127.45.6.7", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]
    )
    func loopback(host: String) async throws {
        try await withTemporaryFolder { folder in
            let configuration = try await load(["--http-host", host, "--http-tls-generate=false"], in: folder)
            #expect(configuration.listensOnLoopback)
            #expect(!configuration.servesTLS)
            #expect(try configuration.tlsMaterial() == nil)
        }
    }

    @Test(
        "any other address without a certificate and with generation off is refused, saying so",
        arguments: ["0.0.0.0", "::", "192.0.2.10", "128.0.0.1", "gateway.local", "2001:db8::1"]
    )
    func nonLoopbackRefused(host: String) async throws {
        try await expectFailure(
            ["--http-host", host],
            environment: ["KYUKYU_GATEWAY_HTTP_TLS_GENERATE": "false"],
            code: .listeningPolicy,
            key: "http.host",
            source: .flag,
            mentions: [
                "http.tls.generate is false and no certificate is configured", host, "only over TLS",
                "environment variable KYUKYU_GATEWAY_HTTP_TLS_GENERATE",
            ]
        )
    }

    @Test("any other address serves TLS: with generation on, or with a configured certificate")
    func nonLoopbackServesTLS() async throws {
        try await withTemporaryFolder { folder in
            let generated = try await load(["--http-host", "0.0.0.0"], in: folder)
            #expect(generated.servesTLS)
            #expect(!generated.listensOnLoopback)
            let configured = try await load(
                ["--http-host", "192.0.2.10", "--http-tls-generate=false"],
                json: #"{"http": {"tls": {"certificate": "/etc/c.pem", "key": "/etc/k.pem"}}}"#,
                in: folder
            )
            #expect(configured.servesTLS)
            let loopbackWithCertificate = try await load(
                json: #"{"http": {"tls": {"certificate": "/etc/c.pem", "key": "/etc/k.pem"}}}"#,
                in: folder
            )
            #expect(loopbackWithCertificate.servesTLS)
        }
    }
}

// MARK: - TLS material and the state folder

@Suite("Gateway configuration: TLS material and the state folder")
struct ConfigurationTLSTests {
    @Test("a generated certificate is made once with a 0600 key, covers the address, and is reused")
    func generatedAndReused() async throws {
        try await withTemporaryFolder { folder in
            let state = folder + "/state"
            let configuration = try await load(["--http-host", "192.0.2.10", "--state-directory", state], in: folder)
            let now = Date()
            let first = try #require(try configuration.tlsMaterial(now: now))
            #expect(first.generated)
            #expect(first.keyPath == state + "/tls/gateway.key.pem")
            #expect(try permissionBits(first.keyPath) == 0o600)
            #expect(try permissionBits(state + "/tls") == 0o700)
            #expect(try permissionBits(state) == 0o700)
            #expect(first.subjectAlternativeNames?.contains("IP:192.0.2.10") == true)
            #expect(first.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
            #expect(try configuration.serverTLSConfiguration(now: now) != nil)

            let second = try #require(try configuration.tlsMaterial(now: now.addingTimeInterval(86400)))
            #expect(!second.generated)
            #expect(second.certificatePEM == first.certificatePEM)
            #expect(second.keyPEM == first.keyPEM)

            // Another address is not covered: a new certificate.
            let moved = try await load(["--http-host", "192.0.2.11", "--state-directory", state], in: folder)
            let third = try #require(try moved.tlsMaterial(now: now))
            #expect(third.generated)
            #expect(third.subjectAlternativeNames?.contains("IP:192.0.2.11") == true)
            #expect(try permissionBits(third.keyPath) == 0o600)

            // Close to expiry: renewed.
            let expiry = try #require(third.notValidAfter)
            let late = try #require(try moved.tlsMaterial(now: expiry.addingTimeInterval(-86400)))
            #expect(late.generated)
            #expect(late.keyPEM != third.keyPEM)
        }
    }

    @Test("a generated certificate for a host name carries the name")
    func generatedForName() async throws {
        try await withTemporaryFolder { folder in
            let configuration = try await load(
                ["--http-host", "gateway.local", "--state-directory", folder + "/state"],
                in: folder
            )
            let material = try #require(try configuration.tlsMaterial())
            #expect(material.subjectAlternativeNames?.contains("DNS:gateway.local") == true)
        }
    }

    @Test("a generated certificate for every address carries the interfaces' addresses, loopback included")
    func generatedForWildcard() async throws {
        try await withTemporaryFolder { folder in
            let configuration = try await load(
                ["--http-host", "0.0.0.0", "--state-directory", folder + "/state"],
                in: folder
            )
            let material = try #require(try configuration.tlsMaterial())
            let names = try #require(material.subjectAlternativeNames)
            #expect(names.contains("IP:127.0.0.1"), "\(names)")
            #expect(!names.contains("IP:0.0.0.0"), "\(names)")
            // Reused although the address is a wildcard.
            #expect(try configuration.tlsMaterial()?.generated == false)
        }
    }

    @Test("a generated key that others can read is refused, not silently replaced")
    func generatedKeyTooOpen() async throws {
        try await withTemporaryFolder { folder in
            let configuration = try await load(
                ["--http-host", "192.0.2.10", "--state-directory", folder + "/state"],
                in: folder
            )
            let material = try #require(try configuration.tlsMaterial())
            #expect(chmod(material.keyPath, 0o644) == 0)
            #expect(throws: GatewayConfigurationError.tlsMaterial(key: "http.tls.generate", reason: "")) {
                try configuration.tlsMaterial()
            }
        }
    }

    @Test("a configured certificate is read and checked: private key file, parseable, matching pair")
    func configured() async throws {
        try await withTemporaryFolder { folder in
            // Make a real pair with the generator, then configure it.
            let maker = try await load(["--http-host", "192.0.2.10", "--state-directory", folder + "/a"], in: folder)
            let pair = try #require(try maker.tlsMaterial())
            let other = try await load(["--http-host", "192.0.2.10", "--state-directory", folder + "/b"], in: folder)
            let otherPair = try #require(try other.tlsMaterial())

            let flags = ["--http-tls-certificate", pair.certificatePath, "--http-tls-key", pair.keyPath]
            let configuration = try await load(flags + ["--http-host", "0.0.0.0"], in: folder)
            let material = try #require(try configuration.tlsMaterial())
            #expect(!material.generated)
            #expect(material.certificatePEM == pair.certificatePEM)
            #expect(try configuration.serverTLSConfiguration() != nil)

            let mismatched = try await load(
                ["--http-tls-certificate", pair.certificatePath, "--http-tls-key", otherPair.keyPath],
                in: folder
            )
            #expect(throws: GatewayConfigurationError.tlsMaterial(key: "http.tls.key", reason: "")) {
                try mismatched.tlsMaterial()
            }

            let garbage = folder + "/garbage.pem"
            FileManager.default.createFile(atPath: garbage, contents: Data("not a certificate".utf8))
            let unparseable = try await load(
                ["--http-tls-certificate", garbage, "--http-tls-key", pair.keyPath],
                in: folder
            )
            #expect(throws: GatewayConfigurationError.tlsMaterial(key: "http.tls.certificate", reason: "")) {
                try unparseable.tlsMaterial()
            }

            #expect(chmod(pair.keyPath, 0o640) == 0)
            #expect(throws: GatewayConfigurationError.tlsMaterial(key: "http.tls.key", reason: "")) {
                try configuration.tlsMaterial()
            }
        }
    }

    @Test("the state folder is created 0700, and an existing one is restricted to 0700")
    func stateDirectory() async throws {
        try await withTemporaryFolder { folder in
            let state = folder + "/deep/state"
            let configuration = try await load(["--state-directory", state], in: folder)
            try configuration.prepareStateDirectory()
            #expect(try permissionBits(state) == 0o700)
            #expect(chmod(state, 0o755) == 0)
            try configuration.prepareStateDirectory()
            #expect(try permissionBits(state) == 0o700)

            let file = folder + "/file"
            FileManager.default.createFile(atPath: file, contents: Data())
            let onFile = try await load(["--state-directory", file], in: folder)
            #expect(throws: GatewayConfigurationError.fileSystem(key: "state.directory", reason: "")) {
                try onFile.prepareStateDirectory()
            }
        }
    }
}

// MARK: - Documentation

@Suite("Gateway configuration: documentation")
struct ConfigurationDocumentationTests {
    @Test("docs/gateway-configuration.md is exactly the rendered documentation")
    func documentationFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = root.appendingPathComponent("docs/gateway-configuration.md").path
        // KYUKYU_REGENERATE_DOCS=1 rewrites the file first (then review and commit the diff).
        if ProcessInfo.processInfo.environment["KYUKYU_REGENERATE_DOCS"] == "1" {
            try GatewayConfiguration.documentation().write(toFile: path, atomically: true, encoding: .utf8)
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            text == GatewayConfiguration.documentation(),
            "regenerate docs/gateway-configuration.md from GatewayConfiguration.documentation()"
        )
    }

    @Test("the documentation lists every key with its default, variable and flag")
    func everyKeyDocumented() {
        let text = GatewayConfiguration.documentation()
        for key in GatewayConfiguration.keys {
            let row = text.split(separator: "\n").first { $0.hasPrefix("| `\(key)` |") }
            #expect(row != nil, "\(key)")
            #expect(row?.contains(GatewayConfiguration.environmentVariable(for: key) ?? "?") == true)
            #expect(row?.contains(GatewayConfiguration.flag(for: key) ?? "?") == true)
        }
        #expect(
            GatewayConfiguration.environmentVariable(for: "terminal.institution-code")
                == "KYUKYU_GATEWAY_TERMINAL_INSTITUTION_CODE"
        )
        #expect(GatewayConfiguration.flag(for: "http.tls.generate") == "--http-tls-generate")
    }
}

@Suite("Gateway configuration: the receiving hospitals (handoff.hospitals)")
struct HospitalListConfigurationTests {
    @Test("without the key, the one demo hospital; with it, the file's entries in order")
    func demoAndFile() async throws {
        try await withTemporaryFolder { folder in
            let none = try await load(in: folder)
            #expect(try none.hospitals() == ReceivingHospital.demo)
            #expect(ReceivingHospital.demo.map(\.code.rawValue) == ["9999999999"])
            #expect(ReceivingHospital.demo.first?.url == "https://127.0.0.1:20640")
            let path = folder + "/hospitals.json"
            let list = #"""
                [{"code": "1312345678", "name": "架空総合病院", "nameKana": "カクウソウゴウビョウイン", "url": "https://er.example.invalid:8443"},
                 {"code": "1398765432", "name": "架空医大", "url": "https://10.0.0.9"}]
                """#
            FileManager.default.createFile(atPath: path, contents: Data(list.utf8))
            let configured = try await load(["--handoff-hospitals", path], in: folder)
            let hospitals = try configured.hospitals()
            #expect(hospitals.map(\.code.rawValue) == ["1312345678", "1398765432"])
            #expect(hospitals.first?.nameKana == "カクウソウゴウビョウイン")
            #expect(hospitals.last?.nameKana == nil)
            #expect(hospitals.last?.url == "https://10.0.0.9")
        }
    }

    @Test("a bad list is refused with the key and the entry, never loaded in part")
    func refusals() async throws {
        try await withTemporaryFolder { folder in
            let cases: [(String, String)] = [
                ("[]", "1 to 200"),
                (#"[{"code": "131234567", "name": "A", "url": "https://a.invalid"}]"#, "10-digit"),
                (#"[{"code": "1312345678", "name": "A", "url": "http://a.invalid"}]"#, "https"),
                (#"[{"code": "1312345678", "name": "", "url": "https://a.invalid"}]"#, "name"),
                (#"[{"code": "1312345678", "name": "A", "nameKana": "abc", "url": "https://a.invalid"}]"#, "katakana"),
                (#"[{"code": "1312345678", "name": "A", "url": "https://a.invalid", "fax": "1"}]"#, "fax"),
                (
                    #"[{"code": "1312345678", "name": "A", "url": "https://a.invalid"}, {"code": "1312345678", "name": "B", "url": "https://b.invalid"}]"#,
                    "repeats"
                ),
                ("{}", "JSON array"),
            ]
            for (index, (json, mention)) in cases.enumerated() {
                let path = folder + "/bad-\(index).json"
                FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
                let configuration = try await load(environment: ["KYUKYU_GATEWAY_HANDOFF_HOSPITALS": path], in: folder)
                do throws(GatewayConfigurationError) {
                    _ = try configuration.hospitals()
                    Issue.record("accepted: \(json)")
                } catch {
                    #expect(error.code == .invalidValue, "\(json)")
                    #expect(error.key == "handoff.hospitals", "\(json)")
                    #expect(error.source == .environment, "\(json)")
                    #expect(error.reason.contains(mention), "\(error.reason) should mention \(mention)")
                }
            }
            let missing = try await load(["--handoff-hospitals", folder + "/none.json"], in: folder)
            #expect(throws: GatewayConfigurationError.self) { try missing.hospitals() }
        }
    }
}

@Suite("Gateway configuration: check-config")
struct ConfigurationCheckTests {
    @Test("every wrong setting is reported in one run, each with its key and source")
    func everyProblemAtOnce() async throws {
        try await withTemporaryFolder { folder in
            do throws(GatewayConfigurationError) {
                _ = try await load(
                    ["--http-port", "0"],
                    environment: ["KYUKYU_GATEWAY_LOG_LEVEL": "loud", "KYUKYU_GATEWAY_HTTP_PROT": "1"],
                    json: #"{"terminal": {"id": "has space"}, "vault.max-age-hours": 999, "fetch.deadline-ms": 9000, "#
                        + #""fetch.category-deadline-ms": 8000, "extra": 1}"#,
                    in: folder
                )
                Issue.record("a configuration with six problems loaded")
            } catch {
                #expect(error.code == .several)
                let found = Set(error.problems.map { "\($0.key ?? "-")@\($0.source.map { "\($0)" } ?? "-")" })
                #expect(
                    found == [
                        "KYUKYU_GATEWAY_HTTP_PROT@environment", "extra@file", "http.port@flag", "terminal.id@file",
                        "vault.max-age-hours@file", "fetch.category-deadline-ms@file", "log.level@environment",
                    ]
                )
                #expect(error.reason.hasPrefix("7 settings are wrong:\n"))
                #expect(error.reason.contains("terminal.id: key terminal.id in "))
            }
        }
    }

    @Test("the files a valid configuration names are checked, and each missing one is explained")
    func referencedFiles() async throws {
        try await withTemporaryFolder { folder in
            let configuration = try await load(
                [
                    "--onshi-tls-directory", folder + "/terminal-tls", "--dispatch-token-file", folder + "/token",
                    "--handoff-hospitals", folder + "/hospitals.json", "--state-directory", folder + "/state",
                ],
                in: folder
            )
            let problems = configuration.checkReferencedFiles()
            let keys = problems.compactMap(\.key)
            #expect(keys.filter { $0 == "onshi.tls-directory" }.count == 3)
            #expect(keys.contains("dispatch.token-file"))
            #expect(keys.contains("handoff.hospitals"))
            #expect(!keys.contains("state.directory"))

            // Put the files in place: only what is still wrong is reported.
            try FileManager.default.createDirectory(atPath: folder + "/terminal-tls", withIntermediateDirectories: true)
            for file in ["ambulance-01.cert.pem", "ca.cert.pem"] {
                FileManager.default.createFile(atPath: folder + "/terminal-tls/" + file, contents: Data("x".utf8))
            }
            FileManager.default.createFile(
                atPath: folder + "/terminal-tls/ambulance-01.key.pem",
                contents: Data("x".utf8),
                attributes: [.posixPermissions: 0o644]
            )
            FileManager.default.createFile(atPath: folder + "/token", contents: Data("0123456789abcdef".utf8))
            let later = configuration.checkReferencedFiles()
            #expect(later.count == 2)
            #expect(later.contains { $0.key == "onshi.tls-directory" && $0.reason.contains("ambulance-01.key.pem") })
            #expect(later.contains { $0.key == "handoff.hospitals" })
        }
    }
}
