/// An ISO 7816-4 status word (SW1 SW2).
public struct StatusWord: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The two bytes as one big-endian number.
    public let rawValue: UInt16

    /// Creates a status word from its 16-bit value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Creates a status word from SW1 and SW2.
    public init(_ sw1: UInt8, _ sw2: UInt8) { self.rawValue = UInt16(sw1) << 8 | UInt16(sw2) }

    /// The first byte.
    public var sw1: UInt8 { UInt8(rawValue >> 8) }
    /// The second byte.
    public var sw2: UInt8 { UInt8(rawValue & 0xFF) }

    /// `9000`: success.
    public static let success = StatusWord(rawValue: 0x9000)
    /// `6982`: security status not satisfied (PIN not verified).
    public static let securityStatusNotSatisfied = StatusWord(rawValue: 0x6982)
    /// `6983`: authentication method blocked.
    public static let authenticationBlocked = StatusWord(rawValue: 0x6983)
    /// `6984`: reference data not usable (a locked JPKI PIN).
    public static let referenceDataNotUsable = StatusWord(rawValue: 0x6984)
    /// `6985`: conditions of use not satisfied.
    public static let conditionsNotSatisfied = StatusWord(rawValue: 0x6985)
    /// `6A82`: file or application not found.
    public static let fileNotFound = StatusWord(rawValue: 0x6A82)
    /// `6A86`: incorrect P1-P2.
    public static let incorrectP1P2 = StatusWord(rawValue: 0x6A86)
    /// `6B00`: offset outside the file.
    public static let wrongParameters = StatusWord(rawValue: 0x6B00)
    /// `6700`: wrong length.
    public static let wrongLength = StatusWord(rawValue: 0x6700)
    /// `6D00`: instruction not supported.
    public static let instructionNotSupported = StatusWord(rawValue: 0x6D00)
    /// `6E00`: class not supported.
    public static let classNotSupported = StatusWord(rawValue: 0x6E00)

    /// Whether this is `9000`.
    public var isSuccess: Bool { self == .success }

    /// For `63Cx`, the retry counter x; otherwise nil.
    public var verifyTriesLeft: Int? { sw1 == 0x63 && sw2 & 0xF0 == 0xC0 ? Int(sw2 & 0x0F) : nil }

    /// Four hex digits.
    public var description: String {
        let hex = String(rawValue, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - hex.count) + hex
    }

    /// A short explanation for error messages.
    public var meaning: String {
        switch self {
        case .success: return "success"
        case .securityStatusNotSatisfied: return "PIN or approval required"
        case .authenticationBlocked, .referenceDataNotUsable: return "PIN locked"
        case .conditionsNotSatisfied: return "conditions of use not satisfied"
        case .fileNotFound: return "file or application not found"
        case .incorrectP1P2: return "incorrect parameters"
        case .wrongParameters: return "offset outside the file"
        case .wrongLength: return "wrong length"
        case .instructionNotSupported: return "instruction not supported"
        case .classNotSupported: return "class not supported"
        default:
            if let tries = verifyTriesLeft { return "PIN not verified, \(tries) tries left" }
            return "status \(description)"
        }
    }
}

/// A short command APDU (ISO 7816-4 cases 1–4; data up to 255 bytes, Le up to 256).
public struct CommandAPDU: Hashable, Sendable {
    /// Class byte.
    public var cla: UInt8
    /// Instruction byte.
    public var ins: UInt8
    /// Parameter 1.
    public var p1: UInt8
    /// Parameter 2.
    public var p2: UInt8
    /// Command data (Lc is its count); empty for cases 1 and 2.
    public var data: [UInt8]
    /// Expected response length, 1...256; nil for cases 1 and 3.
    public var le: Int?

    /// Creates a command APDU.
    public init(cla: UInt8 = 0x00, ins: UInt8, p1: UInt8, p2: UInt8, data: [UInt8] = [], le: Int? = nil) {
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le
    }

    /// The encoded bytes, or an error when the APDU does not fit in a short APDU.
    public func encoded() throws -> [UInt8] {
        guard data.count <= 255 else {
            throw CardError.forbiddenCommand("command data of \(data.count) bytes does not fit a short APDU")
        }
        if let le, !(1...256).contains(le) {
            throw CardError.forbiddenCommand("Le \(le) is outside 1...256")
        }
        var bytes: [UInt8] = [cla, ins, p1, p2]
        if !data.isEmpty {
            bytes.append(UInt8(data.count))
            bytes += data
        }
        if let le { bytes.append(UInt8(truncatingIfNeeded: le)) }
        return bytes
    }
}

/// A response APDU: data and status word.
public struct ResponseAPDU: Hashable, Sendable {
    /// The response data.
    public var data: [UInt8]
    /// The status word.
    public var statusWord: StatusWord

