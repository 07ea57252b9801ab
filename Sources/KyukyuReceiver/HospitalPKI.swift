import Crypto
public import Foundation
import KyukyuVault
public import NIOSSL
import SwiftASN1
import X509

/// The receiver's own certificate authority (swift-certificates): it signs the receiver's server certificate and
/// every ambulance's client certificate, and the receiver's TLS trusts it alone for client certificates. Keys are
/// P-256, written with mode 0600 in 0700 folders.
public struct HospitalPKI: Sendable {
    /// The folder of the CA and the server certificate.
    public let directory: String

    /// The CA certificate's file name.
    public static let caCertificate = "ca.cert.pem"
    /// The CA key's file name (0600).
    public static let caKey = "ca.key.pem"
    /// The server certificate's file name.
    public static let serverCertificate = "server.cert.pem"
    /// The server key's file name (0600).
    public static let serverKey = "server.key.pem"

    /// The PKI in `directory`.
    public init(directory: String) { self.directory = directory }

    var caCertificatePath: String { directory + "/" + Self.caCertificate }
    var caKeyPath: String { directory + "/" + Self.caKey }
    var serverCertificatePath: String { directory + "/" + Self.serverCertificate }
    var serverKeyPath: String { directory + "/" + Self.serverKey }

    /// Whether the CA exists.
    public var exists: Bool { FileManager.default.fileExists(atPath: caKeyPath) }

