import Foundation
public import KyukyuDomain
public import KyukyuWorkflow
public import Logging
public import ServiceLifecycle

/// The newest acceptance publication of each of this gateway's hospitals, as the regional hub streams them, and
/// the tablets listening for changes. A publication replaces the one held only when it supersedes it (a higher
/// revision: a snapshot sent again on reconnect changes nothing); a hospital not in the gateway's list is ignored.
public actor AcceptanceBoard {
    private let known: Set<HospitalCode>
    private var latest: [HospitalCode: HospitalAcceptance] = [:]
    private var subscribers: [UUID: AsyncStream<HospitalAcceptance>.Continuation] = [:]

    /// A board for `hospitals` (the gateway's list), empty.
    public init(hospitals: [HospitalCode]) {
        self.known = Set(hospitals)
    }

    /// Takes `publication` if it is for a known hospital and newer than the one held; returns whether it did (and
    /// then every subscriber hears it).
    @discardableResult
    public func offer(_ publication: HospitalAcceptance) -> Bool {
        guard known.contains(publication.hospital) else { return false }
        if let held = latest[publication.hospital], !publication.supersedes(held) { return false }
        latest[publication.hospital] = publication
        for continuation in subscribers.values { continuation.yield(publication) }
        return true
    }

    /// The publication held for `hospital`, if any.
    public func acceptance(of hospital: HospitalCode) -> HospitalAcceptance? { latest[hospital] }

    /// Every publication held.
    public func all() -> [HospitalCode: HospitalAcceptance] { latest }

    /// Every publication taken from now on, until the caller stops listening.
    public func updates() -> AsyncStream<HospitalAcceptance> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: HospitalAcceptance.self,
            bufferingPolicy: .bufferingNewest(32)
        )
        let id = UUID()
        subscribers[id] = continuation
        continuation.onTermination = { _ in Task { await self.unsubscribe(id) } }
        return stream
    }

    private func unsubscribe(_ id: UUID) {
        subscribers[id] = nil
    }
}

/// Keeps one acceptance stream open per distinct receiver base URL of the configured hospitals (a region's hub
/// serves many hospitals at one URL: one stream, not one per hospital) and hands every publication to the
/// ``AcceptanceBoard``. Reconnects with ``DeliveryBackoff``; the snapshot sent on each connect brings the board up
/// to date, and older revisions in it change nothing.
public struct AcceptanceFeedService: Service {
    let hospitals: [ReceivingHospital]
    let client: any ReceiverDelivering
    let board: AcceptanceBoard
    let clock: any Clock<Duration>
    let backoff: DeliveryBackoff
    let random: @Sendable () -> Double
    let logger: Logger

    /// A feed for `hospitals` through `client` into `board`; `clock` and `random` time the reconnects.
    public init(
        hospitals: [ReceivingHospital],
        client: any ReceiverDelivering,
        board: AcceptanceBoard,
        clock: any Clock<Duration> = ContinuousClock(),
        backoff: DeliveryBackoff = DeliveryBackoff(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        logger: Logger
    ) {
        self.hospitals = hospitals
        self.client = client
        self.board = board
        self.clock = clock
        self.backoff = backoff
        self.random = random
        self.logger = logger
    }

    /// The distinct base URLs of `hospitals`, in their first appearance's order.
    static func baseURLs(_ hospitals: [ReceivingHospital]) -> [String] {
        var seen: Set<String> = []
        return hospitals.map(\.baseURL).filter { seen.insert($0).inserted }
    }

    /// Listens until shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for url in Self.baseURLs(hospitals) {
                    group.addTask { await listen(to: url) }
                }
            }
        }
    }

    private func listen(to url: String) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                for try await publication in client.acceptance(from: url) {
                    failures = 0
                    await board.offer(publication)
                }
            } catch {
                logger.debug(
                    "a hub's acceptance stream ended",
                    metadata: ["kyukyu.hub": "\(url)", "kyukyu.error": "\(type(of: error))"]
                )
            }
            failures += 1
            do {
                try await clock.sleep(for: backoff.delay(afterFailures: failures, unit: random()))
            } catch {
                return
            }
        }
    }
}
