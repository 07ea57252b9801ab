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

    @Option(
        help: """
            A region's hub of this many instances (1-8) on a private PostgreSQL, behind HAProxy on --port, instead of \
            one receiver on SQLite: the staff's acknowledgement and the ambulance's stream may then reach different \
            instances.
            """
    )
    var hubInstances: Int?

    @OptionGroup var options: PlanOptions

    static let hospital = HospitalCode(rawValue: "9999999903")!
    static let device = "LOAD-ACK-AMB"
    static let staffID = "LOAD-STAFF"

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1…65535") }
        if let hubInstances, !(1...8).contains(hubInstances) {
            throw ValidationError("--hub-instances must be 1…8")
        }
        try options.check(measuredSaturation: false)
        if let highest = options.highestRate, highest * options.duration > 20_000 {
            throw ValidationError("at most 20,000 acknowledgements per run (--rate × --duration)")
        }
    }

    func run() async throws {
        var logger = Logger(label: "kyukyu.load.receiver-ack")
        logger.logLevel = .warning
        let state = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        let server = try await FreshReceiver.start(
            binDir: binDir,
            state: state,
            hospital: Self.hospital.rawValue,
            devices: [Self.device],
            port: port,
            hubInstances: hubInstances,
            staffID: Self.staffID
        )
        guard let account = server.staff else { throw LoadError.setupFailed("no staff account was made") }
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
            try await staff.signIn(staffID: account.id, password: account.password, totp: totp(account.secret))
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
