/// The applications the gateway selects. The 券面 (card face image) AP and any other AID are never selected.
enum JPKIApplication: Hashable, Sendable, CustomStringConvertible {
    /// 公的個人認証.
    case jpki
    /// 券面入力補助.
    case attributes

    init?(aid: [UInt8]) {
        switch aid {
        case JPKI.jpkiAID: self = .jpki
        case JPKI.attributesAID: self = .attributes
        default: return nil
        }
    }

    var aid: [UInt8] { self == .jpki ? JPKI.jpkiAID : JPKI.attributesAID }

    /// EFs the gateway may select in this application.
    var selectableFiles: Set<UInt16> {
        switch self {
        case .jpki:
            return [
                JPKI.tokenInfoEF, JPKI.authCertificateEF, JPKI.authCACertificateEF, JPKI.authKeyEF, JPKI.authPINEF,
                JPKI.signingPINEF,
            ]
        case .attributes:
            // Never JPKI.forbiddenAttributesEF (the 12-digit number).
            return [JPKI.attributesPINEF, JPKI.attributesEF]
        }
    }

    /// EFs the gateway may read with READ BINARY.
    var readableFiles: Set<UInt16> {
        switch self {
        case .jpki: return [JPKI.tokenInfoEF, JPKI.authCertificateEF, JPKI.authCACertificateEF]
        case .attributes: return [JPKI.attributesEF]
        }
    }

    /// PIN EFs the gateway may send VERIFY to.
    var pinFiles: Set<UInt16> {
        switch self {
        case .jpki: return [JPKI.authPINEF, JPKI.signingPINEF]
        case .attributes: return [JPKI.attributesPINEF]
        }
    }

    var description: String { self == .jpki ? "JPKI" : "券面入力補助" }
}

/// What the session knows the card has selected.
///
/// `application == nil` means *unknown*, not "nothing": at connection time another program may have left any
/// application and EF selected, and after a failed or interrupted SELECT the card may still have the previous
/// application selected. Unknown is the strictest state: no EF may be selected or read until an application
/// SELECT succeeds. `file == nil` likewise means no EF is known to be selected.
struct CardSelection: Hashable, Sendable {
    /// The selected application, when the session is sure of it.
    var application: JPKIApplication?
    /// The selected EF inside it, when the session is sure of it.
    var file: UInt16?

    /// Nothing is known about the card's selection.
    static let unknown = CardSelection(application: nil, file: nil)
}

/// The allow-list of the exact command APDUs the gateway sends. Anything else is refused before it reaches the
/// card, whatever its encoding: a SELECT by path, by FID with P1=00, with a P2 asking for FCI, on another logical
/// channel (CLA), a READ BINARY by short file identifier or with the odd instruction, a VERIFY of a file that is
/// not a PIN, and so on.
///
/// A pure function of the command and of what the session knows is selected, tested on its own.
enum CommandAllowList {
    /// One allowed command.
    enum Command: Hashable, Sendable {
        /// `00 A4 04 0C 0A <AID>` of the JPKI or 券面入力補助 AP.
        case selectApplication(JPKIApplication)
        /// `00 A4 02 0C 02 <FID>` of an allowed EF of the selected AP.
        case selectFile(UInt16)
        /// `00 B0 <offset, bit 8 of P1 clear> Le` of an allowed EF.
        case readBinary
        /// `00 20 00 80`: the tries left, which spends none.
        case pinCounterQuery
        /// `00 20 00 80 Lc <PIN>`: allowed only on the guarded verify path.
        case verifyPIN
        /// `80 2A 00 80 33 <SHA-256 DigestInfo> 00` with the user-authentication key EF selected.
        case computeSignature
    }

