import Foundation
import KyukyuDomain
import KyukyuIncident
import KyukyuWorkflow
import Logging
import ServiceLifecycle
import Synchronization

/// How long the outbox waits before trying a hospital again: doubling from `initial` to `maximum`, each wait
/// drawn at random between half and all of it (so that ambulances leaving one dead zone do not all retry at once).
public struct DeliveryBackoff: Sendable, Hashable {
    /// The first wait.
    public var initial: Duration
    /// The longest.
    public var maximum: Duration

    /// A backoff.
    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(60)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The wait after `failures` failures in a row (1-based), with `unit` in [0, 1) choosing where in the jitter
    /// range it falls.
    public func delay(afterFailures failures: Int, unit: Double) -> Duration {
        var ceiling = initial
        for _ in 1..<max(1, failures) {
            ceiling = ceiling * 2
            if ceiling >= maximum {
                ceiling = maximum
                break
            }
        }
        let fraction = 0.5 + 0.5 * min(max(unit, 0), 1)
        return ceiling * fraction
    }
}

/// The gateway's outbox: one queue per hospital, delivered in order, through dead zones, with backoff and jitter.
///
/// What is to be delivered lives in each incident's state in the vault (``HandoffProgress/outbox``): the runner
/// queues it here when it is built, and again when the gateway restores its incidents after a restart. Here are
/// only the queues and the delivery loops; each item's bytes are asked from its incident when it is delivered, so
/// a version superseded meanwhile is not sent.
public actor GatewayOutbox: HandoffOutbox {
    private var queues: [HospitalCode: [OutboxItem]] = [:]
    private var wakeUps: [HospitalCode: AsyncStream<Void>.Continuation] = [:]
    private var desk: IncidentDesk?
    private let hospitals: [HospitalCode: ReceivingHospital]
    private let client: any ReceiverDelivering
    private let clock: any Clock<Duration>
    private let backoff: DeliveryBackoff
    private let random: @Sendable () -> Double
    private let logger: Logger
    private var failures: [HospitalCode: Int] = [:]

    /// An outbox for `hospitals`, delivering through `client`.
    public init(
        hospitals: [ReceivingHospital],
        client: any ReceiverDelivering,
        clock: any Clock<Duration> = ContinuousClock(),
        backoff: DeliveryBackoff = DeliveryBackoff(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        logger: Logger
    ) {
        self.hospitals = Dictionary(hospitals.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        self.client = client
        self.clock = clock
        self.backoff = backoff
        self.random = random
        self.logger = logger
    }

    /// The desk whose incidents the items belong to (set once, before ``run()``; the desk's effects hold this
    /// outbox, so it cannot be given at init).
    public func attach(_ desk: IncidentDesk) {
        self.desk = desk
    }

    /// Queues `item` behind its hospital's earlier items; an item already queued is not queued twice.
    public func enqueue(_ item: OutboxItem) async {
        guard hospitals[item.hospital] != nil else {
            logger.error(
                "an item for a hospital not in this terminal's list",
                metadata: ["kyukyu.hospital": "\(item.hospital)"]
            )
            return
        }
        var queue = queues[item.hospital, default: []]
        guard !queue.contains(item) else { return }
        queue.append(item)
        queues[item.hospital] = queue
        wakeUps[item.hospital]?.yield()
    }

    /// How many items wait, per hospital (for the health page and tests).
    public func depth() -> [HospitalCode: Int] { queues.mapValues(\.count) }

    /// Delivers until cancelled: one loop per hospital.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for code in hospitals.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
                let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
                wakeUps[code] = continuation
                if queues[code]?.isEmpty == false { continuation.yield() }
                group.addTask { await self.deliver(to: code, wakeUps: stream) }
            }
        }
    }

    private func deliver(to code: HospitalCode, wakeUps: AsyncStream<Void>) async {
        guard let hospital = hospitals[code] else { return }
        var iterator = wakeUps.makeAsyncIterator()
        while !Task.isCancelled {
            guard let item = queues[code]?.first else {
                guard await iterator.next() != nil else { return }
                continue
            }
            let result = await attempt(item, at: hospital)
            switch result {
            case .delivered, .refused:
                failures[code] = 0
            case .retry:
                let count = failures[code, default: 0] + 1
                failures[code] = count
                let delay = backoff.delay(afterFailures: count, unit: random())
                do {
                    try await clock.sleep(for: delay)
                } catch {
                    return
                }
            }
        }
    }

    /// One try at the head of a hospital's queue; pops it unless it is to be tried again.
    private func attempt(_ item: OutboxItem, at hospital: ReceivingHospital) async -> DeliveryResult {
        guard let desk, let runner = try? await desk.runner(item.incident),
            let payload = await runner.outboxPayload(item)
        else {
            // Superseded, delivered, or the incident is gone (handed over, closed): nothing to send.
            pop(item)
            return .delivered
        }
        let result: DeliveryResult
        switch payload {
        case .document(let data, let versionID, _):
            result = await client.post(data, versionID: versionID, to: hospital)
        case .withdrawal(let documentSet):
            result = await client.withdraw(
                documentSet: documentSet,
                reason: WithdrawReason.anotherHospital.rawValue,
                at: hospital
            )
        }
        switch result {
        case .delivered:
            pop(item)
            await runner.outboxDelivered(item)
        case .refused(let problem):
            pop(item)
            logger.warning("a hospital's receiver refused an item", metadata: ["kyukyu.hospital": "\(hospital.code)"])
            await runner.outboxProblem(item, problem: problem, final: true)
        case .retry(let problem):
            await runner.outboxProblem(item, problem: problem, final: false)
        }
        return result
    }

    private func pop(_ item: OutboxItem) {
        guard var queue = queues[item.hospital], let index = queue.firstIndex(of: item) else { return }
        queue.remove(at: index)
        queues[item.hospital] = queue
    }
}

