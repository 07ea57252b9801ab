import Foundation
import GRDB
import Testing

@testable import KyukyuVault

/// Runs the built `kyukyu` (from `$KYUKYU_BIN_DIR`, else `.build/debug`) as scripts and operators do.
enum KyukyuCLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { self.stdout + self.stderr }
    }

    static func executable() throws -> String {
        var directory = ProcessInfo.processInfo.environment["KYUKYU_BIN_DIR"] ?? ""
        if directory.isEmpty {
            directory =
                URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug").path
        }
        let path = directory + "/kyukyu"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CrashTests.CrashTestError("\(path) is not built; run `swift build` (or set KYUKYU_BIN_DIR)")
        }
        return path
    }

    /// Runs `kyukyu arguments…` with standard input from /dev/null (not a terminal) and `environment`
    /// added to this process's environment (`nil` values removed).
    static func run(_ arguments: [String], environment: [String: String?] = [:]) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try self.executable())
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        merged["CREDENTIALS_DIRECTORY"] = nil
        merged["KYUKYU_STATE_DIR"] = nil
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { process in
            exited.continuation.yield(process.terminationStatus)
            exited.continuation.finish()
        }
        try process.run()
        // Pipes are drained on their own threads, never on the cooperative pool.
        let outHandle = out.fileHandleForReading
        let errHandle = err.fileHandleForReading
        async let stdout = runBlocking { outHandle.readDataToEndOfFile() }
        async let stderr = runBlocking { errHandle.readDataToEndOfFile() }
        let (o, e) = try await (stdout, stderr)
        var status: Int32 = -1
        for await code in exited.stream { status = code }
        return Result(
            status: status,
            stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self)
        )
    }
}

@Suite("kyukyu vault and audit CLI", .serialized)
struct VaultCLITests {
    /// A vault with two incidents and some audit entries, made through the library.
    func makeVault(_ directory: String) async throws -> (IncidentVault, [IncidentID]) {
        let vault = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        var ids: [IncidentID] = []
        for _ in 0..<2 {
            let id = try await vault.createIncident()
            try await vault.putRecord(incident: id, kind: .medications, payload: Data("SYNTHETIC".utf8))
            ids.append(id)
        }
        try await vault.audit.append(.crewSignIn(crew: testCrew))
        return (vault, ids)
    }

    @Test(.timeLimit(.minutes(1)))
    func readOnlyCommandsNeverCreateAKeyFile() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let keyFile = directory + "/" + KeyFileProvider.defaultFileName
        let readOnly: [[String]] = [
            ["vault", "status"], ["vault", "status", "--json"], ["audit", "verify"], ["audit", "export"],
        ]
        // No vault at all.
        for command in readOnly {
            let result = try await KyukyuCLI.run(command + ["--state-dir", directory])
            #expect(result.status != 0, "\(command)")
            #expect(result.stderr.contains("no vault"), "\(command): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: keyFile), "\(command) created a key file")
            #expect(!FileManager.default.fileExists(atPath: directory + "/" + VaultDatabase.fileName))
        }
        // A vault whose key file is gone: an error, never a fresh key.
        _ = try await self.makeVault(directory)
        try FileManager.default.removeItem(atPath: keyFile)
        for command in readOnly {
            for source in ["auto", "file"] {
                let result = try await KyukyuCLI.run(command + ["--state-dir", directory, "--key-source", source])
                #expect(result.status == 1, "\(command) \(source): \(result.output)")
                #expect(result.stderr.contains("missing"), "\(command): \(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: keyFile), "\(command) created a key file")
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func statusVerifyExportAndVerifyExport() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let (vault, _) = try await self.makeVault(directory)

        let status = try await KyukyuCLI.run(["vault", "status", "--json", "--state-dir", directory])
        #expect(status.status == 0, "\(status.stderr)")
        let decoded = try JSONDecoder().decode(VaultStatus.self, from: Data(status.stdout.utf8))
        #expect(decoded.incidentCount == 2)
        #expect(decoded.recordCount == 2)
        #expect(decoded.auditSigningPublicKey == vault.audit.signingPublicKey.base64EncodedString())
        #expect(!status.output.contains("SYNTHETIC"))

        let verify = try await KyukyuCLI.run(["audit", "verify", "--state-dir", directory])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.stdout.contains("chain intact"))

        let export = try await KyukyuCLI.run(["audit", "export", "--state-dir", directory])
        #expect(export.status == 0, "\(export.stderr)")
        let lines = export.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == decoded.auditEntryCount + 1)
        #expect(lines.last?.hasPrefix("{\"head\"") == true)
        let key = decoded.auditSigningPublicKey
        func verifyExport(_ lines: [String], _ extra: [String] = []) async throws -> KyukyuCLI.Result {
            let file = directory + "/export-\(UUID().uuidString.prefix(6)).jsonl"
            try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            return try await KyukyuCLI.run(["audit", "verify-export", file, "--public-key", key] + extra)
        }
        let whole = try await verifyExport(lines)
        #expect(whole.status == 0, "\(whole.output)")
        #expect(whole.stdout.contains("export intact"))

