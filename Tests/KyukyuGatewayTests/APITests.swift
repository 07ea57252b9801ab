import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuGateway
import KyukyuIncident
import KyukyuTestbed
import KyukyuVault
import KyukyuWorkflow
import NIOCore
import Synchronization
import Testing

@Suite("Gateway API (router, in-memory doubles)", .timeLimit(.minutes(1)))
struct APITests {
    @Test func everyAPIRouteNeedsASignedInCrewAndSaysSoAsAProblem() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            for (method, uri) in [
                (HTTPRequest.Method.get, "/api/v1/incidents"), (.post, "/api/v1/incidents"), (.get, "/api/v1/reader"),
                (.get, "/api/v1/session"),
            ] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .unauthorized, "\(method) \(uri)")
                    #expect(response.headers[.contentType] == "application/problem+json")
                    #expect((try? body(response))?["type"]?.string == "https://kyukyu.invalid/problems/unauthenticated")
                }
            }
        }
    }

    @Test func signInSetsAStrictCookieAndAWrongFactorSaysNotWhich() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            try await client.execute(
                uri: "/api/v1/session",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"crewId":"TEST-A1","password":"correct horse 1","totp":"123456"}"#)
            ) { response in
                #expect(response.status == .ok)
                let cookie = try #require(response.headers[.setCookie])
                #expect(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Strict"))
                #expect((try? body(response))?["csrfToken"]?.string?.isEmpty == false)
            }
            try await client.execute(
                uri: "/api/v1/session",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"crewId":"TEST-A1","password":"correct horse 1","totp":"000000"}"#)
            ) { response in
                #expect(response.status == .unauthorized)
                let problem = try body(response)
                #expect(problem["type"]?.string?.hasSuffix("/sign-in-failed") == true)
                #expect(problem["detail"]?.string == "the crew ID, password or one-time code is wrong")
            }
        }
    }

    @Test func aStateChangeWithoutTheCSRFTokenOrFromAnotherOriginIsRefused() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let session = try await SignedIn.signIn(client)
            try await client.execute(
                uri: "/api/v1/incidents",
                method: .post,
                headers: [.cookie: session.cookie, .contentType: "application/json"],
                body: ByteBuffer(string: "{}")
            ) { response in
                #expect(response.status == .forbidden)
            }
            var foreign = session.headers
            foreign[.origin] = "https://evil.invalid"
            try await client.execute(
                uri: "/api/v1/incidents",
                method: .post,
                headers: foreign,
                body: ByteBuffer(string: "{}")
            ) { response in
                #expect(response.status == .forbidden)
            }
            #expect(try await harness.store.incidentIDs().isEmpty)
            try await client.execute(
                uri: "/api/v1/incidents",
                method: .post,
                headers: session.headers,
                body: ByteBuffer(string: "{}")
            ) { response in
                #expect(response.status == .created)
            }
            #expect(try await harness.store.incidentIDs().count == 1)
        }
    }

    @Test func aLockedTabletAnswers423UntilTheCrewPINUnlocksIt() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let session = try await SignedIn.signIn(client)
            try await client.execute(uri: "/api/v1/session/lock", method: .post, headers: session.headers) {
                #expect($0.status == .noContent)
            }
            try await client.execute(uri: "/api/v1/incidents", method: .get, headers: session.headers) { response in
                #expect(response.status.code == 423)
                #expect((try? body(response))?["type"]?.string?.hasSuffix("/session-locked") == true)
            }
            try await client.execute(
                uri: "/api/v1/session/unlock",
                method: .post,
                headers: session.headers,
                body: ByteBuffer(string: #"{"pin":"1111"}"#)
            ) { response in
                #expect(response.status == .unauthorized)
                #expect((try? body(response))?["triesLeft"] == .number(4))
            }
            try await client.execute(
                uri: "/api/v1/session/unlock",
                method: .post,
                headers: session.headers,
                body: ByteBuffer(string: #"{"pin":"2468"}"#)
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/v1/incidents", method: .get, headers: session.headers) {
                #expect($0.status == .ok)
            }
        }
    }

    @Test func badInputsGetAProblemSayingWhatIsWrongAndChangeNothing() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let session = try await SignedIn.signIn(client)
            let id = try await client.execute(
                uri: "/api/v1/incidents",
                method: .post,
                headers: session.headers,
                body: ByteBuffer(string: "{}")
            ) { try body($0)["id"]?.string ?? "" }
            let cases: [(String, HTTPFields, String, Int, String)] = [
                ("/consent", session.headers, #"{"basis":"maybe"}"#, 422, "validation"),
                ("/consent", session.headers, #"{"basis":"verbal","extra":1}"#, 422, "validation"),
                ("/consent", session.headers, #"{"basis":7}"#, 422, "validation"),
                ("/consent", session.headers, "not json", 400, "bad-request"),
                ("/consent", session.headers, "[1,2]", 400, "bad-request"),
                (
                    "/consent",
                    [.cookie: session.cookie, GatewayAPI.csrfHeader: session.csrf, .contentType: "text/plain"],
                    #"{"basis":"verbal"}"#, 415, "unsupported-media-type"
                ),
                ("/pin", session.headers, #"{"pin":"1234"}"#, 409, "conflict"),
                ("/lookup", session.headers, #"{"kind":"demographics","name":"試験 花子"}"#, 422, "validation"),
                (
                    "/lookup", session.headers,
                    #"{"kind":"demographics","name":"試験 花子","birthDate":"1950-02-30","sex":"female","address":"x"}"#,
                    422, "validation"
                ),
                ("/lookup", session.headers, #"{"kind":"fax"}"#, 422, "validation"),
            ]
            for (path, headers, payload, status, slug) in cases {
                try await client.execute(
                    uri: "/api/v1/incidents/\(id)\(path)",
                    method: .post,
                    headers: headers,
                    body: ByteBuffer(string: payload)
                ) { response in
                    #expect(response.status.code == status, "\(path) \(payload)")
                    let problem = try body(response)
                    #expect(problem["type"]?.string == "https://kyukyu.invalid/problems/\(slug)", "\(path) \(payload)")
                    #expect(problem["detail"]?.string?.isEmpty == false)
                }
            }
            try await client.execute(uri: "/api/v1/incidents/not-an-id", method: .get, headers: session.headers) {
                #expect($0.status == .notFound)
            }
            try await client.execute(
                uri: "/api/v1/incidents/\(IncidentID())",
                method: .get,
                headers: session.headers
            ) { #expect($0.status == .notFound) }
            // Nothing changed: still created, no consent.
            try await client.execute(uri: "/api/v1/incidents/\(id)", method: .get, headers: session.headers) {
                let view = try body($0)
                #expect(view["phase"]?.string == "created")
                #expect(view["consent"] == .null || view["consent"] == nil)
            }
        }
    }

    @Test func consentAndACardGiveTheSummaryAndCloseForgetsIt() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let session = try await SignedIn.signIn(client)
            let id = try await client.execute(
                uri: "/api/v1/incidents",
                method: .post,
                headers: session.headers,
                body: ByteBuffer(string: "{}")
            ) { try body($0)["id"]?.string ?? "" }
            try await client.execute(
                uri: "/api/v1/incidents/\(id)/consent",
                method: .post,
                headers: session.headers,
                body: ByteBuffer(string: #"{"basis":"verbal"}"#)
            ) { #expect((try? body($0))?["phase"]?.string == "consent-recorded") }
            // The reader monitor hands the card over; no tap.
            await harness.desk.cardTouched(harness.card)
            let runner = try await harness.desk.runner(try #require(IncidentID(id)))
            _ = await waitFor(runner) { $0.state.machine.summaryComplete }
            let name = try await client.execute(uri: "/api/v1/incidents/\(id)", method: .get, headers: session.headers)
            { response in
                let view = try body(response)
                #expect(view["phase"]?.string == "summary")
                #expect(view["identification"]?.string == "individual-number-card")
                #expect(view["categories"]?["qualification"]?["status"]?.string == "arrived")
                return view["summary"]?["patient"]?["name"]?.string
            }
            #expect(name?.isEmpty == false)
            try await client.execute(
                uri: "/api/v1/incidents/\(id)/details/qualification",
                method: .get,
                headers: session.headers
            ) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains(name ?? "?"))
            }
            try await client.execute(
                uri: "/api/v1/incidents/\(id)/details/x-rays",
                method: .get,
                headers: session.headers
            ) {
                #expect($0.status == .notFound)
            }
            try await client.execute(
                uri: "/api/v1/incidents/\(id)/close",
                method: .post,
                headers: session.headers,
                body: ByteBuffer(string: "{}")
            ) { response in
                let view = try body(response)
                #expect(view["phase"]?.string == "closed")
                #expect(view["summary"] == nil)
                #expect(!String(buffer: response.body).contains(name ?? "?"))
            }
            // The event stream of a closed incident says so once and ends.
            try await client.execute(uri: "/api/v1/incidents/\(id)/events", method: .get, headers: session.headers) {
                response in
                #expect(response.headers[.contentType] == "text/event-stream")
                let text = String(buffer: response.body)
                #expect(text.hasPrefix("event: incident\n"))
                #expect(text.contains(#""phase":"closed""#))
            }
            #expect(try await harness.store.incidentIDs().isEmpty)
        }
    }

    @Test func dispatchPreCreatesWithItsTokenOnly() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            let payload = ByteBuffer(string: #"{"receivedAt":"2026-11-27T03:12:00Z","note":"試験 chest pain"}"#)
            try await client.execute(
                uri: "/api/v1/dispatch/incidents",
                method: .post,
                headers: [.contentType: "application/json", .authorization: "Bearer wrong"],
                body: payload
            ) { #expect($0.status == .unauthorized) }
            try await client.execute(
                uri: "/api/v1/dispatch/incidents",
                method: .post,
                headers: [.contentType: "application/json", .authorization: "Bearer dispatch-test-token"],
                body: payload
            ) { response in
                #expect(response.status == .created)
                #expect((try? body(response))?["source"]?.string == "dispatch")
            }
            let session = try await SignedIn.signIn(client)
            try await client.execute(uri: "/api/v1/incidents", method: .get, headers: session.headers) { response in
                guard case .array(let incidents) = try body(response)["incidents"] else {
                    Issue.record("no list")
                    return
                }
                #expect(incidents.count == 1)
                #expect(incidents.first?["dispatch"]?["note"]?.string == "試験 chest pain")
            }
        }
    }

    @Test func healthSaysWhatIsNotReady() async throws {
        let harness = try APIHarness()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/health/live", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((try? body(response))?["checks"]?["onshiPool"]?.string == "warming")
            }
            harness.readiness.vaultOpen(true)
            harness.readiness.restored(true)
            harness.readiness.onshiWarm(true)
            try await client.execute(uri: "/health/ready", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
            }
        }
    }
}

/// Waits for the first update of `runner` that satisfies `condition`.
func waitFor(
    _ runner: IncidentRunner,
    _ condition: @Sendable (IncidentSnapshot) -> Bool
) async -> IncidentSnapshot? {
    for await snapshot in await runner.updates() where condition(snapshot) { return snapshot }
    return nil
}
