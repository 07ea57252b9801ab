import Foundation
import KyukyuDomain
import KyukyuOnshi

/// A latency distribution.
public struct LatencySpec: Sendable, Hashable, Codable {
    /// The shape.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Always `ms`.
        case fixed
        /// Log-normal with median `medianMs` and shape `sigma`.
        case lognormal
        /// Pareto (heavy tail) with scale `scaleMs` (the minimum) and shape `alpha` (smaller is heavier).
        case pareto
    }

    /// The shape.
    public var kind: Kind
    /// Fixed: the delay.
    public var ms: Double?
    /// Log-normal: the median.
    public var medianMs: Double?
    /// Log-normal: sigma (0.5 moderate, 1 wide).
    public var sigma: Double?
    /// Pareto: the scale (minimum delay).
    public var scaleMs: Double?
    /// Pareto: alpha (1.1–3).
    public var alpha: Double?
    /// An upper bound on any sample (default 60 000 ms).
    public var maxMs: Double?

    /// Makes a distribution.
    public init(
        kind: Kind,
        ms: Double? = nil,
        medianMs: Double? = nil,
        sigma: Double? = nil,
        scaleMs: Double? = nil,
        alpha: Double? = nil,
        maxMs: Double? = nil
    ) {
        self.kind = kind
        self.ms = ms
        self.medianMs = medianMs
        self.sigma = sigma
        self.scaleMs = scaleMs
        self.alpha = alpha
        self.maxMs = maxMs
    }

    func validate() throws {
        switch self.kind {
        case .fixed: guard let ms, ms >= 0 else { throw EligibilitySimError.faults("fixed latency needs ms >= 0") }
        case .lognormal:
            guard let medianMs, medianMs > 0, let sigma, sigma >= 0 else {
                throw EligibilitySimError.faults("lognormal latency needs medianMs > 0 and sigma >= 0")
            }
        case .pareto:
            guard let scaleMs, scaleMs > 0, let alpha, alpha > 0 else {
                throw EligibilitySimError.faults("pareto latency needs scaleMs > 0 and alpha > 0")
            }
        }
    }

    /// One sample in milliseconds.
    func sample(_ rng: inout Rng) -> Double {
        let value: Double
        switch self.kind {
        case .fixed:
            value = self.ms ?? 0
        case .lognormal:
            // Box–Muller.
            let u1 = max(rng.unit(), .leastNonzeroMagnitude)
            let u2 = rng.unit()
            let z = (-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            value = (self.medianMs ?? 1) * Foundation.exp((self.sigma ?? 0) * z)
        case .pareto:
            let u = max(1 - rng.unit(), .leastNonzeroMagnitude)
            value = (self.scaleMs ?? 1) / Foundation.pow(u, 1 / (self.alpha ?? 1))
        }
        return min(value, self.maxMs ?? 60_000)
    }
}

/// A failure injected into a response.
public struct FailureSpec: Sendable, Hashable, Codable {
    /// What goes wrong.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// An HTTP 5xx (`status`, default 500) with a failed result.
        case serverError = "5xx"
        /// HTTP 429 with `Retry-After: retryAfterSeconds` (default 1).
        case throttle = "429"
        /// The TCP connection is reset (RST) without a response.
        case reset
        /// The request is processed (a viewing recorded, a nonce issued or consumed), then the TCP connection is
        /// reset (RST) without a response: what a client sees when a connection drops after onshi acted.
        case dropAfterProcessing = "drop-after-processing"
        /// The response head is sent, then nothing for `stallMs` (default 600 000), then the connection closes.
        case stall
        /// The body is sent `chunkBytes` (default 64) at a time every `intervalMs` (default 200).
        case slowDrip = "slow-drip"
        /// The body is cut at `fraction` (default 0.6) of its length; the HTTP framing is correct.
        case truncated
        /// The body is not well-formed XML (a mismatched end tag).
        case malformed
        /// A valid document followed by an XML comment padding the body to `sizeBytes` (default 64 MiB).
        case oversized
        /// A document padded inside its root with empty `<Pad/>` elements up to `sizeBytes` (default 15 MiB): within
        /// the size limit, but millions of elements to build a tree of; a memory attack on the client.
        case bloated
        /// HTTP 503 with result code 9001 (maintenance).
        case maintenance
    }

    /// What goes wrong.
    public var kind: Kind
    /// The chance per request, 0–1 (default 1).
    public var probability: Double?
    /// 5xx: the status.
    public var status: Int?
    /// 429: seconds in `Retry-After`.
    public var retryAfterSeconds: Int?
    /// Stall: how long.
    public var stallMs: Int?
    /// Slow drip: bytes per chunk.
    public var chunkBytes: Int?
    /// Slow drip: pause between chunks.
    public var intervalMs: Int?
    /// Truncated: the fraction of the body sent.
    public var fraction: Double?
    /// Oversized: the body's total size.
    public var sizeBytes: Int?

    /// Makes a failure.
    public init(
        kind: Kind,
        probability: Double? = nil,
        status: Int? = nil,
        retryAfterSeconds: Int? = nil,
        stallMs: Int? = nil,
        chunkBytes: Int? = nil,
        intervalMs: Int? = nil,
        fraction: Double? = nil,
        sizeBytes: Int? = nil
    ) {
        self.kind = kind
        self.probability = probability
        self.status = status
        self.retryAfterSeconds = retryAfterSeconds
        self.stallMs = stallMs
        self.chunkBytes = chunkBytes
        self.intervalMs = intervalMs
        self.fraction = fraction
        self.sizeBytes = sizeBytes
    }

    func validate() throws {
        if let p = self.probability, !(0...1).contains(p) {
            throw EligibilitySimError.faults("probability must be within 0...1")
        }
        if let s = self.status, !(500...599).contains(s) { throw EligibilitySimError.faults("status must be 5xx") }
        if let f = self.fraction, !(0..<1).contains(f) { throw EligibilitySimError.faults("fraction must be in 0..<1") }
        if let c = self.chunkBytes, c < 1 { throw EligibilitySimError.faults("chunkBytes must be >= 1") }
        if let s = self.sizeBytes, s < 0 || s > 1 << 30 { throw EligibilitySimError.faults("sizeBytes up to 1 GiB") }
    }
}

