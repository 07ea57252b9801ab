import Crypto
import Foundation
import KyukyuCardSim
import KyukyuOnshi
import SwiftASN1
import X509
import _CryptoExtras

/// Revoked and suspended user-authentication certificates, by serial or by holder number.
///
/// Loaded from a JSON file at start (`--revocations FILE`) and replaceable at run time through
/// `PUT /admin/revocations`. Suspension is what happens when a phone carrying the certificate is lost and the
/// holder calls to suspend it.
public struct RevocationList: Sendable, Hashable, Codable {
    /// Why a certificate is listed.
    public enum Reason: String, Sendable, Hashable, Codable {
        /// Revoked for good.
        case revoked
        /// Suspended (e.g. lost phone); may be lifted.
        case suspended
    }

    /// One listed certificate or holder.
    public struct Entry: Sendable, Hashable, Codable {
        /// Certificate serial, upper-case hex (as in the PKI manifest); or `nil`.
        public var serial: String?
        /// Holder number: every user-auth certificate of the holder; or `nil`.
        public var holder: Int?
        /// Revoked or suspended.
        public var reason: Reason

        /// Makes an entry.
        public init(serial: String? = nil, holder: Int? = nil, reason: Reason) {
            self.serial = serial?.uppercased()
            self.holder = holder
            self.reason = reason
        }
    }

    /// The entries.
    public var entries: [Entry]

    /// Makes a list.
    public init(entries: [Entry] = []) {
        self.entries = entries
    }

    /// The reason `serial` (or `holder`) is listed, if it is.
    public func reason(serial: String, holder: Int?) -> Reason? {
        let serial = serial.uppercased()
        for entry in self.entries where entry.serial == serial { return entry.reason }
        if let holder {
            for entry in self.entries where entry.holder == holder { return entry.reason }
        }
        return nil
    }
}

/// What the check of a user-authentication certificate found.
public enum CertificateCheck: Sendable, Hashable {
    /// Trusted, in its validity period, not listed: holder N.
    case valid(holder: Int)
    /// A failure, with its ``OnshiResultCode`` and a message without patient data.
    case rejected(code: String, message: String)
}

/// Validates card certificates against the card simulator's JPKI-like user-authentication CA and maps them to
/// holders through the PKI manifest.
public struct PatientCertificateValidator: Sendable {
    /// The user-authentication CA.
    public var authCA: Certificate
    /// The PKI folder (the manifest is re-read when a certificate is not in the cached copy).
    public var pkiDirectory: String

    /// Loads the CA from the card simulator's PKI folder.
    public init(pkiDirectory: String) throws {
        let path = pkiDirectory + "/" + TestPKI.authCACertificateFileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EligibilitySimError.pki("no \(TestPKI.authCACertificateFileName) in \(pkiDirectory)")
        }
        do {
            self.authCA = try Certificate(derEncoded: Array(data))
        } catch {
            throw EligibilitySimError.pki("\(TestPKI.authCACertificateFileName) cannot be parsed")
        }
        self.pkiDirectory = pkiDirectory
    }

    /// Checks `der` at `now`: chain (issuer and signature), validity period, holder, revocation.
    public func check(_ der: [UInt8], now: Date, revocations: RevocationList) -> CertificateCheck {
        guard let certificate = try? Certificate(derEncoded: der) else {
            return .rejected(code: OnshiResultCode.certificateUntrusted, message: "the certificate cannot be parsed")
        }
        guard certificate.issuer == self.authCA.subject,
            self.authCA.publicKey.isValidSignature(certificate.signature, for: certificate)
        else {
            return .rejected(
                code: OnshiResultCode.certificateUntrusted,
                message: "the certificate is not issued by the JPKI user-authentication CA"
            )
        }
        if now < certificate.notValidBefore {
            return .rejected(
                code: OnshiResultCode.certificateNotYetValid,
                message: "the user-authentication certificate is not valid yet"
            )
        }
        if now > certificate.notValidAfter {
            return .rejected(
                code: OnshiResultCode.certificateExpired,
                message: "the user-authentication certificate has expired"
            )
        }
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined()
        let holder = (try? TestPKIManifest.load(directory: self.pkiDirectory))??
            .holderNumber(forUserAuthSHA256: fingerprint)
        guard let holder else {
            return .rejected(
                code: OnshiResultCode.certificateUnknownHolder,
                message: "the certificate belongs to no known holder"
            )
        }
        let serial = certificate.serialNumber.bytes.map { String(format: "%02X", $0) }.joined()
        switch revocations.reason(serial: serial, holder: holder) {
        case .revoked:
            return .rejected(code: OnshiResultCode.certificateRevoked, message: "the certificate has been revoked")
        case .suspended:
            return .rejected(code: OnshiResultCode.certificateSuspended, message: "the certificate is suspended")
        case nil:
            return .valid(holder: holder)
        }
    }

    /// Whether `signature` is the PKCS#1 v1.5 SHA-256 signature of `nonce` by the certificate's RSA key.
    public static func verifyNonceSignature(certificateDER: [UInt8], nonce: [UInt8], signature: [UInt8]) -> Bool {
        guard let certificate = try? Certificate(derEncoded: certificateDER),
            let key = _RSA.Signing.PublicKey(certificate.publicKey)
        else { return false }
        return key.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: signature),
            for: SHA256.hash(data: nonce),
            padding: .insecurePKCS1v1_5
        )
    }
}
