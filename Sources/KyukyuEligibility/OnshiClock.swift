/// An instant on an ``OnshiClock``: the time since the clock was wrapped.
struct OnshiInstant: Sendable, Hashable, Comparable {
    /// Time since the clock's origin.
    var offset: Duration

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.offset < rhs.offset }
    static func + (lhs: Self, rhs: Duration) -> Self { Self(offset: lhs.offset + rhs) }
    static func - (lhs: Self, rhs: Self) -> Duration { lhs.offset - rhs.offset }

    /// The time from this instant to `other` (negative when `other` is earlier).
    func duration(to other: Self) -> Duration { other.offset - offset }
}

/// The injected clock, with its instant type erased: every deadline, retry, hedge and breaker instant of the
/// client is an ``OnshiInstant`` on one of these, so tests drive them all with one virtual clock.
struct OnshiClock: Sendable {
    private let read: @Sendable () -> Duration
    private let sleeper: @Sendable (Duration) async throws -> Void

    /// Wraps `clock`; its origin is now.
    init(_ clock: any Clock<Duration>) {
        self.init(opening: clock)
    }

    private init<C: Clock<Duration>>(opening clock: C) {
        let origin = clock.now
        self.read = { origin.duration(to: clock.now) }
        self.sleeper = { offset in try await clock.sleep(until: origin.advanced(by: offset), tolerance: nil) }
    }

    /// The instant now.
    var now: OnshiInstant { OnshiInstant(offset: read()) }

    /// Sleeps until `deadline`; throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: OnshiInstant) async throws {
        try await sleeper(deadline.offset)
    }

    /// Sleeps for `duration`; throws `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws {
        try await sleep(until: now + duration)
    }
}
