/// The kind of JPKI token a card read used: a card or a phone carrying the card's certificate.
///
/// The raw value is what the vault's audit trail records (`card.read` entries, `token-type` attribute).
public enum TokenType: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// A My Number card (`individual-number-card`; token label `JPKIAPICCTOKEN2`).
    case individualNumberCard = "individual-number-card"
    /// An old 住基 card (`juki-card`; token label `JPKIAPICCTOKEN`).
    case jukiCard = "juki-card"
    /// An Android phone's secure element (`android`; token label `JPKIAPGPSETOKEN`): the certificate needs
    /// the phone's auth PIN.
    case android
    /// An iPhone (`iphone`; token label `JPKIAPIOSTOKEN`): answers after the holder approves on the phone.
    case iphone

    /// Whether the token is a phone.
    public var isPhone: Bool { self == .android || self == .iphone }

    /// A label for the crew's screen.
    public var displayName: String {
        switch self {
        case .individualNumberCard: "My Number card"
        case .jukiCard: "Juki card (old)"
        case .android: "Android smartphone credential"
        case .iphone: "iPhone smartphone credential"
        }
    }

    /// The raw value.
    public var description: String { self.rawValue }
}
