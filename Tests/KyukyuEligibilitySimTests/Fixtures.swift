import Crypto
import Foundation
import KyukyuCardSim
import KyukyuEligibilitySim
import KyukyuOnshi
import Logging
import _CryptoExtras

/// One card PKI and one terminal PKI for the whole test run (RSA key generation is slow).
enum Fixture {
    static let root: String = {
        // A fixed folder: the PKIs (slow RSA keys) are reused across runs; TestPKI locks it against parallel runs.
        let path = NSTemporaryDirectory() + "kyukyu-elig-tests"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static let logger: Logger = {
        var logger = Logger(label: "kyukyu.elig.tests")
        logger.logLevel = .warning
        return logger
    }()

    static let pki: TestPKI = try! TestPKI.loadOrCreate(directory: root + "/pki", logger: logger)
    /// Another CA, for "wrong CA" tests.
    static let otherPKI: TestPKI = try! TestPKI.loadOrCreate(directory: root + "/other-pki", logger: logger)
    static let terminal: TerminalPKI = try! TerminalPKI.loadOrCreate(directory: root + "/tls", logger: logger)

    static func holder(_ n: Int, _ validity: CertificateValidity = .valid) -> HolderCredentials {
        try! pki.holder(n, validity: validity)
    }

    static let header = MessageHeader(
        processedAt: Date(timeIntervalSince1970: 1_795_000_000),
        medicalInstitutionCode: "9912345678"
    )

    static func service(
        revocations: RevocationList = RevocationList(),
        clock: @escaping @Sendable () -> Date = { Date() }
    ) -> EligibilityService {
        _ = pki
        return EligibilityService(
            validator: try! PatientCertificateValidator(pkiDirectory: root + "/pki"),
            revocations: revocations,
            configuration: .init(populationSize: 40),
            logger: logger,
            clock: clock
        )
    }

    static func sign(_ nonce: [UInt8], with credentials: HolderCredentials) -> [UInt8] {
        let key = try! _RSA.Signing.PrivateKey(derRepresentation: credentials.userAuthPrivateKeyDER)
        return Array(try! key.signature(for: SHA256.hash(data: nonce), padding: .insecurePKCS1v1_5).rawRepresentation)
    }

    static func serial(of der: [UInt8]) -> String {
        let manifest = try! TestPKIManifest.load(directory: root + "/pki")!
        let sha = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined()
        for entry in manifest.holders.values {
            for cert in entry.userAuthCertificates.values where cert.sha256 == sha { return cert.serial }
        }
        fatalError("no such certificate")
    }
}

/// A clock tests can move.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date = Date()) {
        self.current = start
    }

    var now: Date {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.current
    }

    func advance(_ seconds: TimeInterval) {
        self.lock.lock()
        self.current = self.current.addingTimeInterval(seconds)
        self.lock.unlock()
    }
}
