import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuReceiver
import NIOCore
import Testing

/// docs/receiver-api.yaml and the router agree: every documented operation is served, and nothing else is listed.
@Suite("docs/receiver-api.yaml matches the router", .timeLimit(.minutes(1)))
struct RouteContractTests {
    /// (method, path) of every operation in the OpenAPI document, read from its `paths` section.
    static func documentedRoutes() throws -> [String] {
        let text = try String(
            contentsOfFile: ConfigurationTests.packageRoot + "/docs/receiver-api.yaml",
            encoding: .utf8
        )
        var routes: [String] = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" {
                inPaths = true
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "),
                let method = ["get", "post", "put", "delete", "patch"].first(where: { line == "    \($0):" })
            {
                routes.append("\(method.uppercased()) \(path)")
            }
        }
        return routes
    }

    @Test func theDocumentListsExactlyTheRoutes() throws {
        let documented = try Self.documentedRoutes()
        #expect(documented.count == ReceiverAPI.routes.count)
        #expect(Set(documented) == Set(ReceiverAPI.routes.map { "\($0.method) \($0.path)" }))
    }

    @Test func everyListedRouteIsServed() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try openStore(directory)
        let desk = HospitalDesk(
            hospitals: [hospitalCode],
            store: store,
            validator: StructuralHandoffValidator(),
            logger: quiet
        )
        let api = ReceiverAPI(desk: desk, staff: NoStaff(), identity: HeaderIdentity())
        let app = Application(router: api.router(), logger: quiet)
        try await app.test(.router) { client in
            for route in ReceiverAPI.routes {
                let uri = route.path.replacingOccurrences(of: "{set}", with: UUID().uuidString)
                let response = try await client.execute(uri: uri, method: HTTPRequest.Method(route.method)!)
                #expect(!String(buffer: response.body).contains("no such route"), "\(route.method) \(route.path)")
                #expect(response.status != .methodNotAllowed, "\(route.method) \(route.path)")
            }
            let unknown = try await client.execute(uri: "/api/v1/nothing", method: .get)
            #expect(String(buffer: unknown.body).contains("no such route"))
        }
    }
}

/// Staff sign-in that never succeeds.
struct NoStaff: StaffAuthenticating {
    func signIn(staffID: String, password: String, totp: String) async -> StaffSession? { nil }
    func session(token: String) async -> StaffSession? { nil }
    func endSession(token: String) async {}
}
