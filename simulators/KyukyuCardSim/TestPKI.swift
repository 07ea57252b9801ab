import Crypto
import Foundation
import Logging
import SwiftASN1
import X509
import _CryptoExtras

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A JPKI-like test PKI kept in a folder: two CAs and, per synthetic holder, RSA-2048 keys and certificates.
///
/// Everything is made on first use and reused afterwards (RSA key generation is slow), so that the card
/// simulator, the integration tests and the eligibility stub all see the same CA and the same holder
/// certificates. Writers in several processes are serialised with an advisory lock on `<folder>/.lock`; files
/// are written atomically. The folder layout and `manifest.json` are described in docs/card-simulator.md and by
/// ``TestPKIManifest``.
///
/// As on real cards, the user-authentication certificate carries no personal data: its subject is an opaque
/// identifier derived from the holder number. The signing certificate carries the synthetic name and address.
public struct TestPKI: Sendable {
    /// The folder the PKI lives in.
    public var directory: String
    /// The user-authentication CA certificate (DER).
    public var authCACertificateDER: [UInt8]
    /// The signing CA certificate (DER).
    public var signingCACertificateDER: [UInt8]

    private var authCAKeyPEM: String
    private var signingCAKeyPEM: String
    private var logger: Logger

    /// The manifest's file name inside ``directory``.
    public static let manifestFileName = "manifest.json"
    /// The user-authentication CA certificate's file name (DER; a `.pem` sibling holds the same in PEM).
    public static let authCACertificateFileName = "auth-ca.cert.der"
    /// The signing CA certificate's file name (DER; a `.pem` sibling holds the same in PEM).
    public static let signingCACertificateFileName = "signing-ca.cert.der"

    private static let authCAKeyFileName = "auth-ca.key.pem"
    private static let signingCAKeyFileName = "signing-ca.key.pem"

    /// Loads the PKI from `directory`, creating the folder and the two CAs when missing.
    ///
    /// - Parameters:
    ///   - directory: The folder; relative paths are relative to the current directory.
    ///   - logger: Receives one line per key or certificate made.
    public static func loadOrCreate(directory: String, logger: Logger) throws -> TestPKI {
        try FileStore.createDirectory(directory)
        return try FileStore.withLock(in: directory) {
            var manifest = try TestPKIManifest.load(directory: directory) ?? TestPKIManifest()
            let auth = try Self.loadOrCreateCA(
                directory: directory,
                certificateFile: authCACertificateFileName,
                keyFile: authCAKeyFileName,
                subject: try DistinguishedName {
                    CountryName("JP")
                    OrganizationName("JPKI")
                    OrganizationalUnitName("JPKI for user authentication")
                    OrganizationalUnitName("Kyukyu Test CA - SYNTHETIC")
                },
                logger: logger
            )
            let signing = try Self.loadOrCreateCA(
                directory: directory,
                certificateFile: signingCACertificateFileName,
                keyFile: signingCAKeyFileName,
                subject: try DistinguishedName {
                    CountryName("JP")
                    OrganizationName("JPKI")
                    OrganizationalUnitName("JPKI for digital signature")
                    OrganizationalUnitName("Kyukyu Test CA - SYNTHETIC")
                },
                logger: logger
            )
            let authEntry = TestPKIManifest.CertificateEntry(file: authCACertificateFileName, der: auth.certificateDER)
            let signingEntry = TestPKIManifest.CertificateEntry(
                file: signingCACertificateFileName,
                der: signing.certificateDER
            )
            if manifest.authCA != authEntry || manifest.signingCA != signingEntry {
                manifest.authCA = authEntry
                manifest.signingCA = signingEntry
                try manifest.store(directory: directory)
            }
            return TestPKI(
                directory: directory,
                authCACertificateDER: auth.certificateDER,
                signingCACertificateDER: signing.certificateDER,
                authCAKeyPEM: auth.keyPEM,
                signingCAKeyPEM: signing.keyPEM,
                logger: logger
            )
        }
    }

