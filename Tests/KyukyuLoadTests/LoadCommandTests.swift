import Foundation
import Hummingbird
import KyukyuTestbed
import Logging
import Testing

/// `kyukyu-load http` as a process against a real HTTP server on loopback.
@Suite("kyukyu-load http", .serialized, .timeLimit(.minutes(1)))
struct LoadCommandTests {
    @Test func itSendsThePlanAndWritesTheSpectraAndTheFigures() async throws {
        let router = Router()
        router.get("/") { _, _ in "ok" }
        try await withServer(router) { port in
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-load-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: out) }

            let run = try await Commands.run(
                try Commands.executable("kyukyu-load"),
                [
                    "http", "--url", "http://127.0.0.1:\(port)/", "--rate", "100", "--duration", "1", "--connections",
                    "2", "--out", out,
                ]
            )
            // 0, or 3 when some sends went out late on a busy machine: either way the plan ran and was measured.
            #expect([0, 3].contains(run.status), "\(run.stderr)")
            #expect(run.stdout.contains("100 requests due at 100/s over 2 connections; 100 sent"), "\(run.stdout)")
            let figures = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/result.json")))
                    as? [String: Any]
            )
            #expect(figures["sent"] as? Int == 100)
            #expect(figures["failed"] as? Int == 0)
            for name in ["corrected.hgrm", "uncorrected.hgrm"] {
                let spectrum = try String(contentsOfFile: out + "/" + name, encoding: .utf8)
                #expect(spectrum.contains("Percentile") && spectrum.contains("#[Max"), "\(name)")
            }

            // A bad plan is refused in words.
            let bad = try await Commands.run(
                try Commands.executable("kyukyu-load"),
                ["http", "--url", "http://127.0.0.1:\(port)/", "--rate", "0"]
            )
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("the rate must be above 0"))
        }
    }
}