/// The outbox as a service in the gateway's group: it delivers until shutdown, then closes the receivers'
/// connections.
struct OutboxService: Service {
    let outbox: GatewayOutbox
    let desk: IncidentDesk
    let client: any ReceiverDelivering

    func run() async throws {
        await outbox.attach(desk)
        await cancelWhenGracefulShutdown {
            await outbox.run()
        }
        if let client = client as? HTTPReceiverClient { await client.shutdown() }
    }
}

/// Stands in for the receivers when this terminal has no certificate for them: every document stays queued, and
/// the tablet says why.
struct UnconfiguredReceivers: ReceiverDelivering {
    static let problem = "this ambulance has no certificate for the hospitals' receivers yet; the document waits"

    func post(_ document: Data, versionID: UUID, to hospital: ReceivingHospital) async -> DeliveryResult {
        .retry(Self.problem)
    }

    func withdraw(documentSet: UUID, reason: String, at hospital: ReceivingHospital) async -> DeliveryResult {
        .retry(Self.problem)
    }

    func events(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverEvent, any Error
    > {
        AsyncThrowingStream { $0.finish() }
    }
}

/// Keeps a connection open to each hospital's receiver (ambulances sit behind mobile NAT: the receiver cannot
/// call them) and hands every status it reports to the desk. Reconnects with backoff, from the last event seen.
struct ReceiverEventsService: Service {
    let hospitals: [ReceivingHospital]
    let client: any ReceiverDelivering
    let desk: IncidentDesk
    let cursor: EventCursorFile
    let clock: any Clock<Duration>
    let backoff: DeliveryBackoff
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for hospital in hospitals {
                    group.addTask { await listen(to: hospital) }
                }
            }
        }
    }

    private func listen(to hospital: ReceivingHospital) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                for try await event in client.events(from: hospital, after: cursor.lastEventID(hospital.code)) {
                    failures = 0
                    await desk.hospitalReported(
                        documentSet: event.documentSet,
                        status: event.status,
                        hospital: event.hospital,
                        divert: event.divert
                    )
                    if let id = event.id { cursor.remember(id, for: hospital.code) }
                }
            } catch {
                logger.debug(
                    "a hospital's event stream ended",
                    metadata: ["kyukyu.hospital": "\(hospital.code)", "kyukyu.error": "\(type(of: error))"]
                )
            }
            failures += 1
            do {
                try await clock.sleep(for: backoff.delay(afterFailures: failures, unit: Double.random(in: 0..<1)))
            } catch {
                return
            }
        }
    }
}

/// The last event seen from each hospital's receiver, kept in a small file (no patient data: event numbers), so
/// that a restarted gateway asks only for what it missed.
final class EventCursorFile: Sendable {
    private let path: String
    private let state: Mutex<[String: String]>

    /// The cursor file at `path` (read now; a missing or unreadable file starts from nothing).
    init(path: String) {
        self.path = path
        let data = FileManager.default.contents(atPath: path)
        let decoded = data.flatMap { try? JSONDecoder().decode([String: String].self, from: $0) } ?? [:]
        self.state = Mutex(decoded)
    }

    func lastEventID(_ hospital: HospitalCode) -> String? {
        state.withLock { $0[hospital.rawValue] }
    }

    func remember(_ id: String, for hospital: HospitalCode) {
        let snapshot = state.withLock { cursor -> [String: String] in
            cursor[hospital.rawValue] = id
            return cursor
        }
        guard let data = try? JSONEncoder().encode(snapshot) else { return }
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600])
        else { return }
        _ = rename(temporary, path)
    }
}
