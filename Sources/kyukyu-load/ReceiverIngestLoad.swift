import ArgumentParser
import Foundation
import KyukyuDomain
import KyukyuLoad
import KyukyuTestbed
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// `kyukyu-load receiver-ingest`: the hospital's receiver under many ambulances. Each connection is one ambulance
/// with its own device certificate (mutual TLS), posting pre-arrival documents built by the gateway's own builder
/// (`SyntheticHandoff`, synthetic patients) to POST /fhir/Bundle, each document once, at a constant rate overall.
struct ReceiverIngestLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receiver-ingest",
        abstract: "Post FHIR pre-arrival documents to a hospital receiver from N ambulances over mutual TLS.",
        discussion: """
            Either --bin-dir: a fresh kyukyu-hospital from that folder is set up in --state-dir (CA, one device \
            certificate per connection) and served on --port for the run, then stopped; or --url and --devices: a \
            running receiver, with the device certificates (<name>.cert.pem, <name>.key.pem, ca.cert.pem) of at \
            least --connections registered devices in that folder. The documents are built before each run, so the \
            plan's requests must fit in memory (--rate × --duration documents of about 20 KB).
            """
    )

    @Option(help: "Where kyukyu-hospital is, to run a fresh receiver for the test.")
    var binDir: String?

    @Option(help: "The fresh receiver's state folder (wiped first).")
    var stateDir = "state/load/receiver"

    @Option(help: "The fresh receiver's HTTPS port.")
    var port = 20971

    @Option(
        help: """
            With --bin-dir: a region's hub of this many instances (1-8) on a private PostgreSQL, behind HAProxy on \
            --port, instead of one receiver on SQLite.
            """
    )
    var hubInstances: Int?

    @Option(help: "A running receiver's base URL, e.g. https://127.0.0.1:9443.")
    var url: String?

    @Option(help: "With --url: the folder of the device certificates.")
    var devices: String?

    @Option(help: "The receiving hospital's 10-digit code (the documents are addressed to it).")
    var hospitalCode = "9999999902"

    @Flag(help: "Documents with the crew's observations only (no card read), instead of every medical category.")
    var observationsOnly = false

    @OptionGroup var options: PlanOptions

    func validate() throws {
        guard (binDir == nil) != (url == nil) else { throw ValidationError("give --bin-dir or --url, not both") }
        if url != nil, devices == nil { throw ValidationError("--url needs --devices") }
        if let url, URL(string: url)?.scheme != "https" { throw ValidationError("--url must be an https URL") }
        guard HospitalCode(rawValue: hospitalCode) != nil else {
            throw ValidationError("--hospital-code must be 10 digits")
        }
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1…65535") }
        if let hubInstances {
            guard binDir != nil else { throw ValidationError("--hub-instances needs --bin-dir") }
            guard (1...8).contains(hubInstances) else { throw ValidationError("--hub-instances must be 1…8") }
        }
        try options.check(measuredSaturation: false)
        if let highest = options.highestRate, highest * options.duration > 200_000 {
            throw ValidationError("at most 200,000 documents per run (--rate × --duration)")
        }
    }

    func run() async throws {
        let logger = Logger(label: "kyukyu.load.receiver")
        let hospital = HospitalCode(rawValue: hospitalCode)!
        var server: FreshReceiver?
        let base: URL
        let certificates: String
        let names: [String]
        if let binDir {
            let state = URL(fileURLWithPath: stateDir).standardizedFileURL.path
            names = (1...options.connections).map { String(format: "LOAD-AMB-%03d", $0) }
            certificates = state + "/devices"
            server = try await FreshReceiver.start(
                binDir: binDir,
                state: state,
                hospital: hospitalCode,
                devices: names,
                port: port,
                hubInstances: hubInstances
            )
            base = URL(string: "https://127.0.0.1:\(port)")!
        } else {
            base = URL(string: url!)!
            certificates = devices!
            names = try FileManager.default.contentsOfDirectory(atPath: certificates)
                .filter { $0.hasSuffix(".cert.pem") && $0 != "ca.cert.pem" }
                .map { String($0.dropLast(".cert.pem".count)) }
                .sorted()
            guard names.count >= options.connections else {
                throw ValidationError("\(certificates) has \(names.count) device certificates; --connections is more")
            }
        }
        defer { server?.stop() }
        let host = base.host ?? "127.0.0.1"
        let port = base.port ?? 443
        let tls = try names.prefix(options.connections).map { name in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificates + "/\(name).cert.pem")
                .map { .certificate($0) }
            configuration.privateKey = .privateKey(
                try NIOSSLPrivateKey(file: certificates + "/\(name).key.pem", format: .pem)
            )
            configuration.trustRoots = .file(certificates + "/ca.cert.pem")
            return try NIOSSLContext(configuration: configuration)
        }
        if server != nil { try await Self.waitForPort(host: host, port: port, within: .seconds(60)) }

        let connections = options.connections
        let records = !observationsOnly
        let authority = "\(host):\(port)"
        try await withEventLoopGroup(threads: options.threads) { group in
            try await LoadSession(options: options, name: "receiver-ingest").execute { plan, stop in
                // Every request its own document (a new version id), so that each is a real intake, not a replay.
                let requests = try (0..<plan.requests).map { index in
                    let document = try SyntheticHandoff.document(
                        device: names[index % connections],
                        index: index,
                        hospital: hospital,
                        hospitalName: "負荷試験受入病院（架空）",
                        records: records
                    )
                    return HTTPLoadTarget.requestBytes(
                        method: "POST",
                        path: "/fhir/Bundle",
                        host: authority,
                        headers: [
                            ("Content-Type", "application/fhir+json"),
                            ("Idempotency-Key", "urn:uuid:\(document.versionID.uuidString.lowercased())"),
                        ],
                        body: Array(document.body)
                    )
                }
                let target = HTTPLoadTarget(host: host, port: port, tls: tls) { index, _ in requests[index] }
                return try await HTTPOpenLoop.run(
                    plan,
                    against: target,
                    group: group,
                    stopSendingAfter: stop,
                    logger: logger
                )
            }
        }
    }

    /// A receiver of its own: `ca init`, a device certificate per ambulance, then `prepare` (e.g. a staff account,
    /// added before the server opens its databases), then `serve`.
    static func freshReceiver(
        binDir: String,
        state: String,
        hospital: String,
        devices: [String],
        port: Int,
        prepare: (_ executable: String) async throws -> Void = { _ in }
    ) async throws -> SpawnedProcess {
        let executable = binDir + "/kyukyu-hospital"
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw LoadError.setupFailed("\(executable) is not built")
        }
        try? FileManager.default.removeItem(atPath: state)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        func step(_ arguments: [String]) async throws {
            let result = try await Commands.run(executable, arguments)
            guard result.status == 0 else {
                throw LoadError.setupFailed(
                    "kyukyu-hospital \(arguments.prefix(2).joined(separator: " ")): \(result.stderr)"
                )
            }
        }
        try await step(["ca", "init", "--state-dir", state, "--hospital", hospital])
        for device in devices {
            try await step(["device", "issue", "--state-dir", state, "--device", device, "--out", state + "/devices"])
        }
        try await prepare(executable)
        return try Commands.spawn(
            executable,
            [
                "serve", "--state-directory", state, "--hospital-code", hospital, "--http-port", String(port),
                "--log-level", "warning",
            ],
            log: state + "/hospital.log"
        )
    }

    /// Waits until `host:port` accepts TCP connections.
    static func waitForPort(host: String, port: Int, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1))
                .connect(host: host, port: port).get()
            {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LoadError.setupFailed("nothing listens on \(host):\(port) after \(limit)")
    }
}
