import Crypto
import Foundation
import KyukyuCardSim
import Logging
import SwiftASN1
import X509

/// The test terminal PKI: a CA that issues per-device client certificates and the stub's server certificate.
///
/// Real onshi terminals authenticate with a per-device client certificate issued by the operator's CA; here
/// a local ECDSA P-256 CA plays that role (fast handshakes). Kept in a folder (default `state/eligibility-tls`):
/// `terminal-ca.cert.pem`, `terminal-ca.key.pem`, `server.cert.pem`, `server.key.pem`. Nothing here is a
/// secret worth anything: it is a test CA for loopback.
public struct TerminalPKI: Sendable {
    /// The folder.
    public var directory: String
    /// The CA certificate.
    public var caCertificate: Certificate
    private var caKeyPEM: String

    /// The CA certificate's file name.
    public static let caCertificateFileName = "terminal-ca.cert.pem"
    /// The server certificate's file name.
    public static let serverCertificateFileName = "server.cert.pem"
    /// The server key's file name.
    public static let serverKeyFileName = "server.key.pem"
    private static let caKeyFileName = "terminal-ca.key.pem"

    /// A certificate and its key, both PEM.
    public struct Credentials: Sendable, Hashable {
        /// The certificate (PEM).
        public var certificatePEM: String
        /// The private key (PKCS#8 PEM).
        public var keyPEM: String
    }

    /// Loads the CA from `directory`, making it when missing. Holds the folder's lock, so stubs started at the
    /// same moment on a fresh folder agree on one CA.
    public static func loadOrCreate(directory: String, logger: Logger) throws -> TerminalPKI {
        try createDirectory(directory)
        return try locked(directory) { try loadOrCreateLocked(directory: directory, logger: logger) }
    }

