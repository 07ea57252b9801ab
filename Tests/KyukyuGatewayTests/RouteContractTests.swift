import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuGateway
import Testing

/// The routes of the gateway and of its OpenAPI document (docs/gateway-api.yaml) agree: every route the router
/// registers is documented, every documented operation is registered and answers, and what is not documented is a
/// 404 `not-found` problem.
@Suite("Routes and the OpenAPI document agree", .timeLimit(.minutes(1)))
struct RouteContractTests {
    /// The package's root (this file is Tests/KyukyuGatewayTests/RouteContractTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    /// "METHOD /path" for every operation of the document: a scan of its `paths:` block (two-space indented
    /// paths, four-space indented methods), enough for this document's plain block style.
    static func documentedRoutes() throws -> Set<String> {
        let text = try String(contentsOf: root.appending(path: "docs/gateway-api.yaml"), encoding: .utf8)
        var routes: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty && !line.hasPrefix("#") {
                inPaths = line == "paths:"
                path = nil
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && !line.hasPrefix("   ") && line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    ") && !line.hasPrefix("     "), let path {
                let key = line.dropFirst(4).prefix { $0 != ":" }
                if methods.contains(String(key)) { routes.insert("\(key.uppercased()) \(path)") }
            }
        }
        return routes
    }

    /// A concrete URI for a documented path.
    static func uri(_ path: String) -> String {
        path.replacingOccurrences(of: "{id}", with: UUID().uuidString.lowercased())
            .replacingOccurrences(of: "{category}", with: "medications")
            .replacingOccurrences(of: "{file}", with: "app.css")
            .replacingOccurrences(of: "{index}", with: "0")
    }

    @Test func theScanReadsTheDocumentAsCheckSpecDoes() throws {
        // check_spec.py keeps routes.txt equal to the document; the scan must see the same operations.
        let listed = try String(
            contentsOf: Self.root.appending(path: "Tests/api-contract/routes.txt"),
            encoding: .utf8
        )
        let fromFile = Set(listed.split(separator: "\n").map(String.init))
        let scanned = try Self.documentedRoutes()
        #expect(scanned.count > 10)
        #expect(scanned == fromFile)
    }

    @Test func everyRouteOfTheGatewayIsDocumentedAndEveryDocumentedRouteIsServed() throws {
        let harness = try APIHarness()
        let served = harness.api.routes.map { "\($0.method) \($0.path)" }
        #expect(served.count == Set(served).count, "a route is registered twice")
        let documented = try Self.documentedRoutes()
        let undocumented = Set(served).subtracting(documented).sorted()
        let missing = documented.subtracting(served).sorted()
        #expect(undocumented.isEmpty, "served but not in docs/gateway-api.yaml: \(undocumented)")
        #expect(missing.isEmpty, "in docs/gateway-api.yaml but not served: \(missing)")
    }

    @Test func theLiveRouterAnswersEveryDocumentedRouteAndNothingElse() async throws {
        let harness = try APIHarness()
        let documented = try Self.documentedRoutes()
        try await harness.application().test(.router) { client in
            // Documented: the router has the route (whatever the answer: 401 without a session, 200 for a file),
            // never the router's own 404.
            for route in documented.sorted() {
                let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
                let method = HTTPRequest.Method(parts[0])!
                try await client.execute(uri: Self.uri(parts[1]), method: method) { response in
                    let missing = try Self.isNoSuchRoute(response)
                    #expect(!missing, "\(route) is documented but the router has no such route")
                }
            }
            // Not documented: another method on a documented path, and paths next to the documented ones.
            let paths = Set(documented.map { String($0.split(separator: " ", maxSplits: 1)[1]) })
            for path in paths.sorted() {
                for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] where !documented.contains("\(method) \(path)")
                {
                    try await client.execute(uri: Self.uri(path), method: HTTPRequest.Method(method)!) { response in
                        let missing = try Self.isNoSuchRoute(response)
                        #expect(missing, "\(method) \(path) is not documented but answers")
                    }
                }
            }
            let id = UUID().uuidString.lowercased()
            for uri in [
                "/api", "/api/v1", "/api/v2/incidents", "/api/v1/incident", "/api/v1/sessions", "/api/v1/session/x",
                "/api/v1/incidents/\(id)/summary", "/api/v1/incidents/\(id)/details",
                "/api/v1/incidents/\(id)/details/medications/1", "/api/v1/dispatch", "/health", "/health/live/x",
                "/index.html", "/ui",
            ] {
                try await client.execute(uri: uri, method: .get) { response in
                    let missing = try Self.isNoSuchRoute(response)
                    #expect(missing, "GET \(uri) is not documented but answers")
                }
            }
        }
    }

    /// Whether the response is the router's own 404 (no route for this method and path), as a problem.
    static func isNoSuchRoute(_ response: TestResponse) throws -> Bool {
        guard response.status == .notFound else { return false }
        #expect(response.headers[.contentType] == "application/problem+json")
        let problem = try body(response)
        #expect(problem["type"]?.string == "https://kyukyu.invalid/problems/not-found")
        return problem["detail"]?.string == "no such route"
    }
}
