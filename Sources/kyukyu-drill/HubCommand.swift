import ArgumentParser
import Foundation
import KyukyuTestbed
import Logging

/// `kyukyu-drill hub`: a region's hub to work with, until SIGINT or SIGTERM: a private PostgreSQL, N
/// `kyukyu-hospital serve` instances on it, HAProxy in front, synthetic hospitals with a staff account each, and
/// device certificates for the ambulances. Writes `<dir>/region.json` (URLs, CA, hospitals, staff sign-ins,
/// devices) for `scripts/stack.sh` (`KYUKYU_STACK_HUB`) and `make run-region`.
struct HubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub",
        abstract: "Run a region's hub (PostgreSQL, N instances, HAProxy) until SIGINT or SIGTERM.",
        discussion: """
            Made fresh at every start (the folder is emptied). Needs Debian's postgresql and haproxy (make deps), and \
            the built executables (KYUKYU_BIN_DIR, or .build/debug). The hospitals are fictitious: 99999999NN, \
            テスト地域第N病院 (架空); the staff accounts NURSE-N.
            """
    )

    @Option(help: "The hub's folder (emptied at start): state, configuration, certificates, logs, region.json.")
    var dir = "state/region/hub"

    @Option(help: "The balancer's port on 127.0.0.1; the instances take the next ones, PostgreSQL the one after.")
    var port = 20650

    @Option(help: "How many instances (1-8).")
    var instances = 3

    @Option(help: "How many hospitals (1-9).")
    var hospitals = 3

    @Option(help: "A device (ambulance terminal) to issue a certificate to; repeatable.")
    var device: [String] = ["ambulance-01", "ambulance-02"]

    func validate() throws {
        guard (1...8).contains(instances) else { throw ValidationError("--instances must be 1…8") }
        guard (1...9).contains(hospitals) else { throw ValidationError("--hospitals must be 1…9") }
        guard (1024...60_000).contains(port) else { throw ValidationError("--port must be 1024…60000") }
    }

    func run() async throws {
        var logger = Logger(label: "kyukyu.hub")
        logger.logLevel = .warning
        let directory = URL(fileURLWithPath: dir).standardizedFileURL.path
        let postgres = try await PostgresServer.start(
            // Under root the server runs as the postgres user, who must reach its folder: /tmp, not the checkout.
            directory: "/tmp/kyukyu-region-postgres-\(port)",
            port: port + instances + 1,
            logger: logger
        )
        let list = (1...hospitals).map {
            RegionHub.Hospital(code: "999999999\($0)", name: "テスト地域第\($0)病院 (架空)")
        }
        let hub = try await RegionHub.start(
            directory: directory,
            postgres: postgres,
            database: "region",
            hospitals: list,
            instances: instances,
            basePort: port,
            devices: device,
            staff: list.enumerated().map { ("NURSE-\($0.offset + 1)", $0.element.code) }
        )
        let summary: [String: Any] = [
            "url": hub.url,
            "instances": hub.instancePorts.map { "https://127.0.0.1:\($0)" },
            "ca": hub.caPath,
            "configuration": hub.configurationPath,
            "hospitals": list.map { ["code": $0.code, "name": $0.name] },
            "staff": hub.staff.values.sorted { $0.id < $1.id }.map {
                ["id": $0.id, "hospital": $0.hospital, "password": $0.password, "totpSecret": $0.totpSecret]
            },
            "devices": Dictionary(uniqueKeysWithValues: device.map { ($0, hub.deviceDirectory($0)) }),
        ]
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
        FileManager.default.createFile(
            atPath: directory + "/region.json",
            contents: data,
            attributes: [.posixPermissions: 0o600]
        )
        print("region hub at \(hub.url) (\(instances) instances); \(directory)/region.json")
        // Until SIGINT or SIGTERM.
        let (stopped, stop) = AsyncStream.makeStream(of: Void.self)
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { stop.yield() }
            source.resume()
            return source
        }
        for await _ in stopped { break }
        sources.forEach { $0.cancel() }
        hub.stop()
        postgres.stop()
        print("region hub stopped")
    }
}
