public import Logging
public import ServiceLifecycle

/// What a long-running program of this project sets up once, before its services: systemd's notification socket
/// (from the environment), swift-log's handler (``LogDestination``) and swift-metrics' backend (a
/// ``MetricsExposition`` for `/metrics`). `kyukyu-gateway serve` and `kyukyu-hospital serve` start this way.
public struct ServiceProcess: Sendable {
    /// The program's name (`SYSLOG_IDENTIFIER`).
    public let identifier: String
    /// systemd's notification socket and watchdog.
    public let notifier: SystemdNotifier
    /// The process's metrics.
    public let metrics: MetricsExposition

    /// Reads systemd's variables and bootstraps logging and metrics for the whole process (call once).
    ///
    /// - Throws: ``OperationsError/invalidEnvironment(_:_:)`` when systemd's variables hold what systemd never
    ///   sets; nothing is bootstrapped then.
    public static func bootstrap(
        identifier: String,
        logLevel: Logger.Level,
        logDestination: LogDestination,
        environment: [String: String]
    ) throws(OperationsError) -> ServiceProcess {
        let notifier = try SystemdNotifier(environment: environment)
        logDestination.bootstrap(identifier: identifier, level: logLevel, environment: environment)
        let metrics = MetricsExposition()
        metrics.bootstrap()
        return ServiceProcess(identifier: identifier, notifier: notifier, metrics: metrics)
    }

    /// Tells systemd the program is ready (`READY=1` with `status`); a failure is logged, never fatal.
    public func ready(status: String, logger: Logger) {
        do {
            try notifier.ready(status: status)
        } catch {
            logger.error("systemd was not told the service is ready", metadata: ["kyukyu.error": "\(error)"])
        }
    }

    /// The watchdog's service for this process, fed while `isHealthy` says yes.
    public func watchdog(
        isHealthy: @escaping @Sendable () async -> Bool,
        logger: Logger
    ) -> some Service {
        SystemdWatchdogService(notifier: notifier, clock: ContinuousClock(), isHealthy: isHealthy, logger: logger)
    }
}
