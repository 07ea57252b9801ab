import Foundation
import KyukyuCardSim
import KyukyuNetworkSim
import KyukyuTestbed
import Logging
import NIOCore
import NIOHTTP1

/// Where the drill's executables are, and where its region lives.
public struct RegionLayout: Sendable {
    /// The folder of the built executables (kyukyu-gateway, kyukyu-hospital, the simulators).
    public var binDirectory: String
    /// The drill's own folder: every part's state and log.
    public var directory: String
    /// The first TCP port on 127.0.0.1: the stub at +0 and +1, hospital h at +10+h, ambulance a's block of 20 at
    /// +100+20a (vpcd +0 and +1, card control +2, gateway +3, network control +4, onshi link +5, hospital links
    /// +6+h).
    public var portBase: Int
    /// The gateways' and receivers' log level (their `--log-level`).
    public var partsLogLevel: String

    /// A layout.
    public init(binDirectory: String, directory: String, portBase: Int, partsLogLevel: String = "info") {
        self.binDirectory = binDirectory
        self.directory = directory
        self.portBase = portBase
        self.partsLogLevel = partsLogLevel
    }

    var onshiPort: Int { portBase }
    var stubAdminPort: Int { portBase + 1 }
    func receiverPort(_ hospital: Int) -> Int { portBase + 10 + hospital }
    func block(_ ambulance: Int) -> Int { portBase + 100 + 20 * ambulance }
    func vpcdPort(_ ambulance: Int) -> Int { block(ambulance) }
    func cardControlPort(_ ambulance: Int) -> Int { block(ambulance) + 2 }
    func gatewayPort(_ ambulance: Int) -> Int { block(ambulance) + 3 }
    func networkControlPort(_ ambulance: Int) -> Int { block(ambulance) + 4 }
    func onshiLinkPort(_ ambulance: Int) -> Int { block(ambulance) + 5 }
    func hospitalLinkPort(_ ambulance: Int, _ hospital: Int) -> Int { block(ambulance) + 6 + hospital }

    /// Hospital h's 10-digit code (fictitious).
    static func hospitalCode(_ hospital: Int) -> String { "13000010" + String(format: "%02d", hospital + 1) }
    /// Ambulance a's terminal ID.
    static func terminalID(_ ambulance: Int) -> String { "ambulance-" + String(format: "%02d", ambulance + 1) }
}

/// One ambulance: its processes and its crew's tablet.
final class Ambulance: @unchecked Sendable {  // Safe: `gateway` and `restarting` are touched under `lock` only.
    let index: Int
    let terminalID: String
    let directory: String
    let pcscd: PrivatePCSCD
    let cardSimulator: SpawnedProcess
    let network: SpawnedProcess
    let tablet: CrewTablet
    let crew: CrewAccount
    let cardControl: String
    let networkControl: String
    let linkNames: [String]
    private let lock = NSLock()
    private var gatewayProcess: SpawnedProcess
    private var restarting: Task<Void, any Error>?
    let startGateway: @Sendable () async throws -> SpawnedProcess

    init(
        index: Int,
        directory: String,
        pcscd: PrivatePCSCD,
        cardSimulator: SpawnedProcess,
        network: SpawnedProcess,
        gateway: SpawnedProcess,
        tablet: CrewTablet,
        crew: CrewAccount,
        layout: RegionLayout,
        linkNames: [String],
        startGateway: @escaping @Sendable () async throws -> SpawnedProcess
    ) {
        self.index = index
        self.terminalID = RegionLayout.terminalID(index)
        self.directory = directory
        self.pcscd = pcscd
        self.cardSimulator = cardSimulator
        self.network = network
        self.gatewayProcess = gateway
        self.tablet = tablet
        self.crew = crew
        self.cardControl = "http://127.0.0.1:\(layout.cardControlPort(index))"
        self.networkControl = "http://127.0.0.1:\(layout.networkControlPort(index))"
        self.linkNames = linkNames
        self.startGateway = startGateway
    }

    var gateway: SpawnedProcess { lock.withLock { gatewayProcess } }
    var gatewayState: String { directory + "/gateway" }

