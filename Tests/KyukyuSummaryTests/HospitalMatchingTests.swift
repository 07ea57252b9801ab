import Foundation
import KyukyuDomain
import KyukyuOnshi
import KyukyuSummary
import Testing

@Suite("Hospital matching: a patient's needs, and the crew's hospitals ranked against them")
struct HospitalMatchingTests {
    static let time = Date(timeIntervalSince1970: 1_795_773_600)
    static let dialysisFlag = RedFlag.dialysis(lastSession: OnshiDate(year: 2026, month: 11, day: 25))

    /// A synthetic hospital code, 999999999`n`.
    static func code(_ n: Int) -> HospitalCode { HospitalCode(rawValue: "999999999\(n)")! }

    /// Hospital `n`'s publication.
    static func publication(_ n: Int, _ conditions: [AcceptanceCondition: ConditionAcceptance]) throws
        -> HospitalAcceptance
    {
        try HospitalAcceptance(hospital: code(n), conditions: conditions, revision: 1, updatedAt: time)
    }

    static func codes(_ ranked: [RankedHospital]) -> [HospitalCode] { ranked.map(\.code) }

    // MARK: Needs

    @Test(arguments: [
        (ChiefComplaint.strokeSymptoms, AcceptanceCondition.stroke as AcceptanceCondition?),
        (.chestPain, .stemi),
        (.cardiacArrest, .stemi),
        (.trauma, .trauma),
        (.bleeding, .trauma),
        (.burn, .burns),
        (.dyspnoea, nil),
        (.alteredConsciousness, nil),
        (.seizure, nil),
        (.abdominalPain, nil),
        (.fever, nil),
        (.poisoning, nil),
        (.other, nil),
    ])
    func aComplaintNeedsItsCondition(_ complaint: ChiefComplaint, _ condition: AcceptanceCondition?) {
        let needs = PatientNeeds.derive(chiefComplaint: complaint)
        #expect(needs.conditions == (condition.map { [$0] } ?? []))
        #expect(needs.needs.first?.reasons == (condition == nil ? nil : [.chiefComplaint(complaint)]))
    }

    @Test func everyComplaintIsCoveredAbove() {
        // A new complaint must be added to the table above (and a decision made on its condition).
        #expect(ChiefComplaint.allCases.count == 13)
    }

    @Test func aDialysisFlagNeedsDialysis() {
        let needs = PatientNeeds.derive(redFlags: [Self.dialysisFlag])
        #expect(needs.needs == [PatientNeeds.Need(condition: .dialysis, reasons: [.redFlag(Self.dialysisFlag)])])
    }

    @Test func otherRedFlagsNeedNoCondition() {
        let needs = PatientNeeds.derive(redFlags: [
            .drug(.anticoagulant, names: ["syntheticdrug"]),
            .allergy(kind: .drug, substance: "syntheticsubstance"),
            .recentSurgery(name: "synthetic operation", date: OnshiDate(year: 2026, month: 10, day: 1)),
        ])
        #expect(needs.isEmpty)
        #expect(needs == .none)
    }

    @Test(arguments: [
        (0, true), (1, true), (14, true), (15, false), (16, false), (80, false), (-1, false),
    ])
    func childrenYoungerThan15NeedPaediatrics(age: Int, needsPaediatrics: Bool) {
        let needs = PatientNeeds.derive(ageYears: age)
        #expect(needs.conditions == (needsPaediatrics ? [.paediatrics] : []))
        if needsPaediatrics { #expect(needs.needs.first?.reasons == [.age(years: age)]) }
    }

    @Test func nothingKnownNeedsNothing() {
        #expect(PatientNeeds.derive().isEmpty)
        #expect(PatientNeeds.derive(redFlags: [], chiefComplaint: nil, ageYears: nil) == .none)
    }

    @Test func needsComeInConditionOrderWithEveryReason() {
        let needs = PatientNeeds.derive(
            redFlags: [Self.dialysisFlag, Self.dialysisFlag],
            chiefComplaint: .chestPain,
            ageYears: 9
        )
        #expect(needs.conditions == [.stemi, .paediatrics, .dialysis])
        #expect(needs.needs.last?.reasons == [.redFlag(Self.dialysisFlag), .redFlag(Self.dialysisFlag)])
    }

    // MARK: Ranking

    @Test func aDialysisPatientGoesFirstToTheHospitalAcceptingDialysis() throws {
        let needs = PatientNeeds.derive(redFlags: [Self.dialysisFlag], ageYears: 70)
        let ranked = HospitalRanking.rank(
            [
                (Self.code(1), try Self.publication(1, [.dialysis: try .notAccepting(.noBeds), .stroke: .accepting])),
                (Self.code(2), try Self.publication(2, [.dialysis: .accepting])),
                (Self.code(3), try Self.publication(3, [.stroke: .accepting])),
            ],
            needs: needs
        )
        #expect(Self.codes(ranked) == [Self.code(2), Self.code(3), Self.code(1)])
        #expect(ranked.map(\.tier) == [.acceptsAll, .unknown, .declines])
        #expect(ranked[0].accepted == [.dialysis])
        #expect(ranked[1].unknown == [.dialysis])
        #expect(ranked[2].declined == [RankedHospital.Declined(condition: .dialysis, refusal: Divert(.noBeds))])
    }

    @Test func theFourTiersInOrder() throws {
        // A stroke patient on dialysis.
        let needs = PatientNeeds.derive(redFlags: [Self.dialysisFlag], chiefComplaint: .strokeSymptoms)
        let declines = try Self.publication(
            1,
            [.stroke: .accepting, .dialysis: try .notAccepting(.other, note: "Dialysis machines under maintenance")]
        )
        let acceptsSome = try Self.publication(3, [.stroke: .accepting, .burns: try .notAccepting(.noBeds)])
        let acceptsAll = try Self.publication(4, [.stroke: .accepting, .dialysis: .accepting])
        let ranked = HospitalRanking.rank(
            [
                (Self.code(1), declines),
                (Self.code(2), nil),
                (Self.code(3), acceptsSome),
                (Self.code(4), acceptsAll),
            ],
            needs: needs
        )
        #expect(Self.codes(ranked) == [Self.code(4), Self.code(3), Self.code(2), Self.code(1)])
        #expect(ranked.map(\.tier) == [.acceptsAll, .acceptsSome, .unknown, .declines])

        #expect(ranked[0].accepted == [.stroke, .dialysis])
        #expect(ranked[0].declined.isEmpty && ranked[0].unknown.isEmpty)
        // A refusal of a condition the patient does not need does not count against the hospital.
        #expect(ranked[1].accepted == [.stroke])
        #expect(ranked[1].unknown == [.dialysis])
        #expect(ranked[1].declined.isEmpty)
        #expect(ranked[2].acceptance == nil)
        #expect(ranked[2].unknown == [.stroke, .dialysis])
        // Declining one need outranks accepting another: the crew sees the reason and the note.
        #expect(ranked[3].accepted == [.stroke])
        #expect(
            ranked[3].declined == [
                RankedHospital.Declined(
                    condition: .dialysis,
                    refusal: Divert(.other, note: "Dialysis machines under maintenance")
                )
            ]
        )
    }

