import Metrics
public import Prometheus

/// The process's metrics in Prometheus's text format: a registry that swift-metrics writes to, and its exposition
/// for a `/metrics` route.
///
/// Labels carry only the service's own vocabulary (a medical category, a credential type, an outcome), never a
/// patient's data or an incident ID: each label's values are a small fixed set.
public struct MetricsExposition: Sendable {
    /// The registry the metrics live in.
    public let registry: PrometheusCollectorRegistry
    /// The swift-metrics factory writing to ``registry``, with this service's histogram buckets.
    public let factory: PrometheusMetricsFactory

    /// The content type of ``render()``: Prometheus's text format 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// A fresh registry (tests make their own; a program makes one and bootstraps it).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Onshi's deadlines are seconds; deliveries through a dead zone take minutes.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(1500), .seconds(2), .seconds(3), .seconds(5), .seconds(10), .seconds(30),
            .seconds(60), .seconds(300), .seconds(900),
        ]
        self.factory = factory
    }

    /// Makes this registry the process's swift-metrics backend (once per process).
    public func bootstrap() {
        MetricsSystem.bootstrap(factory)
    }

    /// Every metric, in the text format.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}
