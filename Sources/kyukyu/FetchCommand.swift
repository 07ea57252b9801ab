import ArgumentParser
import Crypto
import Foundation
import KyukyuCard
import KyukyuDomain
import KyukyuEligibility
import KyukyuIncident
import KyukyuOnshi
import KyukyuVault
import KyukyuWorkflow
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

    @Option(
        help: """
            Wait up to this many seconds (0 to 3600, fractions allowed) for the card to touch the reader; the times \
            shown then count from the card's arrival. 0: the card must be on the reader already.
            """
    )
    var wait: Double = 0

    @OptionGroup var global: GlobalOptions

    /// The longest deadline a flag may ask for: past it, a fetch is no longer an emergency read.
    static let maxDeadlineMs = 120_000

    func validate() throws {
        guard wait.isFinite, (0...CardCommand.ReaderOptions.maximumWait).contains(wait) else {
            throw ValidationError(
                "--wait takes a number of seconds from 0 to \(Int(CardCommand.ReaderOptions.maximumWait)); \(wait) is not one"
            )
        }
        let lookupFlags = [name, birth, sex, address, insurerNumber, insuredSymbol, insuredNumber]
        if lookupStdin, lookupFlags.contains(where: { $0 != nil }) {
            throw ValidationError("--lookup-stdin takes the lookup fields from stdin; give none of them as flags")
        }
        if wait > 0, lookupStdin || name != nil || insurerNumber != nil {
            throw ValidationError("--wait waits for the card; a card-less lookup does not read one")
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

    /// Drives one incident through the workflow library, as the gateway does, with nothing kept: the store is in
    /// memory and forgotten when the command ends.
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
        var started = started
        guard let crewID = CrewID(crew) else { throw ValidationError("--crew must be 1 to 64 of A-Z a-z 0-9 . _ -") }
        let runner = try await Self.workflow {
            () async throws(WorkflowError) in
            try await IncidentRunner.open(
                source: .crew,
                effects: WorkflowEffects(store: InMemoryIncidentStore(), fetching: client),
                configuration: WorkflowConfiguration(terminalID: device, deadlines: deadlines, categories: categories),
                logger: logger
            )
        }
        let updates = await runner.updates()
        // A refusal goes to onshi with the patient's identification (onshi records the attempt): it is recorded once
        // the patient is identified, since a refusal with nobody identified closes the incident at once.
        if consent != .refused {
            _ = try await Self.workflow { () async throws(WorkflowError) in
                try await runner.recordConsent(consent, by: crewID)
            }
        }
        var cardTime: Duration?
        if let query {
            await warm.value
            _ = try await Self.workflow { () async throws(WorkflowError) in try await runner.lookup(query, by: crewID) }
        } else {
            let failure: Int32? = try await withCardReader(global: global, json: json) { reader in
                if wait > 0 {
                    // validate() bounds the value, so the conversion cannot trap.
                    _ = try await reader.service.waitForCard(
                        reader: self.reader,
                        timeout: .milliseconds(Int(wait * 1000))
                    )
                    started = .now
                }
                let card = ReaderCard(reader: reader, readerName: self.reader)
                if let secret {
                    do {
                        // PIN mode: the card signs onshi's nonce before it is released (and reset).
                        _ = try await runner.identifyWithPIN(
                            secret,
                            confirmLastTry: confirmLastTry,
                            card: card,
                            by: crewID
                        )
                    } catch let error as WorkflowError {
                        if let cardError = error.underlying as? CardError { throw cardError }
                        FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
                        return Self.exitCode(error)
                    }
                } else if let error = await runner.cardTouched(card) {
                    throw error
                } else if await runner.snapshot().state.card.state == .pinRequired {
                    FileHandle.standardError.write(
                        Data("error: this smartphone credential needs the holder's PIN: use --pin-stdin\n".utf8)
                    )
                    return 14
                }
                cardTime = ContinuousClock.now - started
                let type = await runner.snapshot().state.card.tokenType
                logger.info("card read", metadata: ["kyukyu.card.token": "\(type?.rawValue ?? "?")"])
                return nil
            }
            if let failure {
                _ = try? await runner.close(by: crewID)
                return failure
            }
        }
        if consent == .refused {
            _ = try await Self.workflow { () async throws(WorkflowError) in
                try await runner.recordConsent(consent, by: crewID)
            }
        }
        let code = try await present(runner, updates: updates, cardTime: cardTime, started: started)
        // Nothing more is fetched or retried once the answer is printed.
        _ = try? await runner.close(by: crewID)
        return code
    }

    static func workflow<T>(_ body: () async throws(WorkflowError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            FileHandle.standardError.write(Data("error: \(error.reason)\n".utf8))
            throw ExitCode(exitCode(error))
        }
    }

    static func exitCode(_ error: WorkflowError) -> Int32 {
        switch error.kind {
        case .wrongPIN, .invalidInput: 15
        case .pinLastTry: 16
        case .pinLocked: 17
        case .card: 19
        default: 29
        }
    }

    /// Shows the summary at the deadline, then late categories as they arrive; returns the exit code.
    func present(
        _ runner: IncidentRunner,
        updates: AsyncStream<IncidentSnapshot>,
        cardTime: Duration?,
        started: ContinuousClock.Instant
    ) async throws -> Int32 {
        var atDeadline: IncidentState?
        var lateShown: Set<MedicalCategory> = []
        var final: IncidentState?
        for await snapshot in updates {
            let state = snapshot.state
            switch state.machine.phase {
            case .closed, .retryPending:
                final = state
            case .consentRecorded where state.authentication.status == .refused:
                final = state
            case .summary:
                if atDeadline == nil {
                    atDeadline = state
                    if !json {
                        let settled = state.categories.values.allSatisfy(\.isSettled)
                        let elapsed = ms(ContinuousClock.now - started)
                        printSnapshot(
                            state,
                            cardTime: cardTime,
                            title: settled
                                ? "Everything arrived in \(elapsed) (deadline \(deadlineMs) ms)"
                                : "At the deadline (\(deadlineMs) ms): what has arrived"
                        )
                        flushOutput()
                    }
                } else if !json, let atDeadline {
                    for category in MedicalCategory.allCases
                    where state[category]?.isSettled == true && atDeadline[category]?.isSettled != true
                        && !lateShown.contains(category)
                    {
                        lateShown.insert(category)
                        print("late: \(category.rawValue) \(statusLine(state[category]))")
                        flushOutput()
                    }
                }
                if state.retry != nil || state.categories.values.allSatisfy(\.isSettled) { final = state }
            default:
                continue
            }
            if final != nil { break }
        }
        let current = await runner.snapshot().state
        let last = final ?? current
        var records: [MedicalCategory: CategoryRecords] = [:]
        for category in MedicalCategory.allCases {
            if let stored = await runner.records(category) { records[category] = stored }
        }
        if json {
            try printJSON(
                FetchOutput(
                    atDeadline: atDeadline ?? last,
                    final: last,
                    records: records,
                    cardTime: cardTime,
                    total: ContinuousClock.now - started
                )
            )
        } else {
            if atDeadline == nil { printSnapshot(last, cardTime: cardTime, title: "Not authenticated") }
            printRecords(records)
            flushOutput()
        }
        return failureExit(last)
    }

    /// The exit code of an incident that ended without a summary: refused consent 21, certificate problem 22, no
    /// such patient 23, onshi unreachable or failing 24, maintenance 25, the card's signature 19, anything else 29.
    func failureExit(_ state: IncidentState) -> Int32 {
        guard state.authentication.status != .ok else { return 0 }
        guard let code = state.authentication.code else { return state.machine.phase == .summary ? 0 : 29 }
        let reason = state.authentication.reason ?? code
        FileHandle.standardError.write(Data("error: \(reason)\n".utf8))
        switch code {
        case EligibilityError.Code.consentRefused.description: return 21
        case EligibilityError.Code.certificateProblem.description: return 22
        case EligibilityError.Code.notFound.description: return 23
        case EligibilityError.Code.maintenance.description: return 25
        case EligibilityError.Code.signingFailed.description: return 19
        case EligibilityError.Code.unreachable.description, EligibilityError.Code.timedOut.description,
            EligibilityError.Code.circuitOpen.description, EligibilityError.Code.connectionLost.description,
            EligibilityError.Code.serverError.description, EligibilityError.Code.rateLimited.description:
            return 24
        default: return 29
        }
    }

    func printSnapshot(_ state: IncidentState, cardTime: Duration?, title: String) {
        print("== \(title)")
        if let cardTime { print("card read in \(ms(cardTime))") }
        if state.authentication.status == .ok {
            let consent =
                state.consentAvailableUntil.map {
                    "consent \(state.machine.consent?.rawValue ?? "?") until \(ISO8601DateFormatter().string(from: $0))"
                } ?? ""
            print(
                "session open: qualification validity \(state.authentication.qualificationValidity.map(String.init) ?? "?") \(consent)"
            )
        } else if let reason = state.authentication.reason {
            print("NOT AUTHENTICATED: \(reason)")
        }
        for category in MedicalCategory.allCases {
            guard let progress = state[category] else { continue }
            print("  \(category.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(statusLine(progress))")
        }
    }

    func statusLine(_ progress: CategoryProgress?) -> String {
        guard let progress else { return "pending" }
        let elapsed = progress.milliseconds.map { "\($0) ms" } ?? ""
        switch progress.status {
        case .pending: return "pending"
        case .retrying: return "retrying: \(progress.reason ?? "")"
        case .arrived, .late: return "ok         \(elapsed)  \(progress.count ?? 0) records"
        case .noneOnRecord: return "empty      \(elapsed)"
        case .timedOut: return "TIMED OUT  \(elapsed)"
        case .cancelled: return "CANCELLED  \(elapsed)"
        case .failed: return "FAILED     \(elapsed)  \(progress.reason ?? "")"
        }
    }

    func printRecords(_ records: [MedicalCategory: CategoryRecords]) {
        print("== Summary")
        for category in MedicalCategory.allCases {
            guard let stored = records[category] else { continue }
            print("[\(category.rawValue)]")
            let lines = RecordText.lines(stored)
            for line in lines.prefix(12) { print("  " + line) }
            if lines.count > 12 { print("  … \(lines.count - 12) more") }
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

    /// The status words of the CLI's JSON (stable for scripts and drills).
    static func label(_ progress: CategoryProgress?) -> String {
        switch progress?.status {
        case nil, .pending: "pending"
        case .arrived, .late: "ok"
        case .noneOnRecord: "empty"
        case .timedOut: "timed-out"
        case .cancelled: "cancelled"
        case .failed: "failed"
        case .retrying: "retrying"
        }
    }

    init(
        atDeadline: IncidentState,
        final: IncidentState,
        records: [MedicalCategory: CategoryRecords],
        cardTime: Duration?,
        total: Duration
    ) {
        func ms(_ d: Duration) -> Double {
            Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        }
        cardMilliseconds = cardTime.map(ms)
        totalMilliseconds = ms(total)
        authenticated = final.authentication.status == .ok
        authenticationError = authenticated ? nil : final.authentication.code
        qualificationValidity = final.authentication.qualificationValidity
        self.atDeadline = Dictionary(
            uniqueKeysWithValues: final.categories.keys.map { ($0, Self.label(atDeadline.categories[$0])) }
        )
        categories = Dictionary(
            uniqueKeysWithValues: final.categories.map { name, progress in
                let category = MedicalCategory(rawValue: name)
                return (
                    name,
                    Category(
                        status: Self.label(progress),
                        milliseconds: progress.milliseconds.map(Double.init),
                        code: progress.code,
                        reason: progress.status == .failed ? progress.reason : nil,
                        records: category.flatMap { records[$0] }
                    )
                )
            }
        )
    }
}
