import Foundation
import HummingbirdOTP
import InMemoryLogging
import Logging
import Synchronization
import Testing

@testable import KyukyuCrew

/// A wall clock that only moves when a test moves it. Starts in the middle of a 30 s TOTP step.
final class ManualClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_800_000_015))

    func now() -> Date { self.current.withLock { $0 } }

    func advance(seconds: Double) { self.current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Keeps every audit event.
final class AuditRecorder: CrewAuditSink {
    private let stored = Mutex<[CrewAuditEvent]>([])

    func record(_ event: CrewAuditEvent) async { self.stored.withLock { $0.append(event) } }

    var events: [CrewAuditEvent] { self.stored.withLock { $0 } }

    func events(_ action: CrewAuditEvent.Action) -> [CrewAuditEvent] { self.events.filter { $0.action == action } }
}

/// Fast bcrypt for unit tests; every other rule as in production.
extension CrewDirectory.Policy {
    static let fast = CrewDirectory.Policy(bcryptCost: 4)
}

/// A real crew database in a fresh temporary folder, with a manual clock, an audit recorder and in-memory logs.
/// The folder is removed when the fixture goes.
final class CrewFixture: Sendable {
    let root: String
    let stateDirectory: String
    let databasePath: String
    let keyPath: String
    let clock: ManualClock
    let audit: AuditRecorder
    let logs: InMemoryLogHandler
    let policy: CrewDirectory.Policy
    let directory: CrewDirectory

    init(policy: CrewDirectory.Policy = .fast, name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let root = NSTemporaryDirectory() + "kyukyu-crew-\(safe)-\(UUID().uuidString.prefix(8))"
        let stateDirectory = root + "/state/gateway"
        let keyPath = stateDirectory + "/" + CrewSecretKey.fileName
        let clock = ManualClock()
        let audit = AuditRecorder()
        let logs = InMemoryLogHandler()
        self.root = root
        self.stateDirectory = stateDirectory
        self.databasePath = stateDirectory + "/crew.sqlite"
        self.keyPath = keyPath
        self.clock = clock
        self.audit = audit
        self.logs = logs
        self.policy = policy
        self.directory = try CrewDirectory.open(
            path: stateDirectory + "/crew.sqlite",
            secretKey: try CrewSecretKey.load(path: keyPath, create: true),
            policy: policy,
            now: { clock.now() },
            logger: Self.logger(logs),
            audit: audit
        )
    }

    deinit { try? FileManager.default.removeItem(atPath: self.root) }

    /// A second directory over the same file and key: the gateway after a restart.
    func reopen(policy: CrewDirectory.Policy? = nil) throws -> CrewDirectory {
        try CrewDirectory.open(
            path: self.databasePath,
            secretKey: try CrewSecretKey.load(path: self.keyPath, create: false),
            policy: policy ?? self.policy,
            now: { [clock] in clock.now() },
            logger: Self.logger(self.logs),
            audit: self.audit
        )
    }

    static func logger(_ handler: InMemoryLogHandler) -> Logger {
        var logger = Logger(label: "kyukyu.crew.test") { _ in handler }
        logger.logLevel = .trace
        return logger
    }

    /// Every log line, message and metadata, as one text.
    var logText: String {
        self.logs.entries.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
    }

    /// The authenticator app's code for `enrolment` at the clock's time, `steps` steps away.
    func code(_ enrolment: CrewEnrolment, steps: Int = 0) -> String {
        authenticatorCode(enrolment, at: self.clock.now().addingTimeInterval(Double(steps * 30)))
    }

    /// Adds the synthetic crew member `A1-TEST` (obviously synthetic credentials).
    func addCrew(
        _ crewID: String = "A1-TEST",
        password: String = testPassword,
        pin: String = testPIN
    ) async throws -> CrewEnrolment {
        try await self.directory.add(crewID: crewID, password: password, pin: pin)
    }

    /// Adds `A1-TEST` and signs it in.
    func signedIn() async throws -> (CrewEnrolment, CrewSession) {
        let enrolment = try await self.addCrew()
        let session = try await self.directory.signIn(
            crewID: "A1-TEST",
            password: testPassword,
            totp: self.code(enrolment)
        )
        return (enrolment, session)
    }

    /// The bytes of the database file and its `-wal` and `-shm` files.
    func databaseBytes() -> Data {
        var bytes = Data()
        for suffix in ["", "-wal", "-shm"] {
            if let data = FileManager.default.contents(atPath: self.databasePath + suffix) { bytes.append(data) }
        }
        return bytes
    }
}

let testPassword = "synthetic-pass-0001"
let testPIN = "739214"

/// What an authenticator app computes from the enrolment's base32 secret: decodes it on its own (not with the code
/// under test) and runs HummingbirdOTP's TOTP over the bytes.
func authenticatorCode(_ enrolment: CrewEnrolment, at date: Date) -> String {
    let key = base32Decode(enrolment.totpSecret)
    let value = TOTP(secret: String(decoding: key, as: UTF8.self)).compute(date: date)
    let digits = String(value)
    return String(repeating: "0", count: 6 - digits.count) + digits
}

/// RFC 4648 base32 decoding, unpadded, written independently of the module's encoder.
func base32Decode(_ text: String) -> [UInt8] {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    var bits = ""
    for character in text where character != "=" {
        let index = alphabet.firstIndex(of: character)!
        let binary = String(index, radix: 2)
        bits += String(repeating: "0", count: 5 - binary.count) + binary
    }
    var bytes: [UInt8] = []
    var start = bits.startIndex
    while bits.distance(from: start, to: bits.endIndex) >= 8 {
        let end = bits.index(start, offsetBy: 8)
        bytes.append(UInt8(bits[start..<end], radix: 2)!)
        start = end
    }
    return bytes
}

/// The permission bits of `path` itself (a symbolic link is not followed).
func permissionBits(_ path: String) -> mode_t {
    var info = stat()
    _ = lstat(path, &info)
    return info.st_mode & 0o777
}

/// Expects `body` to throw a ``CrewError`` with `code`, and returns it.
@discardableResult
func expectCrewError<T>(
    _ code: CrewError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws(CrewError) -> T
) async -> CrewError? {
    do {
        _ = try await body()
        Issue.record("expected CrewError.\(code), got a result", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    }
}
