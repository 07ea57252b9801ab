import Foundation
import KyukyuCard
import KyukyuEligibility
import KyukyuVault
import KyukyuWorkflow
import Logging
import ServiceLifecycle
import Synchronization

/// What `/health/ready` reports: the server answers (by answering), the vault is open and the onshi pool is warm.
public final class Readiness: Sendable {
    private let state = Mutex<(vault: Bool, onshi: Bool, restored: Bool)>((false, false, false))

    /// Nothing ready yet.
    public init() {}

    /// The vault is open (and its incidents restored).
    public func vaultOpen(_ open: Bool) { state.withLock { $0.vault = open } }
    /// The onshi connections are warm.
    public func onshiWarm(_ warm: Bool) { state.withLock { $0.onshi = warm } }
    /// The incidents are back from the vault.
    public func restored(_ done: Bool) { state.withLock { $0.restored = done } }

    /// Each check's state.
    public var checks: (vault: Bool, onshi: Bool, restored: Bool) { state.withLock { $0 } }
    /// Whether every check passes.
    public var isReady: Bool { state.withLock { $0.vault && $0.onshi && $0.restored } }
}

/// The vault and its purge loop, as a service: its incidents are restored into the desk first, then expired
/// incidents are purged every minute until shutdown, and the WAL is truncated on the way out.
struct VaultService: Service {
    let vault: IncidentVault
    let desk: IncidentDesk
    let readiness: Readiness
    let purgeInterval: Duration
    let logger: Logger
    /// Runs once the incidents are restored (the placement requests they still owe the hub are queued again).
    var afterRestore: @Sendable () async -> Void = {}

    func run() async throws {
        readiness.vaultOpen(true)
        do {
            let restored = try await desk.restore(viewer: CrewID("device")!)
            if restored > 0 {
                logger.notice("incidents restored from the vault", metadata: ["kyukyu.count": "\(restored)"])
            }
        } catch {
            logger.error("incidents could not be restored", metadata: ["kyukyu.error": "\(error.kind.rawValue)"])
        }
        await afterRestore()
        readiness.restored(true)
        await cancelWhenGracefulShutdown {
            await VaultPurgeService(vault: vault, interval: purgeInterval, logger: logger).run()
        }
        readiness.vaultOpen(false)
        await desk.suspendAll()
        _ = await vault.truncateWAL()
    }
}

/// The eligibility client's connection pool, as a service: warmed at start and kept warm, so that the first card
/// read does not pay for the TLS handshakes; shut down last-in-first-out with the rest.
struct EligibilityPoolService: Service {
    let transport: HTTPOnshiTransport
    let connections: Int
    let readiness: Readiness
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await transport.prewarm(connections: connections)
                readiness.onshiWarm(true)
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    return
                }
            }
        }
        readiness.onshiWarm(false)
        await transport.shutdown()
    }
}

/// The reader as the tablet sees it.
public struct ReaderState: Sendable, Hashable, Encodable {
    /// `no-service`, `no-reader`, `empty`, `card-present`.
    public var state: String
    /// The reader's name.
    public var reader: String?
}

/// The reader's state, and everyone who wants to hear when it changes.
public actor ReaderBoard {
    private(set) var current = ReaderState(state: "no-service", reader: nil)
    private var subscribers: [UUID: AsyncStream<ReaderState>.Continuation] = [:]

    /// Starts with no service known.
    public init() {}

    /// The current state.
    public func state() -> ReaderState { current }

    func set(_ state: ReaderState) {
        guard state != current else { return }
        current = state
        for continuation in subscribers.values { continuation.yield(state) }
    }

    /// Every change from now on.
    public func updates() -> AsyncStream<ReaderState> {
        let (stream, continuation) = AsyncStream.makeStream(of: ReaderState.self, bufferingPolicy: .bufferingNewest(2))
        let key = UUID()
        subscribers[key] = continuation
        continuation.onTermination = { _ in Task { await self.unsubscribe(key) } }
        return stream
    }

    private func unsubscribe(_ key: UUID) { subscribers[key] = nil }
}

/// Watches the reader (pcsc-lite's status changes) and hands each card that touches it to the desk: the card is
/// read with no tap. A reader unplugged or pcscd restarted is shown, and picked up again when it is back.
struct ReaderMonitorService: Service {
    let pcsc: PCSCService
    let reader: CardReader
    let readerName: String?
    let desk: IncidentDesk
    let board: ReaderBoard
    let pollInterval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    // A card already on the reader when the crew opens an incident is read for it.
                    for await _ in desk.activations {
                        let state = await board.state()
                        guard state.state == "card-present", let name = state.reader else { continue }
                        await desk.cardTouched(ReaderCard(reader: reader, readerName: name))
                    }
                }
                var readers: [String: Bool] = [:]
                for await event in pcsc.events(pollInterval: pollInterval) {
                    switch event {
                    case .serviceAvailable(let statuses):
                        readers = Dictionary(statuses.map { ($0.name, $0.cardPresent) }, uniquingKeysWith: { $1 })
                    case .serviceUnavailable:
                        readers = [:]
                        await board.set(ReaderState(state: "no-service", reader: nil))
                        continue
                    case .readerAdded(let name):
                        readers[name] = false
                    case .readerRemoved(let name):
                        readers[name] = nil
                    case .cardInserted(let status):
                        readers[status.name] = true
                        if matches(status.name) {
                            let card = ReaderCard(reader: reader, readerName: status.name)
                            group.addTask { await desk.cardTouched(card) }
                        }
                    case .cardRemoved(let name):
                        readers[name] = false
                    }
                    await board.set(summary(readers))
                }
                group.cancelAll()
            }
        }
    }

    private func matches(_ name: String) -> Bool {
        readerName.map { name.hasPrefix($0) } ?? true
    }

    private func summary(_ readers: [String: Bool]) -> ReaderState {
        let watched = readers.filter { matches($0.key) }
        guard let first = watched.sorted(by: { $0.key < $1.key }).first(where: { $0.value }) ?? watched.first else {
            return ReaderState(state: "no-reader", reader: nil)
        }
        return ReaderState(state: first.value ? "card-present" : "empty", reader: first.key)
    }
}
