import Crypto
import _CryptoExtras

/// The answer of the simulated card to one command.
public struct JPKICardReply: Sendable, Hashable {
    /// The response APDU.
    public var response: ResponseAPDU
    /// How long the simulated holder took to approve (or decline) on the phone before this answer; `.zero` when
    /// no approval was asked. The vpcd link waits this long before sending; the model itself never sleeps.
    public var approvalDelay: Duration

    /// Makes a reply.
    public init(response: ResponseAPDU, approvalDelay: Duration = .zero) {
        self.response = response
        self.approvalDelay = approvalDelay
    }

    /// The response bytes (data, then SW1 SW2).
    public var bytes: [UInt8] { self.response.bytes }
    /// The status word.
    public var status: StatusWord { self.response.status }
}

/// A JPKI card (or phone token) as a pure state machine: command APDU bytes in, response APDU bytes out.
///
/// No I/O, no clock, no logging: the vpcd link (``CardSimulator``) feeds it, applies latency and the approval
/// delay it reports, and counts. Behaviour follows jpki-card.md: SELECT by AID and EF, READ BINARY with 15-bit
/// offsets, VERIFY with retry counters (`63Cx`, `63C0`, then `6984`), COMPUTE DIGITAL SIGNATURE with PKCS#1 v1.5
/// type-1 padding over the DigestInfo it is given, and the 券面入力補助 AP.
///
/// PIN counters live as long as the value (the physical card); selection and verification are dropped by
/// ``reset()`` (power cycle, reset, removal) and by any AP selection.
public struct JPKICard: Sendable {
    /// The PINs of the card.
    public enum PIN: Sendable, Hashable, CaseIterable {
        /// User authentication, EF 0018 of the JPKI AP: 4 digits, 3 tries.
        case userAuthentication
        /// Signing, EF 001B of the JPKI AP: 6–16 of A–Z0–9, 5 tries.
        case signing
        /// 券面入力補助 AP, EF 0011: 4 digits, 3 tries.
        case attributes

        /// The tries a fresh (or just verified) PIN has.
        public var maximumTries: Int {
            self == .signing ? 5 : 3
        }
    }

    /// The applications of the card.
    public enum Application: Sendable, Hashable {
        /// 公的個人認証 (JPKI).
        case jpki
        /// 券面入力補助 (text attributes).
        case attributes
        /// 券面 (card face image).
        case cardFace

        /// The application identifier.
        public var aid: [UInt8] {
            switch self {
            case .jpki: JPKICardFiles.jpkiAID
            case .attributes: JPKICardFiles.attributesAID
            case .cardFace: JPKICardFiles.cardFaceAID
            }
        }
    }

    private enum Access: Sendable, Hashable {
        case free
        case pin(PIN)
        /// iPhone: the holder approves on the phone.
        case phoneApproval
    }

    private enum FileKind: Sendable {
        case binary([UInt8], Access)
        case pinFile(PIN)
        case key(KeyID)
    }

    private enum KeyID: Sendable, Hashable {
        case userAuthentication
        case signing
    }

    private struct PINState: Sendable {
        var value: [UInt8]
        var triesLeft: Int
    }

    /// The profile the card was made with.
    public let profile: SimulatedTokenProfile
    /// The answer-to-reset.
    public let atr: [UInt8]
    /// The applications this token answers SELECT for.
    public let applications: [Application]

    private let files: [Application: [UInt16: FileKind]]
    private let keys: [KeyID: _RSA.BlindSigning.PrivateKey<SHA384>]
    private let iphoneApproval: IPhoneApproval
    private var pins: [PIN: PINState]

    private var selectedApplication: Application?
    private var selectedFile: UInt16?
    private var verified: Set<PIN> = []
    private var certificateApproved = false

