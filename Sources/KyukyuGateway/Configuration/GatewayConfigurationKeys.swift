/// One configuration key: its dotted name, its type, its default, what it means, and a valid non-default value
/// (which the tests set through each source).
struct GatewayConfigurationKey: Sendable, Hashable {
    enum ValueType: Sendable, Hashable {
        case string
        case integer
        case boolean
    }

    /// The dotted name, for example `http.tls.certificate`.
    let name: String
    let type: ValueType
    /// The default as documented: a literal, `none`, or a value derived from `state.directory`.
    let defaultText: String
    /// What the key means and what it allows, in words.
    let meaning: String
    /// A valid value that differs from the default.
    let sample: String

    /// The key's components, as swift-configuration sees them (`["http", "tls", "certificate"]`).
    var components: [String] { self.name.split(separator: ".").map(String.init) }

    /// The environment variable: `KYUKYU_GATEWAY_` and the components in upper case, `_`-separated, every
    /// character other than a letter or digit turned into `_` (swift-configuration's environment key encoding).
    var environmentName: String {
        (GatewayConfiguration.environmentPrefix + self.components)
            .map { component in
                String(component.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            }
            .joined(separator: "_")
    }

    /// The flag: `--` and the components joined with `-` (swift-configuration's command-line key encoding).
    var flagName: String { "--" + self.components.joined(separator: "-") }

    var typeText: String {
        switch self.type {
        case .string: "string"
        case .integer: "integer"
        case .boolean: "boolean"
        }
    }
}

extension GatewayConfigurationKey {
    static let httpHost = Self(
        name: "http.host",
        type: .string,
        defaultText: "127.0.0.1",
        meaning: "The address to listen on: an IPv4 or IPv6 address or a host name. Loopback (127.0.0.0/8, ::1, "
            + "localhost) may serve plain HTTP; any other address is served only over TLS.",
        sample: "127.0.0.2"
    )
    static let httpPort = Self(
        name: "http.port",
        type: .integer,
        defaultText: "8443",
        meaning: "The TCP port to listen on (1-65535).",
        sample: "18443"
    )
    static let httpTLSCertificate = Self(
        name: "http.tls.certificate",
        type: .string,
        defaultText: "none",
        meaning: "PEM file of the server certificate (chain). Set together with http.tls.key; when set, the "
            + "server speaks TLS on any address.",
        sample: "/etc/kyukyu/gateway.cert.pem"
    )
    static let httpTLSKey = Self(
        name: "http.tls.key",
        type: .string,
        defaultText: "none",
        meaning: "PEM file of the server's private key; must be a regular file readable by its owner only "
            + "(mode 0600). Set together with http.tls.certificate.",
        sample: "/etc/kyukyu/gateway.key.pem"
    )
    static let httpTLSGenerate = Self(
        name: "http.tls.generate",
        type: .boolean,
        defaultText: "true",
        meaning: "On a non-loopback address with no certificate configured: true generates a self-signed P-256 "
            + "certificate and key into `<state>/tls/` (key mode 0600; the host's address and name as subject "
            + "alternative names) and reuses it on later starts; false refuses to start.",
        sample: "false"
    )
    static let stateDirectory = Self(
        name: "state.directory",
        type: .string,
        defaultText: "state/gateway",
        meaning:
            "The gateway's state folder, created with mode 0700: vault, crew database, generated TLS files, and the hospitals' event positions (`hospital-events.json`) and the notices owed to them after an incident closed (`hospital-notices.json`; no patient data).",
        sample: "/var/lib/kyukyu"
    )
    static let terminalID = Self(
        name: "terminal.id",
        type: .string,
        defaultText: "ambulance-01",
        meaning: "This terminal's ID in the audit and towards onshi: 1-64 of A-Z a-z 0-9 . _ -.",
        sample: "ambulance-07"
    )
    static let terminalInstitutionCode = Self(
        name: "terminal.institution-code",
        type: .string,
        defaultText: "9999999999",
        meaning: "The medical institution code the terminal acts for: exactly 10 digits (a string in JSON).",
        sample: "1312345678"
    )
    static let vaultPath = Self(
        name: "vault.path",
        type: .string,
        defaultText: "<state>/vault.sqlite",
        meaning: "The vault's SQLite database (WAL; the file and its -wal/-shm are kept at mode 0600).",
        sample: "/var/lib/kyukyu/vault/vault.sqlite"
    )
    static let vaultKeySource = Self(
        name: "vault.key-source",
        type: .string,
        defaultText: "auto",
        meaning: "Where the vault's device keyring comes from: auto (the systemd credential kyukyu-device-keyring "
            + "whenever $CREDENTIALS_DIRECTORY is set, else the key file), file (the key file in the state folder; "
            + "refused while $CREDENTIALS_DIRECTORY is set) or credential (the systemd credential only).",
        sample: "credential"
    )
    static let vaultMaxAgeHours = Self(
        name: "vault.max-age-hours",
        type: .integer,
        defaultText: "24",
        meaning: "Hours after which an incident's data is purged from the vault at the latest (1-168).",
        sample: "12"
    )
    static let vaultPurgeIntervalSeconds = Self(
        name: "vault.purge-interval-seconds",
        type: .integer,
        defaultText: "60",
        meaning: "Seconds between two runs of the purge service (1-3600).",
        sample: "30"
    )
    static let crewDatabase = Self(
        name: "crew.database",
        type: .string,
        defaultText: "<state>/crew.sqlite",
        meaning: "The crew accounts database (password hashes, TOTP secrets, PINs, sessions).",
        sample: "/var/lib/kyukyu/crew.sqlite"
    )
    static let crewSessionHours = Self(
        name: "crew.session-hours",
        type: .integer,
        defaultText: "24",
        meaning: "The longest a shift session lasts, in hours (1-24); then a full sign-in is needed.",
        sample: "12"
    )
    static let crewIdleLockSeconds = Self(
        name: "crew.idle-lock-seconds",
        type: .integer,
        defaultText: "300",
        meaning: "Seconds without a touch before the session locks and the crew PIN is asked (30-3600).",
        sample: "120"
    )
    static let crewMaxFailures = Self(
        name: "crew.max-failures",
        type: .integer,
        defaultText: "5",
        meaning: "Failed sign-ins before the account locks (with doubling backoff), and wrong unlock PINs before "
            + "the session ends (1-20).",
        sample: "3"
    )
    static let onshiURL = Self(
        name: "onshi.url",
        type: .string,
        defaultText: "https://127.0.0.1:18443",
        meaning: "The base URL of the eligibility service (onshi or its stub); https only, with a host, no query "
            + "or fragment.",
        sample: "https://onshi.example.invalid:443/base"
    )
    static let onshiTLSDirectory = Self(
        name: "onshi.tls-directory",
        type: .string,
        defaultText: "state/terminal-tls",
        meaning: "The folder of the terminal's client certificate and key (`<device>.cert.pem`, `<device>.key.pem`, "
            + "0600) and of `ca.cert.pem`, the CA of onshi's server certificate (as kyukyu fetch --tls-dir).",
        sample: "/etc/kyukyu/terminal-tls"
    )
    static let onshiPoolConnections = Self(
        name: "onshi.pool-connections",
        type: .integer,
        defaultText: "9",
        meaning: "Kept-alive connections to onshi, opened ahead of need (one per category fetched in parallel; "
            + "1-32).",
        sample: "4"
    )
    static let fetchDeadlineMilliseconds = Self(
        name: "fetch.deadline-ms",
        type: .integer,
        defaultText: "3000",
        meaning: "The overall deadline in milliseconds: the summary is shown by then, and categories that arrive "
            + "later are marked late (1-120000).",
        sample: "2500"
    )
    static let fetchCategoryDeadlineMilliseconds = Self(
        name: "fetch.category-deadline-ms",
        type: .integer,
        defaultText: "6000",
        meaning: "How long one category is waited for before it is marked timed out, in milliseconds (1-120000, "
            + "and at least fetch.deadline-ms).",
        sample: "8000"
    )
    static let fetchRetryInitialMilliseconds = Self(
        name: "fetch.retry-initial-ms",
        type: .integer,
        defaultText: "2000",
        meaning: "The first wait before retrying a fetch that could not be made (no network, maintenance, breaker "
            + "open), in milliseconds; it doubles on each retry (100-600000).",
        sample: "1000"
    )
    static let fetchRetryMaxMilliseconds = Self(
        name: "fetch.retry-max-ms",
        type: .integer,
        defaultText: "60000",
        meaning: "The longest wait between two retries, in milliseconds (at least fetch.retry-initial-ms, at most "
            + "3600000).",
        sample: "30000"
    )
    static let readerName = Self(
        name: "reader.name",
        type: .string,
        defaultText: "none",
        meaning: "The PC/SC reader to use (its full name); none, or an empty value, means any reader. As a flag, "
            + "a name with a comma cannot be given: use the environment or the file.",
        sample: "Virtual PCD 00 00"
    )
    static let readerPollMilliseconds = Self(
        name: "reader.poll-ms",
        type: .integer,
        defaultText: "500",
        meaning: "How often the reader monitor looks for readers and cards when PC/SC cannot signal a change, in "
            + "milliseconds (50-10000).",
        sample: "250"
    )
    static let dispatchTokenFile = Self(
        name: "dispatch.token-file",
        type: .string,
        defaultText: "none",
        meaning: "A file holding the bearer token that dispatch sends to POST /api/v1/dispatch/incidents (readable "
            + "by its owner only); none, or an empty value, turns the dispatch route off.",
        sample: "/etc/kyukyu/dispatch-token"
    )
    static let handoffHospitals = Self(
        name: "handoff.hospitals",
        type: .string,
        defaultText: "none",
        meaning: "A JSON file listing the receiving hospitals the crew may pick: an array of objects with `code` "
            + "(the 10-digit medical-institution code, a string), `name` (1-100 characters), optional `nameKana` "
            + "(katakana and spaces, at most 100) and `url` (the hospital receiver's https base URL); 1-200 entries, "
            + "codes unique. none, or an empty value, lists one demo hospital: 9999999999 テスト救命救急センター (架空) "
            + "at https://127.0.0.1:20640.",
        sample: "/etc/kyukyu/hospitals.json"
    )
    static let handoffTLSDirectory = Self(
        name: "handoff.tls-directory",
        type: .string,
        defaultText: "state/hospital-tls",
        meaning: "The folder of this terminal's client certificate and key for the hospitals' receivers "
            + "(`<device>.cert.pem`, `<device>.key.pem`, 0600) and of `ca.cert.pem`, their CA: what "
            + "`kyukyu-hospital device issue --device <terminal.id> --out <folder>` writes. Without them the crew can "
            + "still record everything, and the tablet says that nothing can be sent.",
        sample: "/etc/kyukyu/hospital-tls"
    )
    static let logLevel = Self(
        name: "log.level",
        type: .string,
        defaultText: "info",
        meaning: "The lowest level logged: trace, debug, info, notice, warning, error or critical.",
        sample: "debug"
    )
    static let logDestination = Self(
        name: "log.destination",
        type: .string,
        defaultText: "auto",
        meaning: "Where logs go: journal (the systemd journal, structured: every metadata key a field, the incident "
            + "as KYUKYU_INCIDENT), stderr (one line per entry), or auto (the journal when systemd connected the "
            + "service's standard error to it, else stderr).",
        sample: "stderr"
    )

