public import Histogram

/// An open-loop load plan, as wrk2 and k6's constant-arrival-rate run one: request `i` is due at
/// `start + i / rate`, whatever happened to the requests before it. `connections` send them, request `i` on
/// connection `i % connections`; a connection still waiting for an answer sends its next request late, and the
/// latency then counts from the time it was due (the correction for coordinated omission).
public struct OpenLoopPlan: Sendable, Hashable {
    /// Requests per second, over all connections.
    public var rate: Double
    /// How long requests are scheduled for.
    public var duration: Duration
    /// How many connections send, each one request at a time.
    public var connections: Int
    /// A send later than this after its due time counts as late.
    public var lateAfter: Duration

    /// A plan.
    public init(rate: Double, duration: Duration, connections: Int, lateAfter: Duration = .milliseconds(10)) {
        self.rate = rate
        self.duration = duration
        self.connections = connections
        self.lateAfter = lateAfter
    }

    /// How many requests the plan schedules.
    public var requests: Int {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return max(0, Int((seconds * rate).rounded(.down)))
    }

    /// Why the plan cannot run, or nil.
    public var problem: String? {
        if !(rate > 0 && rate <= 1_000_000) { return "the rate must be above 0 and at most 1,000,000 requests/s" }
        if !(connections >= 1 && connections <= 10_000) { return "connections must be 1…10,000" }
        if duration <= .zero { return "the duration must be above zero" }
        return nil
    }
}

/// What one load run measured. Latencies are in microseconds.
public struct LoadResult: Sendable {
    /// Latency from each request's due time to its answer (corrected for coordinated omission).
    public var corrected: Histogram<UInt64>
    /// Latency from each request's actual send to its answer (what a closed-loop tool reports).
    public var uncorrected: Histogram<UInt64>
    /// Requests sent.
    public var sent: Int
    /// Requests sent later than the plan's `lateAfter` after their due time.
    public var late: Int
    /// Requests whose answer was a failure.
    public var failed: Int
    /// Requests never sent: the run stopped sending before they were due (a saturation probe).
    public var dropped: Int = 0
    /// Answers per whole second of the run, from its start.
    public var answersPerSecond: [Int]
    /// From the first due time to the last answer.
    public var elapsed: Duration

    /// Whether every request went out on time and succeeded; a report says so when not.
    public var clean: Bool { late == 0 && failed == 0 && dropped == 0 }
}

/// One request against the system under test, on connection `connection`; true when the answer was a success.
public protocol LoadTarget: Sendable {
    /// Sends one request and waits for its answer.
    func send(connection: Int) async -> Bool
}

/// Runs open-loop plans.
public enum OpenLoop {
    /// Runs `plan` against `target` on `clock` (the continuous clock in a real run).
    public static func run<C: Clock<Duration>>(
        _ plan: OpenLoopPlan,
        against target: some LoadTarget,
        clock: C = ContinuousClock()
    ) async -> LoadResult {
        let total = plan.requests
        let interval = Duration.seconds(1) / plan.rate
        let start = clock.now
        let perConnection = await withTaskGroup(of: ConnectionTally.self) { group in
            for connection in 0..<plan.connections {
                group.addTask {
                    var tally = ConnectionTally()
                    var index = connection
                    while index < total {
                        let due = start.advanced(by: interval * Double(index))
                        if clock.now < due { try? await clock.sleep(until: due, tolerance: nil) }
                        let sent = clock.now
                        let ok = await target.send(connection: connection)
                        let answered = clock.now
                        tally.record(
                            corrected: due.duration(to: answered),
                            uncorrected: sent.duration(to: answered),
                            late: due.duration(to: sent) > plan.lateAfter,
                            ok: ok,
                            second: Int(Self.seconds(start.duration(to: answered)))
                        )
                        index += plan.connections
                    }
                    return tally
                }
            }
            var all: [ConnectionTally] = []
            for await tally in group { all.append(tally) }
            return all
        }
        return LoadResult(merging: perConnection, elapsed: start.duration(to: clock.now))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(1, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000))
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}

extension LoadResult {
    /// The counts of every connection, merged.
    init(merging tallies: [ConnectionTally], elapsed: Duration) {
        self.init(
            corrected: ConnectionTally.histogram(),
            uncorrected: ConnectionTally.histogram(),
            sent: 0,
            late: 0,
            failed: 0,
            answersPerSecond: [],
            elapsed: elapsed
        )
        for tally in tallies {
            corrected.add(tally.corrected)
            uncorrected.add(tally.uncorrected)
            sent += tally.sent
            late += tally.late
            failed += tally.failed
            dropped += tally.dropped
            if answersPerSecond.count < tally.answersPerSecond.count {
                answersPerSecond += Array(repeating: 0, count: tally.answersPerSecond.count - answersPerSecond.count)
            }
            for (second, count) in tally.answersPerSecond.enumerated() { answersPerSecond[second] += count }
        }
    }
}

/// One connection's counts.
struct ConnectionTally: Sendable {
    var corrected = histogram()
    var uncorrected = histogram()
    var sent = 0
    var late = 0
    var failed = 0
    var dropped = 0
    var answersPerSecond: [Int] = []

    static func histogram() -> Histogram<UInt64> {
        // Up to an hour in microseconds, three significant digits.
        Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    mutating func record(corrected: Duration, uncorrected: Duration, late: Bool, ok: Bool, second: Int) {
        record(
            correctedNanoseconds: UInt64(max(0, OpenLoop.nanoseconds(corrected))),
            uncorrectedNanoseconds: UInt64(max(0, OpenLoop.nanoseconds(uncorrected))),
            late: late,
            ok: ok,
            second: second
        )
    }

    /// One answer: latencies in nanoseconds from the due time and from the send (recorded in microseconds, at
    /// least 1), whether the send was late, whether the answer was a success, and the second of the run it came in.
    mutating func record(
        correctedNanoseconds: UInt64,
        uncorrectedNanoseconds: UInt64,
        late: Bool,
        ok: Bool,
        second: Int
    ) {
        _ = corrected.record(max(1, correctedNanoseconds / 1000))
        _ = uncorrected.record(max(1, uncorrectedNanoseconds / 1000))
        sent += 1
        if late { self.late += 1 }
        if !ok { failed += 1 }
        if second >= answersPerSecond.count {
            answersPerSecond += Array(repeating: 0, count: second + 1 - answersPerSecond.count)
        }
        answersPerSecond[second] += 1
    }
}
