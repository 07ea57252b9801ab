import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuGateway
import KyukyuWorkflow
import NIOCore
import Testing

/// What the fuzz of the real gateway against docs/gateway-api.yaml found, one test each: the gateway takes what the
/// document allows and refuses, with a 422 problem naming the field, what it does not.
@Suite("Gateway API as the document says (router, in-memory doubles)", .timeLimit(.minutes(1)))
struct APIContractTests {
    /// Posts `payload` and returns the status and the body.
    static func post(
        _ client: some TestClientProtocol,
        _ uri: String,
        _ headers: HTTPFields,
        _ payload: String
    ) async throws -> (Int, JSONAny?) {
        try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: payload)) {
            ($0.status.code, try? body($0))
        }
    }

    /// Expects a 422 `validation` problem naming `field`.
    static func expectInvalid(_ answer: (Int, JSONAny?), _ field: String, _ comment: String) {
        #expect(answer.0 == 422, "\(comment)")
        #expect(answer.1?["type"]?.string == "https://kyukyu.invalid/problems/validation", "\(comment)")
        guard case .array(let params) = answer.1?["invalidParams"] else {
            Issue.record("no invalidParams: \(comment)")
            return
        }
        #expect(params.first?["name"]?.string == field, "\(comment)")
    }

    @Test func dispatchTakesAnyRFC3339TimeAndRefusesAnEmptyLocationOrNull() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer dispatch-test-token"]
            let uri = "/api/v1/dispatch/incidents"
            Self.expectInvalid(
                try await Self.post(client, uri, headers, #"{"receivedAt":"2026-11-27T03:12:00Z","location":""}"#),
                "location",
                "empty location"
            )
            Self.expectInvalid(
                try await Self.post(
                    client,
                    uri,
                    headers,
                    #"{"receivedAt":"2026-11-27T03:12:00Z","location":"x","note":null}"#
                ),
                "note",
                "null note"
            )
            for bad in [
                "2026-11-27", "2026-02-30T03:12:00Z", "2026-11-27T03:12:00", "2026-11-27T24:00:00Z", "yesterday",
            ] {
                Self.expectInvalid(
                    try await Self.post(client, uri, headers, #"{"receivedAt":"\#(bad)","location":"x"}"#),
                    "receivedAt",
                    bad
                )
            }
            #expect(try await harness.store.incidentIDs().isEmpty)
            let note = String(repeating: "試", count: 1500)
            let (status, view) = try await Self.post(
                client,
                uri,
                headers,
                #"{"receivedAt":"2026-11-27T12:12:00.123456+09:00","location":"試験町 1-1","note":"\#(note)"}"#
            )
            #expect(status == 201)
            #expect(view?["dispatch"]?["receivedAt"]?.string == "2026-11-27T03:12:00Z")
            #expect(view?["dispatch"]?["note"]?.string == note)
        }
    }

    @Test func lookupFieldsAreCheckedAsTheDocumentSaysAndNothingIsAskedOfOnshi() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let session = try await SignedIn.signIn(client)
            let (_, created) = try await Self.post(client, "/api/v1/incidents", session.headers, "{}")
            let id = try #require(created?["id"]?.string)
            _ = try await Self.post(client, "/api/v1/incidents/\(id)/consent", session.headers, #"{"basis":"verbal"}"#)
            let uri = "/api/v1/incidents/\(id)/lookup"
            let person = #""kind":"demographics","name":"試験 花子","sex":"female","address":"試験町 1-1""#
            let cases: [(String, String)] = [
                (#"{\#(person),"birthDate":"19500131"}"#, "birthDate"),
                (#"{\#(person),"birthDate":"1950-01-31","nameKana":"shiken"}"#, "nameKana"),
                (#"{\#(person),"birthDate":"1950-01-31","nameKana":null}"#, "nameKana"),
                (#"{"kind":"demographics","name":"試験 花子","sex":"m","address":"x","birthDate":"1950-01-31"}"#, "sex"),
                (
                    #"{"kind":"demographics","name":"試験 花子","sex":"female","address":"\#(String(repeating: "x", count: 201))","birthDate":"1950-01-31"}"#,
                    "address"
                ),
                (
                    // 100 characters as a person sees them, 200 as JSON Schema counts (e + a combining accent).
                    #"{"kind":"demographics","name":"\#(String(repeating: "e\u{301}", count: 100))","sex":"female","address":"x","birthDate":"1950-01-31"}"#,
                    "name"
                ),
                (
                    #"{"kind":"insurance","insurerNumber":"1234567","insuredSymbol":"試験","insuredNumber":"1"}"#,
                    "insurerNumber"
                ),
                (#"{"kind":"insurance","insurerNumber":"06123456","insuredNumber":"1"}"#, "insuredSymbol"),
                (#"{"kind":null}"#, "kind"),
            ]
            for (payload, field) in cases {
                Self.expectInvalid(try await Self.post(client, uri, session.headers, payload), field, payload)
            }
            try await client.execute(uri: "/api/v1/incidents/\(id)", method: .get, headers: session.headers) {
                #expect((try? body($0))?["phase"]?.string == "consent-recorded")
            }
            let (status, _) = try await Self.post(
                client,
                uri,
                session.headers,
                #"{\#(person),"birthDate":"1950-01-31","nameKana":"シケン　ハナコ"}"#
            )
            #expect(status == 202)
        }
    }

    @Test func aMalformedPINIsRefusedBeforeItCostsATry() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let session = try await SignedIn.signIn(client)
            let (_, created) = try await Self.post(client, "/api/v1/incidents", session.headers, "{}")
            let id = try #require(created?["id"]?.string)
            let uri = "/api/v1/incidents/\(id)/pin"
            Self.expectInvalid(try await Self.post(client, uri, session.headers, #"{"pin":"12a4"}"#), "pin", "12a4")
            Self.expectInvalid(try await Self.post(client, uri, session.headers, #"{"pin":"12345"}"#), "pin", "12345")
            Self.expectInvalid(
                try await Self.post(client, uri, session.headers, #"{"pin":"1234","confirmLastTry":null}"#),
                "confirmLastTry",
                "null confirmLastTry"
            )
            // The crew PIN: 4 to 6 digits; anything else is refused before the crew directory counts a try.
            _ = try await Self.post(client, "/api/v1/session/lock", session.headers, "")
            for pin in ["12", "1234567", "abcd"] {
                Self.expectInvalid(
                    try await Self.post(client, "/api/v1/session/unlock", session.headers, #"{"pin":"\#(pin)"}"#),
                    "pin",
                    pin
                )
            }
            let (status, _) = try await Self.post(
                client,
                "/api/v1/session/unlock",
                session.headers,
                #"{"pin":"2468"}"#
            )
            #expect(status == 200)
        }
    }

    @Test func aMalformedSignInSaysWhichFieldIsMalformedNotWhichFactorIsWrong() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let headers: HTTPFields = [.contentType: "application/json"]
            let cases: [(String, String)] = [
                (#"{"crewId":"TEST-A1","password":"correct horse 1","totp":"12345a"}"#, "totp"),
                (#"{"crewId":"-TEST","password":"correct horse 1","totp":"123456"}"#, "crewId"),
                (#"{"crewId":"TEST-A1","password":"","totp":"123456"}"#, "password"),
            ]
            for (payload, field) in cases {
                Self.expectInvalid(try await Self.post(client, "/api/v1/session", headers, payload), field, payload)
            }
            let (status, _) = try await Self.post(
                client,
                "/api/v1/session",
                headers,
                #"{"crewId":"TEST-A1","password":"\#(String(repeating: "p", count: 250))","totp":"123456"}"#
            )
            #expect(status == 401)
        }
    }
}
