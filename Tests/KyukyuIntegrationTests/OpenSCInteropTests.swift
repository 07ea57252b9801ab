import Crypto
import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuTestbed
import SwiftASN1
import Testing
import X509
import _CryptoExtras

/// OpenSC's JPKI driver must accept the simulated card: it lists the PINs with the right tries, reads the
/// same certificate our client reads, and signs through its PKCS#11 module with a signature that verifies.
extension ThroughPCSCD {
    @Suite("OpenSC interop")
    struct OpenSCInterop {
        static let pkcs11Module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

        @Test func pkcs15ToolListsPINsWithTriesLeftAndReadsTheCertificate() async throws {
            try await withSimulatedCard({ $0.authPINTriesLeft = 2 }) { simulator, reader in
                let pins = try await Commands.run("/usr/bin/pkcs15-tool", ["--list-pins"])
                #expect(pins.status == 0, "\(pins.stderr)")
                let tries = Self.triesLeft(in: pins.stdout)
                #expect(tries["User Authentication PIN"] == 2, "\(pins.stdout)")
                #expect(tries["Digital Signature PIN"] == 5, "\(pins.stdout)")

                let read = try await Commands.run("/usr/bin/pkcs15-tool", ["--read-certificate", "01"])
                #expect(read.status == 0, "\(read.stderr)")
                let pem = try PEMDocument(pemString: read.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
                #expect(pem.derBytes == (await simulator.userAuthCertificateDER))
                let ours = try await reader.readAuthenticationCertificate(reader: Bed.readerName)
                #expect(ours.der == pem.derBytes, "our client and OpenSC read the same certificate")
            }
        }

        @Test func pkcs11SignatureWithTheAuthKeyVerifiesWithTheCertificate() async throws {
            try await withSimulatedCard { simulator, _ in
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-opensc-\(getpid())")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: dir) }
                let message = Array("SYNTHETIC challenge for OpenSC".utf8)
                try Data(message).write(to: dir.appendingPathComponent("data"))
                let sign = try await Commands.run(
                    "/usr/bin/pkcs11-tool",
                    [
                        "--module", Self.pkcs11Module, "--slot", "0", "--login", "--pin", "1234", "--sign",
                        "-m", "SHA256-RSA-PKCS", "--id", "01",
                        "-i", dir.appendingPathComponent("data").path, "-o", dir.appendingPathComponent("sig").path,
                    ]
                )
                #expect(sign.status == 0, "\(sign.stdout) \(sign.stderr)")
                let signature = try Data(contentsOf: dir.appendingPathComponent("sig"))
                #expect(signature.count == 256)
                let certificate = try Certificate(derEncoded: await simulator.userAuthCertificateDER)
                let key = try #require(_RSA.Signing.PublicKey(certificate.publicKey))
                #expect(
                    key.isValidSignature(
                        _RSA.Signing.RSASignature(rawRepresentation: signature),
                        for: message,
                        padding: .insecurePKCS1v1_5
                    )
                )
                #expect(await simulator.authPINTriesLeft == 3, "OpenSC's login spent no try")
            }
        }

        /// `PIN [label]` blocks with `Tries left : N` lines.
        static func triesLeft(in output: String) -> [String: Int] {
            var result: [String: Int] = [:]
            var current: String?
            for line in output.split(separator: "\n") {
                if line.hasPrefix("PIN ["), let end = line.lastIndex(of: "]") {
                    current = String(line[line.index(line.startIndex, offsetBy: 5)..<end])
                } else if let current, line.contains("Tries left"),
                    let value = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }
                    )
                {
                    result[current] = value
                }
            }
            return result
        }
    }
}
