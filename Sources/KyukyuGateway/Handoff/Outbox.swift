import Foundation
import KyukyuDomain
import KyukyuIncident
import KyukyuWorkflow
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import Tracing

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

/// Where the outbox's items come from and go back to: the incidents (``IncidentDesk``), or a load run's synthetic
/// ambulances. Each item's bytes are asked for when it is delivered, so a version superseded meanwhile is not sent.
public protocol OutboxItemSource: Sendable {
    /// What to send for `item`, or nil when there is nothing to send any more (superseded, delivered, the incident
    /// gone).
    func payload(_ item: OutboxItem) async -> OutboxPayload?
    /// The receiver took `item`.
    func delivered(_ item: OutboxItem) async
    /// The receiver did not take `item`: for good (`final`), or for now.
    func problem(_ item: OutboxItem, problem: String, final: Bool) async
}

extension IncidentDesk: OutboxItemSource {
    /// The item's payload, from its incident.
    public func payload(_ item: OutboxItem) async -> OutboxPayload? {
        guard let runner = try? runner(item.incident) else { return nil }
        return await runner.outboxPayload(item)
    }

    /// Tells the item's incident it was delivered.
    public func delivered(_ item: OutboxItem) async {
        await (try? runner(item.incident))?.outboxDelivered(item)
    }

    /// Tells the item's incident what the receiver said.
    public func problem(_ item: OutboxItem, problem: String, final: Bool) async {
        await (try? runner(item.incident))?.outboxProblem(item, problem: problem, final: final)
    }
}