    /// The credentials of holder `n`, with the user-authentication certificate of the requested validity.
    ///
    /// Keys are made once per holder; the expired and not-yet-valid certificates use the same key pair as the
    /// valid one and are stored in their own files, so the valid one stays reusable. A cached certificate whose
    /// validity no longer matches (the valid one has expired with time) is made anew.
    public func holder(_ n: Int, validity: CertificateValidity) throws -> HolderCredentials {
        guard n >= 1 else {
            throw CardSimulatorError.invalidConfiguration("holder numbers start at 1")
        }
        return try FileStore.withLock(in: self.directory) {
            let holder = SyntheticHolder(number: n)
            let folder = self.directory + "/holders/" + String(n)
            try FileStore.createDirectory(folder)

            let authKey = try self.loadOrCreateKey(path: folder + "/auth.key.pem", holder: n, role: "user-auth")
            let signingKey = try self.loadOrCreateKey(path: folder + "/signing.key.pem", holder: n, role: "signing")

            var manifest = try TestPKIManifest.load(directory: self.directory) ?? TestPKIManifest()
            var entry = manifest.holders[String(n)] ?? TestPKIManifest.HolderEntry(number: n, holder: holder)
            entry.opaqueIdentifier = holder.opaqueIdentifier

            var authDERs: [CertificateValidity: [UInt8]] = [:]
            for wanted in Set([CertificateValidity.valid, validity]) {
                let file = "holders/\(n)/auth-\(wanted.rawValue).cert.der"
                let der = try self.loadOrCreateUserAuthCertificate(
                    path: self.directory + "/" + file,
                    key: authKey,
                    holder: holder,
                    validity: wanted
                )
                authDERs[wanted] = der
                entry.userAuthCertificates[wanted.rawValue] = TestPKIManifest.CertificateEntry(file: file, der: der)
            }
            let signingFile = "holders/\(n)/signing.cert.der"
            let signingDER = try self.loadOrCreateSigningCertificate(
                path: self.directory + "/" + signingFile,
                key: signingKey,
                holder: holder
            )
            entry.signingCertificate = TestPKIManifest.CertificateEntry(file: signingFile, der: signingDER)
            if manifest.holders[String(n)] != entry {
                manifest.holders[String(n)] = entry
                try manifest.store(directory: self.directory)
            }
            return HolderCredentials(
                holder: holder,
                validity: validity,
                userAuthCertificateDER: authDERs[validity]!,
                userAuthPrivateKeyDER: Array(authKey.derRepresentation),
                signingCertificateDER: signingDER,
                signingPrivateKeyDER: Array(signingKey.derRepresentation),
                authCACertificateDER: self.authCACertificateDER,
                signingCACertificateDER: self.signingCACertificateDER
            )
        }
    }

    // MARK: - Making things

    private struct CAMaterial {
        var certificateDER: [UInt8]
        var keyPEM: String
    }

