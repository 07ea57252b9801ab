import Crypto
import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuTestbed
import Logging
import SwiftASN1
import Synchronization
import Testing
import X509
import _CryptoExtras

@testable import KyukyuCard

/// Every integration test drives real parts: a private pcscd with the vpcd reader, the card simulator
/// speaking vpcd over TCP, and the card client over libpcsclite. Serialized, since they share one reader.
@Suite("Through pcscd", .serialized, .timeLimit(.minutes(2)))
struct ThroughPCSCD {}

extension ThroughPCSCD {
    @Suite("Card profiles")
    struct Profiles {
        @Test func individualNumberCardStatusCertificateAndAttributes() async throws {
            try await withSimulatedCard({ $0.holder = 3 }) { simulator, reader in
                let status = try await reader.status(reader: Bed.readerName)
                #expect(status.count == 1)
                #expect(status[0].cardPresent)
                #expect(status[0].tokenType == .individualNumberCard)
                #expect(status[0].authPINTriesLeft == 3)
                #expect(status[0].interface == "contact")

                let summary = try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                #expect(summary.der == (await simulator.userAuthCertificateDER))
                #expect(summary.tokenType == .individualNumberCard)
                #expect(summary.validity == .valid)
                let holder = SyntheticHolder(number: 3)
                #expect(!summary.subject.contains(holder.familyName), "no personal data in the auth certificate")

                let attributes = try await reader.readAttributes(
                    reader: Bed.readerName,
                    pin: try CardPIN("1234", kind: .attributes)
                )
                #expect(attributes.fullName == holder.fullName)
                #expect(attributes.address == holder.address)
                #expect(attributes.birthDate == holder.birthDate.compact)
                #expect(
                    attributes.sex.rawValue
                        == (holder.sex == .male ? "male" : holder.sex == .female ? "female" : "not-applicable")
                )
                #expect(await simulator.authPINTriesLeft == 3, "reading spent no auth PIN try")
            }
        }

        @Test func contactlessATRAndOldJukiCard() async throws {
            try await withSimulatedCard({
                $0.profile = .oldCard
                $0.contactless = true
            }) { _, reader in
                let status = try await reader.status(reader: Bed.readerName)
                #expect(status.first?.interface == "contactless")
                #expect(status.first?.tokenType == .jukiCard)
                #expect(try await reader.readAuthenticationCertificate(reader: Bed.readerName).tokenType == .jukiCard)
            }
        }

        @Test func androidWantsThePhonesPINBeforeItsCertificate() async throws {
            try await withSimulatedCard({
                $0.profile = .android
                $0.authPIN = "4321"
            }) { simulator, reader in
                await expectCardError(.certificateNeedsPIN) {
                    try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                }
                let summary = try await reader.readAuthenticationCertificate(
                    reader: Bed.readerName,
                    pin: try CardPIN("4321", kind: .userAuthentication)
                )
                #expect(summary.tokenType == .android)
                #expect(summary.der == (await simulator.userAuthCertificateDER))
                await expectCardError(.notJPKICard) {
                    try await reader.readAttributes(reader: Bed.readerName, pin: try CardPIN("4321", kind: .attributes))
                }
            }
        }

        @Test func iPhoneAnswersAfterTheHoldersApproval() async throws {
            try await withSimulatedCard({
                $0.profile = .iphone
                $0.iphoneApproval = .approve(after: .milliseconds(300))
            }) { _, reader in
                let start = ContinuousClock.now
                let summary = try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                #expect(summary.tokenType == .iphone)
                #expect(ContinuousClock.now - start >= .milliseconds(300), "the read waited for the approval")
            }
        }

        @Test func iPhoneHolderDeclines() async throws {
            try await withSimulatedCard({
                $0.profile = .iphone
                $0.iphoneApproval = .deny(after: .milliseconds(100))
            }) { _, reader in
                await expectCardError(.phoneApprovalRequired) {
                    try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                }
            }
        }

