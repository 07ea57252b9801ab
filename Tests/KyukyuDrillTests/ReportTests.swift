import Foundation
import Testing

@testable import KyukyuDrill

/// The report's figures and goals from known outcomes.
@Suite("Drill report")
struct ReportTests {
    static func incident(
        _ number: Int,
        eligible: Bool = true,
        data: Bool = true,
        beforeArrival: Bool? = true,
        taps: Int? = 1,
        cause: String = "card",
        coverage: Bool = true
    ) -> IncidentOutcome {
        IncidentOutcome(
            number: number,
            ambulance: "ambulance-01",
            hospital: "1300001001",
            cause: cause,
            conditions: [],
            eligible: eligible,
            dataObtained: data,
            identification: data ? "individual-number-card" : nil,
            summaryBeforeArrival: beforeArrival,
            taps: taps,
            sceneToSummarySeconds: data ? Double(60 + number) : nil,
            deliveryLatencyMs: beforeArrival == nil ? nil : Double(40 + number),
            timeline: [],
            categories: [
                "medications": .init(state: number.isMultiple(of: 2) ? "arrived" : "late", ms: Double(100 * number))
            ],
            problems: [],
            documentSet: nil,
            latestVersion: nil,
            coverage: coverage
        )
    }

    static let clean = Reconciliation(
        viewings: .init(sessions: 1, onshi: 1, gateways: 1, matched: 1, repeats: 0, answersLost: 0, unaccounted: 0),
        documents: .init(sent: 1, stored: 1, duplicates: 0, missing: 0),
        vaultsEmpty: true,
        auditsVerify: true,
        mismatches: []
    )

    static func report(_ incidents: [IncidentOutcome], _ reconciliation: Reconciliation = clean) throws -> DrillReport {
        DrillReport(
            scenario: try DrillScenario.load(path: ScenarioTests.scenarios + "/ci-small.json"),
            startedAt: Date(),
            wallSeconds: 1,
            incidents: incidents,
            reconciliation: reconciliation
        )
    }

    func goal(_ report: DrillReport, _ id: String) throws -> DrillReport.Goal {
        try #require(report.goals.first { $0.id == id })
    }

    @Test func everyGoalMetAndTheLedgersCleanIsOK() throws {
        let report = try Self.report((1...100).map { Self.incident($0) })
        #expect(report.ok)
        #expect(report.summary.dataObtainedPercent == 100)
        #expect(report.summary.sceneToSummarySeconds.p50 == 110)
        #expect(report.summary.sceneToSummarySeconds.p99 == 159)
        #expect(report.summary.categoryArrival["medications"]?.arrived == 50)
        #expect(report.summary.categoryArrival["medications"]?.late == 50)
    }

    @Test func oneEligibleIncidentWithoutDataMissesTheDataGoal() throws {
        var incidents = (1...100).map { Self.incident($0) }
        incidents[7] = Self.incident(8, data: false)
        // Without a card or the four fields, no data is no failure of the gateway.
        incidents[8] = Self.incident(9, eligible: false, data: false, cause: "no-card")
        let report = try Self.report(incidents)
        #expect(try goal(report, "data-obtained").met == false)
        #expect(report.summary.eligible == 99)
        #expect(!report.ok)
        #expect(report.summary.byCause["no-card"]?.dataObtained == 0)
    }

    @Test func beforeArrivalNeedsNinetyNinePercentOfTheDocumentsSentInCoverage() throws {
        var incidents = (1...100).map { Self.incident($0) }
        incidents[0] = Self.incident(1, beforeArrival: false)
        #expect(try goal(try Self.report(incidents), "before-arrival").met)
        incidents[1] = Self.incident(2, beforeArrival: false)
        #expect(try goal(try Self.report(incidents), "before-arrival").met == false)
        // A patient with no coverage at all until the hospital does not count against it: 49 of 50 is 98 %, but
        // 49 of the 49 sent in coverage is all.
        var fifty = (1...50).map { Self.incident($0) }
        fifty[0] = Self.incident(1, beforeArrival: false)
        #expect(try goal(try Self.report(fifty), "before-arrival").met == false)
        fifty[0] = Self.incident(1, eligible: false, beforeArrival: false, coverage: false)
        #expect(try goal(try Self.report(fifty), "before-arrival").met)
    }

    @Test func threeTapsMissTheTapGoal() throws {
        var incidents = (1...10).map { Self.incident($0) }
        incidents[3] = Self.incident(4, taps: 3)
        let report = try Self.report(incidents)
        #expect(try goal(report, "taps").met == false)
        #expect(report.summary.taps.histogram == ["1": 9, "3": 1])
    }

    @Test func aMismatchInTheLedgersIsNotOK() throws {
        var reconciliation = Self.clean
        reconciliation.mismatches = ["ambulance-01 medications: 2 viewing(s) at onshi, 1 in the gateway's audit"]
        #expect(try Self.report((1...3).map { Self.incident($0) }, reconciliation).ok == false)
    }
}
