/// The four attributes printed on the card face, as the 券面入力補助 application gives them.
///
/// This is patient data: never log it, never put it in an error message.
public struct CardAttributes: Hashable, Sendable, Codable {
    /// Family name.
    public var familyName: String
    /// Given name (empty when the card holds a single name).
    public var givenName: String
    /// Address.
    public var address: String
    /// Birth date as `YYYYMMDD`.
    public var birthDate: String
    /// Sex.
    public var sex: Sex

    /// Sex as coded on the card.
    public enum Sex: String, Hashable, Sendable, Codable {
        /// `1`
        case male
        /// `2`
        case female
        /// `9`
        case notApplicable = "not-applicable"
    }

    /// Creates attributes.
    public init(familyName: String, givenName: String, address: String, birthDate: String, sex: Sex) {
        self.familyName = familyName
        self.givenName = givenName
        self.address = address
        self.birthDate = birthDate
        self.sex = sex
    }

    /// The full name, family and given separated by an ideographic space as on the card.
    public var fullName: String { givenName.isEmpty ? familyName : familyName + "\u{3000}" + givenName }

    /// The total length of the `FF 20` template from its first bytes (at least 5): how many bytes of EF 0002 to read.
    public static func totalLength(header: [UInt8]) throws -> Int {
        var reader = TLVReader(header)
        guard try reader.tag() == 0xFF20 else {
            throw CardError.malformedResponse("the attributes file does not start with the FF 20 template")
        }
        let length = try reader.length()
        return reader.position + length
    }

    /// Parses the `FF 20` template: `DF 21` offsets, `DF 22` name, `DF 23` address, `DF 24` birth date, `DF 25` sex.
    public init(tlv bytes: [UInt8]) throws {
        var outer = TLVReader(bytes)
        guard try outer.tag() == 0xFF20 else {
            throw CardError.malformedResponse("the attributes file does not start with the FF 20 template")
        }
        let length = try outer.length()
        var reader = TLVReader(try outer.take(length))
        var fields: [UInt16: [UInt8]] = [:]
        while !reader.atEnd {
            let tag = try reader.tag()
            let value = try reader.take(try reader.length())
            fields[tag] = value
        }
        func text(_ tag: UInt16, _ what: String) throws -> String {
            guard let value = fields[tag] else {
                throw CardError.malformedResponse("the attributes lack the \(what)")
            }
            guard let string = String(validating: value, as: UTF8.self) else {
                throw CardError.malformedResponse("the \(what) is not valid UTF-8")
            }
            return string
        }
        let name = try text(0xDF22, "name")
        let parts = name.split(separator: "\u{3000}", maxSplits: 1, omittingEmptySubsequences: false)
        self.familyName = String(parts[0])
        self.givenName = parts.count > 1 ? String(parts[1]) : ""
        self.address = try text(0xDF23, "address")
        let birth = try text(0xDF24, "birth date")
        guard birth.count == 8, birth.allSatisfy(\.isASCII), birth.allSatisfy(\.isNumber) else {
            throw CardError.malformedResponse("the birth date is not YYYYMMDD")
        }
        self.birthDate = birth
        switch try text(0xDF25, "sex") {
        case "1": self.sex = .male
        case "2": self.sex = .female
        case "9": self.sex = .notApplicable
        default: throw CardError.malformedResponse("the sex code is not 1, 2 or 9")
        }
    }
}

/// A reader of BER-TLV with one- or two-byte tags and short or long (`81`, `82`) lengths, as the card's files
/// hold them; every read past the end or in an unsupported form throws ``CardError`` (`malformedResponse`).
public struct TLVReader {
    private let bytes: [UInt8]
    /// How many bytes have been read.
    public private(set) var position = 0

    /// A reader at the start of `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Whether every byte has been read.
    public var atEnd: Bool { position >= bytes.count }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else {
            throw CardError.malformedResponse("a TLV ends early")
        }
        defer { position += 1 }
        return bytes[position]
    }

    /// Reads a tag: one byte, or two when the first byte's low five bits are all set.
    public mutating func tag() throws -> UInt16 {
        let first = try byte()
        if first & 0x1F == 0x1F { return UInt16(first) << 8 | UInt16(try byte()) }
        return UInt16(first)
    }

    /// Reads a length: short form, or `81 xx`, or `82 xx xx`.
    public mutating func length() throws -> Int {
        let first = try byte()
        switch first {
        case 0..<0x80: return Int(first)
        case 0x81: return Int(try byte())
        case 0x82: return Int(try byte()) << 8 | Int(try byte())
        default: throw CardError.malformedResponse("a TLV length form is not supported")
        }
    }

    /// Reads `count` bytes of value.
    public mutating func take(_ count: Int) throws -> [UInt8] {
        guard count >= 0, position + count <= bytes.count else {
            throw CardError.malformedResponse("a TLV value runs past the end of the data")
        }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }
}