    /// Every key, in the order of the documentation.
    static let all: [Self] = [
        .httpHost, .httpPort, .httpTLSCertificate, .httpTLSKey, .httpTLSGenerate,
        .stateDirectory,
        .terminalID, .terminalInstitutionCode,
        .vaultPath, .vaultKeySource, .vaultMaxAgeHours, .vaultPurgeIntervalSeconds,
        .crewDatabase, .crewSessionHours, .crewIdleLockSeconds, .crewMaxFailures,
        .onshiURL, .onshiTLSDirectory, .onshiPoolConnections,
        .fetchDeadlineMilliseconds, .fetchCategoryDeadlineMilliseconds, .fetchRetryInitialMilliseconds,
        .fetchRetryMaxMilliseconds,
        .readerName, .readerPollMilliseconds,
        .dispatchTokenFile,
        .handoffHospitals, .handoffTLSDirectory,
        .logLevel, .logDestination,
    ]
}

extension GatewayConfiguration {
    /// The components every environment variable of the gateway starts with (`KYUKYU_GATEWAY_`).
    static let environmentPrefix = ["kyukyu", "gateway"]

    /// The environment variable that names the configuration file, when no file is passed to ``load``.
    public static let fileEnvironmentVariable = "KYUKYU_GATEWAY_CONFIG"

