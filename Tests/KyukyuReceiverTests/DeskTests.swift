import Foundation
import KyukyuDomain
import KyukyuReceiver
import Testing

/// The desk over a validator double: whatever validator is plugged in, the receiver applies the contract's rules
/// to what it reads (key, sender, destination) before anything is stored.
@Suite("The desk applies the contract to the validator's answer", .timeLimit(.minutes(1)))
struct DeskTests {
    func info(destination: String = "1312345678", sender: String = "ambulance-01") -> ValidatedDocumentInfo {
        ValidatedDocumentInfo(
            documentSet: UUID(),
            version: 1,
            versionIdentifier: "urn:uuid:" + UUID().uuidString.lowercased(),
            bundleID: "b1",
            destination: HospitalCode(rawValue: destination)!,
            senderDevice: sender,
            auditAnchor: nil,
            timestamp: Date()
        )
    }

    func desk(_ validator: FixedValidator, _ directory: String) async throws -> HospitalDesk {
        let store = try openStore(directory)
        try await store.registerDevice("ambulance-01")
        return HospitalDesk(
            hospitals: [hospitalCode],
            store: store,
            validator: validator,
            logger: quiet
        )
    }

    @Test func refusalsComeBeforeStorage() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let body = Data("opaque to the desk".utf8)
        for (answer, expected) in [
            (info(destination: "2712345678"), HospitalDesk.IntakeRefusal.wrongDestination),
            (info(sender: "ambulance-02"), .forbidden("")),
        ] {
            let desk = try await desk(FixedValidator(info: answer), directory)
            do {
                _ = try await desk.intake(body: body, idempotencyKey: answer.versionIdentifier, device: "ambulance-01")
                Issue.record("accepted")
            } catch {
                switch (error, expected) {
                case (.wrongDestination, .wrongDestination), (.forbidden, .forbidden): break
                default: Issue.record("refused with \(error), expected \(expected)")
                }
            }
            #expect(try await desk.store.set(answer.documentSet, at: hospitalCode) == nil)
        }
        let good = info()
        let desk = try await desk(FixedValidator(info: good), directory)
        await #expect(throws: HospitalDesk.IntakeRefusal.self) {
            try await desk.intake(body: body, idempotencyKey: "urn:uuid:" + UUID().uuidString, device: "ambulance-01")
        }
        let (outcome, _) = try await desk.intake(
            body: body,
            idempotencyKey: good.versionIdentifier,
            device: "ambulance-01"
        )
        guard case .created(let version, let event) = outcome else {
            Issue.record("not created")
            return
        }
        #expect(version.documentSet == good.documentSet)
        #expect(event.status == .received)
        #expect(try await desk.store.document(versionIdentifier: good.versionIdentifier, at: hospitalCode) == body)
    }
}
