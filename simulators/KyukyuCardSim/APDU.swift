/// A two-byte ISO 7816-4 status word, as the simulated card answers it.
public struct StatusWord: Hashable, Sendable, CustomStringConvertible {
    /// The first byte (SW1).
    public var sw1: UInt8
    /// The second byte (SW2).
    public var sw2: UInt8

    /// Makes a status word from its two bytes.
    public init(_ sw1: UInt8, _ sw2: UInt8) {
        self.sw1 = sw1
        self.sw2 = sw2
    }

    /// The two bytes, SW1 first.
    public var bytes: [UInt8] { [self.sw1, self.sw2] }

    /// Hex, for example `6A82`.
    public var description: String {
        hexString([self.sw1, self.sw2])
    }

    /// `9000`: success.
    public static let success = StatusWord(0x90, 0x00)
    /// `63Cx`: verification failed or counter query; `x` tries left.
    public static func triesLeft(_ count: Int) -> StatusWord {
        StatusWord(0x63, 0xC0 | UInt8(clamping: max(0, min(count, 15))))
    }
    /// `6700`: wrong length (Lc, Le or an extended APDU).
    public static let wrongLength = StatusWord(0x67, 0x00)
    /// `6982`: security status not satisfied (a PIN or the phone's approval is needed first).
    public static let securityStatusNotSatisfied = StatusWord(0x69, 0x82)
    /// `6984`: the PIN is locked.
    public static let referenceDataBlocked = StatusWord(0x69, 0x84)
    /// `6985`: conditions of use not satisfied (no suitable current file, approval denied).
    public static let conditionsNotSatisfied = StatusWord(0x69, 0x85)
    /// `6A82`: file or application not found.
    public static let fileNotFound = StatusWord(0x6A, 0x82)
    /// `6A86`: incorrect P1/P2.
    public static let incorrectP1P2 = StatusWord(0x6A, 0x86)
    /// `6B00`: offset beyond the end of the file.
    public static let wrongOffset = StatusWord(0x6B, 0x00)
    /// `6D00`: instruction not supported.
    public static let instructionNotSupported = StatusWord(0x6D, 0x00)
    /// `6E00`: class not supported.
    public static let classNotSupported = StatusWord(0x6E, 0x00)
}

/// A short command APDU, parsed from the bytes a reader sent.
public struct CommandAPDU: Hashable, Sendable {
    /// The class byte.
    public var cla: UInt8
    /// The instruction byte.
    public var ins: UInt8
    /// The first parameter.
    public var p1: UInt8
    /// The second parameter.
    public var p2: UInt8
    /// The command data (empty for cases 1 and 2).
    public var data: [UInt8]
    /// The expected response length, `nil` when absent; Le = `00` is 256.
    public var le: Int?

    /// Makes a command from its parts.
    public init(cla: UInt8, ins: UInt8, p1: UInt8, p2: UInt8, data: [UInt8] = [], le: Int? = nil) {
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le
    }

    /// Parses a short APDU (ISO 7816-4 cases 1 to 4).
    ///
    /// Returns `nil` for anything that is not a well-formed short APDU: fewer than 4 bytes, an extended-length
    /// APDU, or an Lc that does not match the number of bytes. The card answers those with `6700`.
    public init?(parsing bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        guard b.count >= 4 else { return nil }
        self.cla = b[0]
        self.ins = b[1]
        self.p1 = b[2]
        self.p2 = b[3]
        switch b.count {
        case 4:
            self.data = []
            self.le = nil
        case 5:
            self.data = []
            self.le = b[4] == 0 ? 256 : Int(b[4])
        default:
            let lc = Int(b[4])
            guard lc != 0 else { return nil }  // extended length: not supported by the card
            if b.count == 5 + lc {
                self.data = Array(b[5..<(5 + lc)])
                self.le = nil
            } else if b.count == 6 + lc {
                self.data = Array(b[5..<(5 + lc)])
                self.le = b[5 + lc] == 0 ? 256 : Int(b[5 + lc])
            } else {
                return nil
            }
        }
    }

    /// The encoded bytes (short form).
    public var bytes: [UInt8] {
        var out: [UInt8] = [self.cla, self.ins, self.p1, self.p2]
        if !self.data.isEmpty {
            out.append(UInt8(self.data.count))
            out += self.data
        }
        if let le = self.le {
            out.append(le >= 256 ? 0 : UInt8(le))
        }
        return out
    }
}

/// A response APDU: data followed by a status word.
public struct ResponseAPDU: Hashable, Sendable {
    /// The response data.
    public var data: [UInt8]
    /// The status word.
    public var status: StatusWord

    /// Makes a response.
    public init(data: [UInt8] = [], status: StatusWord) {
        self.data = data
        self.status = status
    }

    /// Data and status word, as sent to the reader.
    public var bytes: [UInt8] { self.data + self.status.bytes }

    /// Splits raw response bytes; `nil` when shorter than a status word.
    public init?(parsing bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        guard b.count >= 2 else { return nil }
        self.data = Array(b.dropLast(2))
        self.status = StatusWord(b[b.count - 2], b[b.count - 1])
    }
}

/// Upper-case hex of some bytes, without separators.
func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits: [Character] = Array("0123456789ABCDEF")
    var out = ""
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return out
}
