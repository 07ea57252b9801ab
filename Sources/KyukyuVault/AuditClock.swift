import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A reading of both clocks, taken together for each audit entry.
public struct AuditTimestamp: Hashable, Sendable, Codable {
    /// Wall-clock time (can be set, can jump).
    public var wall: Date
    /// Monotonic time since boot in nanoseconds (`CLOCK_BOOTTIME`: counts suspend, never set).
    public var monotonicNanoseconds: UInt64
    /// The kernel boot id; monotonic readings are comparable only within one boot.
    public var bootID: String

    /// Creates a timestamp.
    public init(wall: Date, monotonicNanoseconds: UInt64, bootID: String) {
        self.wall = wall
        self.monotonicNanoseconds = monotonicNanoseconds
        self.bootID = bootID
    }
}

/// The source of audit timestamps; a test double can simulate clock jumps and reboots.
public protocol AuditClock: Sendable {
    /// Reads the wall and monotonic clocks.
    func now() -> AuditTimestamp
}

/// The system clocks: `CLOCK_REALTIME`, `CLOCK_BOOTTIME` and `/proc/sys/kernel/random/boot_id`.
public struct SystemAuditClock: AuditClock {
    private let bootID: String

    /// Reads the boot id once.
    public init() {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown"
        self.bootID = text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Reads both clocks.
    public func now() -> AuditTimestamp {
        var spec = timespec()
        #if os(Linux)
            clock_gettime(CLOCK_BOOTTIME, &spec)
        #else
            clock_gettime(CLOCK_MONOTONIC, &spec)
        #endif
        let monotonic = UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
        return AuditTimestamp(wall: Date(), monotonicNanoseconds: monotonic, bootID: self.bootID)
    }
}
