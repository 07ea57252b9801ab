/// What the network between an ambulance and the world does to its TCP connections right now, in each direction:
/// the mobile link of issue 10's drills, applied by ``FaultProxy``.
///
/// The model works on the byte stream a TCP proxy sees, not on packets: latency and jitter delay each piece, the
/// bandwidth cap serializes the pieces, and a loss is a retransmission (the piece comes late by a retransmission
/// timeout), since TCP does not lose bytes. A dead zone (``Mode/blackhole``) holds every byte until the link comes
/// back; a ``Mode/reset`` closes every connection with a reset and refuses new ones.
public struct LinkConditions: Sendable, Hashable, Codable {
    /// Whether bytes pass.
    public enum Mode: String, Sendable, Hashable, Codable, CaseIterable {
        /// Bytes pass, shaped by the other conditions.
        case open
        /// A dead zone: connections stay open, nothing passes; what was sent passes when the link opens again.
        case blackhole
        /// Every connection is reset (TCP RST) and new ones are refused at once.
        case reset
    }

    /// Whether bytes pass.
    public var mode: Mode
    /// One-way delay in each direction, in milliseconds (a round trip is twice this).
    public var latencyMilliseconds: Double
    /// The most the one-way delay varies, in milliseconds, either way (drawn uniformly; never below zero, and
    /// the bytes' order is kept).
    public var jitterMilliseconds: Double
    /// Bytes per second in each direction; nil for no cap.
    public var bandwidthBytesPerSecond: Int?
    /// The chance that a piece is lost once and retransmitted (0…1).
    public var lossRate: Double
    /// How late a retransmitted piece comes, in milliseconds (TCP's minimum RTO on Linux is 200 ms).
    public var retransmitMilliseconds: Double

    /// Conditions; the defaults pass everything at once.
    public init(
        mode: Mode = .open,
        latencyMilliseconds: Double = 0,
        jitterMilliseconds: Double = 0,
        bandwidthBytesPerSecond: Int? = nil,
        lossRate: Double = 0,
        retransmitMilliseconds: Double = 200
    ) {
        self.mode = mode
        self.latencyMilliseconds = latencyMilliseconds
        self.jitterMilliseconds = jitterMilliseconds
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
        self.lossRate = lossRate
        self.retransmitMilliseconds = retransmitMilliseconds
    }

    /// Decodes conditions; a missing key takes its default (so `{"mode": "blackhole"}` is enough).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = LinkConditions()
        self.init(
            mode: try container.decodeIfPresent(Mode.self, forKey: .mode) ?? defaults.mode,
            latencyMilliseconds: try container.decodeIfPresent(Double.self, forKey: .latencyMilliseconds)
                ?? defaults.latencyMilliseconds,
            jitterMilliseconds: try container.decodeIfPresent(Double.self, forKey: .jitterMilliseconds)
                ?? defaults.jitterMilliseconds,
            bandwidthBytesPerSecond: try container.decodeIfPresent(Int.self, forKey: .bandwidthBytesPerSecond),
            lossRate: try container.decodeIfPresent(Double.self, forKey: .lossRate) ?? defaults.lossRate,
            retransmitMilliseconds: try container.decodeIfPresent(Double.self, forKey: .retransmitMilliseconds)
                ?? defaults.retransmitMilliseconds
        )
    }

    /// An LTE-like link: 60 ms round trip with ±10 ms of jitter each way, 20 Mbit/s, no loss.
    public static let lte = LinkConditions(
        latencyMilliseconds: 30,
        jitterMilliseconds: 10,
        bandwidthBytesPerSecond: 2_500_000
    )

    /// Why these conditions cannot be used, or nil.
    public var problem: String? {
        if !(latencyMilliseconds >= 0 && latencyMilliseconds <= 60_000) { return "latency must be 0…60000 ms" }
        if !(jitterMilliseconds >= 0 && jitterMilliseconds <= 60_000) { return "jitter must be 0…60000 ms" }
        if let rate = bandwidthBytesPerSecond, rate < 1 { return "bandwidth must be at least 1 byte/s" }
        if !(lossRate >= 0 && lossRate <= 1) { return "loss must be 0…1" }
        if !(retransmitMilliseconds >= 0 && retransmitMilliseconds <= 60_000) {
            return "retransmission delay must be 0…60000 ms"
        }
        return nil
    }
}

