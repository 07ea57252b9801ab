import KyukyuOperations
import Metrics
import Testing

@Suite("metrics exposition")
struct MetricsExpositionTests {
    @Test("swift-metrics written through the factory appear in Prometheus's text format, durations in seconds")
    func exposition() {
        let metrics = MetricsExposition()
        Counter(
            label: "kyukyu_card_reads_total",
            dimensions: [("credential", "android"), ("outcome", "identified")],
            factory: metrics.factory
        )
        .increment()
        Timer(
            label: "kyukyu_fetch_duration_seconds",
            dimensions: [("category", "medications")],
            factory: metrics.factory
        )
        .recordMilliseconds(1200)
        Gauge(label: "kyukyu_outbox_depth", factory: metrics.factory).record(3)
        let text = String(decoding: metrics.render(), as: UTF8.self)
        #expect(text.contains(#"kyukyu_card_reads_total{credential="android",outcome="identified"} 1"#))
        #expect(text.contains(#"kyukyu_fetch_duration_seconds_bucket{category="medications",le="1.5"} 1"#))
        #expect(text.contains(#"kyukyu_fetch_duration_seconds_bucket{category="medications",le="1.0"} 0"#))
        #expect(text.contains("kyukyu_outbox_depth 3"))
    }
}
