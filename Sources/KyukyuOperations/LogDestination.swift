import Foundation
public import Logging

/// Where a program's logs go.
public enum LogDestination: String, Sendable, Hashable, CaseIterable {
    /// The journal when systemd connected the program's standard error to it (`$JOURNAL_STREAM`) and its socket
    /// exists, else standard error.
    case auto
    /// The systemd journal, structured (``JournalLogHandler``).
    case journal
    /// Standard error, one line per entry (swift-log's stream handler).
    case stderr

    /// The destination `auto` comes to in `environment`, with the journal's socket at `journalSocket`.
    public func resolved(
        environment: [String: String],
        journalSocket: String = JournalLogHandler.defaultSocket
    ) -> LogDestination {
        guard self == .auto else { return self }
        let connected = environment["JOURNAL_STREAM"].map { !$0.isEmpty } ?? false
        return connected && FileManager.default.fileExists(atPath: journalSocket) ? .journal : .stderr
    }

    /// Bootstraps swift-log for the whole process (once): every logger gets a handler for this destination at
    /// `level`.
    ///
    /// - Parameters:
    ///   - identifier: The program's name, the journal's `SYSLOG_IDENTIFIER`.
    ///   - level: The lowest level written.
    ///   - environment: The process environment, for `auto`.
    public func bootstrap(identifier: String, level: Logger.Level, environment: [String: String]) {
        let destination = resolved(environment: environment)
        LoggingSystem.bootstrap { label in
            switch destination {
            case .journal:
                var handler = JournalLogHandler(label: label, identifier: identifier)
                handler.logLevel = level
                return handler
            case .auto, .stderr:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
