import Foundation
import GRDB
import Testing

@testable import KyukyuVault

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Kills a writer process with SIGKILL at random points, many times, and checks after each kill that
/// the database is sound, every acknowledged write is there and decrypts, and the audit chain verifies.
@Suite("Crash safety", .serialized)
struct CrashTests {
    static let iterations = 30

    /// Finds `kyukyu-vault-crashwriter` next to the test bundle (SwiftPM builds it with the tests).
    static func crashWriterPath() throws -> String {
        let manager = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["KYUKYU_VAULT_CRASHWRITER"] {
            guard manager.isExecutableFile(atPath: explicit) else {
                throw CrashTestError("KYUKYU_VAULT_CRASHWRITER=\(explicit) is not an executable")
            }
            return explicit
        }
        var candidates: [URL] = []
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent("kyukyu-vault-crashwriter"))
            directory = directory.deletingLastPathComponent()
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append(
                bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("kyukyu-vault-crashwriter")
            )
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/kyukyu-vault-crashwriter"))
        if let found = candidates.first(where: { manager.isExecutableFile(atPath: $0.path) }) {
            return found.path
        }
        throw CrashTestError(
            """
            kyukyu-vault-crashwriter not found (looked in \(candidates.map(\.path).joined(separator: ", "))). \
            Build it with `swift build --product kyukyu-vault-crashwriter`, or set KYUKYU_VAULT_CRASHWRITER.
            """
        )
    }

    struct CrashTestError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    struct AcknowledgedRecord: Hashable {
        var incident: IncidentID
        var kind: RecordKind
        var version: Int
        var digest: String
    }

    /// Runs the writer, kills it after `delay`, and returns what it printed (all acknowledged writes).
    static func runAndKill(executable: String, stateDirectory: String, delay: Duration) async throws -> (String, Int32)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [stateDirectory]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let collected = LogCapture()
        let reader = output.fileHandleForReading
        let done = DispatchSemaphore(value: 0)
        // Read on a plain thread so a full pipe never blocks the writer (and never blocks the pool).
        let thread = Thread {
            let data = reader.readDataToEndOfFile()
            collected.append(String(decoding: data, as: UTF8.self))
            done.signal()
        }
        try process.run()
        try? output.fileHandleForWriting.close()
        thread.start()
        try await Task.sleep(for: delay)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        done.wait()
        return (collected.text, process.terminationStatus)
    }

    @Test(.timeLimit(.minutes(2)))
    func acknowledgedWritesSurviveSIGKILL() async throws {
        let executable = try Self.crashWriterPath()
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        var acknowledged: [IncidentID: [AcknowledgedRecord]] = [:]
        var mayBeShredded = Set<IncidentID>()
        var shredded = Set<IncidentID>()
        var maxAuditSequence: Int64 = 0
        var killsDuringWrites = 0
        var recordsChecked = 0
        var startUpAllowance = 0
        let started = ContinuousClock.now

        for iteration in 0..<Self.iterations {
            // Random kill points; the allowance grows when a kill came before the writer had written
            // anything, so that on a loaded machine most kills still land mid-write.
            // Every sixth run is killed very early, during start-up (open, migrations, start-up purge).
            let early = iteration % 6 == 5
            let delay = Duration.milliseconds(
                early ? Int.random(in: 1...40) : startUpAllowance + Int.random(in: 40...700)
            )
            let (output, status) = try await Self.runAndKill(
                executable: executable,
                stateDirectory: directory,
                delay: delay
            )
            #expect(status == SIGKILL, "iteration \(iteration): writer ended on its own (status \(status))")
            var linesThisRun = 0
            for line in output.split(separator: "\n") {
                let fields = line.split(separator: " ").map(String.init)
                linesThisRun += 1
                switch fields.first {
                case "incident":
                    acknowledged[IncidentID(fields[1])!, default: []] += []
                case "record":
                    let id = IncidentID(fields[1])!
                    acknowledged[id, default: []].append(
                        AcknowledgedRecord(
                            incident: id,
                            kind: RecordKind(fields[2])!,
                            version: Int(fields[3])!,
                            digest: fields[4]
                        )
                    )
                case "audit":
                    maxAuditSequence = max(maxAuditSequence, Int64(fields[1])!)
                case "shredding":
                    mayBeShredded.insert(IncidentID(fields[1])!)
                case "shredded":
                    shredded.insert(IncidentID(fields[1])!)
                default:
                    break
                }
            }
            if linesThisRun > 1 {
                killsDuringWrites += 1
            } else if !early {
                startUpAllowance = min(startUpAllowance + 250, 3000)
            }

            // Restart: open as the gateway would (start-up duties included), then check everything.
            let vault = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
            let pool = try DatabasePool(path: directory + "/" + VaultDatabase.fileName)
            let integrity = try await pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            #expect(integrity == ["ok"], "iteration \(iteration)")
            for (incident, records) in acknowledged {
                let expectGone = shredded.contains(incident)
                do {
                    let stored = try await vault.records(incident: incident, viewer: testCrew)
                    #expect(!expectGone, "iteration \(iteration): shredded incident \(incident) still readable")
                    let byKey = Dictionary(
                        stored.map { ("\($0.kind)/\($0.version)", $0) },
                        uniquingKeysWith: { first, _ in first }
                    )
                    for record in records {
                        recordsChecked += 1
                        let found = byKey["\(record.kind)/\(record.version)"]
                        #expect(
                            found != nil,
                            "iteration \(iteration): acknowledged \(record.kind) v\(record.version) lost"
                        )
                        if let found {
                            #expect(String(fnv1a64(found.payload), radix: 16) == record.digest)
                        }
                    }
                } catch let error as VaultError where error.code == .incidentNotFound {
                    #expect(
                        mayBeShredded.contains(incident),
                        "iteration \(iteration): incident \(incident) lost without a shred being started"
                    )
                    shredded.insert(incident)
                }
            }
            let verification = try await vault.audit.verify()
            #expect(verification.isIntact, "iteration \(iteration): \(verification.problems)")
            #expect((verification.head?.sequence ?? 0) >= maxAuditSequence, "iteration \(iteration): audit entry lost")
            maxAuditSequence = max(maxAuditSequence, verification.head?.sequence ?? 0)
            for gone in shredded { acknowledged[gone] = nil }
        }
        print(
            "crash test: \(Self.iterations) SIGKILLs, \(killsDuringWrites) during writes, \(recordsChecked) record checks, "
                + "\(shredded.count) incidents shredded, audit head #\(maxAuditSequence)"
        )
        #expect(killsDuringWrites >= Self.iterations / 3, "most kills should land while the writer was writing")
        #expect(ContinuousClock.now - started < .seconds(90))
    }
}

/// The same checksum the crash writer prints.
func fnv1a64(_ data: Data) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in data {
        hash ^= UInt64(byte)
        hash &*= 0x100_0000_01b3
    }
    return hash
}