/// The faults of one endpoint key: latency first, then the first failure whose die roll hits.
public struct FaultSpec: Sendable, Hashable, Codable {
    /// The latency distribution, if any.
    public var latency: LatencySpec?
    /// Failures, tried in order.
    public var failures: [FailureSpec]?

    /// Makes a spec.
    public init(latency: LatencySpec? = nil, failures: [FailureSpec]? = nil) {
        self.latency = latency
        self.failures = failures
    }
}

/// A maintenance window: every onshi endpoint answers 503 / 9001 inside it.
public struct MaintenanceWindow: Sendable, Hashable, Codable {
    /// Start (inclusive).
    public var from: Date
    /// End (exclusive).
    public var until: Date

    /// Makes a window.
    public init(from: Date, until: Date) {
        self.from = from
        self.until = until
    }
}

/// The whole fault configuration (`--faults FILE`, `GET/PUT /admin/faults`).
///
/// Keys of ``endpoints`` are category names (`medications`…), `sessions` (nonces, sessions and lookup), or `*`
/// (every category without its own entry). Dates in JSON are ISO 8601.
public struct FaultConfiguration: Sendable, Hashable, Codable {
    /// The seed of the per-endpoint generators (the same seed gives the same sequence of decisions per key).
    public var seed: UInt64?
    /// Faults per endpoint key.
    public var endpoints: [String: FaultSpec]
    /// Maintenance windows.
    public var maintenanceWindows: [MaintenanceWindow]?

    /// No faults.
    public init(
        seed: UInt64? = nil,
        endpoints: [String: FaultSpec] = [:],
        maintenanceWindows: [MaintenanceWindow]? = nil
    ) {
        self.seed = seed
        self.endpoints = endpoints
        self.maintenanceWindows = maintenanceWindows
    }

    /// The keys accepted in ``endpoints``.
    public static let keys: Set<String> = Set(MedicalCategory.allCases.map(\.rawValue) + ["sessions", "*"])

    /// Throws on unknown keys or invalid parameters.
    public func validate() throws {
        for (key, spec) in self.endpoints {
            guard Self.keys.contains(key) else { throw EligibilitySimError.faults("unknown endpoint key \(key)") }
            try spec.latency?.validate()
            for failure in spec.failures ?? [] { try failure.validate() }
        }
    }

    /// Decodes JSON (ISO 8601 dates) and validates.
    public static func decode(json: [UInt8]) throws -> FaultConfiguration {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let config: FaultConfiguration
        do {
            config = try decoder.decode(FaultConfiguration.self, from: Data(json))
        } catch {
            throw EligibilitySimError.faults(
                "the fault configuration is not valid JSON of the expected shape: \(error)"
            )
        }
        try config.validate()
        return config
    }

    /// Encodes as JSON (ISO 8601 dates, sorted keys).
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8))
    }
}

/// What the fault engine decided for one request.
public struct FaultDecision: Sendable, Hashable {
    /// Delay before anything else.
    public var delayMs: Double
    /// The failure, if one was drawn.
    public var failure: FailureSpec?
    /// Inside a maintenance window.
    public var maintenance: Bool
}

/// Draws fault decisions from the configuration, with one seeded generator per endpoint key, so a run with the
/// same seed and the same requests per key sees the same faults whatever the interleaving across keys.
public actor FaultEngine {
    private var configuration: FaultConfiguration
    private var generators: [String: Rng] = [:]
    private let defaultSeed: UInt64

    /// An engine; `seed` applies when the configuration has none.
    public init(configuration: FaultConfiguration, seed: UInt64) {
        self.configuration = configuration
        self.defaultSeed = seed
    }

    /// The configuration in force.
    public func current() -> FaultConfiguration { self.configuration }

    /// Replaces the configuration and restarts the generators.
    public func replace(_ configuration: FaultConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        self.generators = [:]
    }

    /// Restarts the generators (same seed: the same sequence again).
    public func restart() { self.generators = [:] }

    /// The decision for one request to `key` at `now`.
    public func decide(key: String, now: Date) -> FaultDecision {
        let maintenance = (self.configuration.maintenanceWindows ?? []).contains { $0.from <= now && now < $0.until }
        let spec = self.configuration.endpoints[key] ?? (key == "sessions" ? nil : self.configuration.endpoints["*"])
        guard let spec else { return FaultDecision(delayMs: 0, failure: nil, maintenance: maintenance) }
        var rng = self.generators[key] ?? Rng(seed: (self.configuration.seed ?? self.defaultSeed) ^ fnv1a(key))
        let delay = spec.latency?.sample(&rng) ?? 0
        var chosen: FailureSpec?
        for failure in spec.failures ?? [] {
            let roll = rng.unit()
            if chosen == nil, roll < (failure.probability ?? 1) { chosen = failure }
        }
        self.generators[key] = rng
        return FaultDecision(delayMs: delay, failure: chosen, maintenance: maintenance)
    }
}

func fnv1a(_ string: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in string.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return hash
}