    @Test func theCrewsOrderIsKeptWithinATier() throws {
        let needs = PatientNeeds.derive(chiefComplaint: .burn)
        let accepts: [AcceptanceCondition: ConditionAcceptance] = [.burns: .accepting]
        let declines: [AcceptanceCondition: ConditionAcceptance] = [.burns: try .notAccepting(.icuFull)]
        let input: [(code: HospitalCode, acceptance: HospitalAcceptance?)] = [
            (Self.code(7), try Self.publication(7, declines)),
            (Self.code(5), try Self.publication(5, accepts)),
            (Self.code(3), nil),
            (Self.code(1), try Self.publication(1, declines)),
            (Self.code(8), try Self.publication(8, accepts)),
            (Self.code(2), nil),
            (Self.code(6), try Self.publication(6, accepts)),
            (Self.code(4), try Self.publication(4, declines)),
        ]
        let ranked = HospitalRanking.rank(input, needs: needs)
        #expect(Self.codes(ranked) == [5, 8, 6, 3, 2, 7, 1, 4].map(Self.code))
        // Nothing to tell apart: the crew's order as it was.
        let unknownOnly = HospitalRanking.rank(input.map { ($0.code, nil) }, needs: needs)
        #expect(Self.codes(unknownOnly) == input.map(\.code))
    }

    @Test func withNoNeedsAHospitalDecliningEverythingRanksLast() throws {
        let ranked = HospitalRanking.rank(
            [
                (
                    Self.code(1),
                    try Self.publication(
                        1,
                        [.stroke: try .notAccepting(.noBeds), .trauma: try .notAccepting(.icuFull)]
                    )
                ),
                (Self.code(2), try Self.publication(2, [:])),
                (
                    Self.code(3),
                    try Self.publication(3, [.stemi: try .notAccepting(.noSpecialist), .burns: .accepting])
                ),
            ],
            needs: .none
        )
        #expect(Self.codes(ranked) == [Self.code(3), Self.code(2), Self.code(1)])
        #expect(ranked.map(\.tier) == [.acceptsAll, .unknown, .declines])
        // With no needs, the crew sees what each hospital published.
        #expect(ranked[0].accepted == [.burns])
        #expect(ranked[0].declined.map(\.condition) == [.stemi])
        #expect(ranked[2].declined.map(\.condition) == [.stroke, .trauma])
        #expect(ranked[2].declined.map(\.refusal.reason) == [.noBeds, .icuFull])
        #expect(ranked.allSatisfy { $0.unknown.isEmpty })
    }

    @Test func anotherHospitalsPublicationIsIgnored() throws {
        let needs = PatientNeeds.derive(chiefComplaint: .chestPain)
        // Hospital 1 is paired with hospital 9's publication (a mix-up upstream): it counts as not heard from.
        let ranked = HospitalRanking.rank(
            [
                (Self.code(1), try Self.publication(9, [.stemi: .accepting])),
                (Self.code(2), try Self.publication(2, [.stemi: .accepting])),
            ],
            needs: needs
        )
        #expect(Self.codes(ranked) == [Self.code(2), Self.code(1)])
        #expect(ranked[1].tier == .unknown)
        #expect(ranked[1].acceptance == nil)
        #expect(ranked[1].accepted.isEmpty)
    }

    @Test func anEmptyListRanksEmpty() {
        #expect(HospitalRanking.rank([], needs: PatientNeeds.derive(chiefComplaint: .trauma)).isEmpty)
    }
}
