import Synchronization

/// A circuit breaker for one upstream: after `failureThreshold` consecutive failures it opens and calls fail
/// fast for `openDuration`; then one probe is let through (half-open), whose outcome closes or re-opens it.
///
/// A pure state machine (``State``) behind a lock, so it is tested on its own with explicit instants.
public final class CircuitBreaker: Sendable {
    /// The breaker's state.
    public enum State: Sendable, Hashable {
        /// Calls go through; `failures` consecutive failures so far.
        case closed(failures: Int)
        /// Calls fail fast until the instant.
        case open(until: ContinuousClock.Instant)
        /// One probe is in flight.
        case halfOpen
    }

    /// Consecutive failures that open the breaker.
    public let failureThreshold: Int
    /// How long it stays open.
    public let openDuration: Duration
    private let state = Mutex(State.closed(failures: 0))

    /// Creates a closed breaker.
    public init(failureThreshold: Int = 5, openDuration: Duration = .seconds(10)) {
        self.failureThreshold = failureThreshold
        self.openDuration = openDuration
    }

    /// The current state.
    public var current: State { state.withLock { $0 } }

    /// Asks to make a call at `now`: nil to go ahead, or how long until the breaker lets a probe through.
    public func permit(now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { state in
            switch state {
            case .closed: return nil
            case .halfOpen: return openDuration
            case .open(let until):
                if now >= until {
                    state = .halfOpen
                    return nil
                }
                return now.duration(to: until)
            }
        }
    }

    /// Records a call's outcome. Only failures of the upstream count (not a patient's refused consent).
    public func record(success: Bool, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            if success {
                state = .closed(failures: 0)
                return
            }
            switch state {
            case .closed(let failures):
                state =
                    failures + 1 >= failureThreshold
                    ? .open(until: now + openDuration) : .closed(failures: failures + 1)
            case .halfOpen, .open:
                state = .open(until: now + openDuration)
            }
        }
    }
}

/// When and how to try again: bounded attempts, exponential backoff with full jitter, and only for requests
/// that are safe to repeat.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts, the first included.
    public var maxAttempts: Int
    /// The first backoff's upper bound.
    public var baseDelay: Duration
    /// The largest backoff.
    public var maxDelay: Duration

    /// Creates a policy.
    public init(maxAttempts: Int = 3, baseDelay: Duration = .milliseconds(50), maxDelay: Duration = .milliseconds(800))
    {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1), uniformly in `0...min(max, base·2^(attempt−1))`.
    public func backoff(afterAttempt attempt: Int, random: inout some RandomNumberGenerator) -> Duration {
        let exponent = min(attempt - 1, 20)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        let nanos = max(Int64(0), ceiling.nanoseconds)
        return .nanoseconds(Int64.random(in: 0...nanos, using: &random))
    }
}
