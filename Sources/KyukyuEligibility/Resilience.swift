import Synchronization

/// A circuit breaker for one upstream: after `failureThreshold` consecutive failures it opens and calls fail
/// fast for `openDuration`; then one probe is let through (half-open), whose outcome closes or re-opens it.
///
/// Each call takes a ``Permit`` and reports its ``Outcome`` with it. A cancelled call is not a failure of the
/// upstream: it counts for nothing, and a cancelled probe gives its slot back, so the next call probes again.
///
/// The rules are a pure state machine (``Machine``) behind a lock, tested on its own with explicit instants;
/// the breaker reads time from the clock it was given (inject a test clock to drive it).
public final class CircuitBreaker: Sendable {
    /// The breaker's state, as seen now.
    public enum State: Sendable, Hashable {
        /// Calls go through; `failures` consecutive failures so far.
        case closed(failures: Int)
        /// Calls fail fast; a probe is let through after `retryIn`.
        case open(retryIn: Duration)
        /// One probe is in flight; other calls fail fast until it ends.
        case halfOpen
    }

    /// Consecutive failures that open the breaker.
    public let failureThreshold: Int
    /// How long it stays open.
    public let openDuration: Duration
    private let clock: OnshiClock
    private let machine: Mutex<Machine>

    /// Creates a closed breaker that reads time from `clock`.
    public init(
        failureThreshold: Int = 5,
        openDuration: Duration = .seconds(10),
        clock: any Clock<Duration> = ContinuousClock()
    ) {
        self.failureThreshold = failureThreshold
        self.openDuration = openDuration
        self.clock = OnshiClock(clock)
        self.machine = Mutex(Machine(failureThreshold: failureThreshold, openDuration: openDuration))
    }

    /// The current state.
    public var current: State {
        let now = clock.now
        return machine.withLock { $0.state(now: now) }
    }

    /// Asks to make a call: a permit to go ahead, or how long until the breaker lets a probe through.
    func permit() -> Result<Permit, OpenCircuit> {
        let now = clock.now
        return machine.withLock { $0.permit(now: now) }
    }

    /// Reports the outcome of the call made under `permit`.
    func record(_ outcome: Outcome, for permit: Permit) {
        let now = clock.now
        machine.withLock { $0.record(outcome, for: permit, now: now) }
    }

    /// Leave to make one call.
    struct Permit: Sendable, Hashable {
        /// The probe number when this call is the half-open probe.
        var probe: UInt64?
    }

    /// The breaker refused a call; a probe goes through after `retryIn`.
    struct OpenCircuit: Error, Hashable {
        var retryIn: Duration
    }

    /// How a call ended, as far as the upstream's health goes.
    enum Outcome: Sendable, Hashable {
        /// The upstream answered (anything below 500).
        case success
        /// The upstream failed: 5xx, no connection, a broken exchange, or no answer by the deadline.
        case failure
        /// The caller cancelled: says nothing about the upstream.
        case cancelled
    }

    /// The breaker's rules, with time passed in.
    struct Machine: Sendable, Hashable {
        enum Phase: Sendable, Hashable {
            case closed(failures: Int)
            case open(until: OnshiInstant)
            case halfOpen(probe: UInt64)
        }

        let failureThreshold: Int
        let openDuration: Duration
        private(set) var phase: Phase = .closed(failures: 0)
        private var probes: UInt64 = 0

        init(failureThreshold: Int, openDuration: Duration) {
            self.failureThreshold = failureThreshold
            self.openDuration = openDuration
        }

        func state(now: OnshiInstant) -> State {
            switch phase {
            case .closed(let failures): return .closed(failures: failures)
            case .open(let until): return now >= until ? .open(retryIn: .zero) : .open(retryIn: now.duration(to: until))
            case .halfOpen: return .halfOpen
            }
        }

        mutating func permit(now: OnshiInstant) -> Result<Permit, OpenCircuit> {
            switch phase {
            case .closed:
                return .success(Permit(probe: nil))
            case .halfOpen:
                return .failure(OpenCircuit(retryIn: openDuration))
            case .open(let until):
                guard now >= until else { return .failure(OpenCircuit(retryIn: now.duration(to: until))) }
                probes += 1
                phase = .halfOpen(probe: probes)
                return .success(Permit(probe: probes))
            }
        }

        mutating func record(_ outcome: Outcome, for permit: Permit, now: OnshiInstant) {
            switch outcome {
            case .success:
                phase = .closed(failures: 0)
            case .cancelled:
                // Nothing against the upstream; a cancelled probe hands its slot back.
                if case .halfOpen(let probe) = phase, permit.probe == probe { phase = .open(until: now) }
            case .failure:
                switch phase {
                case .closed(let failures):
                    phase =
                        failures + 1 >= failureThreshold
                        ? .open(until: now + openDuration) : .closed(failures: failures + 1)
                case .halfOpen, .open:
                    phase = .open(until: now + openDuration)
                }
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