        @Test(arguments: [CertificateValidity.expired, .notYetValid])
        func certificatesOutsideTheirValidityAreReadAndFlagged(validity: CertificateValidity) async throws {
            try await withSimulatedCard({ $0.certificateValidity = validity }) { _, reader in
                let summary = try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                #expect(summary.validity.rawValue == validity.rawValue)
            }
        }

        @Test func signatureWithTheAuthenticationKeyVerifiesWithTheCertificate() async throws {
            try await withSimulatedCard { _, reader in
                let nonce = Array("eligibility-nonce-SYNTHETIC".utf8)
                let (der, signature) = try await reader.withSession(reader: Bed.readerName) { session in
                    _ = try await session.tokenType()
                    try await session.verify(try CardPIN("1234", kind: .userAuthentication))
                    let der = try await session.readCertificateDER(.userAuthentication)
                    let signature = try await session.signWithAuthenticationKey(sha256: Array(SHA256.hash(data: nonce)))
                    return (der, signature)
                }
                let certificate = try Certificate(derEncoded: der)
                let key = try #require(_RSA.Signing.PublicKey(certificate.publicKey))
                #expect(
                    key.isValidSignature(
                        _RSA.Signing.RSASignature(rawRepresentation: signature),
                        for: nonce,
                        padding: .insecurePKCS1v1_5
                    )
                )
            }
        }
    }
}

extension ThroughPCSCD {
    @Suite("PIN safety on the card")
    struct PINSafety {
        @Test func wrongPINsDownToTheGuardThenConfirmedLastTryLocks() async throws {
            try await withSimulatedCard { simulator, reader in
                let wrong = try CardPIN("0000", kind: .userAuthentication)
                let first = await expectCardError(.wrongPIN) {
                    try await reader.readAuthenticationCertificate(reader: Bed.readerName, pin: wrong)
                }
                #expect(first?.triesLeft == 2)
                let second = await expectCardError(.wrongPIN) {
                    try await reader.readAuthenticationCertificate(reader: Bed.readerName, pin: wrong)
                }
                #expect(second?.triesLeft == 1)
                #expect(await simulator.authPINTriesLeft == 1)

                // The guard: the last try is not spent without a person's confirmation — not even the right PIN.
                await expectCardError(.lastTryNeedsConfirmation) {
                    try await reader.readAuthenticationCertificate(
                        reader: Bed.readerName,
                        pin: try CardPIN("1234", kind: .userAuthentication)
                    )
                }
                #expect(await simulator.authPINTriesLeft == 1, "nothing was spent")
                #expect(try await reader.status(reader: Bed.readerName).first?.authPINTriesLeft == 1)

                await expectCardError(.pinLocked) {
                    try await reader.readAuthenticationCertificate(
                        reader: Bed.readerName,
                        pin: wrong,
                        confirmLastTry: true
                    )
                }
                #expect(await simulator.authPINTriesLeft == 0)
                await expectCardError(.pinLocked) {
                    try await reader.readAuthenticationCertificate(
                        reader: Bed.readerName,
                        pin: try CardPIN("1234", kind: .userAuthentication),
                        confirmLastTry: true
                    )
                }
                // Reading the certificate on a card needs no PIN, locked or not.
                #expect(
                    try await reader.readAuthenticationCertificate(reader: Bed.readerName).tokenType
                        == .individualNumberCard
                )
            }
        }

        @Test func aCardThatStartsLockedIsReportedLocked() async throws {
            try await withSimulatedCard({ $0.authPINTriesLeft = 0 }) { simulator, reader in
                let status = try await reader.status(reader: Bed.readerName)
                #expect(status.first?.authPINTriesLeft == 0)
                await expectCardError(.pinLocked) {
                    try await reader.readAuthenticationCertificate(
                        reader: Bed.readerName,
                        pin: try CardPIN("1234", kind: .userAuthentication),
                        confirmLastTry: true
                    )
                }
                #expect(await simulator.authPINTriesLeft == 0)
            }
        }

