import Crypto
import KyukyuDomain
import Logging
import Synchronization
import Testing

@testable import KyukyuCard

@Suite("JPKI session")
struct JPKISessionTests {
    let logger = Logger(label: "test")

    @Test(arguments: [
        ("JPKIAPICCTOKEN2", TokenType.individualNumberCard),
        ("JPKIAPICCTOKEN", .jukiCard),
        ("JPKIAPGPSETOKEN", .android),
        ("JPKIAPIOSTOKEN", .iphone),
    ])
    func classifiesTheTokenFromEF0006(label: String, expected: TokenType) async throws {
        let session = CardSession(connection: FakeCard.jpki(label: label), logger: logger)
        #expect(try await session.tokenType() == expected)
    }

    @Test func aCardWithoutTheJPKIApplicationIsRejected() async throws {
        let session = CardSession(connection: FakeCard(), logger: logger)
        await #expect(throws: CardError.notJPKICard()) { try await session.tokenType() }
    }

    @Test func anUnknownLabelIsRejected() async throws {
        let session = CardSession(connection: FakeCard.jpki(label: "SOMETHINGELSE"), logger: logger)
        await #expect(throws: CardError.notJPKICard()) { try await session.tokenType() }
    }

    @Test func readsACertificateByItsDERLengthInChunksAndIgnoresFiller() async throws {
        let blob = derBlob(bodyLength: 1200, filler: 300)
        let card = FakeCard.jpki(certificate: blob)
        let session = CardSession(connection: card, logger: logger)
        _ = try await session.tokenType()
        let der = try await session.readCertificateDER(.userAuthentication)
        #expect(der == Array(blob.prefix(1204)))
        let reads = card.commands.filter { $0[1] == 0xB0 }
        // 32 bytes of token info, the 4-byte header, then 1200 bytes in chunks of at most 256.
        #expect(reads.count == 1 + 1 + 5)
        #expect(reads.allSatisfy { $0.count == 5 })
    }

    @Test func aPhoneThatWantsItsPINFirstSaysSo() async throws {
        let card = FakeCard.jpki(label: "JPKIAPGPSETOKEN", certificate: derBlob(bodyLength: 10))
        card.state.withLock { $0.protectedFiles[JPKI.authCertificateEF] = JPKI.authPINEF }
        let session = CardSession(connection: card, logger: logger)
        _ = try await session.tokenType()
        await #expect(throws: CardError.certificateNeedsPIN()) {
            try await session.readCertificateDER(.userAuthentication)
        }
        try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        #expect(try await session.readCertificateDER(.userAuthentication).count == 14)
    }

    @Test func derHeaderForms() throws {
        #expect(try DERHeader.totalLength([0x30, 0x10, 0, 0]) == 18)
        #expect(try DERHeader.totalLength([0x30, 0x81, 0x90, 0]) == 3 + 0x90)
        #expect(try DERHeader.totalLength([0x30, 0x82, 0x04, 0x00]) == 4 + 1024)
        #expect(throws: CardError.malformedResponse("")) { try DERHeader.totalLength([0x04, 0x82, 0, 0]) }
        #expect(throws: CardError.malformedResponse("")) { try DERHeader.totalLength([0x30, 0x84, 0, 0]) }
    }
}

@Suite("PIN safety")
struct PINSafetyTests {
    let logger = Logger(label: "test")

    func verifies(_ card: FakeCard) -> [[UInt8]] { card.commands.filter { $0[1] == 0x20 } }

    @Test func asksForTheTriesBeforeEveryVerifyAndSendsOneVerify() async throws {
        let card = FakeCard.jpki()
        let session = CardSession(connection: card, logger: logger)
        try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        let sent = verifies(card)
        #expect(sent.count == 2)
        #expect(sent[0] == [0x00, 0x20, 0x00, 0x80], "the counter query comes first")
        #expect(sent[1].count == 9)
    }

