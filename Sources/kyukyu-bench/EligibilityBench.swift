import Foundation
import Histogram
import KyukyuCard
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuTestbed
import Logging

/// Card-to-summary and fetch latency against their physical floors, at 1 and 200 concurrent sessions, and the
/// overshoot past the deadline when onshi stalls. Real parts: private pcscd + card simulator, the stub over
/// mutual TLS on loopback, the gateway's client.
struct EligibilityBenchmark {
    let options: BenchOptions
    let upstreamMs: Double = 40
    let concurrentSessions = 200

    struct Report: Codable {
        var apduLatencyMilliseconds: Int
        var upstreamLatencyMilliseconds: Double
        var cardToSummary: LatencyStats
        var cardToSummaryFloorMilliseconds: Double
        var cardAPDUs: Double
        var fetchOneSession: LatencyStats
        var fetchFloorMilliseconds: Double
        var fetchConcurrentSessions: Int
        var fetchConcurrent: LatencyStats
        var deadlineMilliseconds: Int
        var overshootPastDeadline: LatencyStats
    }

    func latencyFaults(_ ms: Double) -> FaultConfiguration {
        let spec = FaultSpec(latency: LatencySpec(kind: .fixed, ms: ms))
        return FaultConfiguration(
            seed: 1,
            endpoints: Dictionary(
                uniqueKeysWithValues: (MedicalCategory.allCases.map(\.rawValue) + ["sessions"]).map { ($0, spec) }
            )
        )
    }

