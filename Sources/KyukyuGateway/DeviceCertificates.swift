import Crypto
import Foundation
import KyukyuVault
import SwiftASN1
import X509

/// Why a device certificate could not be requested or installed. Built like swift-certificates' errors: a public
/// struct with a private code, compared by code. Reasons name files and certificate fields, never patient data.
public struct DeviceCertificateError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case fileSystem
        case malformed
        case wrongKey
        case wrongSubject
        case untrusted
        case noPendingRequest
    }

    private let code: Code
    /// What is wrong and what to do.
    public let reason: String

    private init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Compares by kind only.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    /// Hashes the kind.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// A file could not be read or written.
    public static func fileSystem(_ reason: String) -> Self { Self(.fileSystem, reason) }
    /// The certificate (or CA) is not PEM, or not a certificate.
    public static func malformed(_ reason: String) -> Self { Self(.malformed, reason) }
    /// The certificate is for another key than this device's pending (or current) key.
    public static func wrongKey(_ reason: String) -> Self { Self(.wrongKey, reason) }
    /// The certificate names another device.
    public static func wrongSubject(_ reason: String) -> Self { Self(.wrongSubject, reason) }
    /// The certificate does not chain to the CA, is not valid now, or is not for client authentication.
    public static func untrusted(_ reason: String) -> Self { Self(.untrusted, reason) }
    /// There is no key to install a certificate for.
    public static func noPendingRequest(_ reason: String) -> Self { Self(.noPendingRequest, reason) }

    /// The reason.
    public var description: String { "DeviceCertificateError: \(reason)" }
}

/// A device's client certificate in one of its TLS folders: onshi's terminal certificate (`onshi.tls-directory`)
/// or the hospital network's (`handoff.tls-directory`). The layout is the one the gateway reads:
/// `<device>.cert.pem`, `<device>.key.pem` (0600) and `ca.cert.pem`.
///
/// Renewal is done in two steps, so that the private key never leaves the device and the service never stops:
/// 1. ``request(organization:)`` makes a new P-256 key (`<device>.key.pem.pending`, 0600) and a certificate
///    signing request (`<device>.csr.pem`) for the CA; the certificate in use stays as it is.
/// 2. ``install(certificatePEM:now:)`` checks the issued certificate (the pending key's, this device's name, chained
///    to the CA, valid now, for client authentication) and only then replaces the certificate and key. A running
///    gateway picks them up on `SIGHUP` (`systemctl reload`) for its next connections; the ones open finish as
///    they are.
public struct DeviceCertificates: Sendable {
    /// The TLS folder.
    public let directory: String
    /// The device's name: the certificate's common name (`terminal.id`).
    public let deviceID: String

    /// The certificates of `deviceID` in `directory`.
    public init(directory: String, deviceID: String) {
        self.directory = directory
        self.deviceID = deviceID
    }

    /// The certificate in use.
    public var certificatePath: String { "\(directory)/\(deviceID).cert.pem" }
    /// Its private key (0600).
    public var keyPath: String { "\(directory)/\(deviceID).key.pem" }
    /// The CA the certificate chains to (and that signs the server's certificate).
    public var caPath: String { "\(directory)/ca.cert.pem" }
    /// The key made by the last request, waiting for its certificate.
    public var pendingKeyPath: String { keyPath + ".pending" }
    /// The last request, for the CA.
    public var requestPath: String { "\(directory)/\(deviceID).csr.pem" }

    /// Makes a new key and a signing request for it; returns the request's PEM (also written to ``requestPath``).
    /// A previous pending key is replaced: only the latest request can be installed.
    public func request(organization: String = "Myna Kyukyu gateway") throws(DeviceCertificateError) -> String {
        let key = P256.Signing.PrivateKey()
        let pem: String
        do {
            let request = try CertificateSigningRequest(
                version: .v1,
                subject: try DistinguishedName {
                    CountryName("JP")
                    OrganizationName(organization)
                    CommonName(deviceID)
                },
                privateKey: Certificate.PrivateKey(key),
                attributes: CertificateSigningRequest.Attributes(),
                signatureAlgorithm: .ecdsaWithSHA256
            )
            pem = try request.serializeAsPEM().pemString + "\n"
        } catch {
            throw .malformed("the signing request cannot be made: \(error)")
        }
        try ensureDirectory()
        try write(key.pemRepresentation + "\n", to: pendingKeyPath, mode: 0o600)
        try write(pem, to: requestPath, mode: 0o644)
        return pem
    }