        @Test func aRightPINAfterAWrongOneRestoresTheCounter() async throws {
            try await withSimulatedCard { simulator, reader in
                await expectCardError(.wrongPIN) {
                    try await reader.readAuthenticationCertificate(
                        reader: Bed.readerName,
                        pin: try CardPIN("9999", kind: .userAuthentication)
                    )
                }
                _ = try await reader.readAuthenticationCertificate(
                    reader: Bed.readerName,
                    pin: try CardPIN("1234", kind: .userAuthentication)
                )
                #expect(await simulator.authPINTriesLeft == 3)
            }
        }
    }
}

extension ThroughPCSCD {
    @Suite("Failures and recovery")
    struct Failures {
        @Test func cardRemovedMidReadThenBackAgain() async throws {
            try await withSimulatedCard({ $0.removeAfterAPDUs = 6 }) { simulator, reader in
                await expectCardError(.cardRemoved) {
                    try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                }
                await simulator.insertCard()
                let present = try await reader.service.waitForCard(reader: Bed.readerName, timeout: .seconds(10))
                #expect(present.cardPresent)
                let summary = try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                #expect(summary.der == (await simulator.userAuthCertificateDER))
            }
        }

        @Test func noCardOnTheReaderIsAClearError() async throws {
            _ = try await Bed.shared.pcscd()
            let service = Bed.shared.service()
            let reader = CardReader(service: service, logger: Logger(label: "test"))
            try await waitForCardAbsent(service)
            await expectCardError(.noCard) { try await reader.readAuthenticationCertificate(reader: Bed.readerName) }
            await expectCardError(.readerNotFound) {
                try await reader.readAuthenticationCertificate(reader: "No Such Reader")
            }
            await expectCardError(.noCard) {
                try await service.waitForCard(reader: Bed.readerName, timeout: .milliseconds(300))
            }
            await service.shutdown()
        }

        @Test func monitorReportsInsertAndRemove() async throws {
            try await withSimulatedCard(waitForCard: false) { simulator, reader in
                var events = reader.service.events(pollInterval: .milliseconds(200)).makeAsyncIterator()
                guard case .serviceAvailable(let readers) = await events.next() else {
                    Issue.record("the first event is the reader snapshot")
                    return
                }
                #expect(readers.contains { $0.name == Bed.readerName })
                if !(readers.first { $0.name == Bed.readerName }?.cardPresent ?? false) {
                    let inserted = await events.next()
                    guard case .cardInserted(let status) = inserted else {
                        Issue.record("expected an insertion, got \(String(describing: inserted))")
                        return
                    }
                    #expect(status.name == Bed.readerName)
                    #expect(!status.atr.isEmpty)
                }
                await simulator.removeCard()
                #expect(await events.next() == .cardRemoved(reader: Bed.readerName))
                await simulator.insertCard()
                guard case .cardInserted = await events.next() else {
                    Issue.record("expected the card back")
                    return
                }
            }
        }

        @Test func pcscdStoppedThenRestarted() async throws {
            let daemon = try await Bed.shared.pcscd()
            try await withSimulatedCard { simulator, reader in
                var events = reader.service.events(pollInterval: .milliseconds(200)).makeAsyncIterator()
                guard case .serviceAvailable = await events.next() else {
                    Issue.record("the monitor starts with a snapshot")
                    return
                }
                await daemon.stop()
                await expectCardError(.serviceUnavailable) { try await reader.status() }
                await expectCardError(.serviceUnavailable) {
                    try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                }
                var sawDown = false
                while let event = await events.next() {
                    if event == .serviceUnavailable {
                        sawDown = true
                        break
                    }
                }
                #expect(sawDown)

                try await daemon.start()
                // The monitor reconnects; the simulator reconnects to the new vpcd; the client reads again.
                while let event = await events.next() {
                    if case .serviceAvailable = event { break }
                }
                _ = try await reader.service.waitForCard(reader: Bed.readerName, timeout: .seconds(15))
                let summary = try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                #expect(summary.der == (await simulator.userAuthCertificateDER))
            }
        }
    }
}

