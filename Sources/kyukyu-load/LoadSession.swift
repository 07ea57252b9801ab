import ArgumentParser
import Foundation
import KyukyuLoad

/// One command's runs: a single plan, or a sweep of rates with its knee. `run` runs one plan; its second argument,
/// when set, stops the sends after that long (the saturation probe).
struct LoadSession {
    let options: PlanOptions
    let name: String

    typealias Runner = (OpenLoopPlan, Duration?) async throws -> LoadResult

    func execute(_ run: Runner) async throws {
        if options.sweep != nil || options.rates != nil {
            try await sweep(run)
            return
        }
        let plan = options.plan(rate: options.rate!)
        let result = try await run(plan, nil)
        print(result.summary(plan: plan))
        if let out = options.out {
            try Self.save(result, plan: plan, target: name, to: out)
            print("spectra and figures in \(out)")
        }
        if !result.clean { throw ExitCode(3) }
    }

    /// Runs every rate of the sweep, lowest first, writes each run's files and the sweep's table, and prints the
    /// knee.
    private func sweep(_ run: Runner) async throws {
        var saturation = options.rate
        var measured = false
        if options.sweep != nil, saturation == nil {
            // As fast as it goes: requests due far faster than any server answers, sends stopped after --duration.
            let probe = options.plan(rate: 1_000_000)
            let result = try await run(probe, probe.duration)
            saturation = Double(result.sent - result.failed) / max(result.elapsedSeconds, 1e-9)
            measured = true
            print(
                String(
                    format: "saturation (measured): %.0f answers/s over %d connections",
                    saturation!,
                    probe.connections
                )
            )
        }
        let rates: [Double]
        if let list = options.rates {
            rates = try SweepRates.parse(list, what: "--rates").sorted()
        } else {
            rates = SweepRates.rates(
                percentages: try SweepRates.parse(options.sweep!, what: "--sweep"),
                of: saturation!
            )
        }
        var points: [SweepPoint] = []
        for (number, rate) in rates.enumerated() {
            if number > 0 { try await Task.sleep(for: .seconds(1)) }  // Let the server drain between rates.
            let plan = options.plan(rate: rate)
            let result = try await run(plan, nil)
            let point = SweepPoint(offered: rate, result: result)
            points.append(point)
            print(
                String(
                    format:
                        "offered %.0f/s: answered %.0f/s, p50 %.2f ms, p99 %.2f ms (from send %.2f ms), %d late, %d failed",
                    rate,
                    point.answered,
                    point.p50,
                    point.p99,
                    point.p99FromSend,
                    point.late,
                    point.failed
                )
            )
            if let out = options.out {
                try Self.save(result, plan: plan, target: name, to: out + "/rate-\(Int(rate))")
            }
        }
        let rule = KneeRule(factor: options.kneeFactor, sloMilliseconds: options.slo)
        let knee = rule.knee(points)
        print(Self.table(points, knee: knee))
        let bound = rule.bound(points)
        if let knee {
            print(
                String(
                    format: "knee: %.0f requests/s (p99 ≤ %.2f ms and ≥ %.0f %% answered)",
                    points[knee].offered,
                    bound,
                    rule.keepUp * 100
                )
            )
        } else {
            print(
                String(
                    format: "no knee: even the lowest rate breaks the rule (p99 ≤ %.2f ms, ≥ %.0f %% answered)",
                    bound,
                    rule.keepUp * 100
                )
            )
        }
        if let out = options.out {
            let summary = SweepSummary(
                target: name,
                connections: options.connections,
                durationSeconds: options.duration,
                saturation: saturation,
                saturationMeasured: measured,
                rule: rule,
                boundMilliseconds: bound,
                knee: knee.map { points[$0].offered },
                points: points,
                at: ISO8601DateFormatter().string(from: Date())
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try encoder.encode(summary).write(to: URL(fileURLWithPath: out + "/sweep.json"))
            print("sweep in \(out)/sweep.json")
        }
    }

    /// The sweep's figures, as written to sweep.json.
    struct SweepSummary: Codable {
        var target: String
        var connections: Int
        var durationSeconds: Double
        var saturation: Double?
        var saturationMeasured: Bool
        var rule: KneeRule
        var boundMilliseconds: Double
        var knee: Double?
        var points: [SweepPoint]
        var at: String
    }

    /// Latency against offered load, as a Markdown table; the knee's row is marked.
    static func table(_ points: [SweepPoint], knee: Int?) -> String {
        var lines = [
            "| offered (/s) | answered (/s) | p50 (ms) | p99 (ms) | p99 from send (ms) | late | failed |",
            "|---|---|---|---|---|---|---|",
        ]
        for (index, point) in points.enumerated() {
            lines.append(
                String(
                    format: "| %@%.0f | %.0f | %.2f | %.2f | %.2f | %d | %d |",
                    index == knee ? "**knee** " : "",
                    point.offered,
                    point.answered,
                    point.p50,
                    point.p99,
                    point.p99FromSend,
                    point.late,
                    point.failed
                )
            )
        }
        return lines.joined(separator: "\n")
    }

    /// Writes corrected.hgrm, uncorrected.hgrm and result.json to `out`.
    static func save(_ result: LoadResult, plan: OpenLoopPlan, target: String, to out: String) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data(LoadResult.spectrum(result.corrected).utf8).write(to: URL(fileURLWithPath: out + "/corrected.hgrm"))
        try Data(LoadResult.spectrum(result.uncorrected).utf8).write(
            to: URL(fileURLWithPath: out + "/uncorrected.hgrm")
        )
        try result.json(plan: plan, target: target).write(to: URL(fileURLWithPath: out + "/result.json"))
    }
}
