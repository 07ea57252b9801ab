import Crypto
import Foundation
import KyukyuCard
public import KyukyuDomain
public import KyukyuEligibility
public import KyukyuIncident
public import KyukyuOnshi
public import KyukyuVault
public import Logging
public import Metrics
import Tracing

/// The workflow's settings.
public struct WorkflowConfiguration: Sendable {
    /// This terminal's id, recorded with every step.
    public var terminalID: String
    /// The fetch's deadlines: what has arrived at `overall` is the summary; late categories follow.
    public var deadlines: FetchDeadlines
    /// The categories fetched.
    public var categories: [MedicalCategory]
    /// When a deferred fetch is tried again.
    public var retrySchedule: RetrySchedule
    /// Where card reads (`kyukyu_card_reads_total{credential,outcome}`) and the PIN guard's refusals
    /// (`kyukyu_pin_guard_refusals_total{reason}`) are counted; labels are the credential's type and fixed words.
    public var metrics: any MetricsFactory

    /// Makes the settings.
    public init(
        terminalID: String,
        deadlines: FetchDeadlines = FetchDeadlines(overall: .seconds(3), perCategory: .seconds(6)),
        categories: [MedicalCategory] = MedicalCategory.allCases,
        retrySchedule: RetrySchedule = RetrySchedule(),
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.terminalID = terminalID
        self.deadlines = deadlines
        self.categories = categories
        self.retrySchedule = retrySchedule
        self.metrics = metrics
    }
}

/// The effects an incident runs on.
public struct WorkflowEffects: Sendable {
    /// The vault.
    public var store: any IncidentStore
    /// onshi.
    public var fetching: any PatientFetching
    /// The clocks.
    public var clock: WorkflowClock
    /// The hospital handoff (nil where nothing is sent, as in `kyukyu fetch`).
    public var handoff: HandoffEffects?

    /// Bundles the effects.
    public init(
        store: any IncidentStore,
        fetching: any PatientFetching,
        clock: WorkflowClock = WorkflowClock(),
        handoff: HandoffEffects? = nil
    ) {
        self.store = store
        self.fetching = fetching
        self.clock = clock
        self.handoff = handoff
    }
}

/// How the patient was identified, as the vault keeps it so that a deferred or restarted fetch can run again
/// without the card: the certificate (for a visual-check fetch) or the lookup's fields. Patient data: stored
/// only encrypted, in the incident's record set.
enum StoredIdentity: Codable, Sendable {
    case certificate(der: Data)
    case lookup(PatientQuery)

    var patientIdentity: PatientIdentity {
        switch self {
        case .certificate(let der): .visualCheck(certificateDER: Array(der))
        case .lookup(let query): .lookup(query)
        }
    }
}

/// Record kinds the workflow keeps beside the categories.
extension RecordKind {
    /// The incident's ``IncidentState``.
    public static let incidentState = RecordKind("incident-state")!
    /// How the patient was identified (certificate or lookup fields).
    public static let identity = RecordKind("identity")!
}