/// The gateway's outbox: one queue per hospital, delivered in order, through dead zones, with backoff and jitter.
///
/// What is to be delivered lives in each incident's state in the vault (``HandoffProgress/outbox``): the runner
/// queues it here when it is built, and again when the gateway restores its incidents after a restart. Here are
/// only the queues and the delivery loops; each item's bytes are asked from its incident when it is delivered, so
/// a version superseded meanwhile is not sent.
public actor GatewayOutbox: HandoffOutbox {
    /// One thing to deliver to a hospital: an incident's item, or a notice that outlived its incident.
    private enum Entry: Hashable {
        case item(OutboxItem)
        case notice(HandoffNotice)
    }

    private var queues: [HospitalCode: [Entry]] = [:]
    private var wakeUps: [HospitalCode: AsyncStream<Void>.Continuation] = [:]
    private var source: (any OutboxItemSource)?
    private let hospitals: [HospitalCode: ReceivingHospital]
    private let client: any ReceiverDelivering
    private let notices: NoticeFile?
    private let clock: any Clock<Duration>
    private let backoff: DeliveryBackoff
    private let random: @Sendable () -> Double
    private let now: @Sendable () -> Date
    private let logger: Logger
    private var failures: [HospitalCode: Int] = [:]
    private let depthGauge: Gauge
    private let deliveryTimer: Metrics.Timer

    /// An outbox for `hospitals`, delivering through `client`; the notices that outlive their incidents are kept
    /// in `notices` (read now: those a previous run left are queued first).
    ///
    /// `metrics` gets `kyukyu_outbox_depth` (what waits, all hospitals together) and
    /// `kyukyu_handoff_delivery_seconds` (from an item's ``OutboxItem/queuedAt`` to its receiver's answer, by
    /// `now`'s wall clock, since the time survives restarts).
    public init(
        hospitals: [ReceivingHospital],
        client: any ReceiverDelivering,
        notices: NoticeFile? = nil,
        clock: any Clock<Duration> = ContinuousClock(),
        backoff: DeliveryBackoff = DeliveryBackoff(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        now: @escaping @Sendable () -> Date = Date.init,
        metrics: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.hospitals = Dictionary(hospitals.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        self.client = client
        self.notices = notices
        self.clock = clock
        self.backoff = backoff
        self.random = random
        self.now = now
        self.logger = logger
        self.depthGauge = Gauge(label: "kyukyu_outbox_depth", factory: metrics)
        self.deliveryTimer = Metrics.Timer(label: "kyukyu_handoff_delivery_seconds", factory: metrics)
        for notice in notices?.all() ?? [] where self.hospitals[notice.hospital] != nil {
            queues[notice.hospital, default: []].append(.notice(notice))
        }
        depthGauge.record(queues.values.reduce(0) { $0 + $1.count })
    }

    /// Where the items come from: the desk whose incidents they belong to (set once, before ``run()``; the desk's
    /// effects hold this outbox, so it cannot be given at init).
    public func attach(_ source: any OutboxItemSource) {
        self.source = source
    }

    /// Queues `item` behind its hospital's earlier items; an item already queued is not queued twice.
    public func enqueue(_ item: OutboxItem) async {
        queue(.item(item), for: item.hospital)
    }

    /// Keeps `notices` in the notice file, then queues each behind its hospital's earlier items.
    public func notify(_ notices: [HandoffNotice]) async {
        let known = notices.filter { notice in
            guard hospitals[notice.hospital] != nil else {
                logger.error(
                    "a notice for a hospital not in this terminal's list",
                    metadata: ["kyukyu.hospital": "\(notice.hospital)"]
                )
                return false
            }
            return true
        }
        guard !known.isEmpty else { return }
        do {
            try self.notices?.add(known)
        } catch {
            logger.error(
                "the hospitals' notices could not be kept on disk; they are queued until the gateway stops",
                metadata: ["kyukyu.error": "\(error.reason)"]
            )
        }
        for notice in known { queue(.notice(notice), for: notice.hospital) }
    }

    private func queue(_ entry: Entry, for hospital: HospitalCode) {
        guard hospitals[hospital] != nil else {
            logger.error(
                "an item for a hospital not in this terminal's list",
                metadata: ["kyukyu.hospital": "\(hospital)"]
            )
            return
        }
        var queue = queues[hospital, default: []]
        guard !queue.contains(entry) else { return }
        queue.append(entry)
        queues[hospital] = queue
        recordDepth()
        wakeUps[hospital]?.yield()
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
            guard let entry = queues[code]?.first else {
                guard await iterator.next() != nil else { return }
                continue
            }
            let result: DeliveryResult
            switch entry {
            case .item(let item): result = await attempt(item, at: hospital)
            case .notice(let notice): result = await attempt(notice, at: hospital)
            }
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
        guard let source, let payload = await source.payload(item) else {
            // Superseded, delivered, or the incident is gone (handed over, closed: what the hospital is still owed
            // then went as a notice): nothing to send.
            pop(.item(item))
            return .delivered
        }
        let client = self.client
        let result = await withSpan("handoff.deliver", ofKind: .client) { span -> DeliveryResult in
            span.attributes["kyukyu.incident"] = "\(item.incident)"
            span.attributes["kyukyu.hospital"] = hospital.code.rawValue
            let result: DeliveryResult
            switch payload {
            case .document(let data, let versionID, _):
                span.attributes["kyukyu.handoff.item"] = "document"
                result = await client.post(data, versionID: versionID, to: hospital)
            case .withdrawal(let documentSet):
                span.attributes["kyukyu.handoff.item"] = "withdrawal"
                result = await client.withdraw(
                    documentSet: documentSet,
                    reason: WithdrawReason.anotherHospital.rawValue,
                    at: hospital
                )
            }
            span.attributes["kyukyu.handoff.result"] = Self.word(result)
            return result
        }
        switch result {
        case .delivered:
            pop(.item(item))
            if case .document = payload {
                deliveryTimer.record(
                    duration: .milliseconds(max(0, Int64(now().timeIntervalSince(item.queuedAt) * 1000)))
                )
            }
            await source.delivered(item)
        case .refused(let problem):
            pop(.item(item))
            logger.warning("a hospital's receiver refused an item", metadata: ["kyukyu.hospital": "\(hospital.code)"])
            await source.problem(item, problem: problem, final: true)
        case .retry(let problem):
            await source.problem(item, problem: problem, final: false)
        }
        return result
    }

    /// A word for a delivery's result, for traces.
    static func word(_ result: DeliveryResult) -> String {
        switch result {
        case .delivered: "delivered"
        case .refused: "refused"
        case .retry: "retry"
        }
    }

    /// One try at a notice: the receiver withdraws the set with the notice's reason.
    private func attempt(_ notice: HandoffNotice, at hospital: ReceivingHospital) async -> DeliveryResult {
        let result = await client.withdraw(
            documentSet: notice.documentSet,
            reason: notice.reason.rawValue,
            at: hospital
        )
        switch result {
        case .delivered:
            logger.info(
                "a hospital was told the patient will not come",
                metadata: ["kyukyu.hospital": "\(hospital.code)", "kyukyu.reason": "\(notice.reason.rawValue)"]
            )
        case .refused:
            // Most often the hospital never received the document (the incident closed while it waited).
            logger.info(
                "a hospital's receiver had nothing to withdraw",
                metadata: ["kyukyu.hospital": "\(hospital.code)", "kyukyu.reason": "\(notice.reason.rawValue)"]
            )
        case .retry:
            return result
        }
        pop(.notice(notice))
        do {
            try notices?.remove(notice)
        } catch {
            logger.error("a delivered notice could not be removed from the notice file; it may be sent again")
        }
        return result
    }

    private func pop(_ entry: Entry) {
        let hospital: HospitalCode
        switch entry {
        case .item(let item): hospital = item.hospital
        case .notice(let notice): hospital = notice.hospital
        }
        guard var queue = queues[hospital], let index = queue.firstIndex(of: entry) else { return }
        queue.remove(at: index)
        queues[hospital] = queue
        recordDepth()
    }

    private func recordDepth() {
        depthGauge.record(queues.values.reduce(0) { $0 + $1.count })
    }
}

/// The notices that outlive their incidents (``HandoffNotice``: a document set's random identifier, a hospital
/// code, a reason; no patient data), in a small JSON file (0600) replaced atomically and flushed to disk, so that
/// a notice survives a restart or a power loss until its hospital has it.
public final class NoticeFile: Sendable {
    /// The file.
    public let path: String
    private let state: Mutex<[HandoffNotice]>

    /// The notice file at `path`, read now. A missing file holds nothing; an unreadable one is set aside as
    /// `<path>.unreadable` for an operator to look at, and logged.
    public init(path: String, logger: Logger) {
        self.path = path
        let data = FileManager.default.contents(atPath: path)
        let decoded = data.flatMap { try? Self.decoder.decode([HandoffNotice].self, from: $0) }
        if data != nil, decoded == nil {
            _ = rename(path, path + ".unreadable")
            logger.error("the hospitals' notice file could not be read; it was set aside as \(path).unreadable")
        }
        self.state = Mutex(decoded ?? [])
    }

    /// Every notice kept, oldest first.
    public func all() -> [HandoffNotice] { state.withLock { $0 } }

    /// Keeps `notices` (on disk before this returns).
    public func add(_ notices: [HandoffNotice]) throws(NoticeFileError) {
        try update { kept in
            for notice in notices where !kept.contains(notice) { kept.append(notice) }
        }
    }

    /// Forgets `notice` (delivered).
    public func remove(_ notice: HandoffNotice) throws(NoticeFileError) {
        try update { kept in kept.removeAll { $0 == notice } }
    }

    private func update(_ change: (inout [HandoffNotice]) -> Void) throws(NoticeFileError) {
        let result: Result<Void, NoticeFileError> = state.withLock { kept in
            var next = kept
            change(&next)
            do throws(NoticeFileError) {
                try Self.write(next, to: path)
            } catch {
                return .failure(error)
            }
            kept = next
            return .success(())
        }
        try result.get()
    }

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()

    /// Writes a temporary file, flushes it, renames it over `path` and flushes the folder.
    private static func write(_ notices: [HandoffNotice], to path: String) throws(NoticeFileError) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(notices) else { throw .cannotWrite(path, "the notices cannot be encoded") }
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .cannotWrite(temporary, String(cString: strerror(errno))) }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(descriptor) == 0 else {
            throw .cannotWrite(temporary, String(cString: strerror(errno)))
        }
        guard rename(temporary, path) == 0 else { throw .cannotWrite(path, String(cString: strerror(errno))) }
        let folder = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            _ = fsync(folder)
            close(folder)
        }
    }
}

