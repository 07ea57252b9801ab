import ArgumentParser
import Foundation
import KyukyuLoad
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// `kyukyu-load`: open-loop load tests (issue 10). Requests go out at a constant rate whatever the answers do,
/// and latency counts from each request's due time, so that a stall shows instead of hiding (coordinated
/// omission). Figures also come from each request's send, as a closed-loop tool such as wrk reports them.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-load",
        abstract: "Open-loop load tests with latency corrected for coordinated omission.",
        subcommands: [
            HTTPLoad.self, ReceiverIngestLoad.self, ReceiverAckLoad.self, OnshiLoad.self, GatewayLoad.self,
            AcceptanceFeedLoad.self,
        ]
    )
}

/// `kyukyu-load http`: GET one URL at a constant rate (the target wrk can run too, for comparison).
struct HTTPLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "GET a URL at a constant rate over N connections; print and save the percentile spectra.",
        discussion: """
            With --sweep or --rates it runs one plan per rate and finds the knee (see docs/load-testing.md). \
            With --sweep and no --rate, it first measures the saturation rate: requests due as fast as they can \
            go, for --duration.
            """
    )

    @Option(help: "The URL to GET (http or https).")
    var url: String

    @Option(
        name: .customLong("header"),
        help: "A request header, 'Name: value' (repeatable; e.g. a session cookie)."
    )
    var headers: [String] = []

    @Option(name: .customLong("ca-file"), help: "PEM trust roots for https (default: the system's).")
    var caFile: String?

    @Option(name: .customLong("cert"), help: "A PEM client certificate for mutual TLS (with --key).")
    var certificate: String?

    @Option(help: "The PEM private key of --cert.")
    var key: String?

    @OptionGroup var options: PlanOptions

    func validate() throws {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil
        else {
            throw ValidationError("--url must be an http or https URL")
        }
        for header in headers where !header.contains(":") {
            throw ValidationError("--header must be 'Name: value'")
        }
        if (certificate == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
        try options.check(measuredSaturation: true)
    }

    func run() async throws {
        let target = try HTTPTargets.get(
            url: url,
            headers: headers,
            caFile: caFile,
            certificate: certificate,
            key: key
        )
        let logger = Logger(label: "kyukyu.load")
        try await withEventLoopGroup(threads: options.threads) { group in
            try await LoadSession(options: options, name: "http").execute { plan, stop in
                try await HTTPOpenLoop.run(plan, against: target, group: group, stopSendingAfter: stop, logger: logger)
            }
        }
    }
}

/// Builds the HTTP targets of the commands.
enum HTTPTargets {
    /// GET `url` with `headers`, over TLS for https.
    static func get(
        url: String,
        headers: [String],
        caFile: String?,
        certificate: String?,
        key: String?
    ) throws -> HTTPLoadTarget {
        guard let parsed = URL(string: url), let host = parsed.host else {
            throw ValidationError("--url must be an http or https URL")
        }
        let https = parsed.scheme == "https"
        let port = parsed.port ?? (https ? 443 : 80)
        var path = parsed.path.isEmpty ? "/" : parsed.path
        if let query = parsed.query { path += "?" + query }
        let headerPairs = headers.map { header -> (String, String) in
            let parts = header.split(separator: ":", maxSplits: 1)
            return (
                String(parts[0]).trimmingCharacters(in: .whitespaces),
                String(parts[1]).trimmingCharacters(in: .whitespaces)
            )
        }
        let request = HTTPLoadTarget.requestBytes(
            path: path,
            host: parsed.port == nil ? host : "\(host):\(port)",
            headers: headerPairs
        )
        var tls: [NIOSSLContext] = []
        if https {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caFile { configuration.trustRoots = .file(caFile) }
            if let certificate, let key {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
            tls = [try NIOSSLContext(configuration: configuration)]
        }
        return HTTPLoadTarget(host: host, port: port, tls: tls) { _, _ in request }
    }
}

/// Runs `body` with an event-loop group of `threads` threads, and shuts the group down after it.
func withEventLoopGroup(threads: Int, _ body: (MultiThreadedEventLoopGroup) async throws -> Void) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    do {
        try await body(group)
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
    try await group.shutdownGracefully()
}
