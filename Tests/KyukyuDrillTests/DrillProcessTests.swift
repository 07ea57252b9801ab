import Foundation
import KyukyuTestbed
import Testing

@testable import KyukyuDrill

/// Issue 10's small drill in `make test`: `kyukyu-drill` as a process, with 2 ambulances (each a gateway process with
/// its own private pcscd, vpcd reader, card simulator and network simulator), 2 hospitals (receiver processes) and the
/// eligibility stub, 30 incidents with every failure of the field, compressed 120 times. It must reconcile the three
/// ledgers and meet the goals; the HTML report is rendered from its JSON.
@Suite(
    "The small drill, every part a process",
    .serialized,
    .enabled(if: PrivatePCSCD.unavailableReason == nil),
    .timeLimit(.minutes(20))
)
struct DrillProcessTests {
    static let portBase =
        (ProcessInfo.processInfo.environment["KYUKYU_TEST_BASE_PORT"].flatMap { Int($0) } ?? 20100) + 2900

    @Test func thirtyIncidentsReconcileAndMeetTheGoals() async throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-drill-\(Self.portBase)").path
        try? FileManager.default.removeItem(atPath: out)
        let result = try await Commands.run(
            try Commands.executable("kyukyu-drill"),
            [
                "--scenario", packageRoot + "/simulators/scenarios/ci-small.json", "--out", out, "--bin-dir",
                Commands.binDirectory(), "--port-base", String(Self.portBase),
            ],
            timeout: .seconds(1080)
        )
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr.suffix(2000))")
        let data = try #require(FileManager.default.contents(atPath: out + "/report.json"))
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let report = try decoder.decode(DrillReport.self, from: data)

        #expect(report.incidents.count == 30)
        for goal in report.goals { #expect(goal.met, "\(goal.text): \(goal.value)") }
        let ledger = report.reconciliation
        #expect(ledger.mismatches.isEmpty, "\(ledger.mismatches)")
        #expect(ledger.vaultsEmpty)
        #expect(ledger.auditsVerify)
        #expect(ledger.documents.missing == 0 && ledger.documents.duplicates == 0)
        // Every category a gateway stored was viewed at onshi, and every session at onshi belongs to an incident.
        #expect(ledger.viewings.gateways > 0 && ledger.viewings.matched == ledger.viewings.gateways)
        #expect(ledger.viewings.unaccounted == 0)
        // Every failure the plan drew was really driven, and the drill did better than the survey's 17.4 %.
        let conditions = Set(report.incidents.flatMap(\.conditions))
        #expect(
            conditions.isSuperset(of: ["gateway-restart", "card-removed", "divert", "dead-zone", "refused-consent"])
        )
        #expect(report.summary.dataObtainedPercent > report.national.dataObtainedPercent)
        for incident in report.incidents {
            #expect(incident.problems.isEmpty, "incident \(incident.number): \(incident.problems)")
        }

        // No log of any part (gateways, receivers, the stub, card and network simulators, pcscd) holds any
        // synthetic patient's name, kana, birth date, address, postal code or insurer number.
        let leaks = try PatientDataSearch(holders: 1...200).findings(under: out)
        #expect(leaks.isEmpty, "patient data in the drill's logs: \(leaks.prefix(20))")

        // The HTML report renders from it, self-contained.
        let python = packageRoot + "/state/fhir-venv/bin/python3"
        if FileManager.default.isExecutableFile(atPath: python) {
            let render = try await Commands.run(
                python,
                [packageRoot + "/scripts/drill-report.py", out + "/report.json"],
                timeout: .seconds(120)
            )
            #expect(render.status == 0, "\(render.stderr)")
            let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
            #expect(html.contains("<svg"))
            #expect(!html.contains("<script src") && !html.contains("<link"))
        }
    }
}
