import ArgumentParser
import Foundation
import KyukyuLoad
import NIOCore
import NIOPosix

/// The plan options every target shares: one rate, or a sweep of rates.
struct PlanOptions: ParsableArguments {
    @Option(
        help: """
            Requests per second, over all connections. With --sweep: the saturation rate the percentages are of \
            (measured first when omitted, where the target allows it).
            """
    )
    var rate: Double?

    @Option(help: "Seconds of load per run.")
    var duration: Double = 10

    @Option(help: "Connections, each sending one request at a time.")
    var connections = 8

    @Option(help: "Event-loop threads of the client (default: one per core).")
    var threads = System.coreCount

    @Option(help: "A folder for the spectra (corrected.hgrm, uncorrected.hgrm) and result.json; per rate in a sweep.")
    var out: String?

    @Option(help: "Percentages of the saturation rate to run, e.g. 25,50,75,100,125 (a sweep to find the knee).")
    var sweep: String?

    @Option(help: "Rates to run, e.g. 1000,2000,4000 (a sweep to find the knee).")
    var rates: String?

    @Option(help: "The knee's p99 bound in ms (an SLO); default: --knee-factor times the lowest rate's p99.")
    var slo: Double?

    @Option(help: "The knee's p99 bound as a multiple of the lowest rate's p99, when there is no --slo.")
    var kneeFactor: Double = 2

    /// Refuses what cannot run, in words; `measuredSaturation` says whether the target can measure its saturation
    /// rate (a sweep without --rate).
    func check(measuredSaturation: Bool) throws {
        guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration must be 0…86400 seconds") }
        guard threads >= 1, threads <= 256 else { throw ValidationError("--threads must be 1…256") }
        if sweep != nil, rates != nil { throw ValidationError("--sweep and --rates cannot go together") }
        do {
            if let sweep { _ = try SweepRates.parse(sweep, what: "--sweep") }
            if let rates { _ = try SweepRates.parse(rates, what: "--rates") }
        } catch {
            throw ValidationError(error.description)
        }
        if let problem = KneeRule(factor: kneeFactor, sloMilliseconds: slo).problem { throw ValidationError(problem) }
        if sweep == nil, rates == nil, rate == nil { throw ValidationError("--rate is needed (or --sweep/--rates)") }
        if sweep != nil, rate == nil, !measuredSaturation {
            throw ValidationError("this target cannot measure its saturation rate: give --rate with --sweep")
        }
        if let problem = plan(rate: rate ?? 1).problem { throw ValidationError(problem) }
    }

    /// The plan at `rate`.
    func plan(rate: Double) -> OpenLoopPlan {
        OpenLoopPlan(rate: rate, duration: .milliseconds(Int64(duration * 1000)), connections: connections)
    }

    /// The longest plan a run may be asked for (the sweep's top rate, or the single rate).
    var highestRate: Double? {
        if let rates, let values = try? SweepRates.parse(rates, what: "--rates") { return values.max() }
        if let sweep, let rate, let values = try? SweepRates.parse(sweep, what: "--sweep") {
            return SweepRates.rates(percentages: values, of: rate).max()
        }
        return rate
    }
}
