import ArgumentParser
import Foundation
import KyukyuCrew
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `kyukyu-gateway crew add|list|disable|reset`: the crew accounts of this gateway (issue 8).
///
/// Passwords and PINs come from standard input (two lines: the password, then the PIN; prompted without echo on a
/// terminal), never from a flag, so they stay out of the shell history and the process list. Exit status: 0 done,
/// 1 failed (for example an account that exists already, or a locked database), 64 a usage error (a malformed
/// crew ID, a too-short password, missing input).
struct CrewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crew",
        abstract: "Manage the crew accounts that sign in to the gateway.",
        subcommands: [Add.self, List.self, Disable.self, Reset.self]
    )

    /// `crew add <crew-id>`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a crew account; prints its TOTP secret once.",
            discussion: """
                Reads two lines from standard input: the password (at least 10 characters), then the PIN \
                (4 to 6 digits) that unlocks the tablet after 5 idle minutes.
                """
        )

        @OptionGroup var store: CrewStoreOptions

        @Argument(help: "The crew ID: 2 to 32 characters of A-Z, 0-9 and '-' (lower case is upper-cased).")
        var crewID: String

        func validate() throws { _ = try CrewStoreOptions.canonical(self.crewID) }

        func run() async throws {
            let crewID = try CrewStoreOptions.canonical(self.crewID)
            let (password, pin) = try readPasswordAndPIN()
            let directory = try self.store.open(create: true)
            let enrolment = try await runCrew { () async throws(CrewError) in
                try await directory.add(crewID: crewID, password: password, pin: pin)
            }
            printEnrolment(enrolment, verb: "added")
        }
    }

    /// `crew list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the crew accounts (never a secret).")

        @OptionGroup var store: CrewStoreOptions

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            let directory = try self.store.open(create: false)
            let accounts = try await runCrew { () async throws(CrewError) in try await directory.list() }
            if self.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(accounts.map(AccountJSON.init)), as: UTF8.self))
                return
            }
            printTable(accounts)
        }
    }

    /// `crew disable <crew-id>`.
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a crew account and end its sessions (reset enables it again)."
        )

        @OptionGroup var store: CrewStoreOptions

        @Argument(help: "The crew ID.")
        var crewID: String

        func validate() throws { _ = try CrewStoreOptions.canonical(self.crewID) }

        func run() async throws {
            let crewID = try CrewStoreOptions.canonical(self.crewID)
            let directory = try self.store.open(create: false)
            try await runCrew { () async throws(CrewError) in try await directory.disable(crewID: crewID) }
            print("Crew account \(crewID) disabled; its sessions have ended.")
        }
    }

    /// `crew reset <crew-id>`.
    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a crew account a new password, PIN and TOTP secret; clears its lockout and enables it.",
            discussion: """
                Reads two lines from standard input: the new password, then the new PIN. Ends the account's \
                sessions; the old TOTP secret stops working.
                """
        )

        @OptionGroup var store: CrewStoreOptions

        @Argument(help: "The crew ID.")
        var crewID: String

        func validate() throws { _ = try CrewStoreOptions.canonical(self.crewID) }

        func run() async throws {
            let crewID = try CrewStoreOptions.canonical(self.crewID)
            let (password, pin) = try readPasswordAndPIN()
            let directory = try self.store.open(create: false)
            let enrolment = try await runCrew { () async throws(CrewError) in
                try await directory.reset(crewID: crewID, password: password, pin: pin)
            }
            printEnrolment(enrolment, verb: "reset")
        }
    }
}

/// Where the crew database and its key are.
struct CrewStoreOptions: ParsableArguments {
    @Option(
        name: [.customLong("state-directory"), .customLong("state-dir")],
        help: "The gateway's state folder (as serve's state.directory); the crew database is crew.sqlite in it."
    )
    var stateDirectory = "state/gateway"

    @Option(
        name: .customLong("crew-key-file"),
        help: "The 32-byte key that seals TOTP secrets (default: <state-dir>/crew-secret.key, made on first add)."
    )
    var keyFile: String?

    @Flag(help: "Log debug output to standard error.")
    var verbose = false

    var databasePath: String { self.stateDirectory + "/crew.sqlite" }

    var keyPath: String { self.keyFile ?? self.stateDirectory + "/" + CrewSecretKey.fileName }

