import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KyukyuReceiver
import NIOCore
import Testing

/// The ER board's page is served by the receiver's router: index.html at /board/ (and /board), every file it
/// references at /board/<file>, with a strict Content-Security-Policy, nothing from another origin, and 404 for
/// anything else.
@Suite("The board's files", .timeLimit(.minutes(1)))
struct BoardFilesTests {
    func withRouter(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let desk = HospitalDesk(
            hospitals: [hospitalCode],
            store: try openStore(directory),
            validator: StructuralHandoffValidator(),
            logger: quiet
        )
        let api = ReceiverAPI(desk: desk, staff: NoStaff(), identity: HeaderIdentity())
        try await Application(router: api.router(), logger: quiet).test(.router, body)
    }

    @Test func theBundleShipsThePage() throws {
        let files = try BoardFiles()
        for name in ["index.html", "board.js", "board.css", "i18n.js", "fhir.js"] {
            #expect(files.names.contains(name), "\(name)")
        }
        #expect(!files.names.contains("TESTIDS.md"), "documentation is not served")
    }

    @Test func theIndexAndEveryFileItReferencesAreServed() async throws {
        try await withRouter { client in
            for path in ["/board/", "/board"] {
                let index = try await client.execute(uri: path, method: .get)
                #expect(index.status == .ok, "\(path)")
                #expect(index.headers[.contentType] == "text/html; charset=utf-8")
                let csp = index.headers[.contentSecurityPolicy] ?? ""
                #expect(csp.contains("default-src 'self'") && !csp.contains("unsafe"), "\(csp)")
                #expect(index.headers[.xContentTypeOptions] == "nosniff")
            }
            let html = String(buffer: try await client.execute(uri: "/board/", method: .get).body)
            let referenced = Self.references(in: html)
            #expect(referenced.contains("/board/board.js") && referenced.contains("/board/board.css"))
            var scripts: [String] = []
            for path in referenced {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .ok, "\(path)")
                if path.hasSuffix(".js") {
                    #expect(response.headers[.contentType] == "text/javascript; charset=utf-8")
                    scripts.append(String(buffer: response.body))
                }
            }
            // The modules the page imports are served too, and nothing comes from elsewhere.
            for script in scripts {
                for module in Self.imports(in: script) {
                    let response = try await client.execute(uri: module, method: .get)
                    #expect(response.status == .ok, "\(module)")
                }
                for remote in ["from \"http", "import(\"http", "fetch(\"http", "EventSource(\"http"] {
                    #expect(!script.contains(remote), "no \(remote)")
                }
                #expect(!script.contains("innerHTML"), "texts go in with textContent")
            }
        }
    }

    @Test func anythingElseIsNotFound() async throws {
        try await withRouter { client in
            for path in ["/board/nothing.js", "/board/../Package.swift", "/board/TESTIDS.md"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .notFound, "\(path)")
                #expect(!String(buffer: response.body).contains("no such route"), "\(path)")
            }
        }
    }

    /// The `src` and `href` values of the page.
    static func references(in html: String) -> [String] {
        let pattern = try! Regex(#"(?:src|href)="([^"]+)""#)
        return html.matches(of: pattern).compactMap { $0.output[1].substring.map(String.init) }
    }

    /// The paths of a module's static imports.
    static func imports(in script: String) -> [String] {
        let pattern = try! Regex(#"from "(/board/[^"]+)""#)
        return script.matches(of: pattern).compactMap { $0.output[1].substring.map(String.init) }
    }
}
