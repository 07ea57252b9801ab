import ArgumentParser
import Foundation
import KyukyuReceiver

/// `kyukyu-hospital review`: the regional medical-control review's exports.
struct ReviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract:
            "Export the placement requests, or the hospitals' acceptance, of a period for the medical-control review.",
        discussion: """
            placements: one row per asked hospital of each request, with every answer, reason, time and staff ID \
            (CSV), or the requests as FHIR R4 Tasks in a collection Bundle (--format fhir). acceptance: every \
            publication, one row per condition (CSV). Nothing in them identifies a patient. The file is written \
            with mode 0600 and never replaces one.
            """
    )

    enum What: String, ExpressibleByArgument, CaseIterable { case placements, acceptance }
    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, fhir }

    @OptionGroup var state: StateOptions

    @Argument(help: "What to export: placements or acceptance.")
    var what: What

    @Option(help: "The first day (YYYY-MM-DD, UTC) or instant (ISO 8601) of the period.")
    var from: String

    @Option(help: "The day after the period (YYYY-MM-DD, UTC) or its end instant (ISO 8601); default now.")
    var to: String?

    @Option(help: "csv, or fhir (placements only).")
    var format: Format = .csv

    @Option(help: "The file to write.")
    var out: String

    static func instant(_ text: String, _ name: String) throws -> Date {
        if let date = try? Date(text + "T00:00:00Z", strategy: .iso8601) { return date }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        throw ValidationError("--\(name): YYYY-MM-DD or an ISO 8601 instant with its zone")
    }

    func validate() throws {
        _ = try Self.instant(from, "from")
        if let to { _ = try Self.instant(to, "to") }
        if format == .fhir, what == .acceptance { throw ValidationError("--format fhir is for placements") }
    }

    func run() async throws {
        let start = try Self.instant(from, "from")
        let end = try to.map { try Self.instant($0, "to") } ?? Date()
        guard start < end else { throw ValidationError("--from must come before --to") }
        guard !FileManager.default.fileExists(atPath: out) else { throw CommandFailure("\(out) exists; not replaced") }
        let store = try await state.openStore()
        let data: Data
        let count: Int
        do {
            switch (what, format) {
            case (.placements, .csv):
                let records = try await store.placementRecords(from: start, to: end)
                (data, count) = (Data(RegionReview.placementsCSV(records).utf8), records.count)
            case (.placements, .fhir):
                let records = try await store.placementRecords(from: start, to: end)
                (data, count) = (try RegionReview.placementsFHIR(records, generatedAt: Date()), records.count)
            case (.acceptance, _):
                let records = try await store.acceptanceHistory(from: start, to: end)
                (data, count) = (Data(RegionReview.acceptanceCSV(records).utf8), records.count)
            }
        } catch let error as ReceiverError {
            throw CommandFailure(error.reason)
        }
        try? await store.close()
        guard FileManager.default.createFile(atPath: out, contents: data, attributes: [.posixPermissions: 0o600])
        else { throw CommandFailure("\(out) cannot be written") }
        print("\(count) \(what.rawValue == "placements" ? "requests" : "publications") written to \(out)")
    }
}