    private static func loadOrCreateCA(
        directory: String,
        certificateFile: String,
        keyFile: String,
        subject: DistinguishedName,
        logger: Logger
    ) throws -> CAMaterial {
        let certPath = directory + "/" + certificateFile
        let keyPath = directory + "/" + keyFile
        if let der = try FileStore.read(certPath), let pem = try FileStore.readString(keyPath) {
            do {
                _ = try Certificate(derEncoded: der)
                _ = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
            } catch {
                throw CardSimulatorError.pkiCorrupt("\(certificateFile) or \(keyFile) cannot be parsed: \(error)")
            }
            return CAMaterial(certificateDER: der, keyPEM: pem)
        }
        logger.info("making test CA", metadata: ["kyukyu.sim.pki.file": "\(certificateFile)"])
        do {
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let publicKey = Certificate.PublicKey(key.publicKey)
            let now = Date()
            let certificate = try Certificate(
                version: .v3,
                serialNumber: randomSerial(),
                publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-10 * 365 * 86400),
                notValidAfter: now.addingTimeInterval(20 * 365 * 86400),
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .sha256WithRSAEncryption,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: Certificate.PrivateKey(key)
            )
            let der = try certificate.derBytes()
            try FileStore.write(key.pkcs8PEMRepresentation, to: keyPath, mode: 0o600)
            try FileStore.write(der, to: certPath)
            try FileStore.write(try certificate.serializeAsPEM().pemString + "\n", to: pemPath(certPath))
            return CAMaterial(certificateDER: der, keyPEM: key.pkcs8PEMRepresentation)
        } catch let error as CardSimulatorError {
            throw error
        } catch {
            throw CardSimulatorError.certificateCreation("CA \(certificateFile): \(error)")
        }
    }

    private func loadOrCreateKey(path: String, holder: Int, role: String) throws -> _RSA.Signing.PrivateKey {
        if let pem = try FileStore.readString(path) {
            do {
                return try _RSA.Signing.PrivateKey(pemRepresentation: pem)
            } catch {
                throw CardSimulatorError.pkiCorrupt("key of holder \(holder) (\(role)) cannot be parsed")
            }
        }
        self.logger.info(
            "making RSA-2048 key",
            metadata: ["kyukyu.sim.holder": "\(holder)", "kyukyu.sim.pki.role": "\(role)"]
        )
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        } catch {
            throw CardSimulatorError.certificateCreation("RSA key generation: \(error)")
        }
        try FileStore.write(key.pkcs8PEMRepresentation, to: path, mode: 0o600)
        return key
    }

    private func loadOrCreateUserAuthCertificate(
        path: String,
        key: _RSA.Signing.PrivateKey,
        holder: SyntheticHolder,
        validity: CertificateValidity
    ) throws -> [UInt8] {
        let now = Date()
        if let der = try FileStore.read(path),
            let existing = try? Certificate(derEncoded: der),
            existing.publicKey == Certificate.PublicKey(key.publicKey),
            Self.matches(existing, validity, at: now)
        {
            return der
        }
        let day: TimeInterval = 86400
        let (notBefore, notAfter): (Date, Date) =
            switch validity {
            case .valid: (now.addingTimeInterval(-day), now.addingTimeInterval(5 * 365 * day))
            case .expired: (now.addingTimeInterval(-(5 * 365 + 30) * day), now.addingTimeInterval(-30 * day))
            case .notYetValid: (now.addingTimeInterval(365 * day), now.addingTimeInterval(6 * 365 * day))
            }
        self.logger.info(
            "making user-auth certificate",
            metadata: ["kyukyu.sim.holder": "\(holder.number)", "kyukyu.sim.pki.validity": "\(validity.rawValue)"]
        )
        let subject = try DistinguishedName {
            CountryName("JP")
            CommonName(holder.opaqueIdentifier)
            OrganizationalUnitName(SyntheticHolder.syntheticMarker)
        }
        return try self.issue(
            path: path,
            publicKey: key.publicKey,
            subject: subject,
            notBefore: notBefore,
            notAfter: notAfter,
            issuerDER: self.authCACertificateDER,
            issuerKeyPEM: self.authCAKeyPEM,
            keyUsage: KeyUsage(digitalSignature: true),
            extendedKeyUsage: [.clientAuth]
        )
    }

    private func loadOrCreateSigningCertificate(
        path: String,
        key: _RSA.Signing.PrivateKey,
        holder: SyntheticHolder
    ) throws -> [UInt8] {
        let now = Date()
        if let der = try FileStore.read(path),
            let existing = try? Certificate(derEncoded: der),
            existing.publicKey == Certificate.PublicKey(key.publicKey),
            Self.matches(existing, .valid, at: now)
        {
            return der
        }
        self.logger.info("making signing certificate", metadata: ["kyukyu.sim.holder": "\(holder.number)"])
        let subject = try DistinguishedName {
            CountryName("JP")
            LocalityName(holder.address)
            CommonName(holder.fullName)
            OrganizationalUnitName(SyntheticHolder.syntheticMarker)
        }
        return try self.issue(
            path: path,
            publicKey: key.publicKey,
            subject: subject,
            notBefore: now.addingTimeInterval(-86400),
            notAfter: now.addingTimeInterval(5 * 365 * 86400),
            issuerDER: self.signingCACertificateDER,
            issuerKeyPEM: self.signingCAKeyPEM,
            keyUsage: KeyUsage(digitalSignature: true, nonRepudiation: true),
            extendedKeyUsage: []
        )
    }

    private func issue(
        path: String,
        publicKey rsaPublicKey: _RSA.Signing.PublicKey,
        subject: DistinguishedName,
        notBefore: Date,
        notAfter: Date,
        issuerDER: [UInt8],
        issuerKeyPEM: String,
        keyUsage: KeyUsage,
        extendedKeyUsage: [ExtendedKeyUsage.Usage]
    ) throws -> [UInt8] {
        do {
            let issuer = try Certificate(derEncoded: issuerDER)
            let issuerKey = try _RSA.Signing.PrivateKey(pemRepresentation: issuerKeyPEM)
            let publicKey = Certificate.PublicKey(rsaPublicKey)
            let issuerKeyID = try? issuer.extensions.subjectKeyIdentifier?.keyIdentifier
            var extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(keyUsage)
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
            }
            if !extendedKeyUsage.isEmpty {
                try extensions.append(Certificate.Extension(ExtendedKeyUsage(extendedKeyUsage), critical: false))
            }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: randomSerial(),
                publicKey: publicKey,
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: issuer.subject,
                subject: subject,
                signatureAlgorithm: .sha256WithRSAEncryption,
                extensions: extensions,
                issuerPrivateKey: Certificate.PrivateKey(issuerKey)
            )
            let der = try certificate.derBytes()
            try FileStore.write(der, to: path)
            try FileStore.write(try certificate.serializeAsPEM().pemString + "\n", to: pemPath(path))
            return der
        } catch let error as CardSimulatorError {
            throw error
        } catch {
            throw CardSimulatorError.certificateCreation("issuing \(path): \(error)")
        }
    }

    private static func matches(_ certificate: Certificate, _ validity: CertificateValidity, at now: Date) -> Bool {
        // Keep a margin of a day so that a certificate does not flip state during a test run.
        let margin: TimeInterval = 86400
        switch validity {
        case .valid:
            return certificate.notValidBefore < now && certificate.notValidAfter > now.addingTimeInterval(margin)
        case .expired:
            return certificate.notValidAfter < now
        case .notYetValid:
            return certificate.notValidBefore > now.addingTimeInterval(margin)
        }
    }
}

