import Foundation
import Testing

@testable import KyukyuDrill

/// The scenario files, their checks, and the shift drawn from them.
@Suite("Drill scenarios and plans")
struct ScenarioTests {
    static let scenarios = packageRoot + "/simulators/scenarios"

    @Test(arguments: ["ci-small", "survey-mix", "quiet-night", "mass-casualty"])
    func everyShippedScenarioLoads(name: String) throws {
        let scenario = try DrillScenario.load(path: Self.scenarios + "/\(name).json")
        #expect(scenario.name == name)
        #expect(scenario.problem == nil)
    }

    @Test func aMissingKeyIsNamedWithItsPath() throws {
        var json = try String(contentsOfFile: Self.scenarios + "/ci-small.json", encoding: .utf8)
        json = json.replacingOccurrences(of: #""noCard": 0.2,"#, with: "")
        let error = try #require(throws: DrillError.self) { try DrillScenario.load(path: write(json)) }
        #expect(error.reason.hasSuffix("rates.noCard is missing"), "\(error.reason)")
        #expect(error.isScenarioProblem)
    }

    @Test func aValueOutOfRangeIsRefusedInWords() throws {
        var json = try String(contentsOfFile: Self.scenarios + "/ci-small.json", encoding: .utf8)
        json = json.replacingOccurrences(of: #""divert": 0.1"#, with: #""divert": 1.5"#)
        let error = try #require(throws: DrillError.self) { try DrillScenario.load(path: write(json)) }
        #expect(error.reason.hasSuffix("divert must be a chance from 0 to 1"), "\(error.reason)")
        json = json.replacingOccurrences(of: #""divert": 1.5"#, with: #""divert": 0.1"#)
            .replacingOccurrences(of: #""transport": [8, 12]"#, with: #""transport": [12, 8]"#)
        let span = try #require(throws: DrillError.self) { try DrillScenario.load(path: write(json)) }
        #expect(span.reason.contains("timing.transport must be [low, high]"), "\(span.reason)")
    }

    @Test func theSameSeedDrawsTheSameShiftAndAnotherSeedAnother() throws {
        var scenario = try DrillScenario.load(path: Self.scenarios + "/survey-mix.json")
        let first = ShiftPlan.make(scenario)
        #expect(first == ShiftPlan.make(scenario))
        scenario.seed += 1
        #expect(first != ShiftPlan.make(scenario))
    }

    /// The make-test drill covers every failure of the field at least once (its seed was chosen for it).
    @Test func theSmallDrillCoversEveryFailure() throws {
        let plans = ShiftPlan.make(try DrillScenario.load(path: Self.scenarios + "/ci-small.json"))
        let seen = Set(plans.flatMap(\.conditions))
        let wanted: Set<DrillCause> = [
            .noCard, .noCardFourFields, .urgentTransport, .android, .iphone, .expiredCertificate, .revokedCertificate,
            .suspendedCertificate, .refusedConsent, .unconscious, .divert, .gatewayRestart, .cardRemoved, .deadZone,
            .noCoverage,
        ]
        #expect(wanted.subtracting(seen).isEmpty, "missing: \(wanted.subtracting(seen).map(\.rawValue).sorted())")
    }

    @Test func survey1000IncidentsTheMixFollowsTheRates() throws {
        let scenario = try DrillScenario.load(path: Self.scenarios + "/survey-mix.json")
        let plans = ShiftPlan.make(scenario)
        #expect(plans.count == 1000)
        let noCard = Double(plans.filter { $0.credential == .none }.count) / 1000
        #expect(abs(noCard - scenario.rates.noCard) < 0.05, "\(noCard)")
        // Revoked and suspended holders are the stub's revocation list; nobody else gets them.
        for plan in plans {
            switch plan.certificate {
            case .revoked: #expect(ShiftPlan.revokedHolders.contains(plan.holder))
            case .suspended: #expect(ShiftPlan.suspendedHolders.contains(plan.holder))
            default: #expect(ShiftPlan.validHolders.contains(plan.holder))
            }
        }
    }

    /// The compression rule for a dead zone at the card touch: shorter than the floor in the field, it keeps its
    /// length; longer, it is compressed but never below the floor; far longer, simply compressed.
    @Test func deadZonesOutlastTheDeadlinesInTheDrillWhenTheyDoInTheField() {
        let floor = 8.0
        func real(_ field: Double, _ compression: Double) -> Double {
            deadZoneRealSeconds(field: field, compression: compression, floor: floor)
        }
        #expect(real(5, 120) == 5)
        #expect(real(300, 120) == 8)
        #expect(real(1800, 120) == 15)
        #expect(real(60, 1) == 60)
    }

    private func write(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("scenario-\(UUID()).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// The package's root folder.
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return "."
}()
