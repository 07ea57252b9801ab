import ArgumentParser
import Foundation
import KyukyuVault
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failure at run time (not a usage error): printed as `Error: …`, exit status 1.
struct VaultCommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Options shared by the vault and audit commands.
struct VaultCommandOptions: ParsableArguments {
    @Option(
        name: .customLong("state-dir"),
        help: "The gateway state folder (default: $KYUKYU_STATE_DIR, else ./state)."
    )
    var stateDirectoryOption: String?

    @Option(
        name: .customLong("key-source"),
        help: "Where the device keyring comes from: auto, file or credential (systemd $CREDENTIALS_DIRECTORY)."
    )
    var keySource: String = "auto"

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @Flag(name: .long, help: "Log debug output to standard error.")
    var verbose = false

    var stateDirectory: String {
        self.stateDirectoryOption ?? ProcessInfo.processInfo.environment["KYUKYU_STATE_DIR"] ?? "state"
    }

    var logger: Logger {
        var logger = Logger(label: "kyukyu.vault")
        logger.logLevel = self.verbose ? .debug : .warning
        return logger
    }

    /// The key provider; `create` allows generating a key file on first run. Fails closed: while
    /// `$CREDENTIALS_DIRECTORY` is set, only the credential is used (see `DeviceKeySource`).
    func keyProvider(create: Bool) throws -> any DeviceKeyProvider {
        guard let source = DeviceKeySource(rawValue: self.keySource) else {
            throw ValidationError("--key-source must be auto, file or credential")
        }
        return try source.provider(stateDirectory: self.stateDirectory, createIfMissing: create)
    }

    /// Opens an existing vault. Read-only commands skip the start-up duties (purges) so they never write.
    func openVault(runStartUpDuties: Bool) async throws -> IncidentVault {
        guard FileManager.default.fileExists(atPath: self.stateDirectory + "/" + VaultDatabase.fileName) else {
            throw VaultCommandError("no vault in \(self.stateDirectory) (set --state-dir or KYUKYU_STATE_DIR)")
        }
        return try await IncidentVault.open(
            stateDirectory: self.stateDirectory,
            keyProvider: try self.keyProvider(create: false),
            logger: self.logger,
            runStartUpDuties: runStartUpDuties
        )
    }
}

func printJSON(_ value: some Encodable, pretty: Bool = true) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting =
        pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func formatAge(_ seconds: Double?) -> String {
    guard let seconds else { return "-" }
    let total = Int(seconds.rounded())
    return String(format: "%dh%02dm%02ds", total / 3600, (total % 3600) / 60, total % 60)
}