/// One incident, driven through ``IncidentMachine`` with its effects carried out on the injected store, onshi
/// client and clock. Every change is persisted (encrypted) before it is published, and what the tablet shows of
/// the patient is read back from the store, never kept from onshi's answer.
///
/// Nothing starts in the initialiser: a fetch starts when consent and identification are both there, or when
/// ``resume()`` picks up a restored incident.
public actor IncidentRunner {
    /// The incident's id.
    public nonisolated let id: IncidentID
    private var state: IncidentState
    private var summary: PatientSummary?
    /// The records as last read back from the store, decoded.
    private var records: [MedicalCategory: CategoryRecords]
    private var identity: StoredIdentity?
    private let effects: WorkflowEffects
    private let configuration: WorkflowConfiguration
    private let logger: Logger
    private var fetchTask: Task<Void, Never>?
    /// The fetch in progress.
    private var currentFetch: PatientFetch?
    /// While the card that was just verified is still on the reader: its signature over onshi's nonce (PIN mode).
    private var signer: (@Sendable ([UInt8]) async throws -> [UInt8])?
    private var retryTask: Task<Void, Never>?
    private var expiryTask: Task<Void, Never>?
    /// Retries of failed categories after the summary, for the backoff.
    private var categoryRetries = 0
    private var summaryShown = false
    /// The categories that had settled in the snapshot the summary was shown from: their updates may still be on
    /// their way to this actor, and they are not late.
    private var settledAtDeadline: Set<MedicalCategory> = []
    private var subscribers: [UUID: AsyncStream<IncidentSnapshot>.Continuation] = [:]
    /// When the card touched the reader (or the lookup was entered): the start of the debug log's stage times.
    private var stageStart: ContinuousClock.Instant?
    /// Category updates waiting to be stored. Those that arrive while a write is under way are stored together in
    /// the next one: one transaction for several categories, not three per category.
    private var inbox: [(category: MedicalCategory, status: CategoryStatus, attempt: Int)] = []
    /// Stores the inbox while it has something in it.
    private var storing: Task<Void, Never>?
    /// The category updates in the write under way.
    private var beingStored: [CategoryStatus] = []
    /// The latest document version as it was kept in the vault: each delivery attempt sends these bytes rather than
    /// reading (and auditing a view of) the vault again; after a restart it is read from the vault once.
    private var latestDocument: (version: Int, data: Data)?
    /// Those waiting for the card read in flight to end (a refusal tapped during the read).
    private var readWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]

    private init(
        state: IncidentState,
        records: [MedicalCategory: CategoryRecords],
        identity: StoredIdentity?,
        effects: WorkflowEffects,
        configuration: WorkflowConfiguration,
        logger: Logger
    ) {
        self.id = state.id
        self.state = state
        self.records = records
        self.summary =
            records.isEmpty ? nil : PatientSummary(records: records, today: OnshiDate(japanDayOf: effects.clock.now()))
        self.identity = identity
        self.effects = effects
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "kyukyu.incident"] = "\(state.id)"
        self.logger = logger
    }

    /// Opens a new incident in the store.
    public static func open(
        source: IncidentSource,
        dispatch: DispatchFacts? = nil,
        effects: WorkflowEffects,
        configuration: WorkflowConfiguration,
        logger: Logger
    ) async throws(WorkflowError) -> IncidentRunner {
        let now = effects.clock.now()
        let id: IncidentID
        do {
            id = try await effects.store.createIncident(now: now)
        } catch {
            throw .storage("the vault could not open an incident")
        }
        let state = IncidentState(
            id: id,
            createdAt: now,
            source: source,
            dispatch: dispatch,
            machine: IncidentMachine(retrySchedule: configuration.retrySchedule)
        )
        let runner = IncidentRunner(
            state: state,
            records: [:],
            identity: nil,
            effects: effects,
            configuration: configuration,
            logger: logger
        )
        try await runner.persist()
        return runner
    }

    /// Restores an incident from the store after a restart; `nil` if it holds no workflow state.
    public static func restore(
        id: IncidentID,
        viewer: CrewID,
        effects: WorkflowEffects,
        configuration: WorkflowConfiguration,
        logger: Logger
    ) async throws(WorkflowError) -> IncidentRunner? {
        let records: [RecordKind: Data]
        do {
            records = try await effects.store.latest(incident: id, viewer: viewer)
        } catch {
            throw .storage("the vault could not read an incident back")
        }
        guard let stateData = records[.incidentState],
            let state = try? JSONDecoder().decode(IncidentState.self, from: stateData)
        else { return nil }
        let identity = records[.identity].flatMap { try? JSONDecoder().decode(StoredIdentity.self, from: $0) }
        let runner = IncidentRunner(
            state: state,
            records: Self.decode(records),
            identity: identity,
            effects: effects,
            configuration: configuration,
            logger: logger
        )
        return runner
    }

    /// Carries on after a restore: a fetch that was running or waiting starts again (a new viewing at onshi);
    /// a card read in progress waits for the card again.
    public func resume() async {
        if let handoff = effects.handoff, let items = state.handoff?.outbox {
            for item in items.sorted(by: { $0.queuedAt < $1.queuedAt }) { await handoff.outbox.enqueue(item) }
        }
        await markSummaryShownIfPresent()
        if state.consentAvailableUntil != nil { scheduleConsentExpiry() }
        switch state.machine.phase {
        case .fetching:
            if state.card.state == .reading { state.card.state = .read }
            await startFetch(attempt: state.machine.fetchAttempts)
        case .retryPending:
            // The retry that was waiting is due now; through the machine, so that a fetch that fails again is
            // deferred again (a fetch started beside the machine left its deferral refused, and no retry came).
            if state.card.state == .reading { state.card.state = .read }
            do {
                try await handle(.retryDue, actor: "device")
            } catch {
                logger.error("the retry of a restored incident could not start")
            }
        case .summary where configuration.categories.contains(where: { state[$0]?.isSettled != true }):
            // Some categories were still on their way when the process stopped: ask for those again.
            await startFetch(
                attempt: state.machine.fetchAttempts,
                only: configuration.categories.filter { state[$0]?.isSettled != true }
            )
        case .created, .consentRecorded:
            if [.reading, .removed].contains(state.card.state) {
                state.card = CardProgress()
                await persistAndPublish()
            }
        default:
            break
        }
    }

    /// Stops everything this runner has in flight (fetch, retry, consent timer) and changes nothing: the service is
    /// stopping, and a later start restores the incident from the vault where it was.
    public func suspend() {
        stopWork()
        for continuation in subscribers.values { continuation.finish() }
        subscribers = [:]
    }

    /// Cancels the fetch, the scheduled retry and the consent timer.
    private func stopWork() {
        currentFetch = nil
        inbox = []
        fetchTask?.cancel()
        retryTask?.cancel()
        expiryTask?.cancel()
        fetchTask = nil
        retryTask = nil
        expiryTask = nil
    }

    private func markSummaryShownIfPresent() async {
        summaryShown = state.machine.phase == .summary
    }

    // MARK: - What the tablet sees

    /// The incident as the tablet shows it now.
    public func snapshot() -> IncidentSnapshot {
        IncidentSnapshot(state: state, summary: state.machine.phase == .closed ? nil : summary)
    }

    /// The records of `category` as read back from the vault, for the details tap; nil until they arrived.
    public func records(_ category: MedicalCategory) -> CategoryRecords? {
        state.machine.phase == .closed ? nil : records[category]
    }

    /// Every change from now on (the current snapshot first), until the incident closes or the consumer stops.
    public func updates() -> AsyncStream<IncidentSnapshot> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: IncidentSnapshot.self,
            bufferingPolicy: .bufferingNewest(4)
        )
        let key = UUID()
        continuation.yield(snapshot())
        if state.machine.phase == .closed {
            continuation.finish()
        } else {
            subscribers[key] = continuation
            continuation.onTermination = { _ in Task { await self.unsubscribe(key) } }
        }
        return stream
    }

    private func unsubscribe(_ key: UUID) { subscribers[key] = nil }

    /// Whether the incident waits for the patient to be identified (a card touched now is read for it).
    public var awaitsIdentification: Bool {
        [.created, .consentRecorded].contains(state.machine.phase)
    }

    // MARK: - Crew actions

    /// Records the consent basis.
    public func recordConsent(_ basis: ConsentBasis, by crew: CrewID) async throws(WorkflowError) -> IncidentSnapshot {
        state.crewID = crew.rawValue
        if basis == .refused, [.reading, .approveOnPhone].contains(state.card.state) {
            // A card is being read: the refusal goes to onshi with it (onshi records the attempt), so it waits for
            // the read to end (at most 15 s). Refused with no card on the way, the incident closes at once.
            await readEnded(within: .seconds(15))
        }
        try await handle(.consentRecorded(basis), actor: crew.rawValue)
        return snapshot()
    }

    /// Identifies the patient by a card-less lookup.
    public func lookup(_ query: PatientQuery, by crew: CrewID) async throws(WorkflowError) -> IncidentSnapshot {
        guard awaitsIdentification else {
            throw .conflict(reason: "the patient is already identified for this incident")
        }
        stageStart = .now
        let kind: Identification =
            switch query {
            case .demographics: .lookupByDemographics
            case .insurance: .lookupByInsurance
            }
        try await identified(.lookup(query), as: kind, actor: crew.rawValue)
        return snapshot()
    }

    /// Closes the incident and shreds what it holds.
    public func close(by crew: CrewID) async throws(WorkflowError) -> IncidentSnapshot {
        try await handle(.closedByCrew, actor: crew.rawValue)
        return snapshot()
    }

    // MARK: - The crew's observations

    /// Changes the crew's observations (chief complaint, vitals, priority, ETA, hospital…): `change` edits the
    /// current set, which is then checked, persisted with the state, audited (which parts changed, never the
    /// values) and published. Refused once the incident is closed; a set that does not check out changes nothing.
    public func updateObservations(
        by crew: CrewID,
        _ change: @Sendable (inout CrewObservations) -> Void
    ) async throws(WorkflowError) -> IncidentSnapshot {
        guard state.machine.phase != .closed else {
            throw .conflict(reason: "the incident is closed")
        }
        let before = state.observations ?? CrewObservations()
        var after = before
        change(&after)
        do {
            try after.validate()
        } catch {
            throw .invalidInput(error.reason)
        }
        guard after != before else { return snapshot() }
        state.observations = after
        try await persist()
        if state.handoff != nil {
            // The hospital gets the update (a new version of the document).
            await handleHandoff(.observationsChanged, actor: crew.rawValue)
        }
        do {
            try await effects.store.audit(
                .incidentStep(
                    incident: id,
                    step: "observations-recorded",
                    by: crew.rawValue,
                    terminal: configuration.terminalID,
                    outcome: Self.changedParts(before, after).joined(separator: ",")
                )
            )
        } catch {
            logger.error("the observations' audit entry could not be written")
        }
        publish()
        return snapshot()
    }

    /// Which parts of the observations changed, by name (the audit's outcome: no values).
    static func changedParts(_ before: CrewObservations, _ after: CrewObservations) -> [String] {
        var parts: [String] = []
        if before.chiefComplaint != after.chiefComplaint || before.complaintNote != after.complaintNote {
            parts.append("complaint")
        }
        if before.trauma != after.trauma { parts.append("trauma") }
        if before.onset != after.onset { parts.append("onset") }
        if before.priority != after.priority { parts.append("priority") }
        if before.vitals != after.vitals { parts.append("vitals") }
        if before.treatments != after.treatments { parts.append("treatments") }
        if before.etaMinutes != after.etaMinutes || before.etaRecordedAt != after.etaRecordedAt { parts.append("eta") }
        if before.hospital != after.hospital { parts.append("hospital") }
        return parts
    }

    // MARK: - The hospital handoff

    /// Sends the pre-arrival document to `code` (one of the terminal's hospitals): the first send, or another
    /// hospital after a divert or a change of mind (the first is then told). Updates follow each change of the
    /// observations until the patient arrives.
    public func sendHandoff(to code: HospitalCode, by crew: CrewID) async throws(WorkflowError) -> IncidentSnapshot {
        guard let handoffEffects = effects.handoff else {
            throw .conflict(reason: "this terminal has no receiving hospitals configured")
        }
        guard handoffEffects.hospitals[code] != nil else {
            throw .invalidInput("that hospital is not in this terminal's list")
        }
        guard state.machine.phase != .closed else { throw .conflict(reason: "the incident is closed") }
        var progress = state.handoff ?? HandoffProgress()
        let handoffEffectsToRun: [HandoffEffect]
        do {
            handoffEffectsToRun = try progress.machine.handle(.send(to: code))
        } catch {
            throw .conflict(reason: error.description)
        }
        state.handoff = progress
        var observations = state.observations ?? CrewObservations()
        observations.hospital = code
        state.observations = observations
        await runHandoff(handoffEffectsToRun, actor: crew.rawValue)
        return snapshot()
    }

    /// What the outbox should deliver now for `item`: the document's latest stored version (nil when `item` is
    /// superseded, already delivered, or the incident is gone).
    public func outboxPayload(_ item: OutboxItem) async -> OutboxPayload? {
        guard let progress = state.handoff, progress.outbox.contains(item), state.machine.phase != .closed else {
            return nil
        }
        switch item.kind {
        case .withdrawal:
            return .withdrawal(documentSet: progress.machine.documentSet)
        case .document(let version):
            guard version == progress.storedVersion, let versionID = progress.storedVersionID else { return nil }
            if let latestDocument, latestDocument.version == version {
                return .document(latestDocument.data, versionID: versionID, documentSet: progress.machine.documentSet)
            }
            do {
                guard
                    let data = try await effects.store.latest(
                        incident: id,
                        kind: .handoffDocument,
                        viewer: CrewID("device")!
                    )
                else { return nil }
                latestDocument = (version, data)
                return .document(data, versionID: versionID, documentSet: progress.machine.documentSet)
            } catch {
                logger.error("the document to send could not be read from the vault")
                return nil
            }
        }
    }

    /// The receiver took `item` (a document stored, or a withdrawal noted).
    public func outboxDelivered(_ item: OutboxItem) async {
        guard var progress = state.handoff, let index = progress.outbox.firstIndex(of: item) else { return }
        progress.outbox.remove(at: index)
        progress.problem = nil
        state.handoff = progress
        switch item.kind {
        case .document(let version):
            await handleHandoff(.delivered(version: version, hospital: item.hospital), actor: "device")
        case .withdrawal:
            await handleHandoff(.withdrawalDelivered(hospital: item.hospital), actor: "device")
        }
    }

    /// The outbox could not deliver `item`: it retries unless `final` (the receiver refused it for good, and the
    /// item is dropped). `problem` is shown to the crew as it is (no patient data).
    public func outboxProblem(_ item: OutboxItem, problem: String, final: Bool) async {
        guard var progress = state.handoff, let index = progress.outbox.firstIndex(of: item) else { return }
        if final { progress.outbox.remove(at: index) }
        guard progress.problem != problem || final else { return }
        progress.problem = problem
        state.handoff = progress
        await persistAndPublish()
    }

    /// The hospital's receiver reported where this incident's document stands there.
    public func hospitalReported(_ status: HandoffStatus, hospital: HospitalCode, divert: Divert?) async {
        guard state.handoff != nil, state.machine.phase != .closed else { return }
        await handleHandoff(.hospitalStatus(status, hospital: hospital, divert: divert), actor: "hospital")
    }

    /// The incident's document set, once the document was sent.
    public func documentSet() -> UUID? { state.handoff?.machine.documentSet }

    // MARK: - Placement requests (several hospitals at once)

    /// Starts a placement request to `codes` (the terminal's hospitals, in the crew's order) with `summary`, and
    /// returns it with the incident's document set (made now when nothing was sent yet, so that the document that
    /// follows the first acceptance carries the set the hospitals were asked about). Refused while a request is
    /// still open, after the handover and once the incident is closed. The caller sends the request to the hub and
    /// reports back through ``placementStored(_:answers:)`` and ``placementProblem(_:problem:final:)``.
    public func startPlacement(
        to codes: [HospitalCode],
        summary: PlacementSummary,
        by crew: CrewID
    ) async throws(WorkflowError) -> (snapshot: IncidentSnapshot, placement: PlacementProgress, documentSet: UUID) {
        guard let handoffEffects = effects.handoff else {
            throw .conflict(reason: "this terminal has no receiving hospitals configured")
        }
        guard !codes.isEmpty, codes.allSatisfy({ handoffEffects.hospitals[$0] != nil }) else {
            throw .invalidInput("a hospital is not in this terminal's list")
        }
        guard state.machine.phase != .closed else { throw .conflict(reason: "the incident is closed") }
        guard state.handoff?.machine.status != .arrived else {
            throw .conflict(reason: "the patient was already handed over")
        }
        if let open = state.placement, open.isOpen {
            throw .conflict(reason: "a placement request is already open for this incident")
        }
        let progress = state.handoff ?? HandoffProgress()
        state.handoff = progress
        let placement = PlacementProgress(hospitals: codes, summary: summary, requestedAt: effects.clock.now())
        state.placement = placement
        await auditPlacement(
            "placement-request",
            outcome: codes.map(\.rawValue).joined(separator: " "),
            actor: crew.rawValue
        )
        await persistAndPublish()
        return (snapshot(), placement, progress.machine.documentSet)
    }

    /// The crew withdraws the open placement request: the caller tells the hub, which cancels the hospitals still
    /// pending (unless one accepted meanwhile: ``placementCancelRefused(_:answers:)``).
    public func cancelPlacement(by crew: CrewID) async throws(WorkflowError) -> (
        snapshot: IncidentSnapshot, placement: PlacementProgress
    ) {
        guard state.machine.phase != .closed else { throw .conflict(reason: "the incident is closed") }
        guard var placement = state.placement, placement.isOpen else {
            throw .conflict(reason: "no placement request is open for this incident")
        }
        placement.cancelRequested = true
        state.placement = placement
        await auditPlacement("placement-cancel", outcome: nil, actor: crew.rawValue)
        await persistAndPublish()
        return (snapshot(), placement)
    }

    /// The hub holds request `placement` (stored, or cancelled as asked), with these answers.
    public func placementStored(_ placement: UUID, answers: [HospitalCode: PlacementAnswer]) async {
        guard var progress = state.placement, progress.id == placement else { return }
        let before = progress.acceptedBy
        progress.stored = true
        progress.problem = nil
        for code in progress.hospitals {
            if let answer = answers[code] { progress.record(answer, for: code) }
        }
        state.placement = progress
        await afterPlacementChange(acceptedBefore: before)
    }

    /// The hub refused to cancel request `placement` (a hospital accepted first); `answers` is its view, when read.
    public func placementCancelRefused(_ placement: UUID, answers: [HospitalCode: PlacementAnswer]) async {
        guard var progress = state.placement, progress.id == placement else { return }
        let before = progress.acceptedBy
        progress.cancelRequested = false
        progress.problem = "a hospital accepted before the request could be withdrawn"
        for code in progress.hospitals {
            if let answer = answers[code] { progress.record(answer, for: code) }
        }
        state.placement = progress
        await afterPlacementChange(acceptedBefore: before)
    }

    /// The hub could not be reached for request `placement` (it is tried again unless `final`), or refused it for
    /// good (`final`: the request is over, every hospital still pending counts as cancelled). `problem` is shown
    /// to the crew as it is (no patient data).
    public func placementProblem(_ placement: UUID, problem: String, final: Bool) async {
        guard var progress = state.placement, progress.id == placement else { return }
        guard progress.problem != problem || final else { return }
        progress.problem = problem
        if final, !progress.stored {
            for code in progress.hospitals { progress.record(.cancelled, for: code) }
        }
        state.placement = progress
        await persistAndPublish()
    }

    /// A hospital answered request `placement` (from the hub's event stream). The first acceptance makes that
    /// hospital the destination, exactly as the crew's own pick does (``sendHandoff(to:by:)``): the document is built
    /// and queued for it.
    public func placementAnswered(
        _ placement: UUID,
        hospital: HospitalCode,
        answer: PlacementAnswer,
        divert: Divert?,
        at time: Date?
    ) async {
        guard state.machine.phase != .closed, var progress = state.placement, progress.id == placement else { return }
        let before = progress.acceptedBy
        guard progress.record(answer, for: hospital, divert: divert, at: time) else { return }
        state.placement = progress
        await auditPlacement(
            "placement-\(answer.rawValue)",
            outcome: [hospital.rawValue, divert?.reason.rawValue].compactMap { $0 }.joined(separator: " "),
            actor: "hospital"
        )
        await afterPlacementChange(acceptedBefore: before)
    }

    /// The latest placement request, if any.
    public func placement() -> PlacementProgress? { state.placement }

    private func afterPlacementChange(acceptedBefore: HospitalCode?) async {
        guard acceptedBefore == nil, let accepted = state.placement?.acceptedBy else {
            await persistAndPublish()
            return
        }
        var progress = state.handoff ?? HandoffProgress()
        if progress.machine.hospital == accepted, progress.machine.status != .diverted {
            await persistAndPublish()
            return
        }
        let handoffEffectsToRun: [HandoffEffect]
        do {
            handoffEffectsToRun = try progress.machine.handle(.send(to: accepted))
        } catch {
            logger.warning("an accepted placement could not become the destination")
            await persistAndPublish()
            return
        }
        state.handoff = progress
        var observations = state.observations ?? CrewObservations()
        observations.hospital = accepted
        state.observations = observations
        await runHandoff(handoffEffectsToRun, actor: "hospital")
    }

    private func auditPlacement(_ step: String, outcome: String?, actor: String) async {
        do {
            try await effects.store.audit(
                .incidentStep(
                    incident: id,
                    step: step,
                    by: actor,
                    terminal: configuration.terminalID,
                    outcome: outcome
                )
            )
        } catch {
            logger.error("a placement step could not be audited")
        }
    }

    private func handleHandoff(_ event: HandoffEvent, actor: String) async {
        guard var progress = state.handoff else { return }
        let handoffEffectsToRun: [HandoffEffect]
        do {
            handoffEffectsToRun = try progress.machine.handle(event)
        } catch {
            logger.debug("handoff event not applicable", metadata: ["kyukyu.handoff.event": "\(event.name)"])
            return
        }
        state.handoff = progress
        await runHandoff(handoffEffectsToRun, actor: actor)
    }

    private func runHandoff(_ handoffEffectsToRun: [HandoffEffect], actor: String) async {
        var queued: [OutboxItem] = []
        var handedOver = false
        for effect in handoffEffectsToRun {
            switch effect {
            case .audit(let event):
                await auditHandoff(event, actor: actor)
            case .buildAndQueue(let version, let hospital):
                if let item = await buildDocument(version: version, for: hospital, actor: actor) { queued.append(item) }
            case .withdraw(let hospital):
                let item = OutboxItem(
                    incident: id,
                    hospital: hospital,
                    kind: .withdrawal,
                    queuedAt: effects.clock.now()
                )
                state.handoff?.outbox.append(item)
                queued.append(item)
            case .handedOver:
                handedOver = true
            }
        }
        // Kept before it is queued: a restart finds what is still to go.
        await persistAndPublish()
        if let outbox = effects.handoff?.outbox {
            for item in queued { await outbox.enqueue(item) }
        }
        if handedOver { try? await handle(.handedOver, actor: "hospital") }
    }

    /// Builds version `version` from what the vault holds, keeps it in the vault, and returns its outbox item
    /// (earlier versions for the same hospital still waiting are superseded by it).
    private func buildDocument(version: Int, for code: HospitalCode, actor: String) async -> OutboxItem? {
        guard let handoffEffects = effects.handoff, let hospital = handoffEffects.hospitals[code],
            var progress = state.handoff
        else { return nil }
        var anchor: AuditAnchor?
        do {
            anchor = try await effects.store.auditHead().map(AuditAnchor.init)
        } catch {
            logger.warning("the audit head could not be read for the document's anchor")
        }
        let versionID = UUID()
        let request = HandoffBuildRequest(
            documentSet: progress.machine.documentSet,
            version: version,
            versionID: versionID,
            previousVersionID: progress.storedVersionID,
            builtAt: effects.clock.now(),
            dataAsOf: state.recordsAsOf,
            records: records,
            categoryStatus: state.categories.compactMapValues { $0.status.rawValue }
                .reduce(into: [:]) { result, entry in
                    if let category = MedicalCategory(rawValue: entry.key) { result[category] = entry.value }
                },
            observations: state.observations ?? CrewObservations(),
            consent: state.machine.consent,
            crewID: state.crewID ?? actor,
            terminalID: configuration.terminalID,
            hospital: hospital,
            anchor: anchor
        )
        do {
            let document = try handoffEffects.builder.build(request)
            try await effects.store.put(document, kind: .handoffDocument, incident: id, now: effects.clock.now())
            latestDocument = (version, document)
        } catch {
            logger.error("the document could not be built or kept")
            progress.problem = "the document could not be built; the crew can send it again"
            state.handoff = progress
            return nil
        }
        progress.storedVersion = version
        progress.storedVersionID = versionID
        let item = OutboxItem(
            incident: id,
            hospital: code,
            kind: .document(version: version),
            queuedAt: effects.clock.now()
        )
        progress.outbox.removeAll { $0.hospital == code && $0.kind != .withdrawal }
        progress.outbox.append(item)
        state.handoff = progress
        return item
    }

    private func auditHandoff(_ event: HandoffEvent, actor: String) async {
        var outcome: String?
        switch event {
        case .send(let hospital): outcome = hospital.rawValue
        case .delivered(let version, let hospital): outcome = "\(hospital.rawValue) v\(version)"
        case .hospitalStatus(_, let hospital, let divert):
            outcome = [hospital.rawValue, divert?.reason.rawValue].compactMap { $0 }.joined(separator: " ")
        case .withdrawalDelivered(let hospital): outcome = hospital.rawValue
        case .observationsChanged: break
        }
        do {
            try await effects.store.audit(
                .incidentStep(
                    incident: id,
                    step: event.name,
                    by: actor,
                    terminal: configuration.terminalID,
                    outcome: outcome
                )
            )
        } catch {
            logger.error("a handoff step could not be audited")
        }
    }

    // MARK: - The card

    /// A card touched the reader while this incident waits for identification: reads it (no tap). A token that
    /// needs a PIN stops at ``CardProgress/State/pinRequired`` with the tries left; ``submitPIN(_:confirmLastTry:card:by:)``
    /// goes on. A card removed mid-read is shown as such and read again when it comes back.
    /// Returns the card's error when the read failed (the state says it in words too).
    @discardableResult
    public func cardTouched(_ card: any PatientCard) async -> (any Error)? {
        guard awaitsIdentification else { return nil }
        defer { wakeReadWaiters() }
        stageStart = .now
        state.card.state = .reading
        state.card.reason = nil
        await persistAndPublish()
        stage("card reading shown")
        do {
            let incident = id
            let outcome = try await withSpan("card.read") { span in
                span.attributes["kyukyu.incident"] = "\(incident)"
                return try await card.withCard { access -> CardOutcome in
                    let type = try await access.tokenType()
                    switch type {
                    case .android:
                        return .needsPIN(type, triesLeft: try await access.triesLeft())
                    case .iphone:
                        await self.approvalOnPhone(type)
                        return .certificate(type, try await access.authenticationCertificate())
                    case .individualNumberCard, .jukiCard:
                        return .certificate(type, try await access.authenticationCertificate())
                    }
                }
            }
            stage("card read")
            switch outcome {
            case .needsPIN(let type, let triesLeft):
                state.card = CardProgress()
                state.card.state = .pinRequired
                state.card.tokenType = type
                state.card.triesLeft = triesLeft
                if triesLeft == 0 {
                    state.card.state = .failed
                    state.card.reason = WorkflowError.pinLocked().reason
                    countPINGuardRefusal("locked")
                }
                countCardRead(type, outcome: triesLeft == 0 ? "pin-locked" : "pin-required")
                await persistAndPublish()
            case .certificate(let type, let der):
                try await cardIdentified(type, der: der)
            }
            return nil
        } catch let error as WorkflowError {
            logger.warning("card identification failed", metadata: ["kyukyu.error": "\(error.kind.rawValue)"])
            return error
        } catch {
            await cardFailed(error)
            return error
        }
    }

    /// The holder entered the PIN of an Android credential: verifies it once (the card module asks the tries
    /// left first and never retries) and reads the certificate.
    public func submitPIN(
        _ pin: String,
        confirmLastTry: Bool,
        card: any PatientCard,
        by crew: CrewID
    ) async throws(WorkflowError) -> IncidentSnapshot {
        guard awaitsIdentification, state.card.state == .pinRequired else {
            throw .conflict(reason: "no PIN is asked for now")
        }
        return try await readWithPIN(pin, confirmLastTry: confirmLastTry, card: card)
    }

    /// PIN mode, whatever the credential: verifies the holder's PIN once (tries asked first, never retried), reads
    /// the certificate and, with consent recorded, has the card sign onshi's nonce before it is released. For
    /// `kyukyu fetch --pin-stdin` and a terminal configured for PIN mode.
    public func identifyWithPIN(
        _ pin: String,
        confirmLastTry: Bool,
        card: any PatientCard,
        by crew: CrewID
    ) async throws(WorkflowError) -> IncidentSnapshot {
        guard awaitsIdentification else { throw .conflict(reason: "the patient is already identified") }
        return try await readWithPIN(pin, confirmLastTry: confirmLastTry, card: card)
    }

    private func readWithPIN(
        _ pin: String,
        confirmLastTry: Bool,
        card: any PatientCard
    ) async throws(WorkflowError) -> IncidentSnapshot {
        guard pin.count == 4, pin.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw .invalidInput("the PIN is 4 digits")
        }
        state.card.state = .reading
        await persistAndPublish()
        let result: Result<(TokenType, [UInt8], Bool), any Error>
        do {
            let incident = id
            let read = try await withSpan("card.read") { span in
                span.attributes["kyukyu.incident"] = "\(incident)"
                span.attributes["kyukyu.card.pin"] = "verify"
                return try await card.withCard { access -> (TokenType, [UInt8], Bool) in
                    let type = try await access.tokenType()
                    try await access.verify(pin: pin, confirmLastTry: confirmLastTry)
                    let der = try await access.authenticationCertificate()
                    // With consent recorded the fetch starts now: the card signs onshi's nonce while it is here.
                    guard await self.consentRecorded else { return (type, der, false) }
                    try await self.identifiedOnCard(type, der: der, access: access)
                    return (type, der, true)
                }
            }
            result = .success(read)
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let (type, der, alreadyIdentified)):
            if !alreadyIdentified { try await cardIdentified(type, der: der) }
            return snapshot()
        case .failure(let error as CardError):
            state.card.state = .pinRequired
            switch error.code {
            case .wrongPIN:
                state.card.triesLeft = error.triesLeft
                await persistAndPublish()
                throw .wrongPIN(triesLeft: error.triesLeft)
            case .lastTryNeedsConfirmation:
                countPINGuardRefusal("last-try-unconfirmed")
                state.card.triesLeft = 1
                await persistAndPublish()
                throw .pinLastTry()
            case .pinLocked:
                countPINGuardRefusal("locked")
                state.card.state = .failed
                state.card.triesLeft = 0
                state.card.reason = WorkflowError.pinLocked().reason
                await persistAndPublish()
                throw .pinLocked()
            case .invalidPINFormat:
                await persistAndPublish()
                throw .invalidInput("the PIN is 4 digits")
            default:
                await cardFailed(error)
                throw .card(error.reason, underlying: error)
            }
        case .failure(let error):
            await cardFailed(error)
            throw .card("the card could not be read")
        }
    }

    private var consentRecorded: Bool { state.machine.consent != nil }

    /// Identifies the patient with the card still in the session, so that the fetch's authentication is in PIN mode
    /// (the card signs onshi's nonce); returns once authentication has settled, and the card can go.
    private func identifiedOnCard(_ type: TokenType, der: [UInt8], access: any CardAccess) async throws(WorkflowError) {
        signer = { nonce in
            try await access.signWithAuthenticationKey(sha256: Array(SHA256.hash(data: nonce)))
        }
        defer { signer = nil }
        try await cardIdentified(type, der: der)
        if let currentFetch { _ = await currentFetch.authentication() }
    }

    private enum CardOutcome: Sendable {
        case needsPIN(TokenType, triesLeft: Int)
        case certificate(TokenType, [UInt8])
    }

    /// Waits until the card read in flight ends, or `limit` passes.
    private func readEnded(within limit: Duration) async {
        let id = UUID()
        let timer = Task {
            try? await Task.sleep(for: limit)
            self.wakeReadWaiter(id)
        }
        await withCheckedContinuation { continuation in
            if [.reading, .approveOnPhone].contains(state.card.state) {
                readWaiters[id] = continuation
            } else {
                continuation.resume()
            }
        }
        timer.cancel()
    }

    private func wakeReadWaiter(_ id: UUID) {
        readWaiters.removeValue(forKey: id)?.resume()
    }

    private func wakeReadWaiters() {
        let waiters = readWaiters.values
        readWaiters = [:]
        for waiter in waiters { waiter.resume() }
    }

    private func approvalOnPhone(_ type: TokenType) async {
        state.card.state = .approveOnPhone
        state.card.tokenType = type
        await persistAndPublish()
    }

    private func cardFailed(_ error: any Error) async {
        if let card = error as? CardError, [.cardRemoved, .noCard, .cardUnresponsive].contains(card.code) {
            state.card.state = .removed
            state.card.reason = "the card left the reader: touch it again to go on"
        } else if let card = error as? CardError {
            state.card.state = .failed
            state.card.reason = card.reason
        } else {
            state.card.state = .failed
            state.card.reason = "the card could not be read"
        }
        logger.notice("card read stopped", metadata: ["kyukyu.card.state": "\(state.card.state.rawValue)"])
        countCardRead(state.card.tokenType, outcome: state.card.state.rawValue)
        await persistAndPublish()
    }

    /// Counts a card read by the credential's type and how it ended (identified, pin-required, pin-locked, removed,
    /// failed).
    private func countCardRead(_ type: TokenType?, outcome: String) {
        Counter(
            label: "kyukyu_card_reads_total",
            dimensions: [("credential", type?.rawValue ?? "unknown"), ("outcome", outcome)],
            factory: configuration.metrics
        ).increment()
    }

    /// Counts a VERIFY the PIN guard did not send: the last try without the holder's confirmation, or a locked PIN.
    private func countPINGuardRefusal(_ reason: String) {
        Counter(
            label: "kyukyu_pin_guard_refusals_total",
            dimensions: [("reason", reason)],
            factory: configuration.metrics
        ).increment()
    }

    private func cardIdentified(_ type: TokenType, der: [UInt8]) async throws(WorkflowError) {
        countCardRead(type, outcome: "identified")
        state.card.state = .read
        state.card.tokenType = type
        state.card.triesLeft = nil
        state.card.reason = nil
        try await identified(.certificate(der: Data(der)), as: .card(type), actor: "device")
    }

    private func identified(_ stored: StoredIdentity, as kind: Identification, actor: String)
        async throws(WorkflowError)
    {
        var probe = state.machine
        do {
            _ = try probe.handle(.patientIdentified(kind))
        } catch {
            throw .conflict(error)
        }
        try await keep(stored, as: .identity, failure: "the vault could not keep the identification")
        stage("identification kept")
        identity = stored
        try await handle(.patientIdentified(kind), actor: actor)
    }

    // MARK: - The machine and its effects

    private func handle(_ event: IncidentEvent, actor: String) async throws(WorkflowError) {
        var next = state.machine
        let effectsToRun: [IncidentEffect]
        do {
            effectsToRun = try next.handle(event)
        } catch {
            throw .conflict(error)
        }
        if next.phase == .closed {
            // Nobody sees the incident closed before it is shredded: the fetch stops and the vault forgets it first
            // (this actor may serve a reader while the shred is awaited). The close often comes from the fetch or a
            // timer task that the close itself cancels (onshi's refusal, consent running out): the shred and the
            // audit run in a task of their own, or the vault would refuse to write for a cancelled task.
            let closing = Task {
                for effect in effectsToRun where !Self.isAudit(effect) { await run(effect, actor: actor) }
                state.machine = next
                for effect in effectsToRun where Self.isAudit(effect) { await run(effect, actor: actor) }
            }
            await closing.value
        } else {
            state.machine = next
            for effect in effectsToRun { await run(effect, actor: actor) }
        }
        if state.machine.phase != .closed {
            await persistAndPublish()
        } else {
            state.version += 1
            publish()
            for continuation in subscribers.values { continuation.finish() }
            subscribers = [:]
        }
    }

    private static func isAudit(_ effect: IncidentEffect) -> Bool {
        if case .audit = effect { return true }
        return false
    }

    private func run(_ effect: IncidentEffect, actor: String) async {
        switch effect {
        case .audit(let event):
            await audit(event, actor: actor)
        case .startFetch(let attempt):
            await startFetch(attempt: attempt)
        case .scheduleRetry(let delay, let attempt):
            scheduleRetry(after: delay, attempt: attempt)
        case .cancelFetch:
            stopWork()
        case .shred(let reason):
            // Late categories may still be on their way after the summary: stop them before the vault forgets.
            stopWork()
            // What the hospitals are still owed leaves the incident before it is forgotten.
            if let progress = state.handoff, let outbox = effects.handoff?.outbox {
                let notices = progress.noticesOnClose(reason, at: effects.clock.now())
                if !notices.isEmpty { await outbox.notify(notices) }
            }
            // So are the hospitals still asked to take the patient: the request is withdrawn at the hub.
            if let placement = state.placement, placement.acceptedBy == nil,
                placement.entries.contains(where: { $0.answer == .pending }),
                let withdrawing = effects.handoff?.placements
            {
                await withdrawing.withdraw(placement.id, from: placement.hospitals, of: id)
                await auditPlacement("placement-withdrawn", outcome: reason.rawValue, actor: actor)
            }
            summary = nil
            records = [:]
            identity = nil
            latestDocument = nil
            state.retry = nil
            do {
                try await effects.store.shred(incident: id, reason: PurgeReason(rawValue: reason.rawValue))
            } catch {
                logger.error("the incident could not be shredded; the vault's purge will retry")
            }
        }
    }

    private func audit(_ event: IncidentEvent, actor: String) async {
        var consent: ConsentBasis?
        var outcome: String?
        var categories: [MedicalCategory] = []
        switch event {
        case .consentRecorded(let basis): consent = basis
        case .patientIdentified(let kind): outcome = kind.label
        case .fetchDeferred(let reason): outcome = reason.rawValue
        case .summaryShown(let complete):
            outcome = complete ? "complete" : "partial"
            categories = configuration.categories.filter { state[$0]?.status == .arrived }
        case .authenticationRefused(let refusal): outcome = refusal.rawValue
        case .retryDue, .consentExpired, .closedByCrew, .handedOver: break
        }
        do {
            try await effects.store.audit(
                .incidentStep(
                    incident: id,
                    step: event.name,
                    by: actor,
                    terminal: configuration.terminalID,
                    consent: consent ?? (event.name == "summary-shown" ? state.machine.consent : nil),
                    outcome: outcome,
                    categories: categories,
                    attempt: state.machine.fetchAttempts > 0 ? state.machine.fetchAttempts : nil
                )
            )
        } catch {
            logger.error("an audit entry could not be written", metadata: ["kyukyu.step": "\(event.name)"])
        }
    }

    private func scheduleRetry(after delay: Duration, attempt: Int) {
        let clock = effects.clock
        let now = clock.now()
        state.retry = RetryProgress(
            reason: state.machine.deferral ?? .noNetwork,
            attempt: attempt,
            nextAttemptAt: now.addingTimeInterval(
                Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
            )
        )
        let due = clock.timer(after: delay)
        retryTask?.cancel()
        retryTask = Task {
            do {
                try await due()
            } catch {
                return
            }
            await self.retryDue()
        }
    }

    /// Closes the incident when onshi's consent runs out (its availability period, e.g. 24 hours).
    private func scheduleConsentExpiry() {
        guard let until = state.consentAvailableUntil else { return }
        let clock = effects.clock
        let delay = until.timeIntervalSince(clock.now())
        let due = delay > 0 ? clock.timer(after: .milliseconds(Int64(delay * 1000))) : nil
        expiryTask?.cancel()
        expiryTask = Task {
            if let due {
                do {
                    try await due()
                } catch {
                    return
                }
            }
            await self.consentExpired()
        }
    }

    private func consentExpired() async {
        guard state.machine.phase != .closed else { return }
        try? await handle(.consentExpired, actor: "device")
    }

    private func retryDue() async {
        guard state.machine.phase == .retryPending else { return }
        state.retry = nil
        try? await handle(.retryDue, actor: "device")
    }

    // MARK: - Fetching

    private func startFetch(attempt: Int, only: [MedicalCategory]? = nil) async {
        guard let identity, let consent = state.machine.consent else {
            logger.error("a fetch is due but the identification is missing")
            return
        }
        state.retry = nil
        state.authentication = AuthenticationProgress()
        state.authentication.status = .pending
        for category in configuration.categories where state[category]?.isSettled != true || !summaryShown {
            if state[category] == nil || state[category]?.status != .arrived && state[category]?.status != .late {
                state[category] = CategoryProgress(status: .pending)
            }
        }
        let patientIdentity: PatientIdentity
        if let signer, case .certificate(let der) = identity {
            patientIdentity = .pin(certificateDER: Array(der), signNonce: signer)
        } else {
            patientIdentity = identity.patientIdentity
        }
        let fetch = effects.fetching.fetch(
            patientIdentity,
            crewID: state.crewID ?? "device",
            consent: consent,
            categories: only ?? configuration.categories,
            deadlines: configuration.deadlines
        )
        fetchTask?.cancel()
        currentFetch = fetch
        fetchTask = Task { await self.follow(fetch, attempt: attempt) }
    }

    private func follow(_ fetch: PatientFetch, attempt: Int) async {
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    let snapshot = await fetch.snapshotAtDeadline()
                    await self.deadlineReached(snapshot, attempt: attempt)
                }
                for await update in fetch.updates {
                    if case .category(let category, let status) = update {
                        self.enqueue(category, status, attempt: attempt)
                    } else {
                        await self.stored()
                        await self.apply(update, attempt: attempt)
                    }
                }
            }
            await self.stored()
            guard !Task.isCancelled else { return }
            await self.fetchSettled(await fetch.completion(), attempt: attempt)
            self.release(fetch)
        } onCancel: {
            fetch.cancel()
        }
    }

    /// Queues a category's update; a task stores the queue, taking everything that arrived meanwhile each time.
    private func enqueue(_ category: MedicalCategory, _ status: CategoryStatus, attempt: Int) {
        inbox.append((category, status, attempt))
        guard storing == nil else { return }
        storing = Task {
            while !self.inbox.isEmpty {
                let batch = self.inbox
                self.inbox = []
                self.beingStored = batch.map(\.status)
                await self.categoriesChanged(batch)
                self.beingStored = []
            }
            self.storing = nil
        }
    }

    /// How many final category updates are being stored or wait to be (for tests of the batching).
    func finalCategoryUpdatesInFlight() -> Int {
        (beingStored + inbox.map(\.status)).filter(\.isFinal).count
    }

    /// Returns when every queued category update has been stored and published.
    private func stored() async {
        while let storing { await storing.value }
    }

    /// Lets go of a settled fetch: it holds every answer it decoded, and the records now live in the vault.
    private func release(_ fetch: PatientFetch) {
        if currentFetch === fetch { currentFetch = nil }
    }

    /// Categories that failed for a reason that may pass (no network, onshi down, the breaker open) are asked
    /// for again on the retry schedule while the incident is open: reading during transport, where the network
    /// comes and goes. The summary stays on the screen meanwhile.
    private func fetchSettled(_ snapshot: FetchSnapshot, attempt: Int) async {
        guard isCurrent(attempt), state.machine.phase == .summary, snapshot.session != nil else { return }
        // A dead zone's failures only: a category onshi was too slow for stays timed out (asking again would
        // record another viewing for each try while onshi stalls).
        let transient = configuration.categories.filter { category in
            guard case .failed(let code, _, _) = snapshot.categories[category] else { return false }
            return [.unreachable, .connectionLost, .serverError, .rateLimited, .maintenance, .circuitOpen]
                .contains(code)
        }
        guard !transient.isEmpty else {
            categoryRetries = 0
            if state.retry != nil {
                state.retry = nil
                await persistAndPublish()
            }
            return
        }
        categoryRetries += 1
        let delay = configuration.retrySchedule.delay(afterAttempt: categoryRetries)
        let reason: FetchDeferral =
            transient.contains { category in
                if case .failed(.maintenance, _, _) = snapshot.categories[category] { return true }
                return false
            } ? .maintenance : .noNetwork
        let clock = effects.clock
        state.retry = RetryProgress(
            reason: reason,
            attempt: categoryRetries,
            nextAttemptAt: clock.now().addingTimeInterval(
                Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
            )
        )
        for category in transient { state[category]?.status = .retrying }
        // The retry is due `delay` after now, however late its task starts (the state says when).
        let due = clock.timer(after: delay)
        retryTask?.cancel()
        retryTask = Task {
            do {
                try await due()
            } catch {
                return
            }
            await self.retryCategories(transient, attempt: attempt)
        }
        await persistAndPublish()
    }

    private func retryCategories(_ categories: [MedicalCategory], attempt: Int) async {
        guard isCurrent(attempt), state.machine.phase == .summary else { return }
        await startFetch(attempt: attempt, only: categories)
    }

    private func isCurrent(_ attempt: Int) -> Bool {
        state.machine.fetchAttempts == attempt && [.fetching, .summary].contains(state.machine.phase)
    }

    private func apply(_ update: FetchUpdate, attempt: Int) async {
        guard isCurrent(attempt) else { return }
        switch update {
        case .authenticated(let session, _):
            state.authentication.status = .ok
            state.authentication.reason = nil
            state.authentication.qualificationValidity = session.qualificationValidity
            if let until = session.consent?.availableUntil {
                state.consentAvailableUntil = until
                scheduleConsentExpiry()
            }
            stage("onshi authenticated")
            await persistAndPublish()
        case .authenticationFailed(let code, let reason, _):
            await authenticationFailed(code, reason: reason)
        case .category(let category, let status):
            await categoriesChanged([(category, status, attempt)])
        }
    }

    private func authenticationFailed(_ code: EligibilityError.Code, reason: String) async {
        let event: IncidentEvent
        switch code {
        case .cancelled:
            return
        case .consentRefused:
            event = .authenticationRefused(.consentRefused)
        case .certificateProblem:
            event = .authenticationRefused(.certificateProblem)
        case .notFound:
            event = .authenticationRefused(.notFound)
        case .signingFailed:
            event = .authenticationRefused(.cardFailed)
        case .unreachable, .connectionLost, .timedOut:
            event = .fetchDeferred(.noNetwork)
        case .maintenance:
            event = .fetchDeferred(.maintenance)
        case .circuitOpen:
            event = .fetchDeferred(.breakerOpen)
        default:
            event = .fetchDeferred(.onshiError)
        }
        if case .authenticationRefused = event {
            state.authentication.status = .refused
            if code != .consentRefused {
                state.card = CardProgress()
                state.card.reason = reason
            }
        } else {
            // Not a failure of the patient's identity: it is tried again (the incident's retry says when).
            state.authentication.status = .pending
        }
        state.authentication.reason = reason
        state.authentication.code = code.description
        for category in configuration.categories where state[category]?.isSettled != true {
            state[category] = nil
        }
        try? await handle(event, actor: "device")
    }

    /// Stores the records that arrived, with the incident's new state, in one write, reads them back and publishes
    /// the state and the summary rebuilt from what the store returned.
    private func categoriesChanged(_ batch: [(category: MedicalCategory, status: CategoryStatus, attempt: Int)]) async {
        let current = batch.filter { isCurrent($0.attempt) }
        guard !current.isEmpty else { return }
        var arrived: [(kind: RecordKind, payload: Data)] = []
        var arrivedCategories: [MedicalCategory] = []
        for (category, status, _) in current {
            if case .ok(let records, _) = status {
                stage("category arrived", category)
                do {
                    arrived.append((RecordKind(category), try JSONEncoder().encode(records)))
                    arrivedCategories.append(category)
                } catch {
                    state[category] = CategoryProgress(status: .failed, reason: "the records could not be encoded")
                    continue
                }
            }
            state[category] = progress(category, status)
        }
        state.version += 1
        let encodedState: Data
        do {
            encodedState = try JSONEncoder().encode(state)
        } catch {
            logger.error("the incident's state could not be encoded")
            return
        }
        let viewer = state.crewID.flatMap(CrewID.init) ?? CrewID("device")!
        let readBack: [RecordKind: Data]
        do {
            readBack = try await effects.store.put(
                arrived + [(RecordKind.incidentState, encodedState)],
                readingBack: Set(arrived.map(\.kind)),
                incident: id,
                viewer: viewer,
                now: effects.clock.now()
            )
        } catch {
            logger.error("the vault could not store the records that arrived")
            for category in arrivedCategories {
                state[category] = CategoryProgress(status: .failed, reason: "the vault could not store it")
            }
            await persistAndPublish()
            return
        }
        for category in arrivedCategories {
            guard let data = readBack[RecordKind(category)],
                let decoded = try? JSONDecoder().decode(CategoryRecords.self, from: data)
            else {
                logger.error("a stored category could not be read back", metadata: ["kyukyu.category": "\(category)"])
                continue
            }
            records[category] = decoded
        }
        if !arrivedCategories.isEmpty {
            summary = PatientSummary(records: records, today: OnshiDate(japanDayOf: effects.clock.now()))
            state.recordsAsOf = effects.clock.now()
        }
        guard state.machine.phase != .closed else { return }
        publish()
        stage("categories stored, read back and published: \(current.count)")
    }

    /// What the tablet is told of a category's status.
    private func progress(_ category: MedicalCategory, _ status: CategoryStatus) -> CategoryProgress {
        let late = summaryShown && !settledAtDeadline.contains(category)
        switch status {
        case .pending:
            return CategoryProgress(status: .pending)
        case .retrying(_, let reason):
            return CategoryProgress(status: .retrying, reason: reason)
        case .ok(let records, let elapsed):
            return CategoryProgress(
                status: late ? .late : .arrived,
                milliseconds: Self.milliseconds(elapsed),
                count: records.count
            )
        case .empty(let elapsed):
            return CategoryProgress(status: .noneOnRecord, milliseconds: Self.milliseconds(elapsed), count: 0)
        case .timedOut(let after):
            return CategoryProgress(
                status: .timedOut,
                reason: "onshi did not answer within \(Self.milliseconds(after)) ms",
                milliseconds: Self.milliseconds(after)
            )
        case .cancelled(let after):
            return CategoryProgress(status: .cancelled, milliseconds: Self.milliseconds(after))
        case .failed(let code, let reason, let elapsed):
            return CategoryProgress(
                status: .failed,
                reason: reason,
                milliseconds: Self.milliseconds(elapsed),
                code: code.description
            )
        }
    }

    /// Logs (debug) how long after the card touched the reader a stage was reached: where the time between the
    /// card and the summary goes. No patient data: the stage's name and the category only.
    private func stage(_ name: @autoclosure () -> String, _ category: MedicalCategory? = nil) {
        guard logger.logLevel <= .debug, let stageStart else { return }
        let elapsed = ContinuousClock.now - stageStart
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var metadata: Logger.Metadata = ["kyukyu.stage.ms": "\((milliseconds * 100).rounded() / 100)"]
        if let category { metadata["kyukyu.category"] = "\(category)" }
        logger.debug("stage: \(name())", metadata: metadata)
    }

    private func deadlineReached(_ snapshot: FetchSnapshot, attempt: Int) async {
        // What arrived before the deadline is stored (and its status shown) before the summary is.
        await stored()
        guard isCurrent(attempt), state.machine.phase == .fetching, snapshot.session != nil else { return }
        summaryShown = true
        stage("summary shown")
        settledAtDeadline = Set(snapshot.categories.filter { $0.value.isFinal }.keys)
        try? await handle(.summaryShown(complete: snapshot.isComplete), actor: "device")
    }

    static func decode(_ stored: [RecordKind: Data]) -> [MedicalCategory: CategoryRecords] {
        var categories: [MedicalCategory: CategoryRecords] = [:]
        for (kind, data) in stored {
            guard let category = kind.category,
                let decoded = try? JSONDecoder().decode(CategoryRecords.self, from: data)
            else { continue }
            categories[category] = decoded
        }
        return categories
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    // MARK: - Persistence

    private func persist() async throws(WorkflowError) {
        state.version += 1
        try await keep(state, as: .incidentState, failure: "the vault could not keep the incident's state")
    }

    /// Stores `value` (JSON) as a new version of `kind` in the vault.
    private func keep(_ value: some Encodable, as kind: RecordKind, failure: String) async throws(WorkflowError) {
        do {
            let data = try JSONEncoder().encode(value)
            try await withSpan("vault.write") { span in
                span.attributes["kyukyu.incident"] = "\(id)"
                span.attributes["kyukyu.vault.record"] = "\(kind)"
                try await effects.store.put(data, kind: kind, incident: id, now: effects.clock.now())
            }
        } catch {
            throw .storage(failure)
        }
    }

    private func persistAndPublish() async {
        guard state.machine.phase != .closed else { return }
        do {
            try await persist()
        } catch {
            logger.error("the incident's state could not be persisted")
        }
        publish()
    }

    private func publish() {
        let current = snapshot()
        for continuation in subscribers.values { continuation.yield(current) }
    }
}

/// The incident as the tablet sees it at one moment: its state and, while it is open, the summary read back from
/// the vault.
public struct IncidentSnapshot: Sendable, Hashable {
    /// The state.
    public var state: IncidentState
    /// The summary, once records arrived (nil after the close).
    public var summary: PatientSummary?
}
