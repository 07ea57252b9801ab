public import Logging
public import ServiceLifecycle

#if KYUKYU_OTEL
    import OTel
#endif

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
    /// Services the set-up adds to the program's group: the OTLP exporter of traces, when traces are exported.
    public let services: [any Service]

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
        let tracing = try Self.tracing(identifier: identifier, environment: environment)
        logDestination.bootstrap(identifier: identifier, level: logLevel, environment: environment)
        let metrics = MetricsExposition()
        metrics.bootstrap()
        return ServiceProcess(identifier: identifier, notifier: notifier, metrics: metrics, services: tracing)
    }

    /// Traces are off unless `OTEL_TRACES_EXPORTER=otlp` (OpenTelemetry's own variable; the endpoint and the rest
    /// come from `OTEL_EXPORTER_OTLP_*`, as the specification says). Then a build with swift-otel (`KYUKYU_OTEL=1`)
    /// exports the spans of card reads, onshi, the vault and the handoff over OTLP/HTTP; any other build refuses to
    /// start rather than drop them silently. Only tracing is bootstrapped (swift-otel's logs and metrics are off:
    /// the journal and `/metrics` are this program's own); returns the exporter's service.
    static func tracing(
        identifier: String,
        environment: [String: String]
    ) throws(OperationsError) -> [any Service] {
        guard environment["OTEL_TRACES_EXPORTER"] == "otlp" else { return [] }
        #if KYUKYU_OTEL
            var configuration = OTel.Configuration.default
            configuration.serviceName = identifier
            configuration.logs.enabled = false
            configuration.metrics.enabled = false
            configuration.traces.exporter = .otlp
            configuration.traces.otlpExporter.protocol = .httpProtobuf
            let exporter: any Service
            do {
                exporter = try OTel.bootstrap(configuration: configuration, environment: environment)
            } catch {
                throw .tracingUnavailable("the OTLP exporter of traces cannot start: \(error)")
            }
            return [exporter]
        #else
            throw .tracingUnavailable(
                "OTEL_TRACES_EXPORTER=otlp, but this build has no OTLP exporter: build with KYUKYU_OTEL=1 "
                    + "(docs/observability.md)"
            )
        #endif
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