    /// Makes a card for `credentials` with the given PINs.
    ///
    /// - Throws: ``CardSimulatorError/Code/invalidConfiguration`` for PINs of the wrong form, and
    ///   ``CardSimulatorError/Code/signing`` when a private key cannot be loaded.
    public init(
        profile: SimulatedTokenProfile,
        credentials: HolderCredentials,
        authPIN: String = "1234",
        attributesPIN: String? = nil,
        signingPIN: String = "ABC123",
        authPINTriesLeft: Int = 3,
        contactless: Bool = false,
        iphoneApproval: IPhoneApproval = .approve(after: .zero)
    ) throws {
        guard PINRules.isValidFourDigitPIN(authPIN), PINRules.isValidSigningPIN(signingPIN),
            attributesPIN.map(PINRules.isValidFourDigitPIN) ?? true, (0...3).contains(authPINTriesLeft)
        else {
            throw CardSimulatorError.invalidConfiguration("PIN of the wrong form or tries out of range")
        }
        self.profile = profile
        self.iphoneApproval = iphoneApproval
        switch profile {
        case .card:
            self.atr = contactless ? JPKICardFiles.contactlessATR : JPKICardFiles.contactATR
            self.applications = [.jpki, .attributes, .cardFace]
        case .oldCard:
            self.atr = contactless ? JPKICardFiles.contactlessATR : JPKICardFiles.contactATR
            self.applications = [.jpki]
        case .android, .iphone:
            // An ISO 14443-4 token without historical bytes: the reader synthesises this ATR.
            self.atr = [0x3B, 0x80, 0x80, 0x01, 0x01]
            self.applications = [.jpki]
        }
        let userAuthCertificateAccess: Access =
            switch profile {
            case .card, .oldCard: .free
            case .android: .pin(.userAuthentication)
            case .iphone: .phoneApproval
            }
        var files: [Application: [UInt16: FileKind]] = [
            .jpki: [
                0x0006: .binary(JPKICardFiles.tokenInfo(label: profile.tokenLabel), .free),
                0x000A: .binary(
                    JPKICardFiles.certificateFile(credentials.userAuthCertificateDER),
                    userAuthCertificateAccess
                ),
                0x000B: .binary(JPKICardFiles.certificateFile(credentials.authCACertificateDER), .free),
                0x0001: .binary(JPKICardFiles.certificateFile(credentials.signingCertificateDER), .pin(.signing)),
                0x0002: .binary(JPKICardFiles.certificateFile(credentials.signingCACertificateDER), .free),
                0x0017: .key(.userAuthentication),
                0x0018: .pinFile(.userAuthentication),
                0x001A: .key(.signing),
                0x001B: .pinFile(.signing),
            ]
        ]
        if self.applications.contains(.attributes) {
            files[.attributes] = [
                0x0011: .pinFile(.attributes),
                0x0001: .binary(JPKICardFiles.myNumberFile(), .pin(.attributes)),
                0x0002: .binary(JPKICardFiles.attributesFile(for: credentials.holder), .pin(.attributes)),
            ]
        }
        if self.applications.contains(.cardFace) {
            files[.cardFace] = [:]
        }
        self.files = files
        do {
            self.keys = [
                .userAuthentication: try _RSA.BlindSigning.PrivateKey(
                    derRepresentation: credentials.userAuthPrivateKeyDER
                ),
                .signing: try _RSA.BlindSigning.PrivateKey(derRepresentation: credentials.signingPrivateKeyDER),
            ]
        } catch {
            throw CardSimulatorError.signing("cannot load a private key: \(error)")
        }
        self.pins = [
            .userAuthentication: PINState(value: Array(authPIN.utf8), triesLeft: authPINTriesLeft),
            .signing: PINState(value: Array(signingPIN.utf8), triesLeft: PIN.signing.maximumTries),
            .attributes: PINState(
                value: Array((attributesPIN ?? authPIN).utf8),
                triesLeft: PIN.attributes.maximumTries
            ),
        ]
    }

    /// Makes the card a simulator configuration describes.
    public init(configuration: CardSimulatorConfiguration, credentials: HolderCredentials) throws {
        try self.init(
            profile: configuration.profile,
            credentials: credentials,
            authPIN: configuration.authPIN,
            attributesPIN: configuration.attributesPIN,
            signingPIN: configuration.signingPIN,
            authPINTriesLeft: configuration.authPINTriesLeft,
            contactless: configuration.contactless,
            iphoneApproval: configuration.iphoneApproval
        )
    }

