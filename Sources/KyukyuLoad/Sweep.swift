import Foundation
import Histogram

/// One rate of a sweep: what was offered, what was answered, and the latency at that load.
public struct SweepPoint: Sendable, Hashable, Codable {
    /// The offered rate (requests per second).
    public var offered: Double
    /// Successful answers per second over the run.
    public var answered: Double
    /// The corrected (from the due time) p50 and p99, in milliseconds.
    public var p50: Double
    /// The corrected p99, in milliseconds.
    public var p99: Double
    /// The p99 from the send (what a closed-loop tool reports), in milliseconds.
    public var p99FromSend: Double
    /// Sends that went out late, and answers that were failures.
    public var late: Int
    /// Answers that were failures.
    public var failed: Int

    /// A point.
    public init(
        offered: Double,
        answered: Double,
        p50: Double,
        p99: Double,
        p99FromSend: Double,
        late: Int,
        failed: Int
    ) {
        self.offered = offered
        self.answered = answered
        self.p50 = p50
        self.p99 = p99
        self.p99FromSend = p99FromSend
        self.late = late
        self.failed = failed
    }

    /// The point of a run at `offered` requests/s.
    public init(offered: Double, result: LoadResult) {
        let seconds = result.elapsedSeconds
        self.init(
            offered: offered,
            answered: seconds > 0 ? Double(result.sent - result.failed) / seconds : 0,
            p50: Double(result.corrected.valueAtPercentile(50)) / 1000,
            p99: Double(result.corrected.valueAtPercentile(99)) / 1000,
            p99FromSend: Double(result.uncorrected.valueAtPercentile(99)) / 1000,
            late: result.late,
            failed: result.failed
        )
    }
}

/// Where a sweep's knee is: the highest offered rate, going up from the lowest, at which the corrected p99 stays
/// within a bound and the answers keep up with the offer. The first rate that breaks either rule ends the search, so
/// a lucky rate above a bad one is not the knee.
public struct KneeRule: Sendable, Hashable, Codable {
    /// The p99 bound as a multiple of the lowest rate's p99 (2 unless told), used when there is no SLO.
    public var factor: Double
    /// A fixed p99 bound in milliseconds (a service-level objective); wins over `factor`.
    public var sloMilliseconds: Double?
    /// The share of the offered rate that must be answered successfully (0.95 unless told).
    public var keepUp: Double

    /// A rule.
    public init(factor: Double = 2, sloMilliseconds: Double? = nil, keepUp: Double = 0.95) {
        self.factor = factor
        self.sloMilliseconds = sloMilliseconds
        self.keepUp = keepUp
    }

    /// The p99 bound, in milliseconds, for `points` (sorted by offered rate).
    public func bound(_ points: [SweepPoint]) -> Double {
        if let sloMilliseconds { return sloMilliseconds }
        return (points.min { $0.offered < $1.offered }?.p99 ?? 0) * factor
    }

    /// The index in `points` of the knee, or nil when even the lowest rate breaks the rule.
    public func knee(_ points: [SweepPoint]) -> Int? {
        let bound = bound(points)
        var knee: Int?
        for (index, point) in points.enumerated().sorted(by: { $0.element.offered < $1.element.offered }) {
            guard point.p99 <= bound, point.answered >= keepUp * point.offered else { break }
            knee = index
        }
        return knee
    }

    /// Why the rule cannot be used, or nil.
    public var problem: String? {
        if let sloMilliseconds, !(sloMilliseconds > 0) { return "the SLO must be above 0 ms" }
        if !(factor >= 1) { return "the knee factor must be at least 1" }
        if !(keepUp > 0 && keepUp <= 1) { return "the keep-up share must be above 0 and at most 1" }
        return nil
    }
}

/// The rates of a sweep.
public enum SweepRates {
    /// Parses a comma-separated list of positive numbers ("25,50,75"); throws a reason in words.
    public static func parse(_ list: String, what: String) throws(LoadError) -> [Double] {
        let values = list.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw .badTarget("\(what) must be a comma-separated list of positive numbers, such as 25,50,75")
        }
        return values.compactMap { $0 }
    }

    /// `percentages` of `saturation`, in order.
    public static func rates(percentages: [Double], of saturation: Double) -> [Double] {
        percentages.sorted().map { (saturation * $0 / 100).rounded() }.map { max(1, $0) }
    }
}
