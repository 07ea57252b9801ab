public import KyukyuOperations
import KyukyuVault
import Logging

/// Everything the gateway service can be configured with, loaded from flags, the environment, a JSON file and
/// embedded defaults (in that order of precedence) by ``load(arguments:environment:file:)``.
///
/// Every key, its default, its environment variable, its flag and its meaning are listed by
/// ``documentation()`` (and in docs/gateway-configuration.md, which is made from it). A loaded configuration
/// is valid: ports and ranges are checked, the onshi URL is HTTPS, and the listening policy holds (a
/// non-loopback address is served only over TLS).
public struct GatewayConfiguration: Sendable {
    /// Where a configuration value came from.
    public struct Source: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case flag
            case environment
            case file
            case embeddedDefault
        }

        private let backing: Backing

        private init(_ backing: Backing) { self.backing = backing }

        /// A command-line flag (`--http-port 8443`); the highest precedence.
        public static let flag = Source(.flag)
        /// An environment variable (`KYUKYU_GATEWAY_HTTP_PORT=8443`).
        public static let environment = Source(.environment)
        /// The JSON configuration file.
        public static let file = Source(.file)
        /// The embedded default; the lowest precedence.
        public static let embeddedDefault = Source(.embeddedDefault)

        /// `flag`, `environment`, `file` or `default`.
        public var description: String {
            switch self.backing {
            case .flag: "flag"
            case .environment: "environment"
            case .file: "file"
            case .embeddedDefault: "default"
            }
        }
    }

    /// The HTTP server (`http.*`).
    public struct HTTP: Sendable, Equatable {
        /// The address to listen on (`http.host`): an IPv4 or IPv6 address or a host name.
        public var host: String
        /// The TCP port to listen on (`http.port`).
        public var port: Int
        /// The server certificate (`http.tls.*`).
        public var tls: TLS
    }

    /// The server's TLS settings (`http.tls.*`).
    public struct TLS: Sendable, Equatable {
        /// The PEM file of the server certificate (chain), if one is configured (`http.tls.certificate`).
        public var certificatePath: String?
        /// The PEM file of the server's private key, if one is configured (`http.tls.key`).
        public var keyPath: String?
        /// Whether a self-signed certificate is generated (and reused) when a non-loopback address is served
        /// with no configured certificate (`http.tls.generate`).
        public var generate: Bool
    }

    /// This terminal's identity (`terminal.*`).
    public struct Terminal: Sendable, Equatable {
        /// The terminal's ID in the audit and towards onshi (`terminal.id`).
        public var id: String
        /// The 10-digit medical institution code the terminal acts for (`terminal.institution-code`).
        public var institutionCode: String
    }

    /// The encrypted vault (`vault.*`).
    public struct Vault: Sendable, Equatable {
        /// The vault's SQLite database file (`vault.path`).
        public var path: String
        /// Where the device keyring comes from (`vault.key-source`).
        public var keySource: DeviceKeySource
        /// The longest an incident's data is kept before it is purged (`vault.max-age-hours`).
        public var maximumAge: Duration
        /// How often the purge service runs (`vault.purge-interval-seconds`).
        public var purgeInterval: Duration
    }

    /// Crew accounts and sessions (`crew.*`).
    public struct Crew: Sendable, Equatable {
        /// The crew database file (`crew.database`).
        public var databasePath: String
        /// The longest a shift session lasts (`crew.session-hours`).
        public var sessionLength: Duration
        /// How long without a touch before the session locks (`crew.idle-lock-seconds`).
        public var idleLock: Duration
        /// Failed sign-ins (and wrong unlock PINs) before the account or session is locked (`crew.max-failures`).
        public var maximumFailures: Int
    }

    /// The eligibility service (`onshi.*`).
    public struct Onshi: Sendable, Equatable {
        /// The base URL of onshi; always `https` (`onshi.url`).
        public var url: String
        /// The folder of the terminal's client certificate, its key and onshi's CA (`onshi.tls-directory`).
        public var tlsDirectory: String
        /// Kept-alive connections of the pre-warmed pool (`onshi.pool-connections`).
        public var poolConnections: Int
    }

    /// Fetch deadlines and retries (`fetch.*`).
    public struct Fetch: Sendable, Equatable {
        /// The overall deadline: the summary is shown by then; later categories are marked late
        /// (`fetch.deadline-ms`).
        public var deadline: Duration
        /// How long one category is waited for before it is marked timed out (`fetch.category-deadline-ms`).
        public var categoryDeadline: Duration
        /// The first wait before retrying a fetch that could not be made (`fetch.retry-initial-ms`).
        public var retryInitial: Duration
        /// The longest wait between retries (`fetch.retry-max-ms`).
        public var retryMaximum: Duration
    }

    /// The card reader (`reader.*`).
    public struct Reader: Sendable, Equatable {
        /// The PC/SC reader to use, or `nil` for any reader (`reader.name`).
        public var name: String?
        /// How often the reader list is polled when PC/SC cannot signal changes (`reader.poll-ms`).
        public var pollInterval: Duration
    }

    /// The dispatch route (`dispatch.*`).
    public struct Dispatch: Sendable, Equatable {
        /// The file holding the bearer token of `POST /api/v1/dispatch/incidents`, or `nil` when the route is
        /// off (`dispatch.token-file`).
        public var tokenFile: String?
    }

    /// The hospital handoff (`handoff.*`).
    public struct Handoff: Sendable, Equatable {
        /// The JSON file of the receiving hospitals the crew may pick, or `nil` for the one demo hospital
        /// (`handoff.hospitals`); read by ``GatewayConfiguration/hospitals()``.
        public var hospitalsFile: String?
        /// The folder of this terminal's certificate and key for the hospitals' receivers and of their CA
        /// (`handoff.tls-directory`).
        public var tlsDirectory: String
    }

    /// The HTTP server.
    public var http: HTTP
    /// The gateway's state folder (`state.directory`).
    public var stateDirectory: String
    /// This terminal.
    public var terminal: Terminal
    /// The vault.
    public var vault: Vault
    /// Crew accounts and sessions.
    public var crew: Crew
    /// The eligibility service.
    public var onshi: Onshi
    /// Fetch deadlines and retries.
    public var fetch: Fetch
    /// The card reader.
    public var reader: Reader
    /// The dispatch route.
    public var dispatch: Dispatch
    /// The hospital handoff.
    public var handoff: Handoff
    /// The lowest level logged (`log.level`).
    public var logLevel: Logger.Level
    /// Where logs go (`log.destination`).
    public var logDestination: LogDestination

    /// Where each key's value came from, by dotted key.
    let origins: [String: Origin]

    /// Where a value came from, and under which name (flag, environment variable, JSON key or `default`).
    struct Origin: Sendable, Equatable {
        var source: Source
        var name: String
    }

    /// Where the value of `key` (dotted, for example `http.port`) came from; `nil` for an unknown key.
    public func source(of key: String) -> Source? {
        self.origins[key]?.source
    }

    /// Whether the server speaks TLS: a certificate is configured, or the address is not loopback (where the
    /// listening policy, checked when loading, guarantees a configured or generated certificate).
    public var servesTLS: Bool {
        if self.http.tls.certificatePath != nil { return true }
        return !HostAddress(self.http.host).isLoopback
    }

    /// Whether the address listened on is loopback (127.0.0.0/8, `::1` or `localhost`), where plain HTTP is
    /// allowed.
    public var listensOnLoopback: Bool {
        HostAddress(self.http.host).isLoopback
    }
}
