import Foundation
import KyukyuDomain
import Testing

@Suite("Hospital acceptance: the vocabulary, its JSON form, and how a publication changes")
struct AcceptanceTests {
    /// 2026-11-27T10:00:00Z.
    static let time = Date(timeIntervalSince1970: 1_795_773_600)
    /// Synthetic hospital codes (no real institution).
    static let hospital = HospitalCode(rawValue: "9999999991")!
    static let otherHospital = HospitalCode(rawValue: "9999999992")!

    static func decode(_ json: String) throws -> HospitalAcceptance {
        try JSONDecoder().decode(HospitalAcceptance.self, from: Data(json.utf8))
    }

    static func encode(_ value: HospitalAcceptance) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func sample() throws -> HospitalAcceptance {
        try HospitalAcceptance(
            hospital: hospital,
            conditions: [
                .stroke: .accepting,
                .dialysis: try .notAccepting(.noBeds, note: "Dialysis beds full until evening"),
            ],
            revision: 3,
            updatedAt: time
        )
    }

    // MARK: Vocabulary

    @Test func theConditionsAreExactlyTheSixPublished() {
        #expect(
            AcceptanceCondition.allCases.map(\.rawValue) == [
                "stroke", "stemi", "trauma", "burns", "paediatrics", "dialysis",
            ]
        )
        #expect(
            AcceptanceCondition.allCases.map(\.labelJapanese) == [
                "脳卒中", "STEMI(急性心筋梗塞)", "外傷", "熱傷", "小児", "透析",
            ]
        )
        #expect(
            AcceptanceCondition.allCases.map(\.label) == [
                "Stroke", "STEMI", "Trauma", "Burns", "Paediatrics", "Dialysis",
            ]
        )
    }

    // MARK: JSON form

    @Test func encodesTheStableForm() throws {
        let json = try Self.encode(try Self.sample())
        #expect(
            json == #"{"conditions":{"dialysis":{"accepting":false,"note":"Dialysis beds full until evening","#
                + #""reason":"no-beds"},"stroke":{"accepting":true}},"hospital":"9999999991","revision":3,"#
                + #""updatedAt":"2026-11-27T10:00:00Z"}"#
        )
    }

    @Test func roundTrips() throws {
        let value = try Self.sample()
        #expect(try Self.decode(Self.encode(value)) == value)
        let empty = try HospitalAcceptance(hospital: Self.hospital, conditions: [:], revision: 0, updatedAt: Self.time)
        #expect(try Self.decode(Self.encode(empty)) == empty)
        #expect(try Self.encode(empty).contains(#""conditions":{}"#))
    }

    @Test func decodesWhatTheHubSends() throws {
        let value = try Self.decode(
            #"""
            {"hospital":"9999999991","revision":3,"updatedAt":"2026-11-27T10:00:00Z",
             "conditions":{"stroke":{"accepting":true},
                           "trauma":{"accepting":false,"reason":"operating-rooms-full"},
                           "dialysis":{"accepting":false,"reason":"no-beds","note":"  Dialysis beds full  "}}}
            """#
        )
        #expect(value.hospital == Self.hospital)
        #expect(value.revision == 3)
        #expect(value.updatedAt == Self.time)
        #expect(value[.stroke] == .accepting)
        #expect(value[.stroke]?.isAccepting == true)
        #expect(value[.trauma]?.refusal == Divert(.operatingRoomsFull))
        #expect(value[.dialysis]?.refusal == Divert(.noBeds, note: "Dialysis beds full"))
        #expect(value[.dialysis]?.isAccepting == false)
        #expect(value[.stemi] == nil)
        #expect(value[.paediatrics] == nil)
    }

    /// The fields of a valid publication, in order, as raw JSON.
    static let validFields: KeyValuePairs<String, String> = [
        "hospital": #""9999999991""#, "revision": "3", "updatedAt": #""2026-11-27T10:00:00Z""#, "conditions": "{}",
    ]

    /// A publication with `field` set to the raw JSON `value` (added when it is not one of the valid fields), or
    /// removed when `value` is nil.
    static func json(_ field: String? = nil, _ value: String? = nil) -> String {
        var members = validFields.map { ($0.key, Optional($0.value)) }
        if let field {
            if let index = members.firstIndex(where: { $0.0 == field }) {
                members[index].1 = value
            } else {
                members.append((field, value))
            }
        }
        return "{" + members.compactMap { name, value in value.map { "\"\(name)\":\($0)" } }.joined(separator: ",")
            + "}"
    }

    /// Every refusal, with the kind and the field it names.
    @Test(arguments: [
        // The conditions.
        ("conditions", #"{"heart":{"accepting":true}}"#, "unknown", "conditions.heart"),
        ("conditions", #"{"stroke":{"accepting":false,"reason":"no-staff"}}"#, "unknown", "conditions.stroke.reason"),
        ("conditions", #"{"dialysis":{"accepting":false}}"#, "missing", "conditions.dialysis.reason"),
        ("conditions", #"{"dialysis":{"accepting":false,"reason":null}}"#, "missing", "conditions.dialysis.reason"),
        ("conditions", #"{"burns":{"accepting":false,"reason":"other"}}"#, "missing", "conditions.burns.note"),
        (
            "conditions", #"{"burns":{"accepting":false,"reason":"other","note":"  "}}"#, "missing",
            "conditions.burns.note"
        ),
        (
            "conditions",
            #"{"dialysis":{"accepting":false,"reason":"no-beds","note":""#
                + String(repeating: "x", count: 201) + #""}}"#, "too-long", "conditions.dialysis.note"
        ),
        (
            "conditions", #"{"stemi":{"accepting":false,"reason":"other","note":"a\u0007b"}}"#, "invalid",
            "conditions.stemi.note"
        ),
        (
            "conditions", #"{"stemi":{"accepting":false,"reason":"other","note":"a\nb"}}"#, "invalid",
            "conditions.stemi.note"
        ),
        (
            "conditions", #"{"stroke":{"accepting":true,"reason":"no-beds"}}"#, "inconsistent",
            "conditions.stroke.reason"
        ),
        ("conditions", #"{"stroke":{"accepting":true,"note":"fine"}}"#, "inconsistent", "conditions.stroke.note"),
        ("conditions", #"{"stroke":{}}"#, "missing", "conditions.stroke.accepting"),
        ("conditions", #"{"stroke":{"accepting":"yes"}}"#, "invalid", "conditions.stroke.accepting"),
        ("conditions", #"{"stroke":{"accepting":false,"reason":7}}"#, "invalid", "conditions.stroke.reason"),
        ("conditions", #"{"stroke":{"accepting":true,"until":"18:00"}}"#, "unknown", "conditions.stroke.until"),
        ("conditions", #"{"stroke":true}"#, "invalid", "conditions.stroke"),
        ("conditions", #"["stroke"]"#, "invalid", "conditions"),
        // The other fields.
        ("hospital", #""123""#, "invalid", "hospital"),
        ("hospital", #"9999999991"#, "invalid", "hospital"),
        ("revision", #"-1"#, "invalid", "revision"),
        ("revision", #""3""#, "invalid", "revision"),
        ("revision", #"3.5"#, "invalid", "revision"),
        ("updatedAt", #""2026-11-27T19:00:00+09:00""#, "invalid", "updatedAt"),
        ("updatedAt", #""2026-11-27T10:00:00.250Z""#, "invalid", "updatedAt"),
        ("updatedAt", #""2026-11-27 10:00:00Z""#, "invalid", "updatedAt"),
        ("updatedAt", #""2026-11-31T10:00:00Z""#, "invalid", "updatedAt"),
        ("updatedAt", #"1795773600"#, "invalid", "updatedAt"),
        ("emergencyIntake", #"true"#, "unknown", "emergencyIntake"),
    ])
    func refusesBadJSON(_ field: String, value: String, kind: String, path: String) throws {
        let error = #expect(throws: AcceptanceError.self) { try Self.decode(Self.json(field, value)) }
        #expect(error?.kind == kind)
        #expect(error?.field == path)
    }

    @Test(arguments: ["hospital", "revision", "updatedAt", "conditions"])
    func refusesAMissingField(_ field: String) throws {
        let error = #expect(throws: AcceptanceError.self) { try Self.decode(Self.json(field, nil)) }
        #expect(error?.kind == "missing")
        #expect(error?.field == field)
    }

    @Test func refusesANonObject() {
        let error = #expect(throws: AcceptanceError.self) { try Self.decode("[]") }
        #expect(error?.kind == "invalid")
        #expect(error?.field == "")
    }

    /// The fixture itself decodes, and the builder changes what it says: the refusals above come from the one
    /// field each changes.
    @Test func theFixtureIsValidAndTheBuilderChangesOneField() throws {
        #expect(try Self.decode(Self.json()).revision == 3)
        #expect(try Self.decode(Self.json("revision", "9")).revision == 9)
        #expect(try Self.decode(Self.json("conditions", #"{"burns":{"accepting":true}}"#))[.burns] == .accepting)
        #expect(!Self.json("revision", nil).contains("revision"))
    }

    // MARK: Notes

    @Test func notesAreTrimmedAndEmptyNotesDropped() throws {
        #expect(try ConditionAcceptance.notAccepting(.icuFull, note: "  ICU full \n").refusal?.note == "ICU full")
        #expect(try ConditionAcceptance.notAccepting(.icuFull, note: " \t\n ").refusal?.note == nil)
        #expect(try ConditionAcceptance.notAccepting(.icuFull).refusal == Divert(.icuFull))
    }

    @Test func aNoteIsRequiredForOther() throws {
        #expect(throws: AcceptanceError.missing("note")) { try ConditionAcceptance.notAccepting(.other) }
        #expect(throws: AcceptanceError.missing("note")) { try ConditionAcceptance.notAccepting(.other, note: "  ") }
        let other = try ConditionAcceptance.notAccepting(.other, note: "Power cut in the cath lab")
        #expect(other.refusal == Divert(.other, note: "Power cut in the cath lab"))
    }

    @Test func aNoteHasAtMost200Characters() throws {
        // Characters, not bytes: 200 kanji (600 bytes of UTF-8) pass.
        let kanji = String(repeating: "満", count: 200)
        #expect(try ConditionAcceptance.notAccepting(.noBeds, note: kanji).refusal?.note == kanji)
        // Trimming comes first: 200 characters with spaces around pass.
        #expect(throws: Never.self) {
            try ConditionAcceptance.notAccepting(.noBeds, note: "  " + String(repeating: "x", count: 200) + "  ")
        }
        #expect(throws: AcceptanceError.tooLong("note", 200)) {
            try ConditionAcceptance.notAccepting(.noBeds, note: String(repeating: "x", count: 201))
        }
    }

    @Test(arguments: ["line\nbreak", "tab\there", "bell\u{07}", "null\u{00}"])
    func aNoteHasNoControlCharacters(_ note: String) {
        #expect(throws: AcceptanceError.invalid("note", "")) {
            try ConditionAcceptance.notAccepting(.noSpecialist, note: note)
        }
    }

    // MARK: Revisions and updates

    @Test func aRevisionIsNeverNegative() throws {
        #expect(throws: AcceptanceError.invalid("revision", "")) {
            try HospitalAcceptance(hospital: Self.hospital, conditions: [:], revision: -1, updatedAt: Self.time)
        }
        #expect(throws: Never.self) {
            try HospitalAcceptance(hospital: Self.hospital, conditions: [:], revision: 0, updatedAt: Self.time)
        }
    }

    @Test func theTimeIsKeptToTheSecondSoTheJSONRoundTripIsExact() throws {
        let value = try HospitalAcceptance(
            hospital: Self.hospital,
            conditions: [:],
            revision: 1,
            updatedAt: Self.time.addingTimeInterval(0.75)
        )
        #expect(value.updatedAt == Self.time)
        #expect(try Self.decode(Self.encode(value)) == value)
    }

    @Test func anUpdateSetsSomeKeepsTheRestAndMakesANewRevision() throws {
        let before = try Self.sample()
        let later = Self.time.addingTimeInterval(600)
        let after = try before.updated(
            setting: [.dialysis: .accepting, .stemi: try .notAccepting(.noSpecialist)],
            at: later
        )
        #expect(after.hospital == before.hospital)
        #expect(after.revision == 4)
        #expect(after.updatedAt == later)
        #expect(after[.stroke] == .accepting)  // kept
        #expect(after[.dialysis] == .accepting)  // changed
        #expect(after[.stemi]?.refusal == Divert(.noSpecialist))  // new
        #expect(after[.trauma] == nil)  // still unknown
        #expect(after.supersedes(before))
        #expect(!before.supersedes(after))
        // The original is untouched.
        #expect(before.revision == 3)
        #expect(before[.dialysis]?.isAccepting == false)
    }

    @Test func anUpdateCanWithdrawAConditionToUnknown() throws {
        let after = try Self.sample().updated(setting: [:], withdrawing: [.dialysis], at: Self.time)
        #expect(after[.dialysis] == nil)
        #expect(after[.stroke] == .accepting)
        #expect(after.revision == 4)
    }

    @Test func aConditionIsNotBothSetAndWithdrawn() throws {
        #expect(throws: AcceptanceError.inconsistent("conditions.stroke", "")) {
            try Self.sample().updated(setting: [.stroke: .accepting], withdrawing: [.stroke], at: Self.time)
        }
    }

    @Test func aConfirmationWithoutChangesIsANewRevisionAtItsTime() throws {
        let later = Self.time.addingTimeInterval(1800)
        let confirmed = try Self.sample().updated(setting: [:], at: later)
        #expect(confirmed.revision == 4)
        #expect(confirmed.updatedAt == later)
        #expect(confirmed.conditions == (try Self.sample()).conditions)
    }

    @Test func theRevisionNotTheTimeOrdersPublications() throws {
        // The hub's clock stepped back a minute: the update is still the newer.
        let before = try Self.sample()
        let after = try before.updated(setting: [.burns: .accepting], at: Self.time.addingTimeInterval(-60))
        #expect(after.updatedAt < before.updatedAt)
        #expect(after.supersedes(before))
        // The same revision does not supersede, nor does another hospital's publication.
        #expect(!before.supersedes(before))
        let other = try HospitalAcceptance(
            hospital: Self.otherHospital,
            conditions: [:],
            revision: 99,
            updatedAt: Self.time
        )
        #expect(!other.supersedes(before))
    }

    @Test func theRevisionCannotOverflow() throws {
        let last = try HospitalAcceptance(
            hospital: Self.hospital,
            conditions: [:],
            revision: .max,
            updatedAt: Self.time
        )
        #expect(throws: AcceptanceError.invalid("revision", "")) { try last.updated(setting: [:], at: Self.time) }
    }

    @Test func errorsNameTheFieldAndNeverTheValue() throws {
        let secret = String(repeating: "z", count: 201)
        let error = #expect(throws: AcceptanceError.self) {
            try Self.decode(
                Self.json(
                    "conditions",
                    #"{"dialysis":{"accepting":false,"reason":"no-beds","note":""# + secret + #""}}"#
                )
            )
        }
        #expect(error?.description == "conditions.dialysis.note: is longer than 200 characters")
        #expect(error?.description.contains(secret) == false)
    }
}
