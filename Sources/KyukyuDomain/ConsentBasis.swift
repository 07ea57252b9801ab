/// The legal basis on which a patient's data is viewed (or not), recorded with every viewing.
///
/// The raw value is the one spelling used everywhere on the device: the command line, the vault's audit
/// trail (`consent.recorded` entries, `basis` attribute) and JSON output. The onshi wire format keeps its
/// own shorter text (`exception` for ``lifeOrBodyException``); KyukyuOnshi maps it.
public enum ConsentBasis: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The patient consented verbally (`verbal`).
    case verbal
    /// The patient cannot consent and the data is needed to protect life or body, the APPI exception
    /// (`life-or-body-exception`).
    case lifeOrBodyException = "life-or-body-exception"
    /// The patient refused: nothing is returned, but the attempt is recorded (`refused`).
    case refused

    /// The raw value.
    public var description: String { self.rawValue }
}
