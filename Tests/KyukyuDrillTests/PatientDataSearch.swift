import Foundation
import KyukyuCardSim
import KyukyuEligibilitySim
import KyukyuOnshi
import Testing

/// Searches log files for the synthetic patients' personal details: full name (kanji and katakana, with and without
/// the ideographic space), birth date (compact and ISO), address, postal code and insurer number. What a drill's
/// logs must never contain.
struct PatientDataSearch {
    /// One detail found in one file.
    struct Finding: Sendable, Hashable, CustomStringConvertible {
        var file: String
        var holder: Int
        var detail: String
        var description: String { "holder \(holder)'s \(detail) in \(file)" }
    }

    /// The details of holders `holders`, as (holder, what, text).
    let needles: [(holder: Int, detail: String, text: String)]

    init(holders: ClosedRange<Int>, today: OnshiDate = OnshiDate(japanDayOf: Date())) {
        var needles: [(Int, String, String)] = []
        for number in holders {
            let patient = SyntheticPatient(number: number, today: today)
            let holder = patient.holder
            let birth = holder.birthDate
            let iso = String(format: "%04d-%02d-%02d", birth.year, birth.month, birth.day)
            needles += [
                (number, "name", holder.fullName),
                (number, "name", holder.familyName + holder.givenName),
                (number, "kana", holder.fullNameKana),
                (number, "kana", holder.familyNameKana + holder.givenNameKana),
                (number, "birth date", birth.compact),
                (number, "birth date", iso),
                (number, "address", holder.address),
                (number, "postal code", holder.postalCode),
                (number, "insurer number", patient.insurer.insurerNumber),
            ]
        }
        self.needles = needles
    }

    /// Every detail found in the files under `directory` whose names end in `.log`.
    func findings(under directory: String) throws -> [Finding] {
        let files =
            FileManager.default.enumerator(atPath: directory)?.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".log") } ?? []
        var found: Set<Finding> = []
        for file in files {
            let text = String(
                decoding: try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)),
                as: UTF8.self
            )
            for needle in needles where text.contains(needle.text) {
                found.insert(Finding(file: file, holder: needle.holder, detail: needle.detail))
            }
        }
        return found.sorted { ($0.file, $0.holder, $0.detail) < ($1.file, $1.holder, $1.detail) }
    }
}

@Suite("The search of logs for patient data")
struct PatientDataSearchTests {
    @Test("a planted detail of any kind is found, and clean logs give nothing")
    func findsWhatIsPlanted() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-phi-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/logs", withIntermediateDirectories: true)
        let search = PatientDataSearch(holders: 1...200)
        try "2026-11-27T10:00:00+0000 info kyukyu.gateway: incident opened kyukyu.incident=INC-1\n"
            .write(toFile: folder + "/logs/clean.log", atomically: true, encoding: .utf8)
        #expect(try search.findings(under: folder).isEmpty)
        let holder = SyntheticHolder(number: 37)
        for (name, planted) in [
            ("name", holder.fullName), ("kana", holder.fullNameKana), ("birth date", holder.birthDate.compact),
            ("address", holder.address),
        ] {
            try "debug: \(planted)\n".write(toFile: folder + "/logs/leak.log", atomically: true, encoding: .utf8)
            let found = try search.findings(under: folder)
            #expect(found.contains { $0.holder == 37 && $0.detail == name && $0.file == "logs/leak.log" }, "\(name)")
        }
    }
}

/// Searches a drill's logs left in a folder named by `KYUKYU_PHI_SEARCH_DIR` (a manual check on a past run).
@Suite(
    "Patient data in a past drill's logs",
    .enabled(if: ProcessInfo.processInfo.environment["KYUKYU_PHI_SEARCH_DIR"] != nil)
)
struct PastDrillSearch {
    @Test func nothingFound() throws {
        let folder = try #require(ProcessInfo.processInfo.environment["KYUKYU_PHI_SEARCH_DIR"])
        let found = try PatientDataSearch(holders: 1...200).findings(under: folder)
        #expect(found.isEmpty, "\(found.prefix(50))")
    }
}
