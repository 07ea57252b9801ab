import Foundation
import KyukyuDomain
import Testing

@testable import KyukyuCard

/// Inputs the fuzzing harnesses found (Tests/fuzz/regressions, docs/fuzzing.md), each fed to the parser that failed.
@Suite struct FuzzRegressionTests {
    static func regression(_ harness: String, _ name: String) throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return Array(try Data(contentsOf: root.appendingPathComponent("fuzz/regressions/\(harness)/\(name)")))
    }

    /// A card certificate whose RSA modulus BoringSSL refuses (fuzz-card-certificate): swift-crypto 3.12.3 freed the
    /// key twice when its PKCS#1 parse failed, and the process aborted. The certificate is now refused as malformed.
    @Test(.timeLimit(.minutes(1)))
    func rsaKeyBoringSSLRefuses() throws {
        let der = try Self.regression("fuzz-card-certificate", "rsa-modulus-refused-by-boringssl.der")
        let error = #expect(throws: CardError.self) {
            try CertificateSummary(der: der, tokenType: .individualNumberCard)
        }
        #expect(error?.code == .malformedResponse)
        // Refused before swift-crypto sees the key (which, before the check, is where the key was freed twice: only
        // an ASan build shows it, as `.build-fuzz/debug/fuzz-card-certificate` on this file does).
        #expect(throws: CardError.self) { try CertificateKeyCheck.refuseUnusableRSAKey(der) }
    }

    /// The synthetic holder's real certificate passes the check (Tests/fuzz/corpus, from the simulator's test PKI).
    @Test(.timeLimit(.minutes(1)))
    func usableRSAKeyPasses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let der = Array(
            try Data(contentsOf: root.appendingPathComponent("fuzz/corpus/fuzz-card-certificate/auth-holder-1.der"))
        )
        try CertificateKeyCheck.refuseUnusableRSAKey(der)
        #expect(try CertificateSummary(der: der, tokenType: .individualNumberCard).der == der)
    }
}
