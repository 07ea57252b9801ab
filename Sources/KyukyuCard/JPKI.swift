import KyukyuDomain

/// Identifiers of the JPKI card's applications and files (see docs/architecture.md and the card reference).
public enum JPKI {
    /// The JPKI (公的個人認証) application.
    public static let jpkiAID: [UInt8] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]
    /// The 券面入力補助 application (text attributes).
    public static let attributesAID: [UInt8] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08]

    /// Token information, 160 bytes, the first 32 a space-padded label.
    public static let tokenInfoEF: UInt16 = 0x0006
    /// User-authentication certificate.
    public static let authCertificateEF: UInt16 = 0x000A
    /// User-authentication CA certificate.
    public static let authCACertificateEF: UInt16 = 0x000B
    /// User-authentication private key.
    public static let authKeyEF: UInt16 = 0x0017
    /// User-authentication PIN (4 digits, 3 tries).
    public static let authPINEF: UInt16 = 0x0018
    /// Signing PIN (6–16 of A–Z0–9, 5 tries).
    public static let signingPINEF: UInt16 = 0x001B

    /// 券面入力補助 PIN (4 digits).
    public static let attributesPINEF: UInt16 = 0x0011
    /// The four attributes (name, address, birth date, sex).
    public static let attributesEF: UInt16 = 0x0002
    /// The EF in the 券面入力補助 AP that holds the 12-digit number. This library never selects it.
    static let forbiddenAttributesEF: UInt16 = 0x0001
}

extension TokenType {
    /// Classifies a token-info label (the first 32 bytes of EF 0006, trimmed); nil for an unknown label.
    public init?(label: String) {
        switch label {
        case "JPKIAPICCTOKEN2": self = .individualNumberCard
        case "JPKIAPICCTOKEN": self = .jukiCard
        case "JPKIAPGPSETOKEN": self = .android
        case "JPKIAPIOSTOKEN": self = .iphone
        default: return nil
        }
    }
}

/// The PINs the library can verify.
public enum PINKind: String, Sendable, Codable {
    /// The JPKI user-authentication PIN (4 digits, 3 tries).
    case userAuthentication = "auth"
    /// The 券面入力補助 PIN (4 digits, 3 tries).
    case attributes
    /// The JPKI signing PIN (6–16 of A–Z and 0–9, 5 tries).
    case signing

    var application: [UInt8] {
        self == .attributes ? JPKI.attributesAID : JPKI.jpkiAID
    }

    var file: UInt16 {
        switch self {
        case .userAuthentication: return JPKI.authPINEF
        case .attributes: return JPKI.attributesPINEF
        case .signing: return JPKI.signingPINEF
        }
    }
}

/// A PIN checked against its format before anything reaches the card.
///
/// Its description is redacted so that it cannot end up in a log line by accident.
public struct CardPIN: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let bytes: [UInt8]
    /// Which PIN this is.
    public let kind: PINKind

    /// Validates the PIN's format for its kind; a malformed PIN never reaches the card, so it costs no try.
    public init(_ text: String, kind: PINKind) throws {
        let value = text.trimmingCharacters(in: .newlines)
        switch kind {
        case .userAuthentication, .attributes:
            guard value.count == 4, value.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw CardError.invalidPINFormat("the PIN must be exactly 4 digits; nothing was sent to the card")
            }
        case .signing:
            guard (6...16).contains(value.count),
                value.allSatisfy({ $0.isASCII && ($0.isNumber || ("A"..."Z").contains($0)) })
            else {
                throw CardError.invalidPINFormat(
                    "the signing PIN must be 6 to 16 characters of A–Z and 0–9; nothing was sent to the card"
                )
            }
        }
        self.bytes = Array(value.utf8)
        self.kind = kind
    }

    /// Always redacted.
    public var description: String { "CardPIN(\(kind.rawValue), redacted)" }
    /// Always redacted.
    public var debugDescription: String { description }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = Substring(self)
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Set where Element == Character {
    fileprivate static let newlines: Set<Character> = ["\n", "\r", "\r\n"]
}