/// `kyukyu vault …`: the encrypted incident vault.
struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "Inspect, purge and wipe the encrypted incident vault.",
        subcommands: [Status.self, Purge.self, Wipe.self, RotateKey.self]
    )

    /// `kyukyu vault status`: counts and ages only.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show counts and ages (no patient data).")

        @OptionGroup var options: VaultCommandOptions

        func run() async throws {
            let vault = try await self.options.openVault(runStartUpDuties: false)
            let status = try await vault.status()
            if self.options.json {
                try printJSON(status)
                return
            }
            print("incidents:            \(status.incidentCount)")
            for (state, count) in status.incidentsByState.sorted(by: { $0.key < $1.key }) {
                print("  \(state):\(String(repeating: " ", count: max(1, 19 - state.count)))\(count)")
            }
            print("records:              \(status.recordCount) (\(status.ciphertextBytes) bytes encrypted)")
            print("oldest incident age:  \(formatAge(status.oldestIncidentAgeSeconds))")
            print("next expiry in:       \(formatAge(status.nextExpiryInSeconds))")
            print("maximum age:          \(formatAge(status.maximumAgeSeconds))")
            print(
                "device key:           \(status.currentDeviceKeyID) (\(status.dataKeysPendingRewrap) data keys pending re-wrap)"
            )
            print("audit signing key:    \(status.auditSigningPublicKey)")
            print(
                "audit entries:        \(status.auditEntryCount) (signed head #\(status.auditHeadSequence.map(String.init) ?? "-"))"
            )
        }
    }

    /// `kyukyu vault purge`: crypto-shred one incident, the expired ones, or all.
    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Crypto-shred incidents: one (--incident), the expired ones (--expired) or all (--all)."
        )

        @OptionGroup var options: VaultCommandOptions

        @Option(help: "The incident id to shred.")
        var incident: String?

        @Flag(help: "Shred every incident past its maximum age.")
        var expired = false

        @Flag(help: "Shred every incident, one by one.")
        var all = false

        func validate() throws {
            let chosen = [self.incident != nil, self.expired, self.all].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError("choose exactly one of --incident ID, --expired or --all")
            }
            if let incident, IncidentID(incident) == nil {
                throw ValidationError("--incident must be an incident id (UUID)")
            }
        }

        func run() async throws {
            let vault = try await self.options.openVault(runStartUpDuties: false)
            var summary = PurgeSummary(purged: [], walTruncated: false)
            if let text = self.incident, let id = IncidentID(text) {
                guard try await vault.shred(incident: id, reason: .manual) else {
                    throw VaultCommandError("no incident \(id) in the vault")
                }
                summary.purged = [.init(incident: id, reason: .manual)]
                summary.walTruncated = true
            } else if self.expired {
                summary = try await vault.purgeExpired()
            } else {
                for incident in try await vault.incidents() {
                    let shredded = try await vault.shred(incident: incident.id, reason: .manual)
                    if shredded {
                        summary.purged.append(.init(incident: incident.id, reason: .manual))
                    }
                }
                summary.walTruncated = await vault.truncateWAL()
            }
            if self.options.json {
                try printJSON(summary)
            } else {
                for item in summary.purged { print("shredded \(item.incident) (\(item.reason))") }
                print("\(summary.count) incident(s) shredded; WAL truncated: \(summary.walTruncated ? "yes" : "no")")
            }
        }
    }

    /// `kyukyu vault wipe`: destroy every incident now.
    struct Wipe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Immediately destroy every incident (data keys first); the audit trail is kept."
        )

        @OptionGroup var options: VaultCommandOptions

        @Flag(name: .shortAndLong, help: "Do not ask for confirmation.")
        var yes = false

        @Option(help: "Crew member id recorded in the audit as the one who wiped.")
        var actor: String = "operator"

        func run() async throws {
            if !self.yes {
                guard isatty(STDIN_FILENO) != 0 else {
                    throw VaultCommandError("refusing to wipe without --yes when not interactive")
                }
                print(
                    "This destroys every incident in \(self.options.stateDirectory). Type WIPE to continue: ",
                    terminator: ""
                )
                guard readLine() == "WIPE" else {
                    print("aborted")
                    throw ExitCode(1)
                }
            }
            let vault = try await self.options.openVault(runStartUpDuties: false)
            let summary = try await vault.wipeAll(actor: self.actor)
            if self.options.json {
                try printJSON(summary)
            } else {
                print("wiped \(summary.count) incident(s); WAL truncated: \(summary.walTruncated ? "yes" : "no")")
            }
        }
    }

    /// `kyukyu vault rotate-key`: new device wrapping key, data keys re-wrapped.
    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Rotate the device wrapping key in the key file and re-wrap every data key."
        )

        @OptionGroup var options: VaultCommandOptions

        func run() async throws {
            guard let provider = try self.options.keyProvider(create: false) as? any WritableDeviceKeyProvider else {
                throw VaultCommandError(
                    "the keyring is a systemd credential: deploy a keyring with the new key, restart, then remove the old key"
                )
            }
            let vault = try await self.options.openVault(runStartUpDuties: true)
            let report = try await vault.rotateDeviceKey(provider: provider)
            if self.options.json {
                try printJSON(report)
            } else {
                print(
                    "device key \(report.current) in force; retired \(report.retired.map(\.rawValue).joined(separator: ", ")); \(report.rewrapped) data key(s) re-wrapped"
                )
            }
        }
    }
}

