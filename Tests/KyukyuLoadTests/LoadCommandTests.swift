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

/// The targets' arguments, refused in words before anything runs; a sweep and a receiver run as processes.
@Suite("kyukyu-load targets", .serialized, .timeLimit(.minutes(3)))
struct LoadTargetCommandTests {
    @Test(arguments: [
        (["http", "--url", "ftp://x/", "--rate", "10"], "--url must be an http or https URL"),
        (["http", "--url", "http://127.0.0.1:1/", "--sweep", "25,x"], "--sweep must be a comma-separated list"),
        (
            ["http", "--url", "http://127.0.0.1:1/", "--sweep", "50", "--rates", "1,2"],
            "--sweep and --rates cannot go together"
        ),
        (["http", "--url", "http://127.0.0.1:1/"], "--rate is needed"),
        (["http", "--url", "http://127.0.0.1:1/", "--rate", "5", "--slo", "0"], "the SLO must be above 0 ms"),
        (["http", "--url", "https://127.0.0.1:1/", "--rate", "5", "--cert", "c.pem"], "--cert and --key go together"),
        (["receiver-ingest", "--rate", "10"], "give --bin-dir or --url, not both"),
        (["receiver-ingest", "--url", "https://127.0.0.1:1", "--rate", "10"], "--url needs --devices"),
        (["receiver-ingest", "--bin-dir", "x", "--sweep", "50"], "this target cannot measure its saturation rate"),
        (["receiver-ingest", "--bin-dir", "x", "--rate", "100000"], "at most 200,000 documents per run"),
        (["receiver-ingest", "--bin-dir", "x", "--rate", "1", "--hospital-code", "12"], "must be 10 digits"),
        (["receiver-ack", "--bin-dir", "x", "--rate", "10000"], "at most 20,000 acknowledgements per run"),
        (["receiver-ack", "--bin-dir", "x", "--sweep", "50"], "this target cannot measure its saturation rate"),
        (["onshi", "--rate", "10"], "give --bin-dir or --url, not both"),
        (["onshi", "--bin-dir", "x", "--rate", "1", "--holder", "0"], "--holder must be 1…200"),
        (
            [
                "gateway", "--url", "https://x", "--crew-id", "A", "--password", "p", "--totp-secret", "AB", "--rate",
                "1",
            ],
            "--url must be an http URL"
        ),
        (
            [
                "gateway", "--url", "http://127.0.0.1:1", "--crew-id", "A", "--password", "p", "--totp-secret", "ab!",
                "--rate", "1",
            ],
            "--totp-secret must be base32"
        ),
    ])
    func badArgumentsAreRefusedInWords(arguments: [String], reason: String) async throws {
        let run = try await Commands.run(try Commands.executable("kyukyu-load"), arguments)
        #expect(run.status == 64, "\(run.stdout)")
        #expect(run.stderr.contains(reason), "\(run.stderr)")
    }

    @Test func aSweepWritesEachRateAndTheTableWithTheKnee() async throws {
        let router = Router()
        router.get("/") { _, _ in "ok" }
        try await withServer(router) { port in
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-sweep-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: out) }
            let run = try await Commands.run(
                try Commands.executable("kyukyu-load"),
                [
                    "http", "--url", "http://127.0.0.1:\(port)/", "--rates", "100,50", "--duration", "0.5",
                    "--connections", "2", "--slo", "10000", "--out", out,
                ]
            )
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("knee: 100 requests/s"), "\(run.stdout)")
            let sweep = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/sweep.json")))
                    as? [String: Any]
            )
            #expect((sweep["points"] as? [[String: Any]])?.map { $0["offered"] as? Double } == [50, 100])
            #expect(sweep["knee"] as? Double == 100)
            for rate in [50, 100] {
                #expect(FileManager.default.fileExists(atPath: out + "/rate-\(rate)/result.json"))
            }
        }
    }

    @Test func receiverIngestPostsDocumentsFromEachAmbulanceOverMutualTLS() async throws {
        let base = Int(ProcessInfo.processInfo.environment["KYUKYU_TEST_BASE_PORT"] ?? "") ?? 22500
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-ingest-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let run = try await Commands.run(
            try Commands.executable("kyukyu-load"),
            [
                "receiver-ingest", "--bin-dir", Commands.binDirectory(), "--state-dir", state, "--port",
                String(base + 71), "--rate", "20", "--duration", "1", "--connections", "2", "--out", state + "/out",
            ],
            timeout: .seconds(150)
        )
        // 0, or 3 when a send went out late on a busy machine; never a failed document.
        #expect([0, 3].contains(run.status), "\(run.stderr)")
        #expect(run.stdout.contains("20 requests due at 20/s over 2 connections; 20 sent"), "\(run.stdout)")
        #expect(run.stdout.contains(" 0 failed"), "\(run.stdout)")
    }

    @Test func receiverAckTimesEachAcknowledgementToTheAmbulancesStream() async throws {
        let base = Int(ProcessInfo.processInfo.environment["KYUKYU_TEST_BASE_PORT"] ?? "") ?? 22500
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-ack-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let run = try await Commands.run(
            try Commands.executable("kyukyu-load"),
            [
                "receiver-ack", "--bin-dir", Commands.binDirectory(), "--state-dir", state, "--port", String(base + 72),
                "--rate", "10", "--duration", "1", "--connections", "2",
            ],
            timeout: .seconds(150)
        )
        #expect([0, 3].contains(run.status), "\(run.stderr)")
        #expect(run.stdout.contains("10 requests due at 10/s over 2 connections; 10 sent"), "\(run.stdout)")
        #expect(run.stdout.contains(" 0 failed"), "\(run.stdout)")
    }

    @Test func onshiFetchesThroughTheGatewaysClientFromEachAmbulance() async throws {
        let base = Int(ProcessInfo.processInfo.environment["KYUKYU_TEST_BASE_PORT"] ?? "") ?? 22500
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-onshi-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let run = try await Commands.run(
            try Commands.executable("kyukyu-load"),
            [
                "onshi", "--bin-dir", Commands.binDirectory(), "--state-dir", state, "--port", String(base + 73),
                "--rate", "10", "--duration", "1", "--connections", "2",
            ],
            timeout: .seconds(150)
        )
        #expect([0, 3].contains(run.status), "\(run.stderr)")
        #expect(run.stdout.contains("10 requests due at 10/s over 2 connections; 10 sent"), "\(run.stdout)")
        #expect(run.stdout.contains(" 0 failed"), "\(run.stdout)")
    }
}
