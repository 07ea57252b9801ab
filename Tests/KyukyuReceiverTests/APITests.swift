import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuCrew
import KyukyuDomain
import KyukyuReceiver
import KyukyuTestbed
import Logging
import NIOCore
import Testing

/// The HTTP API through Hummingbird's router (no network): the contract's statuses and bodies, with the client
/// certificate replaced by a header double and staff through a real crew directory in a temporary folder.
@Suite("Receiver API (router)", .timeLimit(.minutes(1)))
struct APITests {
    struct Bed {
        let directory: String
        let store: HospitalStore
        let desk: HospitalDesk
        let staff: CrewDirectory
        let totpSecret: String
        let app: Application<RouterResponder<ReceiverRequestContext>>
    }

    func withBed(_ body: @escaping @Sendable (Bed, any TestClientProtocol) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try openStore(directory)
        try await store.registerDevice("ambulance-01")
        try await store.registerDevice("ambulance-02")
        try await store.registerDevice("ambulance-09")
        try await store.revokeDevice("ambulance-09")
        let desk = HospitalDesk(
            hospitals: [hospitalCode],
            store: store,
            validator: StructuralHandoffValidator(),
            logger: quiet
        )
        var policy = CrewDirectory.Policy()
        policy.bcryptCost = 4
        let staff = try CrewDirectory.open(
            path: directory + "/staff.sqlite",
            secretKey: SymmetricKey(size: .bits256),
            policy: policy,
            logger: quiet
        )
        let enrolment = try await staff.add(crewID: "NURSE-01", password: "correct horse battery", pin: "2468")
        let api = ReceiverAPI(desk: desk, staff: staff, identity: HeaderIdentity(), secureCookies: false)
        let app = Application(router: api.router(), logger: quiet)
        let bed = Bed(
            directory: directory,
            store: store,
            desk: desk,
            staff: staff,
            totpSecret: enrolment.totpSecret,
            app: app
        )
        try await app.test(.router) { client in try await body(bed, client) }
    }

