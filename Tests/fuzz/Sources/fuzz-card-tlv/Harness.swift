// The card's answers (KyukyuCard: APDU.swift, CardAttributes.swift, JPKI.swift) on hostile bytes: response APDUs,
// BER-TLV, the 券面入力補助 attributes template, token labels and PINs.
//
// Invariants: a refusal is a `CardError`, never a trap; a response APDU splits into data + status word that join
// back to the bytes; TLV read from the bytes re-encodes (canonically) to bytes that read back the same; attributes
// that parse re-encode to a template that parses to the same attributes, whose length the header gives; a PIN
// accepted has its kind's form and a description that does not show it.

import FuzzSupport
import KyukyuCard
import KyukyuDomain

/// libFuzzer's entry point: checks one input (always returns 0; a broken invariant aborts).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = fuzzBytes(start, count)
    checkResponse(bytes)
    checkTLV(bytes)
    checkAttributes(bytes)
    checkCommand(bytes)
    checkLabelAndPIN(bytes)
    return 0
}

func cardError(_ error: any Error, _ what: String) {
    require(error is CardError, "\(what) threw \(type(of: error)), not a CardError")
}

func checkResponse(_ bytes: [UInt8]) {
    do {
        let response = try ResponseAPDU(bytes: bytes)
        require(response.data + [response.statusWord.sw1, response.statusWord.sw2] == bytes, "ResponseAPDU lost bytes")
        require(response.statusWord.description.count == 4, "a status word is not 4 hex digits")
        require(!response.statusWord.meaning.isEmpty, "a status word without meaning")
    } catch {
        cardError(error, "ResponseAPDU(bytes:)")
        require(bytes.count < 2, "ResponseAPDU refused \(bytes.count) bytes")
    }
}

/// Reads tag-value pairs until the end or the first refusal.
func readTLV(_ bytes: [UInt8]) -> (items: [(tag: UInt16, value: [UInt8])], complete: Bool) {
    var reader = TLVReader(bytes)
    var items: [(tag: UInt16, value: [UInt8])] = []
    while !reader.atEnd {
        do {
            let tag = try reader.tag()
            let length = try reader.length()
            require((0...0xFFFF).contains(length), "a TLV length out of range")
            items.append((tag, try reader.take(length)))
            require(reader.position <= bytes.count, "the TLV reader ran past the end")
        } catch {
            cardError(error, "TLVReader")
            return (items, false)
        }
    }
    return (items, true)
}

/// BER-TLV, canonically: one- or two-byte tag, the shortest length form.
func encodeTLV(_ tag: UInt16, _ value: [UInt8]) -> [UInt8] {
    var out: [UInt8] = tag > 0xFF ? [UInt8(tag >> 8), UInt8(tag & 0xFF)] : [UInt8(tag)]
    switch value.count {
    case 0..<0x80: out.append(UInt8(value.count))
    case 0x80...0xFF: out += [0x81, UInt8(value.count)]
    default: out += [0x82, UInt8(value.count >> 8), UInt8(value.count & 0xFF)]
    }
    return out + value
}

func checkTLV(_ bytes: [UInt8]) {
    let (items, complete) = readTLV(bytes)
    let encoded = items.flatMap { encodeTLV($0.tag, $0.value) }
    let (again, againComplete) = readTLV(encoded)
    require(againComplete, "canonical TLV does not read back")
    require(
        again.count == items.count && zip(again, items).allSatisfy { $0.tag == $1.tag && $0.value == $1.value },
        "TLV changed through a canonical re-encoding"
    )
    if complete { require(encoded.count <= bytes.count, "canonical TLV longer than the original") }
}

func checkAttributes(_ bytes: [UInt8]) {
    let attributes: CardAttributes
    do {
        attributes = try CardAttributes(tlv: bytes)
    } catch {
        cardError(error, "CardAttributes(tlv:)")
        return
    }
    // The session reads the first 5 bytes, then as many as the header says: the template must fit in the bytes.
    do {
        let total = try CardAttributes.totalLength(header: Array(bytes.prefix(5)))
        require(total <= bytes.count, "the attributes' header announces more than was parsed")
    } catch {
        invariantBroken("attributes parse, but their header does not: \(error)")
    }
    let sex: [UInt8] =
        switch attributes.sex {
        case .male: [0x31]
        case .female: [0x32]
        case .notApplicable: [0x39]
        }
    let inner =
        encodeTLV(0xDF22, Array(attributes.fullName.utf8)) + encodeTLV(0xDF23, Array(attributes.address.utf8))
        + encodeTLV(0xDF24, Array(attributes.birthDate.utf8)) + encodeTLV(0xDF25, sex)
    let template = encodeTLV(0xFF20, inner)
    do {
        let again = try CardAttributes(tlv: template)
        require(again == attributes, "attributes changed through a re-encoding")
        let total = try CardAttributes.totalLength(header: Array(template.prefix(5)))
        require(total == template.count, "the header's length is not the template's")
    } catch {
        invariantBroken("re-encoded attributes do not parse: \(error)")
    }
}

func checkCommand(_ bytes: [UInt8]) {
    var reader = FuzzReader(bytes)
    let header = reader.take(4) + [0, 0, 0, 0]
    let leByte = reader.byte()
    let le: Int? = leByte == 0 ? nil : Int(leByte) + (leByte == 0xFF ? 1 : 0)
    let command = CommandAPDU(cla: header[0], ins: header[1], p1: header[2], p2: header[3], data: reader.rest(), le: le)
    do {
        let encoded = try command.encoded()
        let expected = 4 + (command.data.isEmpty ? 0 : 1 + command.data.count) + (le == nil ? 0 : 1)
        require(encoded.count == expected, "a short APDU of the wrong length")
        require(Array(encoded.prefix(4)) == Array(header.prefix(4)), "a command's header changed")
    } catch {
        cardError(error, "CommandAPDU.encoded()")
        require(command.data.count > 255, "a command that fits a short APDU was refused")
    }
}

func checkLabelAndPIN(_ bytes: [UInt8]) {
    let label = String(decoding: bytes.prefix { $0 != 0x20 && $0 != 0x00 }, as: UTF8.self)
    if let type = TokenType(label: label) {
        require(label.hasPrefix("JPKIAP"), "a token type from a label that is not JPKI's")
        _ = type
    }
    let text = String(decoding: bytes.prefix(20), as: UTF8.self)
    for kind in [PINKind.userAuthentication, .attributes, .signing] {
        do {
            let pin = try CardPIN(text, kind: kind)
            let value = text.trimmingSuffixNewlines()
            require(value.allSatisfy { $0.isASCII }, "a PIN with non-ASCII characters was accepted")
            require(
                kind == .signing ? (6...16).contains(value.count) : value.count == 4,
                "a PIN of the wrong length was accepted"
            )
            require(!pin.description.contains(value), "a PIN's description shows the PIN")
        } catch {
            cardError(error, "CardPIN")
        }
    }
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var slice = Substring(self)
        while let last = slice.last, last == "\n" || last == "\r" || last == "\r\n" { slice = slice.dropLast() }
        return String(slice)
    }
}
