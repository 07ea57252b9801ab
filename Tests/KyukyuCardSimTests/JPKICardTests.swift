import Crypto
import Foundation
import KyukyuCardSim
import SwiftASN1
import Testing
import X509
import _CryptoExtras

@Suite("JPKI card model")
struct JPKICardTests {
    // MARK: SELECT

    @Test func selectsTheThreeApplicationsAndRejectsOthers() {
        var card = Fixtures.card()
        #expect(card.sw(Commands.selectAP(JPKICardFiles.jpkiAID)) == .success)
        #expect(card.sw(Commands.selectAP(JPKICardFiles.attributesAID)) == .success)
        #expect(card.sw(Commands.selectAP(JPKICardFiles.cardFaceAID)) == .success)
        #expect(
            card.sw(Commands.selectAP([0xA0, 0x00, 0x00, 0x00, 0x63, 0x50, 0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35]))
                == .fileNotFound
        )
        // Other drivers' probes, with P2 = 00 and an Le.
        #expect(card.sw([0x00, 0xA4, 0x04, 0x00, 0x06, 0xA0, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00]) == .fileNotFound)
        // There is no usable MF.
        #expect(card.sw([0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00]) == .fileNotFound)
        #expect(card.sw(Commands.selectEF(0x3F00)) == .fileNotFound)
    }

    @Test func selectEFNeedsAnApplicationAndAKnownFile() {
        var card = Fixtures.card()
        #expect(card.sw(Commands.selectEF(0x000A)) == .fileNotFound)
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        #expect(card.sw(Commands.selectEF(0x000A)) == .success)
        #expect(card.sw(Commands.selectEF(0x0011)) == .fileNotFound)  // lives in the 券面入力補助 AP
        #expect(card.sw(Commands.selectEF(0x1234)) == .fileNotFound)
        #expect(card.sw([0x00, 0xA4, 0x02, 0x0C, 0x03, 0x00, 0x0A, 0x00]) == .wrongLength)
        #expect(card.sw([0x00, 0xA4, 0x02, 0x04, 0x02, 0x00, 0x0A]) == .incorrectP1P2)
        #expect(card.sw([0x00, 0xA4, 0x08, 0x0C, 0x02, 0x00, 0x0A]) == .incorrectP1P2)
        #expect(card.sw([0x00, 0xA4, 0x04, 0x0C]) == .wrongLength)
    }

    @Test func unknownInstructionClassAndMalformedAPDUs() {
        var card = Fixtures.card()
        #expect(card.sw([0x00, 0xCA, 0xDF, 0x30, 0x05]) == .instructionNotSupported)
        #expect(card.sw([0x80, 0xCA, 0x9F, 0x7F, 0x00]) == .instructionNotSupported)
        #expect(card.sw([0x90, 0xA4, 0x04, 0x0C, 0x02, 0x3F, 0x00]) == .classNotSupported)
        #expect(card.sw([0x80, 0xA4, 0x04, 0x0C, 0x02, 0x3F, 0x00]) == .classNotSupported)
        #expect(card.sw([0x00, 0x2A, 0x00, 0x80, 0x01, 0x00, 0x00]) == .classNotSupported)
        #expect(card.sw([0x00, 0xB0, 0x00]) == .wrongLength)
        #expect(card.sw([0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]) == .wrongLength)  // extended
        #expect(card.sw([0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92]) == .wrongLength)  // Lc says 10, 2 sent
    }

    // MARK: READ BINARY

    @Test(arguments: SimulatedTokenProfile.allCases)
    func tokenInfoCarriesTheProfileLabel(_ profile: SimulatedTokenProfile) {
        var card = Fixtures.card(profile)
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x0006))
        let reply = card.process(Commands.readBinary(offset: 0, le: 0))
        #expect(reply.status == .success)
        #expect(reply.response.data.count == 160)
        let label = String(decoding: reply.response.data.prefix(32), as: UTF8.self)
        #expect(label == profile.tokenLabel.padding(toLength: 32, withPad: " ", startingAt: 0))
    }

    @Test func certificateReadsInChunksWithFillerAfterTheDER() {
        for chunk: UInt8 in [0x00, 0xFF, 0x80] {
            var card = Fixtures.card()
            card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
            card.sw(Commands.selectEF(0x000A))
            let header = card.process(Commands.readBinary(offset: 0, le: 4))
            #expect(header.status == .success)
            #expect(header.response.data.count == 4)
            #expect(Array(header.response.data.prefix(2)) == [0x30, 0x82])
            let length = Int(header.response.data[2]) << 8 | Int(header.response.data[3])
            let (file, status) = card.readAll(chunk: chunk)
            #expect(status == .success)
            let der = Fixtures.credentials().userAuthCertificateDER
            #expect(length + 4 == der.count)
            #expect(Array(file.prefix(der.count)) == der)
            #expect(file.count > der.count)  // filler after the DER object
            #expect(file.dropFirst(der.count).allSatisfy { $0 == 0xFF })
        }
    }

    @Test func readBinaryEdgeCases() {
        var card = Fixtures.card()
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        #expect(card.sw(Commands.readBinary(offset: 0, le: 0)) == .conditionsNotSatisfied)  // no current EF
        card.sw(Commands.selectEF(0x0006))
        #expect(card.process(Commands.readBinary(offset: 0, le: 0)).response.data.count == 160)  // Le 00 = 256
        #expect(card.process(Commands.readBinary(offset: 150, le: 0)).response.data.count == 10)  // up to the end
        #expect(card.sw(Commands.readBinary(offset: 160, le: 1)) == .wrongOffset)
        #expect(card.sw(Commands.readBinary(offset: 0x7FFF, le: 1)) == .wrongOffset)  // 15-bit offset
        #expect(card.sw([0x00, 0xB0, 0x81, 0x00, 0x00]) == .incorrectP1P2)  // short EF identifier: unsupported
        #expect(card.sw([0x00, 0xB0, 0x00, 0x00]) == .wrongLength)  // no Le
        card.sw(Commands.selectEF(0x0017))
        #expect(card.sw(Commands.readBinary(offset: 0, le: 0)) == .conditionsNotSatisfied)  // a key is not readable
        card.sw(Commands.selectEF(0x0001))
        #expect(card.sw(Commands.readBinary(offset: 0, le: 0)) == .securityStatusNotSatisfied)  // signing PIN
        card.sw(Commands.selectEF(0x001B))
        #expect(card.sw(Commands.verify("ABC123")) == .success)
        card.sw(Commands.selectEF(0x0001))
        let (file, status) = card.readAll()
        #expect(status == .success)
        #expect(
            Array(file.prefix(Fixtures.credentials().signingCertificateDER.count))
                == Fixtures.credentials().signingCertificateDER
        )
    }

    @Test func caCertificatesAreFree() {
        var card = Fixtures.card()
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        for (fid, der) in [
            (UInt16(0x000B), Fixtures.pki.authCACertificateDER), (0x0002, Fixtures.pki.signingCACertificateDER),
        ] {
            card.sw(Commands.selectEF(fid))
            let (file, status) = card.readAll(chunk: 0xFF)
            #expect(status == .success)
            #expect(Array(file.prefix(der.count)) == der)
        }
    }

    // MARK: VERIFY

    @Test func authPINCountsDownToLock() {
        var card = Fixtures.card()
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        #expect(card.sw(Commands.verify("1234")) == .conditionsNotSatisfied)  // no PIN EF selected
        card.sw(Commands.selectEF(0x0018))
        #expect(card.sw(Commands.verify("")) == .triesLeft(3))
        #expect(card.sw(Commands.verify("")) == .triesLeft(3))  // asking does not spend a try
        #expect(card.sw(Commands.verify("0000")) == .triesLeft(2))
        #expect(card.sw(Commands.verify("")) == .triesLeft(2))
        #expect(card.sw(Commands.verify("1234")) == .success)  // right PIN restores the counter
        #expect(card.sw(Commands.verify("")) == .triesLeft(3))
        #expect(card.sw(Commands.verify("1111")) == .triesLeft(2))
        #expect(!card.isVerified(.userAuthentication))  // a wrong PIN drops the verification
        #expect(card.sw(Commands.verify("1111")) == .triesLeft(1))
        #expect(card.sw(Commands.verify("1111")) == StatusWord(0x63, 0xC0))
        #expect(card.authPINTriesLeft == 0)
        #expect(card.sw(Commands.verify("1234")) == .referenceDataBlocked)
        #expect(card.sw(Commands.verify("")) == .referenceDataBlocked)
        #expect(card.sw(Commands.verify("1111")) == .referenceDataBlocked)
        #expect(card.sw([0x00, 0x20, 0x00, 0x81, 0x04] + Array("1234".utf8)) == .incorrectP1P2)
    }

    @Test func signingPINHasFiveTries() {
        var card = Fixtures.card()
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x001B))
        #expect(card.sw(Commands.verify("")) == .triesLeft(5))
        for left in (0..<5).reversed() {
            #expect(card.sw(Commands.verify("WRONG1")) == .triesLeft(left))
        }
        #expect(card.sw(Commands.verify("ABC123")) == .referenceDataBlocked)
        #expect(card.triesLeft(.signing) == 0)
        #expect(card.triesLeft(.userAuthentication) == 3)
    }

    @Test func startsLockedOrWithFewerTries() {
        var locked = Fixtures.card(authPINTriesLeft: 0)
        locked.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        locked.sw(Commands.selectEF(0x0018))
        #expect(locked.sw(Commands.verify("")) == .referenceDataBlocked)
        #expect(locked.sw(Commands.verify("1234")) == .referenceDataBlocked)
        var one = Fixtures.card(authPINTriesLeft: 1)
        one.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        one.sw(Commands.selectEF(0x0018))
        #expect(one.sw(Commands.verify("")) == .triesLeft(1))
    }

    @Test func reselectingTheApplicationOrResettingForgetsVerification() {
        var card = Fixtures.card()
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x0018))
        card.sw(Commands.verify("1234"))
        #expect(card.isVerified(.userAuthentication))
        card.sw(Commands.selectEF(0x0017))
        #expect(card.sw(Commands.sign(digestInfo(for: [1, 2, 3]))) == .success)
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x0017))
        #expect(card.sw(Commands.sign(digestInfo(for: [1, 2, 3]))) == .securityStatusNotSatisfied)

        card.sw(Commands.selectEF(0x0018))
        card.sw(Commands.verify("9999"))
        card.reset()
        #expect(card.currentApplication == nil)
        #expect(card.authPINTriesLeft == 2)  // counters survive a power cycle
        #expect(card.sw(Commands.selectEF(0x0018)) == .fileNotFound)
    }

    // MARK: COMPUTE DIGITAL SIGNATURE

    @Test func userAuthSignatureVerifiesWithTheCertificateKey() throws {
        var card = Fixtures.card()
        let message = Array("nonce from the eligibility service".utf8)
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x0017))
        #expect(card.sw(Commands.sign(digestInfo(for: message))) == .securityStatusNotSatisfied)
        card.sw(Commands.selectEF(0x0018))
        #expect(card.sw(Commands.verify("1234")) == .success)
        card.sw(Commands.selectEF(0x0017))
        let reply = card.process(Commands.sign(digestInfo(for: message)))
        #expect(reply.status == .success)
        #expect(reply.response.data.count == 256)
        let key = try publicKey(Fixtures.credentials().userAuthCertificateDER)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: reply.response.data)
        #expect(key.isValidSignature(signature, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5))
        #expect(!key.isValidSignature(signature, for: SHA256.hash(data: [0x00]), padding: .insecurePKCS1v1_5))
    }

    @Test func signingKeyNeedsTheSigningPIN() throws {
        var card = Fixtures.card()
        let message = Array("document".utf8)
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x0018))
        card.sw(Commands.verify("1234"))
        card.sw(Commands.selectEF(0x001A))
        #expect(card.sw(Commands.sign(digestInfo(for: message))) == .securityStatusNotSatisfied)
        card.sw(Commands.selectEF(0x001B))
        #expect(card.sw(Commands.verify("ABC123")) == .success)
        card.sw(Commands.selectEF(0x001A))
        let reply = card.process(Commands.sign(digestInfo(for: message)))
        #expect(reply.status == .success)
        let key = try publicKey(Fixtures.credentials().signingCertificateDER)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: reply.response.data)
        #expect(key.isValidSignature(signature, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5))
    }

    @Test func signatureStatusWords() {
        var card = Fixtures.card()
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x0018))
        card.sw(Commands.verify("1234"))
        card.sw(Commands.selectEF(0x000A))
        #expect(card.sw(Commands.sign(digestInfo(for: [1]))) == .conditionsNotSatisfied)  // not a key EF
        card.sw(Commands.selectEF(0x0017))
        #expect(card.sw([0x80, 0x2A, 0x9E, 0x9A, 0x01, 0x00, 0x00]) == .incorrectP1P2)
        #expect(card.sw([0x80, 0x2A, 0x00, 0x80, 0xF6] + Array(repeating: 0, count: 246) + [0x00]) == .wrongLength)
        #expect(card.sw([0x80, 0x2A, 0x00, 0x80, 0x01, 0x00, 0x10]) == .wrongLength)  // Le too short
        #expect(card.sw([0x80, 0x2A, 0x00, 0x80, 0x01, 0x00]) == .success)  // Le may be left out
    }

    // MARK: 券面入力補助 AP

    @Test func attributesNeedTheirPINAndCarryTheHolder() throws {
        var card = Fixtures.card(attributesPIN: "5678")
        card.sw(Commands.selectAP(JPKICardFiles.attributesAID))
        card.sw(Commands.selectEF(0x0002))
        #expect(card.sw(Commands.readBinary(offset: 0, le: 0)) == .securityStatusNotSatisfied)
        card.sw(Commands.selectEF(0x0011))
        #expect(card.sw(Commands.verify("")) == .triesLeft(3))
        #expect(card.sw(Commands.verify("1234")) == .triesLeft(2))  // its own PIN, not the auth PIN
        #expect(card.sw(Commands.verify("5678")) == .success)
        card.sw(Commands.selectEF(0x0002))
        let (file, status) = card.readAll()
        #expect(status == .success)
        let holder = Fixtures.credentials().holder
        let fields = try parseAttributes(file)
        #expect(fields[0xDF22] == Array(holder.fullName.utf8))
        #expect(fields[0xDF23] == Array(holder.address.utf8))
        #expect(fields[0xDF24] == Array(holder.birthDate.compact.utf8))
        #expect(fields[0xDF25] == [holder.sex.code])
        #expect(card.triesLeft(.userAuthentication) == 3)
    }

    @Test func attributesUseLongFormLengthsAndCorrectOffsets() throws {
        let address = String(repeating: "架空県テスト市", count: 8)  // 168 bytes of UTF-8
        let file = JPKICardFiles.attributesFile(
            name: "試験\u{3000}花子",
            address: address,
            birthDate: "19800101",
            sex: 0x32
        )
        #expect(Array(file.prefix(3)) == [0xFF, 0x20, 0x81])
        let fields = try parseAttributes(file)
        #expect(fields[0xDF23] == Array(address.utf8))
        // DF 23's own length is long-form too.
        let df23 = file.firstRange(of: [0xDF, 0x23])!.lowerBound
        #expect(file[df23 + 2] == 0x81)
        // The offsets in DF 21 point at the four objects, counted from the start of the FF 20 value.
        let valueStart = 4
        let offsets = fields[0xDF21]!
        for (index, tag) in [UInt8(0x22), 0x23, 0x24, 0x25].enumerated() {
            let offset = Int(offsets[index * 2]) << 8 | Int(offsets[index * 2 + 1])
            #expect(file[valueStart + offset] == 0xDF)
            #expect(file[valueStart + offset + 1] == tag)
        }
        #expect(JPKICardFiles.berLength(300) == [0x82, 0x01, 0x2C])
        #expect(JPKICardFiles.berLength(127) == [0x7F])
    }

    @Test func myNumberFileNeedsThePINAndHoldsOnlyADummy() {
        var card = Fixtures.card()
        card.sw(Commands.selectAP(JPKICardFiles.attributesAID))
        card.sw(Commands.selectEF(0x0001))
        #expect(card.sw(Commands.readBinary(offset: 0, le: 0)) == .securityStatusNotSatisfied)
        card.sw(Commands.selectEF(0x0011))
        card.sw(Commands.verify("1234"))
        card.sw(Commands.selectEF(0x0001))
        let reply = card.process(Commands.readBinary(offset: 0, le: 0))
        #expect(Array(reply.response.data.prefix(15)) == [0xFF, 0x10, 0x0C] + Array(repeating: 0x30, count: 12))
    }

    // MARK: Profiles

    @Test func cardATRs() {
        #expect(Fixtures.card().atr == JPKICardFiles.contactATR)
        #expect(Fixtures.card(contactless: true).atr == JPKICardFiles.contactlessATR)
        #expect(Fixtures.card(.android).atr != JPKICardFiles.contactATR)
    }

    @Test(arguments: [SimulatedTokenProfile.android, .iphone, .oldCard])
    func phonesAndOldCardsHaveOnlyTheJPKIApplication(_ profile: SimulatedTokenProfile) {
        var card = Fixtures.card(profile)
        #expect(card.sw(Commands.selectAP(JPKICardFiles.attributesAID)) == .fileNotFound)
        #expect(card.sw(Commands.selectAP(JPKICardFiles.cardFaceAID)) == .fileNotFound)
        #expect(card.sw(Commands.selectAP(JPKICardFiles.jpkiAID)) == .success)
    }

    @Test func androidWantsThePhoneAuthPINBeforeTheCertificate() {
        var card = Fixtures.card(.android)
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x000A))
        #expect(card.sw(Commands.readBinary(offset: 0, le: 4)) == .securityStatusNotSatisfied)
        card.sw(Commands.selectEF(0x000B))
        #expect(card.sw(Commands.readBinary(offset: 0, le: 4)) == .success)
        card.sw(Commands.selectEF(0x0018))
        #expect(card.sw(Commands.verify("1234")) == .success)
        card.sw(Commands.selectEF(0x000A))
        let (file, status) = card.readAll()
        #expect(status == .success)
        #expect(
            Array(file.prefix(Fixtures.credentials().userAuthCertificateDER.count))
                == Fixtures.credentials().userAuthCertificateDER
        )
    }

    @Test func iPhoneAsksForApprovalOncePerSessionForTheCertificate() {
        var card = Fixtures.card(.iphone, iphoneApproval: .approve(after: .milliseconds(700)))
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x000A))
        let first = card.process(Commands.readBinary(offset: 0, le: 4))
        #expect(first.status == .success)
        #expect(first.approvalDelay == .milliseconds(700))
        let second = card.process(Commands.readBinary(offset: 4, le: 0))
        #expect(second.status == .success)
        #expect(second.approvalDelay == .zero)
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x000A))
        #expect(card.process(Commands.readBinary(offset: 0, le: 4)).approvalDelay == .milliseconds(700))
    }

    @Test func iPhoneApprovalStandsInForThePINWhenSigning() throws {
        var card = Fixtures.card(.iphone, iphoneApproval: .approve(after: .milliseconds(300)))
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x0017))
        let message = Array("nonce".utf8)
        let reply = card.process(Commands.sign(digestInfo(for: message)))
        #expect(reply.status == .success)
        #expect(reply.approvalDelay == .milliseconds(300))
        let key = try publicKey(Fixtures.credentials().userAuthCertificateDER)
        #expect(
            key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: reply.response.data),
                for: SHA256.hash(data: message),
                padding: .insecurePKCS1v1_5
            )
        )
    }

    @Test func iPhoneDenialAnswers6985AfterTheDelay() {
        var card = Fixtures.card(.iphone, iphoneApproval: .deny(after: .milliseconds(200)))
        card.sw(Commands.selectAP(JPKICardFiles.jpkiAID))
        card.sw(Commands.selectEF(0x000A))
        let read = card.process(Commands.readBinary(offset: 0, le: 4))
        #expect(read.status == .conditionsNotSatisfied)
        #expect(read.approvalDelay == .milliseconds(200))
        card.sw(Commands.selectEF(0x0017))
        #expect(card.process(Commands.sign(digestInfo(for: [1]))).status == .conditionsNotSatisfied)
    }

    @Test func rejectsBadPINsInTheConfiguration() {
        let credentials = Fixtures.credentials()
        #expect(throws: CardSimulatorError.invalidConfiguration("")) {
            try JPKICard(profile: .card, credentials: credentials, authPIN: "12345")
        }
        #expect(throws: CardSimulatorError.invalidConfiguration("")) {
            try JPKICard(profile: .card, credentials: credentials, signingPIN: "abc123")
        }
        #expect(throws: CardSimulatorError.invalidConfiguration("")) {
            try CardSimulatorConfiguration(authPINTriesLeft: 4).validate()
        }
        #expect(throws: Never.self) { try CardSimulatorConfiguration().validate() }
    }

    // MARK: Helpers

    private func digestInfo(for message: [UInt8]) -> [UInt8] {
        Commands.sha256DigestInfoPrefix + Array(SHA256.hash(data: message))
    }

    private func publicKey(_ certificateDER: [UInt8]) throws -> _RSA.Signing.PublicKey {
        let certificate = try Certificate(derEncoded: certificateDER)
        return try #require(_RSA.Signing.PublicKey(certificate.publicKey))
    }

    /// Parses EF 0002: FF 20 L { tag L value … }, BER lengths; returns value by two-byte tag.
    private func parseAttributes(_ file: [UInt8]) throws -> [UInt16: [UInt8]] {
        var index = 0
        func length() throws -> Int {
            let first = file[index]
            index += 1
            switch first {
            case 0..<0x80: return Int(first)
            case 0x81:
                index += 1
                return Int(file[index - 1])
            case 0x82:
                index += 2
                return Int(file[index - 2]) << 8 | Int(file[index - 1])
            default: throw ParseError()
            }
        }
        guard file[0] == 0xFF, file[1] == 0x20 else { throw ParseError() }
        index = 2
        let end = try length() + index
        var fields: [UInt16: [UInt8]] = [:]
        while index < end {
            let tag = UInt16(file[index]) << 8 | UInt16(file[index + 1])
            index += 2
            let count = try length()
            fields[tag] = Array(file[index..<(index + count)])
            index += count
        }
        return fields
    }

    private struct ParseError: Error {}
}
