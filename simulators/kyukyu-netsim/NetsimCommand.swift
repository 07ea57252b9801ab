import ArgumentParser
import Foundation
import KyukyuNetworkSim
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `kyukyu-netsim`: the mobile network between one ambulance and the services it talks to, for drills. Each
/// `--link` is a TCP proxy on loopback under the same conditions (or a schedule's), changed at run time through
/// the control API.
@main
struct NetsimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-netsim",
        abstract: "A fault-injecting TCP proxy: latency, jitter, bandwidth, loss, dead zones and resets.",
        discussion: """
            Each --link NAME,PORT,HOST:PORT listens on 127.0.0.1:PORT and forwards to HOST:PORT. The control API on \
            127.0.0.1:--control-port: GET /links, GET and PUT /links/NAME/conditions (JSON: mode open|blackhole|reset, \
            latencyMilliseconds, jitterMilliseconds, bandwidthBytesPerSecond, lossRate, retransmitMilliseconds). \
            A --schedule file (JSON: {"base": conditions, "windows": [{"at": s, "seconds": s, "conditions": …}]}) \
            applies to every link until the control API sets a link's conditions. Prints one line per link and \
            the control port once listening.
            """
    )

    @Option(name: .customLong("link"), help: "NAME,PORT,HOST:PORT (repeatable).")
    var links: [String] = []

    @Option(help: "The control API's port on 127.0.0.1 (0 for any).")
    var controlPort = 0

    @Option(help: "One-way latency in ms.")
    var latencyMs = 0.0

    @Option(help: "One-way jitter in ms (±).")
    var jitterMs = 0.0

    @Option(help: "Bandwidth cap in bytes per second, each direction.")
    var bandwidth: Int?

    @Option(help: "Chance that a piece is lost once and retransmitted (0…1).")
    var loss = 0.0

    @Option(help: "open, blackhole or reset.")
    var mode = LinkConditions.Mode.open

    @Option(help: "A schedule file (JSON); its base replaces the condition flags.")
    var schedule: String?

    @Option(help: "Seed for the jitter and loss draws (repeatable drills); random without it.")
    var seed: UInt64?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard !links.isEmpty else { throw ValidationError("give at least one --link NAME,PORT,HOST:PORT") }
        for link in links where LinkSpec(argument: link, schedule: LinkSchedule()) == nil {
            throw ValidationError("--link \(link): expected NAME,PORT,HOST:PORT (name of a-z, 0-9, '-')")
        }
        if let problem = conditions.problem { throw ValidationError(problem) }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: trace, debug, info, notice, warning, error or critical")
        }
    }

    var conditions: LinkConditions {
        LinkConditions(
            mode: mode,
            latencyMilliseconds: latencyMs,
            jitterMilliseconds: jitterMs,
            bandwidthBytesPerSecond: bandwidth,
            lossRate: loss
        )
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "kyukyu.netsim")
        var plan = LinkSchedule(base: conditions)
        if let schedule {
            guard let data = FileManager.default.contents(atPath: schedule) else {
                throw ValidationError("cannot read the schedule \(schedule)")
            }
            do {
                plan = try JSONDecoder().decode(LinkSchedule.self, from: data)
            } catch {
                throw ValidationError("the schedule \(schedule) is not a LinkSchedule (JSON)")
            }
            if let problem = plan.problem { throw ValidationError("the schedule \(schedule): \(problem)") }
        }
        let specs = links.compactMap { LinkSpec(argument: $0, schedule: plan) }
        let random: @Sendable () -> Double
        if let seed {
            let generator = Mutex(SplitMix64(seed: seed))
            random = { generator.withLock { Double($0.next() >> 11) / Double(1 << 53) } }
        } else {
            random = { Double.random(in: 0..<1) }
        }
        let simulator = NetworkSimulator(
            links: specs,
            controlPort: controlPort,
            random: random,
            onRunning: { ports, control in
                var lines = ""
                for (name, port) in ports.sorted(by: { $0.key < $1.key }) { lines += "link \(name) \(port)\n" }
                lines += "control \(control)\n"
                FileHandle.standardOutput.write(Data(lines.utf8))
            },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: simulator)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

extension LinkConditions.Mode: ExpressibleByArgument {}

/// SplitMix64: a small, seedable generator for repeatable drills.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
