import Crypto
public import Foundation
public import KyukyuDomain
public import Logging
public import Metrics
import ServiceLifecycle
import Synchronization

/// The events a stream has sent: every position up to `floor`, and those above it. Requests that commit at the same
/// time publish their events in any order, so a high-water mark would drop an event published after a later one
/// (the load test saw acknowledgements stored and never streamed); a live event is sent unless it was sent already.
struct SentPositions {
    /// Every position up to this one was sent (or is too old to send).
    private(set) var floor: Int64
    private var above: Set<Int64> = []
    /// How many positions above the floor are remembered before the oldest half are let go.
    static let memory = 1024

    init(floor: Int64) { self.floor = floor }

    /// Whether an event in `slot` is to be sent: one outside the numbering always, a numbered one when its position
    /// is new (and now sent); nil (not on this stream) never.
    mutating func admit(_ slot: StreamSlot?) -> Bool {
        switch slot {
        case .numbered(let position): admit(position)
        case .unnumbered: true
        case nil: false
        }
    }

    /// Whether `position` is new (and now sent).
    mutating func admit(_ position: Int64) -> Bool {
        guard position > floor, above.insert(position).inserted else { return false }
        while floor < Int64.max, above.remove(floor + 1) != nil { floor += 1 }
        if above.count > Self.memory {
            let cut = above.sorted()[Self.memory / 2]
            above = above.filter { $0 > cut }
            floor = cut
        }
        return true
    }
}

/// The newest revision sent of each hospital's publication, so that a feed sends each once and never an older one.
final class RevisionsSent: Sendable {
    private let sent = Mutex([HospitalCode: Int64]())

    /// Whether `acceptance` is newer than what was sent of its hospital (and now sent).
    func admit(_ acceptance: HospitalAcceptance) -> Bool {
        sent.withLock { sent in
            guard (sent[acceptance.hospital] ?? -1) < acceptance.revision else { return false }
            sent[acceptance.hospital] = acceptance.revision
            return true
        }
    }
}

/// Where an event goes in a stream: at its position in the stream's numbering (sent once, with that id), or outside
/// it (a hospital's publication, which carries its own revision and is sent without an id).
enum StreamSlot: Sendable, Hashable {
    /// At this position of the stream.
    case numbered(Int64)
    /// Outside the numbering.
    case unnumbered
}

/// Everyone listening for new events (ambulance streams, boards, acceptance feeds).
actor EventHub {
    private var subscribers: [UUID: AsyncStream<StreamEvent>.Continuation] = [:]

    func subscribe() -> AsyncStream<StreamEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: StreamEvent.self,
            bufferingPolicy: .bufferingNewest(1024)
        )
        let key = UUID()
        subscribers[key] = continuation
        continuation.onTermination = { _ in Task { await self.unsubscribe(key) } }
        return stream
    }

    func publish(_ event: StreamEvent) {
        for continuation in subscribers.values { continuation.yield(event) }
    }

    /// Ends every stream (shutdown).
    func finishAll() {
        for continuation in subscribers.values { continuation.finish() }
        subscribers = [:]
    }

    private func unsubscribe(_ key: UUID) { subscribers[key] = nil }
}

/// The receiver's work, without HTTP: intake, status changes, and the event streams. The HTTP API and the tests
/// call it.
public final class HospitalDesk: Sendable {
    /// The hospitals this receiver serves (its tenants): one for a hospital's own receiver, many for a region's hub.
    public let hospitals: [HospitalCode]
    /// The store.
    public let store: HospitalStore
    let validator: any HandoffDocumentValidating
    let hub = EventHub()
    let clock: any Clock<Duration>
    let keepAlive: Duration
    let now: @Sendable () -> Date
    let logger: Logger
    let metrics: any MetricsFactory

    /// The largest document accepted (handoff contract: 4 MiB).
    public static let maximumDocumentBytes = 4 * 1024 * 1024

