import Foundation
import KyukyuDomain
import Testing

@testable import KyukyuReceiver

/// The batches a commit closure was given, and a gate that holds the first one.
private actor Recorder {
    var batches: [[Int]] = []
    private var gate: CheckedContinuation<Void, Never>?
    private var open = false

    func record(_ batch: [Int]) async {
        batches.append(batch)
        if batches.count == 1 && !open { await withCheckedContinuation { gate = $0 } }
    }

    func release() {
        open = true
        gate?.resume()
        gate = nil
    }
}

@Suite("Group commit: documents that arrive together share one transaction")
struct GroupCommitTests {
    @Test(.timeLimit(.minutes(1))) func itemsQueuedDuringACommitGoInTheNextOneAndEachCallerGetsItsOwnOutcome()
        async throws
    {
        let commits = GroupCommit<Int, String>(maximumBatch: 256)
        let recorder = Recorder()
        let commit: @Sendable ([Int]) async -> [String] = { batch in
            await recorder.record(batch)
            return batch.map { "stored \($0)" }
        }
        let outcomes = await withTaskGroup(of: (Int, String).self) { group in
            group.addTask { (0, await commits.submit(0, commit: commit)) }
            // The first transaction is under way (held by the gate); nine more arrive meanwhile.
            while await recorder.batches.isEmpty { await Task.yield() }
            for item in 1...9 { group.addTask { (item, await commits.submit(item, commit: commit)) } }
            while commits.queued < 9 { await Task.yield() }
            await recorder.release()
            return await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes == Dictionary(uniqueKeysWithValues: (0...9).map { ($0, "stored \($0)") }))
        let batches = await recorder.batches
        #expect(batches.count == 2)
        #expect(batches.first == [0])
        #expect(batches.last.map { Set($0) } == Set(1...9))
        #expect(commits.queued == 0)
    }

    @Test(.timeLimit(.minutes(1))) func aBatchIsNeverLargerThanItsMaximum() async throws {
        let commits = GroupCommit<Int, Int>(maximumBatch: 4)
        let recorder = Recorder()
        let commit: @Sendable ([Int]) async -> [Int] = { batch in
            await recorder.record(batch)
            return batch
        }
        let outcomes = await withTaskGroup(of: Int.self) { group in
            group.addTask { await commits.submit(0, commit: commit) }
            while await recorder.batches.isEmpty { await Task.yield() }
            for item in 1...10 { group.addTask { await commits.submit(item, commit: commit) } }
            while commits.queued < 10 { await Task.yield() }
            await recorder.release()
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(outcomes.sorted() == Array(0...10))
        let batches = await recorder.batches
        #expect(batches.allSatisfy { $0.count <= 4 })
        #expect(batches.count == 4)  // [0], then 10 waiting items in batches of 4, 4 and 2
        #expect(batches.flatMap { $0 }.sorted() == Array(0...10))
    }

    @Test(.timeLimit(.minutes(1))) func aRefusedDocumentInABatchLeavesNothingAndTheOthersAreStored() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try openStore(directory)
        let validator = StructuralHandoffValidator()
        let first = SyntheticDocument()
        var second = SyntheticDocument()
        second.device = "ambulance-02"
        // The second ambulance claims the first's set: refused (a set is its sender's).
        var thief = first.next()
        thief.device = "ambulance-02"
        func row(_ document: SyntheticDocument) throws -> IntakeRow {
            let info = try validator.validate(document.data)
            return IntakeRow(
                hospital: info.destination.rawValue,
                set: HospitalStore.text(document.set),
                version: info.version,
                versionIdentifier: info.versionIdentifier,
                bundleID: info.bundleID,
                builtAt: 0,
                sha: String(repeating: "0", count: 64),
                keyID: "test",
                sealing: 2,
                sealed: Data("sealed \(document.versionIdentifier)".utf8),
                device: document.device,
                at: 0,
                anchor: nil
            )
        }
        let sqlite = try #require(store.storage as? SQLiteStorage)
        let outcomes = await sqlite.store([try row(first), try row(thief), try row(second)])
        #expect(outcomes.count == 3)
        if case .success(.created) = outcomes[0] {} else { Issue.record("the first document was not stored") }
        if case .failure(let error) = outcomes[1] {
            #expect(error == ReceiverError.forbidden(""))
        } else {
            Issue.record("the other device's document was not refused")
        }
        if case .success(.created) = outcomes[2] {} else { Issue.record("the third document was not stored") }
        #expect(try await store.versions(of: first.set, at: hospitalCode).map(\.version) == [1])
        #expect(try await store.versions(of: second.set, at: hospitalCode).map(\.version) == [1])
        #expect(try await store.events(device: "ambulance-02", after: 0).map(\.documentSet) == [second.set])
    }
}
