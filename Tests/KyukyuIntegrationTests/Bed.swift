import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuTestbed
import Logging
import Testing

/// The real parts every integration test shares: one private pcscd with vpcd readers, per test process.
///
/// libpcsclite reads `PCSCLITE_CSOCK_NAME` once per process, so the daemon is shared and restarted in place
/// (its socket symlink re-pointed) by the tests that stop it. Suites using it run serialized.
actor Bed {
    static let shared = Bed()

    /// `KYUKYU_TEST_BASE_PORT` moves it, so that two checkouts can run their suites side by side. Below Linux's
    /// ephemeral range (32768-60999), so that no outgoing connection can hold a port a test listens on.
    static let basePort = ProcessInfo.processInfo.environment["KYUKYU_TEST_BASE_PORT"].flatMap { Int($0) } ?? 20100
    /// The first reader: vpcd on `basePort`.
    static let readerName = "Kyukyu Sim 00 00"

    let logger = Logger(label: "kyukyu.test")
    private var daemon: PrivatePCSCD?

    /// Stable across runs, so a daemon left by a crashed run is found (by its pid file) and stopped.
    let workDirectory: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-it-\(Bed.basePort)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// The simulator's PKI: kept across runs, since RSA key generation is slow.
    nonisolated let pkiDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-it-pki").path

    /// Starts the daemon on first use.
    func pcscd() async throws -> PrivatePCSCD {
        if let daemon { return daemon }
        let daemon = try await PrivatePCSCD(
            basePort: Self.basePort,
            directory: workDirectory + "/pcscd",
            logger: logger
        )
        self.daemon = daemon
        return daemon
    }

    /// A fresh PC/SC service per test.
    nonisolated func service() -> PCSCService { PCSCService(threads: 4, logger: Logger(label: "kyukyu.test.pcsc")) }
}

/// Whether the real-parts tests can run here (root, pcscd, vpcd).
let realPartsAvailable = PrivatePCSCD.unavailableReason == nil

@discardableResult
/// Runs `body` with a simulated card on the first vpcd reader, the card already seen by pcscd.
func withSimulatedCard<T: Sendable>(
    _ configure: (inout CardSimulatorConfiguration) -> Void = { _ in },
    waitForCard: Bool = true,
    _ body: (CardSimulator, CardReader) async throws -> T
) async throws -> T {
    _ = try await Bed.shared.pcscd()
    var configuration = CardSimulatorConfiguration(port: Bed.basePort, dataDirectory: Bed.shared.pkiDirectory)
    configure(&configuration)
    let simulator = try CardSimulator(configuration: configuration, logger: Logger(label: "kyukyu.test.sim"))
    let runner = Task { try await simulator.run() }
    let service = Bed.shared.service()
    let reader = CardReader(service: service, logger: Logger(label: "kyukyu.test.card"))
    do {
        if waitForCard { _ = try await service.waitForCard(reader: Bed.readerName, timeout: .seconds(15)) }
        let result = try await body(simulator, reader)
        runner.cancel()
        _ = await runner.result
        try await waitForCardAbsent(service)
        await service.shutdown()
        return result
    } catch {
        runner.cancel()
        _ = await runner.result
        try? await waitForCardAbsent(service)
        await service.shutdown()
        throw error
    }
}

/// Waits until pcscd has seen the simulated card leave, so the next test starts from an empty reader.
func waitForCardAbsent(_ service: PCSCService) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        let statuses = try await service.readerStatuses()
        if !(statuses.first { $0.name == Bed.readerName }?.cardPresent ?? false) { return }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// Checks that an async call throws a ``CardError`` with the given code, and returns it.
@discardableResult
func expectCardError<T>(
    _ code: CardError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async -> CardError? {
    do {
        _ = try await body()
        Issue.record("expected CardError.\(code), got success", sourceLocation: sourceLocation)
    } catch let error as CardError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected CardError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