/// One direction of one connection: when each piece of bytes may leave, given when it arrived. Pure, so that
/// the model is tested without a network or a clock; ``FaultProxy`` feeds it the event loop's time.
public struct LinkShaper: Sendable {
    /// When the previous piece leaves (the bytes' order is kept).
    private var lastRelease: Int64 = .min
    /// When the link has finished serializing what it was given (the bandwidth cap).
    private var busyUntil: Int64 = .min

    /// A shaper with nothing sent yet.
    public init() {}

    /// The time, in nanoseconds on the caller's clock, at which `bytes` that arrived at `now` leave, under
    /// `conditions`; `unit` draws the jitter and `lossDraw` the loss, each uniform in 0..<1. Never before `now`,
    /// and never before the previous piece.
    public mutating func release(
        bytes: Int,
        arrivedAt now: Int64,
        conditions: LinkConditions,
        jitterDraw unit: Double,
        lossDraw: Double
    ) -> Int64 {
        var start = now
        if let rate = conditions.bandwidthBytesPerSecond {
            start = max(now, busyUntil)
            busyUntil = start + Int64((Double(bytes) / Double(rate) * 1e9).rounded(.up))
            start = busyUntil
        }
        let jitter = conditions.jitterMilliseconds * (2 * min(max(unit, 0), 1) - 1)
        var delay = max(0, conditions.latencyMilliseconds + jitter)
        if conditions.lossRate > 0, lossDraw < conditions.lossRate { delay += conditions.retransmitMilliseconds }
        let release = max(start + Int64(delay * 1e6), lastRelease == .min ? now : lastRelease)
        lastRelease = release
        return release
    }
}

/// Conditions over time: each window sets the conditions from its start for its length; outside every window,
/// the base applies. A drill's scenario gives each ambulance one.
public struct LinkSchedule: Sendable, Hashable, Codable {
    /// One window.
    public struct Window: Sendable, Hashable, Codable {
        /// Seconds after the schedule's start.
        public var at: Double
        /// How many seconds it lasts.
        public var seconds: Double
        /// The conditions during it.
        public var conditions: LinkConditions

        /// A window.
        public init(at: Double, seconds: Double, conditions: LinkConditions) {
            self.at = at
            self.seconds = seconds
            self.conditions = conditions
        }
    }

    /// The conditions outside every window.
    public var base: LinkConditions
    /// The windows; where they overlap, the later in the list wins.
    public var windows: [Window]

    /// A schedule.
    public init(base: LinkConditions = LinkConditions(), windows: [Window] = []) {
        self.base = base
        self.windows = windows
    }

    /// The conditions `elapsed` seconds after the start.
    public func conditions(at elapsed: Double) -> LinkConditions {
        windows.last { elapsed >= $0.at && elapsed < $0.at + $0.seconds }?.conditions ?? base
    }

    /// The next time after `elapsed` at which the conditions may change, or nil.
    public func nextChange(after elapsed: Double) -> Double? {
        windows.flatMap { [$0.at, $0.at + $0.seconds] }.filter { $0 > elapsed }.min()
    }

    /// Why the schedule cannot be used, or nil.
    public var problem: String? {
        if let problem = base.problem { return "base: \(problem)" }
        for (index, window) in windows.enumerated() {
            if !(window.at >= 0 && window.seconds > 0) { return "window \(index): at ≥ 0 and seconds > 0 are needed" }
            if let problem = window.conditions.problem { return "window \(index): \(problem)" }
        }
        return nil
    }
}
