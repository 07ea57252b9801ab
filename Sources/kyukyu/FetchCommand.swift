import ArgumentParser
import Crypto
import Foundation
import KyukyuCard
import KyukyuEligibility
import KyukyuOnshi
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

    @Option(help: "Card-less lookup: full name (family and given separated by a space).")
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

    @Option(help: "Consent basis: verbal, exception (unconscious, life-or-body), or refused.")
    var consent: ConsentBasis

    @Option(help: "The crew member's ID, recorded with the viewing.")
    var crew: String

    @Flag(help: "PIN mode: read the 4-digit user-authentication PIN from stdin; the card signs onshi's nonce.")
    var pinStdin = false

    @Flag(help: "Allow spending the PIN's last try.")
    var confirmLastTry = false

    @Option(help: "Overall deadline in milliseconds: what has arrived by then is shown.")
    var deadlineMs = 3000

    @Option(help: "Per-category deadline in milliseconds (default: twice the overall); late categories follow.")
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

    func validate() throws {
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
        guard deadlineMs > 0 else { throw ValidationError("--deadline-ms must be positive") }
        _ = try selectedCategories()
    }

    func selectedCategories() throws -> [OnshiCategory] {
        guard let categories else { return OnshiCategory.allCases }
        return try categories.split(separator: ",").map { name in
            guard let category = OnshiCategory(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError(
                    "unknown category \(name); known: \(OnshiCategory.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            return category
        }
    }

    func lookupQuery() throws -> PatientQuery? {
        if let insurerNumber, let insuredSymbol, let insuredNumber {
            return .insurance(insurerNumber: insurerNumber, symbol: insuredSymbol, number: insuredNumber)
        }
        guard let name, let birth, let sex, let address else { return nil }
        let digits = birth.filter(\.isNumber)
        guard digits.count == 8, let year = Int(digits.prefix(4)), let month = Int(digits.dropFirst(4).prefix(2)),
            let day = Int(digits.suffix(2))
        else { throw ValidationError("--birth must be YYYY-MM-DD") }
        let code: OnshiSex
        switch sex.lowercased() {
        case "male", "m", "1": code = .male
        case "female", "f", "2": code = .female
        case "other", "9", "not-applicable": code = .notApplicable
        default: throw ValidationError("--sex must be male, female or other")
        }
        return .demographics(
            name: name.replacingOccurrences(of: " ", with: "\u{3000}"),
            birthDate: OnshiDate(year: year, month: month, day: day),
            sex: code,
            address: address
        )
    }

    func run() async throws {
        let logger = global.makeLogger()
        let secret = pinStdin ? try readSecretLine() : nil
        let transport: HTTPOnshiTransport
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
        let deadlines = FetchDeadlines(
            overall: .milliseconds(deadlineMs),
            perCategory: categoryDeadlineMs.map { .milliseconds($0) }
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
        secret: String?,
        categories: [OnshiCategory],
        deadlines: FetchDeadlines,
        started: ContinuousClock.Instant,
        logger: Logger
    ) async throws -> Int32 {
        let exitCode: Int32
        if let query = try lookupQuery() {
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
                try await reader.withSession(reader: self.reader) { session in
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
                    return try await present(fetch, cardTime: cardTime, started: started)
                }
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
        }
        var late: [(OnshiCategory, CategoryStatus)] = []
        if !atDeadline.isComplete {
            for await update in fetch.updates {
                guard case .category(let category, let status) = update, status.isFinal,
                    atDeadline.categories[category]?.isFinal != true
                else { continue }
                late.append((category, status))
                if !json { print("late: \(category.rawValue) \(statusLine(status))") }
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
        }
        if let failure = final.authenticationFailure {
            FileHandle.standardError.write(Data("error: \(failure.reason)\n".utf8))
            switch failure.code {
            case .consentRefused: return 21
            case .certificateProblem: return 22
            case .notFound: return 23
            case .maintenance: return 25
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
        for category in OnshiCategory.allCases {
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
        case .failed(_, let reason, let elapsed): return "FAILED     \(ms(elapsed))  \(reason)"
        }
    }

    func printRecords(_ snapshot: FetchSnapshot) {
        print("== Summary")
        for category in OnshiCategory.allCases {
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

extension ConsentBasis: ExpressibleByArgument {}

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
