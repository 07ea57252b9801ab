import Foundation
import KyukyuEligibility
import KyukyuVault
import Logging
import Metrics
import ServiceLifecycle
import SwiftASN1
import UnixSignals
import X509

/// The gauges that describe the gateway's state rather than events: the vault's size and the age of its oldest
/// incident, and onshi's circuit breaker. Sampled when `/metrics` is scraped, so they are fresh then and cost
/// nothing between scrapes.
struct GatewayGauges: Sendable {
    let vault: IncidentVault
    let breaker: CircuitBreaker
    let metrics: any MetricsFactory

    /// Reads the vault's counts (no patient data: counts, bytes and an age) and the breaker's state into the gauges.
    func sample() async {
        if let status = try? await vault.status() {
            Gauge(label: "kyukyu_vault_incidents", factory: metrics).record(status.incidentCount)
            Gauge(label: "kyukyu_vault_bytes", factory: metrics).record(status.ciphertextBytes)
            Gauge(label: "kyukyu_vault_oldest_incident_age_seconds", factory: metrics)
                .record(status.oldestIncidentAgeSeconds ?? 0)
        }
        Gauge(label: "kyukyu_onshi_breaker_state", factory: metrics).record(Self.code(breaker.current))
    }

    /// 0 closed, 1 half-open, 2 open.
    static func code(_ state: CircuitBreaker.State) -> Int {
        switch state {
        case .closed: return 0
        case .halfOpen: return 1
        case .open: return 2
        }
    }
}

/// One certificate the gateway depends on, and when it stops being valid.
public struct CertificateExpiry: Sendable, Hashable {
    /// Which one: `onshi-terminal`, `hospital-network` or `https`.
    public var name: String
    /// Its `notAfter`.
    public var notAfter: Date
    /// Days left at the time of the check (negative: expired).
    public var daysLeft: Int
}

/// Watches the certificates a gateway cannot work without: onshi's terminal certificate (3 years and 3 months),
/// the hospital network's device certificate and the tablet's HTTPS certificate. At start and every `interval` it
/// reads them again (a rotated file is seen without a restart), records `kyukyu_certificate_expiry_timestamp_seconds`
/// and logs a warning for each that expires within `warnWithin` (30 days), an error for one that has expired.
public struct CertificateExpiryService: Service {
    /// Where each certificate is read from: a PEM file, or PEM text held in memory.
    public enum Source: Sendable, Hashable {
        /// A PEM file, read at each check; a missing file is skipped (that part is not configured).
        case file(String)
        /// PEM text (the HTTPS certificate the server was started with).
        case pem(String)
    }

    private let certificates: [(name: String, source: Source)]
    private let interval: Duration
    private let warnWithin: Duration
    private let now: @Sendable () -> Date
    private let clock: any Clock<Duration>
    private let metrics: any MetricsFactory
    private let logger: Logger

    /// A watch over `certificates`, by name.
    public init(
        certificates: [(name: String, source: Source)],
        interval: Duration = .seconds(6 * 3600),
        warnWithin: Duration = .seconds(30 * 86_400),
        now: @escaping @Sendable () -> Date = Date.init,
        clock: any Clock<Duration> = ContinuousClock(),
        metrics: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.certificates = certificates
        self.interval = interval
        self.warnWithin = warnWithin
        self.now = now
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    /// Checks once: each readable certificate's expiry, recorded and, when near or past, logged.
    @discardableResult
    public func check() -> [CertificateExpiry] {
        let now = now()
        var found: [CertificateExpiry] = []
        for (name, source) in certificates {
            let pem: String
            switch source {
            case .pem(let text):
                pem = text
            case .file(let path):
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                pem = text
            }
            guard let certificate = try? Certificate(pemEncoded: pem) else {
                logger.error("a certificate cannot be read", metadata: ["kyukyu.certificate": "\(name)"])
                continue
            }
            let notAfter = certificate.notValidAfter
            let seconds = notAfter.timeIntervalSince(now)
            let expiry = CertificateExpiry(
                name: name,
                notAfter: notAfter,
                daysLeft: Int((seconds / 86_400).rounded(.down))
            )
            found.append(expiry)
            Gauge(
                label: "kyukyu_certificate_expiry_timestamp_seconds",
                dimensions: [("certificate", name)],
                factory: metrics
            )
            .record(notAfter.timeIntervalSince1970)
            let metadata: Logger.Metadata = [
                "kyukyu.certificate": "\(name)", "kyukyu.certificate.not-after": "\(notAfter)",
                "kyukyu.certificate.days-left": "\(expiry.daysLeft)",
            ]
            if seconds <= 0 {
                logger.error(
                    "a certificate has expired: install the renewed one (docs/operations.md)",
                    metadata: metadata
                )
            } else if seconds <= Double(warnWithin.components.seconds) {
                logger.warning(
                    "a certificate expires soon: request its renewal now (docs/operations.md)",
                    metadata: metadata
                )
            }
        }
        return found
    }

    /// Checks at start and every interval until shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                check()
                do {
                    try await clock.sleep(for: interval)
                } catch {
                    return
                }
            }
        }
    }
}

/// Takes renewed device certificates into use without a restart: on each `SIGHUP` (`systemctl reload
/// kyukyu-gateway`, after `kyukyu-gateway cert install`), onshi's transport and the hospitals' client read their
/// certificate and key again for their next connections, and the certificates are checked for expiry. A pair that
/// does not match is refused and logged; the one in use stays.
struct CertificateReloadService: Service {
    let reloaders: [(name: String, reload: @Sendable () throws -> Date)]
    let expiry: CertificateExpiryService
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                reloadAll()
            }
        }
    }

    /// Reloads every certificate once; returns the names of those now in use with their `notAfter`.
    @discardableResult
    func reloadAll() -> [String: Date] {
        var reloaded: [String: Date] = [:]
        for (name, reload) in reloaders {
            do {
                let notAfter = try reload()
                reloaded[name] = notAfter
                logger.notice(
                    "certificate reloaded for the next connections",
                    metadata: ["kyukyu.certificate": "\(name)", "kyukyu.certificate.not-after": "\(notAfter)"]
                )
            } catch {
                logger.error(
                    "certificate not reloaded: the one in use stays",
                    metadata: ["kyukyu.certificate": "\(name)", "kyukyu.error": "\(error)"]
                )
            }
        }
        expiry.check()
        return reloaded
    }
}