/// The notice file could not be written.
public struct NoticeFileError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable {
        case cannotWrite = "cannot-write"
    }
    private let code: Code
    /// What failed, in words (a path and the system's reason; never patient data).
    public let reason: String
    /// The file that threw.
    public let file: String
    /// The line that threw.
    public let line: UInt

    private init(_ code: Code, _ reason: String, file: String, line: UInt) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// The file (or its temporary twin) could not be written, flushed or renamed.
    public static func cannotWrite(_ path: String, _ why: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.cannotWrite, "cannot write \(path): \(why)", file: file, line: line)
    }

    /// Same kind of failure, wherever thrown.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the code.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// The reason.
    public var description: String { reason }
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
/// call them) and hands every status it reports, and every answer to a placement request, to the desk. Reconnects
/// with backoff, from the last event seen.
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
                for try await message in client.messages(from: hospital, after: cursor.lastEventID(hospital.code)) {
                    failures = 0
                    let id: String?
                    switch message {
                    case .handoff(let event):
                        await desk.hospitalReported(
                            documentSet: event.documentSet,
                            status: event.status,
                            hospital: event.hospital,
                            divert: event.divert
                        )
                        id = event.id
                    case .placement(let answer):
                        await desk.placementAnswered(
                            documentSet: answer.documentSet,
                            placement: answer.placement,
                            hospital: answer.hospital,
                            answer: answer.answer,
                            divert: answer.divert,
                            at: answer.at
                        )
                        id = answer.id
                    }
                    if let id { cursor.remember(id, for: hospital.code) }
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
