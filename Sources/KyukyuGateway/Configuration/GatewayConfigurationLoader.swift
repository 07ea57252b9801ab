import Configuration
import Foundation
import KyukyuOperations
import KyukyuVault
import Logging

extension GatewayConfiguration {
    /// Loads and validates the configuration: flags over environment variables over the JSON file over the
    /// embedded defaults.
    ///
    /// - Parameters:
    ///   - arguments: The configuration flags, without the program name (for example the arguments that
    ///     swift-argument-parser did not recognise): `--http-port 9443`, `--http-port=9443`, or a boolean flag
    ///     alone (`--http-tls-generate`). `--config <path>` names the file when `file` is `nil`.
    ///   - environment: The process environment; variables starting with `KYUKYU_GATEWAY_` are read, and
    ///     `KYUKYU_GATEWAY_CONFIG` names the file when neither `file` nor `--config` does.
    ///   - file: The JSON configuration file. A file named here, by `--config` or by `KYUKYU_GATEWAY_CONFIG`
    ///     must exist; without one, ``defaultFilePath`` is read if it exists.
    /// - Throws: ``GatewayConfigurationError`` naming the key, the source and what is allowed: an unknown key,
    ///   flag or variable, a value of the wrong type or out of range, an unreadable or malformed file, or a
    ///   broken listening policy (a non-loopback address with no certificate and `http.tls.generate` false).
    ///   Loading touches no file other than the configuration file: see ``prepareStateDirectory()`` and
    ///   ``tlsMaterial(now:)`` for the state folder and the certificate.
    public static func load(
        arguments: [String],
        environment: [String: String],
        file: String? = nil
    ) async throws(GatewayConfigurationError) -> GatewayConfiguration {
        var problems: [GatewayConfigurationError] = []
        let fileFromFlag = try Self.checkArguments(arguments, problems: &problems)
        // Malformed flags are reported as such, and their values not read again as wrong values.
        let flagsUsable = problems.isEmpty
        Self.checkEnvironment(environment, problems: &problems)
        let explicitFile =
            file ?? fileFromFlag ?? environment[Self.fileEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        let fileLayer = try Self.readFile(
            path: explicitFile ?? Self.defaultFilePath,
            explicit: explicitFile != nil,
            problems: &problems
        )

        var layers: [Layer] = [
            Layer(
                source: .flag,
                snapshot: CommandLineArgumentsProvider(
                    arguments: ["kyukyu-gateway"] + (flagsUsable ? arguments : [])
                ).snapshot(),
                place: { "flag \($0.flagName)" }
            ),
            Layer(
                source: .environment,
                snapshot: EnvironmentVariablesProvider(environmentVariables: environment)
                    .prefixKeys(with: ConfigKey(Self.environmentPrefix))
                    .snapshot(),
                place: { "environment variable \($0.environmentName)" }
            ),
        ]
        if let fileLayer { layers.append(fileLayer) }
        var resolver = Resolver(layers: layers, problems: problems)
        return try resolver.build()
    }

    // MARK: - Flags, environment and file

    /// Notes unknown flags and stray arguments in `problems`; returns the value of `--config`, if given (a
    /// `--config` without a path is thrown at once: nothing else can be checked without knowing the file).
    private static func checkArguments(
        _ arguments: [String],
        problems: inout [GatewayConfigurationError]
    ) throws(GatewayConfigurationError) -> String? {
        let known = Set(GatewayConfigurationKey.all.map(\.flagName))
        var configFile: String?
        var expectsValueFor: String?
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                if expectsValueFor != nil {
                    expectsValueFor = nil
                    continue
                }
                problems.append(
                    GatewayConfigurationError.unknownKey(
                        key: argument,
                        source: .flag,
                        reason: "unexpected argument '\(argument)': give settings as --key value or --key=value "
                            + "(docs/gateway-configuration.md lists the keys)"
                    )
                )
                // A short option (-p 1) is taken with its value, so that the value is not a second problem.
                expectsValueFor = argument.hasPrefix("-") ? argument : nil
                continue
            }
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            let hasInlineValue = argument.contains("=")
            if name == Self.fileFlag {
                if hasInlineValue {
                    configFile = String(argument.dropFirst(name.count + 1))
                } else if index < arguments.endIndex, !arguments[index].hasPrefix("--") {
                    configFile = arguments[index]
                    index += 1
                } else {
                    throw GatewayConfigurationError.invalidValue(
                        key: Self.fileFlag,
                        source: .flag,
                        reason: "\(Self.fileFlag) needs the path of a JSON file"
                    )
                }
                if configFile?.isEmpty == true {
                    throw GatewayConfigurationError.invalidValue(
                        key: Self.fileFlag,
                        source: .flag,
                        reason: "\(Self.fileFlag) needs the path of a JSON file, not an empty value"
                    )
                }
                expectsValueFor = nil
                continue
            }
            guard known.contains(name) else {
                problems.append(
                    GatewayConfigurationError.unknownKey(
                        key: name,
                        source: .flag,
                        reason: "unknown flag \(name) (docs/gateway-configuration.md lists the keys and their flags)"
                    )
                )
                expectsValueFor = hasInlineValue ? nil : name
                continue
            }
            expectsValueFor = hasInlineValue ? nil : name
        }
        return configFile
    }

    /// Notes `KYUKYU_GATEWAY_` variables that name no key in `problems`.
    private static func checkEnvironment(_ environment: [String: String], problems: inout [GatewayConfigurationError]) {
        let known = Set(GatewayConfigurationKey.all.map(\.environmentName)).union([Self.fileEnvironmentVariable])
        let prefix = Self.environmentPrefix.map { $0.uppercased() }.joined(separator: "_") + "_"
        for name in environment.keys.sorted() where name.hasPrefix(prefix) && !known.contains(name) {
            problems.append(
                GatewayConfigurationError.unknownKey(
                    key: name,
                    source: .environment,
                    reason: "unknown environment variable \(name) (docs/gateway-configuration.md lists the keys and "
                        + "their variables)"
                )
            )
        }
    }

    /// Reads and checks the JSON file: `nil` when the default file is missing.
    private static func readFile(
        path: String,
        explicit: Bool,
        problems: inout [GatewayConfigurationError]
    ) throws(GatewayConfigurationError) -> Layer? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            if !explicit { return nil }
            throw GatewayConfigurationError.unreadableFile(reason: "the configuration file \(path) does not exist")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw GatewayConfigurationError.unreadableFile(reason: "the configuration file \(path) cannot be read")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw GatewayConfigurationError.unreadableFile(
                reason: "the configuration file \(path) is not valid JSON: \(error.localizedDescription)"
            )
        }
        guard let dictionary = object as? [String: Any] else {
            throw GatewayConfigurationError.unreadableFile(
                reason: "the configuration file \(path) must hold one JSON object"
            )
        }
        let known = Set(GatewayConfigurationKey.all.map(\.name))
        for key in Self.leafKeys(of: dictionary).sorted() where !known.contains(key) {
            problems.append(
                GatewayConfigurationError.unknownKey(
                    key: key,
                    source: .file,
                    reason: "unknown key \(key) in \(path) (docs/gateway-configuration.md lists the keys)"
                )
            )
        }
        let snapshot: JSONSnapshot
        do {
            snapshot = try JSONSnapshot(data: data.bytes, providerName: path, parsingOptions: .default)
        } catch {
            throw GatewayConfigurationError.unreadableFile(
                reason: "the configuration file \(path) cannot be used: \(error)"
            )
        }
        return Layer(source: .file, snapshot: snapshot, place: { "key \($0.name) in \(path)" })
    }

    /// The dotted keys of the values (not objects) in a JSON object, nested or dotted alike.
    private static func leafKeys(of dictionary: [String: Any], prefix: String = "") -> [String] {
        dictionary.flatMap { name, value -> [String] in
            let key = prefix.isEmpty ? name : prefix + "." + name
            if let nested = value as? [String: Any] { return Self.leafKeys(of: nested, prefix: key) }
            return [key]
        }
    }

    /// One source of values, with how to say where a key's value was found.
    fileprivate struct Layer {
        var source: Source
        var snapshot: any ConfigSnapshot
        var place: @Sendable (GatewayConfigurationKey) -> String
    }

    /// Resolves every key through the layers, then validates.
    fileprivate struct Resolver {
        let layers: [Layer]
        var origins: [String: Origin] = [:]
        /// Every error found so far: a wrong value is noted and its default used, so that one run names them all.
        var problems: [GatewayConfigurationError]

        init(layers: [Layer], problems: [GatewayConfigurationError]) {
            self.layers = layers
            self.problems = problems
        }

        /// A value found in a layer, or the default.
        struct Found<Value> {
            var value: Value
            var source: Source
            var place: String
        }

        private mutating func lookup(_ key: GatewayConfigurationKey) -> Found<ConfigContent>? {
            let type: ConfigType =
                switch key.type {
                case .string: .string
                case .integer: .int
                case .boolean: .bool
                }
            for layer in self.layers {
                let result: LookupResult
                do {
                    result = try layer.snapshot.value(forKey: AbsoluteConfigKey(key.components), type: type)
                } catch {
                    self.problems.append(
                        GatewayConfigurationError.invalidValue(
                            key: key.name,
                            source: layer.source,
                            reason: "\(layer.place(key)) must be a single \(key.typeText) value"
                                + (key.type == .boolean ? " (true or false)" : "")
                        )
                    )
                    return nil
                }
                if let value = result.value {
                    self.origins[key.name] = Origin(source: layer.source, name: layer.place(key))
                    return Found(value: value.content, source: layer.source, place: layer.place(key))
                }
            }
            self.origins[key.name] = Origin(source: .embeddedDefault, name: "default")
            return nil
        }

        private func invalid(
            _ key: GatewayConfigurationKey,
            _ found: Found<some Any>,
            _ shown: String,
            allowed: String
        ) -> GatewayConfigurationError {
            GatewayConfigurationError.invalidValue(
                key: key.name,
                source: found.source,
                reason: "\(found.place) = \(shown.debugDescription) is not allowed: \(allowed)"
            )
        }

        mutating func integer(
            _ key: GatewayConfigurationKey,
            default defaultValue: Int,
            range: ClosedRange<Int>,
            allowed: String? = nil
        ) throws(GatewayConfigurationError) -> Found<Int> {
            guard let found = self.lookup(key) else {
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            guard case .int(let value) = found.value else {
                self.problems.append(self.invalid(key, found, "\(found.value)", allowed: "an integer"))
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            guard range.contains(value) else {
                self.problems.append(
                    self.invalid(
                        key,
                        found,
                        String(value),
                        allowed: allowed ?? "\(range.lowerBound)-\(range.upperBound)"
                    )
                )
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            return Found(value: value, source: found.source, place: found.place)
        }

        mutating func boolean(
            _ key: GatewayConfigurationKey,
            default defaultValue: Bool
        ) throws(GatewayConfigurationError) -> Found<Bool> {
            guard let found = self.lookup(key) else {
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            guard case .bool(let value) = found.value else {
                self.problems.append(self.invalid(key, found, "\(found.value)", allowed: "true or false"))
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            return Found(value: value, source: found.source, place: found.place)
        }

        /// A string; `check` returns what is allowed when the value is not.
        mutating func string(
            _ key: GatewayConfigurationKey,
            default defaultValue: String,
            check: (String) -> String?
        ) throws(GatewayConfigurationError) -> Found<String> {
            guard let found = self.lookup(key) else {
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            guard case .string(let value) = found.value else {
                self.problems.append(self.invalid(key, found, "\(found.value)", allowed: "a string"))
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            if let allowed = check(value) {
                self.problems.append(self.invalid(key, found, value, allowed: allowed))
                return Found(value: defaultValue, source: .embeddedDefault, place: "the default of \(key.name)")
            }
            return Found(value: value, source: found.source, place: found.place)
        }

        /// An optional string: absent, or empty, is `nil`.
        mutating func optionalString(
            _ key: GatewayConfigurationKey,
            check: (String) -> String?
        ) throws(GatewayConfigurationError) -> Found<String?> {
            let found = try self.string(key, default: "") { $0.isEmpty ? nil : check($0) }
            return Found(value: found.value.isEmpty ? nil : found.value, source: found.source, place: found.place)
        }

        // MARK: Building

        mutating func build() throws(GatewayConfigurationError) -> GatewayConfiguration {
            typealias K = GatewayConfigurationKey
            let host = try self.string(.httpHost, default: "127.0.0.1") { value in
                HostAddress(value).isValid
                    ? nil : "an IPv4 address, an IPv6 address or a host name (letters, digits, '-' and '.')"
            }
            let port = try self.integer(.httpPort, default: 8443, range: 1...65535, allowed: "a port, 1-65535")
            let certificate = try self.optionalString(.httpTLSCertificate, check: Self.checkPath)
            let key = try self.optionalString(.httpTLSKey, check: Self.checkPath)
            let generate = try self.boolean(.httpTLSGenerate, default: true)
            switch (certificate.value, key.value) {
            case (.some, nil):
                self.problems.append(
                    GatewayConfigurationError.invalidValue(
                        key: K.httpTLSKey.name,
                        source: certificate.source,
                        reason: "http.tls.certificate is set (\(certificate.place)) but http.tls.key is not: set both "
                            + "or neither"
                    )
                )
            case (nil, .some):
                self.problems.append(
                    GatewayConfigurationError.invalidValue(
                        key: K.httpTLSCertificate.name,
                        source: key.source,
                        reason: "http.tls.key is set (\(key.place)) but http.tls.certificate is not: set both or "
                            + "neither"
                    )
                )
            default:
                break
            }
            // The listening policy: TLS on every address that is not loopback.
            if !HostAddress(host.value).isLoopback, certificate.value == nil, !generate.value {
                self.problems.append(
                    GatewayConfigurationError.listeningPolicy(
                        key: K.httpHost.name,
                        source: host.source,
                        reason: "http.tls.generate is false and no certificate is configured, so the gateway cannot "
                            + "listen on \(host.value) (\(host.place)): an address that is not loopback is served only "
                            + "over TLS. Set http.tls.certificate and http.tls.key, set http.tls.generate to true "
                            + "(\(generate.place) made it false), or listen on loopback (127.0.0.1, ::1, localhost)."
                    )
                )
            }

            let state = try self.string(.stateDirectory, default: "state/gateway", check: Self.checkPath)
            let terminalID = try self.string(.terminalID, default: "ambulance-01") { value in
                let allowed = value.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                        || byte == 0x2E || byte == 0x5F || byte == 0x2D
                }
                return (1...64).contains(value.utf8.count) && allowed ? nil : "1-64 of A-Z a-z 0-9 . _ -"
            }
            let institutionCode = try self.string(.terminalInstitutionCode, default: "9999999999") { value in
                value.utf8.count == 10 && value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
                    ? nil : "exactly 10 digits"
            }
            let vaultPath = try self.string(
                .vaultPath,
                default: state.value + "/vault.sqlite",
                check: Self.checkPath
            )
            let keySource = try self.string(.vaultKeySource, default: "auto") { value in
                DeviceKeySource(rawValue: value) == nil ? "auto, file or credential" : nil
            }
            let maxAge = try self.integer(.vaultMaxAgeHours, default: 24, range: 1...168)
            let purgeInterval = try self.integer(.vaultPurgeIntervalSeconds, default: 60, range: 1...3600)
            let crewDatabase = try self.string(
                .crewDatabase,
                default: state.value + "/crew.sqlite",
                check: Self.checkPath
            )
            let sessionHours = try self.integer(.crewSessionHours, default: 24, range: 1...24)
            let idleLock = try self.integer(.crewIdleLockSeconds, default: 300, range: 30...3600)
            let maxFailures = try self.integer(.crewMaxFailures, default: 5, range: 1...20)
            let onshiURL = try self.string(.onshiURL, default: "https://127.0.0.1:18443", check: Self.checkOnshiURL)
            let onshiTLS = try self.string(.onshiTLSDirectory, default: "state/terminal-tls", check: Self.checkPath)
            let pool = try self.integer(.onshiPoolConnections, default: 9, range: 1...32)
            let deadline = try self.integer(.fetchDeadlineMilliseconds, default: 3000, range: 1...120_000)
            let categoryDeadline = try self.integer(
                .fetchCategoryDeadlineMilliseconds,
                default: 6000,
                range: 1...120_000
            )
            if categoryDeadline.value < deadline.value {
                self.problems.append(
                    self.invalid(
                        .fetchCategoryDeadlineMilliseconds,
                        categoryDeadline,
                        String(categoryDeadline.value),
                        allowed: "at least fetch.deadline-ms, which is \(deadline.value) (\(deadline.place))"
                    )
                )
            }
            let retryInitial = try self.integer(.fetchRetryInitialMilliseconds, default: 2000, range: 100...600_000)
            let retryMax = try self.integer(.fetchRetryMaxMilliseconds, default: 60_000, range: 100...3_600_000)
            if retryMax.value < retryInitial.value {
                self.problems.append(
                    self.invalid(
                        .fetchRetryMaxMilliseconds,
                        retryMax,
                        String(retryMax.value),
                        allowed:
                            "at least fetch.retry-initial-ms, which is \(retryInitial.value) (\(retryInitial.place))"
                    )
                )
            }
            let readerName = try self.optionalString(.readerName) { value in
                value.utf8.count <= 256 && !value.contains("\0") ? nil : "a reader name of at most 256 bytes"
            }
            let poll = try self.integer(.readerPollMilliseconds, default: 500, range: 50...10_000)
            let tokenFile = try self.optionalString(.dispatchTokenFile, check: Self.checkPath)
            let hospitalsFile = try self.optionalString(.handoffHospitals, check: Self.checkPath)
            let handoffTLS = try self.string(.handoffTLSDirectory, default: "state/hospital-tls", check: Self.checkPath)
            let logLevel = try self.string(.logLevel, default: "info") { value in
                Logger.Level(rawValue: value) == nil ? "trace, debug, info, notice, warning, error or critical" : nil
            }
            let logDestination = try self.string(.logDestination, default: "auto") { value in
                LogDestination(rawValue: value) == nil ? "auto, journal or stderr" : nil
            }

            if !self.problems.isEmpty { throw GatewayConfigurationError.several(self.problems) }
            return GatewayConfiguration(
                http: HTTP(
                    host: host.value,
                    port: port.value,
                    tls: TLS(certificatePath: certificate.value, keyPath: key.value, generate: generate.value)
                ),
                stateDirectory: state.value,
                terminal: Terminal(id: terminalID.value, institutionCode: institutionCode.value),
                vault: Vault(
                    path: vaultPath.value,
                    keySource: DeviceKeySource(rawValue: keySource.value)!,
                    maximumAge: .seconds(maxAge.value * 3600),
                    purgeInterval: .seconds(purgeInterval.value)
                ),
                crew: Crew(
                    databasePath: crewDatabase.value,
                    sessionLength: .seconds(sessionHours.value * 3600),
                    idleLock: .seconds(idleLock.value),
                    maximumFailures: maxFailures.value
                ),
                onshi: Onshi(url: onshiURL.value, tlsDirectory: onshiTLS.value, poolConnections: pool.value),
                fetch: Fetch(
                    deadline: .milliseconds(deadline.value),
                    categoryDeadline: .milliseconds(categoryDeadline.value),
                    retryInitial: .milliseconds(retryInitial.value),
                    retryMaximum: .milliseconds(retryMax.value)
                ),
                reader: Reader(name: readerName.value, pollInterval: .milliseconds(poll.value)),
                dispatch: Dispatch(tokenFile: tokenFile.value),
                handoff: Handoff(hospitalsFile: hospitalsFile.value, tlsDirectory: handoffTLS.value),
                logLevel: Logger.Level(rawValue: logLevel.value)!,
                logDestination: LogDestination(rawValue: logDestination.value)!,
                origins: self.origins
            )
        }

        /// A file or folder path: not empty, at most 4096 bytes, no NUL.
        static func checkPath(_ value: String) -> String? {
            !value.isEmpty && value.utf8.count <= 4096 && !value.contains("\0")
                ? nil : "a file-system path (1-4096 bytes)"
        }

        /// An `https` URL with a host, without credentials, query or fragment.
        static func checkOnshiURL(_ value: String) -> String? {
            let allowed = "an https URL with a host and no user, query or fragment (https://host:port/path)"
            guard value.utf8.count <= 2048, let components = URLComponents(string: value) else { return allowed }
            guard components.scheme?.lowercased() == "https" else { return "https only: " + allowed }
            guard let host = components.host, !host.isEmpty, components.user == nil, components.password == nil,
                components.query == nil, components.fragment == nil
            else { return allowed }
            if let port = components.port, !(1...65535).contains(port) { return allowed }
            return nil
        }
    }
}