    @Test func aWrongPINReportsTheTriesLeftAndIsNotRetried() async throws {
        let card = FakeCard.jpki()
        let session = CardSession(connection: card, logger: logger)
        do {
            try await session.verify(try CardPIN("9999", kind: .userAuthentication))
            Issue.record("a wrong PIN verified")
        } catch let error as CardError {
            #expect(error.code == .wrongPIN)
            #expect(error.triesLeft == 2)
        }
        #expect(verifies(card).filter { $0.count > 4 }.count == 1, "never retried")
    }

    @Test func refusesTheLastTryWithoutConfirmationAndSendsNothing() async throws {
        let card = FakeCard.jpki(authTries: 1)
        let session = CardSession(connection: card, logger: logger)
        await #expect(throws: CardError.lastTryNeedsConfirmation()) {
            try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        }
        #expect(verifies(card).allSatisfy { $0.count == 4 }, "no PIN reached the card")
        try await session.verify(try CardPIN("1234", kind: .userAuthentication), confirmLastTry: true)
    }

    @Test func theTryThatUsesTheLastOneReportsLocked() async throws {
        let card = FakeCard.jpki(authTries: 1)
        let session = CardSession(connection: card, logger: logger)
        await #expect(throws: CardError.pinLocked()) {
            try await session.verify(try CardPIN("0000", kind: .userAuthentication), confirmLastTry: true)
        }
        // Locked now: the library does not even send the PIN.
        let before = verifies(card).count
        await #expect(throws: CardError.pinLocked()) {
            try await session.verify(try CardPIN("1234", kind: .userAuthentication), confirmLastTry: true)
        }
        #expect(verifies(card).count == before + 1, "only the counter query")
    }

    @Test func locked6984IsItsOwnError() async throws {
        let card = FakeCard.jpki()
        card.state.withLock { state in
            state.override = { apdu in apdu[1] == 0x20 ? [0x69, 0x84] : nil }
        }
        let session = CardSession(connection: card, logger: logger)
        #expect(try await session.triesLeft(.userAuthentication) == 0)
        await #expect(throws: CardError.pinLocked()) {
            try await session.verify(try CardPIN("1234", kind: .userAuthentication), confirmLastTry: true)
        }
    }

    @Test func rawVerifyAndTheNumberFileAreRefused() async throws {
        let card = FakeCard.jpki()
        let session = CardSession(connection: card, logger: logger)
        await #expect(throws: CardError.forbiddenCommand("")) {
            try await session.transmit(CommandAPDU(ins: 0x20, p1: 0, p2: 0x80, data: Array("1234".utf8)))
        }
        try await session.selectApplication(JPKI.attributesAID)
        await #expect(throws: CardError.forbiddenCommand("")) {
            try await session.transmit(CommandAPDU(ins: 0xA4, p1: 0x02, p2: 0x0C, data: [0x00, 0x01]))
        }
        #expect(!card.commands.contains { $0 == [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x01] })
    }

    @Test(arguments: ["123", "12345", "12a4", "１２３４"])
    func malformedAuthPINsNeverReachTheCard(pin: String) {
        #expect(throws: CardError.invalidPINFormat("")) { try CardPIN(pin, kind: .userAuthentication) }
    }

    @Test func signingPINFormat() throws {
        _ = try CardPIN("ABC123", kind: .signing)
        #expect(throws: CardError.invalidPINFormat("")) { try CardPIN("abc123", kind: .signing) }
        #expect(throws: CardError.invalidPINFormat("")) { try CardPIN("AB12", kind: .signing) }
    }

    @Test func aPINNeverPrints() throws {
        let pin = try CardPIN("1234", kind: .userAuthentication)
        #expect(!"\(pin)".contains("1234"))
        #expect(!String(reflecting: pin).contains("1234"))
    }

    @Test func signsTheSHA256DigestInfoAfterTheGuardedVerify() async throws {
        let card = FakeCard.jpki()
        let session = CardSession(connection: card, logger: logger)
        let digest = Array(SHA256.hash(data: Array("nonce".utf8)))
        await #expect(throws: CardError.unexpectedStatus(.securityStatusNotSatisfied, during: "")) {
            try await session.signWithAuthenticationKey(sha256: digest)
        }
        try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        let signature = try await session.signWithAuthenticationKey(sha256: digest)
        #expect(signature.count == 256)
        let sign = card.commands.last!
        #expect(Array(sign.prefix(5)) == [0x80, 0x2A, 0x00, 0x80, 51])
        #expect(Array(sign[5..<24]) == DigestInfo.sha256Prefix)
        #expect(Array(sign[24..<56]) == Array(digest))
    }
}

