/// What happened to an incident, in the report's one vocabulary: the field's failures and the normal paths.
public enum DrillCause: String, Sendable, Codable, CaseIterable, Comparable {
    /// The patient's My Number card, read on scene.
    case card
    /// An Android phone's credential (a PIN entered on the tablet).
    case android
    /// An iPhone's credential (approved on the phone).
    case iphone
    /// No card, but the four fields were known: a lookup.
    case noCardFourFields = "no-card-four-fields"
    /// No card and nothing to look the patient up by.
    case noCard = "no-card"
    /// Treatment too urgent: the card was read during transport.
    case urgentTransport = "urgent-transport"
    /// The card's certificate had expired.
    case expiredCertificate = "expired-certificate"
    /// The certificate was revoked.
    case revokedCertificate = "revoked-certificate"
    /// The certificate was suspended (a lost phone).
    case suspendedCertificate = "suspended-certificate"
    /// The patient refused consent.
    case refusedConsent = "refused-consent"
    /// Unconscious: viewed under the life-or-body exception.
    case unconscious
    /// A dead zone (onshi or the hospital out of reach for a while).
    case deadZone = "dead-zone"
    /// No coverage at all until the hospital.
    case noCoverage = "no-coverage"
    /// Onshi answered with faults while the card was read.
    case onshiFault = "onshi-fault"
    /// Onshi was in maintenance while the card was read.
    case maintenance
    /// The first hospital diverted the patient.
    case divert
    /// The gateway was killed and restarted during the read.
    case gatewayRestart = "gateway-restart"
    /// The card was pulled away in the middle of the read.
    case cardRemoved = "card-removed"

    /// The order in which a cause is named as an incident's main one (the first that applies).
    static let precedence: [DrillCause] = [
        .refusedConsent, .noCoverage, .noCard, .noCardFourFields, .revokedCertificate, .suspendedCertificate,
        .expiredCertificate, .maintenance, .onshiFault, .urgentTransport, .deadZone, .gatewayRestart, .cardRemoved,
        .divert, .unconscious, .android, .iphone, .card,
    ]

    /// Ordered by precedence.
    public static func < (lhs: DrillCause, rhs: DrillCause) -> Bool {
        (precedence.firstIndex(of: lhs) ?? 0) < (precedence.firstIndex(of: rhs) ?? 0)
    }
}

/// One incident of the shift, drawn from the scenario before anything starts.
public struct IncidentPlan: Sendable, Hashable {
    /// What the patient carries.
    public enum Credential: String, Sendable, Hashable {
        /// A My Number card.
        case card
        /// An Android phone.
        case android
        /// An iPhone.
        case iphone
        /// Nothing.
        case none
    }

    /// The state of the credential's certificate.
    public enum Certificate: String, Sendable, Hashable {
        /// In force.
        case valid
        /// Expired.
        case expired
        /// Revoked at onshi.
        case revoked
        /// Suspended at onshi.
        case suspended
    }

    /// The consent the patient gives.
    public enum Consent: String, Sendable, Hashable {
        /// Verbal consent.
        case verbal
        /// Refused.
        case refused
        /// Unconscious: the life-or-body exception.
        case exception
    }

    /// Which link a dead zone cuts.
    public enum DeadZoneLink: String, Sendable, Hashable {
        /// Onshi, from the card touch.
        case onshi
        /// The hospital, from the departure.
        case hospital
    }

    /// 1-based, in the order of the shift.
    public var number: Int
    /// 0-based ambulance.
    public var ambulance: Int
    /// The synthetic patient (the card simulator's holder N, the stub's patient N).
    public var holder: Int
    /// What the patient carries.
    public var credential: Credential
    /// The certificate's state.
    public var certificate: Certificate
    /// Whether the four fields are known (used when there is no card, or the card fails).
    public var fourFieldsKnown: Bool
    /// The card is read only during transport.
    public var urgent: Bool
    /// The consent.
    public var consent: Consent
    /// The first hospital diverts.
    public var divert: Bool
    /// The gateway is killed during the read.
    public var gatewayRestart: Bool
    /// The card is pulled away during the read.
    public var cardRemoved: Bool
    /// A dead zone's link, or nil.
    public var deadZone: DeadZoneLink?
    /// Its length in scenario seconds.
    public var deadZoneSeconds: Double
    /// No coverage from dispatch to arrival.
    public var noCoverage: Bool
    /// 0-based first hospital, and the one after a divert.
    public var hospital: Int
    /// 0-based hospital after a divert.
    public var secondHospital: Int
    /// Scenario seconds: the gap before dispatch, then the phases.
    public var gapSeconds: Double
    /// Dispatch to on scene.
    public var responseSeconds: Double
    /// On scene to consent.
    public var contactSeconds: Double
    /// On scene to departure.
    public var sceneSeconds: Double
    /// Departure to arrival.
    public var transportSeconds: Double

    /// Whether a usable credential is on hand (a card or phone whose certificate is in force).
    public var hasUsableCredential: Bool { credential != .none && certificate == .valid }

