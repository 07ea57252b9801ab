import Foundation
import KyukyuNetworkSim

/// A drill: a region's shift of ambulances and hospitals against the eligibility stub, with the field's failure
/// rates (a JSON file; docs/drills.md describes every key).
///
/// Times are in scenario minutes, the field's own time; ``compression`` says how many of them pass per real minute.
public struct DrillScenario: Sendable, Codable, Hashable {
    /// A short name, used in the report's title and file names.
    public var name: String
    /// What the scenario stands for, in a sentence or two.
    public var description: String
    /// How many ambulances (each a gateway process with its own reader and card simulator).
    public var ambulances: Int
    /// How many hospitals (each a receiver process).
    public var hospitals: Int
    /// How many incidents in the shift, shared among the ambulances in turn.
    public var incidents: Int
    /// Scenario seconds per real second for the people's and the vehicles' time (machines' time is never scaled).
    public var compression: Double
    /// The seed of every draw: the same seed gives the same shift.
    public var seed: UInt64
    /// The machines' timescale in real seconds: a period of the field longer than this never lasts less in the
    /// drill (a dead zone at the card touch; the time left for the read and the fetch), so that compression does not
    /// cut short what the machines take in the field (docs/drills.md).
    public var machineFloorSeconds: Double
    /// The durations of an incident's phases.
    public var timing: Timing
    /// How often each of the field's failures happens.
    public var rates: Rates
    /// The mobile network between the ambulances and the world.
    public var network: Network
    /// What onshi does during the shift.
    public var onshi: Onshi

    /// Scenario minutes drawn uniformly between two bounds, written `[low, high]`.
    public struct Span: Sendable, Codable, Hashable {
        /// The lower bound.
        public var low: Double
        /// The upper bound.
        public var high: Double

        /// A span.
        public init(_ low: Double, _ high: Double) {
            self.low = low
            self.high = high
        }

