import Foundation
import GRDB
import KyukyuCrew
import KyukyuDomain
import KyukyuReceiver
import KyukyuVault
import Logging
import Testing

/// Upgrades: the databases the previous release left (Fixtures/previous-release, made by its binaries) open with
/// this release, migrate forward and read back whole; a database from a newer release is refused, not downgraded.
@Suite("Upgrades from the previous release's databases")
struct UpgradeTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/previous-release").path
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// A private copy of one fixture folder, with the modes the programs require (git keeps only 0644/0755).
    func copy(_ part: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-upgrade-\(UUID())").path
        try FileManager.default.createDirectory(
            atPath: folder,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        for file in try FileManager.default.contentsOfDirectory(atPath: Self.fixtures + "/" + part) {
            try FileManager.default.copyItem(atPath: Self.fixtures + "/\(part)/\(file)", toPath: folder + "/" + file)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: folder + "/" + file)
        }
        return folder
    }

    /// Records a migration no release has made, as a newer release would.
    func fromTheFuture(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999-from-a-newer-release')")
        }
        try queue.close()
    }

    /// The migrations recorded and the schema, to show that a refused database was not touched.
    func schema(_ path: String) async throws -> [String] {
        try await DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
                + String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        }
    }

    @Test("the gateway's vault and crew database open, migrate and read back; the audit trail verifies")
    func gatewayUpgrade() async throws {
        let folder = try copy("gateway")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let vault = try await IncidentVault.open(
            stateDirectory: folder,
            keyProvider: KeyFileProvider(stateDirectory: folder),
            logger: Self.quiet
        )
        let incidents = try await vault.incidents()
        #expect(incidents.count == 1)
        let incident = try #require(incidents.first)
        let records = try await vault.latestRecords(incident: incident.id, viewer: CrewID("FIXTURE-01")!)
        #expect(!records.isEmpty)
        let text = records.map { String(decoding: $0.payload, as: UTF8.self) }.joined()
        #expect(text.contains("138") && text.contains("96"), "the vital signs read back")
        let audit = try await vault.audit.verify()
        #expect(audit.problems.isEmpty, "\(audit.problems)")
        #expect(audit.entryCount > 0)

        let crew = try CrewDirectory.open(
            path: folder + "/crew.sqlite",
            secretKey: try CrewSecretKey.load(path: folder + "/crew-secret.key", create: false),
            logger: Self.quiet
        )
        #expect(try await crew.list().map(\.crewID) == ["FIXTURE-01"])
        let applied = try await DatabaseQueue(path: folder + "/vault.sqlite").read { db in
            try String.fetchSet(db, sql: "SELECT identifier FROM grdb_migrations")
        }
        #expect(applied.isSuperset(of: ["v1", "v2-record-heads"]))
    }

    /// The receiver fixture's hospital (kyukyu-load's default destination).
    static let receiverHospital = HospitalCode(rawValue: "9999999902")!

    @Test("the receiver's database opens, migrates to tenancy and every document decrypts")
    func receiverUpgrade() async throws {
        let folder = try copy("receiver")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Without the hospital's code the rows before tenancy have no owner: refused, and left as they were.
        let before = try await schema(folder + "/" + HospitalStore.fileName)
        #expect(throws: ReceiverError.invalidInput("")) {
            try HospitalStore.open(
                path: folder + "/" + HospitalStore.fileName,
                hospital: nil,
                keyProvider: KeyFileProvider(stateDirectory: folder),
                logger: Self.quiet
            )
        }
        #expect(try await schema(folder + "/" + HospitalStore.fileName) == before)
        let store = try HospitalStore.open(
            path: folder + "/" + HospitalStore.fileName,
            hospital: Self.receiverHospital,
            keyProvider: KeyFileProvider(stateDirectory: folder),
            logger: Self.quiet
        )
        let sets = try await store.openSets(at: Self.receiverHospital)
        #expect(sets.count == 6)
        var documents = 0
        try await store.forEachDocument { version, body in
            documents += 1
            let object = try JSONSerialization.jsonObject(with: body) as? [String: Any]
            #expect(object?["resourceType"] as? String == "Bundle", "\(version.versionIdentifier)")
        }
        #expect(documents == 6)
        // The board's positions continue where the old event ids stopped, per device too.
        let board = try await store.boardEvents(hospital: Self.receiverHospital, after: 0)
        #expect(board.map(\.id) == Array(1...6))
        let set = try #require(sets.first)
        let (_, acknowledged) = try await store.transition(
            set.documentSet,
            at: Self.receiverHospital,
            to: .acknowledged,
            reason: nil,
            note: nil,
            by: .staff,
            at: Date()
        )
        #expect(acknowledged?.id == 7)
        #expect(acknowledged?.sequence == Int64(board.filter { $0.device == set.device }.count + 1))
        try await store.close()
    }

    @Test("a database migrated by a newer release is refused by each store, and left as it was")
    func noDowngrade() async throws {
        let gateway = try copy("gateway")
        let receiver = try copy("receiver")
        defer {
            try? FileManager.default.removeItem(atPath: gateway)
            try? FileManager.default.removeItem(atPath: receiver)
        }
        try fromTheFuture(gateway + "/vault.sqlite")
        try fromTheFuture(gateway + "/crew.sqlite")
        try fromTheFuture(receiver + "/hospital.sqlite")
        let before = try await schema(gateway + "/vault.sqlite")

        do {
            _ = try await IncidentVault.open(
                stateDirectory: gateway,
                keyProvider: KeyFileProvider(stateDirectory: gateway),
                logger: Self.quiet
            )
            Issue.record("the vault opened a database from a newer release")
        } catch let error as VaultError {
            #expect(error.code == .newerDatabase)
            #expect(error.reason.contains("v999-from-a-newer-release"))
        }
        #expect(try await schema(gateway + "/vault.sqlite") == before, "the refused database was migrated")
        #expect(throws: CrewError.self) {
            try CrewDirectory.open(
                path: gateway + "/crew.sqlite",
                secretKey: try CrewSecretKey.load(path: gateway + "/crew-secret.key", create: false),
                logger: Self.quiet
            )
        }
        do {
            _ = try HospitalStore.open(
                path: receiver + "/" + HospitalStore.fileName,
                hospital: Self.receiverHospital,
                keyProvider: KeyFileProvider(stateDirectory: receiver),
                logger: Self.quiet
            )
            Issue.record("the receiver opened a database from a newer release")
        } catch {
            #expect(error.reason.contains("newer release"))
        }
    }
}