    /// Creates a response.
    public init(data: [UInt8], statusWord: StatusWord) {
        self.data = data
        self.statusWord = statusWord
    }

    /// Parses raw response bytes (data followed by SW1 SW2).
    public init(bytes: [UInt8]) throws {
        guard bytes.count >= 2 else {
            throw CardError.malformedResponse("the card answered with \(bytes.count) bytes, fewer than a status word")
        }
        self.data = Array(bytes.dropLast(2))
        self.statusWord = StatusWord(bytes[bytes.count - 2], bytes[bytes.count - 1])
    }
}

/// The transmission protocol negotiated with the card.
public enum CardProtocol: String, Sendable, Codable {
    /// Character-oriented T=0: case-4 commands are sent without Le and the answer is fetched with GET RESPONSE.
    case t0 = "T=0"
    /// Block-oriented T=1.
    case t1 = "T=1"
    /// Raw (not used with JPKI tokens).
    case raw = "RAW"
}

/// What happens to the card when a transaction or a connection ends.
enum CardDisposition: Sendable {
    /// Leave the card as it is.
    case leave
    /// Reset the card: it forgets its selections and every PIN verification (and other programs learn that it
    /// was reset).
    case reset
}

/// A connection to one card: the boundary below the APDU layer.
///
/// Internal on purpose: outside this module the only way to a card is a ``CardSession`` (through
/// ``CardReader/withSession(reader:_:)``), which enforces the PIN and file rules. ``PCSCCardConnection`` is the
/// real one; tests use an in-memory double.
protocol CardConnection: Sendable {
    /// The protocol in use.
    var cardProtocol: CardProtocol { get }
    /// The card's answer to reset.
    var atr: [UInt8] { get }
    /// Sends raw command bytes and returns the raw response bytes (data + SW1 SW2).
    func transmit(_ command: [UInt8]) async throws -> [UInt8]
    /// Begins a PC/SC transaction: until it ends, no other program's command reaches the card.
    func beginTransaction() async throws
    /// Ends the transaction (when `endingTransaction`) with `disposition`, then releases the card. Safe to call
    /// more than once; the first call wins.
    func close(endingTransaction: Bool, disposition: CardDisposition) async
}

/// Sends APDUs over a ``CardConnection``, taking care of the transport details that ISO 7816-3/4 leaves to the
/// terminal: `61xx` (more data, fetch with GET RESPONSE), `6Cxx` (wrong Le, resend with the right one) and T=0's
/// case-4 rule.
///
/// Only a read (a case-2 command: no data, an Le) is ever resent on `6Cxx`. A VERIFY is never resent, on `6Cxx`
/// or anything else: a second VERIFY with the PIN would spend a second try.
struct APDUExchange: Sendable {
    /// The connection the APDUs go over.
    let connection: any CardConnection
    /// The most GET RESPONSE rounds accepted for one command before the answer is called malformed.
    var maximumGetResponseRounds = 64

    /// Creates an exchange over a connection.
    init(connection: any CardConnection) {
        self.connection = connection
    }

    /// Whether a `6Cxx` answer to `command` may be followed by the same command with the Le the card asks for.
    static func mayResendOnWrongLength(_ command: CommandAPDU) -> Bool {
        command.ins != 0x20 && command.data.isEmpty && command.le != nil
    }

    /// Sends one command and returns the complete response.
    func send(_ command: CommandAPDU) async throws -> ResponseAPDU {
        var wire = command
        if connection.cardProtocol == .t0, !command.data.isEmpty, command.le != nil {
            // T=0 carries no Le on a case-4 command; the card answers 61xx and we fetch the data.
            wire.le = nil
        }
        var response = try ResponseAPDU(bytes: try await connection.transmit(try wire.encoded()))
        if response.statusWord.sw1 == 0x6C, Self.mayResendOnWrongLength(command) {
            wire.le = response.statusWord.sw2 == 0 ? 256 : Int(response.statusWord.sw2)
            response = try ResponseAPDU(bytes: try await connection.transmit(try wire.encoded()))
        }
        var data = response.data
        var rounds = 0
        while response.statusWord.sw1 == 0x61 {
            rounds += 1
            guard rounds <= maximumGetResponseRounds else {
                throw CardError.malformedResponse("the card kept announcing more data (61xx) past \(rounds - 1) rounds")
            }
            let available = response.statusWord.sw2 == 0 ? 256 : Int(response.statusWord.sw2)
            let getResponse = CommandAPDU(cla: command.cla & 0x03, ins: 0xC0, p1: 0, p2: 0, le: available)
            response = try ResponseAPDU(bytes: try await connection.transmit(try getResponse.encoded()))
            data += response.data
        }
        return ResponseAPDU(data: data, statusWord: response.statusWord)
    }
}
