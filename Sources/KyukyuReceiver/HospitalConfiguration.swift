import Configuration
import Foundation
public import KyukyuDomain
public import KyukyuOperations
public import KyukyuVault
public import Logging

/// `kyukyu-hospital serve`'s configuration: flags over environment variables (`KYUKYU_HOSPITAL_…`) over a JSON
/// file over the embedded defaults (swift-configuration), every key in docs/hospital-configuration.md, which is
/// ``documentation()`` exactly (a test keeps them equal).
public struct HospitalConfiguration: Sendable {
    /// The address to listen on.
    public var host: String
    /// The port.
    public var port: Int
    /// The state folder (database, keyring, staff, PKI).
    public var stateDirectory: String
    /// This hospital's medical-institution code.
    public var hospital: HospitalCode
    /// The folder of the CA and the server certificate.
    public var tlsDirectory: String
    /// How often the event streams send a keep-alive comment.
    public var keepAlive: Duration
    /// How long a staff session lasts.
    public var staffSession: Duration
    /// Failed sign-ins before a staff account locks.
    public var staffMaximumFailures: Int
    /// How long a placement request may wait unanswered before the receiver withdraws it.
    public var placementExpiry: Duration
    /// The lowest level logged.
    public var logLevel: Logger.Level
    /// Where the documents' sealing keyring comes from.
    public var keySource: DeviceKeySource
    /// Where logs go.
    public var logDestination: LogDestination
    /// The storage engine: SQLite in the state folder, or a region's PostgreSQL.
    public var storageEngine: StorageEngine
    /// The region's PostgreSQL, when ``storageEngine`` is `postgresql`.
    public var postgres: PostgresSettings?
    /// The hospitals served: those of `region.hospitals`, or ``hospital`` alone.
    public var hospitals: [RegionHospital]

    /// Where the receiver keeps its documents.
    public enum StorageEngine: String, Sendable, Hashable {
        /// One hospital's receiver: `<state>/hospital.sqlite`.
        case sqlite
        /// A region's hub: many instances on one PostgreSQL.
        case postgresql
    }

    /// The receiver's database.
    public var databasePath: String { stateDirectory + "/" + HospitalStore.fileName }
    /// The staff accounts' database.
    public var staffDatabasePath: String { stateDirectory + "/staff.sqlite" }
    /// The key that seals the staff's TOTP secrets.
    public var staffKeyPath: String { stateDirectory + "/staff-secret.key" }

    /// The environment variable naming the file.
    public static let fileEnvironmentVariable = "KYUKYU_HOSPITAL_CONFIG"
    /// The flag naming the file.
    public static let fileFlag = "--config"
    /// The file read when none is named (it may be missing).
    public static let defaultFilePath = "kyukyu-hospital.json"

    struct Key: Sendable {
        enum ValueType: String, Sendable { case string, integer }
        let name: String
        let type: ValueType
        let defaultText: String
        let meaning: String
        var components: [String] { name.split(separator: ".").map(String.init) }
        var environmentName: String {
            (["kyukyu", "hospital"] + components).map { component in
                String(component.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            }.joined(separator: "_")
        }
        var flagName: String { "--" + components.joined(separator: "-") }
    }

