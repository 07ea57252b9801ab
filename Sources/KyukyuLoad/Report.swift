public import Foundation
import Histogram

extension LoadResult {
    /// The percentile spectrum of `histogram` in HdrHistogram's text format (values in milliseconds), as
    /// HdrHistogram's plotter and wrk2 read it.
    public static func spectrum(_ histogram: Histogram<UInt64>) -> String {
        var text = ""
        histogram.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000)
        return text
    }

    /// Seconds from the first due time to the last answer.
    public var elapsedSeconds: Double { OpenLoop.seconds(elapsed) }

    /// Answers per second over the whole run.
    public var throughput: Double { elapsedSeconds > 0 ? Double(sent) / elapsedSeconds : 0 }

    /// A few lines for a person: what was sent, how late, how fast, the percentiles both ways.
    public func summary(plan: OpenLoopPlan) -> String {
        func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> String {
            String(format: "%.2f", Double(histogram.valueAtPercentile(percentile)) / 1000)
        }
        var lines = [
            String(
                format:
                    "%d requests due at %.0f/s over %d connections; %d sent, %d late (> %@), %d failed, %d dropped; "
                    + "%.1f answers/s",
                plan.requests,
                plan.rate,
                plan.connections,
                sent,
                late,
                "\(plan.lateAfter)",
                failed,
                dropped,
                throughput
            ),
            "latency (ms)      p50      p90      p99    p99.9      max",
        ]
        for (name, histogram) in [("from due time", corrected), ("from send    ", uncorrected)] {
            lines.append(
                "\(name)  \(ms(histogram, 50).padded(7))  \(ms(histogram, 90).padded(7))  \(ms(histogram, 99).padded(7))  "
                    + "\(ms(histogram, 99.9).padded(7))  \(String(format: "%.2f", Double(histogram.max) / 1000).padded(7))"
            )
        }
        if !clean {
            lines.append(
                "NOT CLEAN: \(late) requests went out late, \(failed) failed and \(dropped) were never sent; "
                    + "the load was not what was asked."
            )
        }
        return lines.joined(separator: "\n")
    }

    /// The figures as JSON (for reports and docs/performance.md).
    public func json(plan: OpenLoopPlan, target: String? = nil) throws -> Data {
        func percentiles(_ histogram: Histogram<UInt64>) -> [String: Double] {
            var values: [String: Double] = [:]
            for percentile in [50.0, 90, 99, 99.9, 99.99] {
                values["p\(percentile)"] = Double(histogram.valueAtPercentile(percentile)) / 1000
            }
            values["max"] = Double(histogram.max) / 1000
            return values
        }
        var object: [String: Any] = [
            "plan": [
                "rate": plan.rate, "connections": plan.connections, "requests": plan.requests,
                "durationSeconds": OpenLoop.seconds(plan.duration),
            ],
            "sent": sent, "late": late, "failed": failed, "dropped": dropped, "clean": clean,
            "elapsedSeconds": elapsedSeconds, "throughput": throughput,
            "answersPerSecond": answersPerSecond,
            "correctedMilliseconds": percentiles(corrected),
            "uncorrectedMilliseconds": percentiles(uncorrected),
        ]
        if let target { object["target"] = target }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}

extension String {
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
