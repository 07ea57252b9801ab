/// The kind of JPKI token the simulator pretends to be.
public enum SimulatedTokenProfile: String, Sendable, CaseIterable {
    /// A My Number card (label `JPKIAPICCTOKEN2`) with the JPKI, 券面入力補助 and 券面 APs.
    case card
    /// An old 住基 card with a JPKI certificate (label `JPKIAPICCTOKEN`): only the JPKI AP.
    case oldCard = "old-card"
    /// An Android phone's GP secure element (label `JPKIAPGPSETOKEN`): only the JPKI AP, and the
    /// user-authentication certificate needs the phone's auth PIN first.
    case android
    /// An iPhone (label `JPKIAPIOSTOKEN`): only the JPKI AP, and reading the user-authentication certificate or
    /// signing waits for the holder's approval on the phone.
    case iphone

    /// The label at the start of EF 0006.
    public var tokenLabel: String {
        switch self {
        case .card: "JPKIAPICCTOKEN2"
        case .oldCard: "JPKIAPICCTOKEN"
        case .android: "JPKIAPGPSETOKEN"
        case .iphone: "JPKIAPIOSTOKEN"
        }
    }

    /// Whether the token is a phone.
    public var isPhone: Bool {
        self == .android || self == .iphone
    }
}

/// What the simulated holder does when the iPhone asks for approval (Face ID / Touch ID).
public enum IPhoneApproval: Sendable, Hashable {
    /// The holder approves after the given time; the card then answers normally.
    case approve(after: Duration)
    /// The holder declines after the given time; the card then answers `6985`.
    case deny(after: Duration)

    /// The time the holder takes.
    public var delay: Duration {
        switch self {
        case .approve(let after), .deny(let after): after
        }
    }

    /// Whether the holder approves.
    public var approves: Bool {
        if case .approve = self { return true }
        return false
    }
}

/// Which user-authentication certificate the simulated card carries.
public enum CertificateValidity: String, Sendable, Hashable, CaseIterable {
    /// Valid now.
    case valid
    /// Expired (same key pair, a certificate whose validity period ended).
    case expired
    /// Not yet valid (same key pair, a certificate whose validity period starts in the future).
    case notYetValid = "not-yet-valid"
}

/// Everything that shapes one simulated card and its vpcd link.
public struct CardSimulatorConfiguration: Sendable {
    /// The host where vpcd (inside pcscd) listens. Loopback only in tests.
    public var host: String
    /// The vpcd port (the reader's `CHANNELID`); Debian's default reader is 35963.
    public var port: Int
    /// The token profile.
    public var profile: SimulatedTokenProfile
    /// The synthetic holder number (1 or more); holder N is patient N in the eligibility stub.
    public var holder: Int
    /// The 4-digit user-authentication PIN (also the 券面入力補助 PIN unless ``attributesPIN`` is set).
    public var authPIN: String
    /// The 4-digit 券面入力補助 PIN, when it differs from ``authPIN``.
    public var attributesPIN: String?
    /// The signing PIN: 6 to 16 of A–Z and 0–9.
    public var signingPIN: String
    /// The folder of the test PKI (created on first use, then reused).
    public var dataDirectory: String
    /// A delay before answering each command APDU (not the control bytes); about 20 ms resembles a
    /// contactless card.
    public var apduLatency: Duration
    /// Remove the card (close the socket) after this many command APDUs; once.
    public var removeAfterAPDUs: Int?
    /// After a removal caused by ``removeAfterAPDUs``, insert the card again after this delay; `nil` keeps it
    /// out until ``CardSimulator/insertCard()``.
    public var reinsertAfter: Duration?
    /// Tries left on the user-authentication PIN at start (0 to 3; 0 is locked).
    public var authPINTriesLeft: Int
    /// Answer with the contactless ATR (reader-synthesised) instead of the contact one. Card profiles only.
    public var contactless: Bool
    /// The iPhone holder's answer to the approval prompt (``SimulatedTokenProfile/iphone`` only).
    public var iphoneApproval: IPhoneApproval
    /// Which user-authentication certificate the card carries.
    public var certificateValidity: CertificateValidity
    /// The delay before reconnecting when vpcd is not reachable or drops the link.
    public var reconnectDelay: Duration

    /// Makes a configuration; every value has a default.
    public init(
        host: String = "127.0.0.1",
        port: Int = 35963,
        profile: SimulatedTokenProfile = .card,
        holder: Int = 1,
        authPIN: String = "1234",
        attributesPIN: String? = nil,
        signingPIN: String = "ABC123",
        dataDirectory: String = "state/sim-pki",
        apduLatency: Duration = .zero,
        removeAfterAPDUs: Int? = nil,
        reinsertAfter: Duration? = nil,
        authPINTriesLeft: Int = 3,
        contactless: Bool = false,
        iphoneApproval: IPhoneApproval = .approve(after: .milliseconds(500)),
        certificateValidity: CertificateValidity = .valid,
        reconnectDelay: Duration = .milliseconds(250)
    ) {
        self.host = host
        self.port = port
        self.profile = profile
        self.holder = holder
        self.authPIN = authPIN
        self.attributesPIN = attributesPIN
        self.signingPIN = signingPIN
        self.dataDirectory = dataDirectory
        self.apduLatency = apduLatency
        self.removeAfterAPDUs = removeAfterAPDUs
        self.reinsertAfter = reinsertAfter
        self.authPINTriesLeft = authPINTriesLeft
        self.contactless = contactless
        self.iphoneApproval = iphoneApproval
        self.certificateValidity = certificateValidity
        self.reconnectDelay = reconnectDelay
    }

    /// The 券面入力補助 PIN in force.
    public var effectiveAttributesPIN: String {
        self.attributesPIN ?? self.authPIN
    }

    /// Checks ranges and PIN forms; throws ``CardSimulatorError/Code/invalidConfiguration``.
    public func validate() throws {
        guard (1...65535).contains(self.port) else {
            throw CardSimulatorError.invalidConfiguration("port \(self.port) out of range")
        }
        guard self.holder >= 1 else {
            throw CardSimulatorError.invalidConfiguration("holder number must be 1 or more")
        }
        guard PINRules.isValidFourDigitPIN(self.authPIN) else {
            throw CardSimulatorError.invalidConfiguration("the auth PIN must be 4 digits")
        }
        if let attributesPIN, !PINRules.isValidFourDigitPIN(attributesPIN) {
            throw CardSimulatorError.invalidConfiguration("the attributes PIN must be 4 digits")
        }
        guard PINRules.isValidSigningPIN(self.signingPIN) else {
            throw CardSimulatorError.invalidConfiguration("the signing PIN must be 6-16 of A-Z and 0-9")
        }
        guard (0...3).contains(self.authPINTriesLeft) else {
            throw CardSimulatorError.invalidConfiguration("auth PIN tries must be 0...3")
        }
        if let removeAfterAPDUs, removeAfterAPDUs < 0 {
            throw CardSimulatorError.invalidConfiguration("remove-after count must not be negative")
        }
        guard self.apduLatency >= .zero, self.iphoneApproval.delay >= .zero else {
            throw CardSimulatorError.invalidConfiguration("delays must not be negative")
        }
    }
}

/// The PIN forms of the JPKI card.
enum PINRules {
    static func isValidFourDigitPIN(_ pin: String) -> Bool {
        pin.utf8.count == 4 && pin.utf8.allSatisfy { (0x30...0x39).contains($0) }
    }

    static func isValidSigningPIN(_ pin: String) -> Bool {
        (6...16).contains(pin.utf8.count)
            && pin.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) }
    }
}
