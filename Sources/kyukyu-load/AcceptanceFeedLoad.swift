import ArgumentParser
import Foundation
import KyukyuDomain
import KyukyuLoad
import KyukyuReceiverProbe
import KyukyuTestbed
import Logging
import Synchronization

/// `kyukyu-load acceptance-feed`: the time from a hospital's staff changing its acceptance until every connected
/// ambulance's feed (`GET /ambulance/v1/acceptance`) carries it. A staff member publishes at a constant rate (the
/// board's `PUT /api/v1/acceptance`); each request's latency runs from its due time until the last of the
/// ambulances' feeds has the new revision.
struct AcceptanceFeedLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acceptance-feed",
        abstract: "Publish a hospital's acceptance at a constant rate; time until every ambulance's feed has each.",
        discussion: """
            Sets up a fresh receiver from --bin-dir in --state-dir: one kyukyu-hospital on SQLite, or with \\
            --hub-instances a region's hub (a private PostgreSQL, N instances, HAProxy on --port), with --ambulances \\
            device certificates and one staff account. The feeds connect through the balancer, so on a hub they are \\
            spread over the instances; every publication reaches the others through LISTEN/NOTIFY.
            """
    )

    @Option(help: "Where kyukyu-hospital is.")
    var binDir: String

    @Option(help: "The fresh receiver's state folder (wiped first).")
    var stateDir = "state/load/acceptance-feed"

    @Option(help: "The fresh receiver's (or the hub balancer's) HTTPS port.")
    var port = 20973

    @Option(help: "A region's hub of this many instances (1-8) instead of one receiver on SQLite.")
    var hubInstances: Int?

    @Option(help: "How many ambulances hold a feed open (1-500).")
    var ambulances = 50

    @OptionGroup var options: PlanOptions

    static let hospital = HospitalCode(rawValue: "9999999904")!
    static let staffID = "LOAD-STAFF"

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1…65535") }
        guard (1...500).contains(ambulances) else { throw ValidationError("--ambulances must be 1…500") }
        if let hubInstances, !(1...8).contains(hubInstances) {
            throw ValidationError("--hub-instances must be 1…8")
        }
        try options.check(measuredSaturation: false)
        if let highest = options.highestRate, highest * options.duration > 20_000 {
            throw ValidationError("at most 20,000 publications per run (--rate × --duration)")
        }
    }

    func run() async throws {
        let state = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        let devices = (1...ambulances).map { String(format: "LOAD-FEED-%03d", $0) }
        let server = try await FreshReceiver.start(
            binDir: binDir,
            state: state,
            hospital: Self.hospital.rawValue,
            devices: devices,
            port: port,
            hubInstances: hubInstances,
            staffID: Self.staffID
        )
        defer { server.stop() }
        guard let account = server.staff else { throw LoadError.setupFailed("no staff account was made") }
        let base = "https://127.0.0.1:\(port)"
        let staff = try StaffClient(
            base: base,
            caPEM: try String(contentsOfFile: state + "/devices/ca.cert.pem", encoding: .utf8)
        )
        let feeds = try AcceptanceFeeds(
            base: base,
            certificates: state + "/devices",
            devices: devices,
            hospital: Self.hospital
        )
        do {
            try await staff.waitUntilLive(timeout: .seconds(60))
            try await staff.signIn(staffID: account.id, password: account.password, totp: totp(account.secret))
            feeds.start()
            // Every feed open and current before the first timed publication (untimed).
            let first = try await staff.publishAcceptance([.stroke: true])
            try await feeds.waitForAll(first, limit: .seconds(60))
            try await LoadSession(options: options, name: "acceptance-feed").execute { plan, _ in
                await OpenLoop.run(plan, against: PublishTarget(staff: staff, feeds: feeds))
            }
        } catch {
            await feeds.shutdown()
            await staff.shutdown()
            throw error
        }
        await feeds.shutdown()
        await staff.shutdown()
    }
}

/// One publication (alternating a condition), then the wait until every feed has its revision.
private final class PublishTarget: LoadTarget {
    let staff: StaffClient
    let feeds: AcceptanceFeeds
    private let count = Mutex(0)

    init(staff: StaffClient, feeds: AcceptanceFeeds) {
        self.staff = staff
        self.feeds = feeds
    }

    func send(connection: Int) async -> Bool {
        let accepting = count.withLock { count in
            count += 1
            return count.isMultiple(of: 2)
        }
        do {
            let revision = try await staff.publishAcceptance([.dialysis: accepting])
            try await feeds.waitForAll(revision)
            return true
        } catch {
            return false
        }
    }
}
