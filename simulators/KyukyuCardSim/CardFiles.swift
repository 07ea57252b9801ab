/// Builders for the contents of the simulated card's elementary files.
public enum JPKICardFiles {
    /// The JPKI AP's name.
    public static let jpkiAID: [UInt8] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]
    /// The 券面入力補助 AP's name (text attributes).
    public static let attributesAID: [UInt8] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08]
    /// The 券面 AP's name (card face image).
    public static let cardFaceAID: [UInt8] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02]

    /// The contact ATR of a My Number card.
    public static let contactATR: [UInt8] = [
        0x3B, 0xC5, 0xFF, 0x81, 0x31, 0xFB, 0x45, 0x80, 0x73, 0xC6, 0x01, 0x00, 0x00,
    ]
    /// The ATR a contactless reader synthesises for the card.
    public static let contactlessATR: [UInt8] = [
        0x3B, 0x88, 0x80, 0x01, 0x00, 0x00, 0x05, 0xE0, 0xB3, 0x81, 0xA1, 0x00, 0x7F,
    ]

    /// EF 0006: 160 bytes, the label space-padded to 32 bytes, then zeros.
    public static func tokenInfo(label: String) -> [UInt8] {
        var out = Array(label.utf8.prefix(32))
        out += Array(repeating: 0x20, count: 32 - out.count)
        out += Array(repeating: 0x00, count: 160 - 32)
        return out
    }

    /// A certificate file: the DER object, then filler (`FF`) up to a fixed file size, as card EFs are
    /// fixed-size (at least 64 bytes of filler; the size rounded up to 256).
    public static func certificateFile(_ der: [UInt8]) -> [UInt8] {
        let size = ((der.count + 64 + 255) / 256) * 256
        return der + Array(repeating: 0xFF, count: size - der.count)
    }

    /// EF 0001 of the 券面入力補助 AP: `FF 10 0C` and 12 ASCII digits, then filler. The simulator only ever holds a
    /// dummy number (all zeros); the project never reads this file.
    public static func myNumberFile() -> [UInt8] {
        [0xFF, 0x10, 0x0C] + Array(repeating: 0x30, count: 12) + Array(repeating: 0xFF, count: 1)
    }

    /// EF 0002 of the 券面入力補助 AP: `FF 20 L { DF 21 08 offsets, DF 22 name, DF 23 address, DF 24 08 birth date,
    /// DF 25 01 sex }`, long-form lengths when a length is over 127, then filler (`FF`).
    ///
    /// The four 2-byte offsets in DF 21 give where the DF 22 … DF 25 objects start, counted from the first byte
    /// of the FF 20 value.
    public static func attributesFile(name: String, address: String, birthDate: String, sex: UInt8) -> [UInt8] {
        let fields: [[UInt8]] = [
            tlv([0xDF, 0x22], Array(name.utf8)),
            tlv([0xDF, 0x23], Array(address.utf8)),
            tlv([0xDF, 0x24], Array(birthDate.utf8)),
            tlv([0xDF, 0x25], [sex]),
        ]
        var offsets: [UInt8] = []
        var position = 3 + 8  // DF 21 08 and its value come first
        for field in fields {
            offsets += [UInt8(position >> 8), UInt8(position & 0xFF)]
            position += field.count
        }
        let body = tlv([0xDF, 0x21], offsets) + fields.flatMap { $0 }
        return tlv([0xFF, 0x20], body) + Array(repeating: 0xFF, count: 16)
    }

    /// EF 0002 for a synthetic holder.
    public static func attributesFile(for holder: SyntheticHolder) -> [UInt8] {
        attributesFile(
            name: holder.fullName,
            address: holder.address,
            birthDate: holder.birthDate.compact,
            sex: holder.sex.code
        )
    }

    /// A BER-TLV with a definite length: short form up to 127, then `81 LL` or `82 LL LL`.
    public static func tlv(_ tag: [UInt8], _ value: [UInt8]) -> [UInt8] {
        tag + berLength(value.count) + value
    }

    /// A BER definite length.
    public static func berLength(_ length: Int) -> [UInt8] {
        switch length {
        case 0..<0x80: [UInt8(length)]
        case 0x80..<0x100: [0x81, UInt8(length)]
        default: [0x82, UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
        }
    }
}
