import Crypto
import Foundation
import KyukyuDomain
import Logging
import SwiftASN1
import X509
import _CryptoExtras

/// What the crew's terminal learns from the user-authentication certificate.
///
/// The user-authentication certificate carries no name or address, only an opaque subject; it is what the
/// eligibility service maps to the patient.
public struct CertificateSummary: Hashable, Sendable, Codable {
    /// The token the certificate came from.
    public var tokenType: TokenType
    /// The subject distinguished name (opaque on real cards).
    public var subject: String
    /// The issuer distinguished name.
    public var issuer: String
    /// The serial number in hex.
    public var serialNumber: String
    /// Start of validity.
    public var notValidBefore: Date
    /// End of validity.
    public var notValidAfter: Date
    /// SHA-256 of the DER, hex.
    public var sha256Fingerprint: String
    /// The validity at the time of reading.
    public var validity: Validity
    /// The DER encoding.
    public var der: [UInt8]

    /// Whether the certificate is valid at a given time.
    public enum Validity: String, Hashable, Sendable, Codable {
        /// Within its validity period.
        case valid
        /// Past its end (certificates lapse on the holder's 5th birthday after issue).
        case expired
        /// Before its start.
        case notYetValid = "not-yet-valid"
    }

    /// Parses a DER certificate with swift-certificates.
    public init(der: [UInt8], tokenType: TokenType, now: Date = Date()) throws {
        let certificate: Certificate
        do {
            try CertificateKeyCheck.refuseUnusableRSAKey(der)
            certificate = try Certificate(derEncoded: der)
        } catch {
            throw CardError.malformedResponse("the certificate on the card cannot be parsed")
        }
        self.tokenType = tokenType
        self.subject = String(describing: certificate.subject)
        self.issuer = String(describing: certificate.issuer)
        self.serialNumber = certificate.serialNumber.bytes.map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
        self.notValidBefore = certificate.notValidBefore
        self.notValidAfter = certificate.notValidAfter
        self.sha256Fingerprint = SHA256.hash(data: der).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
        self.validity =
            now < certificate.notValidBefore ? .notYetValid : now > certificate.notValidAfter ? .expired : .valid
        self.der = der
    }