    /// Kills the gateway with SIGKILL (power lost), starts it again on the same state and signs the crew in again.
    func killAndRestartGateway() -> Task<Void, any Error> {
        let task = Task {
            self.gateway.stop(signal: SIGKILL)
            let process = try await self.startGateway()
            self.lock.withLock { self.gatewayProcess = process }
            // Sessions outlive a restart; sign in again only when this one did not.
            if await !self.tablet.hasSession() { try await self.tablet.signIn(crew: self.crew) }
        }
        lock.withLock { restarting = task }
        return task
    }

    /// Waits for a restart in progress, if any (a stream that broke because the gateway went away).
    func waitForRestart() async throws {
        let task = lock.withLock { restarting }
        try await task?.value
    }

    /// Sets one link's conditions through the network simulator's control API.
    func setLink(_ name: String, _ conditions: LinkConditions, http: DrillHTTP) async throws {
        let body = String(decoding: try JSONEncoder().encode(conditions), as: UTF8.self)
        let answer = try await http.send(.PUT, networkControl + "/links/\(name)/conditions", json: body)
        guard answer.status == 200 else { throw DrillError.step("the network control refused (HTTP \(answer.status))") }
    }
}

/// One hospital: its receiver process and a staff member signed in on its board.
final class Hospital: Sendable {
    let index: Int
    let code: String
    let directory: String
    let receiver: SpawnedProcess
    let desk: StaffDesk

    init(index: Int, directory: String, receiver: SpawnedProcess, desk: StaffDesk) {
        self.index = index
        self.code = RegionLayout.hospitalCode(index)
        self.directory = directory
        self.receiver = receiver
        self.desk = desk
    }
}

/// The region's processes: the eligibility stub, the hospitals' receivers and, per ambulance, a private pcscd with
/// a vpcd reader, the card simulator, the network simulator and the gateway. Everything is a real process.
final class Region: Sendable {
    let layout: RegionLayout
    let scenario: DrillScenario
    let http: DrillHTTP
    let stub: SpawnedProcess
    let hospitals: [Hospital]
    let ambulances: [Ambulance]
    let logger: Logger

    var stubAdmin: String { "http://127.0.0.1:\(layout.stubAdminPort)" }
    var regionalCA: String { layout.directory + "/region-pki/ca.cert.pem" }

    private init(
        layout: RegionLayout,
        scenario: DrillScenario,
        http: DrillHTTP,
        stub: SpawnedProcess,
        hospitals: [Hospital],
        ambulances: [Ambulance],
        logger: Logger
    ) {
        self.layout = layout
        self.scenario = scenario
        self.http = http
        self.stub = stub
        self.hospitals = hospitals
        self.ambulances = ambulances
        self.logger = logger
    }

    /// Sets up and starts the whole region; on a failure, stops what was started.
    static func start(
        layout: RegionLayout,
        scenario: DrillScenario,
        plans: [IncidentPlan],
        logger: Logger
    ) async throws -> Region {
        let setup = RegionSetup(layout: layout, scenario: scenario, logger: logger)
        return try await setup.start(plans: plans)
    }

    /// Stops every part: the gateways first (SIGTERM: their outboxes are durable), then the rest.
    func stop() async {
        for ambulance in ambulances {
            ambulance.gateway.stop()
        }
        for ambulance in ambulances {
            ambulance.network.stop()
            ambulance.cardSimulator.stop()
            await ambulance.pcscd.stop()
        }
        for hospital in hospitals { hospital.receiver.stop() }
        stub.stop()
    }

    fileprivate static func make(
        layout: RegionLayout,
        scenario: DrillScenario,
        http: DrillHTTP,
        stub: SpawnedProcess,
        hospitals: [Hospital],
        ambulances: [Ambulance],
        logger: Logger
    ) -> Region {
        Region(
            layout: layout,
            scenario: scenario,
            http: http,
            stub: stub,
            hospitals: hospitals,
            ambulances: ambulances,
            logger: logger
        )
    }
}

/// The region's one-time setup: certificates, accounts, configuration files, then the processes in order.
private struct RegionSetup {
    let layout: RegionLayout
    let scenario: DrillScenario
    let logger: Logger

    var dir: String { layout.directory }
    func bin(_ name: String) -> String { layout.binDirectory + "/" + name }
    var logs: String { dir + "/logs" }