    static let keys: [Key] = [
        Key(
            name: "http.host",
            type: .string,
            defaultText: "127.0.0.1",
            meaning: "The address to listen on (always HTTPS with the certificate of `tls.directory`)."
        ),
        Key(name: "http.port", type: .integer, defaultText: "9443", meaning: "The TCP port to listen on (1-65535)."),
        Key(
            name: "state.directory",
            type: .string,
            defaultText: "state/hospital",
            meaning:
                "The receiver's state folder, mode 0700: `hospital.sqlite` (the documents, sealed), `device-keyring.json` (the sealing keyring, 0600, made on first start), `staff.sqlite` and `staff-secret.key` (staff accounts)."
        ),
        Key(
            name: "hospital.code",
            type: .string,
            defaultText: "1312345678",
            meaning:
                "This hospital's medical institution code: exactly 10 digits (a string in JSON). Documents for another hospital are refused (422)."
        ),
        Key(
            name: "tls.directory",
            type: .string,
            defaultText: "<state>/pki",
            meaning:
                "The folder of `ca.cert.pem`, `ca.key.pem`, `server.cert.pem` and `server.key.pem` (keys 0600), made by `kyukyu-hospital ca init`."
        ),
        Key(
            name: "events.keep-alive-seconds",
            type: .integer,
            defaultText: "15",
            meaning: "Seconds between two `: keep-alive` comments on the event streams (1-300)."
        ),
        Key(
            name: "staff.session-hours",
            type: .integer,
            defaultText: "12",
            meaning: "The longest a staff session lasts, in hours (1-24); then a full sign-in is needed."
        ),
        Key(
            name: "staff.max-failures",
            type: .integer,
            defaultText: "5",
            meaning: "Failed sign-ins before a staff account locks, with doubling backoff (1-20)."
        ),
        Key(
            name: "placement.expiry-minutes",
            type: .integer,
            defaultText: "60",
            meaning:
                "Minutes a placement request may wait with no hospital accepting before the receiver withdraws it, as its ambulance would: every hospital still asked is told `cancelled` (5-1440). An ambulance that stopped asking (its gateway lost, the patient placed by phone) leaves no hospital alerted for ever."
        ),
        Key(
            name: "keys.source",
            type: .string,
            defaultText: "auto",
            meaning:
                "Where the keyring that seals the documents comes from: auto (the systemd credential kyukyu-device-keyring whenever $CREDENTIALS_DIRECTORY is set, failing closed if it is missing; else `<state>/device-keyring.json`, made on first start), file (the key file; refused while $CREDENTIALS_DIRECTORY is set) or credential (the systemd credential only). `staff-secret.key` stays a file in the state folder."
        ),
        Key(
            name: "storage.engine",
            type: .string,
            defaultText: "sqlite",
            meaning:
                "Where the documents are kept: sqlite (one hospital's receiver, `<state>/hospital.sqlite`) or postgresql (a region's hub: many stateless instances on one PostgreSQL database, behind any TCP load balancer; the staff accounts are kept there too)."
        ),
        Key(
            name: "storage.postgresql.url",
            type: .string,
            defaultText: "",
            meaning:
                "With postgresql: `postgresql://ROLE@HOST:PORT/DATABASE`, without a password. The database holds only ciphertext and non-patient metadata: the keyring of `keys.source` stays with the instances."
        ),
        Key(
            name: "storage.postgresql.password-file",
            type: .string,
            defaultText: "",
            meaning:
                "A file holding the role's password (owner-only, like a systemd credential: `$CREDENTIALS_DIRECTORY/kyukyu-postgres-password`); empty for none."
        ),
        Key(
            name: "storage.postgresql.tls",
            type: .string,
            defaultText: "auto",
            meaning:
                "TLS to PostgreSQL: require (the server's certificate checked against `storage.postgresql.ca-file`, or the system's roots), disable, or auto (disable to 127.0.0.1, ::1 and localhost, require otherwise)."
        ),
        Key(
            name: "storage.postgresql.ca-file",
            type: .string,
            defaultText: "",
            meaning: "The CA (PEM) that signed the PostgreSQL server's certificate; empty for the system's roots."
        ),
        Key(
            name: "storage.postgresql.max-connections",
            type: .integer,
            defaultText: "10",
            meaning:
                "The most connections one instance opens to PostgreSQL (2-100); one of them listens for the others' events."
        ),
        Key(
            name: "region.hospitals",
            type: .string,
            defaultText: "",
            meaning:
                "A JSON file of the hospitals a region's hub serves, its tenants: `[{\"code\": \"1310000001\", \"name\": \"…\"}]` (1 to 500, 10-digit codes). Each hospital's staff see only its patients, and its documents are sealed with its own key. Empty: the receiver serves `hospital.code` alone."
        ),
        Key(
            name: "log.level",
            type: .string,
            defaultText: "info",
            meaning: "The lowest level logged: trace, debug, info, notice, warning, error or critical."
        ),
        Key(
            name: "log.destination",
            type: .string,
            defaultText: "auto",
            meaning:
                "Where logs go: journal (the systemd journal, structured: every metadata key a field), stderr (one line per entry), or auto (the journal when systemd connected the service's standard error to it, else stderr)."
        ),
    ]