    private static func loadOrCreateLocked(directory: String, logger: Logger) throws -> TerminalPKI {
        let certPath = directory + "/" + caCertificateFileName
        let keyPath = directory + "/" + caKeyFileName
        if let certPEM = readString(certPath), let keyPEM = readString(keyPath) {
            do {
                return TerminalPKI(
                    directory: directory,
                    caCertificate: try Certificate(pemEncoded: certPEM),
                    caKeyPEM: try P256.Signing.PrivateKey(pemRepresentation: keyPEM).pemRepresentation
                )
            } catch {
                throw EligibilitySimError.tls("the terminal CA in \(directory) cannot be parsed: \(error)")
            }
        }
        logger.info("making terminal CA", metadata: ["kyukyu.elig.tls.dir": "\(directory)"])
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            CountryName("JP")
            OrganizationName("Kyukyu Test Terminal CA - SYNTHETIC")
            CommonName("Kyukyu onshi-like terminal CA")
        }
        let now = Date()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-86400),
            notValidAfter: now.addingTimeInterval(20 * 365 * 86400),
            issuer: subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        try write(key.pemRepresentation + "\n", to: keyPath, mode: 0o600)
        try write(try certificate.serializeAsPEM().pemString + "\n", to: certPath)
        return TerminalPKI(directory: directory, caCertificate: certificate, caKeyPEM: key.pemRepresentation)
    }

    /// The CA certificate as PEM.
    public var caCertificatePEM: String {
        get throws { try self.caCertificate.serializeAsPEM().pemString + "\n" }
    }

    /// The server certificate for `localhost`, `127.0.0.1` and `::1`, made on first use and when it expires
    /// (under the folder's lock).
    public func serverCredentials(logger: Logger) throws -> Credentials {
        try Self.locked(self.directory) { try self.serverCredentialsLocked(logger: logger) }
    }

    private func serverCredentialsLocked(logger: Logger) throws -> Credentials {
        let certPath = self.directory + "/" + Self.serverCertificateFileName
        let keyPath = self.directory + "/" + Self.serverKeyFileName
        if let certPEM = readString(certPath), let keyPEM = readString(keyPath),
            let certificate = try? Certificate(pemEncoded: certPEM),
            certificate.issuer == self.caCertificate.subject,
            certificate.notValidAfter > Date().addingTimeInterval(86400)
        {
            return Credentials(certificatePEM: certPEM, keyPEM: keyPEM)
        }
        logger.info("making server certificate", metadata: ["kyukyu.elig.tls.dir": "\(self.directory)"])
        let credentials = try self.issue(
            subject: try DistinguishedName {
                CountryName("JP")
                OrganizationName("Kyukyu onshi-like stub - SYNTHETIC")
                CommonName("localhost")
            },
            usage: .serverAuth,
            alternativeNames: [
                .dnsName("localhost"),
                .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
            ],
            validity: 2 * 365 * 86400
        )
        try write(credentials.keyPEM, to: keyPath, mode: 0o600)
        try write(credentials.certificatePEM, to: certPath)
        return credentials
    }

    /// Issues a client certificate for terminal `deviceID` (its subject CN), valid for `days` days.
    public func issueClientCertificate(deviceID: String, days: Int = 365) throws -> Credentials {
        guard Self.isValidDeviceID(deviceID) else {
            throw EligibilitySimError.invalidArgument("device IDs are 1-64 characters of A-Z a-z 0-9 . _ -")
        }
        return try self.issue(
            subject: try DistinguishedName {
                CountryName("JP")
                OrganizationName("Kyukyu test terminal - SYNTHETIC")
                CommonName(deviceID)
            },
            usage: .clientAuth,
            alternativeNames: [],
            validity: TimeInterval(days) * 86400
        )
    }

    /// Issues a server certificate that names only `dnsName` (for tests of the client's host-name check).
    public func issueServerCertificate(dnsName: String, days: Int = 30) throws -> Credentials {
        try self.issue(
            subject: try DistinguishedName {
                CountryName("JP")
                OrganizationName("Kyukyu onshi-like stub - SYNTHETIC")
                CommonName(dnsName)
            },
            usage: .serverAuth,
            alternativeNames: [.dnsName(dnsName)],
            validity: TimeInterval(days) * 86400
        )
    }

    /// Signs a terminal's certificate signing request (PEM): the CSR's own signature must verify and its subject's
    /// common name must be a valid device ID; the certificate is for client authentication, valid `days` days, and
    /// carries the CSR's public key (the terminal's key never leaves it). Returns the certificate followed by this
    /// CA's certificate, as `kyukyu-gateway cert install` takes them.
    public func signRequest(_ requestPEM: String, days: Int = 365) throws -> String {
        let request = try CertificateSigningRequest(pemEncoded: requestPEM)
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw EligibilitySimError.invalidArgument("the signing request's signature does not verify")
        }
        let names = request.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String(describing: $0.value) }
        guard names.count == 1, let deviceID = names.first, Self.isValidDeviceID(deviceID) else {
            throw EligibilitySimError.invalidArgument(
                "the request must name one device (CN: 1-64 of A-Z a-z 0-9 . _ -)"
            )
        }
        let credentials = try self.issue(
            subject: try DistinguishedName {
                CountryName("JP")
                OrganizationName("Kyukyu test terminal - SYNTHETIC")
                CommonName(deviceID)
            },
            usage: .clientAuth,
            alternativeNames: [],
            validity: TimeInterval(days) * 86400,
            publicKey: request.publicKey
        )
        return credentials.certificatePEM + (try self.caCertificatePEM)
    }

    /// Writes `<deviceID>.cert.pem`, `<deviceID>.key.pem` and `ca.cert.pem` into `directory`; returns the paths.
    @discardableResult
    public func writeClientCertificate(deviceID: String, to directory: String, days: Int = 365) throws -> [String] {
        let credentials = try self.issueClientCertificate(deviceID: deviceID, days: days)
        try createDirectory(directory)
        let paths = [
            directory + "/" + deviceID + ".cert.pem", directory + "/" + deviceID + ".key.pem",
            directory + "/ca.cert.pem",
        ]
        try write(credentials.certificatePEM, to: paths[0])
        try write(credentials.keyPEM, to: paths[1], mode: 0o600)
        try write(try self.caCertificatePEM, to: paths[2])
        return paths
    }

    /// 1–64 characters of `A-Z a-z 0-9 . _ -`.
    public static func isValidDeviceID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count)
            && id.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E
                    || $0 == 0x5F || $0 == 0x2D
            }
    }

    /// The device ID (subject CN) of a terminal certificate, `nil` when there is none.
    public static func deviceID(ofCertificateDER der: [UInt8]) -> String? {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(describing: attribute.value)
            }
        }
        return nil
    }

    /// Issues a certificate for `publicKey` when given (the key stays with its owner: `keyPEM` is then empty),
    /// else for a new key.
    private func issue(
        subject: DistinguishedName,
        usage: ExtendedKeyUsage.Usage,
        alternativeNames: [GeneralName],
        validity: TimeInterval,
        publicKey given: Certificate.PublicKey? = nil
    ) throws -> Credentials {
        let key = P256.Signing.PrivateKey()
        let publicKey = given ?? Certificate.PublicKey(key.publicKey)
        let now = Date()
        var extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([usage])
            SubjectKeyIdentifier(hash: publicKey)
        }
        if !alternativeNames.isEmpty {
            try extensions.append(Certificate.Extension(SubjectAlternativeNames(alternativeNames), critical: false))
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: self.caCertificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(try P256.Signing.PrivateKey(pemRepresentation: self.caKeyPEM))
        )
        return Credentials(
            certificatePEM: try certificate.serializeAsPEM().pemString + "\n",
            keyPEM: given == nil ? key.pemRepresentation + "\n" : ""
        )
    }
}

func createDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw EligibilitySimError.storage("cannot create \(path): \(error)")
    }
}

func readString(_ path: String) -> String? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return String(decoding: data, as: UTF8.self)
}

func write(_ string: String, to path: String, mode: Int = 0o644) throws {
    do {
        try FileStore.write(string, to: path, mode: mode)
    } catch {
        throw EligibilitySimError.storage("\(error)")
    }
}

extension TerminalPKI {
    /// Runs `body` holding the folder's advisory lock (the card simulator's `FileStore` lock).
    static func locked<R>(_ directory: String, _ body: () throws -> R) throws -> R {
        do {
            return try FileStore.withLock(in: directory, body)
        } catch let error as EligibilitySimError {
            throw error
        } catch let error as CardSimulatorError {
            throw EligibilitySimError.storage("\(error)")
        }
    }
}
