import ArgumentParser
import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import Logging

/// `kyukyu-eligibility-sim`: the onshi-like eligibility stub.
@main
struct EligibilitySimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-eligibility-sim",
        abstract: "An onshi-like online eligibility stub with a synthetic population (HTTPS with mutual TLS).",
        subcommands: [Serve.self, IssueTerminalCert.self, Population.self]
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the onshi API (mutual TLS) and the admin API (plain HTTP) on loopback.",
        discussion: "Stops on SIGINT or SIGTERM. See docs/eligibility-stub.md."
    )

    @Option(help: "Loopback address to bind: 127.0.0.1, ::1 or localhost.")
    var host = "127.0.0.1"

    @Option(help: "Port of the onshi API (HTTPS, client certificate required).")
    var port = 8443

    @Option(help: "Port of the admin API (plain HTTP, loopback).")
    var adminPort = 8080

    @Option(help: "Folder of the card simulator's test PKI (the user-auth CA and manifest).")
    var pkiDir = "state/sim-pki"

    @Option(help: "Folder of the terminal CA and the server certificate (made on first use).")
    var tlsDir = "state/eligibility-tls"

    @Option(help: "Fault configuration (JSON) applied at start; see docs/eligibility-stub.md.")
    var faults: String?

    @Option(help: "Revocation list (JSON) applied at start.")
    var revocations: String?

    @Option(help: "Seed of the fault generators (when the fault file sets none).")
    var seed: UInt64 = 1

    @Option(help: "Lookups search holders 1...N.")
    var population = 200

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        var logger = Logger(label: "kyukyu.eligibility-sim")
        guard let level = Logger.Level(rawValue: self.logLevel) else {
            throw ValidationError("unknown log level \(self.logLevel)")
        }
        logger.logLevel = level
        var faultConfiguration = FaultConfiguration()
        if let path = self.faults {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read \(path)")
            }
            faultConfiguration = try FaultConfiguration.decode(json: Array(data))
        }
        var revocationList = RevocationList()
        if let path = self.revocations {
            guard let data = FileManager.default.contents(atPath: path),
                let list = try? JSONDecoder().decode(RevocationList.self, from: data)
            else { throw ValidationError("cannot read a revocation list from \(path)") }
            revocationList = list
        }
        let simulator = try EligibilitySimulator(
            options: .init(
                host: self.host,
                port: self.port,
                adminPort: self.adminPort,
                pkiDirectory: self.pkiDir,
                tlsDirectory: self.tlsDir,
                faults: faultConfiguration,
                revocations: revocationList,
                seed: self.seed,
                service: .init(populationSize: self.population)
            ),
            logger: logger
        )
        let runningLogger = logger
        try await simulator.run { onshi, admin in
            runningLogger.notice(
                "eligibility stub listening",
                metadata: ["kyukyu.elig.port": "\(onshi)", "kyukyu.elig.admin_port": "\(admin)"]
            )
        }
    }
}

struct IssueTerminalCert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue-terminal-cert",
        abstract: "Issue a terminal (client) certificate: writes DEVICE.cert.pem, DEVICE.key.pem and ca.cert.pem.",
        discussion: """
            With --csr, signs the terminal's own request instead (kyukyu-gateway cert request onshi), so that its key \
            never leaves it, and writes the certificate followed by the CA's to --out (a file).
            """
    )

    @Option(help: "Device ID (the certificate's CN; 1-64 of A-Z a-z 0-9 . _ -). Not with --csr.")
    var device: String?

    @Option(help: "Folder to write into; with --csr, the file to write the certificates to.")
    var out: String

    @Option(help: "A terminal's certificate signing request (PEM) to sign.")
    var csr: String?

    @Option(help: "Folder of the terminal CA (made on first use).")
    var tlsDir = "state/eligibility-tls"

    @Option(help: "Validity in days.")
    var days = 365

    func run() throws {
        let logger = Logger(label: "kyukyu.eligibility-sim")
        let pki = try TerminalPKI.loadOrCreate(directory: self.tlsDir, logger: logger)
        if let csr {
            guard device == nil else { throw ValidationError("--device comes from the request with --csr") }
            let signed = try pki.signRequest(try String(contentsOfFile: csr, encoding: .utf8), days: self.days)
            try signed.write(toFile: self.out, atomically: true, encoding: .utf8)
            print(self.out)
            return
        }
        guard let device else { throw ValidationError("--device or --csr is needed") }
        for path in try pki.writeClientCertificate(deviceID: device, to: self.out, days: self.days) {
            print(path)
        }
    }
}

struct Population: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show synthetic patients.",
        subcommands: [Show.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print patient N (synthetic): archetype, qualification and record counts, or one category's XML."
        )

        @Argument(help: "Patient (holder) number.")
        var number: Int

        @Option(help: "Reference day YYYYMMDD (default: today in Japan).")
        var date: String?

        @Option(help: "Print this category's CategoryResponse XML instead of the summary.")
        var category: String?

        func run() throws {
            guard self.number >= 1 else { throw ValidationError("patient numbers start at 1") }
            let today: OnshiDate
            if let date {
                guard let day = OnshiDate(xmlText: date) else { throw ValidationError("dates are YYYYMMDD") }
                today = day
            } else {
                today = OnshiDate(japanDayOf: Date())
            }
            let patient = SyntheticPatient(number: self.number, today: today)
            if let name = self.category {
                guard let category = MedicalCategory(rawValue: name) else {
                    throw ValidationError(
                        "categories: \(MedicalCategory.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                let records = patient.records(category)
                let response = CategoryResponse(
                    header: MessageHeader(processedAt: Date(), medicalInstitutionCode: "0000000000"),
                    result: .completed,
                    category: category,
                    records: records
                )
                print(String(decoding: OnshiXML.encode(response), as: UTF8.self))
                return
            }
            let h = patient.holder
            print("patient \(patient.number) (SYNTHETIC) as of \(today)")
            print("  archetype: \(patient.archetype.rawValue)")
            print(
                "  name: \(h.fullName) (\(h.fullNameKana)), sex \(h.sex.rawValue), born \(h.birthDate.compact), age \(patient.age)"
            )
            print("  address: \(h.postalCode) \(h.address)")
            let insurer = patient.insurer
            print(
                "  insurer: \(insurer.insurerNumber) \(insurer.name), symbol \(insurer.symbol.isEmpty ? "-" : insurer.symbol), number \(insurer.number), copay \(insurer.copaymentPercent)%"
            )
            print("  qualification validity: \(patient.qualificationValidity)")
            for category in MedicalCategory.allCases {
                let records = patient.records(category)
                let size = OnshiXML.encode(
                    CategoryResponse(
                        header: MessageHeader(processedAt: Date(), medicalInstitutionCode: "0000000000"),
                        result: .completed,
                        category: category,
                        records: records
                    )
                ).count
                print(
                    "  \(category.rawValue): \(records.count) records, \(size) bytes (look-back \(category.lookBack))"
                )
            }
        }
    }
}