/// `kyukyu audit …`: the tamper-evident audit trail.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify and export the tamper-evident audit trail.",
        subcommands: [Verify.self, Export.self, VerifyExport.self]
    )

    /// `kyukyu audit verify`: exit status 0 if intact, 1 if tampered.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the hash chain and the signed head; exit status 1 if anything is wrong."
        )

        @OptionGroup var options: VaultCommandOptions

        @Option(help: "A head exported earlier (JSON, e.g. the last line of an export) the chain must still contain.")
        var anchor: String?

        @Option(
            help: """
                The anchors a hospital's receiver kept from this ambulance's documents \
                (`kyukyu-hospital anchors --device ID --out FILE`): the chain must still contain every one.
                """
        )
        var anchors: String?

        func run() async throws {
            let vault = try await self.options.openVault(runStartUpDuties: false)
            var anchorHead: AuditHead?
            if let anchor {
                guard let data = FileManager.default.contents(atPath: anchor) else {
                    throw VaultCommandError("cannot read \(anchor)")
                }
                let lastLine = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
                let decoder = JSONDecoder()
                if let line = try? decoder.decode(ExportHeadLine.self, from: Data(lastLine.utf8)) {
                    anchorHead = line.head
                } else {
                    anchorHead = try decoder.decode(AuditHead.self, from: data)
                }
            }
            var heads = anchorHead.map { [$0] } ?? []
            if let anchors {
                guard let data = FileManager.default.contents(atPath: anchors) else {
                    throw VaultCommandError("cannot read \(anchors)")
                }
                guard let file = try? JSONDecoder().decode(ReceiverAnchors.self, from: data),
                    file.format == ReceiverAnchors.format
                else {
                    throw VaultCommandError(
                        "\(anchors) is not a receiver's anchors file (\(ReceiverAnchors.format), from kyukyu-hospital anchors)"
                    )
                }
                heads += file.anchors
                if !self.options.json {
                    print("anchors from the receiver: \(file.anchors.count) (device \(file.device))")
                }
            }
            let verification = try await vault.audit.verify(anchors: heads)
            if self.options.json {
                try printJSON(verification)
            } else {
                print(
                    "entries: \(verification.entryCount), signed head: #\(verification.head.map { String($0.sequence) } ?? "-")"
                )
                if verification.isIntact {
                    print("chain intact, head signature valid")
                } else {
                    for problem in verification.problems { print("PROBLEM \(problem)") }
                }
                for jump in verification.clockJumps {
                    let kind = jump.acrossReboot ? "wall clock went back across a reboot" : "wall clock jumped"
                    print(String(format: "clock: %@ by %+.1f s at #%lld", kind, jump.skewSeconds, jump.sequence))
                }
            }
            if !verification.isIntact { throw ExitCode(1) }
        }
    }

    /// The anchors file `kyukyu-hospital anchors` writes: the signed heads carried by one ambulance's documents (each
    /// decodes as an ``AuditHead``; the receiver's own fields beside them are ignored).
    struct ReceiverAnchors: Decodable {
        static let format = "kyukyu-hospital-anchors/1"
        var format: String
        var device: String
        var anchors: [AuditHead]
    }

    /// `kyukyu audit export`: JSON lines, then the signed head.
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export entries as JSON lines (one entry per line), then a last line with the signed head."
        )

        @OptionGroup var options: VaultCommandOptions

        @Option(
            help:
                "Only entries recorded at or after this time: ISO 8601 (2026-11-23T05:00:00Z) or an age (30m, 24h, 7d)."
        )
        var since: String?

        func validate() throws {
            if let since, parseSince(since, now: Date()) == nil {
                throw ValidationError("--since must be ISO 8601 or an age such as 30m, 24h or 7d")
            }
        }

        func run() async throws {
            let vault = try await self.options.openVault(runStartUpDuties: false)
            let since = self.since.flatMap { parseSince($0, now: Date()) }
            // Entries and head from one snapshot: an append meanwhile cannot make them disagree.
            let export = try await vault.audit.exportSnapshot(since: since)
            for entry in export.entries {
                try printJSON(entry, pretty: false)
            }
            if let head = export.head {
                try printJSON(ExportHeadLine(head: head), pretty: false)
            }
        }
    }
}

