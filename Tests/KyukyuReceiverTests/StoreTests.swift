import Crypto
import Foundation
import KyukyuDomain
import KyukyuReceiver
import KyukyuVault
import Testing

/// The storage contract: the same tests on SQLite and on PostgreSQL (a private server this process starts).
@Suite("The receiver's store on both engines: sealed, idempotent, durable, tenant by tenant")
struct StoreTests {
    let validator = StructuralHandoffValidator()
    /// A second tenant of a region's hub.
    static let otherHospital = HospitalCode(rawValue: "1399999992")!

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func twentyIdenticalPostsAtOnceStoreOneRow(engine: Engine) async throws {
        try await withStore(engine) { _, store in
            let document = SyntheticDocument()
            let info = try validator.validate(document.data)
            let outcomes = try await withThrowingTaskGroup(of: IntakeOutcome.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await store.intake(info, body: document.data, device: "ambulance-01", at: Date())
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let created = outcomes.filter { if case .created = $0 { true } else { false } }
            #expect(created.count == 1)
            #expect(outcomes.count == 20)
            #expect(try await store.versions(of: document.set, at: hospitalCode).count == 1)
            #expect(try await store.events(device: "ambulance-01", after: 0).count == 1)
        }
    }

    /// Two instances of a region's hub on one database (two stores, each with its own connections): the same
    /// document posted to both at once is stored once.
    @Test(.timeLimit(.minutes(1)))
    func theSameDocumentPostedToTwoInstancesAtOnceIsStoredOnce() async throws {
        try await withStore(.postgresql) { fixture, first in
            let second = try await fixture.open()
            let documents = (0..<10).map { _ in SyntheticDocument() }
            let outcomes = try await withThrowingTaskGroup(of: IntakeOutcome.self) { group in
                for document in documents {
                    let info = try validator.validate(document.data)
                    for store in [first, second, first, second] {
                        group.addTask {
                            try await store.intake(info, body: document.data, device: "ambulance-01", at: Date())
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await second.close()
            #expect(outcomes.filter { if case .created = $0 { true } else { false } }.count == documents.count)
            let events = try await first.events(device: "ambulance-01", after: 0)
            #expect(events.map(\.sequence) == Array(1...Int64(documents.count)))
            #expect(try await first.boardEvents(hospital: hospitalCode, after: 0).map(\.id) == Array(1...10))
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func theStoredSHA256IsTheBodysLowerCaseHex(engine: Engine) async throws {
        try await withStore(engine) { _, store in
            let document = SyntheticDocument()
            _ = try await store.intake(
                try validator.validate(document.data),
                body: document.data,
                device: "ambulance-01",
                at: Date()
            )
            let expected = SHA256.hash(data: document.data).map { String(format: "%02x", $0) }.joined()
            #expect(try await store.versions(of: document.set, at: hospitalCode).map(\.sha256) == [expected])
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func theSameKeyWithOtherBytesIsAConflict(engine: Engine) async throws {
        try await withStore(engine) { _, store in
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
            #expect(try await store.document(versionIdentifier: document.versionIdentifier, at: hospitalCode) == first)
        }
    }

    @Test(.timeLimit(.minutes(2)), arguments: Engine.allCases)
    func nothingAtRestHoldsPatientDataAndAReopenReadsItAll(engine: Engine) async throws {
        try await withStore(engine) { fixture, store in
            let document = SyntheticDocument()
            _ = try await store.intake(
                try validator.validate(document.data),
                body: document.data,
                device: "ambulance-01",
                at: Date()
            )
            _ = try await store.transition(
                document.set,
                at: hospitalCode,
                to: .diverted,
                reason: "other",
                note: "CT down until 14:00",
                by: .staff,
                at: Date()
            )
            // The decrypted document is the posted one: the search below would find the name in plaintext.
            let opened = try await store.document(versionIdentifier: document.versionIdentifier, at: hospitalCode)
            for needle in Synthetic.quotedNames {
                #expect(opened.range(of: Data(needle.utf8)) != nil, "the plaintext holds \(needle)")
            }
            await store.checkpoint()
            let bytes = try await fixture.bytesAtRest()
            #expect(bytes.count > 10_000, "the search reads the engine's files")
            for needle in Synthetic.quotedNames + ["CT down"] {
                #expect(bytes.range(of: Data(needle.utf8)) == nil, "plaintext found at rest")
            }
            try await store.close()

            let reopened = try await fixture.open()
            #expect(
                try await reopened.document(versionIdentifier: document.versionIdentifier, at: hospitalCode)
                    == document.data
            )
            let set = try #require(try await reopened.set(document.set, at: hospitalCode))
            #expect(set.status == .diverted)
            #expect(set.note == "CT down until 14:00")
            #expect(
                try await reopened.events(device: "ambulance-01", after: nil).map(\.status) == [.received, .diverted]
            )
            #expect(try await reopened.anchors(device: "ambulance-01").map(\.anchor.sequence) == [42])
            try await reopened.close()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theSQLiteFilesAreOwnerOnly() async throws {
        try await withStore(.sqlite) { fixture, _ in
            for name in [HospitalStore.fileName, "device-keyring.json"] {
                let mode =
                    try FileManager.default.attributesOfItem(atPath: fixture.directory + "/" + name)[.posixPermissions]
                    as? NSNumber
                #expect(mode?.intValue == 0o600, "\(name)")
            }
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func sequencesArePerDeviceAndClosedSetsLeaveTheList(engine: Engine) async throws {
        try await withStore(engine) { _, store in
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
            _ = try await store.intake(
                try validator.validate(one.data),
                body: one.data,
                device: "ambulance-01",
                at: Date()
            )
            let (_, arrived) = try await store.transition(
                two.set,
                at: hospitalCode,
                to: .arrived,
                reason: nil,
                note: nil,
                by: .staff,
                at: Date()
            )
            #expect(arrived?.sequence == 2)
            #expect(arrived?.id == 4, "the hospital's fourth event on its board")
            #expect(try await store.events(device: "ambulance-01", after: 0).map(\.sequence) == [1, 2])
            #expect(try await store.events(device: "ambulance-01", after: 1).map(\.version) == [2])
            #expect(try await store.openSets(at: hospitalCode).map(\.documentSet) == [one.set])
            // A closed set takes no staff action, and a device withdraws only its own sets.
            await #expect(throws: ReceiverError.conflict("")) {
                try await store.transition(
                    two.set,
                    at: hospitalCode,
                    to: .acknowledged,
                    reason: nil,
                    note: nil,
                    by: .staff,
                    at: Date()
                )
            }
            await #expect(throws: ReceiverError.notFound("")) {
                try await store.transition(
                    one.set,
                    at: nil,
                    to: .withdrawn,
                    reason: "closed",
                    note: nil,
                    by: .device("ambulance-02"),
                    at: Date()
                )
            }
        }
    }

    /// Hospitals are tenants: one hospital's reads never return another's sets, versions, documents or events, a
    /// set diverted to a second hospital is a set at each, and each hospital's board counts its own events.
    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func aHospitalSeesOnlyItsOwnPatients(engine: Engine) async throws {
        try await withStore(engine) { _, store in
            let first = SyntheticDocument()
            var second = first.next()
            second.hospital = Self.otherHospital.rawValue
            for document in [first, second] {
                _ = try await store.intake(
                    try validator.validate(document.data),
                    body: document.data,
                    device: "ambulance-01",
                    at: Date()
                )
            }
            var elsewhere = SyntheticDocument()
            elsewhere.device = "ambulance-02"
            elsewhere.hospital = Self.otherHospital.rawValue
            _ = try await store.intake(
                try validator.validate(elsewhere.data),
                body: elsewhere.data,
                device: "ambulance-02",
                at: Date()
            )

            #expect(try await store.openSets(at: hospitalCode).map(\.documentSet) == [first.set])
            #expect(
                Set(try await store.openSets(at: Self.otherHospital).map(\.documentSet)) == [first.set, elsewhere.set]
            )
            #expect(try await store.set(elsewhere.set, at: hospitalCode) == nil)
            #expect(try await store.versions(of: elsewhere.set, at: hospitalCode).isEmpty)
            #expect(try await store.versions(of: first.set, at: hospitalCode).map(\.version) == [1])
            #expect(try await store.versions(of: first.set, at: Self.otherHospital).map(\.version) == [2])
            await #expect(throws: ReceiverError.notFound("")) {
                try await store.document(versionIdentifier: elsewhere.versionIdentifier, at: hospitalCode)
            }
            #expect(try await store.events(of: elsewhere.set, at: hospitalCode).isEmpty)
            #expect(try await store.boardEvents(hospital: hospitalCode, after: 0).map(\.id) == [1])
            #expect(try await store.boardEvents(hospital: Self.otherHospital, after: 0).map(\.id) == [1, 2])
            await #expect(throws: ReceiverError.notFound("")) {
                try await store.transition(
                    elsewhere.set,
                    at: hospitalCode,
                    to: .acknowledged,
                    reason: nil,
                    note: nil,
                    by: .staff,
                    at: Date()
                )
            }
            // The ambulance's withdrawal names the hospital when the set is at two.
            await #expect(throws: ReceiverError.invalidInput("")) {
                try await store.transition(
                    first.set,
                    at: nil,
                    to: .withdrawn,
                    reason: "closed",
                    note: nil,
                    by: .device("ambulance-01"),
                    at: Date()
                )
            }
            let (withdrawn, _) = try await store.transition(
                first.set,
                at: hospitalCode,
                to: .withdrawn,
                reason: "another-hospital",
                note: nil,
                by: .device("ambulance-01"),
                at: Date()
            )
            #expect(withdrawn.hospital == hospitalCode)
            #expect(try await store.set(first.set, at: Self.otherHospital)?.status == .received)
            var documents: [String] = []
            try await store.forEachDocument(at: Self.otherHospital) { version, _ in
                documents.append(version.versionIdentifier)
            }
            #expect(Set(documents) == [second.versionIdentifier, elsewhere.versionIdentifier])
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func anotherKeyringOpensNothing(engine: Engine) async throws {
        try await withStore(engine) { fixture, store in
            let document = SyntheticDocument()
            _ = try await store.intake(
                try validator.validate(document.data),
                body: document.data,
                device: "ambulance-01",
                at: Date()
            )
            let stranger = try await fixture.open(keyProvider: InMemoryKeyProvider())
            await #expect(throws: ReceiverError.storage("")) {
                try await stranger.document(versionIdentifier: document.versionIdentifier, at: hospitalCode)
            }
            try await stranger.close()
        }
    }
}
