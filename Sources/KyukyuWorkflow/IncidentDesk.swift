public import Foundation
public import KyukyuDomain
public import KyukyuIncident
public import KyukyuVault
public import Logging

/// Every incident of this gateway, and which one the next card touched to the reader is read for.
///
/// One tablet per ambulance: the incident the crew opened last (or took from dispatch) is the active one.
/// ``restore(viewer:)`` picks every open incident up from the store after a restart.
public actor IncidentDesk {
    private var runners: [IncidentID: IncidentRunner] = [:]
    private var order: [IncidentID] = []
    private var activeID: IncidentID?
    private let effects: WorkflowEffects
    private let configuration: WorkflowConfiguration
    private let logger: Logger
    /// Each time an incident becomes the active one: the reader monitor reads a card that already lies on the
    /// reader for it (a card placed before the crew opened the incident needs no second touch).
    public nonisolated let activations: AsyncStream<IncidentID>
    private let activationsContinuation: AsyncStream<IncidentID>.Continuation

    /// Makes an empty desk; nothing starts until ``restore(viewer:)`` or an action.
    public init(effects: WorkflowEffects, configuration: WorkflowConfiguration, logger: Logger) {
        self.effects = effects
        self.configuration = configuration
        self.logger = logger
        (activations, activationsContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    private func setActive(_ id: IncidentID) {
        activeID = id
        activationsContinuation.yield(id)
    }

    /// Reads every incident the store holds back and resumes the ones that were fetching or waiting for a retry.
    /// Returns how many were restored.
    @discardableResult
    public func restore(viewer: CrewID) async throws(WorkflowError) -> Int {
        let ids: [IncidentID]
        do {
            ids = try await effects.store.incidentIDs()
        } catch {
            throw .storage("the vault could not list its incidents")
        }
        var restored = 0
        for id in ids where runners[id] == nil {
            guard
                let runner = try await IncidentRunner.restore(
                    id: id,
                    viewer: viewer,
                    effects: effects,
                    configuration: configuration,
                    logger: logger
                )
            else { continue }
            runners[id] = runner
            order.append(id)
            restored += 1
            await runner.resume()
            if await runner.awaitsIdentification { setActive(id) }
        }
        return restored
    }

    /// Opens an incident; one the crew opens becomes the active one.
    public func open(source: IncidentSource, dispatch: DispatchFacts? = nil) async throws(WorkflowError)
        -> IncidentRunner
    {
        let runner = try await IncidentRunner.open(
            source: source,
            dispatch: dispatch,
            effects: effects,
            configuration: configuration,
            logger: logger
        )
        runners[runner.id] = runner
        order.append(runner.id)
        if source == .crew { setActive(runner.id) }
        return runner
    }

    /// The incident `id`.
    public func runner(_ id: IncidentID) throws(WorkflowError) -> IncidentRunner {
        guard let runner = runners[id] else { throw .notFound() }
        return runner
    }

    /// Makes `id` the incident the next card is read for.
    public func activate(_ id: IncidentID) throws(WorkflowError) {
        guard runners[id] != nil else { throw .notFound() }
        setActive(id)
    }

    /// The active incident's id.
    public var active: IncidentID? { activeID }

    /// The open incidents, newest first.
    public func openIncidents() async -> [IncidentSnapshot] {
        var open: [IncidentSnapshot] = []
        for id in order.reversed() {
            guard let runner = runners[id] else { continue }
            let snapshot = await runner.snapshot()
            if snapshot.state.machine.phase != .closed { open.append(snapshot) }
        }
        return open
    }

    /// Stops every incident's work in flight, changing nothing, as the service stops; a restart restores them.
    public func suspendAll() async {
        for runner in runners.values { await runner.suspend() }
    }

    /// The open incident whose document set is `documentSet` (the receiver's events name the set, never the
    /// incident).
    public func runner(documentSet: UUID) async -> IncidentRunner? {
        for id in order.reversed() {
            guard let runner = runners[id] else { continue }
            if await runner.documentSet() == documentSet { return runner }
        }
        return nil
    }

    /// The hospital's receiver reported a status for `documentSet`; nothing happens for a set this gateway no
    /// longer holds (shredded after the handover, or another gateway's).
    public func hospitalReported(
        documentSet: UUID,
        status: HandoffStatus,
        hospital: HospitalCode,
        divert: Divert?
    ) async {
        guard let runner = await runner(documentSet: documentSet) else {
            logger.debug("a hospital's event names a document set this gateway does not hold")
            return
        }
        await runner.hospitalReported(status, hospital: hospital, divert: divert)
    }

    /// A hospital answered placement request `placement` of the incident whose document set is `documentSet`;
    /// nothing happens for a set this gateway no longer holds.
    public func placementAnswered(
        documentSet: UUID,
        placement: UUID,
        hospital: HospitalCode,
        answer: PlacementAnswer,
        divert: Divert?,
        at time: Date?
    ) async {
        guard let runner = await runner(documentSet: documentSet) else {
            logger.debug("a placement answer names a document set this gateway does not hold")
            return
        }
        await runner.placementAnswered(placement, hospital: hospital, answer: answer, divert: divert, at: time)
    }

    /// A card touched the reader: the active incident reads it if it waits for identification.
    public func cardTouched(_ card: any PatientCard) async {
        guard let activeID, let runner = runners[activeID], await runner.awaitsIdentification else {
            logger.debug("a card touched the reader; no incident waits for one")
            return
        }
        await runner.cardTouched(card)
    }
}