    func post(
        _ client: any TestClientProtocol,
        _ document: SyntheticDocument,
        body: Data? = nil,
        device: String = "ambulance-01",
        contentType: String = "application/fhir+json; charset=utf-8",
        key: String? = nil
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: contentType, .init("X-Test-Device")!: device]
        headers[.init("Idempotency-Key")!] = key ?? document.versionIdentifier
        return try await client.execute(
            uri: "/fhir/Bundle",
            method: .post,
            headers: headers,
            body: ByteBuffer(bytes: body ?? document.data)
        )
    }

    func outcome(_ response: TestResponse) throws -> [[String: Any]] {
        #expect(response.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
        let object = try JSONSerialization.jsonObject(with: Data((response.body).readableBytesView)) as? [String: Any]
        #expect(object?["resourceType"] as? String == "OperationOutcome")
        return object?["issue"] as? [[String: Any]] ?? []
    }

    @Test func intakeAnswersEveryStatusOfTheContract() async throws {
        try await withBed { bed, client in
            let document = SyntheticDocument()
            let created = try await post(client, document)
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/fhir/Bundle/\(document.json["id"] as! String)")
            #expect(try outcome(created).first?["diagnostics"] as? String == "stored")

            #expect(try await post(client, document).status == .ok)

            var changed = document
            changed.chiefComplaint = "syncope"
            let conflict = try await post(client, changed)
            #expect(conflict.status == .conflict)
            _ = try outcome(conflict)

            let wrongType = try await post(client, document.next(), contentType: "application/json")
            #expect(wrongType.status == .unsupportedMediaType)
            _ = try outcome(wrongType)

            var large = document.next()
            large.padding = 4 * 1024 * 1024
            let tooLarge = try await post(client, large)
            #expect(tooLarge.status == .contentTooLarge)
            _ = try outcome(tooLarge)

            let notJSON = try await post(client, document.next(), body: Data("{\"resourceType\":".utf8))
            #expect(notJSON.status == .badRequest)
            #expect(try outcome(notJSON).first?["code"] as? String == "structure")

            var missing = document.next()
            missing.hospital = "123"
            let invalid = try await post(client, missing)
            #expect(invalid.status == .badRequest)
            let issues = try outcome(invalid)
            #expect(issues.contains { ($0["expression"] as? [String]) == ["Organization.identifier"] })
            #expect(!String(buffer: invalid.body).contains(Synthetic.familyName))

            let noKey = try await post(client, document.next(), key: "")
            #expect(noKey.status == .badRequest)
            let otherKey = try await post(client, document.next(), key: "urn:uuid:" + UUID().uuidString.lowercased())
            #expect(otherKey.status == .badRequest)

            var elsewhere = document.next()
            elsewhere.hospital = "2712345678"
            let wrongHospital = try await post(client, elsewhere)
            #expect(wrongHospital.status == .unprocessableContent)
            _ = try outcome(wrongHospital)

            // Sender mismatch, an unknown device and a revoked one: 403.
            #expect(try await post(client, document.next(), device: "ambulance-02").status == .forbidden)
            #expect(try await post(client, document.next(), device: "ambulance-77").status == .forbidden)
            var revoked = SyntheticDocument()
            revoked.device = "ambulance-09"
            #expect(try await post(client, revoked, device: "ambulance-09").status == .forbidden)
            let anonymous = try await client.execute(
                uri: "/fhir/Bundle",
                method: .post,
                headers: [.contentType: "application/fhir+json"],
                body: ByteBuffer(bytes: document.data)
            )
            #expect(anonymous.status == .forbidden)

            // Only the first post stored anything.
            #expect(try await bed.store.versions(of: document.set, at: hospitalCode).count == 1)
            #expect(try await post(client, document.next()).status == .created)
            #expect(try await bed.store.versions(of: document.set, at: hospitalCode).map(\.version) == [1, 2])
        }
    }

    func signIn(_ client: any TestClientProtocol, _ bed: Bed) async throws -> (cookie: String, csrf: String) {
        let body = try JSONSerialization.data(withJSONObject: [
            "staffId": "NURSE-01", "password": "correct horse battery", "totp": totp(bed.totpSecret),
        ])
        let response = try await client.execute(
            uri: "/api/v1/session",
            method: .post,
            headers: [.contentType: "application/json"],
            body: ByteBuffer(bytes: body)
        )
        #expect(response.status == .ok)
        let cookie = try #require(response.headers[.setCookie]?.split(separator: ";").first.map(String.init))
        let object = try JSONSerialization.jsonObject(with: Data((response.body).readableBytesView)) as? [String: Any]
        return (cookie, try #require(object?["csrfToken"] as? String))
    }

    @Test func staffSeeThePatientAndAcknowledgeAndDivertWithCSRF() async throws {
        try await withBed { bed, client in
            let document = SyntheticDocument()
            #expect(try await post(client, document).status == .created)
            let next = document.next(chiefComplaint: "stroke")
            #expect(try await post(client, next).status == .created)

            #expect(try await client.execute(uri: "/api/v1/patients", method: .get).status == .unauthorized)
            let wrong = try await client.execute(
                uri: "/api/v1/session",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"staffId":"NURSE-01","password":"wrong password!","totp":"000000"}"#)
            )
            #expect(wrong.status == .unauthorized)
            let (cookie, csrf) = try await signIn(client, bed)

            let list = try await client.execute(uri: "/api/v1/patients", method: .get, headers: [.cookie: cookie])
            #expect(list.status == .ok)
            let patients =
                (try JSONSerialization.jsonObject(with: Data((list.body).readableBytesView)) as? [String: Any])?[
                    "patients"
                ]
                as? [[String: Any]]
            #expect(patients?.count == 1)
            #expect(patients?.first?["version"] as? Int == 2)
            #expect(
                ((patients?.first?["document"] as? [String: Any])?["identifier"] as? [String: Any])?["value"] as? String
                    == next.versionIdentifier
            )

            let set = document.set.uuidString.lowercased()
            let detail = try await client.execute(
                uri: "/api/v1/patients/\(set)",
                method: .get,
                headers: [.cookie: cookie]
            )
            let view = try JSONSerialization.jsonObject(with: Data((detail.body).readableBytesView)) as? [String: Any]
            #expect((view?["versions"] as? [[String: Any]])?.compactMap { $0["version"] as? Int } == [1, 2])
            #expect(String(buffer: detail.body).contains(Synthetic.familyName))

            // Without the CSRF header, or from another origin: refused, and nothing changes.
            let noCSRF = try await client.execute(
                uri: "/api/v1/patients/\(set)/acknowledge",
                method: .post,
                headers: [.cookie: cookie]
            )
            #expect(noCSRF.status == .forbidden)
            let otherOrigin = try await client.execute(
                uri: "/api/v1/patients/\(set)/acknowledge",
                method: .post,
                headers: [
                    .cookie: cookie, .init("X-CSRF-Token")!: csrf, .origin: "https://evil.example",
                ]
            )
            #expect(otherOrigin.status == .forbidden)
            #expect(try await bed.store.set(document.set, at: hospitalCode)?.status == .received)

            let staffHeaders: HTTPFields = [
                .cookie: cookie, .init("X-CSRF-Token")!: csrf, .contentType: "application/json",
            ]
            let ack = try await client.execute(
                uri: "/api/v1/patients/\(set)/acknowledge",
                method: .post,
                headers: staffHeaders
            )
            #expect(ack.status == .ok)
            let badReason = try await client.execute(
                uri: "/api/v1/patients/\(set)/divert",
                method: .post,
                headers: staffHeaders,
                body: ByteBuffer(string: #"{"reason":"full-moon"}"#)
            )
            #expect(badReason.status == .unprocessableContent)
            let noNote = try await client.execute(
                uri: "/api/v1/patients/\(set)/divert",
                method: .post,
                headers: staffHeaders,
                body: ByteBuffer(string: #"{"reason":"other"}"#)
            )
            #expect(noNote.status == .unprocessableContent)
            let divert = try await client.execute(
                uri: "/api/v1/patients/\(set)/divert",
                method: .post,
                headers: staffHeaders,
                body: ByteBuffer(string: #"{"reason":"icu-full","note":"until 14:00"}"#)
            )
            #expect(divert.status == .ok)
            let events = try await bed.store.events(device: "ambulance-01", after: 0)
            #expect(events.map(\.status) == [.received, .received, .acknowledged, .diverted])
            #expect(events.last?.reason == "icu-full")
            #expect(events.last?.note == "until 14:00")
            let again = try await client.execute(
                uri: "/api/v1/patients/\(set)/arrived",
                method: .post,
                headers: staffHeaders
            )
            #expect(again.status == .conflict)
            #expect(again.headers[.contentType] == "application/problem+json")
        }
    }

    @Test func theAmbulanceWithdrawsOnlyItsOwnSets() async throws {
        try await withBed { bed, client in
            let document = SyntheticDocument()
            #expect(try await post(client, document).status == .created)
            let path = "/ambulance/v1/document-sets/\(document.set.uuidString.lowercased())/withdraw"
            let other = try await client.execute(
                uri: path,
                method: .post,
                headers: [.init("X-Test-Device")!: "ambulance-02", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"reason":"closed"}"#)
            )
            #expect(other.status == .notFound)
            let unknown = try await client.execute(
                uri: "/ambulance/v1/document-sets/\(UUID().uuidString)/withdraw",
                method: .post,
                headers: [.init("X-Test-Device")!: "ambulance-01", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"reason":"closed"}"#)
            )
            #expect(unknown.status == .notFound)
            let withdrawn = try await client.execute(
                uri: path,
                method: .post,
                headers: [.init("X-Test-Device")!: "ambulance-01", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"reason":"another-hospital"}"#)
            )
            #expect(withdrawn.status == .ok)
            #expect(try await bed.store.set(document.set, at: hospitalCode)?.status == .withdrawn)
            #expect(try await bed.store.events(device: "ambulance-01", after: 1).first?.reason == "another-hospital")
        }
    }
}