/// What one simulated card holds for a holder: certificates, private keys and CA certificates.
public struct HolderCredentials: Sendable {
    /// The synthetic holder.
    public var holder: SyntheticHolder
    /// Which user-authentication certificate this is.
    public var validity: CertificateValidity
    /// The user-authentication certificate (DER), EF 000A.
    public var userAuthCertificateDER: [UInt8]
    /// The user-authentication private key (PKCS#1 DER), behind EF 0017.
    public var userAuthPrivateKeyDER: [UInt8]
    /// The signing certificate (DER), EF 0001; carries the synthetic name and address.
    public var signingCertificateDER: [UInt8]
    /// The signing private key (PKCS#1 DER), behind EF 001A.
    public var signingPrivateKeyDER: [UInt8]
    /// The user-authentication CA certificate (DER), EF 000B.
    public var authCACertificateDER: [UInt8]
    /// The signing CA certificate (DER), EF 0002.
    public var signingCACertificateDER: [UInt8]

    /// Bundles credentials (tests may build their own).
    public init(
        holder: SyntheticHolder,
        validity: CertificateValidity,
        userAuthCertificateDER: [UInt8],
        userAuthPrivateKeyDER: [UInt8],
        signingCertificateDER: [UInt8],
        signingPrivateKeyDER: [UInt8],
        authCACertificateDER: [UInt8],
        signingCACertificateDER: [UInt8]
    ) {
        self.holder = holder
        self.validity = validity
        self.userAuthCertificateDER = userAuthCertificateDER
        self.userAuthPrivateKeyDER = userAuthPrivateKeyDER
        self.signingCertificateDER = signingCertificateDER
        self.signingPrivateKeyDER = signingPrivateKeyDER
        self.authCACertificateDER = authCACertificateDER
        self.signingCACertificateDER = signingCACertificateDER
    }

    /// Upper-case hex SHA-256 of the user-authentication certificate's DER.
    public var userAuthCertificateSHA256: String {
        hexString(SHA256.hash(data: self.userAuthCertificateDER))
    }
}

/// `manifest.json` of the test PKI: which files hold what, and which certificate belongs to which holder.
///
/// The eligibility stub maps a presented user-authentication certificate to holder N by its SHA-256 fingerprint
/// or by issuer serial (``CertificateEntry/serial``), for every validity variant.
public struct TestPKIManifest: Codable, Sendable, Equatable {
    /// One certificate file.
    public struct CertificateEntry: Codable, Sendable, Equatable {
        /// Path relative to the PKI folder (DER; the same name with `.pem` instead of `.der` holds the PEM).
        public var file: String
        /// Serial number, upper-case hex.
        public var serial: String
        /// SHA-256 of the DER, upper-case hex.
        public var sha256: String
        /// The subject, RFC 4514 style as swift-certificates prints it.
        public var subject: String
        /// Not valid before, ISO 8601.
        public var notBefore: String
        /// Not valid after, ISO 8601.
        public var notAfter: String

        /// Describes the certificate `der` stored at `file`.
        public init(file: String, der: [UInt8]) {
            self.file = file
            self.sha256 = hexString(SHA256.hash(data: der))
            if let certificate = try? Certificate(derEncoded: der) {
                self.serial = hexString(certificate.serialNumber.bytes)
                self.subject = String(describing: certificate.subject)
                let formatter = ISO8601DateFormatter()
                self.notBefore = formatter.string(from: certificate.notValidBefore)
                self.notAfter = formatter.string(from: certificate.notValidAfter)
            } else {
                self.serial = ""
                self.subject = ""
                self.notBefore = ""
                self.notAfter = ""
            }
        }
    }