    func run() async throws {
        let logger = Logger(label: "kyukyu.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let stateDir = URL(fileURLWithPath: options.stateDir).standardizedFileURL.path
        let pkiDir = stateDir + "/sim-pki"
        let tlsDir = stateDir + "/bench-eligibility-tls"

        let stub = try EligibilitySimulator(
            options: .init(
                port: 0,
                adminPort: 0,
                pkiDirectory: pkiDir,
                tlsDirectory: tlsDir,
                faults: latencyFaults(upstreamMs)
            ),
            logger: logger
        )
        let ports = AsyncStream<Int>.makeStream()
        let server = Task {
            try await stub.run { onshi, _ in
                ports.continuation.yield(onshi)
                ports.continuation.finish()
            }
        }
        var portIterator = ports.stream.makeAsyncIterator()
        guard let port = await portIterator.next() else { throw TestbedError("the stub did not start") }
        let terminal = try TerminalPKI.loadOrCreate(directory: tlsDir, logger: logger)
        try terminal.writeClientCertificate(deviceID: "bench-01", to: tlsDir + "/terminals")
        let transport = try HTTPOnshiTransport(
            baseURL: "https://127.0.0.1:\(port)",
            tls: TerminalTLSFiles(
                certificatePath: tlsDir + "/terminals/bench-01.cert.pem",
                keyPath: tlsDir + "/terminals/bench-01.key.pem",
                trustRootsPath: tlsDir + "/terminals/ca.cert.pem"
            ),
            maxConnections: 64,
            logger: logger
        )
        let client = EligibilityClient(
            transport: transport,
            configuration: EligibilityClientConfiguration(hedgeAfter: nil),
            logger: logger
        )
        await transport.prewarm(connections: 9)
        let certificate = try TestPKI.loadOrCreate(directory: pkiDir, logger: logger).holder(3, validity: .valid)
            .userAuthCertificateDER
        let generous = FetchDeadlines(overall: .seconds(30))

        // Fetch alone: authenticate + 9 categories in parallel. Floor: two round trips at the stub's latency.
        let one = try await measure(iterations: options.iterations) {
            let final = await client.fetch(
                .visualCheck(certificateDER: certificate),
                crewID: "bench",
                consent: .verbal,
                deadlines: generous
            ).completion()
            guard final.session != nil, final.categories.values.allSatisfy({ ["ok", "empty"].contains($0.label) })
            else {
                throw TestbedError("a fetch failed: \(final.categories.mapValues(\.label))")
            }
        }
        var concurrent = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        for _ in 0..<max(1, options.iterations / 10) {
            let samples = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for _ in 0..<concurrentSessions {
                    group.addTask {
                        let start = ContinuousClock.now
                        let final = await client.fetch(
                            .visualCheck(certificateDER: certificate),
                            crewID: "bench",
                            consent: .verbal,
                            deadlines: generous
                        ).completion()
                        guard final.session != nil else {
                            throw TestbedError("a concurrent fetch failed to authenticate")
                        }
                        let elapsed = ContinuousClock.now - start
                        return UInt64(
                            elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
                        )
                    }
                }
                return try await group.reduce(into: [UInt64]()) { $0.append($1) }
            }
            for sample in samples { _ = concurrent.record(sample) }
        }

        // Overshoot: every category stalls; how long after the deadline does the snapshot come back?
        let deadlineMs = 500
        var stalled = latencyFaults(upstreamMs)
        for category in MedicalCategory.allCases {
            stalled.endpoints[category.rawValue] = FaultSpec(failures: [FailureSpec(kind: .stall)])
        }
        try await stub.faults.replace(stalled)
        var overshoot = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        // Its own client: the stalls open this one's circuit breaker, which is what a breaker is for.
        let stalledClient = EligibilityClient(
            transport: transport,
            configuration: EligibilityClientConfiguration(hedgeAfter: nil),
            breaker: CircuitBreaker(failureThreshold: .max),
            logger: logger
        )
        for _ in 0..<options.iterations {
            let start = ContinuousClock.now
            let fetch = stalledClient.fetch(
                .visualCheck(certificateDER: certificate),
                crewID: "bench",
                consent: .verbal,
                deadlines: FetchDeadlines(
                    overall: .milliseconds(deadlineMs),
                    perCategory: .milliseconds(deadlineMs + 200)
                )
            )
            _ = await fetch.snapshotAtDeadline()
            let past = (ContinuousClock.now - start) - .milliseconds(deadlineMs)
            _ = overshoot.record(
                UInt64(max(1, past.components.seconds * 1_000_000 + past.components.attoseconds / 1_000_000_000_000))
            )
            fetch.cancel()
            _ = await fetch.completion()
        }
        try await stub.faults.replace(latencyFaults(upstreamMs))

        // Card to summary: pcscd + card simulator + the stub.
        // One pcscd socket path per process (libpcsclite reads PCSCLITE_CSOCK_NAME once): reuse the card bench's.
        let daemon = try await PrivatePCSCD(basePort: 40300, directory: stateDir + "/bench-pcscd", logger: logger)
        let simulator = try CardSimulator(
            configuration: CardSimulatorConfiguration(
                port: 40300,
                holder: 3,
                dataDirectory: pkiDir,
                apduLatency: .milliseconds(options.apduLatencyMs)
            ),
            logger: logger
        )
        let runner = Task { try await simulator.run() }
        let service = PCSCService(threads: 2, logger: logger)
        let reader = CardReader(service: service, logger: logger)
        let card = try await service.waitForCard(reader: nil, timeout: .seconds(20))
        // As the gateway does while the card is read: connections up before the tap (the stalls closed some).
        await transport.prewarm(connections: 9)
        let before = await simulator.commandCount
        let cardToSummary = try await measure(iterations: options.iterations) {
            let summary = try await reader.readAuthenticationCertificate(reader: card.name)
            let final = await client.fetch(
                .visualCheck(certificateDER: summary.der),
                crewID: "bench",
                consent: .verbal,
                deadlines: generous
            ).completion()
            guard final.session != nil else {
                throw TestbedError(
                    "card-to-summary failed to authenticate: \(String(describing: final.authenticationFailure))"
                )
            }
        }
        let apdus = Double(await simulator.commandCount - before) / Double(options.iterations)
        await service.shutdown()
        runner.cancel()
        _ = await runner.result
        await daemon.stop()
        await transport.shutdown()
        server.cancel()
        _ = await server.result

        let fetchFloor = 2 * upstreamMs
        let report = Report(
            apduLatencyMilliseconds: options.apduLatencyMs,
            upstreamLatencyMilliseconds: upstreamMs,
            cardToSummary: LatencyStats(cardToSummary),
            cardToSummaryFloorMilliseconds: apdus * Double(options.apduLatencyMs) + fetchFloor,
            cardAPDUs: apdus,
            fetchOneSession: LatencyStats(one),
            fetchFloorMilliseconds: fetchFloor,
            fetchConcurrentSessions: concurrentSessions,
            fetchConcurrent: LatencyStats(concurrent),
            deadlineMilliseconds: deadlineMs,
            overshootPastDeadline: LatencyStats(overshoot)
        )
        try save(report, name: "eligibility", stateDir: stateDir)
        func row(_ name: String, _ stats: LatencyStats, _ floor: Double?) -> String {
            let ratio = floor.map { String(format: "%.2f×", stats.p50Milliseconds / $0) } ?? "—"
            let floorText = floor.map { String(format: "%.1f ms", $0) } ?? "—"
            return String(
                format: "| %@ | %.1f ms | %.1f ms | %.1f ms | %@ | %@ |",
                name,
                stats.p50Milliseconds,
                stats.p99Milliseconds,
                stats.maxMilliseconds,
                floorText,
                ratio
            )
        }
        print(
            """
            ## Eligibility (stub latency \(Int(upstreamMs)) ms per request, \(options.apduLatencyMs) ms per APDU)

            | measurement | p50 | p99 | max | floor | p50 / floor |
            |---|---|---|---|---|---|
            \(row("card → summary (\(String(format: "%.0f", apdus)) APDUs + session + 9 categories)", report.cardToSummary, report.cardToSummaryFloorMilliseconds))
            \(row("fetch, 1 session", report.fetchOneSession, fetchFloor))
            \(row("fetch, \(concurrentSessions) concurrent sessions", report.fetchConcurrent, fetchFloor))
            \(row("past a \(deadlineMs) ms deadline, upstream stalled", report.overshootPastDeadline, nil))

            """
        )
    }
}
