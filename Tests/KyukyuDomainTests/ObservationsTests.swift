import Foundation
import KyukyuDomain
import Testing

@Suite("Crew observations: one set of checks for the tablet, the API and the receiver")
struct ObservationsTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func vitals(_ edit: (inout VitalSigns) -> Void) -> VitalSigns {
        var set = VitalSigns(takenAt: now)
        edit(&set)
        return set
    }

    @Test func aPlausibleSetChecksOut() throws {
        var observations = CrewObservations()
        observations.chiefComplaint = .chestPain
        observations.priority = .red
        observations.vitals = [
            Self.vitals {
                $0.jcs = .i3
                $0.heartRate = 112
                $0.systolic = 92
                $0.diastolic = 60
                $0.spo2 = 91
                $0.temperature = 36.8
            }
        ]
        observations.etaMinutes = 12
        observations.etaRecordedAt = Self.now
        observations.hospital = HospitalCode(rawValue: "1312345678")
        try observations.validate()
        #expect(observations.latestVitals?.heartRate == 112)
    }

    /// An implausible value, by name, and the error it gets.
    static let implausible: [(String, ObservationError)] = [
        ("heart rate 400", .outOfRange("", "")), ("SpO2 101", .outOfRange("", "")),
        ("temperature NaN", .outOfRange("", "")), ("temperature 50", .outOfRange("", "")),
        ("diastolic above systolic", .inconsistent("")), ("no value", .empty("")),
    ]

    static func implausibleSet(_ name: String) -> VitalSigns {
        vitals { set in
            switch name {
            case "heart rate 400": set.heartRate = 400
            case "SpO2 101": set.spo2 = 101
            case "temperature NaN": set.temperature = .nan
            case "temperature 50": set.temperature = 50
            case "diastolic above systolic": (set.systolic, set.diastolic) = (80, 120)
            default: break
            }
        }
    }

    @Test(arguments: implausible)
    func implausibleVitalsAreRefusedWithoutTheValue(name: String, expected: ObservationError) {
        var observations = CrewObservations()
        observations.vitals = [Self.implausibleSet(name)]
        #expect(throws: expected, "\(name)") { try observations.validate() }
        do {
            try observations.validate()
        } catch {
            // The message names the field and its range, never the value typed.
            #expect(!error.reason.contains("400") && !error.reason.contains("101"), "\(error.reason)")
        }
    }

    @Test func gcsPartsAreChecked() throws {
        #expect(throws: ObservationError.outOfRange("", "")) { try GCSScore(eye: 5, verbal: 5, motor: 6) }
        let score = try GCSScore(eye: 4, verbal: 5, motor: 6)
        #expect(score.total == 15)
        // A decoded score is checked too.
        let decoded = try JSONDecoder().decode(GCSScore.self, from: Data(#"{"eye":0,"verbal":1,"motor":1}"#.utf8))
        #expect(throws: ObservationError.outOfRange("", "")) { try decoded.validate() }
    }

    @Test func otherNeedsANoteAndNotesAreBounded() {
        var observations = CrewObservations()
        observations.chiefComplaint = .other
        #expect(throws: ObservationError.empty("")) { try observations.validate() }
        observations.complaintNote = String(repeating: "あ", count: CrewObservations.maximumNoteLength + 1)
        #expect(throws: ObservationError.tooLong("", 0)) { try observations.validate() }
        observations.complaintNote = "line\u{7}bell"
        #expect(throws: ObservationError.invalid("")) { try observations.validate() }
        observations.complaintNote = "転倒後の腰痛"
        #expect(throws: Never.self) { try observations.validate() }
    }

    @Test func anETANeedsItsTimeAndARange() {
        var observations = CrewObservations()
        observations.etaMinutes = 10
        #expect(throws: ObservationError.inconsistent("")) { try observations.validate() }
        observations.etaRecordedAt = Self.now
        observations.etaMinutes = 601
        #expect(throws: ObservationError.outOfRange("", "")) { try observations.validate() }
    }

    @Test func hospitalCodesAreTenDigits() throws {
        #expect(HospitalCode(rawValue: "1312345678") != nil)
        for bad in ["131234567", "13123456789", "13123456７8", "abcdefghij", ""] {
            #expect(HospitalCode(rawValue: bad) == nil, "\(bad)")
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(HospitalCode.self, from: Data(#""12""#.utf8)) }
    }

    @Test func jcsIsWrittenTheWayCrewsWriteIt() {
        #expect(JCSLevel.alert.label == "0")
        #expect(JCSLevel.i2.label == "I-2")
        #expect(JCSLevel.ii30.label == "II-30")
        #expect(JCSLevel.iii300.label == "III-300")
    }
}
