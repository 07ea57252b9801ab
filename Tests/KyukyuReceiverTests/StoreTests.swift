import Crypto
import Foundation
import KyukyuDomain
import KyukyuReceiver
import KyukyuVault
import Testing

@Suite("The receiver's store: sealed, idempotent, durable")
struct StoreTests {
    let validator = StructuralHandoffValidator()

    @Test(.timeLimit(.minutes(1))) func twentyIdenticalPostsAtOnceStoreOneRow() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try openStore(directory)
        let document = SyntheticDocument()
        let info = try validator.validate(document.data)
        let outcomes = try await withThrowingTaskGroup(of: IntakeOutcome.self) { group in
            for _ in 0..<20 {
                group.addTask { try await store.intake(info, body: document.data, device: "ambulance-01", at: Date()) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let created = outcomes.filter { if case .created = $0 { true } else { false } }
        #expect(created.count == 1)
        #expect(outcomes.count == 20)
        #expect(try await store.versions(of: document.set).count == 1)
        #expect(try await store.events(device: "ambulance-01", after: 0).count == 1)
    }

    @Test(.timeLimit(.minutes(1))) func theStoredSHA256IsTheBodysLowerCaseHex() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try openStore(directory)
        let document = SyntheticDocument()
        _ = try await store.intake(
            try validator.validate(document.data),
            body: document.data,
            device: "ambulance-01",
            at: Date()
        )
        let expected = SHA256.hash(data: document.data).map { String(format: "%02x", $0) }.joined()
        #expect(try await store.versions(of: document.set).map(\.sha256) == [expected])
    }

    @Test(.timeLimit(.minutes(1))) func theSameKeyWithOtherBytesIsAConflict() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try openStore(directory)
        var document = SyntheticDocument()
        let first = document.data
        _ = try await store.intake(try validator.validate(first), body: first, device: "ambulance-01", at: Date())
        document.chiefComplaint = "dyspnoea"
        let other = document.data
        await #expect(throws: ReceiverError.conflict("")) {
            try await store.intake(try validator.validate(other), body: other, device: "ambulance-01", at: Date())
        }
        // Another key for a stored set and version is a conflict too, and a set is its sender's.
        var sameVersion = document
        sameVersion.versionID = UUID()
        await #expect(throws: ReceiverError.conflict("")) {
            try await store.intake(
                try validator.validate(sameVersion.data),
                body: sameVersion.data,
                device: "ambulance-01",
                at: Date()
            )
        }
        let next = document.next()
        await #expect(throws: ReceiverError.forbidden("")) {
            try await store.intake(
                try validator.validate(next.data),
                body: next.data,
                device: "ambulance-02",
                at: Date()
            )
        }
        #expect(try await store.document(versionIdentifier: document.versionIdentifier) == first)
    }

    @Test(.timeLimit(.minutes(1))) func theFilesHoldNoPatientDataAndSurviveAReopen() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let document = SyntheticDocument()
        do {
            let store = try openStore(directory)
            _ = try await store.intake(
                try validator.validate(document.data),
                body: document.data,
                device: "ambulance-01",
                at: Date()
            )
            _ = try await store.transition(
                document.set,
                to: .diverted,
                reason: "other",
                note: "CT down until 14:00",
                by: .staff,
                at: Date()
            )
            let bytes = bytesOfFiles(in: directory)
            for needle in [
                Synthetic.familyName, Synthetic.givenName, Synthetic.familyNameKana, "CT down",
            ] {
                #expect(bytes.range(of: Data(needle.utf8)) == nil, "plaintext found in the state folder")
            }
            // The decrypted document is the posted one: the search above would have found the name in plaintext.
            let opened = try await store.document(versionIdentifier: document.versionIdentifier)
            #expect(opened.range(of: Data(Synthetic.familyName.utf8)) != nil)
            await store.checkpoint()
            try store.close()
        }
        let reopened = try openStore(directory)
        #expect(try await reopened.document(versionIdentifier: document.versionIdentifier) == document.data)
        let set = try #require(try await reopened.set(document.set))
        #expect(set.status == .diverted)
        #expect(set.note == "CT down until 14:00")
        #expect(try await reopened.events(device: "ambulance-01", after: nil).map(\.status) == [.received, .diverted])
        #expect(try await reopened.anchors(device: "ambulance-01").map(\.anchor.sequence) == [42])
        let mode =
            try FileManager.default.attributesOfItem(atPath: directory + "/" + HospitalStore.fileName)[
                .posixPermissions
            ] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let keyMode =
            try FileManager.default.attributesOfItem(atPath: directory + "/device-keyring.json")[.posixPermissions]
            as? NSNumber
        #expect(keyMode?.intValue == 0o600)
    }

    @Test(.timeLimit(.minutes(1))) func sequencesArePerDeviceAndClosedSetsLeaveTheList() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try openStore(directory)
        var one = SyntheticDocument()
        var two = SyntheticDocument()
        two.device = "ambulance-02"
        for document in [one, two] {
            _ = try await store.intake(
                try validator.validate(document.data),
                body: document.data,
                device: document.device,
                at: Date()
            )
        }
        one = one.next()
        _ = try await store.intake(try validator.validate(one.data), body: one.data, device: "ambulance-01", at: Date())
        let (_, arrived) = try await store.transition(
            two.set,
            to: .arrived,
            reason: nil,
            note: nil,
            by: .staff,
            at: Date()
        )
        #expect(arrived?.sequence == 2)
        #expect(try await store.events(device: "ambulance-01", after: 0).map(\.sequence) == [1, 2])
        #expect(try await store.events(device: "ambulance-01", after: 1).map(\.version) == [2])
        #expect(try await store.openSets().map(\.documentSet) == [one.set])
        // A closed set takes no staff action, and a device withdraws only its own sets.
        await #expect(throws: ReceiverError.conflict("")) {
            try await store.transition(two.set, to: .acknowledged, reason: nil, note: nil, by: .staff, at: Date())
        }
        await #expect(throws: ReceiverError.notFound("")) {
            try await store.transition(
                one.set,
                to: .withdrawn,
                reason: "closed",
                note: nil,
                by: .device("ambulance-02"),
                at: Date()
            )
        }
    }

    @Test(.timeLimit(.minutes(1))) func anotherKeyringOpensNothing() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let document = SyntheticDocument()
        do {
            let store = try openStore(directory)
            _ = try await store.intake(
                try validator.validate(document.data),
                body: document.data,
                device: "ambulance-01",
                at: Date()
            )
            try store.close()
        }
        let stranger = try HospitalStore.open(
            path: directory + "/" + HospitalStore.fileName,
            keyProvider: InMemoryKeyProvider(),
            logger: quiet
        )
        await #expect(throws: ReceiverError.storage("")) {
            try await stranger.document(versionIdentifier: document.versionIdentifier)
        }
    }
}