        // The first entries removed: strict by default.
        let cut = Array(lines.dropFirst(2))
        let strict = try await verifyExport(cut)
        #expect(strict.status == 1, "\(strict.output)")
        #expect(strict.stdout.contains("PROBLEM missing"))
        #expect(strict.stdout.contains("does not start at entry #1"))
        // Partial only when asked for, and then it says what it could not check.
        let partial = try await verifyExport(cut, ["--partial"])
        #expect(partial.status == 0, "\(partial.output)")
        #expect(partial.stdout.contains("partial check: entries #1–#2"))
        #expect(partial.stdout.contains("were not checked"))
        // A cut in the middle fails even in partial mode.
        var holed = lines
        holed.remove(at: 3)
        let hole = try await verifyExport(holed, ["--partial"])
        #expect(hole.status == 1, "\(hole.output)")

        // Tampering with the trail: verify exits 1.
        let pool = try DatabasePool(path: directory + "/" + VaultDatabase.fileName)
        try await pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_entry_no_delete")
            try db.execute(sql: "DELETE FROM audit_entry WHERE seq = 2")
        }
        let tampered = try await KyukyuCLI.run(["audit", "verify", "--state-dir", directory])
        #expect(tampered.status == 1)
        #expect(tampered.stdout.contains("PROBLEM missing"))
    }

    @Test(.timeLimit(.minutes(1)))
    func purgeWipeAndRotateKey() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let (vault, ids) = try await self.makeVault(directory)
        let before = vault.currentDeviceKeyID

        let usage = try await KyukyuCLI.run(["vault", "purge", "--expired", "--all", "--state-dir", directory])
        #expect(usage.status == 64, "\(usage.output)")

        let purge = try await KyukyuCLI.run([
            "vault", "purge", "--incident", ids[0].description, "--state-dir", directory,
        ])
        #expect(purge.status == 0, "\(purge.output)")
        #expect(purge.stdout.contains("1 incident(s) shredded; WAL truncated: yes"))
        await #expect(throws: VaultError.incidentNotFound(reason: "")) {
            _ = try await vault.records(incident: ids[0], viewer: testCrew)
        }

        let rotate = try await KyukyuCLI.run(["vault", "rotate-key", "--json", "--state-dir", directory])
        #expect(rotate.status == 0, "\(rotate.output)")
        let report = try JSONDecoder().decode(KeyRotationReport.self, from: Data(rotate.stdout.utf8))
        #expect(report.retired == [before])
        #expect(report.rewrapped == 1)
        // This process still held the old keyring: it notices and reads with the new one.
        #expect(try await vault.records(incident: ids[1], viewer: testCrew).count == 1)

        let refused = try await KyukyuCLI.run(["vault", "wipe", "--state-dir", directory])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--yes"))
        #expect(try await vault.status().incidentCount == 1)

        let wipe = try await KyukyuCLI.run(["vault", "wipe", "--yes", "--actor", "crew-0042", "--state-dir", directory])
        #expect(wipe.status == 0, "\(wipe.output)")
        #expect(try await vault.status().incidentCount == 0)
        let verify = try await KyukyuCLI.run(["audit", "verify", "--state-dir", directory])
        #expect(verify.status == 0, "\(verify.output)")
        let actions = try await vault.audit.export().map(\.event.action)
        #expect(actions.contains(.keyRotated))
        #expect(actions.last == .vaultWiped)
    }

    @Test(.timeLimit(.minutes(1)))
    func credentialsDirectorySetFailsClosed() async throws {
        let directory = try makeTemporaryDirectory()
        let credentials = try makeTemporaryDirectory()
        defer {
            removeDirectory(directory)
            removeDirectory(credentials)
        }
        _ = try await self.makeVault(directory)
        let keyFile = directory + "/" + KeyFileProvider.defaultFileName
        let keyBefore = FileManager.default.contents(atPath: keyFile)
        let environment = ["CREDENTIALS_DIRECTORY": credentials]
        for source in ["auto", "credential"] {
            let result = try await KyukyuCLI.run(
                ["vault", "status", "--state-dir", directory, "--key-source", source],
                environment: environment
            )
            #expect(result.status == 1, "\(source): \(result.output)")
            #expect(result.stderr.contains(SystemdCredentialProvider.defaultName), "\(result.stderr)")
        }
        let file = try await KyukyuCLI.run(
            ["vault", "status", "--state-dir", directory, "--key-source", "file"],
            environment: environment
        )
        #expect(file.status == 1, "\(file.output)")
        #expect(file.stderr.contains("CREDENTIALS_DIRECTORY is set"))
        #expect(FileManager.default.contents(atPath: keyFile) == keyBefore, "the key file was not touched")

        // Delivered under its one name, the credential is what the vault uses.
        try FileManager.default.copyItem(
            atPath: keyFile,
            toPath: credentials + "/" + SystemdCredentialProvider.defaultName
        )
        chmod(credentials + "/" + SystemdCredentialProvider.defaultName, 0o400)
        try FileManager.default.removeItem(atPath: keyFile)
        let status = try await KyukyuCLI.run(["vault", "status", "--state-dir", directory], environment: environment)
        #expect(status.status == 0, "\(status.output)")
        #expect(!FileManager.default.fileExists(atPath: keyFile))
    }
}