    /// Tries left on a PIN (0 = locked).
    public func triesLeft(_ pin: PIN) -> Int {
        self.pins[pin]?.triesLeft ?? 0
    }

    /// Tries left on the user-authentication PIN.
    public var authPINTriesLeft: Int { self.triesLeft(.userAuthentication) }

    /// Whether a PIN is verified in the current AP session.
    public func isVerified(_ pin: PIN) -> Bool {
        self.verified.contains(pin)
    }

    /// The selected application, if any.
    public var currentApplication: Application? { self.selectedApplication }

    /// Power off, power on, reset or removal: forgets the selected AP and EF, verifications and approvals.
    /// PIN counters stay.
    public mutating func reset() {
        self.selectedApplication = nil
        self.selectedFile = nil
        self.verified = []
        self.certificateApproved = false
    }

    /// Processes raw command bytes; malformed or extended APDUs answer `6700`.
    public mutating func process(_ bytes: [UInt8]) -> JPKICardReply {
        guard let command = CommandAPDU(parsing: bytes) else {
            return JPKICardReply(response: ResponseAPDU(status: .wrongLength))
        }
        return self.process(command)
    }

    /// Processes one command.
    public mutating func process(_ command: CommandAPDU) -> JPKICardReply {
        guard command.cla == 0x00 || command.cla == 0x80 else {
            return Self.status(.classNotSupported)
        }
        switch command.ins {
        case 0xA4:
            guard command.cla == 0x00 else { return Self.status(.classNotSupported) }
            return self.select(command)
        case 0xB0:
            guard command.cla == 0x00 else { return Self.status(.classNotSupported) }
            return self.readBinary(command)
        case 0x20:
            guard command.cla == 0x00 else { return Self.status(.classNotSupported) }
            return self.verify(command)
        case 0x2A:
            guard command.cla == 0x80 else { return Self.status(.classNotSupported) }
            return self.computeDigitalSignature(command)
        default:
            return Self.status(.instructionNotSupported)
        }
    }

    // MARK: - Commands

    private mutating func select(_ command: CommandAPDU) -> JPKICardReply {
        guard command.p2 == 0x0C || command.p2 == 0x00 else { return Self.status(.incorrectP1P2) }
        switch command.p1 {
        case 0x04:
            guard !command.data.isEmpty else { return Self.status(.wrongLength) }
            guard let application = self.applications.first(where: { $0.aid == command.data }) else {
                return Self.status(.fileNotFound)
            }
            self.reset()
            self.selectedApplication = application
            return Self.status(.success)
        case 0x00, 0x02:
            guard command.data.count == 2 else { return Self.status(.wrongLength) }
            let fid = UInt16(command.data[0]) << 8 | UInt16(command.data[1])
            guard let application = self.selectedApplication, self.files[application]?[fid] != nil else {
                return Self.status(.fileNotFound)
            }
            self.selectedFile = fid
            return Self.status(.success)
        default:
            return Self.status(.incorrectP1P2)
        }
    }

    private mutating func readBinary(_ command: CommandAPDU) -> JPKICardReply {
        guard command.data.isEmpty, let le = command.le else { return Self.status(.wrongLength) }
        guard command.p1 & 0x80 == 0 else { return Self.status(.incorrectP1P2) }
        guard case .binary(let content, let access) = self.currentFile else {
            return Self.status(.conditionsNotSatisfied)
        }
        var delay = Duration.zero
        switch access {
        case .free:
            break
        case .pin(let pin):
            guard self.verified.contains(pin) else { return Self.status(.securityStatusNotSatisfied) }
        case .phoneApproval:
            if !self.certificateApproved {
                delay = self.iphoneApproval.delay
                guard self.iphoneApproval.approves else {
                    return JPKICardReply(response: ResponseAPDU(status: .conditionsNotSatisfied), approvalDelay: delay)
                }
                self.certificateApproved = true
            }
        }
        let offset = Int(command.p1) << 8 | Int(command.p2)
        guard offset < content.count else {
            return JPKICardReply(response: ResponseAPDU(status: .wrongOffset), approvalDelay: delay)
        }
        let end = min(content.count, offset + le)
        return JPKICardReply(
            response: ResponseAPDU(data: Array(content[offset..<end]), status: .success),
            approvalDelay: delay
        )
    }

