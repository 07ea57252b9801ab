import Foundation
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuGateway
import Logging
import SwiftASN1
import Testing
import X509

/// A device certificate renewed while the gateway runs, through the real parts: the terminal makes its key and
/// request (`DeviceCertificates`), the stub's CA signs it, the install checks it, and onshi's transport takes it
/// into use for its next connection (what SIGHUP does in the gateway) against the real stub over mutual TLS.
@Suite("Device certificates: request, install, rotation without a restart", .serialized, .timeLimit(.minutes(2)))
struct CertificateRotationTests {
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-rotation-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("a certificate from another CA is refused by onshi; the installed renewal is used after a reload")
    func rotationAgainstTheStub() async throws {
        try await withOnshi { bed in
            let directory = try folder()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let device = "ambulance-rotation-01"
            let stubPKI = try TerminalPKI.loadOrCreate(directory: bed.tlsDirectory, logger: Self.quiet)
            // Start with a certificate of another CA (as a device moved between regions would have), trusting the
            // stub's server CA: onshi refuses the handshake.
            let foreign = try TerminalPKI.loadOrCreate(directory: directory + "/foreign-ca", logger: Self.quiet)
            try foreign.writeClientCertificate(deviceID: device, to: directory)
            try stubPKI.caCertificatePEM.write(toFile: directory + "/ca.cert.pem", atomically: true, encoding: .utf8)
            let store = DeviceCertificates(directory: directory, deviceID: device)
            let transport = try HTTPOnshiTransport(
                baseURL: "https://127.0.0.1:\(bed.port)",
                tls: TerminalTLSFiles(
                    certificatePath: store.certificatePath,
                    keyPath: store.keyPath,
                    trustRootsPath: store.caPath
                ),
                logger: Self.quiet
            )
            let health = OnshiHTTPRequest(method: .get, path: "/onshi/v1/health")
            await #expect(throws: (any Error).self) { _ = try await transport.exchange(health, maxBodyBytes: 4096) }

            // The renewal: a key that never leaves the device, signed by onshi's CA, checked and installed.
            let request = try store.request()
            #expect(try Self.mode(store.pendingKeyPath) == 0o600)
            let signed = try stubPKI.signRequest(request, days: 30)
            let installed = try await store.install(certificatePEM: signed)
            #expect(!FileManager.default.fileExists(atPath: store.pendingKeyPath))
            #expect(try Self.mode(store.keyPath) == 0o600)
            let notAfter = try transport.reloadTLS()
            #expect(notAfter == installed.notValidAfter)
            // An HTTP answer at all means the handshake passed: the stub's router has no health route (404) and
            // answers past mutual TLS only.
            let answer = try await transport.exchange(health, maxBodyBytes: 4096)
            #expect(answer.status == 404)

            // A certificate copied in without its key is refused at the reload; the pair in use stays in use.
            let other = DeviceCertificates(directory: directory + "/other", deviceID: device)
            let otherSigned = try stubPKI.signRequest(try other.request())
            try otherSigned.write(toFile: store.certificatePath, atomically: true, encoding: .utf8)
            #expect(throws: EligibilityError.self) { try transport.reloadTLS() }
            #expect(try await transport.exchange(health, maxBodyBytes: 4096).status == 404)
            await transport.shutdown()
        }
    }

    @Test("install refuses another key, another device, another CA and an expired certificate, changing nothing")
    func installRefusals() async throws {
        let directory = try folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try TerminalPKI.loadOrCreate(directory: directory + "/ca", logger: Self.quiet)
        let store = DeviceCertificates(directory: directory + "/tls", deviceID: "ambulance-07")
        _ = try store.request()
        let pendingKey = try String(contentsOfFile: store.pendingKeyPath, encoding: .utf8)

        // Issued for another request of this device (the pending key is not its key).
        let elsewhere = DeviceCertificates(directory: directory + "/elsewhere", deviceID: "ambulance-07")
        await #expect(throws: DeviceCertificateError.wrongKey("")) {
            try await store.install(certificatePEM: try pki.signRequest(try elsewhere.request()))
        }
        // Another device's name on this device's key: sign a request made with the pending key under another CN.
        let renamed = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName("ambulance-08") },
            privateKey: Certificate.PrivateKey(pemEncoded: pendingKey),
            attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        await #expect(throws: DeviceCertificateError.wrongSubject("")) {
            try await store.install(certificatePEM: try pki.signRequest(try renamed.serializeAsPEM().pemString))
        }
        // Signed by another CA, presented with that CA: not onshi's; with no CA at all in the folder: refused too.
        let otherCA = try TerminalPKI.loadOrCreate(directory: directory + "/other-ca", logger: Self.quiet)
        let request = try String(contentsOfFile: store.requestPath, encoding: .utf8)
        let foreignLeaf = try otherCA.signRequest(request)
        try pki.caCertificatePEM.write(toFile: store.caPath, atomically: true, encoding: .utf8)
        let leafOnly = String(foreignLeaf[..<foreignLeaf.range(of: "-----END CERTIFICATE-----")!.upperBound])
        await #expect(throws: DeviceCertificateError.untrusted("")) {
            try await store.install(certificatePEM: leafOnly)
        }
        // Valid today, but not on the day it is installed (a clock years ahead).
        let good = try pki.signRequest(request, days: 30)
        await #expect(throws: DeviceCertificateError.untrusted("")) {
            try await store.install(certificatePEM: good, now: Date().addingTimeInterval(90 * 86_400))
        }
        #expect(!FileManager.default.fileExists(atPath: store.certificatePath), "a refused install wrote a file")
        #expect(try String(contentsOfFile: store.pendingKeyPath, encoding: .utf8) == pendingKey)

        // And the right one goes in.
        try await store.install(certificatePEM: good)
        #expect(FileManager.default.fileExists(atPath: store.certificatePath))
        #expect(try String(contentsOfFile: store.keyPath, encoding: .utf8) == pendingKey)
    }

    static func mode(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }
}
