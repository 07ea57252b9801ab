import Foundation
import KyukyuReceiver
import KyukyuTestbed
import KyukyuVault
import Logging
import Testing

/// The storage engines the same tests run against.
enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgresql

    var testDescription: String { rawValue }
}

/// The test process's private PostgreSQL (Debian's, a new cluster in /tmp on port base + 90): started at first use,
/// stopped at exit; each test gets a database of its own.
enum TestPostgres {
    static let shared = TestPostgres.Server()

    struct Server {
        func get() async throws -> PostgresServer {
            try await PostgresServer.shared(
                directory: "/tmp/kyukyu-test-postgres-\(Ports.base)",
                port: Ports.base + 90,
                logger: quiet
            )
        }
    }
}

/// One test's store on one engine: its folder (the SQLite file, or the keyring for PostgreSQL) and, for
/// PostgreSQL, its own database.
struct StoreFixture: Sendable {
    let engine: Engine
    let directory: String
    let database: String
    let server: PostgresServer?

    static func make(_ engine: Engine) async throws -> StoreFixture {
        let directory = temporaryDirectory()
        guard engine == .postgresql else {
            return StoreFixture(engine: engine, directory: directory, database: "", server: nil)
        }
        let server = try await TestPostgres.shared.get()
        let database = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        try await server.createDatabase(String(database))
        return StoreFixture(engine: engine, directory: directory, database: String(database), server: server)
    }

    /// The region's settings of this database.
    var postgres: PostgresSettings {
        PostgresSettings(port: server!.port, database: database, user: server!.user, password: server!.password)
    }

    /// Opens the store (again), with the folder's key file unless another keyring is given.
    func open(keyProvider: (any DeviceKeyProvider)? = nil) async throws -> HospitalStore {
        let keys = keyProvider ?? KeyFileProvider(stateDirectory: directory, credentialsDirectory: nil)
        switch engine {
        case .sqlite:
            return try HospitalStore.open(
                path: directory + "/" + HospitalStore.fileName,
                hospital: hospitalCode,
                keyProvider: keys,
                logger: quiet
            )
        case .postgresql:
            return try await HospitalStore.open(postgres: postgres, keyProvider: keys, logger: quiet)
        }
    }

    /// Every byte the engine keeps at rest: the SQLite files, or the PostgreSQL cluster's files and WAL after a
    /// checkpoint (what the database's operator holds).
    func bytesAtRest() async throws -> Data {
        guard let server else { return bytesOfFiles(in: directory) }
        try await server.psql("CHECKPOINT")
        return bytesOfFiles(in: server.dataDirectory)
    }

    func cleanUp() async {
        try? FileManager.default.removeItem(atPath: directory)
        if let server { try? await server.dropDatabase(database) }
    }
}

/// Runs `body` with a fresh store on `engine`, closing and removing it after.
func withStore(
    _ engine: Engine,
    _ body: (StoreFixture, HospitalStore) async throws -> Void
) async throws {
    let fixture = try await StoreFixture.make(engine)
    do {
        let store = try await fixture.open()
        do {
            try await body(fixture, store)
        } catch {
            try? await store.close()
            throw error
        }
        try? await store.close()
    } catch {
        await fixture.cleanUp()
        throw error
    }
    await fixture.cleanUp()
}
