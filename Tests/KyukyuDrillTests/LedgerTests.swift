import Foundation
import Testing

@testable import KyukyuDrill

/// Onshi's viewing log against the gateways' audit trails, from known ledgers.
@Suite("Drill ledgers: viewings")
struct LedgerTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func incident(_ id: String, holder: Int?, from: Double, until: Double, faulted: Bool = false)
        -> IncidentDriver.LedgerEntry
    {
        IncidentDriver.LedgerEntry(
            incidentID: id,
            terminal: "ambulance-01",
            holder: holder,
            from: start.addingTimeInterval(from),
            until: start.addingTimeInterval(until),
            faulted: faulted
        )
    }

    func session(at offset: Double, patient: Int?, device: String = "ambulance-01", _ categories: [String])
        -> [String: Any]
    {
        [
            "deviceID": device, "patientNumber": patient as Any, "method": "card", "resultCode": "0000",
            "at": ISO8601DateFormatter().string(from: start.addingTimeInterval(offset)),
            "fetches": categories.map { ["category": $0, "resultCode": "0000"] },
        ]
    }

    @Test func eachStoredCategoryIsBackedAndRepeatsAreCounted() {
        let incidents = [incident("A", holder: 3, from: 0, until: 10), incident("B", holder: 3, from: 12, until: 20)]
        let viewings = [
            session(at: 2, patient: 3, ["medications", "medications", "visits"]),
            session(at: 14, patient: 3, ["visits"]),
        ]
        let result = Ledgers.matchViewings(
            viewings,
            to: incidents,
            stored: ["a": ["medications": 1, "visits": 1], "b": ["visits": 1]]
        )
        #expect(result.mismatches.isEmpty, "\(result.mismatches)")
        #expect(result.counts.matched == 3)
        #expect(result.counts.repeats == 1)
        #expect(result.counts.sessions == 2 && result.counts.unaccounted == 0)
    }

    @Test func aCategoryStoredWithoutAFetchAtOnshiIsAMismatch() {
        let result = Ledgers.matchViewings(
            [session(at: 2, patient: 3, ["visits"])],
            to: [incident("A", holder: 3, from: 0, until: 10)],
            stored: ["a": ["visits": 1, "medications": 1]]
        )
        #expect(result.mismatches == ["ambulance-01: medications stored with no fetch at onshi"])
    }

    @Test func anAnswerLostIsAMismatchOnlyWithoutAFault() {
        let viewings = [session(at: 2, patient: 3, ["visits", "surgery"])]
        let stored = ["a": ["visits": 1]]
        let faulted = Ledgers.matchViewings(
            viewings,
            to: [incident("A", holder: 3, from: 0, until: 10, faulted: true)],
            stored: stored
        )
        #expect(faulted.mismatches.isEmpty)
        #expect(faulted.counts.answersLost == 1)
        let clean = Ledgers.matchViewings(viewings, to: [incident("A", holder: 3, from: 0, until: 10)], stored: stored)
        #expect(clean.mismatches == ["ambulance-01: surgery answered by onshi, never stored, with no fault"])
        // Still pending on the tablet when the patient arrived: the late answer went with the incident.
        var pending = incident("A", holder: 3, from: 0, until: 10)
        pending.unsettled = ["surgery"]
        #expect(Ledgers.matchViewings(viewings, to: [pending], stored: stored).mismatches.isEmpty)
    }

    @Test func aSessionNoIncidentAccountsForIsAMismatch() {
        let incidents = [incident("A", holder: 3, from: 0, until: 10)]
        let result = Ledgers.matchViewings(
            [
                session(at: 30, patient: 3, []),  // after the incident
                session(at: 2, patient: 4, []),  // another patient
                session(at: 2, patient: 3, device: "ambulance-02", []),  // another terminal
            ],
            to: incidents,
            stored: [:]
        )
        #expect(result.counts.unaccounted == 3)
        #expect(result.mismatches.count == 3)
    }
}
