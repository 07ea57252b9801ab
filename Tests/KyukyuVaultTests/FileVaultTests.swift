import Foundation
import GRDB
import Testing

@testable import KyukyuVault

@Suite("Vault on a real file")
struct FileVaultTests {
    @Test func dataSurvivesReopenAndFilesAreOwnerOnly() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let capture = LogCapture()
        let id: IncidentID
        do {
            let vault = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
            id = try await vault.createIncident()
            try await vault.putRecord(incident: id, kind: .medications, payload: Data(repeating: 0x5a, count: 1 << 20))
            try await vault.putRecord(incident: id, kind: .medications, payload: Data("v2".utf8))
        }
        let vault = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        let records = try await vault.records(incident: id, viewer: testCrew)
        #expect(records.map(\.version) == [1, 2])
        #expect(records.first?.payload.count == 1 << 20)
        #expect(try await vault.audit.verify().isIntact)
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + name)
            let permissions = (attributes[.posixPermissions] as? Int) ?? 0
            #expect(permissions & 0o077 == 0, "\(name) has mode \(String(permissions, radix: 8))")
            #expect(!name.contains(id.description))
        }
        let journal = try await DatabasePool(path: directory + "/" + VaultDatabase.fileName).read { db in
            try String.fetchOne(db, sql: "PRAGMA journal_mode")
        }
        #expect(journal == "wal")
    }

    @Test func startUpPurgesExpiredIncidents() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let capture = LogCapture()
        let now = Date()
        do {
            let vault = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger(), now: now)
            let old = try await vault.createIncident(now: now.addingTimeInterval(-25 * 3600))
            try await vault.putRecord(incident: old, kind: .patient, payload: Data("old".utf8))
            _ = try await vault.createIncident(now: now)
        }
        let vault = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger(), now: now)
        let status = try await vault.status(now: now)
        #expect(status.incidentCount == 1)
        #expect(status.recordCount == 0)
        let wal = try FileManager.default.attributesOfItem(atPath: directory + "/vault.sqlite-wal")[.size] as? Int
        #expect(wal == 0, "the WAL is truncated after a purge")
    }

    /// Stores obviously synthetic patient strings and searches every file and the log for them,
    /// in UTF-8 and UTF-16, before and after each way of destroying an incident. After each one it also
    /// searches for the ciphertext and wrapped keys that incident had stored: `secure_delete` and the WAL
    /// truncation must have removed them too. One incident goes by acknowledgement, one by a manual
    /// shred, two by the max-age purge and the rest by a wipe, each checked right after its own step.
    @Test func syntheticPatientDataLeaksNowhere() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let capture = LogCapture()
        let markers = [
            "SYNTHETIC-PATIENT-試験太郎",
            "SYNTHETIC-ADDRESS-東京都千代田区試験町9-9-9",
            "SYNTHETIC-BIRTH-1901-01-01",
            "SYNTHETIC-DRUG-試験錠10mg-YJ9999999F9999",
        ]
        let vault = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        var ids: [IncidentID] = []
        for index in 0..<6 {
            // The last two are past the maximum age (they go in the purge step).
            let id = try await vault.createIncident(now: Date().addingTimeInterval(index >= 4 ? -25 * 3600 : 0))
            ids.append(id)
            let patient = #"{"name":"\#(markers[0])","address":"\#(markers[1])","birth":"\#(markers[2])"}"#
            try await vault.putRecord(incident: id, kind: .patient, payload: Data(patient.utf8))
            try await vault.putRecord(
                incident: id,
                kind: .patient,
                payload: Data(patient.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] })
            )
            // A large record, so overflow pages are exercised too.
            let medications = String(repeating: "\(markers[3]);", count: 2000 + index)
            try await vault.putRecord(incident: id, kind: .medications, payload: Data(medications.utf8))
            _ = try await vault.records(incident: id, viewer: testCrew)
        }
        try await vault.markHandoffSent(incident: ids[0], destination: FacilityCode("1312345678")!, by: testCrew)

        let files = ["vault.sqlite", "vault.sqlite-wal", "vault.sqlite-shm", KeyFileProvider.defaultFileName]
        func scan(for needles: [(String, Data)]) throws -> [String] {
            var found: [String] = []
            for file in files {
                let path = directory + "/" + file
                guard let contents = FileManager.default.contents(atPath: path) else { continue }
                for (label, needle) in needles where contents.contains(bytes: needle) {
                    found.append("\(label) in \(file)")
                }
            }
            let log = Data(capture.text.utf8)
            for (label, needle) in needles where log.contains(bytes: needle) {
                found.append("\(label) in log")
            }
            return found
        }
        let markerNeedles =
            markers.flatMap { marker in encodings(of: marker).map { ("\(marker) \($0.0)", $0.1) } }
            + [("SYNTHETIC", Data("SYNTHETIC".utf8))]
        #expect(try scan(for: markerNeedles) == [])
        #expect(capture.count > 10, "the vault logged, so the log check means something")
        #expect(FileManager.default.fileExists(atPath: directory + "/vault.sqlite-wal"))

        // Remember what each incident stored encrypted, to check it is physically gone after its step.
        let pool = try DatabasePool(path: directory + "/" + VaultDatabase.fileName)
        var stored: [IncidentID: [Data]] = [:]
        for id in ids {
            stored[id] = try await pool.read { db in
                (try Data.fetchAll(
                    db,
                    sql: "SELECT sealed FROM record WHERE incident_id = ?",
                    arguments: [id.description]
                ))
                .map { Data($0.dropFirst(12).prefix(32)) }
                    + (try Data.fetchAll(
                        db,
                        sql: "SELECT wrapped_key FROM incident_key WHERE incident_id = ?",
                        arguments: [id.description]
                    ))
            }
            #expect(stored[id]?.count == 3 + 1)
        }
        func remnants(of gone: ArraySlice<IncidentID>) throws -> [String] {
            try scan(
                for: gone.flatMap { id in
                    stored[id, default: []].enumerated().map { ("\(id) stored bytes #\($0.offset)", $0.element) }
                }
            )
        }
        func walSize() throws -> Int? {
            try FileManager.default.attributesOfItem(atPath: directory + "/vault.sqlite-wal")[.size] as? Int
        }

        try await vault.acknowledgeHandoff(incident: ids[0])
        #expect(try remnants(of: ids[0...0]) == [], "after the acknowledgement")
        #expect(try walSize() == 0)

        try await vault.shred(incident: ids[1])
        #expect(try remnants(of: ids[0...1]) == [], "after the shred")
        #expect(try walSize() == 0)

        let purged = try await vault.purgeExpired(now: Date())
        #expect(Set(purged.purged.map(\.incident)) == Set(ids[4...5]))
        #expect(try remnants(of: ids[4...5]) == [], "after the max-age purge")
        #expect(try walSize() == 0)
        #expect(try await vault.status().incidentCount == 2)

        _ = try await vault.wipeAll()
        #expect(try await vault.status().incidentCount == 0)

        #expect(try scan(for: markerNeedles) == [])
        #expect(try remnants(of: ids[0...5]) == [], "secure_delete and the WAL truncation leave no ciphertext behind")
        #expect(try walSize() == 0)
        #expect(try await vault.audit.verify().isIntact)
    }
}