    /// Whether the data-obtained goal counts this incident: a usable credential or the four fields, consent (or the
    /// exception), and some coverage before arrival.
    public var eligible: Bool {
        consent != .refused && (hasUsableCredential || fourFieldsKnown) && !noCoverage
    }

    /// Every failure applied, in precedence order (onshi's faults are added when the run sees them).
    public var conditions: [DrillCause] {
        var out: [DrillCause] = []
        if consent == .refused { out.append(.refusedConsent) }
        if noCoverage { out.append(.noCoverage) }
        if credential == .none { out.append(fourFieldsKnown ? .noCardFourFields : .noCard) }
        switch certificate {
        case .valid: break
        case .expired: out.append(.expiredCertificate)
        case .revoked: out.append(.revokedCertificate)
        case .suspended: out.append(.suspendedCertificate)
        }
        if urgent { out.append(.urgentTransport) }
        if deadZone != nil { out.append(.deadZone) }
        if gatewayRestart { out.append(.gatewayRestart) }
        if cardRemoved { out.append(.cardRemoved) }
        if divert { out.append(.divert) }
        if consent == .exception { out.append(.unconscious) }
        if credential == .android { out.append(.android) }
        if credential == .iphone { out.append(.iphone) }
        return out.sorted()
    }
}

/// The shift's incidents, drawn deterministically from the scenario's seed.
public enum ShiftPlan {
    /// The holders whose certificates the stub revokes or suspends (never given to a valid credential).
    static let revokedHolders = 181...190
    /// See ``revokedHolders``.
    static let suspendedHolders = 191...200
    /// The holders with valid certificates.
    static let validHolders = 1...40

    /// Draws every incident.
    public static func make(_ scenario: DrillScenario) -> [IncidentPlan] {
        var random = SplitMix64(seed: scenario.seed)
        let rates = scenario.rates
        return (0..<scenario.incidents).map { index in
            func chance(_ p: Double) -> Bool { random.unit() < p }
            func minutes(_ span: DrillScenario.Span) -> Double {
                (span.low + (span.high - span.low) * random.unit()) * 60
            }
            let noCard = chance(rates.noCard)
            let fourFields = chance(rates.fourFieldsKnown)
            let phone = random.unit()
            let credential: IncidentPlan.Credential =
                noCard
                ? .none : phone < rates.android ? .android : phone < rates.android + rates.iphone ? .iphone : .card
            let certificateDraw = random.unit()
            var certificate = IncidentPlan.Certificate.valid
            if credential != .none {
                if certificateDraw < rates.revokedCertificate {
                    certificate = .revoked
                } else if certificateDraw < rates.revokedCertificate + rates.suspendedCertificate {
                    certificate = .suspended
                } else if certificateDraw < rates.revokedCertificate + rates.suspendedCertificate
                    + rates.expiredCertificate
                {
                    certificate = .expired
                }
            }
            let holder: Int
            switch certificate {
            case .revoked: holder = revokedHolders.lowerBound + random.below(revokedHolders.count)
            case .suspended: holder = suspendedHolders.lowerBound + random.below(suspendedHolders.count)
            default: holder = validHolders.lowerBound + random.below(validHolders.count)
            }
            let refused = chance(rates.refusedConsent)
            let unconscious = chance(rates.unconscious)
            let urgent = chance(rates.urgent)
            let divert = chance(rates.divert) && scenario.hospitals > 1
            let restart = chance(rates.gatewayRestart)
            let removed = chance(rates.cardRemoved)
            let deadZone = chance(scenario.network.deadZone)
            let deadZoneLink: IncidentPlan.DeadZoneLink = random.unit() < 0.5 ? .onshi : .hospital
            let deadZoneSeconds = minutes(scenario.network.deadZoneMinutes)
            let noCoverage = chance(scenario.network.noCoverage)
            let hospital = random.below(scenario.hospitals)
            let second =
                scenario.hospitals > 1
                ? (hospital + 1 + random.below(scenario.hospitals - 1)) % scenario.hospitals : hospital
            let gap = minutes(scenario.timing.gap)
            let response = minutes(scenario.timing.response)
            let contact = minutes(scenario.timing.contact)
            let scene = max(minutes(scenario.timing.scene), contact + 60)
            let transport = minutes(scenario.timing.transport)
            return IncidentPlan(
                number: index + 1,
                ambulance: index % scenario.ambulances,
                holder: holder,
                credential: credential,
                certificate: certificate,
                fourFieldsKnown: fourFields,
                urgent: urgent && credential != .none,
                consent: refused ? .refused : unconscious ? .exception : .verbal,
                divert: divert,
                gatewayRestart: restart && credential != .none,
                cardRemoved: removed && credential == .card,
                deadZone: deadZone && !noCoverage ? deadZoneLink : nil,
                deadZoneSeconds: deadZoneSeconds,
                noCoverage: noCoverage,
                hospital: hospital,
                secondHospital: second,
                gapSeconds: gap,
                responseSeconds: response,
                contactSeconds: contact,
                sceneSeconds: scene,
                transportSeconds: transport
            )
        }
    }
}

/// SplitMix64: small, fast and the same on every machine (the drills are repeatable from their seed).
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// An integer in 0..<n.
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}
