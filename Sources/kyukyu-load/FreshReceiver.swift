import Foundation
import KyukyuLoad
import KyukyuTestbed
import Logging

/// The receiver a load run sets up and stops: one `kyukyu-hospital` on SQLite, or a region's hub (a private
/// PostgreSQL, N instances, HAProxy on the port) made with the product's own commands. Either way the device
/// certificates and the CA are in `<state>/devices`.
final class FreshReceiver: Sendable {
    private let stopping: @Sendable () -> Void
    /// A staff account (ID, password, TOTP secret), when one was asked for.
    let staff: (id: String, password: String, secret: String)?

    private init(staff: (id: String, password: String, secret: String)?, stop: @escaping @Sendable () -> Void) {
        self.staff = staff
        self.stopping = stop
    }

    /// Stops every process of the receiver.
    func stop() { stopping() }

    static func start(
        binDir: String,
        state: String,
        hospital: String,
        devices: [String],
        port: Int,
        hubInstances: Int?,
        staffID: String? = nil
    ) async throws -> FreshReceiver {
        guard let instances = hubInstances else {
            let password = "synthetic-load-password"
            var secret = ""
            let server = try await ReceiverIngestLoad.freshReceiver(
                binDir: binDir,
                state: state,
                hospital: hospital,
                devices: devices,
                port: port
            ) { executable in
                guard let staffID else { return }
                let added = try await Commands.run(
                    executable,
                    ["staff", "add", staffID, "--state-dir", state],
                    stdin: "\(password)\n2468\n"
                )
                guard added.status == 0,
                    let line = added.stdout.split(separator: "\n").first(where: { $0.hasPrefix("TOTP secret") }),
                    let value = line.split(separator: ":").last
                else { throw LoadError.setupFailed("kyukyu-hospital staff add: \(added.stderr)") }
                secret = value.trimmingCharacters(in: .whitespaces)
            }
            return FreshReceiver(staff: staffID.map { ($0, password, secret) }) { server.stop() }
        }
        setenv("KYUKYU_BIN_DIR", URL(fileURLWithPath: binDir).standardizedFileURL.path, 1)
        var logger = Logger(label: "kyukyu.load.hub")
        logger.logLevel = .warning
        let postgres = try await PostgresServer.start(
            directory: "/tmp/kyukyu-load-postgres-\(port)",
            port: port + instances + 1,
            logger: logger
        )
        do {
            let hub = try await RegionHub.start(
                directory: state,
                postgres: postgres,
                database: "load",
                hospitals: [RegionHub.Hospital(code: hospital, name: "負荷試験受入病院（架空）")],
                instances: instances,
                basePort: port,
                devices: devices,
                staff: staffID.map { [($0, hospital)] } ?? [],
                logLevel: "warning"
            )
            let account = staffID.flatMap { hub.staff[$0] }
            return FreshReceiver(staff: account.map { ($0.id, $0.password, $0.totpSecret) }) {
                hub.stop()
                postgres.stop()
            }
        } catch {
            postgres.stop()
            throw error
        }
    }
}
