import Foundation
import KyukyuCardSim
import SwiftASN1
import Testing
import X509

@Suite("Test PKI and synthetic holders")
struct TestPKITests {
    @Test func reusesWhatIsOnDisk() throws {
        let directory = Fixtures.makeTemporaryDirectory("reuse")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try TestPKI.loadOrCreate(directory: directory, logger: Fixtures.logger)
        let holder = try first.holder(2, validity: .valid)
        let second = try TestPKI.loadOrCreate(directory: directory, logger: Fixtures.logger)
        #expect(second.authCACertificateDER == first.authCACertificateDER)
        #expect(second.signingCACertificateDER == first.signingCACertificateDER)
        let again = try second.holder(2, validity: .valid)
        #expect(again.userAuthCertificateDER == holder.userAuthCertificateDER)
        #expect(again.userAuthPrivateKeyDER == holder.userAuthPrivateKeyDER)
        #expect(FileManager.default.fileExists(atPath: directory + "/auth-ca.cert.pem"))
        #expect(FileManager.default.fileExists(atPath: directory + "/holders/2/auth-valid.cert.der"))
    }

    @Test func expiredAndNotYetValidShareTheKeyAndLeaveTheValidOneAlone() throws {
        let valid = Fixtures.credentials(1, .valid)
        let expired = Fixtures.credentials(1, .expired)
        let future = Fixtures.credentials(1, .notYetValid)
        let now = Date()
        let validCertificate = try Certificate(derEncoded: valid.userAuthCertificateDER)
        let expiredCertificate = try Certificate(derEncoded: expired.userAuthCertificateDER)
        let futureCertificate = try Certificate(derEncoded: future.userAuthCertificateDER)
        #expect(validCertificate.notValidBefore < now && validCertificate.notValidAfter > now)
        #expect(expiredCertificate.notValidAfter < now)
        #expect(futureCertificate.notValidBefore > now)
        #expect(expiredCertificate.publicKey == validCertificate.publicKey)
        #expect(futureCertificate.publicKey == validCertificate.publicKey)
        #expect(expired.userAuthPrivateKeyDER == valid.userAuthPrivateKeyDER)
        #expect(Fixtures.credentials(1, .valid).userAuthCertificateDER == valid.userAuthCertificateDER)
    }

    @Test func certificatesChainToTheCAsAndOnlyTheSigningOneNamesTheHolder() throws {
        let credentials = Fixtures.credentials(3)
        let authCA = try Certificate(derEncoded: Fixtures.pki.authCACertificateDER)
        let signingCA = try Certificate(derEncoded: Fixtures.pki.signingCACertificateDER)
        let auth = try Certificate(derEncoded: credentials.userAuthCertificateDER)
        let signing = try Certificate(derEncoded: credentials.signingCertificateDER)
        #expect(auth.issuer == authCA.subject)
        #expect(authCA.publicKey.isValidSignature(auth.signature, for: auth))
        #expect(signing.issuer == signingCA.subject)
        #expect(signingCA.publicKey.isValidSignature(signing.signature, for: signing))
        let authSubject = String(describing: auth.subject)
        #expect(!authSubject.contains(credentials.holder.familyName))
        #expect(authSubject.contains(credentials.holder.opaqueIdentifier))
        #expect(authSubject.contains("SYNTHETIC"))
        #expect(String(describing: signing.subject).contains(credentials.holder.familyName))
        #expect(String(describing: authCA.subject).contains("JPKI for user authentication"))
        #expect(auth.publicKey.subjectPublicKeyInfoBytes.count > 256)  // RSA-2048
    }

    @Test func manifestMapsCertificatesToHolders() throws {
        let credentials = Fixtures.credentials(4)
        _ = Fixtures.credentials(4, .expired)
        let manifest = try #require(try TestPKIManifest.load(directory: Fixtures.pkiDirectory))
        #expect(manifest.marker == "SYNTHETIC")
        let entry = try #require(manifest.holders["4"])
        #expect(entry.userAuthCertificates["valid"]?.sha256 == credentials.userAuthCertificateSHA256)
        #expect(entry.userAuthCertificates["expired"] != nil)
        #expect(manifest.holderNumber(forUserAuthSHA256: credentials.userAuthCertificateSHA256) == 4)
        #expect(manifest.holderNumber(forUserAuthSHA256: credentials.userAuthCertificateSHA256.lowercased()) == 4)
        let certificate = try Certificate(derEncoded: credentials.userAuthCertificateDER)
        let serial = certificate.serialNumber.bytes.map { String(format: "%02X", $0) }.joined()
        #expect(entry.userAuthCertificates["valid"]?.serial == serial)
        #expect(manifest.authCA?.file == TestPKI.authCACertificateFileName)
    }

    @Test func holdersAreDeterministicAndObviouslySynthetic() {
        let a = SyntheticHolder(number: 7)
        #expect(a == SyntheticHolder(number: 7))
        #expect(a.opaqueIdentifier == SyntheticHolder(number: 7).opaqueIdentifier)
        #expect(a.opaqueIdentifier != SyntheticHolder(number: 8).opaqueIdentifier)
        #expect(a.opaqueIdentifier.count == 20)
        let holders = (1...200).map(SyntheticHolder.init(number:))
        #expect(Set(holders.map(\.fullName)).count > 100)
        #expect(Set(holders.map(\.sex)) == [.male, .female])
        for holder in holders {
            #expect(holder.address.contains("架空"))
            #expect(holder.address.contains(SyntheticHolder.syntheticMarker))
            #expect(holder.fullName.contains("\u{3000}"))
            #expect(!holder.familyNameKana.isEmpty && !holder.givenNameKana.isEmpty)
            #expect(holder.birthDate.compact.count == 8)
            #expect((1930...2005).contains(holder.birthDate.year))
        }
        // Some addresses are long enough that EF 0002 needs a long-form length.
        #expect(holders.contains { JPKICardFiles.attributesFile(for: $0)[2] == 0x81 })
    }

    @Test func rejectsHolderZero() {
        #expect(throws: CardSimulatorError.invalidConfiguration("")) {
            try Fixtures.pki.holder(0, validity: .valid)
        }
    }
}
