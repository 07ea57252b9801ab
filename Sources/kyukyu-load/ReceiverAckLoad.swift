import ArgumentParser
import Foundation
import KyukyuDomain
import KyukyuEligibility
import KyukyuGateway
import KyukyuLoad
import KyukyuReceiverProbe
import KyukyuTestbed
import KyukyuWorkflow
import Logging
import NIOPosix
import Synchronization

/// `kyukyu-load receiver-ack`: acknowledgement latency at the hospital's receiver. A staff member signed in with
/// password and TOTP acknowledges documents at a constant rate (the board's button, POST
/// /api/v1/patients/{set}/acknowledge); each request's latency runs from its due time until the `acknowledged` event
/// is on the sending ambulance's own event stream (GET /ambulance/v1/events over mutual TLS, listened to by the
/// gateway's own client). The documents are posted before each run, untimed.
struct ReceiverAckLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receiver-ack",
        abstract: "Acknowledge documents at a constant rate; time until the ambulance's event stream carries each.",
        discussion: """
            Sets up a fresh kyukyu-hospital from --bin-dir in --state-dir (CA, one device certificate, one staff \
            account) and serves it on --port for the run. Each connection is a concurrent acknowledgement at most \
            (the staff's browser tabs); every document comes from one ambulance, whose one stream carries every event.
            """
    )

    @Option(help: "Where kyukyu-hospital is.")
    var binDir: String

    @Option(help: "The fresh receiver's state folder (wiped first).")
    var stateDir = "state/load/receiver-ack"

    @Option(help: "The fresh receiver's HTTPS port.")
    var port = 20972

    @OptionGroup var options: PlanOptions

    static let hospital = HospitalCode(rawValue: "9999999903")!
    static let device = "LOAD-ACK-AMB"
    static let staffID = "LOAD-STAFF"

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1…65535") }
        try options.check(measuredSaturation: false)
        if let highest = options.highestRate, highest * options.duration > 20_000 {
            throw ValidationError("at most 20,000 acknowledgements per run (--rate × --duration)")
        }
    }

    func run() async throws {
        var logger = Logger(label: "kyukyu.load.receiver-ack")
        logger.logLevel = .warning
        let state = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        let password = "synthetic-load-password"
        var secret = ""
        let server = try await ReceiverIngestLoad.freshReceiver(
            binDir: binDir,
            state: state,
            hospital: Self.hospital.rawValue,
            devices: [Self.device],
            port: port
        ) { executable in
            let added = try await Commands.run(
                executable,
                ["staff", "add", Self.staffID, "--state-dir", state],
                stdin: "\(password)\n2468\n"
            )
            guard added.status == 0,
                let line = added.stdout.split(separator: "\n").first(where: { $0.hasPrefix("TOTP secret") }),
                let value = line.split(separator: ":").last
            else { throw LoadError.setupFailed("kyukyu-hospital staff add: \(added.stderr)") }
            secret = value.trimmingCharacters(in: .whitespaces)
        }
        defer { server.stop() }

        let base = "https://127.0.0.1:\(port)"
        let receiving = ReceivingHospital(code: Self.hospital, name: "負荷試験受入病院（架空）", url: base)
        let devices = state + "/devices"
        let ambulance = try HTTPReceiverClient(
            tls: ReceiverTLSFiles(
                certificatePath: devices + "/\(Self.device).cert.pem",
                keyPath: devices + "/\(Self.device).key.pem",
                trustRootsPath: devices + "/ca.cert.pem"
            ),
            logger: logger
        )
        let staff = try StaffClient(
            base: base,
            caPEM: try String(contentsOfFile: devices + "/ca.cert.pem", encoding: .utf8)
        )
        let watch = AcknowledgementWatch(client: ambulance, hospital: receiving)
        do {
            try await staff.waitUntilLive(timeout: .seconds(30))
            try await staff.signIn(staffID: Self.staffID, password: password, totp: totp(secret))
            await watch.start()
            var offset = 0
            try await LoadSession(options: options, name: "receiver-ack").execute { plan, _ in
                // The documents to acknowledge, posted and received first (untimed).
                var sets: [UUID] = []
                for index in 0..<plan.requests {
                    let document = try SyntheticHandoff.document(
                        device: Self.device,
                        index: offset + index,
                        hospital: Self.hospital,
                        hospitalName: receiving.name,
                        records: false
                    )
                    guard
                        await ambulance.post(document.body, versionID: document.versionID, to: receiving) == .delivered
                    else { throw LoadError.setupFailed("a document to acknowledge was not delivered") }
                    sets.append(document.documentSet)
                }
                for set in sets { try await watch.wait(for: .received, of: set) }
                offset += plan.requests
                return await OpenLoop.run(
                    plan,
                    against: AcknowledgeTarget(sets: sets, connections: plan.connections, staff: staff, watch: watch)
                )
            }
        } catch {
            await watch.stop()
            await staff.shutdown()
            await ambulance.shutdown()
            throw error
        }
        await watch.stop()
        await staff.shutdown()
        await ambulance.shutdown()
    }
}

/// One acknowledgement: the staff's request, then the event on the ambulance's stream. Connection `c` takes the
/// plan's requests `c, c + connections, …` in order, as ``OpenLoop`` sends them.
private final class AcknowledgeTarget: LoadTarget {
    let sets: [UUID]
    let connections: Int
    let staff: StaffClient
    let watch: AcknowledgementWatch
    private let next: Mutex<[Int]>

    init(sets: [UUID], connections: Int, staff: StaffClient, watch: AcknowledgementWatch) {
        self.sets = sets
        self.connections = connections
        self.staff = staff
        self.watch = watch
        self.next = Mutex(Array(0..<connections))
    }

    func send(connection: Int) async -> Bool {
        let index = next.withLock { next in
            defer { next[connection] += connections }
            return next[connection]
        }
        guard index < sets.count else { return false }
        do {
            try await staff.acknowledge(sets[index])
            try await watch.wait(for: .acknowledged, of: sets[index])
            return true
        } catch {
            return false
        }
    }
}