    /// The canonical crew ID, or a usage error (exit 64).
    static func canonical(_ crewID: String) throws -> String {
        guard let canonical = CrewDirectory.canonicalCrewID(crewID) else {
            throw ValidationError("a crew ID is 2 to 32 characters of A-Z, 0-9 and '-'")
        }
        return canonical
    }

    /// Opens the crew database; with `create`, makes it and its key on first use, else both must exist.
    func open(create: Bool) throws -> CrewDirectory {
        if !create, !FileManager.default.fileExists(atPath: self.databasePath) {
            throw CrewCommandFailure(
                "no crew database at \(self.databasePath) (add a crew member first, or set --state-dir)"
            )
        }
        var logger = Logger(label: "kyukyu.crew")
        logger.logLevel = self.verbose ? .debug : .warning
        do {
            let key = try CrewSecretKey.load(path: self.keyPath, create: create)
            return try CrewDirectory.open(path: self.databasePath, secretKey: key, logger: logger)
        } catch {
            throw CrewCommandFailure(error.reason)
        }
    }
}

/// A failure at run time (not a usage error): `Error: …` on standard error, exit status 1.
struct CrewCommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a directory call; a refused input becomes a usage error (64), anything else a failure (1), both with the
/// error's reason only.
@discardableResult
private func runCrew<T>(_ body: () async throws(CrewError) -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        if error.code == .invalidInput { throw ValidationError(error.reason) }
        throw CrewCommandFailure(error.reason)
    }
}

/// Reads the password and the PIN: two lines of standard input, prompted for without echo on a terminal.
private func readPasswordAndPIN() throws -> (password: String, pin: String) {
    let interactive = isatty(STDIN_FILENO) != 0
    guard let password = readSecretLine(prompt: interactive ? "Password: " : nil),
        let pin = readSecretLine(prompt: interactive ? "PIN (4 to 6 digits): " : nil)
    else {
        throw ValidationError("standard input must hold two lines: the password, then the PIN")
    }
    return (password, pin)
}

/// One line of standard input without its line ending; on a terminal, with a prompt on standard error and echo off.
private func readSecretLine(prompt: String?) -> String? {
    var saved = termios()
    let echoOff = prompt != nil && tcgetattr(STDIN_FILENO, &saved) == 0
    if let prompt {
        FileHandle.standardError.write(Data(prompt.utf8))
    }
    if echoOff {
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
    }
    defer {
        if echoOff {
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
    }
    guard var line = readLine(strippingNewline: true) else { return nil }
    if line.hasSuffix("\r") { line.removeLast() }
    return line.isEmpty ? nil : line
}

private func printEnrolment(_ enrolment: CrewEnrolment, verb: String) {
    print(
        """
        Crew account \(enrolment.crewID) \(verb).
        TOTP secret (base32): \(enrolment.totpSecret)
        otpauth URI: \(enrolment.otpauthURI)
        Shown once: add it to the crew member's authenticator app now (TOTP, SHA-1, 6 digits, 30 s).
        """
    )
}

/// `crew list --json`: the API's spelling (`crewId`).
private struct AccountJSON: Encodable {
    var crewId: String
    var disabled: Bool
    var lockedUntil: Date?
    var failedSignIns: Int
    var createdAt: Date
    var lastSignInAt: Date?

    init(_ account: CrewAccount) {
        self.crewId = account.crewID
        self.disabled = account.disabled
        self.lockedUntil = account.lockedUntil
        self.failedSignIns = account.failedSignIns
        self.createdAt = account.createdAt
        self.lastSignInAt = account.lastSignInAt
    }
}

private func printTable(_ accounts: [CrewAccount]) {
    guard !accounts.isEmpty else {
        print("No crew accounts.")
        return
    }
    let formatter = ISO8601DateFormatter()
    let rows: [[String]] =
        [["CREW ID", "STATUS", "FAILED", "CREATED", "LAST SIGN-IN"]]
        + accounts.map { account in
            let status =
                account.disabled
                ? "disabled" : account.lockedUntil.map { "locked until \(formatter.string(from: $0))" } ?? "active"
            return [
                account.crewID,
                status,
                String(account.failedSignIns),
                formatter.string(from: account.createdAt),
                account.lastSignInAt.map(formatter.string(from:)) ?? "-",
            ]
        }
    let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}
