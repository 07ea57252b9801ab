import ArgumentParser
import AsyncHTTPClient
import Foundation
import KyukyuLoad
import NIOCore
import NIOHTTP1

/// `kyukyu-load`: open-loop load tests (issue 10). Requests go out at a constant rate whatever the answers do,
/// and latency counts from each request's due time, so that a stall shows instead of hiding (coordinated
/// omission). Figures also come from each request's send, as a closed-loop tool such as wrk reports them.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-load",
        abstract: "Open-loop load tests with latency corrected for coordinated omission.",
        subcommands: [HTTPLoad.self]
    )
}

/// `kyukyu-load http`: GET one URL at a constant rate (the target wrk can run too, for comparison).
struct HTTPLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "GET a URL at a constant rate over N connections; print and save the percentile spectra."
    )

    @Option(help: "The URL to GET (http or https).")
    var url: String

    @Option(help: "Requests per second, over all connections.")
    var rate: Double

    @Option(help: "Seconds of load.")
    var duration: Double = 10

    @Option(help: "Connections, each sending one request at a time.")
    var connections = 8

    @Option(help: "A folder for corrected.hgrm, uncorrected.hgrm and result.json.")
    var out: String?

    func validate() throws {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? "") else {
            throw ValidationError("--url must be an http or https URL")
        }
        guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration must be 0…86400 seconds") }
        if let problem = plan.problem { throw ValidationError(problem) }
    }

    var plan: OpenLoopPlan {
        OpenLoopPlan(rate: rate, duration: .milliseconds(Int64(duration * 1000)), connections: connections)
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: connections
        )
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result = await OpenLoop.run(plan, against: GetTarget(http: http, url: url))
        try await http.shutdown()
        print(result.summary(plan: plan))
        if let out {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try Data(LoadResult.spectrum(result.corrected).utf8).write(
                to: URL(fileURLWithPath: out + "/corrected.hgrm")
            )
            try Data(LoadResult.spectrum(result.uncorrected).utf8).write(
                to: URL(fileURLWithPath: out + "/uncorrected.hgrm")
            )
            try result.json(plan: plan).write(to: URL(fileURLWithPath: out + "/result.json"))
            print("spectra and figures in \(out)")
        }
        if !result.clean { throw ExitCode(3) }
    }
}

/// One GET; a 2xx answer is a success.
struct GetTarget: LoadTarget {
    let http: HTTPClient
    let url: String

    func send(connection: Int) async -> Bool {
        guard let response = try? await http.execute(HTTPClientRequest(url: url), timeout: .seconds(60)) else {
            return false
        }
        guard (try? await response.body.collect(upTo: 16 << 20)) != nil else { return false }
        return (200..<300).contains(response.status.code)
    }
}