    /// The environment of every child: this process's, without any KYUKYU_GATEWAY_ or KYUKYU_HOSPITAL_ variable
    /// (the gateway and receiver would take them as configuration).
    var childEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("KYUKYU_GATEWAY_") && !$0.key.hasPrefix("KYUKYU_HOSPITAL_")
                && $0.key != "PCSCLITE_CSOCK_NAME"
        }
    }

    func run(_ name: String, _ arguments: [String], stdin: String? = nil) async throws -> String {
        let result = try await Commands.run(
            bin(name),
            arguments,
            stdin: stdin,
            environment: [:],
            timeout: .seconds(120)
        )
        guard result.status == 0 else {
            throw DrillError.startUp(
                "\(name) \(arguments.first ?? "") failed (status \(result.status)): \(result.stderr.suffix(400))"
            )
        }
        return result.stdout
    }

    func spawn(_ name: String, _ arguments: [String], log: String, extra: [String: String] = [:]) throws
        -> SpawnedProcess
    {
        try Commands.spawn(
            bin(name),
            arguments,
            log: logs + "/" + log,
            environment: childEnvironment.merging(extra) { $1 }
        )
    }

    /// Makes an account with a random password and PIN from `command add ID` and its printed TOTP secret.
    func account(_ name: String, _ arguments: [String], id: String) async throws -> CrewAccount {
        let password = Self.randomString(16, from: "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        let pin = Self.randomString(4, from: "0123456789")
        let output = try await run(name, arguments, stdin: password + "\n" + pin + "\n")
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("TOTP secret") }),
            let secret = line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces), !secret.isEmpty
        else { throw DrillError.startUp("\(name) printed no 'TOTP secret: …' line") }
        return CrewAccount(id: id, password: password, totpSecret: secret)
    }

    static func randomString(_ count: Int, from alphabet: String) -> String {
        let characters = Array(alphabet)
        return String((0..<count).map { _ in characters.randomElement()! })
    }

    func start(plans: [IncidentPlan]) async throws -> Region {
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        try fm.createDirectory(atPath: logs, withIntermediateDirectories: true)
        for name in ["kyukyu-gateway", "kyukyu-hospital", "kyukyu-card-sim", "kyukyu-eligibility-sim", "kyukyu-netsim"]
        where !fm.isExecutableFile(atPath: bin(name)) {
            throw DrillError.startUp("\(bin(name)) is not built (swift build)")
        }
        let busy = PrivatePCSCD.listeningTCPPorts()
        let wanted =
            [layout.onshiPort, layout.stubAdminPort] + (0..<scenario.hospitals).map(layout.receiverPort)
            + (0..<scenario.ambulances).flatMap { a in (0..<(6 + scenario.hospitals)).map { layout.block(a) + $0 } }
        let taken = Set(wanted).intersection(busy)
        guard taken.isEmpty else {
            throw DrillError.startUp("ports \(taken.sorted().prefix(5)) are in use; choose another --port-base")
        }

        // The card PKI: every holder's credentials made now, not in the middle of an incident.
        let pki = try TestPKI.loadOrCreate(directory: dir + "/sim-pki", logger: logger)
        var made = Set<String>()
        for plan in plans where plan.credential != .none {
            let validity: CertificateValidity = plan.certificate == .expired ? .expired : .valid
            guard made.insert("\(plan.holder)-\(validity.rawValue)").inserted else { continue }
            _ = try pki.holder(plan.holder, validity: validity)
        }

        // The stub, with the revocation list.
        let stub = try spawn(
            "kyukyu-eligibility-sim",
            [
                "serve", "--host", "127.0.0.1", "--port", "\(layout.onshiPort)", "--admin-port",
                "\(layout.stubAdminPort)", "--pki-dir", dir + "/sim-pki", "--tls-dir", dir + "/eligibility-tls",
                "--seed", "\(scenario.seed)",
            ],
            log: "eligibility-sim.log"
        )
        let http = DrillHTTP(regionalCA: dir + "/region-pki/ca.cert.pem")
        var started: [SpawnedProcess] = [stub]
        var pcscds: [PrivatePCSCD] = []
        do {
            try await http.waitUntilUp("http://127.0.0.1:\(layout.stubAdminPort)/admin/health", seconds: 120) {
                stub.isRunning
            }
            let revocations =
                ShiftPlan.revokedHolders.map { #"{"holder": \#($0), "reason": "revoked"}"# }
                + ShiftPlan.suspendedHolders.map { #"{"holder": \#($0), "reason": "suspended"}"# }
            let revoked = try await http.send(
                .PUT,
                "http://127.0.0.1:\(layout.stubAdminPort)/admin/revocations",
                json: #"{"entries": [\#(revocations.joined(separator: ", "))]}"#
            )
            guard revoked.status == 200 else { throw DrillError.startUp("the stub refused the revocation list") }

            // The hospitals: one regional CA (the gateways trust one CA for every receiver).
            let regionPKI = dir + "/region-pki"
            _ = try await run(
                "kyukyu-hospital",
                [
                    "ca", "init", "--state-dir", dir + "/hospitals/h1", "--tls-dir", regionPKI, "--hospital",
                    RegionLayout.hospitalCode(0),
                ]
            )
            var staff: [CrewAccount] = []
            for h in 0..<scenario.hospitals {
                let state = dir + "/hospitals/h\(h + 1)"
                try fm.createDirectory(atPath: state, withIntermediateDirectories: true)
                for a in 0..<scenario.ambulances {
                    _ = try await run(
                        "kyukyu-hospital",
                        [
                            "device", "issue", "--state-dir", state, "--tls-dir", regionPKI, "--device",
                            RegionLayout.terminalID(a), "--out", dir + "/ambulances/a\(a + 1)/hospital-tls",
                        ]
                    )
                }
                let id = "DRILL-ER\(h + 1)"
                staff.append(try await account("kyukyu-hospital", ["staff", "add", id, "--state-dir", state], id: id))
            }
            var hospitals: [Hospital] = []
            for h in 0..<scenario.hospitals {
                let state = dir + "/hospitals/h\(h + 1)"
                let receiver = try spawn(
                    "kyukyu-hospital",
                    [
                        "serve", "--state-directory", state, "--tls-directory", regionPKI, "--http-host", "127.0.0.1",
                        "--http-port", "\(layout.receiverPort(h))", "--hospital-code", RegionLayout.hospitalCode(h),
                    ],
                    log: "receiver-h\(h + 1).log"
                )
                started.append(receiver)
                let base = "https://127.0.0.1:\(layout.receiverPort(h))"
                try await http.waitUntilUp(base + "/health/live", seconds: 120) { receiver.isRunning }
                let desk = StaffDesk(http: http, base: base)
                try await desk.signIn(staff: staff[h])
                hospitals.append(Hospital(index: h, directory: state, receiver: receiver, desk: desk))
            }

            // The ambulances.
            var ambulances: [Ambulance] = []
            let link = scenario.network.link
            for a in 0..<scenario.ambulances {
                let home = dir + "/ambulances/a\(a + 1)"
                let terminal = RegionLayout.terminalID(a)
                _ = try await run(
                    "kyukyu-eligibility-sim",
                    [
                        "issue-terminal-cert", "--device", terminal, "--out", home + "/terminal-tls", "--tls-dir",
                        dir + "/eligibility-tls",
                    ]
                )
                let pcscd = try await PrivatePCSCD(
                    basePort: layout.vpcdPort(a),
                    readerPairs: 1,
                    directory: home + "/pcscd",
                    friendlyName: "Drill Reader \(a + 1)",
                    exportEnvironment: false,
                    logger: logger
                )
                pcscds.append(pcscd)
                let card = try spawn(
                    "kyukyu-card-sim",
                    [
                        "--port", "\(layout.vpcdPort(a))", "--control-port", "\(layout.cardControlPort(a))",
                        "--profile", "card", "--holder", "1", "--apdu-latency-ms", "20", "--data-dir",
                        dir + "/sim-pki",
                    ],
                    log: "card-sim-a\(a + 1).log"
                )
                started.append(card)
                let cardControl = "http://127.0.0.1:\(layout.cardControlPort(a))"
                try await http.waitUntilUp(cardControl + "/card", seconds: 60) { card.isRunning }
                // No card on the reader until a patient's is touched.
                _ = try await http.send(.DELETE, cardControl + "/card")

                var linkArguments = ["--link", "onshi,\(layout.onshiLinkPort(a)),127.0.0.1:\(layout.onshiPort)"]
                var linkNames = ["onshi"]
                for h in 0..<scenario.hospitals {
                    linkArguments += [
                        "--link", "h\(h + 1),\(layout.hospitalLinkPort(a, h)),127.0.0.1:\(layout.receiverPort(h))",
                    ]
                    linkNames.append("h\(h + 1)")
                }
                var conditionArguments = [
                    "--latency-ms", "\(link.latencyMilliseconds)", "--jitter-ms", "\(link.jitterMilliseconds)",
                    "--loss", "\(link.lossRate)", "--seed", "\(scenario.seed &+ UInt64(a))",
                ]
                if let bandwidth = link.bandwidthBytesPerSecond {
                    conditionArguments += ["--bandwidth", "\(bandwidth)"]
                }
                let network = try spawn(
                    "kyukyu-netsim",
                    linkArguments + conditionArguments + ["--control-port", "\(layout.networkControlPort(a))"],
                    log: "netsim-a\(a + 1).log"
                )
                started.append(network)
                try await http.waitUntilUp("http://127.0.0.1:\(layout.networkControlPort(a))/health", seconds: 60) {
                    network.isRunning
                }

                // The gateway reaches each hospital through this ambulance's network simulator.
                let hospitalsJSON = (0..<scenario.hospitals).map { h in
                    #"{"code": "\#(RegionLayout.hospitalCode(h))", "name": "ドリル病院 \#(h + 1) (架空)", "#
                        + #""nameKana": "ドリルビョウイン", "url": "https://127.0.0.1:\#(layout.hospitalLinkPort(a, h))"}"#
                }
                try ("[" + hospitalsJSON.joined(separator: ",\n") + "]\n").write(
                    toFile: home + "/hospitals.json",
                    atomically: true,
                    encoding: .utf8
                )
                let crewID = "DRILL-A\(a + 1)"
                let crew = try await account(
                    "kyukyu-gateway",
                    ["crew", "add", crewID, "--state-directory", home + "/gateway"],
                    id: crewID
                )
                let gatewayArguments = [
                    "serve", "--state-directory", home + "/gateway", "--http-host", "127.0.0.1", "--http-port",
                    "\(layout.gatewayPort(a))", "--onshi-url", "https://127.0.0.1:\(layout.onshiLinkPort(a))",
                    "--onshi-tls-directory", home + "/terminal-tls", "--handoff-hospitals", home + "/hospitals.json",
                    "--handoff-tls-directory", home + "/hospital-tls", "--terminal-id", terminal, "--log-level",
                    layout.partsLogLevel,
                ]
                let socket = pcscd.socketPath
                let gatewayBase = "http://127.0.0.1:\(layout.gatewayPort(a))"
                let setup = self
                let startGateway: @Sendable () async throws -> SpawnedProcess = {
                    let process = try setup.spawn(
                        "kyukyu-gateway",
                        gatewayArguments,
                        log: "gateway-a\(a + 1).log",
                        extra: ["PCSCLITE_CSOCK_NAME": socket]
                    )
                    try await http.waitUntilUp(gatewayBase + "/health/ready", seconds: 120) { process.isRunning }
                    return process
                }
                let gateway = try await startGateway()
                started.append(gateway)
                let tablet = CrewTablet(http: http, base: gatewayBase)
                try await tablet.signIn(crew: crew)
                ambulances.append(
                    Ambulance(
                        index: a,
                        directory: home,
                        pcscd: pcscd,
                        cardSimulator: card,
                        network: network,
                        gateway: gateway,
                        tablet: tablet,
                        crew: crew,
                        layout: layout,
                        linkNames: linkNames,
                        startGateway: startGateway
                    )
                )
                logger.info("ambulance ready", metadata: ["kyukyu.drill.terminal": "\(terminal)"])
            }
            return Region.make(
                layout: layout,
                scenario: scenario,
                http: http,
                stub: stub,
                hospitals: hospitals,
                ambulances: ambulances,
                logger: logger
            )
        } catch {
            for process in started.reversed() { process.stop() }
            for pcscd in pcscds { await pcscd.stop() }
            await http.shutdown()
            throw error
        }
    }
}
