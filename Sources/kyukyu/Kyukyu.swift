import ArgumentParser
import Foundation
import Logging

/// The gateway's command line: thin wiring over the library modules.
@main
struct Kyukyu: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu",
        abstract: "Myna Kyukyu field gateway: My Number card → eligibility → encrypted vault → hospital handoff.",
        subcommands: [CardCommand.self, FetchCommand.self, VaultCommand.self, AuditCommand.self]
    )
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Log level for stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    /// Sets up logging to stderr once and returns the root logger.
    func makeLogger(label: String = "kyukyu") -> Logger {
        let level = logLevel
        LoggingBootstrap.once {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: label)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Guards the process-wide logging bootstrap.
enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    static func once(_ body: () -> Void) {
        // Commands run on one task; this is only reached from the command's entry point.
        if !done {
            done = true
            body()
        }
    }
}

/// Writes a value as pretty JSON on stdout.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
    flushOutput()
}

/// Hands what was printed to the reader now: stdout is block-buffered when it is a pipe, and a script reading it
/// must get each section as it is printed, not at exit. (`fflush(nil)` flushes every output stream, so it needs
/// no reference to C's global `stdout`.)
func flushOutput() {
    fflush(nil)
}

/// Reads one line (a PIN) from standard input; it is never echoed or logged.
func readSecretLine() throws -> String {
    guard let line = readLine(strippingNewline: true), !line.isEmpty else {
        throw ValidationError("--pin-stdin was given but standard input had no PIN line")
    }
    return line
}