    /// Classifies a command, or refuses it.
    /// - Parameters:
    ///   - command: The command the session is about to send.
    ///   - selection: What the session knows the card has selected.
    ///   - pinVerification: Whether the caller is the guarded verify path (the only one that may send a PIN).
    static func classify(
        _ command: CommandAPDU,
        selection: CardSelection,
        pinVerification: Bool = false
    ) throws -> Command {
        switch (command.cla, command.ins) {
        case (0x00, 0xA4):
            return try classifySelect(command, selection: selection)
        case (0x00, 0xB0):
            guard command.p1 & 0x80 == 0 else {
                throw CardError.forbiddenCommand("READ BINARY by short file identifier is never sent")
            }
            guard command.data.isEmpty, command.le != nil else {
                throw CardError.forbiddenCommand("a READ BINARY carries no data and one Le")
            }
            guard let application = selection.application, let file = selection.file,
                application.readableFiles.contains(file)
            else {
                throw CardError.forbiddenCommand("READ BINARY only of a known, allowed EF")
            }
            return .readBinary
        case (0x00, 0x20):
            guard command.p1 == 0x00, command.p2 == 0x80, command.le == nil else {
                throw CardError.forbiddenCommand("VERIFY only as 00 20 00 80")
            }
            guard let application = selection.application, let file = selection.file,
                application.pinFiles.contains(file)
            else {
                throw CardError.forbiddenCommand("VERIFY only of a known PIN EF")
            }
            if command.data.isEmpty { return .pinCounterQuery }
            guard pinVerification else {
                throw CardError.forbiddenCommand("a VERIFY with a PIN goes only through verify(_:confirmLastTry:)")
            }
            guard (4...16).contains(command.data.count) else {
                throw CardError.forbiddenCommand("a PIN is 4 to 16 bytes")
            }
            return .verifyPIN
        case (0x80, 0x2A):
            guard command.p1 == 0x00, command.p2 == 0x80, command.le == 256,
                command.data.count == DigestInfo.sha256Prefix.count + 32,
                command.data.starts(with: DigestInfo.sha256Prefix)
            else {
                throw CardError.forbiddenCommand("COMPUTE DIGITAL SIGNATURE only over a SHA-256 DigestInfo")
            }
            guard selection.application == .jpki, selection.file == JPKI.authKeyEF else {
                throw CardError.forbiddenCommand("COMPUTE DIGITAL SIGNATURE only with the user-authentication key")
            }
            return .computeSignature
        default:
            throw CardError.forbiddenCommand("this command is not one the gateway sends")
        }
    }

    private static func classifySelect(_ command: CommandAPDU, selection: CardSelection) throws -> Command {
        guard command.p2 == 0x0C, command.le == nil else {
            throw CardError.forbiddenCommand("SELECT only without FCI (P2=0C)")
        }
        switch command.p1 {
        case 0x04:
            guard let application = JPKIApplication(aid: command.data) else {
                throw CardError.forbiddenCommand("SELECT only of the JPKI and 券面入力補助 applications")
            }
            return .selectApplication(application)
        case 0x02:
            guard command.data.count == 2 else {
                throw CardError.forbiddenCommand("SELECT EF only by a 2-byte file identifier")
            }
            let fid = UInt16(command.data[0]) << 8 | UInt16(command.data[1])
            guard let application = selection.application else {
                throw CardError.forbiddenCommand("SELECT EF only once the selected application is known")
            }
            guard application.selectableFiles.contains(fid) else {
                if application == .attributes, fid == JPKI.forbiddenAttributesEF {
                    throw CardError.forbiddenCommand("the 12-digit number is never read by this gateway")
                }
                throw CardError.forbiddenCommand("this EF is not one the gateway selects")
            }
            return .selectFile(fid)
        default:
            // 00 (by FID from the MF), 01/03 (DF), 08/09 (by path), and the rest.
            throw CardError.forbiddenCommand("SELECT only by AID (P1=04) or by EF identifier (P1=02)")
        }
    }

    /// What the session knows is selected after `command` answered `statusWord` (nil: no answer, e.g. the card
    /// was pulled away mid-command). A SELECT that did not succeed leaves the selection *unknown* rather than
    /// empty: the card may still have the previous application selected.
    static func selection(
        after command: Command,
        statusWord: StatusWord?,
        from current: CardSelection
    ) -> CardSelection {
        switch command {
        case .selectApplication(let application):
            return statusWord == .success ? CardSelection(application: application, file: nil) : .unknown
        case .selectFile(let fid):
            return CardSelection(application: current.application, file: statusWord == .success ? fid : nil)
        case .readBinary, .pinCounterQuery, .verifyPIN, .computeSignature:
            return current
        }
    }
}