    /// Every key (dotted), in the documentation's order.
    public static var keyNames: [String] { keys.map(\.name) }
    /// The environment variable of a key.
    public static func environmentVariable(for key: String) -> String? {
        keys.first { $0.name == key }?.environmentName
    }
    /// The flag of a key.
    public static func flag(for key: String) -> String? { keys.first { $0.name == key }?.flagName }

    /// Loads and checks the configuration from `arguments` (flags, and `--config FILE`), `environment`, and the
    /// file; every unknown key, flag or `KYUKYU_HOSPITAL_` variable, and every value out of range, is an error
    /// naming it.
    public static func load(arguments: [String], environment: [String: String]) throws(ReceiverError)
        -> HospitalConfiguration
    {
        var file: String?
        var index = 0
        let flags = Set(keys.map(\.flagName))
        // Every problem is noted and the default used in its place, so that one run names them all.
        var problems: [String] = []
        var expectsValue = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                if !expectsValue {
                    problems.append(
                        "unexpected argument '\(argument)': give settings as --key value (docs/hospital-configuration.md)"
                    )
                }
                expectsValue = !expectsValue && argument.hasPrefix("-")
                continue
            }
            let name = String(argument.split(separator: "=", maxSplits: 1)[0])
            let inline = argument.contains("=")
            if name == fileFlag {
                if inline {
                    file = String(argument.dropFirst(name.count + 1))
                } else if index < arguments.count {
                    file = arguments[index]
                    index += 1
                } else {
                    throw .invalidInput("--config needs the path of a JSON file")
                }
                expectsValue = false
                continue
            }
            if !flags.contains(name) {
                problems.append("unknown flag \(name) (docs/hospital-configuration.md lists the keys and their flags)")
            }
            expectsValue = !inline
        }
        // Malformed flags are reported as such, and their values not read again as wrong values.
        let flagsUsable = problems.isEmpty
        let variables = Set(keys.map(\.environmentName)).union([fileEnvironmentVariable])
        for name in environment.keys.sorted() where name.hasPrefix("KYUKYU_HOSPITAL_") && !variables.contains(name) {
            problems.append("unknown environment variable \(name) (docs/hospital-configuration.md lists them)")
        }
        let explicit = file ?? environment[fileEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        var layers: [(String, any ConfigSnapshot)] = [
            (
                "flag",
                CommandLineArgumentsProvider(arguments: ["kyukyu-hospital"] + (flagsUsable ? arguments : [])).snapshot()
            ),
            (
                "environment",
                EnvironmentVariablesProvider(environmentVariables: environment)
                    .prefixKeys(with: ConfigKey(["kyukyu", "hospital"])).snapshot()
            ),
        ]
        let path = explicit ?? defaultFilePath
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { throw .invalidInput("the configuration file \(path) is not one JSON object") }
            let known = Set(keys.map(\.name))
            for key in leafKeys(object).sorted() where !known.contains(key) {
                problems.append("unknown key \(key) in \(path) (docs/hospital-configuration.md lists the keys)")
            }
            do {
                layers.append((path, try JSONSnapshot(data: data.bytes, providerName: path, parsingOptions: .default)))
            } catch {
                throw .invalidInput("the configuration file \(path) cannot be used: \(error)")
            }
        } else if explicit != nil {
            throw .invalidInput("the configuration file \(path) does not exist")
        }