    /// The flag that names the configuration file (`--config <path>`), when no file is passed to ``load``.
    public static let fileFlag = "--config"

    /// The configuration file read when none is named; it may be missing.
    public static let defaultFilePath = "kyukyu-gateway.json"

    /// Every configuration key (dotted, for example `http.port`), in the order of ``documentation()``.
    public static var keys: [String] { GatewayConfigurationKey.all.map(\.name) }

    /// The environment variable of a key (`http.port` → `KYUKYU_GATEWAY_HTTP_PORT`), or `nil` for an unknown key.
    public static func environmentVariable(for key: String) -> String? {
        GatewayConfigurationKey.all.first { $0.name == key }?.environmentName
    }

    /// The flag of a key (`http.port` → `--http-port`), or `nil` for an unknown key.
    public static func flag(for key: String) -> String? {
        GatewayConfigurationKey.all.first { $0.name == key }?.flagName
    }

    /// Every key with its type, default, environment variable, flag and meaning, as Markdown.
    ///
    /// docs/gateway-configuration.md is exactly this text (a test keeps them equal).
    public static func documentation() -> String {
        var text = """
            # kyukyu-gateway configuration

            <!-- Generated by GatewayConfiguration.documentation(); a test fails when this file and the code differ. -->

            Every setting has an embedded default, so the gateway runs with no setup. A value is taken from the
            first of these that sets it:

            1. a flag: `--http-port 9443` or `--http-port=9443` (a boolean flag alone means true:
               `--http-tls-generate`);
            2. an environment variable: `KYUKYU_GATEWAY_HTTP_PORT=9443` (booleans: true/false, yes/no, 1/0);
            3. the JSON configuration file: nested objects or dotted keys, `{"http": {"port": 9443}}` or
               `{"http.port": 9443}`, with JSON numbers for integers, `true`/`false` for booleans and strings
               for everything else;
            4. the embedded default.

            The file is the one passed to the gateway, else the one named by `\(fileFlag) <path>`, else by
            `\(fileEnvironmentVariable)`; a file named in one of these ways must exist. Without one,
            `\(defaultFilePath)` in the working folder is read when it exists.

            A key, flag or `KYUKYU_GATEWAY_` variable that the gateway does not know is an error, never ignored;
            so is a value of the wrong type or out of range. Every error names the key, where the value came
            from (flag, environment, file) and what is allowed.

            **Listening policy.** The gateway listens on loopback by default. On loopback (127.0.0.0/8, `::1`,
            `localhost`) it may serve plain HTTP. On any other address it serves only TLS: with
            `http.tls.certificate` and `http.tls.key`, or with a generated self-signed certificate
            (`http.tls.generate`, on by default). With `http.tls.generate` false and no certificate, it refuses
            to start on such an address.

            `<state>` below is the value of `state.directory`.

            | Key | Type | Default | Environment variable | Flag | Meaning |
            | --- | --- | --- | --- | --- | --- |

            """
        for key in GatewayConfigurationKey.all {
            let cells = [
                "`\(key.name)`", key.typeText, "`\(key.defaultText)`", "`\(key.environmentName)`",
                "`\(key.flagName)`", key.meaning,
            ]
            text += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return text
    }
}