    /// Makes the CA and the server certificate (`serverNames`: DNS names and IP addresses, by default
    /// `localhost` and `127.0.0.1`). Refuses to replace an existing CA: every device certificate hangs on it.
    public func initialize(
        hospital: String,
        serverNames: [String] = ["localhost", "127.0.0.1"],
        now: Date = Date()
    ) throws(ReceiverError) {
        guard !exists else {
            throw .conflict(
                "a CA exists in \(directory) already: remove the folder to start over (every device needs a new certificate then)"
            )
        }
        do {
            try PrivateFiles.ensureDirectory(directory)
            let caKey = P256.Signing.PrivateKey()
            let caName = try DistinguishedName {
                OrganizationName("Kyukyu hospital \(hospital)")
                CommonName("Kyukyu hospital \(hospital) CA")
            }
            let caPublic = Certificate.PublicKey(caKey.publicKey)
            let ca = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: caPublic,
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
                issuer: caName,
                subject: caName,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: caPublic)
                },
                issuerPrivateKey: Certificate.PrivateKey(caKey)
            )
            let serverKey = P256.Signing.PrivateKey()
            let names: [GeneralName] = serverNames.map { name in
                if let address = IPv4Address(name) {
                    return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(address.bytes)))
                }
                return .dnsName(name)
            }
            let server = try Self.leaf(
                commonName: serverNames.first ?? "localhost",
                key: serverKey,
                usage: .serverAuth,
                names: names,
                validity: 397 * 86400,
                ca: ca,
                caKey: caKey,
                now: now
            )
            try PrivateFiles.create(caKeyPath, Data((caKey.pemRepresentation + "\n").utf8), mode: 0o600)
            try PrivateFiles.create(
                caCertificatePath,
                Data((try ca.serializeAsPEM().pemString + "\n").utf8),
                mode: 0o644
            )
            try PrivateFiles.create(serverKeyPath, Data((serverKey.pemRepresentation + "\n").utf8), mode: 0o600)
            try PrivateFiles.create(
                serverCertificatePath,
                Data((try server.serializeAsPEM().pemString + "\n").utf8),
                mode: 0o644
            )
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .pki("cannot make the CA in \(directory): \(error)")
        }
    }

    /// Issues a client certificate for `device` (its CN), valid two years, into `outDirectory`:
    /// `<device>.cert.pem`, `<device>.key.pem` (0600) and `ca.cert.pem` (to trust the receiver), the layout of
    /// the gateway's TLS folders. Returns the certificate's path. Refuses to overwrite an existing key.
    @discardableResult
    public func issueDevice(_ device: String, outDirectory: String, now: Date = Date()) throws(ReceiverError) -> String
    {
        guard DeviceName.isValid(device) else { throw .invalidInput("a device id is 1-64 of A-Z a-z 0-9 . _ -") }
        do {
            let (ca, caKey) = try loadCA()
            try PrivateFiles.ensureDirectory(outDirectory)
            let key = P256.Signing.PrivateKey()
            let certificate = try Self.leaf(
                commonName: device,
                key: key,
                usage: .clientAuth,
                names: [],
                validity: 2 * 365 * 86400,
                ca: ca,
                caKey: caKey,
                now: now
            )
            let keyPath = outDirectory + "/\(device).key.pem"
            let certificatePath = outDirectory + "/\(device).cert.pem"
            for path in [keyPath, certificatePath] where FileManager.default.fileExists(atPath: path) {
                try FileManager.default.removeItem(atPath: path)
            }
            try PrivateFiles.create(keyPath, Data((key.pemRepresentation + "\n").utf8), mode: 0o600)
            try PrivateFiles.create(
                certificatePath,
                Data((try certificate.serializeAsPEM().pemString + "\n").utf8),
                mode: 0o644
            )
            let caCopy = outDirectory + "/ca.cert.pem"
            if !FileManager.default.fileExists(atPath: caCopy) {
                try PrivateFiles.create(caCopy, Data((try ca.serializeAsPEM().pemString + "\n").utf8), mode: 0o644)
            }
            return certificatePath
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .pki("cannot issue a certificate for \(device): \(error)")
        }
    }

    /// Signs a device's certificate signing request (PEM; `kyukyu-hospital device sign` also registers the
    /// device): the CSR's signature must verify and its common name be a valid device ID. The certificate is for client authentication, valid two years, with the CSR's key
    /// (the key never leaves the ambulance). Returns the device ID and the certificate followed by this CA's.
    public func signDeviceRequest(_ requestPEM: String, now: Date = Date()) throws(ReceiverError) -> (
        device: String, certificatesPEM: String
    ) {
        do {
            let request = try CertificateSigningRequest(pemEncoded: requestPEM)
            guard request.publicKey.isValidSignature(request.signature, for: request) else {
                throw ReceiverError.invalidInput("the signing request's signature does not verify")
            }
            let names = request.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
                .map { String(describing: $0.value) }
            guard names.count == 1, let device = names.first, DeviceName.isValid(device) else {
                throw ReceiverError.invalidInput("the request must name one device (CN: 1-64 of A-Z a-z 0-9 . _ -)")
            }
            let (ca, caKey) = try loadCA()
            let certificate = try Self.leaf(
                commonName: device,
                publicKey: request.publicKey,
                usage: .clientAuth,
                names: [],
                validity: 2 * 365 * 86400,
                ca: ca,
                caKey: caKey,
                now: now
            )
            return (
                device,
                try certificate.serializeAsPEM().pemString + "\n" + (try ca.serializeAsPEM().pemString) + "\n"
            )
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .pki("cannot sign the request: \(error)")
        }
    }

    /// The server's TLS configuration: its certificate and key, client certificates optional (staff browsers have
    /// none) but verified against this CA alone when presented, so a certificate from another CA fails the
    /// handshake; TLS 1.2 at least.
    public func serverTLSConfiguration() throws(ReceiverError) -> TLSConfiguration {
        do {
            try Self.requireOwnerOnly(serverKeyPath)
            let chain = try NIOSSLCertificate.fromPEMFile(serverCertificatePath)
            let key = try NIOSSLPrivateKey(file: serverKeyPath, format: .pem)
            let ca = try NIOSSLCertificate.fromPEMFile(caCertificatePath)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) },
                privateKey: .privateKey(key)
            )
            configuration.trustRoots = .certificates(ca)
            configuration.certificateVerification = .optionalVerification
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .pki("the server certificate in \(directory) cannot be used (run kyukyu-hospital ca init): \(error)")
        }
    }

    /// The CA certificate in PEM (for clients' trust roots).
    public func caCertificatePEM() throws(ReceiverError) -> String {
        guard let data = FileManager.default.contents(atPath: caCertificatePath) else {
            throw .notFound("no CA in \(directory): run kyukyu-hospital ca init")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private func loadCA() throws -> (Certificate, P256.Signing.PrivateKey) {
        guard exists else { throw ReceiverError.notFound("no CA in \(directory): run kyukyu-hospital ca init first") }
        try Self.requireOwnerOnly(caKeyPath)
        let certificate = try Certificate(pemEncoded: try caCertificatePEM())
        guard let keyData = FileManager.default.contents(atPath: caKeyPath) else {
            throw ReceiverError.pki("cannot read \(caKeyPath)")
        }
        return (certificate, try P256.Signing.PrivateKey(pemRepresentation: String(decoding: keyData, as: UTF8.self)))
    }

    /// A key file must be a regular file of the current user with no group or other permission (KyukyuVault's
    /// check, on the opened descriptor, symbolic links refused).
    static func requireOwnerOnly(_ path: String) throws {
        do {
            try FilePermissions.requirePrivate(path: path)
        } catch let error as VaultError {
            throw ReceiverError.pki(error.reason)
        }
    }

    private static func leaf(
        commonName: String,
        key: P256.Signing.PrivateKey,
        usage: ExtendedKeyUsage.Usage,
        names: [GeneralName],
        validity: TimeInterval,
        ca: Certificate,
        caKey: P256.Signing.PrivateKey,
        now: Date
    ) throws -> Certificate {
        try leaf(
            commonName: commonName,
            publicKey: Certificate.PublicKey(key.publicKey),
            usage: usage,
            names: names,
            validity: validity,
            ca: ca,
            caKey: caKey,
            now: now
        )
    }

    private static func leaf(
        commonName: String,
        publicKey: Certificate.PublicKey,
        usage: ExtendedKeyUsage.Usage,
        names: [GeneralName],
        validity: TimeInterval,
        ca: Certificate,
        caKey: P256.Signing.PrivateKey,
        now: Date
    ) throws -> Certificate {
        let subject = try DistinguishedName { CommonName(commonName) }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: ca.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage])
                SubjectKeyIdentifier(hash: publicKey)
                if let authority = try? ca.extensions.subjectKeyIdentifier {
                    AuthorityKeyIdentifier(keyIdentifier: authority.keyIdentifier)
                }
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
    }
}

/// A dotted IPv4 address's four bytes.
struct IPv4Address {
    let bytes: [UInt8]
    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        self.bytes = bytes
    }
}
