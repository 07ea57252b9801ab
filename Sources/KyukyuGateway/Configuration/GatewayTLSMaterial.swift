import Crypto
import Foundation
import KyukyuVault
import NIOCore
import NIOSSL
import SwiftASN1
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The HTTP server's certificate (chain) and private key, in PEM.
public struct GatewayTLSMaterial: Sendable {
    /// The certificate chain, leaf first, in PEM.
    public var certificatePEM: String
    /// The private key, in PEM.
    public var keyPEM: String
    /// The file the certificate was read from or written to.
    public var certificatePath: String
    /// The file the key was read from or written to (owner-only).
    public var keyPath: String
    /// Whether this call generated a new self-signed certificate (false: configured, or generated earlier and
    /// reused).
    public var generated: Bool
}

extension GatewayConfiguration {
    /// The folder of the generated self-signed certificate: `<state>/tls`.
    public var generatedTLSDirectory: String { self.stateDirectory + "/tls" }

    /// The file name of the generated certificate inside ``generatedTLSDirectory``.
    public static let generatedCertificateFileName = "gateway.cert.pem"
    /// The file name of the generated key inside ``generatedTLSDirectory`` (mode 0600).
    public static let generatedKeyFileName = "gateway.key.pem"

    /// A generated certificate is replaced this long before it expires.
    static let renewalMargin: TimeInterval = 7 * 86400
    /// How long a generated certificate is valid.
    static let generatedValidity: TimeInterval = 397 * 86400

    /// Creates the state folder (and its parents) if missing, with mode 0700 on the folder itself, and removes
    /// group and other permissions from an existing one. Blocking; call once at start-up.
    public func prepareStateDirectory() throws(GatewayConfigurationError) {
        try Self.ensurePrivateDirectory(self.stateDirectory, key: GatewayConfigurationKey.stateDirectory.name)
    }

    /// The certificate and key the server must use, or `nil` when it serves plain HTTP (loopback without a
    /// configured certificate).
    ///
    /// A configured certificate (`http.tls.certificate`, `http.tls.key`) is read and checked: the key file must be
    /// owner-only, and both must parse. Otherwise, on an address that is not loopback, a self-signed P-256
    /// certificate is generated into ``generatedTLSDirectory`` (key mode 0600, folder 0700) with the address and
    /// the machine's name as subject alternative names (every interface's address when listening on `0.0.0.0`
    /// or `::`), and reused on later starts while it matches its key, covers the address and is valid for more
    /// than 7 days after `now`. Blocking file work; call once at start-up.
    public func tlsMaterial(now: Date = Date()) throws(GatewayConfigurationError) -> GatewayTLSMaterial? {
        if let certificatePath = self.http.tls.certificatePath, let keyPath = self.http.tls.keyPath {
            return try Self.readConfiguredMaterial(certificatePath: certificatePath, keyPath: keyPath)
        }
        guard !self.listensOnLoopback else { return nil }
        // The listening policy, checked when loading, guarantees generation is on here.
        guard self.http.tls.generate else {
            throw GatewayConfigurationError.listeningPolicy(
                key: GatewayConfigurationKey.httpHost.name,
                source: self.source(of: GatewayConfigurationKey.httpHost.name) ?? .embeddedDefault,
                reason: "no certificate is configured and http.tls.generate is false: cannot serve \(self.http.host)"
            )
        }
        return try self.generatedMaterial(now: now)
    }

    /// NIOSSL's server configuration for ``tlsMaterial(now:)``, or `nil` for plain HTTP.
    public func serverTLSConfiguration(now: Date = Date()) throws(GatewayConfigurationError) -> TLSConfiguration? {
        guard let material = try self.tlsMaterial(now: now) else { return nil }
        let (chain, key) = try Self.parseWithNIOSSL(material)
        return TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
    }

    // MARK: - Configured material

    static func readConfiguredMaterial(
        certificatePath: String,
        keyPath: String
    ) throws(GatewayConfigurationError) -> GatewayTLSMaterial {
        let keyName = GatewayConfigurationKey.httpTLSKey.name
        try Self.requirePrivate(keyPath, key: keyName)
        let certificatePEM = try Self.readText(certificatePath, key: GatewayConfigurationKey.httpTLSCertificate.name)
        let keyPEM = try Self.readText(keyPath, key: keyName)
        let material = GatewayTLSMaterial(
            certificatePEM: certificatePEM,
            keyPEM: keyPEM,
            certificatePath: certificatePath,
            keyPath: keyPath,
            generated: false
        )
        _ = try Self.parseWithNIOSSL(material)
        // The leaf (first) certificate must belong to the key: a mismatch would fail every handshake.
        let matches: Bool
        do {
            let leaf = try PEMDocument.parseMultiple(pemString: certificatePEM).first.map {
                try Certificate(pemDocument: $0)
            }
            let privateKey = try Certificate.PrivateKey(pemEncoded: keyPEM)
            matches = leaf?.publicKey == privateKey.publicKey
        } catch {
            throw GatewayConfigurationError.tlsMaterial(
                key: keyName,
                reason: "\(certificatePath) or \(keyPath) cannot be parsed: \(error)"
            )
        }
        guard matches else {
            throw GatewayConfigurationError.tlsMaterial(
                key: keyName,
                reason: "the key in \(keyPath) does not belong to the first certificate in \(certificatePath)"
            )
        }
        return material
    }