    /// The certificate as PEM.
    public var pem: String {
        let base64 = Data(der).base64EncodedString()
        var lines = ["-----BEGIN CERTIFICATE-----"]
        var index = base64.startIndex
        while index < base64.endIndex {
            let end = base64.index(index, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            lines.append(String(base64[index..<end]))
            index = end
        }
        lines.append("-----END CERTIFICATE-----")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A check of a certificate's RSA key before swift-certificates parses it.
///
/// swift-certificates hands an RSA key's PKCS#1 bytes to swift-crypto, and swift-crypto 3.12.3 frees the key twice
/// when BoringSSL refuses them (a negative modulus or exponent, or one `RSA_check_key` refuses): a use-after-free
/// that a hostile card reaches (found by fuzz-card-certificate, docs/fuzzing.md). So a certificate whose key is RSA
/// must first give a key that BoringSSL takes through `_RSA.Signing.PublicKey(n:e:)`, which runs the same check and
/// frees once. Anything else is left to swift-certificates.
enum CertificateKeyCheck {
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]

    /// Throws when the certificate's subject public key is RSA and BoringSSL would refuse it.
    static func refuseUnusableRSAKey(_ der: [UInt8]) throws {
        // The structure swift-certificates reads: Certificate → TBSCertificate → [0] version (optional), serial,
        // signature, issuer, validity, subject, SubjectPublicKeyInfo. Where it differs, swift-certificates refuses
        // the certificate before it reaches the key.
        guard let root = try? DER.parse(der), case .constructed(let top) = root.content,
            let tbs = top.first(where: { _ in true }), case .constructed(let tbsNodes) = tbs.content
        else { return }
        var fields = Array(tbsNodes)
        if let first = fields.first, first.identifier.tagClass == .contextSpecific, first.identifier.tagNumber == 0 {
            fields.removeFirst()
        }
        guard fields.count > 5, case .constructed(let spkiNodes) = fields[5].content else { return }
        let spki = Array(spkiNodes)
        guard spki.count == 2, case .constructed(let algorithm) = spki[0].content,
            let oidNode = algorithm.first(where: { _ in true }),
            (try? ASN1ObjectIdentifier(derEncoded: oidNode)) == rsaEncryption,
            case .primitive(let bits) = spki[1].content, !bits.isEmpty,
            let key = try? DER.parse(Array(bits.dropFirst())), case .constructed(let parts) = key.content
        else { return }
        let integers = Array(parts)
        guard integers.count == 2, let n = try? ArraySlice<UInt8>(derEncoded: integers[0]),
            let e = try? ArraySlice<UInt8>(derEncoded: integers[1])
        else { return }
        // From here swift-certificates would hand the key to swift-crypto.
        for integer in integers {
            guard case .primitive(let content) = integer.content, let top = content.first, top & 0x80 == 0 else {
                throw CardError.malformedResponse("the certificate's RSA key is negative")
            }
        }
        do {
            _ = try _RSA.Signing.PublicKey(n: n, e: e)
        } catch {
            throw CardError.malformedResponse("the certificate's RSA key is not usable")
        }
    }
}

/// The state of one reader for `kyukyu card status`.
public struct CardStatusReport: Hashable, Sendable, Codable {
    /// The reader.
    public var reader: String
    /// Whether a card is on it.
    public var cardPresent: Bool
    /// Contact or contactless, from the ATR.
    public var interface: String?
    /// The ATR in hex.
    public var atr: String?
    /// The token type, when the card is a JPKI token.
    public var tokenType: TokenType?
    /// Tries left on the user-authentication PIN (nil when unknown).
    public var authPINTriesLeft: Int?
    /// Why the card could not be examined, when it could not.
    public var problem: String?
}

/// High-level card operations for the gateway and the CLI: connect, classify, read, and always release.
public struct CardReader: Sendable {
    /// The PC/SC service.
    public let service: PCSCService
    /// The logger for card events (no card data is logged).
    public let logger: Logger

    /// Creates a reader over a PC/SC service.
    public init(service: PCSCService, logger: Logger) {
        self.service = service
        self.logger = logger
    }

    /// Opens a session on the named reader (or the reader with a card), runs `body`, and releases the card.
    ///
    /// The only way to reach a card from outside this module. The session holds a PC/SC transaction from its
    /// first command until `body` returns (other programs' commands wait), and when it sent a PIN it ends by
    /// resetting the card, so that the verification does not outlive it.
    public func withSession<T: Sendable>(
        reader: String?,
        _ body: (CardSession) async throws -> T
    ) async throws -> T {
        let status = try await service.resolveReader(reader)
        guard status.cardPresent else { throw CardError.noCard() }
        let connection = try await service.connect(reader: status.name)
        let session = CardSession(connection: connection, logger: logger)
        do {
            let result = try await body(session)
            await session.close()
            return result
        } catch {
            await session.close()
            throw error
        }
    }

    /// Every reader with its card, token type and auth-PIN tries (no try is spent).
    public func status(reader: String? = nil) async throws -> [CardStatusReport] {
        let statuses = reader == nil ? try await service.readerStatuses() : [try await service.resolveReader(reader)]
        var reports: [CardStatusReport] = []
        for status in statuses {
            var report = CardStatusReport(reader: status.name, cardPresent: status.cardPresent)
            if status.cardPresent {
                report.interface = status.isContactless ? "contactless" : "contact"
                report.atr = status.atr.map { byte in
                    let hex = String(byte, radix: 16, uppercase: true)
                    return hex.count == 1 ? "0" + hex : hex
                }.joined(separator: " ")
                do {
                    try await withSession(reader: status.name) { session in
                        report.tokenType = try await session.tokenType()
                        report.authPINTriesLeft = try await session.triesLeft(.userAuthentication)
                    }
                } catch let error as CardError {
                    report.problem = error.reason
                }
            }
            reports.append(report)
        }
        return reports
    }

    /// Reads and parses the user-authentication certificate.
    ///
    /// An Android credential wants its auth PIN first: pass it as `pin`, and it is verified safely (tries
    /// checked, last try only with `confirmLastTry`). On a card, a given PIN is verified too, as a check that
    /// the holder is present.
    public func readAuthenticationCertificate(
        reader: String?,
        pin: CardPIN? = nil,
        confirmLastTry: Bool = false
    ) async throws -> CertificateSummary {
        try await withSession(reader: reader) { session in
            let type = try await session.tokenType()
            if let pin {
                try await session.verify(pin, confirmLastTry: confirmLastTry)
            }
            let der = try await session.readCertificateDER(.userAuthentication)
            return try CertificateSummary(der: der, tokenType: type)
        }
    }

    /// Reads the four card-face attributes with the 券面入力補助 PIN.
    public func readAttributes(reader: String?, pin: CardPIN, confirmLastTry: Bool = false) async throws
        -> CardAttributes
    {
        try await withSession(reader: reader) { session in
            let type = try await session.tokenType()
            if type.isPhone {
                throw CardError.notJPKICard(
                    "a smartphone credential has no card-face attributes; read the card itself or ask the patient"
                )
            }
            return try await session.readAttributes(pin: pin, confirmLastTry: confirmLastTry)
        }
    }
}
