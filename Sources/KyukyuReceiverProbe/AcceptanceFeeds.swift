import AsyncHTTPClient
import Foundation
public import KyukyuDomain
import KyukyuGateway
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import Synchronization

/// Many ambulances' acceptance feeds (`GET /ambulance/v1/acceptance` over mutual TLS, each with its own device
/// certificate), for the time from a hospital's publication until every connected ambulance has it.
public final class AcceptanceFeeds: Sendable {
    private struct State {
        /// The newest revision each feed has of the watched hospital.
        var revisions: [Int64]
        var waiting: [(revision: Int64, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: Mutex<State>
    private let clients: [HTTPClient]
    private let url: String
    private let hospital: HospitalCode
    private let tasks = Mutex<[Task<Void, Never>]>([])

    /// Feeds for `devices` (`<device>.cert.pem`, `<device>.key.pem` and `ca.cert.pem` in `certificates`), watching
    /// `hospital`'s publications at `base`.
    public init(base: String, certificates: String, devices: [String], hospital: HospitalCode) throws {
        self.url = base + "/ambulance/v1/acceptance"
        self.hospital = hospital
        self.state = Mutex(State(revisions: Array(repeating: -1, count: devices.count)))
        self.clients = try devices.map { device in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificates + "/ca.cert.pem"))
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificates + "/\(device).cert.pem").map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: certificates + "/\(device).key.pem", format: .pem))
            return HTTPClient(
                eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                configuration: HTTPClient.Configuration(tlsConfiguration: tls)
            )
        }
    }

    /// Opens every feed.
    public func start() {
        let started = clients.enumerated().map { index, client in
            Task { await self.listen(index, client) }
        }
        tasks.withLock { $0 = started }
    }

    private func listen(_ index: Int, _ client: HTTPClient) async {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "text/event-stream")
        guard let response = try? await client.execute(request, timeout: .hours(1)), response.status == .ok else {
            return
        }
        var parser = ServerSentEventParser()
        do {
            for try await buffer in response.body {
                for message in parser.feed(Data(buffer: buffer)) where message.event == "acceptance" {
                    guard
                        let acceptance = try? JSONDecoder().decode(
                            HospitalAcceptance.self,
                            from: Data(message.data.utf8)
                        ),
                        acceptance.hospital == hospital
                    else { continue }
                    arrived(index, acceptance.revision)
                }
            }
        } catch {}
    }

    private func arrived(_ index: Int, _ revision: Int64) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.revisions[index] = max(state.revisions[index], revision)
            let floor = state.revisions.min() ?? -1
            let done = state.waiting.filter { $0.revision <= floor }.map(\.continuation)
            state.waiting.removeAll { $0.revision <= floor }
            return done
        }
        for continuation in ready { continuation.resume() }
    }

    /// Whether every feed has `revision` (or a newer one).
    public func allHave(_ revision: Int64) -> Bool { state.withLock { ($0.revisions.min() ?? -1) >= revision } }

    /// Waits (up to `limit`) until every feed has `revision`.
    public func waitForAll(_ revision: Int64, limit: Duration = .seconds(30)) async throws {
        let timeout = Task {
            try await Task.sleep(for: limit)
            self.expire(revision)
        }
        defer { timeout.cancel() }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if (state.revisions.min() ?? -1) >= revision { return true }
                state.waiting.append((revision, continuation))
                return false
            }
            if now { continuation.resume() }
        }
        guard allHave(revision) else { throw ReceiverProbeError.noPublication(revision, limit) }
    }

    private func expire(_ revision: Int64) {
        let expired = state.withLock { state in
            let found = state.waiting.filter { $0.revision == revision }.map(\.continuation)
            state.waiting.removeAll { $0.revision == revision }
            return found
        }
        for continuation in expired { continuation.resume() }
    }

    /// Closes every feed.
    public func shutdown() async {
        for task in tasks.withLock({ $0 }) { task.cancel() }
        for client in clients { try? await client.shutdown() }
    }
}
