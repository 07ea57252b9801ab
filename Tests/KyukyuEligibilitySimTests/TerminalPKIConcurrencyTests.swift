import Foundation
import KyukyuEligibilitySim
import Logging
import SwiftASN1
import Synchronization
import Testing
import X509

@Suite(.timeLimit(.minutes(2))) struct TerminalPKIConcurrencyTests {
    /// Stubs started at the same moment on a fresh folder must agree on one CA and one server certificate.
    @Test func concurrentFirstStartsAgreeOnOneCA() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("kyukyu-terminal-pki-race-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let results = Mutex<[(ca: String, server: String)]>([])
        let failures = Mutex<[String]>([])
        let threads = (0..<6).map { _ in
            Thread {
                do {
                    let pki = try TerminalPKI.loadOrCreate(directory: directory, logger: logger)
                    let server = try pki.serverCredentials(logger: logger)
                    let ca = try pki.caCertificatePEM
                    results.withLock { $0.append((ca, server.certificatePEM)) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        threads.forEach { $0.start() }
        while results.withLock({ $0.count }) + failures.withLock({ $0.count }) < threads.count {
            usleep(10_000)
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let all = results.withLock { $0 }
        #expect(Set(all.map(\.ca)).count == 1, "one CA")
        #expect(Set(all.map(\.server)).count == 1, "one server certificate")
        let final = try TerminalPKI.loadOrCreate(directory: directory, logger: logger)
        let server = try Certificate(pemEncoded: try final.serverCredentials(logger: logger).certificatePEM)
        #expect(server.issuer == final.caCertificate.subject)
    }
}