    private mutating func verify(_ command: CommandAPDU) -> JPKICardReply {
        guard command.p1 == 0x00, command.p2 == 0x80 else { return Self.status(.incorrectP1P2) }
        guard case .pinFile(let pin) = self.currentFile, var state = self.pins[pin] else {
            return Self.status(.conditionsNotSatisfied)
        }
        guard state.triesLeft > 0 else { return Self.status(.referenceDataBlocked) }
        guard !command.data.isEmpty else { return Self.status(.triesLeft(state.triesLeft)) }
        guard command.data.count <= 16 else { return Self.status(.wrongLength) }
        if command.data == state.value {
            state.triesLeft = pin.maximumTries
            self.pins[pin] = state
            self.verified.insert(pin)
            return Self.status(.success)
        }
        state.triesLeft -= 1
        self.pins[pin] = state
        self.verified.remove(pin)
        return Self.status(.triesLeft(state.triesLeft))
    }

    private mutating func computeDigitalSignature(_ command: CommandAPDU) -> JPKICardReply {
        guard command.p1 == 0x00, command.p2 == 0x80 else { return Self.status(.incorrectP1P2) }
        // PKCS#1 v1.5 type 1 needs at least 11 bytes of padding in a 256-byte block.
        guard (1...245).contains(command.data.count), command.le == nil || command.le == 256 else {
            return Self.status(.wrongLength)
        }
        guard case .key(let keyID) = self.currentFile, let key = self.keys[keyID] else {
            return Self.status(.conditionsNotSatisfied)
        }
        var delay = Duration.zero
        if self.profile == .iphone {
            // On an iPhone the holder's approval (Face ID / Touch ID) stands in for the PIN, once per signature.
            delay = self.iphoneApproval.delay
            guard self.iphoneApproval.approves else {
                return JPKICardReply(response: ResponseAPDU(status: .conditionsNotSatisfied), approvalDelay: delay)
            }
        } else {
            let pin: PIN = keyID == .userAuthentication ? .userAuthentication : .signing
            guard self.verified.contains(pin) else { return Self.status(.securityStatusNotSatisfied) }
        }
        do {
            let signature = try Self.rawSign(key: key, data: command.data)
            return JPKICardReply(response: ResponseAPDU(data: signature, status: .success), approvalDelay: delay)
        } catch {
            return JPKICardReply(response: ResponseAPDU(status: StatusWord(0x6F, 0x00)), approvalDelay: delay)
        }
    }

    // MARK: - Helpers

    private var currentFile: FileKind? {
        guard let application = self.selectedApplication, let fid = self.selectedFile else { return nil }
        return self.files[application]?[fid]
    }

    private static func status(_ status: StatusWord) -> JPKICardReply {
        JPKICardReply(response: ResponseAPDU(status: status))
    }

    /// EM = 00 01 FF…FF 00 || data (PKCS#1 v1.5 type 1), then the raw RSA private operation m^d mod n.
    static func rawSign(key: _RSA.BlindSigning.PrivateKey<SHA384>, data: [UInt8]) throws -> [UInt8] {
        let size = key.keySizeInBits / 8
        guard data.count <= size - 11 else {
            throw CardSimulatorError.signing("data too long for the key")
        }
        let em: [UInt8] = [0x00, 0x01] + Array(repeating: 0xFF, count: size - 3 - data.count) + [0x00] + data
        let signature = Array(try key.blindSignature(for: em).rawRepresentation)
        guard signature.count <= size else {
            throw CardSimulatorError.signing("unexpected signature size")
        }
        return Array(repeating: 0, count: size - signature.count) + signature
    }
}