    /// Assembles the desk.
    ///
    /// - Parameters:
    ///   - hospitals: The hospitals served (at least one); documents for another are refused (422).
    ///   - store: The opened store.
    ///   - validator: Checks documents and reads their identity (``StructuralHandoffValidator`` or the real one).
    ///   - clock: The keep-alive clock of the event streams (a test clock in tests).
    ///   - keepAlive: How often a stream sends `: keep-alive` (15 s).
    ///   - now: The wall clock of stored times.
    ///   - metrics: Where intake is counted and timed (`kyukyu_receiver_documents_total{outcome}`,
    ///     `kyukyu_receiver_ingest_duration_seconds`) and the sets waiting for staff are gauged
    ///     (`kyukyu_receiver_pending_acknowledgements`); the process's swift-metrics backend by default.
    ///   - logger: Logs at info and below; never patient data.
    public init(
        hospitals: [HospitalCode],
        store: HospitalStore,
        validator: any HandoffDocumentValidating,
        clock: any Clock<Duration> = ContinuousClock(),
        keepAlive: Duration = .seconds(15),
        now: @escaping @Sendable () -> Date = Date.init,
        metrics: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.metrics = metrics
        precondition(!hospitals.isEmpty, "a receiver serves at least one hospital")
        self.hospitals = hospitals
        self.store = store
        self.validator = validator
        self.clock = clock
        self.keepAlive = keepAlive
        self.now = now
        self.logger = logger
    }

    // MARK: - Intake

    /// Why an intake was refused, as the HTTP layer maps it to statuses.
    public enum IntakeRefusal: Error, Sendable, Hashable {
        /// 400: no `Idempotency-Key`, or one that is not the body's `Bundle.identifier`.
        case badKey(String)
        /// 400: not JSON, or not a valid document.
        case invalid(HandoffValidationError)
        /// 403: unknown or revoked device, or the document names another sender.
        case forbidden(String)
        /// 422: the document is for another hospital.
        case wrongDestination
        /// 409: the key is stored with other content.
        case conflict(String)
        /// 503: the store failed.
        case storage(String)
    }

    /// Checks that `device` may send (known, not revoked).
    public func authorize(device: String) async throws(IntakeRefusal) {
        let record: DeviceRecord?
        do {
            record = try await store.device(device)
        } catch {
            throw .storage(error.reason)
        }
        guard let record else { throw .forbidden("device \(device) is not registered at this hospital") }
        guard record.revokedAt == nil else { throw .forbidden("device \(device) has been revoked") }
    }

    /// Validates and stores one posted document from `device` (the client certificate's CN).
    public func intake(body: Data, idempotencyKey: String?, device: String) async throws(IntakeRefusal) -> (
        IntakeOutcome, ValidatedDocumentInfo
    ) {
        try await intake(body: body, idempotencyKey: idempotencyKey, device: device, authorized: false)
    }

    /// ``intake(body:idempotencyKey:device:)``, without checking the device again when the caller just has.
    func intake(
        body: Data,
        idempotencyKey: String?,
        device: String,
        authorized: Bool
    ) async throws(IntakeRefusal) -> (IntakeOutcome, ValidatedDocumentInfo) {
        let started = ContinuousClock.now
        let outcome: String
        defer {
            Counter(label: "kyukyu_receiver_documents_total", dimensions: [("outcome", outcome)], factory: metrics)
                .increment()
            Metrics.Timer(label: "kyukyu_receiver_ingest_duration_seconds", factory: metrics)
                .record(duration: ContinuousClock.now - started)
        }
        do {
            let result = try await checkAndStore(
                body: body,
                idempotencyKey: idempotencyKey,
                device: device,
                authorized: authorized
            )
            switch result.0 {
            case .created: outcome = "stored"
            case .resent: outcome = "duplicate"
            }
            return result
        } catch {
            if case .storage = error { outcome = "storage-failed" } else { outcome = "rejected" }
            throw error
        }
    }

    /// Counts the sets the staff have not acknowledged yet (sent or received, nothing since), into
    /// `kyukyu_receiver_pending_acknowledgements`; done when `/metrics` is scraped, so the gauge is fresh then.
    func recordPendingAcknowledgements() async {
        guard let open = try? await store.openSets(at: nil) else { return }
        Gauge(label: "kyukyu_receiver_pending_acknowledgements", factory: metrics)
            .record(open.filter { $0.status == .received || $0.status == .sent }.count)
    }

    private func checkAndStore(
        body: Data,
        idempotencyKey: String?,
        device: String,
        authorized: Bool
    ) async throws(IntakeRefusal) -> (IntakeOutcome, ValidatedDocumentInfo) {
        if !authorized { try await authorize(device: device) }
        guard let idempotencyKey, !idempotencyKey.isEmpty else {
            throw .badKey("the Idempotency-Key header is required: the document's Bundle.identifier value")
        }
        let info: ValidatedDocumentInfo
        do {
            info = try validator.validate(body)
        } catch {
            throw .invalid(error)
        }
        guard idempotencyKey.lowercased() == info.versionIdentifier.lowercased() else {
            throw .badKey("the Idempotency-Key header differs from the document's Bundle.identifier")
        }
        guard info.senderDevice == device else {
            throw .forbidden("the document's sender device is not the client certificate's")
        }
        guard hospitals.contains(info.destination) else { throw .wrongDestination }
        let outcome: IntakeOutcome
        do {
            outcome = try await store.intake(info, body: body, device: device, at: now())
        } catch {
            switch error.code {
            case .conflict: throw .conflict(error.reason)
            case .forbidden: throw .forbidden(error.reason)
            default: throw .storage(error.reason)
            }
        }
        if case .created(_, let event) = outcome {
            await hub.publish(.handoff(event))
            logger.info(
                "document stored",
                metadata: ["kyukyu.device": "\(device)", "kyukyu.version": "\(info.version)"]
            )
        }
        return (outcome, info)
    }

