import Foundation
import KyukyuDomain
import Testing

@testable import KyukyuReceiver

@Suite("The review's exports")
struct RegionReviewTests {
    @Test func csvFieldsAreQuotedAndInertInSpreadsheets() {
        #expect(RegionReview.field("plain") == "plain")
        #expect(RegionReview.field("a,b") == "\"a,b\"")
        #expect(RegionReview.field("say \"no\"") == "\"say \"\"no\"\"\"")
        #expect(RegionReview.field("=HYPERLINK(1)") == "'=HYPERLINK(1)")
        #expect(RegionReview.field("@SUM") == "'@SUM")
        #expect(RegionReview.field("-5") == "-5", "a number stays a number")
    }

    @Test func oneRowPerAskedHospitalWithTheTimeToAnswer() throws {
        let created = Date(timeIntervalSince1970: 1_795_000_000)
        let record = PlacementRecord(
            placement: UUID(),
            device: "ambulance-01",
            documentSet: UUID(),
            createdAt: created,
            placedAt: HospitalCode(rawValue: "1310000002"),
            placedTime: created.addingTimeInterval(95),
            cancelledAt: nil,
            summary: try PlacementSummary(
                ageDecade: 7,
                sex: nil,
                chiefComplaint: .dyspnoea,
                priority: .red,
                needs: [.dialysis, .stroke],
                etaMinutes: 12
            ),
            targets: [
                PlacementTargetRecord(
                    hospital: HospitalCode(rawValue: "1310000001")!,
                    answer: .declined,
                    reason: .noBeds,
                    answeredAt: created.addingTimeInterval(40),
                    staff: "NURSE-A"
                ),
                PlacementTargetRecord(
                    hospital: HospitalCode(rawValue: "1310000002")!,
                    answer: .accepted,
                    reason: nil,
                    answeredAt: created.addingTimeInterval(95),
                    staff: "NURSE-B"
                ),
            ]
        )
        let lines = RegionReview.placementsCSV([record]).components(separatedBy: "\r\n")
        #expect(lines.first == RegionReview.placementColumns.joined(separator: ","))
        #expect(lines.count == 4, "the header, two rows and the final line end")
        let declined = lines[1].components(separatedBy: ",")
        #expect(declined[RegionReview.placementColumns.firstIndex(of: "answer")!] == "declined")
        #expect(declined[RegionReview.placementColumns.firstIndex(of: "reason")!] == "no-beds")
        #expect(declined[RegionReview.placementColumns.firstIndex(of: "seconds_to_answer")!] == "40")
        #expect(declined[RegionReview.placementColumns.firstIndex(of: "age_band")!] == "70-79")
        #expect(declined[RegionReview.placementColumns.firstIndex(of: "needs")!] == "dialysis stroke")
        let bundle =
            try JSONSerialization.jsonObject(
                with: try RegionReview.placementsFHIR([record], generatedAt: created)
            ) as? [String: Any]
        let tasks = (bundle?["entry"] as? [[String: Any]])?.compactMap { $0["resource"] as? [String: Any] }
        #expect(tasks?.map { $0["status"] as? String } == ["rejected", "accepted"])
        #expect(tasks?.first?["priority"] as? String == "stat")
    }
}
