import ArgumentParser
import Foundation
import KyukyuDrill
import Logging

/// `kyukyu-drill`: drills (`run`, the default) and a region's hub to work with (`hub`, for `make run-region`).
@main
struct DrillMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-drill",
        abstract: "Drills of a region, and a region's hub to work with.",
        subcommands: [DrillCommand.self, HubCommand.self],
        defaultSubcommand: DrillCommand.self
    )
}

/// `kyukyu-drill run`: a region's shift of ambulances and hospitals, every part a real process, with the field's
/// failures (issue 10). Writes `report.json`; `scripts/drill-report.py` renders it as a self-contained HTML page.
struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a drill: M ambulances (gateways) and H hospitals (receivers) against the eligibility stub.",
        discussion: """
            Needs root (each ambulance's private pcscd runs in its own mount namespace) and the built executables.
            Exit status: 0 when every goal is met and the ledgers reconcile, 3 when not, 2 for a bad scenario,
            1 when the region could not run. Scenarios: simulators/scenarios/*.json; docs/drills.md.
            """
    )

    @Option(help: "The scenario file (JSON).")
    var scenario: String

    @Option(help: "The folder for the region's state and logs, and report.json.")
    var out = "state/drill"

    @Option(help: "The folder of the built executables.")
    var binDir = ".build/debug"

    @Option(help: "The first TCP port on 127.0.0.1 (the region takes a block from there).")
    var portBase = 23000

    @Option(help: "Run this many incidents instead of the scenario's (a shorter run of the same mix).")
    var incidents: Int?

    @Option(help: "Use this compression instead of the scenario's.")
    var compression: Double?

    @Option(help: "The drill's own log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(help: "The gateways' log level (their logs are in OUT/region/logs).")
    var partsLogLevel = "info"

    func validate() throws {
        guard (1024...60_000).contains(portBase) else { throw ValidationError("--port-base must be 1024…60000") }
        if let incidents, !(1...100_000).contains(incidents) {
            throw ValidationError("--incidents must be 1…100000")
        }
        guard Logger.Level(rawValue: logLevel) != nil, Logger.Level(rawValue: partsLogLevel) != nil else {
            throw ValidationError(
                "--log-level and --parts-log-level must be trace, debug, info, notice, warning, error or critical"
            )
        }
    }

    func run() async throws {
        var logger = Logger(label: "kyukyu.drill")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var loaded: DrillScenario
        do {
            loaded = try DrillScenario.load(path: scenario)
        } catch {
            print("kyukyu-drill: \(error.reason)")
            throw ExitCode(2)
        }
        if let incidents { loaded.incidents = incidents }
        if let compression { loaded.compression = compression }
        if let problem = loaded.problem {
            print("kyukyu-drill: \(problem)")
            throw ExitCode(2)
        }
        let output = URL(fileURLWithPath: out).standardizedFileURL.path
        let bin = URL(fileURLWithPath: binDir).standardizedFileURL.path
        let drill = Drill(
            scenario: loaded,
            layout: RegionLayout(
                binDirectory: bin,
                directory: output + "/region",
                portBase: portBase,
                partsLogLevel: partsLogLevel
            ),
            logger: logger
        )
        // SIGINT or SIGTERM stops the shift and every part of the region before the drill exits.
        let running = Task { try await drill.run() }
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { running.cancel() }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let report: DrillReport
        do {
            report = try await running.value
        } catch let error as DrillError {
            print("kyukyu-drill: \(error.reason)")
            throw ExitCode(error.isScenarioProblem ? 2 : 1)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let path = output + "/report.json"
        try encoder.encode(report).write(to: URL(fileURLWithPath: path))
        print(Self.summary(report))
        print("report: \(path)")
        if !report.ok { throw ExitCode(3) }
    }

    static func summary(_ report: DrillReport) -> String {
        var lines = [
            "drill \(report.scenario.name): \(report.incidents.count) incidents, \(report.scenario.ambulances) ambulances, "
                + "\(report.scenario.hospitals) hospitals, \(report.wallSeconds) s",
            "data obtained: \(report.summary.dataObtainedPercent) % of all (national survey: "
                + "\(report.national.dataObtainedPercent) %)",
        ]
        for goal in report.goals {
            lines.append("\(goal.met ? "met    " : "NOT MET") \(goal.text): \(goal.value) (goal \(goal.target))")
        }
        let ledger = report.reconciliation
        lines.append(
            "ledgers: viewings onshi \(ledger.viewings.onshi) / gateways \(ledger.viewings.gateways); documents sent "
                + "\(ledger.documents.sent), stored \(ledger.documents.stored), duplicates \(ledger.documents.duplicates), "
                + "missing \(ledger.documents.missing); vaults empty \(ledger.vaultsEmpty); audits verify \(ledger.auditsVerify)"
        )
        for mismatch in ledger.mismatches.prefix(20) { lines.append("  mismatch: \(mismatch)") }
        return lines.joined(separator: "\n")
    }
}