    // MARK: - Status changes

    /// `hospital`'s staff acknowledge a patient.
    public func acknowledge(_ set: UUID, at hospital: HospitalCode) async throws(ReceiverError) -> DocumentSetSummary {
        try await change(set, at: hospital, to: .acknowledged, reason: nil, note: nil, by: .staff)
    }

    /// `hospital`'s staff divert an ambulance, with a reason (and a note, required for `other`, at most 200
    /// characters).
    public func divert(
        _ set: UUID,
        at hospital: HospitalCode,
        reason: DivertReason,
        note: String?
    ) async throws(ReceiverError) -> DocumentSetSummary {
        let note = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        if reason == .other, note?.isEmpty ?? true {
            throw .invalidInput("note: a note is required when the reason is other")
        }
        return try await change(
            set,
            at: hospital,
            to: .diverted,
            reason: reason.rawValue,
            note: note?.isEmpty == true ? nil : note,
            by: .staff
        )
    }

    /// `hospital`'s staff mark the patient arrived (handover complete).
    public func arrived(_ set: UUID, at hospital: HospitalCode) async throws(ReceiverError) -> DocumentSetSummary {
        try await change(set, at: hospital, to: .arrived, reason: nil, note: nil, by: .staff)
    }

    /// The device withdraws its set from `hospital` (which may be left out when the set is at one hospital only).
    public func withdraw(
        _ set: UUID,
        from hospital: HospitalCode?,
        reason: WithdrawReason,
        device: String
    ) async throws(ReceiverError) -> DocumentSetSummary {
        if let hospital, !hospitals.contains(hospital) { throw .notFound("no such document set") }
        return try await change(
            set,
            at: hospital,
            to: .withdrawn,
            reason: reason.rawValue,
            note: nil,
            by: .device(device)
        )
    }

    private func change(
        _ set: UUID,
        at hospital: HospitalCode?,
        to status: HandoffStatus,
        reason: String?,
        note: String?,
        by actor: HospitalStore.Actor
    ) async throws(ReceiverError) -> DocumentSetSummary {
        let (summary, event) = try await store.transition(
            set,
            at: hospital,
            to: status,
            reason: reason,
            note: note,
            by: actor,
            at: now()
        )
        if let event {
            await hub.publish(.handoff(event))
            logger.info("status changed", metadata: ["kyukyu.device": "\(event.device)", "kyukyu.status": "\(status)"])
        }
        return summary
    }

    // MARK: - Acceptance and placement requests

    /// `hospital`'s staff publish what it accepts now (a change on top of the latest publication); every instance's
    /// ambulances hear it.
    public func publishAcceptance(
        _ hospital: HospitalCode,
        setting: [AcceptanceCondition: ConditionAcceptance],
        withdrawing: Set<AcceptanceCondition>,
        staff: String
    ) async throws(ReceiverError) -> HospitalAcceptance {
        guard hospitals.contains(hospital) else { throw .notFound("not a hospital served here") }
        let acceptance = try await store.publishAcceptance(
            hospital,
            setting: setting,
            withdrawing: withdrawing,
            staff: staff,
            at: now()
        )
        await hub.publish(.acceptance(acceptance))
        logger.info(
            "acceptance published",
            metadata: ["kyukyu.hospital": "\(hospital)", "kyukyu.revision": "\(acceptance.revision)"]
        )
        return acceptance
    }

    /// The most hospitals one placement request asks.
    public static let maximumPlacementHospitals = 10