        /// Decodes `[low, high]`.
        public init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            self.low = try container.decode(Double.self)
            self.high = try container.decode(Double.self)
            guard container.isAtEnd else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "a span is [low, high]")
            }
        }

        /// Encodes `[low, high]`.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.unkeyedContainer()
            try container.encode(self.low)
            try container.encode(self.high)
        }

        var isValid: Bool { low >= 0 && high >= low && high <= 24 * 60 }
    }

    /// The durations of an incident's phases, in scenario minutes.
    public struct Timing: Sendable, Codable, Hashable {
        /// Between one incident's arrival at hospital and the ambulance's next dispatch.
        public var gap: Span
        /// Dispatch to arrival on scene.
        public var response: Span
        /// Arrival on scene to reaching the patient and asking for consent.
        public var contact: Span
        /// Arrival on scene to departure.
        public var scene: Span
        /// Departure to arrival at the hospital.
        public var transport: Span
    }

    /// Chances (0…1) per incident; each is drawn on its own.
    public struct Rates: Sendable, Codable, Hashable {
        /// No card or phone on hand.
        public var noCard: Double
        /// Of those without a card: the four fields (name, birth date, sex, address) are known.
        public var fourFieldsKnown: Double
        /// Treatment too urgent to stop: the card is read during transport.
        public var urgent: Double
        /// The credential is an Android phone (PIN entry on the tablet).
        public var android: Double
        /// The credential is an iPhone (the holder approves on the phone).
        public var iphone: Double
        /// The card's certificate has expired.
        public var expiredCertificate: Double
        /// The certificate is revoked.
        public var revokedCertificate: Double
        /// The certificate is suspended (a lost phone).
        public var suspendedCertificate: Double
        /// The patient refuses consent.
        public var refusedConsent: Double
        /// The patient is unconscious: the life-or-body exception.
        public var unconscious: Double
        /// The first hospital diverts.
        public var divert: Double
        /// The gateway is killed (SIGKILL) and restarted while the card is being read.
        public var gatewayRestart: Double
        /// The card is pulled away in the middle of the read and touched again.
        public var cardRemoved: Double

        var all: [(String, Double)] {
            [
                ("noCard", noCard), ("fourFieldsKnown", fourFieldsKnown), ("urgent", urgent), ("android", android),
                ("iphone", iphone), ("expiredCertificate", expiredCertificate),
                ("revokedCertificate", revokedCertificate), ("suspendedCertificate", suspendedCertificate),
                ("refusedConsent", refusedConsent), ("unconscious", unconscious), ("divert", divert),
                ("gatewayRestart", gatewayRestart), ("cardRemoved", cardRemoved),
            ]
        }
    }

    /// The mobile network.
    public struct Network: Sendable, Codable, Hashable {
        /// The link's usual conditions (LTE-like: 60 ms round trip with jitter).
        public var link: LinkConditions
        /// The chance of a dead zone during an incident.
        public var deadZone: Double
        /// How long a dead zone lasts, in scenario minutes.
        public var deadZoneMinutes: Span
        /// The chance that an ambulance has no coverage at all from dispatch to arrival (a valley, a tunnel).
        public var noCoverage: Double
    }

    /// Onshi during the shift.
    public struct Onshi: Sendable, Codable, Hashable {
        /// The stub's latency for every category (its fault file's `latency` object), or nil for none.
        public var latency: JSONValue?
        /// Windows of faults, in scenario minutes from the start of the shift.
        public var faults: [FaultWindow]
        /// Maintenance windows (every request answered 503 9001), in scenario minutes from the start.
        public var maintenance: [Window]

        /// A window.
        public struct Window: Sendable, Codable, Hashable {
            /// Its start, in scenario minutes from the start of the shift.
            public var at: Double
            /// Its length in scenario minutes.
            public var minutes: Double
        }

        /// Faults for a while: the stub's `endpoints` object (docs/eligibility-stub.md, "Faults").
        public struct FaultWindow: Sendable, Codable, Hashable {
            /// Its start, in scenario minutes from the start of the shift.
            public var at: Double
            /// Its length in scenario minutes.
            public var minutes: Double
            /// The stub's `endpoints` object for the window.
            public var endpoints: JSONValue
        }
    }

    /// Reads and checks a scenario file.
    public static func load(path: String) throws(DrillError) -> DrillScenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .scenario("cannot read the scenario file \(path)")
        }
        let scenario: DrillScenario
        do {
            scenario = try JSONDecoder().decode(DrillScenario.self, from: data)
        } catch let error as DecodingError {
            throw .scenario("\(path): \(Self.describe(error))")
        } catch {
            throw .scenario("\(path): not a scenario (\(error))")
        }
        if let problem = scenario.problem { throw .scenario("\(path): \(problem)") }
        return scenario
    }

    /// Why the scenario cannot run, or nil.
    public var problem: String? {
        if name.isEmpty || name.count > 64
            || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        {
            return "name must be 1-64 of A-Z a-z 0-9 -"
        }
        if !(1...40).contains(ambulances) { return "ambulances must be 1…40" }
        if !(1...12).contains(hospitals) { return "hospitals must be 1…12" }
        if !(1...100_000).contains(incidents) { return "incidents must be 1…100000" }
        if !(compression >= 1 && compression <= 3600) { return "compression must be 1…3600" }
        let spans = [
            ("timing.gap", timing.gap), ("timing.response", timing.response), ("timing.contact", timing.contact),
            ("timing.scene", timing.scene), ("timing.transport", timing.transport),
            ("network.deadZoneMinutes", network.deadZoneMinutes),
        ]
        for (key, span) in spans where !span.isValid { return "\(key) must be [low, high] with 0 ≤ low ≤ high ≤ 1440" }
        if timing.contact.high > timing.scene.low { return "timing.contact must end before timing.scene can" }
        if timing.transport.low <= 0 { return "timing.transport must be longer than 0 minutes" }
        for (key, value) in rates.all + [
            ("network.deadZone", network.deadZone), ("network.noCoverage", network.noCoverage),
        ]
        where !(value >= 0 && value <= 1) {
            return "\(key) must be a chance from 0 to 1"
        }
        if rates.android + rates.iphone > 1 { return "rates.android + rates.iphone must not exceed 1" }
        if rates.revokedCertificate + rates.suspendedCertificate + rates.expiredCertificate > 1 {
            return "the certificate rates together must not exceed 1"
        }
        if let problem = network.link.problem { return "network.link: \(problem)" }
        if !(machineFloorSeconds >= 0 && machineFloorSeconds <= 600) {
            return "machineFloorSeconds must be 0…600"
        }
        for window in onshi.maintenance where !(window.at >= 0 && window.minutes > 0) {
            return "onshi.maintenance windows need at ≥ 0 and minutes > 0"
        }
        for window in onshi.faults where !(window.at >= 0 && window.minutes > 0) {
            return "onshi.faults windows need at ≥ 0 and minutes > 0"
        }
        return nil
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "the top level" : keys.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "\(parent == "the top level" ? "" : parent + ".")\(key.stringValue) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)) has the wrong type (\(context.debugDescription))"
        case .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "not a scenario"
        }
    }
}

/// Any JSON value, kept as it was written (the stub's fault objects pass through the drill unchanged).
public enum JSONValue: Sendable, Codable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number.
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object([String: JSONValue])

    /// Decodes any JSON value.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Encodes the value as it was.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