@Suite("Card-face attributes")
struct AttributesTests {
    func template(name: String, address: String, birth: String = "19800101", sex: String = "1") -> [UInt8] {
        func tlv(_ tag: [UInt8], _ value: [UInt8]) -> [UInt8] {
            let count = value.count
            let length: [UInt8] =
                count < 0x80
                ? [UInt8(count)]
                : count < 0x100 ? [0x81, UInt8(count)] : [0x82, UInt8(count >> 8), UInt8(count & 0xFF)]
            return tag + length + value
        }
        let inner =
            tlv([0xDF, 0x21], [UInt8](repeating: 0, count: 8)) + tlv([0xDF, 0x22], Array(name.utf8))
            + tlv([0xDF, 0x23], Array(address.utf8)) + tlv([0xDF, 0x24], Array(birth.utf8))
            + tlv([0xDF, 0x25], Array(sex.utf8))
        return tlv([0xFF, 0x20], inner)
    }

    @Test func parsesTheFourAttributes() throws {
        let attributes = try CardAttributes(tlv: template(name: "試験\u{3000}花子", address: "架空県テスト市1-2-3", sex: "2"))
        #expect(attributes.familyName == "試験")
        #expect(attributes.givenName == "花子")
        #expect(attributes.address == "架空県テスト市1-2-3")
        #expect(attributes.birthDate == "19800101")
        #expect(attributes.sex == .female)
    }

    @Test func longFormLengths() throws {
        let longAddress = String(repeating: "架空", count: 60)  // 360 bytes of UTF-8
        let bytes = template(name: "試験\u{3000}太郎", address: longAddress)
        #expect(bytes[2] == 0x82)
        #expect(try CardAttributes.totalLength(header: Array(bytes.prefix(5))) == bytes.count)
        #expect(try CardAttributes(tlv: bytes + [0xFF, 0xFF]).address == longAddress)
    }

    @Test func malformedTemplatesAreClearErrors() {
        #expect(throws: CardError.malformedResponse("")) { try CardAttributes(tlv: [0xFF, 0x20, 0x05, 0xDF]) }
        #expect(throws: CardError.malformedResponse("")) {
            try CardAttributes(tlv: template(name: "試験\u{3000}太郎", address: "x", birth: "1980-1-1"))
        }
        #expect(throws: CardError.malformedResponse("")) {
            try CardAttributes(tlv: template(name: "試験\u{3000}太郎", address: "x", sex: "3"))
        }
    }

    @Test func neverSelectsTheNumberFileWhileReadingAttributes() async throws {
        let card = FakeCard.jpki()
        let attributesFile = template(name: "試験\u{3000}太郎", address: "架空県")
        card.state.withLock { state in
            state.files[JPKI.attributesAID] = [JPKI.attributesEF: attributesFile]
            state.protectedFiles[JPKI.attributesEF] = JPKI.attributesPINEF
        }
        let session = CardSession(connection: card, logger: Logger(label: "test"))
        let attributes = try await session.readAttributes(pin: try CardPIN("1234", kind: .attributes))
        #expect(attributes.givenName == "太郎")
        #expect(
            !card.commands.contains { $0.count >= 7 && $0[1] == 0xA4 && $0[2] == 0x02 && $0[5...6] == [0x00, 0x01] }
        )
    }
}