    /// An ambulance asks several hospitals at once (each served here, 1 to ``maximumPlacementHospitals``, each
    /// once); a resend of the same request changes nothing.
    public func createPlacement(
        _ id: UUID,
        device: String,
        documentSet: UUID,
        hospitals asked: [HospitalCode],
        summary: PlacementSummary
    ) async throws(ReceiverError) -> (view: PlacementView, created: Bool) {
        guard (1...Self.maximumPlacementHospitals).contains(asked.count), Set(asked).count == asked.count else {
            throw .invalidInput("hospitals: 1 to \(Self.maximumPlacementHospitals) hospital codes, each once")
        }
        if let other = asked.first(where: { !hospitals.contains($0) }) {
            throw .invalidInput("hospitals: \(other) is not a hospital served here")
        }
        let (view, created, events) = try await store.createPlacement(
            id,
            device: device,
            documentSet: documentSet,
            hospitals: asked,
            summary: summary,
            at: now()
        )
        for event in events { await hub.publish(.placement(event)) }
        if created {
            logger.info(
                "placement requested",
                metadata: ["kyukyu.device": "\(device)", "kyukyu.hospitals": "\(asked.count)"]
            )
        }
        return (view, created)
    }

    /// `hospital`'s staff answer a request: the first acceptance places the patient; the others are told.
    public func answerPlacement(
        _ id: UUID,
        at hospital: HospitalCode,
        answer: PlacementAnswer,
        reason: DivertReason?,
        note: String?,
        staff: String
    ) async throws(ReceiverError) -> PlacementView {
        let note = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        let (view, events) = try await store.answerPlacement(
            id,
            at: hospital,
            answer: answer,
            reason: reason,
            note: note?.isEmpty == true ? nil : note,
            staff: staff,
            at: now()
        )
        for event in events { await hub.publish(.placement(event)) }
        logger.info("placement answered", metadata: ["kyukyu.hospital": "\(hospital)", "kyukyu.answer": "\(answer)"])
        return view
    }

    /// The ambulance withdraws its request.
    public func cancelPlacement(_ id: UUID, device: String) async throws(ReceiverError) -> PlacementView {
        let (view, events) = try await store.cancelPlacement(id, device: device, at: now())
        for event in events { await hub.publish(.placement(event)) }
        return view
    }

    /// Withdraws, as their ambulances would, the requests still waiting after `age`: an ambulance that stopped
    /// asking (its gateway lost, the patient taken by phone) must not leave hospitals alerted for ever. Every
    /// hospital still pending is told `cancelled`. Returns how many were withdrawn; one a hospital accepted
    /// meanwhile stays placed.
    @discardableResult
    public func expirePlacements(olderThan age: Duration) async -> Int {
        let cutoff = now().addingTimeInterval(-Double(age.components.seconds))
        let waiting: [(placement: UUID, device: String)]
        do {
            waiting = try await store.waitingPlacements(requestedBefore: cutoff)
        } catch {
            logger.error("the waiting placement requests cannot be read", metadata: ["kyukyu.error": "\(error.code)"])
            return 0
        }
        var expired = 0
        for request in waiting {
            do {
                let (_, events) = try await store.cancelPlacement(request.placement, device: request.device, at: now())
                for event in events { await hub.publish(.placement(event)) }
                if !events.isEmpty { expired += 1 }
            } catch let error where error.code == .conflict || error.code == .notFound {
                // Accepted, or withdrawn, meanwhile (another instance's sweep): nothing to do.
                logger.debug("a waiting placement request changed before it expired")
            } catch {
                logger.error(
                    "a waiting placement request could not be withdrawn",
                    metadata: ["kyukyu.error": "\(error.code)"]
                )
            }
        }
        if expired > 0 {
            logger.notice(
                "placement requests expired unanswered",
                metadata: ["kyukyu.count": "\(expired)", "kyukyu.age-minutes": "\(age.components.seconds / 60)"]
            )
        }
        return expired
    }

    // MARK: - Streams

    /// One server-sent event's text: `handoff` or `placement` (with the stream's id), or `acceptance` (none).
    func frame(_ event: StreamEvent, board: Bool) -> String {
        let kind: String
        let object: Any
        let id: Int64?
        switch event {
        case .handoff(let handoff):
            (kind, object, id) = ("handoff", handoff.json(board: board), board ? handoff.id : handoff.sequence)
        case .placement(let placement):
            (kind, object, id) = ("placement", placement.json(board: board), board ? placement.id : placement.sequence)
        case .acceptance(let acceptance):
            let value = (try? JSONEncoder().encode(acceptance)).flatMap { try? JSONSerialization.jsonObject(with: $0) }
            (kind, object, id) = ("acceptance", value ?? [:], nil)
        }
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return (id.map { "id: \($0)\n" } ?? "") + "event: \(kind)\ndata: \(String(decoding: data, as: UTF8.self))\n\n"
    }