extension VaultCLITests {
    /// The hospital's receiver keeps the signed audit head each document carried; a tablet whose vault file was
    /// later put back to an older copy no longer contains those heads, and `audit verify --anchors` says so.
    @Test(.timeLimit(.minutes(1)))
    func aRolledBackTrailIsCaughtWithTheReceiversAnchors() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let (vault, _) = try await self.makeVault(directory)
        let first = try #require(try await vault.audit.head())
        _ = await vault.truncateWAL()
        let database = directory + "/" + VaultDatabase.fileName
        let backup = directory + "/older-copy.sqlite"
        try FileManager.default.copyItem(atPath: database, toPath: backup)
        try await vault.audit.append(.crewSignOut(crew: testCrew))
        let second = try #require(try await vault.audit.head())
        #expect(second.sequence > first.sequence)
        _ = await vault.truncateWAL()

        // As `kyukyu-hospital anchors` writes it: the heads, with the receiver's own fields beside them.
        func anchorsFile(_ heads: [AuditHead]) throws -> String {
            let path = directory + "/anchors-\(heads.count).json"
            let anchors = try heads.map { head -> [String: Any] in
                var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(head)) as! [String: Any]
                object["documentSet"] = "urn:uuid:\(UUID().uuidString.lowercased())"
                object["version"] = 1
                return object
            }
            let file: [String: Any] = [
                "format": "kyukyu-hospital-anchors/1", "device": "ambulance-01", "anchors": anchors,
            ]
            FileManager.default.createFile(atPath: path, contents: try JSONSerialization.data(withJSONObject: file))
            return path
        }
        let path = try anchorsFile([first, second])
        let intact = try await KyukyuCLI.run(["audit", "verify", "--state-dir", directory, "--anchors", path])
        #expect(intact.status == 0, "\(intact.output)")
        #expect(intact.stdout.contains("anchors from the receiver: 2"))

        // The file is put back to the copy made before the second head.
        try FileManager.default.removeItem(atPath: database)
        try FileManager.default.copyItem(atPath: backup, toPath: database)
        let rolledBack = try await KyukyuCLI.run(["audit", "verify", "--state-dir", directory, "--anchors", path])
        #expect(rolledBack.status == 1, "\(rolledBack.output)")
        #expect(rolledBack.stdout.contains("anchor-mismatch"), "\(rolledBack.output)")
        // Without the receiver's anchors the older copy looks intact: the anchors are what catch it.
        let alone = try await KyukyuCLI.run(["audit", "verify", "--state-dir", directory])
        #expect(alone.status == 0, "\(alone.output)")

        let notAnchors = directory + "/not-anchors.json"
        FileManager.default.createFile(atPath: notAnchors, contents: Data("{}".utf8))
        let refused = try await KyukyuCLI.run(["audit", "verify", "--state-dir", directory, "--anchors", notAnchors])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("not a receiver's anchors file"), "\(refused.stderr)")
    }
}