    /// Checks `certificatePEM` and installs it with its key: the pending key when a request is pending, else the
    /// key in use (a certificate renewed for the same key). A PEM with more than one certificate is the issued
    /// certificate followed by its CA, which then replaces ``caPath``; otherwise ``caPath`` must already hold the CA.
    ///
    /// - Returns: The installed certificate.
    /// - Throws: ``DeviceCertificateError`` when anything does not match; nothing is changed then.
    @discardableResult
    public func install(certificatePEM: String, now: Date = Date()) async throws(DeviceCertificateError) -> Certificate
    {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: certificatePEM)
        } catch {
            throw .malformed("the file is not PEM: \(error)")
        }
        let certificates: [Certificate]
        do {
            certificates = try documents.map { try Certificate(pemDocument: $0) }
        } catch {
            throw .malformed("the file holds something other than certificates: \(error)")
        }
        guard let leaf = certificates.first else { throw .malformed("the file holds no certificate") }
        let ca: Certificate
        if certificates.count > 1 {
            ca = certificates[certificates.count - 1]
        } else {
            guard let text = try? String(contentsOfFile: caPath, encoding: .utf8),
                let existing = try? Certificate(pemEncoded: text)
            else {
                throw .untrusted("\(caPath) holds no CA certificate: give the issued certificate followed by its CA")
            }
            ca = existing
        }

        let pending = FileManager.default.fileExists(atPath: pendingKeyPath)
        let keySource = pending ? pendingKeyPath : keyPath
        let key: P256.Signing.PrivateKey
        do {
            try FilePermissions.requirePrivate(path: keySource)
            key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: keySource, encoding: .utf8))
        } catch {
            throw .noPendingRequest(
                "no usable key at \(keySource): run `kyukyu-gateway cert request` first (\(error))"
            )
        }
        guard leaf.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw .wrongKey(
                "the certificate is not for this device's \(pending ? "pending" : "current") key: it was issued for "
                    + "another request; send \(requestPath) to the CA"
            )
        }
        let names = leaf.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String(describing: $0.value) }
        guard names == [deviceID] else {
            throw .wrongSubject("the certificate names \(names) but this device is \(deviceID)")
        }
        if let usage = try? leaf.extensions.extendedKeyUsage, !usage.contains(.clientAuth) {
            throw .untrusted("the certificate is not for client authentication")
        }
        var verifier = Verifier(rootCertificates: CertificateStore([ca])) { RFC5280Policy(validationTime: now) }
        let intermediates = CertificateStore(Array(certificates.dropFirst().dropLast()))
        switch await verifier.validate(leaf: leaf, intermediates: intermediates) {
        case .validCertificate:
            break
        case .couldNotValidate(let failures):
            let why = failures.first.map { "\($0.policyFailureReason)" } ?? "no chain to the CA"
            throw .untrusted(
                "the certificate does not chain to the CA \(ca.subject), or is not valid now (\(leaf.notValidBefore) "
                    + "to \(leaf.notValidAfter)): \(why)"
            )
        }

        // Everything matches: the files change now. The key first (renamed, so never half-written), then the
        // certificate; a reader that sees a pair that does not match keeps what it has (see the gateway's reload).
        do {
            if certificates.count > 1 {
                try write(try ca.serializeAsPEM().pemString + "\n", to: caPath, mode: 0o644)
            }
            if pending {
                try rename(pendingKeyPath, keyPath)
            }
            try write(try leaf.serializeAsPEM().pemString + "\n", to: certificatePath, mode: 0o644)
        } catch let error as DeviceCertificateError {
            throw error
        } catch {
            throw .fileSystem("the certificate cannot be written: \(error)")
        }
        try? FileManager.default.removeItem(atPath: requestPath)
        return leaf
    }

    private func ensureDirectory() throws(DeviceCertificateError) {
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw .fileSystem("\(directory) cannot be made: \(error)")
        }
    }

    /// Writes `text` to a temporary file with `mode` and renames it over `path`.
    private func write(_ text: String, to path: String, mode: Int) throws(DeviceCertificateError) {
        let temporary = path + ".tmp-\(UUID().uuidString.prefix(8))"
        guard
            FileManager.default.createFile(
                atPath: temporary,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: mode]
            )
        else {
            throw .fileSystem("\(temporary) cannot be written")
        }
        try rename(temporary, path)
    }

    private func rename(_ from: String, _ to: String) throws(DeviceCertificateError) {
        guard Foundation.rename(from, to) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: from)
            throw .fileSystem("\(from) cannot be renamed to \(to): \(reason)")
        }
    }
}