    /// Runs a device's event stream until `emit` fails (the client went), the service shuts down, or the task is
    /// cancelled: the replay (events after `lastEventID`, or every event of the device's open sets), then each
    /// new event, and `: keep-alive` every ``keepAlive`` on the injected clock.
    public func runDeviceStream(
        device: String,
        lastEventID: Int64?,
        emit: @escaping @Sendable (String) async throws -> Void
    ) async {
        await run(
            replay: { () async throws(ReceiverError) in
                try await self.store.streamEvents(device: device, after: lastEventID, now: self.now())
            },
            slot: { event in event.device == device ? event.sequence.map(StreamSlot.numbered) : nil },
            start: lastEventID ?? 0,
            board: false,
            emit: emit
        )
    }

    /// Runs `hospital`'s board stream (every device's events there; ids are the board's own), as
    /// ``runDeviceStream``. The hospital's own publications, from any of its screens and any instance, come live too
    /// (`acceptance`, without an id: the board reads its acceptance when it connects, so none is replayed).
    public func runBoardStream(
        hospital: HospitalCode,
        lastEventID: Int64?,
        emit: @escaping @Sendable (String) async throws -> Void
    ) async {
        let revisions = RevisionsSent()
        await run(
            replay: { () async throws(ReceiverError) in
                guard let lastEventID else { return [] }
                return try await self.store.streamBoardEvents(hospital: hospital, after: lastEventID)
            },
            slot: { event in
                guard event.hospital == hospital else { return nil }
                if case .acceptance(let acceptance) = event { return revisions.admit(acceptance) ? .unnumbered : nil }
                return event.boardPosition.map(StreamSlot.numbered)
            },
            start: lastEventID ?? Int64.max,
            board: true,
            emit: emit
        )
    }

    /// Runs an ambulance's acceptance feed: every served hospital's publication, then each new one (a revision not
    /// sent yet), as ``runDeviceStream``.
    public func runAcceptanceStream(emit: @escaping @Sendable (String) async throws -> Void) async {
        let served = Set(hospitals)
        let revisions = RevisionsSent()
        await run(
            replay: { () async throws(ReceiverError) in
                try await self.store.acceptances().filter { served.contains($0.hospital) }.map(StreamEvent.acceptance)
            },
            slot: { event in
                guard case .acceptance(let acceptance) = event, served.contains(acceptance.hospital),
                    revisions.admit(acceptance)
                else { return nil }
                return .unnumbered
            },
            start: Int64.max,
            board: false,
            emit: emit
        )
    }

    private func run(
        replay: @escaping @Sendable () async throws(ReceiverError) -> [StreamEvent],
        slot: @escaping @Sendable (StreamEvent) -> StreamSlot?,
        start: Int64,
        board: Bool,
        emit: @escaping @Sendable (String) async throws -> Void
    ) async {
        let (lines, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1024))
        // Subscribe before reading the replay, so that nothing falls between the two.
        let live = await hub.subscribe()
        let clock = self.clock
        let keepAlive = self.keepAlive
        await withDiscardingTaskGroup { group in
            group.addTask {
                var sent = SentPositions(floor: start == Int64.max ? Int64.min : start)
                do {
                    for event in try await replay() {
                        guard sent.admit(slot(event)) else { continue }
                        continuation.yield(self.frame(event, board: board))
                    }
                } catch {
                    self.logger.error(
                        "the event replay failed",
                        metadata: ["kyukyu.error": "\((error as? ReceiverError)?.code.description ?? "unknown")"]
                    )
                    continuation.finish()
                    return
                }
                for await event in live {
                    guard sent.admit(slot(event)) else { continue }
                    continuation.yield(self.frame(event, board: board))
                }
                continuation.finish()
            }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await clock.sleep(for: keepAlive)
                    } catch {
                        return
                    }
                    continuation.yield(": keep-alive\n\n")
                }
            }
            // The stream ends when the service shuts down: the server's graceful shutdown waits for open requests.
            await withGracefulShutdownHandler {
                do {
                    for await line in lines { try await emit(line) }
                } catch {
                    // The client went away.
                }
            } onGracefulShutdown: {
                continuation.finish()
            }
            group.cancelAll()
        }
    }

    /// Ends every open stream (shutdown).
    public func finishStreams() async { await hub.finishAll() }

    /// Runs the store's engine, publishing to this instance's streams the events other instances commit (a region's
    /// hub on PostgreSQL: `LISTEN`/`NOTIFY`); returns when cancelled.
    public func runStore() async throws {
        try await store.run { event in await self.hub.publish(event) }
    }
}