    private static func parseWithNIOSSL(
        _ material: GatewayTLSMaterial
    ) throws(GatewayConfigurationError) -> ([NIOSSLCertificate], NIOSSLPrivateKey) {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(material.certificatePEM.utf8))
        } catch {
            throw GatewayConfigurationError.tlsMaterial(
                key: GatewayConfigurationKey.httpTLSCertificate.name,
                reason: "\(material.certificatePath) holds no PEM certificate that can be used: \(error)"
            )
        }
        guard !chain.isEmpty else {
            throw GatewayConfigurationError.tlsMaterial(
                key: GatewayConfigurationKey.httpTLSCertificate.name,
                reason: "\(material.certificatePath) holds no PEM certificate"
            )
        }
        do {
            return (chain, try NIOSSLPrivateKey(bytes: Array(material.keyPEM.utf8), format: .pem))
        } catch {
            throw GatewayConfigurationError.tlsMaterial(
                key: GatewayConfigurationKey.httpTLSKey.name,
                reason: "\(material.keyPath) holds no PEM private key that can be used"
            )
        }
    }

    /// The key file must be a regular file of the current user, with no group or other permission.
    private static func requirePrivate(_ path: String, key: String) throws(GatewayConfigurationError) {
        do {
            try FilePermissions.requirePrivate(path: path)
        } catch let error as VaultError {
            throw GatewayConfigurationError.tlsMaterial(key: key, reason: error.reason)
        } catch {
            throw GatewayConfigurationError.tlsMaterial(key: key, reason: "\(path): \(error)")
        }
    }

    private static func readText(_ path: String, key: String) throws(GatewayConfigurationError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatewayConfigurationError.tlsMaterial(key: key, reason: "\(path) does not exist or cannot be read")
        }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: - Generated material

    private func generatedMaterial(now: Date) throws(GatewayConfigurationError) -> GatewayTLSMaterial {
        let key = GatewayConfigurationKey.httpTLSGenerate.name
        try self.prepareStateDirectory()
        let directory = self.generatedTLSDirectory
        try Self.ensurePrivateDirectory(directory, key: key)
        let certificatePath = directory + "/" + Self.generatedCertificateFileName
        let keyPath = directory + "/" + Self.generatedKeyFileName
        let address = HostAddress(self.http.host)
        let required = Self.requiredNames(for: address)

        if FileManager.default.fileExists(atPath: certificatePath), FileManager.default.fileExists(atPath: keyPath) {
            try Self.requirePrivate(keyPath, key: key)
            let certificatePEM = try Self.readText(certificatePath, key: key)
            let keyPEM = try Self.readText(keyPath, key: key)
            if Self.isReusable(certificatePEM: certificatePEM, keyPEM: keyPEM, required: required, now: now) {
                return GatewayTLSMaterial(
                    certificatePEM: certificatePEM,
                    keyPEM: keyPEM,
                    certificatePath: certificatePath,
                    keyPath: keyPath,
                    generated: false
                )
            }
        }

        var names = required
        if address.isWildcard { names.formUnion(Self.interfaceNames()) }
        if let hostName = Self.machineName() { names.insert(.dnsName(hostName)) }
        let commonName: String =
            switch address.kind {
            case .name(let name): name
            default: Self.machineName() ?? self.http.host
            }
        let privateKey = P256.Signing.PrivateKey()
        let certificatePEM: String
        do {
            let publicKey = Certificate.PublicKey(privateKey.publicKey)
            let subject = try DistinguishedName {
                OrganizationName("Kyukyu gateway (self-signed)")
                CommonName(commonName)
            }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(Self.generatedValidity),
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectKeyIdentifier(hash: publicKey)
                    SubjectAlternativeNames(names.sorted { "\($0)" < "\($1)" })
                },
                issuerPrivateKey: Certificate.PrivateKey(privateKey)
            )
            certificatePEM = try certificate.serializeAsPEM().pemString + "\n"
        } catch {
            throw GatewayConfigurationError.tlsMaterial(key: key, reason: "cannot make a certificate: \(error)")
        }
        let keyPEM = privateKey.pemRepresentation + "\n"
        // The key first: a crash between the two leaves a pair that does not match, which the next start replaces.
        try Self.writeAtomically(keyPEM, to: keyPath, mode: 0o600, key: key)
        try Self.writeAtomically(certificatePEM, to: certificatePath, mode: 0o644, key: key)
        return GatewayTLSMaterial(
            certificatePEM: certificatePEM,
            keyPEM: keyPEM,
            certificatePath: certificatePath,
            keyPath: keyPath,
            generated: true
        )
    }

    /// The names a certificate must carry to be reused for `address` (none for a wildcard address).
    static func requiredNames(for address: HostAddress) -> Set<GeneralName> {
        switch address.kind {
        case .ipv4(let bytes), .ipv6(let bytes):
            address.isWildcard ? [] : [.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))]
        case .name(let name):
            [.dnsName(name)]
        case .invalid:
            []
        }
    }

    private static func isReusable(
        certificatePEM: String,
        keyPEM: String,
        required: Set<GeneralName>,
        now: Date
    ) -> Bool {
        guard let certificate = try? Certificate(pemEncoded: certificatePEM),
            let privateKey = try? P256.Signing.PrivateKey(pemRepresentation: keyPEM),
            certificate.publicKey == Certificate.PublicKey(privateKey.publicKey),
            certificate.notValidBefore <= now,
            certificate.notValidAfter > now.addingTimeInterval(Self.renewalMargin),
            let alternativeNames = try? certificate.extensions.subjectAlternativeNames
        else { return false }
        return required.isSubset(of: Set(alternativeNames))
    }

    /// The addresses of every interface, for a certificate served on `0.0.0.0` or `::`.
    private static func interfaceNames() -> Set<GeneralName> {
        guard let devices = try? System.enumerateDevices() else { return [] }
        var names: Set<GeneralName> = []
        for device in devices {
            guard let ip = device.address?.ipAddress else { continue }
            // Link-local IPv6 addresses carry a zone ("%eth0") and are no use in a certificate.
            guard !ip.contains("%") else { continue }
            switch HostAddress(ip).kind {
            case .ipv4(let bytes), .ipv6(let bytes):
                names.insert(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            case .name, .invalid:
                continue
            }
        }
        return names
    }

    /// The machine's host name, when it is a valid DNS name.
    private static func machineName() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if case .name(let valid) = HostAddress(name).kind { return valid }
        return nil
    }

    // MARK: - Files

    /// Creates `path` (parents as needed) with mode 0700, or removes group/other bits from an existing folder;
    /// refuses a symbolic link or a file.
    static func ensurePrivateDirectory(_ path: String, key: String) throws(GatewayConfigurationError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw GatewayConfigurationError.fileSystem(key: key, reason: "cannot create \(path): \(error)")
        }
        // attributesOfItem does not follow a symbolic link: a link reports its own type.
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw GatewayConfigurationError.fileSystem(key: key, reason: "cannot inspect \(path): \(error)")
        }
        guard attributes[.type] as? FileAttributeType == .typeDirectory else {
            throw GatewayConfigurationError.fileSystem(key: key, reason: "\(path) is not a folder (or is a link)")
        }
        if (attributes[.posixPermissions] as? Int).map({ $0 & 0o777 }) != 0o700 {
            guard chmod(path, 0o700) == 0 else {
                throw GatewayConfigurationError.fileSystem(
                    key: key,
                    reason: "cannot restrict \(path) to 0700: \(Self.errnoText())"
                )
            }
        }
    }

    /// Writes `text` to a new temporary file with `mode`, syncs it, and renames it over `path`.
    private static func writeAtomically(
        _ text: String,
        to path: String,
        mode: mode_t,
        key: String
    ) throws(GatewayConfigurationError) {
        let temporary = path + ".tmp-\(getpid())"
        _ = unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw GatewayConfigurationError.fileSystem(key: key, reason: "cannot create \(temporary): \(errnoText())")
        }
        var failure: String?
        // The umask may have narrowed the mode; make it exact.
        if fchmod(fd, mode) != 0 { failure = "chmod: \(errnoText())" }
        var bytes = Array(text.utf8)[...]
        while failure == nil, !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                failure = "write: \(errnoText())"
            } else {
                bytes = bytes.dropFirst(written)
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(errnoText())" }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = "rename: \(errnoText())" }
        if let failure {
            _ = unlink(temporary)
            throw GatewayConfigurationError.fileSystem(key: key, reason: "cannot write \(path): \(failure)")
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

extension GatewayTLSMaterial {
    /// The leaf certificate's subject alternative names, as `DNS:<name>` and `IP:<address>` (for diagnostics and
    /// tests); `nil` when the certificate cannot be parsed.
    var subjectAlternativeNames: [String]? {
        guard let document = try? PEMDocument.parseMultiple(pemString: self.certificatePEM).first,
            let certificate = try? Certificate(pemDocument: document),
            let names = try? certificate.extensions.subjectAlternativeNames
        else { return nil }
        return names.map { name in
            switch name {
            case .dnsName(let dns):
                return "DNS:" + dns
            case .ipAddress(let octets):
                let bytes = Array(octets.bytes)
                if bytes.count == 4 { return "IP:" + bytes.map(String.init).joined(separator: ".") }
                return "IP:"
                    + stride(from: 0, to: bytes.count, by: 2)
                    .map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                    .joined(separator: ":")
            default:
                return "\(name)"
            }
        }
    }

    /// The leaf certificate's expiry; `nil` when it cannot be parsed.
    var notValidAfter: Date? {
        guard let document = try? PEMDocument.parseMultiple(pemString: self.certificatePEM).first,
            let certificate = try? Certificate(pemDocument: document)
        else { return nil }
        return certificate.notValidAfter
    }
}