        func lookup(_ name: String) -> (ConfigContent, String)? {
            let key = keys.first { $0.name == name }!
            for (source, snapshot) in layers {
                let result: LookupResult
                do {
                    result = try snapshot.value(
                        forKey: AbsoluteConfigKey(key.components),
                        type: key.type == .integer ? .int : .string
                    )
                } catch {
                    problems.append("\(name) (\(source)) must be a single \(key.type.rawValue)")
                    return nil
                }
                if let value = result.value { return (value.content, source) }
            }
            return nil
        }
        func string(_ name: String, _ defaultValue: String, _ check: (String) -> Bool, allowed: String) -> String {
            guard let (content, source) = lookup(name) else { return defaultValue }
            guard case .string(let value) = content, check(value) else {
                problems.append("\(name) (\(source)) is not allowed: \(allowed)")
                return defaultValue
            }
            return value
        }
        func integer(_ name: String, _ defaultValue: Int, _ range: ClosedRange<Int>) -> Int {
            guard let (content, source) = lookup(name) else { return defaultValue }
            guard case .int(let value) = content, range.contains(value) else {
                problems.append(
                    "\(name) (\(source)) is not allowed: an integer \(range.lowerBound)-\(range.upperBound)"
                )
                return defaultValue
            }
            return value
        }
        let path4096: (String) -> Bool = { !$0.isEmpty && $0.utf8.count <= 4096 && !$0.contains("\0") }
        let state = string("state.directory", "state/hospital", path4096, allowed: "a path")
        var configuration = HospitalConfiguration(
            host: string(
                "http.host",
                "127.0.0.1",
                { !$0.isEmpty && $0.utf8.count <= 253 },
                allowed: "an address or host name"
            ),
            port: integer("http.port", 9443, 1...65535),
            stateDirectory: state,
            hospital: HospitalCode(
                rawValue: string(
                    "hospital.code",
                    "1312345678",
                    { HospitalCode(rawValue: $0) != nil },
                    allowed: "exactly 10 digits"
                )
            )!,
            tlsDirectory: string("tls.directory", state + "/pki", path4096, allowed: "a path"),
            keepAlive: .seconds(integer("events.keep-alive-seconds", 15, 1...300)),
            staffSession: .seconds(integer("staff.session-hours", 12, 1...24) * 3600),
            staffMaximumFailures: integer("staff.max-failures", 5, 1...20),
            placementExpiry: .seconds(integer("placement.expiry-minutes", 60, 5...1440) * 60),
            logLevel: Logger.Level(
                rawValue: string(
                    "log.level",
                    "info",
                    { Logger.Level(rawValue: $0) != nil },
                    allowed: "trace, debug, info, notice, warning, error or critical"
                )
            )!,
            keySource: DeviceKeySource(
                rawValue: string(
                    "keys.source",
                    "auto",
                    { DeviceKeySource(rawValue: $0) != nil },
                    allowed: "auto, file or credential"
                )
            )!,
            logDestination: LogDestination(
                rawValue: string(
                    "log.destination",
                    "auto",
                    { LogDestination(rawValue: $0) != nil },
                    allowed: "auto, journal or stderr"
                )
            )!,
            storageEngine: .sqlite,
            postgres: nil,
            hospitals: []
        )
        let engine = string(
            "storage.engine",
            "sqlite",
            { StorageEngine(rawValue: $0) != nil },
            allowed: "sqlite or postgresql"
        )
        configuration.storageEngine = StorageEngine(rawValue: engine) ?? .sqlite
        let url = string(
            "storage.postgresql.url",
            "",
            { $0.isEmpty || PostgresSettings(url: $0) != nil },
            allowed: "postgresql://ROLE@HOST:PORT/DATABASE"
        )
        let passwordFile = string(
            "storage.postgresql.password-file",
            "",
            { $0.isEmpty || path4096($0) },
            allowed: "a path"
        )
        let tls = string(
            "storage.postgresql.tls",
            "auto",
            { ["auto", "require", "disable"].contains($0) },
            allowed: "auto, require or disable"
        )
        let caFile = string("storage.postgresql.ca-file", "", { $0.isEmpty || path4096($0) }, allowed: "a path")
        let maximumConnections = integer("storage.postgresql.max-connections", 10, 2...100)
        if configuration.storageEngine == .postgresql {
            if var settings = PostgresSettings(url: url) {
                if settings.password != nil {
                    problems.append(
                        "storage.postgresql.url holds a password: keep it in storage.postgresql.password-file"
                    )
                }
                settings.password = nil
                if !passwordFile.isEmpty {
                    switch PrivateFiles.readSecret(passwordFile) {
                    case .success(let password): settings.password = password
                    case .failure(let problem): problems.append("storage.postgresql.password-file: \(problem)")
                    }
                }
                let loopback = ["127.0.0.1", "::1", "localhost"].contains(settings.host ?? "")
                settings.tls = tls == "require" || (tls == "auto" && !loopback)
                settings.caFile = caFile.isEmpty ? nil : caFile
                settings.maximumConnections = maximumConnections
                configuration.postgres = settings
            } else {
                problems.append("storage.postgresql.url is required with storage.engine postgresql")
            }
        }
        let regionFile = string("region.hospitals", "", { $0.isEmpty || path4096($0) }, allowed: "a path")
        if !regionFile.isEmpty, configuration.storageEngine != .postgresql {
            problems.append(
                "region.hospitals needs storage.engine postgresql: a region's staff accounts, which name their hospital, are kept there"
            )
        }
        if regionFile.isEmpty {
            configuration.hospitals = [RegionHospital(code: configuration.hospital, name: nil)]
        } else {
            switch RegionHospital.load(regionFile) {
            case .success(let hospitals): configuration.hospitals = hospitals
            case .failure(let problem): problems.append("region.hospitals: \(problem)")
            }
        }
        if problems.count == 1 { throw .invalidInput(problems[0]) }
        if problems.count > 1 {
            throw .invalidInput(
                "\(problems.count) settings are wrong:\n" + problems.map { "  - " + $0 }.joined(separator: "\n")
            )
        }
        return configuration
    }

    private static func leafKeys(_ object: [String: Any], prefix: String = "") -> [String] {
        object.flatMap { name, value -> [String] in
            let key = prefix.isEmpty ? name : prefix + "." + name
            if let nested = value as? [String: Any] { return leafKeys(nested, prefix: key) }
            return [key]
        }
    }

    /// Every key with its type, default, environment variable, flag and meaning, as Markdown:
    /// docs/hospital-configuration.md is exactly this text.
    public static func documentation() -> String {
        var text = """
            # kyukyu-hospital configuration

            <!-- Generated by HospitalConfiguration.documentation(); a test fails when this file and the code differ. -->

            `kyukyu-hospital serve` runs with no setup beyond `kyukyu-hospital ca init`. A value is taken from the
            first of these that sets it:

            1. a flag: `--http-port 9443` or `--http-port=9443`;
            2. an environment variable: `KYUKYU_HOSPITAL_HTTP_PORT=9443`;
            3. the JSON configuration file: nested objects or dotted keys, `{"http": {"port": 9443}}`, with JSON
               numbers for integers and strings for everything else;
            4. the embedded default.

            The file is the one named by `\(fileFlag) <path>`, else by `\(fileEnvironmentVariable)`; a file named
            in one of these ways must exist. Without one, `\(defaultFilePath)` in the working folder is read when it
            exists. A key, flag or `KYUKYU_HOSPITAL_` variable that the receiver does not know is an error, never
            ignored; so is a value of the wrong type or out of range.

            The receiver speaks only HTTPS. Ambulances present a client certificate from the receiver's CA
            (`kyukyu-hospital device issue`); staff sign in with password and TOTP (`kyukyu-hospital staff add`).

            `<state>` below is the value of `state.directory`.

            | Key | Type | Default | Environment variable | Flag | Meaning |
            | --- | --- | --- | --- | --- | --- |

            """
        for key in keys {
            let cells = [
                "`\(key.name)`", key.type.rawValue, "`\(key.defaultText)`", "`\(key.environmentName)`",
                "`\(key.flagName)`", key.meaning,
            ]
            text += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return text
    }
}
