import Foundation
public import Logging

/// A swift-log handler that writes structured entries to the systemd journal over its native protocol
/// (`systemd.journal-fields(7)`), one datagram per entry to `/run/systemd/journal/socket`.
///
/// Each entry has `MESSAGE`, `PRIORITY` (syslog's levels), `SYSLOG_IDENTIFIER`, `CODE_FILE`/`CODE_LINE`/`CODE_FUNC`,
/// `KYUKYU_LOGGER` (the logger's label) and one field per metadata key: `kyukyu.incident` becomes
/// `KYUKYU_INCIDENT`, so `journalctl KYUKYU_INCIDENT=…` shows one incident's lines. The programs put no patient
/// data in messages or metadata (a test searches every log of a drill for every synthetic patient's details); this
/// handler adds none. A datagram that cannot be sent (the journal restarting) is written to standard error instead,
/// so nothing is lost silently.
public struct JournalLogHandler: LogHandler {
    /// The journal's native socket.
    public static let defaultSocket = "/run/systemd/journal/socket"

    private let label: String
    private let identifier: String
    private let socket: String
    private let fallback: @Sendable (String) -> Void

    /// The level below which entries are dropped.
    public var logLevel: Logger.Level = .info
    /// Metadata added to every entry of this logger.
    public var metadata: Logger.Metadata = [:]
    /// Not used: every entry is structured.
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler for the logger `label` of the program `identifier`.
    ///
    /// - Parameters:
    ///   - label: The logger's label (`kyukyu.gateway`).
    ///   - identifier: The program, as `SYSLOG_IDENTIFIER` (`kyukyu-gateway`).
    ///   - socket: The journal's socket (a test binds its own).
    ///   - fallback: Where an entry goes when the journal cannot take it (standard error by default).
    public init(
        label: String,
        identifier: String,
        socket: String = JournalLogHandler.defaultSocket,
        fallback: @escaping @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    ) {
        self.label = label
        self.identifier = identifier
        self.socket = socket
        self.fallback = fallback
    }

    /// The metadata value for `key`.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one entry.
    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var fields: [(String, String)] = [
            ("MESSAGE", "\(event.message)"),
            ("PRIORITY", String(Self.priority(event.level))),
            ("SYSLOG_IDENTIFIER", identifier),
            ("KYUKYU_LOGGER", label),
            ("CODE_FILE", event.file),
            ("CODE_LINE", String(event.line)),
            ("CODE_FUNC", event.function),
        ]
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append((Self.fieldName(key), "\(value)"))
        }
        do {
            try UnixDatagram.send(Self.encode(fields), to: socket)
        } catch {
            fallback("\(identifier) \(event.level) \(label): \(event.message) \(Self.describe(merged))")
        }
    }

    /// syslog's priority for a swift-log level.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// A journal field name for a metadata key: upper case, `A-Z0-9_` only, starting with a letter, at most 64
    /// characters (`kyukyu.onshi.category` → `KYUKYU_ONSHI_CATEGORY`).
    static func fieldName(_ key: String) -> String {
        var name = String(
            key.uppercased().unicodeScalars.map { scalar -> Character in
                let isAllowed = ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                return isAllowed ? Character(scalar) : "_"
            }
        )
        if name.first.map({ !("A"..."Z").contains($0) }) ?? true { name = "KYUKYU_" + name }
        return String(name.prefix(64))
    }

    /// The native protocol: `NAME=value\n`, or, for a value with a newline, `NAME\n`, its length as 64-bit
    /// little-endian, the value and `\n`.
    static func encode(_ fields: [(String, String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in fields {
            let utf8 = Array(value.utf8)
            bytes += Array(name.utf8)
            if utf8.contains(UInt8(ascii: "\n")) {
                bytes.append(UInt8(ascii: "\n"))
                withUnsafeBytes(of: UInt64(utf8.count).littleEndian) { bytes += $0 }
                bytes += utf8
            } else {
                bytes.append(UInt8(ascii: "="))
                bytes += utf8
            }
            bytes.append(UInt8(ascii: "\n"))
        }
        return bytes
    }

    private static func describe(_ metadata: Logger.Metadata) -> String {
        metadata.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