extension ThroughPCSCD {
    /// What other PC/SC programs on the tablet can and cannot do around a session.
    @Suite("Sharing the card with other programs")
    struct Sharing {
        /// A flag set from another task.
        final class Flag: Sendable {
            private let state = Mutex(false)
            func set() { state.withLock { $0 = true } }
            var isSet: Bool { state.withLock { $0 } }
        }

        @Test(.timeLimit(.minutes(1)))
        func aSessionThatSentAPINLeavesNothingVerifiedForTheNextProgram() async throws {
            try await withSimulatedCard { _, reader in
                let attributes = try await reader.readAttributes(
                    reader: Bed.readerName,
                    pin: try CardPIN("1234", kind: .attributes)
                )
                #expect(!attributes.fullName.isEmpty)
                // A second program connects and, without selecting the application again (which would make the
                // card forget the PIN), goes for the attributes EF.
                let other = try await reader.service.connect(reader: Bed.readerName)
                let select = try await other.transmit([0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x02])
                let read = try await other.transmit([0x00, 0xB0, 0x00, 0x00, 0x05])
                await other.close(endingTransaction: false, disposition: .leave)
                #expect(
                    Array(select.suffix(2)) != [0x90, 0x00] || Array(read.suffix(2)) != [0x90, 0x00],
                    "the card was reset: the attributes are not readable without the PIN"
                )
                #expect(read.count == 2, "no attribute bytes")
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func noOtherProgramGetsACommandInWhileASessionIsOpen() async throws {
            try await withSimulatedCard { simulator, reader in
                let otherService = Bed.shared.service()
                let other = try await otherService.connect(reader: Bed.readerName)
                let interloperDone = Flag()
                let nonce = Array("eligibility-nonce-SYNTHETIC".utf8)
                var interloper: Task<[UInt8], any Error>?
                let der = try await reader.withSession(reader: Bed.readerName) { session in
                    _ = try await session.tokenType()
                    // Another program selects the 券面入力補助 AP, which would make the card forget the JPKI PIN
                    // between our VERIFY and our signature.
                    interloper = Task {
                        defer { interloperDone.set() }
                        return try await other.transmit([0x00, 0xA4, 0x04, 0x0C, 0x0A] + JPKI.attributesAID)
                    }
                    try await session.verify(try CardPIN("1234", kind: .userAuthentication))
                    let der = try await session.readCertificateDER(.userAuthentication)
                    _ = try await session.signWithAuthenticationKey(sha256: Array(SHA256.hash(data: nonce)))
                    #expect(!interloperDone.isSet, "the other program's command waited for the session's end")
                    return der
                }
                #expect(der == (await simulator.userAuthCertificateDER))
                // Once the session ends (with a reset, since it sent a PIN), the other program learns of the reset.
                let result = await interloper?.result
                if case .failure(let error as CardError) = result {
                    #expect(error.pcscReturnCode == 0x8010_0068, "SCARD_W_RESET_CARD: \(error)")
                } else {
                    Issue.record(
                        "expected the other program to be told of the reset, got \(String(describing: result))"
                    )
                }
                await other.close(endingTransaction: false, disposition: .leave)
                await otherService.shutdown()
            }
        }
    }
}

/// Bad numeric flags of `kyukyu card …` are ArgumentParser validation errors (exit 64) before anything runs.
@Suite("kyukyu card flags")
struct CardFlagTests {
    @Test(arguments: [
        ["card", "status", "--wait", "1e300"],
        ["card", "status", "--wait=-1"],
        ["card", "status", "--wait", "nan"],
        ["card", "status", "--wait", "inf"],
        ["card", "status", "--wait", "3601"],
        ["card", "read", "--wait", "1e300"],
        ["card", "attributes", "--pin-stdin", "--wait", "1e300"],
    ])
    func aBadWaitIsAValidationError(arguments: [String]) async throws {
        let result = try await Commands.run(
            try Commands.executable("kyukyu"),
            arguments,
            environment: ["PCSCLITE_CSOCK_NAME": "/nonexistent/pcscd.comm"]
        )
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("--wait"), "\(result.stderr)")
    }
}
