import ArgumentParser
import Crypto
import Foundation
import KyukyuCard
import KyukyuDomain
import KyukyuEligibility
import KyukyuOnshi
import KyukyuVault
import Logging

/// `kyukyu fetch`: card (or the four fields) → onshi → the summary on the crew's terminal, with every
/// category's status and timing.
struct FetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract:
            "Read the card (or use the four fields), authenticate to onshi and fetch every category under deadlines."
    )

    @Option(help: "Card reader name (or prefix). Default: the reader with a card. Ignored with --name.")
    var reader: String?

    @Flag(
        help: """
            Card-less lookup: read the patient's fields from stdin as one JSON object, \
            {"name", "birth", "sex", "address"} or {"insurerNumber", "insuredSymbol", "insuredNumber"}. \
            Use this rather than the flags below, which other users can see in /proc and shell history.
            """
    )
    var lookupStdin = false

    @Option(help: "Card-less lookup: full name (family and given separated by a space). Prefer --lookup-stdin.")
    var name: String?
    @Option(help: "Card-less lookup: birth date, YYYY-MM-DD or YYYYMMDD.")
    var birth: String?
    @Option(help: "Card-less lookup: sex, male|female|other.")
    var sex: String?
    @Option(help: "Card-less lookup: address as on the card.")
    var address: String?
    @Option(help: "Card-less lookup by insurance: insurer number, with --insured-symbol and --insured-number.")
    var insurerNumber: String?
    @Option(help: "Insurance card symbol (記号).")
    var insuredSymbol: String?
    @Option(help: "Insurance card number (番号).")
    var insuredNumber: String?

    @Option(
        help:
            "Consent basis: verbal, life-or-body-exception (unconscious; `exception` for short), or refused."
    )
    var consent: ConsentBasis

    @Option(help: "The crew member's ID, recorded with the viewing.")
    var crew: String

    @Flag(help: "PIN mode: read the 4-digit user-authentication PIN from stdin; the card signs onshi's nonce.")
    var pinStdin = false

    @Flag(help: "Allow spending the PIN's last try.")
    var confirmLastTry = false

    @Option(help: "Overall deadline in milliseconds (1 to 120000): what has arrived by then is shown.")
    var deadlineMs = 3000

    @Option(
        help: """
            Per-category deadline in milliseconds (1 to 120000; default: twice the overall, or the overall with \
            --json); late categories follow until then.
            """
    )
    var categoryDeadlineMs: Int?

    @Option(help: "Categories to fetch, comma-separated (default: all).")
    var categories: String?

    @Option(help: "onshi's base URL.")
    var onshiURL = "https://127.0.0.1:8443"

    @Option(
        help: "Folder with <device>.cert.pem, <device>.key.pem and ca.cert.pem (from the stub's issue-terminal-cert)."
    )
    var tlsDir = "state/terminal-tls"

    @Option(help: "This terminal's device ID (its client certificate's name).")
    var device = "ambulance-01"

    @Option(help: "Medical-institution code of this terminal.")
    var institutionCode = "9999999999"

    @Flag(help: "Print JSON on stdout.")
    var json = false

    @OptionGroup var global: GlobalOptions

    /// The longest deadline a flag may ask for: past it, a fetch is no longer an emergency read.
    static let maxDeadlineMs = 120_000

    func validate() throws {
        let lookupFlags = [name, birth, sex, address, insurerNumber, insuredSymbol, insuredNumber]
        if lookupStdin, lookupFlags.contains(where: { $0 != nil }) {
            throw ValidationError("--lookup-stdin takes the lookup fields from stdin; give none of them as flags")
        }
        if lookupStdin && pinStdin {
            throw ValidationError("--pin-stdin needs the card; it cannot be combined with --lookup-stdin")
        }
        let lookupFields = [name, birth, sex, address]
        if lookupFields.contains(where: { $0 != nil }), lookupFields.contains(where: { $0 == nil }) {
            throw ValidationError("a card-less lookup needs all four: --name, --birth, --sex, --address")
        }
        if (name != nil || insurerNumber != nil) && pinStdin {
            throw ValidationError("--pin-stdin needs the card; it cannot be combined with a card-less lookup")
        }
        if insurerNumber != nil, insuredSymbol == nil || insuredNumber == nil {
            throw ValidationError("--insurer-number needs --insured-symbol and --insured-number")
        }
        guard (1...Self.maxDeadlineMs).contains(deadlineMs) else {
            throw ValidationError("--deadline-ms must be between 1 and \(Self.maxDeadlineMs)")
        }
        if let categoryDeadlineMs, !(1...Self.maxDeadlineMs).contains(categoryDeadlineMs) {
            throw ValidationError("--category-deadline-ms must be between 1 and \(Self.maxDeadlineMs)")
        }
        try FlagCheck.identifier(crew, flag: "--crew")
        try FlagCheck.identifier(device, flag: "--device")
        guard institutionCode.count == 10, institutionCode.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw ValidationError("--institution-code must be 10 digits")
        }
        try FlagCheck.httpsURL(onshiURL, flag: "--onshi-url")
        _ = try selectedCategories()
        if let name, let birth, let sex, let address {
            _ = try LookupInput(name: name, birth: birth, sex: sex, address: address).query()
        }
    }

    func selectedCategories() throws -> [MedicalCategory] {
        guard let categories else { return MedicalCategory.allCases }
        var selected: [MedicalCategory] = []
        for name in categories.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let category = MedicalCategory(rawValue: trimmed) else {
                throw ValidationError(
                    "unknown category '\(trimmed)'; known: \(MedicalCategory.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard !selected.contains(category) else {
                throw ValidationError("--categories names \(category.rawValue) twice")
            }
            selected.append(category)
        }
        return selected
    }

    /// The lookup from the flags or, with `--lookup-stdin`, from standard input; `nil` for a card read.
    func lookupQuery() throws -> PatientQuery? {
        if lookupStdin { return try LookupInput.readStandardInput().query() }
        if let insurerNumber, let insuredSymbol, let insuredNumber {
            warnPatientDataOnCommandLine()
            return try LookupInput(
                insurerNumber: insurerNumber,
                insuredSymbol: insuredSymbol,
                insuredNumber: insuredNumber
            ).query()
        }
        guard let name, let birth, let sex, let address else { return nil }
        warnPatientDataOnCommandLine()
        return try LookupInput(name: name, birth: birth, sex: sex, address: address).query()
    }

    func warnPatientDataOnCommandLine() {
        FileHandle.standardError.write(
            Data(
                "warning: lookup fields given as flags are visible to other users (/proc) and kept in shell history; use --lookup-stdin\n"
                    .utf8
            )
        )
    }

    func run() async throws {
        let logger = global.makeLogger()
        let secret = pinStdin ? try readSecretLine() : nil
        let query = try lookupQuery()
        let transport: HTTPOnshiTransport
        do {
            // The terminal's private key proves this ambulance to onshi: refuse it if others could read it.
            try FilePermissions.requirePrivate(path: "\(tlsDir)/\(device).key.pem")
        } catch let error as VaultError {
            FileHandle.standardError.write(Data("error: the terminal key: \(error.reason)\n".utf8))
            throw ExitCode(29)
        }
        do {
            transport = try HTTPOnshiTransport(
                baseURL: onshiURL,
                tls: TerminalTLSFiles(
                    certificatePath: "\(tlsDir)/\(device).cert.pem",
                    keyPath: "\(tlsDir)/\(device).key.pem",
                    trustRootsPath: "\(tlsDir)/ca.cert.pem"
                ),
                logger: logger
            )
        } catch let error as EligibilityError {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            throw ExitCode(29)
        }
        let client = EligibilityClient(
            transport: transport,
            configuration: EligibilityClientConfiguration(institutionCode: institutionCode),
            logger: logger
        )
        // A script reading --json gets its one answer at the overall deadline unless it asks for late categories.
        let deadlines = FetchDeadlines(
            overall: .milliseconds(deadlineMs),
            perCategory: (categoryDeadlineMs ?? (json ? deadlineMs : nil)).map { .milliseconds($0) }
        )
        let categories = try selectedCategories()
        let started = ContinuousClock.now
        // Connect while the card is read: the TLS handshakes overlap the APDUs.
        let warm = Task { await transport.prewarm(connections: min(categories.count, 9)) }
        defer { warm.cancel() }

        let exitCode: Int32
        do {
            exitCode = try await fetchAndPresent(
                client: client,
                transport: transport,
                warm: warm,
                query: query,
                secret: secret,
                categories: categories,
                deadlines: deadlines,
                started: started,
                logger: logger
            )
        } catch {
            // async-http-client must be shut down before it is released, whatever failed.
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    func fetchAndPresent(
        client: EligibilityClient,
        transport: HTTPOnshiTransport,
        warm: Task<Void, Never>,
        query: PatientQuery?,
        secret: String?,
        categories: [MedicalCategory],
        deadlines: FetchDeadlines,
        started: ContinuousClock.Instant,
        logger: Logger
    ) async throws -> Int32 {
        let exitCode: Int32
        if let query {
            await warm.value
            exitCode = try await present(
                client.fetch(
                    .lookup(query),
                    crewID: crew,
                    consent: consent,
                    categories: categories,
                    deadlines: deadlines
                ),
                cardTime: nil,
                started: started
            )
        } else {
            exitCode = try await withCardReader(global: global, json: json) { reader in
                let (fetch, cardTime) = try await reader.withSession(reader: self.reader) { session in
                    let type = try await session.tokenType()
                    if let secret {
                        try await session.verify(
                            try CardPIN(secret, kind: .userAuthentication),
                            confirmLastTry: confirmLastTry
                        )
                    }
                    let der = try await session.readCertificateDER(.userAuthentication)
                    let cardTime = ContinuousClock.now - started
                    logger.info("card read", metadata: ["kyukyu.card.token": "\(type.rawValue)"])
                    let identity: PatientIdentity =
                        secret == nil
                        ? .visualCheck(certificateDER: der)
                        : .pin(
                            certificateDER: der,
                            signNonce: { nonce in
                                try await session.signWithAuthenticationKey(sha256: Array(SHA256.hash(data: nonce)))
                            }
                        )
                    let fetch = client.fetch(
                        identity,
                        crewID: crew,
                        consent: consent,
                        categories: categories,
                        deadlines: deadlines
                    )
                    // In PIN mode the card signs onshi's nonce during authentication; after that nothing needs it.
                    if secret != nil { _ = await fetch.authentication() }
                    return (fetch, cardTime)
                }
                // The card is released (and reset, if a PIN was verified) while the categories arrive.
                return try await present(fetch, cardTime: cardTime, started: started)
            }
        }
        return exitCode
    }

    /// Shows the snapshot at the deadline, then late categories as they arrive; returns the exit code.
    func present(_ fetch: PatientFetch, cardTime: Duration?, started: ContinuousClock.Instant) async throws -> Int32 {
        let atDeadline = await fetch.snapshotAtDeadline()
        if !json {
            let title =
                atDeadline.isComplete
                ? "Everything arrived in \(ms(atDeadline.elapsed)) (deadline \(deadlineMs) ms)"
                : "At the deadline (\(deadlineMs) ms): what has arrived"
            printSnapshot(atDeadline, cardTime: cardTime, title: title)
            flushOutput()
        }
        var late: [(MedicalCategory, CategoryStatus)] = []
        if !atDeadline.isComplete {
            for await update in fetch.updates {
                guard case .category(let category, let status) = update, status.isFinal,
                    atDeadline.categories[category]?.isFinal != true
                else { continue }
                late.append((category, status))
                if !json {
                    print("late: \(category.rawValue) \(statusLine(status))")
                    flushOutput()
                }
            }
        }
        let final = await fetch.completion()
        if json {
            try printJSON(
                FetchOutput(
                    atDeadline: atDeadline,
                    final: final,
                    cardTime: cardTime,
                    total: ContinuousClock.now - started
                )
            )
        } else {
            printRecords(final)
            flushOutput()
        }
        if let failure = final.authenticationError {
            if failure.code == .signingFailed, let card = failure.underlying as? CardError {
                // The card's own error (wrong state, removed, locked) and its exit code, not "cancelled".
                FileHandle.standardError.write(Data("error: \(card.reason)\n".utf8))
                return CardExitCode.for(card)
            }
            FileHandle.standardError.write(Data("error: \(failure.reason)\n".utf8))
            switch failure.code {
            case .consentRefused: return 21
            case .certificateProblem: return 22
            case .notFound: return 23
            case .maintenance: return 25
            case .signingFailed: return 19
            case .unreachable, .timedOut, .circuitOpen, .connectionLost, .serverError, .rateLimited: return 24
            default: return 29
            }
        }
        return 0
    }

    func printSnapshot(_ snapshot: FetchSnapshot, cardTime: Duration?, title: String) {
        print("== \(title)")
        if let cardTime { print("card read in \(ms(cardTime))") }
        if let session = snapshot.session {
            let consent =
                session.consent.map {
                    "consent \($0.basis.rawValue) until \(ISO8601DateFormatter().string(from: $0.availableUntil))"
                } ?? ""
            print(
                "session open: qualification validity \(session.qualificationValidity.map(String.init) ?? "?") \(consent)"
            )
        } else if let failure = snapshot.authenticationFailure {
            print("NOT AUTHENTICATED: \(failure.reason)")
        }
        for category in MedicalCategory.allCases {
            guard let status = snapshot.categories[category] else { continue }
            print("  \(category.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(statusLine(status))")
        }
    }

    func statusLine(_ status: CategoryStatus) -> String {
        switch status {
        case .pending: return "pending"
        case .retrying(let attempt, let reason): return "retrying (attempt \(attempt)): \(reason)"
        case .ok(let records, let elapsed): return "ok         \(ms(elapsed))  \(records.count) records"
        case .empty(let elapsed): return "empty      \(ms(elapsed))"
        case .timedOut(let after): return "TIMED OUT  \(ms(after))"
        case .cancelled(let after): return "CANCELLED  \(ms(after))"
        case .failed(_, let reason, let elapsed): return "FAILED     \(ms(elapsed))  \(reason)"
        }
    }

    func printRecords(_ snapshot: FetchSnapshot) {
        print("== Summary")
        for category in MedicalCategory.allCases {
            guard case .ok(let records, _) = snapshot.categories[category] else { continue }
            print("[\(category.rawValue)]")
            for line in RecordText.lines(records).prefix(12) { print("  " + line) }
            if records.count > 12 { print("  … \(records.count - 12) more") }
        }
    }

    func ms(_ duration: Duration) -> String {
        String(
            format: "%.0f ms",
            Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        )
    }
}

extension ConsentBasis: ExpressibleByArgument {
    /// The raw value (`verbal`, `life-or-body-exception`, `refused`), or `exception`, the onshi wire text,
    /// as a short form of `life-or-body-exception`.
    public init?(argument: String) {
        if argument == "exception" {
            self = .lifeOrBodyException
        } else {
            self.init(rawValue: argument)
        }
    }
}

/// One line per record, for the terminal.
enum RecordText {
    static func lines(_ records: CategoryRecords) -> [String] {
        switch records {
        case .qualification(let q):
            guard let q else { return [] }
            return [
                "\(q.name) (\(q.nameKana)) \(q.birthDate) insurer \(q.insurerNumber) \(q.insurerName), copay \(q.copaymentPercent)%"
            ]
        case .visits(let visits):
            return visits.map { "\($0.date) \($0.institutionName) \($0.department ?? "")" }
        case .diagnoses(let diagnoses):
            return diagnoses.map { "\($0.name) [\($0.icd10)] since \($0.startDate)" }
        case .medications(let medications):
            return medications.map {
                "\($0.dispensedDate) \($0.genericName) \($0.dose)\($0.unit) \($0.usage) ×\($0.days)d [YJ \($0.yjCode)]"
            }
        case .prescriptions(let prescriptions):
            return prescriptions.map {
                "\($0.issuedDate) \($0.genericName) \($0.dose)\($0.unit) ×\($0.days)d\($0.dispensed ? "" : " (not dispensed)")"
            }
        case .surgery(let surgeries):
            return surgeries.map { "\($0.date) \($0.name) at \($0.institutionName)" }
        case .treatment(let treatments):
            return treatments.map { "\($0.date) \($0.name)\($0.dialysis ? " [DIALYSIS]" : "")" }
        case .checkups(let checkups):
            return checkups.map { "\($0.date) \($0.items.count) items at \($0.institutionName)" }
        case .allergies(let allergies):
            return allergies.map { "\($0.kind): \($0.substance)\($0.reaction.map { " → " + $0 } ?? "")" }
        }
    }
}

/// `kyukyu fetch --json`.
struct FetchOutput: Encodable {
    struct Category: Encodable {
        var status: String
        var milliseconds: Double?
        var code: String?
        var reason: String?
        var records: CategoryRecords?
    }
    var cardMilliseconds: Double?
    var totalMilliseconds: Double
    var authenticated: Bool
    var authenticationError: String?
    var qualificationValidity: Int?
    var atDeadline: [String: String]
    var categories: [String: Category]

    init(atDeadline: FetchSnapshot, final: FetchSnapshot, cardTime: Duration?, total: Duration) {
        func ms(_ d: Duration) -> Double {
            Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        }
        cardMilliseconds = cardTime.map(ms)
        totalMilliseconds = ms(total)
        authenticated = final.session != nil
        authenticationError = final.authenticationFailure?.code.description
        qualificationValidity = final.session?.qualificationValidity
        self.atDeadline = Dictionary(
            uniqueKeysWithValues: atDeadline.categories.map { ($0.key.rawValue, $0.value.label) }
        )
        categories = Dictionary(
            uniqueKeysWithValues: final.categories.map { category, status in
                let entry: Category
                switch status {
                case .ok(let records, let elapsed):
                    entry = Category(status: "ok", milliseconds: ms(elapsed), records: records)
                case .empty(let elapsed): entry = Category(status: "empty", milliseconds: ms(elapsed))
                case .timedOut(let after): entry = Category(status: "timed-out", milliseconds: ms(after))
                case .cancelled(let after): entry = Category(status: "cancelled", milliseconds: ms(after))
                case .failed(let code, let reason, let elapsed):
                    entry = Category(
                        status: "failed",
                        milliseconds: ms(elapsed),
                        code: code.description,
                        reason: reason
                    )
                case .pending, .retrying: entry = Category(status: status.label)
                }
                return (category.rawValue, entry)
            }
        )
    }
}
