import Foundation
import GRDB
import Logging

@testable import KyukyuVault

/// Collects every log line (message and metadata, all levels) for leak checks.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { self.lock.withLock { self.lines.append(line) } }

    var text: String { self.lock.withLock { self.lines.joined(separator: "\n") } }

    var count: Int { self.lock.withLock { self.lines.count } }

    func logger(label: String = "kyukyu.vault.test") -> Logger {
        var logger = Logger(label: label) { label in CapturingLogHandler(label: label, capture: self) }
        logger.logLevel = .trace
        return logger
    }
}

struct CapturingLogHandler: LogHandler {
    let label: String
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        for (key, value) in event.metadata ?? [:] { merged[key] = value }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.capture.append("\(event.level) \(self.label): \(event.message) \(rendered)")
    }
}

/// A controllable audit clock: wall and monotonic time move together unless a test makes the wall jump.
final class TestClock: AuditClock, @unchecked Sendable {
    private let lock = NSLock()
    private var wall = Date(timeIntervalSince1970: 1_800_000_000)
    private var monotonic: UInt64 = 1_000_000_000
    private var boot = "boot-a"

    func now() -> AuditTimestamp {
        self.lock.withLock {
            // Each reading advances both clocks by 1 ms.
            self.wall = self.wall.addingTimeInterval(0.001)
            self.monotonic += 1_000_000
            return AuditTimestamp(wall: self.wall, monotonicNanoseconds: self.monotonic, bootID: self.boot)
        }
    }

    func advance(seconds: Double) {
        self.lock.withLock {
            self.wall = self.wall.addingTimeInterval(seconds)
            self.monotonic += UInt64(seconds * 1e9)
        }
    }

    func jumpWall(seconds: Double) { self.lock.withLock { self.wall = self.wall.addingTimeInterval(seconds) } }

    func reboot() {
        self.lock.withLock {
            self.boot = "boot-\(UUID().uuidString.prefix(8))"
            self.monotonic = 5_000_000_000
        }
    }
}

/// The permission bits of `path` itself (a symbolic link is not followed).
func permissionBits(_ path: String) -> mode_t {
    var info = stat()
    _ = lstat(path, &info)
    return info.st_mode & 0o777
}

func makeTemporaryDirectory(_ name: String = #function) throws -> String {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "kyukyu-vault-\(safe)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(
        atPath: path,
        withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700]
    )
    return path
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func makeMemoryVault(
    keyring: DeviceKeyring = .generate(),
    maximumAge: TimeInterval = 24 * 3600,
    clock: any AuditClock = TestClock(),
    capture: LogCapture = LogCapture()
) throws -> (IncidentVault, DatabaseQueue) {
    let queue = try VaultDatabase.makeInMemory()
    let vault = try IncidentVault(
        database: queue,
        keyring: keyring,
        configuration: .init(maximumAge: maximumAge),
        clock: clock,
        logger: capture.logger()
    )
    return (vault, queue)
}

let testCrew = CrewID("crew-0042")!

extension Data {
    func contains(bytes needle: Data) -> Bool {
        !needle.isEmpty && self.range(of: needle) != nil
    }
}

/// Byte encodings a leak could take.
func encodings(of marker: String) -> [(String, Data)] {
    var utf16LE = Data()
    var utf16BE = Data()
    for unit in marker.utf16 {
        utf16LE.append(UInt8(unit & 0xff))
        utf16LE.append(UInt8(unit >> 8))
        utf16BE.append(UInt8(unit >> 8))
        utf16BE.append(UInt8(unit & 0xff))
    }
    return [("UTF-8", Data(marker.utf8)), ("UTF-16LE", utf16LE), ("UTF-16BE", utf16BE)]
}
