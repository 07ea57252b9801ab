import ArgumentParser
import Foundation
import KyukyuCard
import KyukyuDomain
import Logging

/// `kyukyu card …`: the card reader from the crew's side.
struct CardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card",
        abstract: "Read the patient's My Number card or smartphone credential through PC/SC.",
        subcommands: [Status.self, Read.self, Attributes.self]
    )

    /// Options shared by the card commands.
    struct ReaderOptions: ParsableArguments {
        @Option(help: "Reader name (or a prefix of it). Default: the reader with a card on it.")
        var reader: String?

        @Flag(help: "Print JSON on stdout instead of text.")
        var json = false

        @Option(
            help: """
                Wait up to this many seconds (0 to \(Int(Self.maximumWait)), fractions allowed) for a card to be \
                placed on the reader. Anything else is refused before the reader is touched (exit 64).
                """
        )
        var wait: Double = 0

        /// The longest `--wait` accepted: one hour.
        static let maximumWait: Double = 3600

        func validate() throws {
            guard wait.isFinite, (0...Self.maximumWait).contains(wait) else {
                throw ValidationError(
                    "--wait takes a number of seconds from 0 to \(Int(Self.maximumWait)); \(wait) is not one"
                )
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Readers, card present, token type and tries left on the auth PIN (spends no try)."
        )
        @OptionGroup var options: ReaderOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await withCardReader(global: global, json: options.json) { reader in
                try await waitForCard(reader, options)
                let reports = try await reader.status(reader: options.reader)
                if options.json {
                    try printJSON(reports)
                } else if reports.isEmpty {
                    print("No card reader is connected.")
                } else {
                    for report in reports {
                        print("Reader:   \(report.reader)")
                        guard report.cardPresent else {
                            print("  Card:   none")
                            continue
                        }
                        print("  Card:   present (\(report.interface ?? "?"), ATR \(report.atr ?? "?"))")
                        if let token = report.tokenType { print("  Token:  \(token.displayName)") }
                        if let tries = report.authPINTriesLeft {
                            print(
                                "  Auth PIN tries left: \(tries)\(tries == 0 ? " (LOCKED)" : tries == 1 ? " (last try)" : "")"
                            )
                        }
                        if let problem = report.problem { print("  Problem: \(problem)") }
                    }
                }
            }
        }
    }

    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the user-authentication certificate (subject, serial, issuer, validity, token type)."
        )
        @OptionGroup var options: ReaderOptions
        @OptionGroup var global: GlobalOptions

        @Flag(help: "Also print the certificate as PEM.")
        var pem = false

        @Flag(help: "Read the user-authentication PIN from stdin and verify it (Android credentials require it).")
        var pinStdin = false

        @Flag(help: "Allow spending the PIN's last try (a wrong PIN then locks it).")
        var confirmLastTry = false

        func run() async throws {
            let secret = pinStdin ? try readSecretLine() : nil
            try await withCardReader(global: global, json: options.json) { reader in
                let pin = try secret.map { try CardPIN($0, kind: .userAuthentication) }
                try await waitForCard(reader, options)
                let summary = try await reader.readAuthenticationCertificate(
                    reader: options.reader,
                    pin: pin,
                    confirmLastTry: confirmLastTry
                )
                if options.json {
                    try printJSON(CertificateOutput(summary, includePEM: pem))
                } else {
                    let formatter = ISO8601DateFormatter()
                    print("Token:     \(summary.tokenType.displayName)")
                    print("Subject:   \(summary.subject)")
                    print("Serial:    \(summary.serialNumber)")
                    print("Issuer:    \(summary.issuer)")
                    print(
                        "Validity:  \(formatter.string(from: summary.notValidBefore)) to "
                            + "\(formatter.string(from: summary.notValidAfter)) (\(summary.validity.rawValue))"
                    )
                    print("SHA-256:   \(summary.sha256Fingerprint)")
                    if pem { print(summary.pem, terminator: "") }
                }
            }
        }
    }

    struct Attributes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the four card-face attributes (name, address, birth date, sex) with the 券面入力補助 PIN."
        )
        @OptionGroup var options: ReaderOptions
        @OptionGroup var global: GlobalOptions

        @Flag(help: "Read the 4-digit 券面入力補助 PIN from stdin (required).")
        var pinStdin = false

        @Flag(help: "Allow spending the PIN's last try (a wrong PIN then locks it).")
        var confirmLastTry = false

        func validate() throws {
            guard pinStdin else { throw ValidationError("the attributes need the PIN: pass --pin-stdin") }
        }

        func run() async throws {
            let secret = try readSecretLine()
            try await withCardReader(global: global, json: options.json) { reader in
                let pin = try CardPIN(secret, kind: .attributes)
                try await waitForCard(reader, options)
                let attributes = try await reader.readAttributes(
                    reader: options.reader,
                    pin: pin,
                    confirmLastTry: confirmLastTry
                )
                if options.json {
                    try printJSON(attributes)
                } else {
                    print("Name:       \(attributes.fullName)")
                    print("Birth date: \(attributes.birthDate)")
                    print("Sex:        \(attributes.sex.rawValue)")
                    print("Address:    \(attributes.address)")
                }
            }
        }
    }
}

