import Foundation
import KyukyuOnshi
import Testing

@Suite struct MalformedInputTests {
    func decodeError<T: OnshiMessage>(_ type: T.Type, _ bytes: [UInt8], limits: OnshiXMLLimits = .default)
        -> OnshiXMLError?
    {
        do {
            _ = try OnshiXML.decode(type, from: bytes, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    var sample: [UInt8] { OnshiXML.encode(Fixtures.categoryResponse(.medications([Fixtures.medication] * 3))) }

    @Test func truncated() {
        let bytes = sample
        for cut in [bytes.count / 3, bytes.count / 2, bytes.count - 5, bytes.count - 1] {
            let error = decodeError(CategoryResponse.self, Array(bytes.prefix(cut)))
            #expect(error == .truncated(), "cut at \(cut): \(String(describing: error))")
        }
        #expect(decodeError(CategoryResponse.self, []) == .truncated())
        // Every cut after the root opens, including cuts inside multi-byte characters and inside tags.
        let rootEnd = bytes.firstIndex(of: UInt8(ascii: ">"), after: 40)
        for cut in stride(from: rootEnd + 1, to: bytes.count - 1, by: 7) {
            let error = decodeError(CategoryResponse.self, Array(bytes.prefix(cut)))
            #expect(error == .truncated(), "cut at \(cut) of \(bytes.count)")
        }
    }

    @Test func malformed() {
        let error = decodeError(
            CategoryResponse.self,
            Fixtures.xml("<CategoryResponse version=\"1\"><A></B></CategoryResponse>")
        )
        #expect(error == .malformed())
        #expect(decodeError(CategoryResponse.self, Fixtures.xml("not xml at all")) == .malformed())
    }

    @Test func wrongRoot() {
        let bytes = OnshiXML.encode(NonceRequest(header: Fixtures.header, crewID: "c"))
        #expect(
            decodeError(SessionResponse.self, bytes)
                == .wrongRoot(expected: "SessionResponse", found: "NonceRequest")
        )
    }

    @Test func missingRequiredElement() throws {
        var text = String(decoding: sample, as: UTF8.self)
        let range = try #require(text.ranges(of: "<YJCode>3339001F1020</YJCode>").dropFirst(2).first)
        text.removeSubrange(range)
        let error = try #require(decodeError(CategoryResponse.self, Array(text.utf8)))
        #expect(error == .missingElement(path: "MessageBody/ResultList/Medication[3]/YJCode"))
        #expect(error.description.contains("MessageBody/ResultList/Medication[3]/YJCode missing"))
    }

    @Test func missingSyntheticMarker() {
        let text = String(decoding: sample, as: UTF8.self).replacingOccurrences(of: " synthetic=\"true\"", with: "")
        let error = decodeError(CategoryResponse.self, Array(text.utf8))
        #expect(error == .missingAttribute(path: "MessageBody/ResultList/Medication[1]", attribute: "synthetic"))
    }

    @Test func badDateAndNumber() throws {
        let badDate = String(decoding: sample, as: UTF8.self)
            .replacingOccurrences(
                of: "<DispensedDate>20261102</DispensedDate>",
                with: "<DispensedDate>20261131</DispensedDate>"
            )
        let dateError = try #require(decodeError(CategoryResponse.self, Array(badDate.utf8)))
        #expect(
            dateError
                == .invalidValue(path: "MessageBody/ResultList/Medication[1]/DispensedDate", expected: "date YYYYMMDD")
        )
        #expect(!dateError.description.contains("20261131"))

        let badNumber = String(decoding: sample, as: UTF8.self)
            .replacingOccurrences(of: "<Days>28</Days>", with: "<Days>2x8</Days>")
        #expect(
            decodeError(CategoryResponse.self, Array(badNumber.utf8))
                == .invalidValue(path: "MessageBody/ResultList/Medication[1]/Days", expected: "integer")
        )
        let badTimestamp = String(decoding: sample, as: UTF8.self)
            .replacingOccurrences(of: "<ProcessedAt>", with: "<ProcessedAt>x")
        #expect(
            decodeError(CategoryResponse.self, Array(badTimestamp.utf8))
                == .invalidValue(path: "MessageHeader/ProcessedAt", expected: "timestamp YYYY-MM-DDThh:mm:ssZ")
        )
        let session = OnshiXML.encode(
            SessionResponse(header: Fixtures.header, result: .completed, sessionToken: "t", qualificationValidity: 1)
        )
        let badValidity = String(decoding: session, as: UTF8.self)
            .replacingOccurrences(of: "<QualificationValidity>1<", with: "<QualificationValidity>7<")
        #expect(
            decodeError(SessionResponse.self, Array(badValidity.utf8))
                == .invalidValue(path: "MessageBody/QualificationValidity", expected: "integer in 1...6")
        )
    }

    @Test func unexpectedAndDuplicateElements() {
        let extra = String(decoding: sample, as: UTF8.self)
            .replacingOccurrences(of: "<Unit>mg</Unit>", with: "<Unit>mg</Unit><Secret>x</Secret>")
        #expect(
            decodeError(CategoryResponse.self, Array(extra.utf8))
                == .unexpectedElement(path: "MessageBody/ResultList/Medication[1]/Secret")
        )
        let dup = String(decoding: sample, as: UTF8.self)
            .replacingOccurrences(of: "<Unit>mg</Unit>", with: "<Unit>mg</Unit><Unit>g</Unit>")
        #expect(
            decodeError(CategoryResponse.self, Array(dup.utf8))
                == .duplicateElement(path: "MessageBody/ResultList/Medication[1]/Unit")
        )
    }

    @Test func oversizeTooDeepAndTooMany() {
        let bytes = sample
        #expect(
            decodeError(CategoryResponse.self, bytes, limits: .init(maxBytes: 100, maxDepth: 16, maxElements: 1000))
                == .tooLarge(limit: 100)
        )
        let deep =
            "<CategoryResponse version=\"1\">" + String(repeating: "<a>", count: 100)
            + String(repeating: "</a>", count: 100) + "</CategoryResponse>"
        #expect(decodeError(CategoryResponse.self, Fixtures.xml(deep)) == .tooDeep(limit: 16))
        #expect(
            decodeError(CategoryResponse.self, bytes, limits: .init(maxBytes: 1 << 20, maxDepth: 16, maxElements: 20))
                == .tooManyElements(limit: 20)
        )
    }

    @Test func doctypeAndEntitiesRefused() {
        let bomb = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
            <NonceRequest version="1"><MessageHeader/><MessageBody><CrewID>&lol2;</CrewID></MessageBody></NonceRequest>
            """
        #expect(decodeError(NonceRequest.self, Fixtures.xml(bomb)) == .forbiddenDeclaration())
        let external = """
            <?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><NonceRequest version="1"/>
            """
        #expect(decodeError(NonceRequest.self, Fixtures.xml(external)) == .forbiddenDeclaration())
    }

    /// The declaration filter reads ASCII bytes; other encodings that libxml2 would decode are refused first.
    /// Before this check, the UTF-16 bomb below reached libxml2 and its entities were expanded.
    @Test func onlyUTF8ReachesTheParser() {
        let bomb = """
            <?xml version="1.0" encoding="UTF-16"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
            <NonceRequest version="1"><MessageHeader/><MessageBody><CrewID>&lol2;</CrewID></MessageBody></NonceRequest>
            """
        func utf16(_ text: String, bigEndian: Bool, bom: Bool) -> [UInt8] {
            var out: [UInt8] = bom ? (bigEndian ? [0xFE, 0xFF] : [0xFF, 0xFE]) : []
            for unit in text.utf16 {
                let pair = [UInt8(unit >> 8), UInt8(unit & 0xFF)]
                out += bigEndian ? pair : pair.reversed()
            }
            return out
        }
        func utf32(_ text: String) -> [UInt8] {
            text.unicodeScalars.flatMap { scalar in
                let v = scalar.value
                return [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
            }
        }
        let cases: [(String, [UInt8], String)] = [
            ("UTF-16BE with BOM", utf16(bomb, bigEndian: true, bom: true), "byte-order mark"),
            ("UTF-16LE with BOM", utf16(bomb, bigEndian: false, bom: true), "byte-order mark"),
            ("UTF-16LE without BOM", utf16(bomb, bigEndian: false, bom: false), "NUL byte"),
            ("UTF-32BE", utf32(bomb), "NUL byte"),
            ("UTF-8 BOM", [0xEF, 0xBB, 0xBF] + Array(String(decoding: sample, as: UTF8.self).utf8), "byte-order mark"),
            (
                "Latin-1 declared",
                Array(#"<?xml version="1.0" encoding="ISO-8859-1"?><NonceRequest version="1"/>"#.utf8),
                "not UTF-8"
            ),
            ("UTF-7 declared", Array(#"<?xml version='1.0' encoding='UTF-7'?><a/>"#.utf8), "not UTF-8"),
            ("EBCDIC", [0x4C, 0x6F, 0xA7, 0x94, 0x93, 0x40], "invalid UTF-8"),
            (
                "invalid UTF-8 in text",
                Array("<NonceRequest version=\"1\">".utf8) + [0xC3, 0x28] + Array("</NonceRequest>".utf8),
                "invalid UTF-8"
            ),
            (
                "NUL in the middle", Array("<NonceRequest version=\"1\">".utf8) + [0] + Array("</NonceRequest>".utf8),
                "NUL byte"
            ),
        ]
        for (name, bytes, reason) in cases {
            let error = decodeError(NonceRequest.self, bytes)
            #expect(error?.kind == "not-utf8", "\(name): \(String(describing: error))")
            #expect(error?.description.contains(reason) == true, "\(name): \(String(describing: error))")
        }
        // UTF-8, declared in any spelling, still decodes.
        let declared = String(decoding: sample, as: UTF8.self).replacingOccurrences(of: "UTF-8", with: "utf-8")
        #expect(decodeError(CategoryResponse.self, Array(declared.utf8)) == nil)
    }

    @Test func recordCountMustMatch() {
        let text = String(decoding: sample, as: UTF8.self)
            .replacingOccurrences(of: "<ResultList count=\"3\">", with: "<ResultList count=\"4\">")
        #expect(
            decodeError(CategoryResponse.self, Array(text.utf8))
                == .invalidValue(path: "MessageBody/ResultList@count", expected: "record count")
        )
    }

    @Test func missingVersion() {
        let text = String(decoding: sample, as: UTF8.self).replacingOccurrences(of: " version=\"1\"", with: "")
        #expect(
            decodeError(CategoryResponse.self, Array(text.utf8))
                == .missingAttribute(path: "CategoryResponse", attribute: "version")
        )
    }
}

extension Array where Element == UInt8 {
    func firstIndex(of byte: UInt8, after start: Int) -> Int {
        self[start...].firstIndex(of: byte)!
    }
}

extension Array {
    static func * (lhs: Self, rhs: Int) -> Self { (0..<rhs).flatMap { _ in lhs } }
}