    /// One holder's certificates.
    public struct HolderEntry: Codable, Sendable, Equatable {
        /// The holder number (patient N in the eligibility stub).
        public var number: Int
        /// The CN of the user-authentication certificate.
        public var opaqueIdentifier: String
        /// User-authentication certificates by validity (`valid`, `expired`, `not-yet-valid`), those made so far.
        public var userAuthCertificates: [String: CertificateEntry]
        /// The signing certificate.
        public var signingCertificate: CertificateEntry?

        /// An entry without certificates yet.
        public init(number: Int, holder: SyntheticHolder) {
            self.number = number
            self.opaqueIdentifier = holder.opaqueIdentifier
            self.userAuthCertificates = [:]
            self.signingCertificate = nil
        }
    }

    /// The format version (1).
    public var format: Int
    /// Always `SYNTHETIC`: nothing here belongs to a real person.
    public var marker: String
    /// The user-authentication CA.
    public var authCA: CertificateEntry?
    /// The signing CA.
    public var signingCA: CertificateEntry?
    /// Holders by number (as a decimal string).
    public var holders: [String: HolderEntry]

    /// An empty manifest.
    public init() {
        self.format = 1
        self.marker = SyntheticHolder.syntheticMarker
        self.authCA = nil
        self.signingCA = nil
        self.holders = [:]
    }

    /// Reads `manifest.json` from a PKI folder; `nil` when it does not exist yet.
    public static func load(directory: String) throws -> TestPKIManifest? {
        guard let bytes = try FileStore.read(directory + "/" + TestPKI.manifestFileName) else { return nil }
        do {
            return try JSONDecoder().decode(TestPKIManifest.self, from: Data(bytes))
        } catch {
            throw CardSimulatorError.pkiCorrupt("manifest.json: \(error)")
        }
    }

    /// The holder whose user-authentication certificate has this SHA-256 (upper- or lower-case hex).
    public func holderNumber(forUserAuthSHA256 fingerprint: String) -> Int? {
        let wanted = fingerprint.uppercased()
        for entry in self.holders.values
        where entry.userAuthCertificates.values.contains(where: { $0.sha256 == wanted }) {
            return entry.number
        }
        return nil
    }

    func store(directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(self)
            try FileStore.write(Array(data) + [0x0A], to: directory + "/" + TestPKI.manifestFileName)
        } catch let error as CardSimulatorError {
            throw error
        } catch {
            throw CardSimulatorError.pkiStorage("manifest.json: \(error)")
        }
    }
}

private func randomSerial() -> Certificate.SerialNumber {
    var generator = SystemRandomNumberGenerator()
    var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
    bytes[0] = (bytes[0] & 0x7F) | 0x10
    return Certificate.SerialNumber(bytes: bytes)
}

private func pemPath(_ derPath: String) -> String {
    derPath.hasSuffix(".der") ? String(derPath.dropLast(4)) + ".pem" : derPath + ".pem"
}

extension Certificate {
    fileprivate func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}

/// Small file helpers shared by the simulators' data folders: atomic writes, optional reads, an advisory lock.
public enum FileStore {
    static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw CardSimulatorError.pkiStorage("cannot create \(path): \(error)")
        }
    }

    static func read(_ path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CardSimulatorError.pkiStorage("cannot read \(path)")
        }
        return Array(data)
    }

    static func readString(_ path: String) throws -> String? {
        guard let bytes = try read(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `string` to `path` atomically (a temporary file renamed over it) with the given mode.
    public static func write(_ string: String, to path: String, mode: Int = 0o644) throws {
        try write(Array(string.utf8), to: path, mode: mode)
    }

    /// Writes `bytes` to `path` atomically (a temporary file renamed over it) with the given mode.
    public static func write(_ bytes: [UInt8], to path: String, mode: Int = 0o644) throws {
        let temporary = path + ".tmp-\(getpid())"
        guard
            FileManager.default.createFile(
                atPath: temporary,
                contents: Data(bytes),
                attributes: [.posixPermissions: mode]
            )
        else {
            throw CardSimulatorError.pkiStorage("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(atPath: temporary)
            throw CardSimulatorError.pkiStorage("cannot rename onto \(path): errno \(code)")
        }
    }

    /// Runs `body` holding an exclusive `flock` on `<directory>/.lock` (other processes wait).
    public static func withLock<R>(in directory: String, _ body: () throws -> R) throws -> R {
        let fd = open(directory + "/.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CardSimulatorError.pkiStorage("cannot open the lock file in \(directory): errno \(errno)")
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw CardSimulatorError.pkiStorage("cannot lock \(directory): errno \(errno)")
            }
        }
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }
}