/// The certificate as `card read --json` prints it.
struct CertificateOutput: Encodable {
    var tokenType: TokenType
    var subject: String
    var issuer: String
    var serialNumber: String
    var notValidBefore: Date
    var notValidAfter: Date
    var validity: CertificateSummary.Validity
    var sha256Fingerprint: String
    var pem: String?

    init(_ summary: CertificateSummary, includePEM: Bool) {
        tokenType = summary.tokenType
        subject = summary.subject
        issuer = summary.issuer
        serialNumber = summary.serialNumber
        notValidBefore = summary.notValidBefore
        notValidAfter = summary.notValidAfter
        validity = summary.validity
        sha256Fingerprint = summary.sha256Fingerprint
        pem = includePEM ? summary.pem : nil
    }
}

/// Waits for a card when `--wait` asks for it.
func waitForCard(_ reader: CardReader, _ options: CardCommand.ReaderOptions) async throws {
    guard options.wait > 0 else { return }
    // validate() bounds the value, so the conversion cannot trap.
    _ = try await reader.service.waitForCard(reader: options.reader, timeout: .milliseconds(Int(options.wait * 1000)))
}

/// Runs a card command with a PC/SC service, and turns a ``CardError`` into a clear message and an exit code.
func withCardReader<T>(
    global: GlobalOptions,
    json: Bool,
    _ body: (CardReader) async throws -> T
) async throws -> T {
    let logger = global.makeLogger()
    let service = PCSCService(threads: 2, logger: logger)
    do {
        let result = try await body(CardReader(service: service, logger: logger))
        await service.shutdown()
        return result
    } catch let error as CardError {
        await service.shutdown()
        if json {
            try? printJSON(CardErrorOutput(error))
        }
        FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
        throw ExitCode(CardExitCode.for(error))
    } catch {
        await service.shutdown()
        throw error
    }
}

/// A card error as `--json` prints it.
struct CardErrorOutput: Encodable {
    struct Body: Encodable {
        var code: String
        var reason: String
        var triesLeft: Int?
        var statusWord: String?
    }
    var error: Body

    init(_ error: CardError) {
        self.error = Body(
            code: error.code.description,
            reason: error.reason,
            triesLeft: error.triesLeft,
            statusWord: error.statusWord?.description
        )
    }
}

/// Exit codes of the card commands, stable for drills and operators (documented in the README).
enum CardExitCode {
    static func `for`(_ error: CardError) -> Int32 {
        switch error.code {
        case .serviceUnavailable: return 10
        case .noReaders, .readerNotFound, .readerUnavailable: return 11
        case .noCard, .cardRemoved, .cardUnresponsive, .sharingViolation: return 12
        case .notJPKICard: return 13
        case .certificateNeedsPIN, .phoneApprovalRequired: return 14
        case .wrongPIN, .invalidPINFormat: return 15
        case .lastTryNeedsConfirmation: return 16
        case .pinLocked: return 17
        case .timedOut, .cancelled: return 18
        default: return 19
        }
    }
}
