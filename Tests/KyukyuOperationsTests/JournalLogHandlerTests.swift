import Foundation
import KyukyuTestbed
import Logging
import Synchronization
import Testing

@testable import KyukyuOperations

@Suite("journal logs")
struct JournalLogHandlerTests {
    /// Parses the journal's native protocol back into fields.
    static func fields(_ bytes: [UInt8]) -> [String: String] {
        var fields: [String: String] = [:]
        var index = 0
        while index < bytes.count {
            let end = bytes[index...].firstIndex { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") } ?? bytes.count
            let name = String(decoding: bytes[index..<end], as: UTF8.self)
            if end < bytes.count, bytes[end] == UInt8(ascii: "=") {
                let valueEnd = bytes[(end + 1)...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                fields[name] = String(decoding: bytes[(end + 1)..<valueEnd], as: UTF8.self)
                index = valueEnd + 1
            } else {
                var length: UInt64 = 0
                for (shift, byte) in bytes[(end + 1)..<(end + 9)].enumerated() { length |= UInt64(byte) << (8 * shift) }
                let start = end + 9
                fields[name] = String(decoding: bytes[start..<(start + Int(length))], as: UTF8.self)
                index = start + Int(length) + 1
            }
        }
        return fields
    }

    @Test("an entry is structured: message, priority, identifier and one field per metadata key")
    func structuredEntry() throws {
        let sink = try DatagramSink()
        var logger = Logger(label: "kyukyu.gateway") { label in
            JournalLogHandler(label: label, identifier: "kyukyu-gateway", socket: sink.path)
        }
        logger.logLevel = .debug
        logger[metadataKey: "kyukyu.incident"] = "INC-0001"
        logger.warning("category timed out", metadata: ["kyukyu.onshi.category": "medications"])
        let fields = Self.fields(try #require(sink.receive()))
        #expect(fields["MESSAGE"] == "category timed out")
        #expect(fields["PRIORITY"] == "4")
        #expect(fields["SYSLOG_IDENTIFIER"] == "kyukyu-gateway")
        #expect(fields["KYUKYU_LOGGER"] == "kyukyu.gateway")
        #expect(fields["KYUKYU_INCIDENT"] == "INC-0001")
        #expect(fields["KYUKYU_ONSHI_CATEGORY"] == "medications")
        #expect(fields["CODE_LINE"].flatMap(Int.init) != nil)
    }

    @Test("a message with a newline is sent in the binary form, whole")
    func multiLineMessage() throws {
        let sink = try DatagramSink()
        let logger = Logger(label: "kyukyu.hospital") { label in
            JournalLogHandler(label: label, identifier: "kyukyu-hospital", socket: sink.path)
        }
        logger.error("first line\nsecond line")
        let fields = Self.fields(try #require(sink.receive()))
        #expect(fields["MESSAGE"] == "first line\nsecond line")
        #expect(fields["PRIORITY"] == "3")
    }

    @Test("below the level nothing is sent; with no journal the entry goes to the fallback, not nowhere")
    func levelAndFallback() throws {
        let lines = Mutex<[String]>([])
        var handler = JournalLogHandler(
            label: "kyukyu.gateway",
            identifier: "kyukyu-gateway",
            socket: "/nonexistent/journal.sock",
            fallback: { line in lines.withLock { $0.append(line) } }
        )
        handler.logLevel = .notice
        let logger = Logger(label: "kyukyu.gateway") { _ in handler }
        logger.info("not written")
        logger.notice("written", metadata: ["kyukyu.incident": "INC-0002"])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        #expect(written.first?.contains("written") == true)
        #expect(written.first?.contains("kyukyu.incident=INC-0002") == true)
    }

    @Test("metadata keys become valid journal field names")
    func fieldNames() {
        #expect(JournalLogHandler.fieldName("kyukyu.onshi.category") == "KYUKYU_ONSHI_CATEGORY")
        #expect(JournalLogHandler.fieldName("1st") == "KYUKYU_1ST")
        #expect(JournalLogHandler.fieldName("_private") == "KYUKYU__PRIVATE")
        #expect(JournalLogHandler.fieldName(String(repeating: "a", count: 100)).count == 64)
    }

    @Test("auto goes to the journal only when systemd connected standard error to it")
    func autoDestination() throws {
        let sink = try DatagramSink()
        #expect(LogDestination.auto.resolved(environment: [:], journalSocket: sink.path) == .stderr)
        #expect(
            LogDestination.auto.resolved(environment: ["JOURNAL_STREAM": "8:123"], journalSocket: sink.path)
                == .journal
        )
        #expect(
            LogDestination.auto.resolved(environment: ["JOURNAL_STREAM": "8:123"], journalSocket: "/nonexistent")
                == .stderr
        )
        #expect(
            LogDestination.stderr.resolved(environment: ["JOURNAL_STREAM": "8:1"], journalSocket: sink.path) == .stderr
        )
    }
}