/// `kyukyu audit verify-export`: check an export off the device against a pinned public key.
extension AuditCommand {
    struct VerifyExport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-export",
            abstract: "Verify an export file (JSON lines ending with the head) against the device's signing key.",
            discussion: """
                Strict by default: the export must hold every entry from #1 to the signed head, so removed \
                first entries are reported (exit status 1). An export made with --since starts later: verify it \
                with --partial, which checks it from its first entry on and says what it could not check.
                """
        )

        @Argument(help: "The export file written by `kyukyu audit export`.")
        var file: String

        @Option(help: "The device's audit signing public key, base64 (see `kyukyu vault status`).")
        var publicKey: String

        @Flag(
            name: .long,
            help:
                "Accept an export that starts after entry #1 (made with --since); the entries before it are not checked."
        )
        var partial = false

        @Flag(name: .long, help: "Print JSON instead of text.")
        var json = false

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: self.file) else {
                throw VaultCommandError("cannot read \(self.file)")
            }
            guard let key = Data(base64Encoded: self.publicKey), key.count == 32 else {
                throw ValidationError("--public-key must be a base64 Ed25519 public key (32 bytes)")
            }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            var entries: [AuditEntry] = []
            var head: AuditHead?
            for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
                let bytes = Data(line.utf8)
                if let entry = try? decoder.decode(AuditEntry.self, from: bytes) {
                    entries.append(entry)
                } else if let headLine = try? decoder.decode(ExportHeadLine.self, from: bytes) {
                    head = headLine.head
                } else {
                    throw VaultCommandError("line \(index + 1) is neither an audit entry nor a head")
                }
            }
            guard let head else { throw VaultCommandError("the export has no head line") }
            let verification = AuditTrail.verifyExport(
                entries: entries,
                head: head,
                signingPublicKey: key,
                allowingPartial: self.partial
            )
            if self.json {
                try printJSON(verification)
            } else {
                let first = entries.first.map { "#\($0.sequence)" } ?? "-"
                print("entries: \(entries.count) (from \(first)), signed head: #\(head.sequence)")
                if let unchecked = verification.uncheckedBefore {
                    let range = unchecked == 2 ? "#1" : "#1–#\(unchecked - 1)"
                    print(
                        "partial check: entries \(range) are not in the export and were not checked, nor the link of #\(unchecked) to them"
                    )
                }
                if verification.isIntact {
                    print(
                        verification.uncheckedBefore == nil
                            ? "export intact, head signature valid" : "checked part intact, head signature valid"
                    )
                } else {
                    for problem in verification.problems { print("PROBLEM \(problem)") }
                    if !self.partial, let firstEntry = entries.first, firstEntry.sequence > 1 {
                        print(
                            "the export does not start at entry #1: entries were removed, or it was made with --since (then verify with --partial)"
                        )
                    }
                }
            }
            if !verification.isIntact { throw ExitCode(1) }
        }
    }
}

/// The last line of an export.
struct ExportHeadLine: Codable {
    var head: AuditHead
}

func parseSince(_ text: String, now: Date) -> Date? {
    let formatter = ISO8601DateFormatter()
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) { return date }
    guard let unit = text.last, let amount = Double(text.dropLast()), amount >= 0 else { return nil }
    let seconds: Double
    switch unit {
    case "s": seconds = amount
    case "m": seconds = amount * 60
    case "h": seconds = amount * 3600
    case "d": seconds = amount * 86400
    default: return nil
    }
    return now.addingTimeInterval(-seconds)
}
