import Foundation
import InMemoryTracing
import KyukyuDomain
import KyukyuEligibility
import KyukyuTestbed
import Logging
import Testing
import Tracing

@testable import KyukyuOperations

/// Traces: what the libraries record (with a tracer in memory, bootstrapped once for this test process), and that
/// asking for OTLP export from a build without the exporter is refused rather than silently dropped.
@Suite("traces")
struct TracingTests {
    /// The process's tracer: bootstrapped once, on first use (no other suite bootstraps one).
    static let tracer: InMemoryTracer = {
        let tracer = InMemoryTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()

    @Test("a fetch records one onshi.authenticate span and one onshi.category span per category, with no patient data")
    func fetchSpans() async throws {
        let tracer = Self.tracer
        let client = EligibilityClient(transport: InMemoryOnshi(), logger: Logger(label: "test"))
        // A root span of this test's own, to find its spans among whatever else ran in the process.
        let root = try await withSpan("test.fetch") { span in
            let final = await client.fetch(
                .visualCheck(certificateDER: [0x30, 0x03, 0x02, 0x01, 0x01]),
                crewID: "TRACE-01",
                consent: .verbal,
                deadlines: FetchDeadlines(overall: .seconds(5))
            ).completion()
            #expect(final.authenticationError == nil)
            return try #require(span.context.inMemorySpanContext?.traceID)
        }
        let spans = tracer.finishedSpans.filter { $0.traceID == root }
        #expect(spans.filter { $0.operationName == "onshi.authenticate" }.count == 1)
        let categories = spans.filter { $0.operationName == "onshi.category" }
        #expect(categories.count == MedicalCategory.allCases.count)
        let named = Set(
            categories.compactMap { span -> String? in
                guard case .string(let name) = span.attributes["kyukyu.onshi.category"]?.toSpanAttribute() else {
                    return nil
                }
                return name
            }
        )
        #expect(named == Set(MedicalCategory.allCases.map(\.rawValue)))
        // Every attribute is one of the service's own words: nothing of the patient's, and not the crew's ID.
        let allowed: Set<String> = ["kyukyu.onshi.category", "kyukyu.onshi.assurance"]
        for span in spans where span.operationName != "test.fetch" {
            span.attributes.forEach { key, _ in #expect(allowed.contains(key), "\(span.operationName): \(key)") }
        }
    }

    @Test("OTEL_TRACES_EXPORTER=otlp is refused by a build without the exporter; without it, traces are off")
    func exportNeedsTheBuildOption() throws {
        #expect(try ServiceProcess.tracing(identifier: "kyukyu-gateway", environment: [:]).isEmpty)
        #if !KYUKYU_OTEL
            #expect(throws: OperationsError.tracingUnavailable("")) {
                try ServiceProcess.tracing(identifier: "kyukyu-gateway", environment: ["OTEL_TRACES_EXPORTER": "otlp"])
            }
        #endif
    }
}
