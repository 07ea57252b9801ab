import Foundation
public import KyukyuDomain
import KyukyuIncident
public import KyukyuVault
public import KyukyuWorkflow
public import Logging
import ServiceLifecycle

/// Sends the crew's placement requests and their withdrawals to the regional hub, in order, one at a time,
/// through dead zones: a call that may pass (no network, the hub busy) is tried again after ``DeliveryBackoff``,
/// with the same request id and the same bytes, so the hub never holds two requests for one (its answer to a
/// resend is 200). What the hub says goes back to the incident (``IncidentRunner/placementStored(_:answers:)``,
/// ``IncidentRunner/placementProblem(_:problem:final:)``, ``IncidentRunner/placementCancelRefused(_:answers:)``).
public actor PlacementDispatcher {
    /// One call to make.
    enum Job: Hashable {
        case submit(IncidentID, PlacementRequest, url: String)
        case cancel(IncidentID, UUID, url: String)
    }

    private var queue: [Job] = []
    private let wakeUps: AsyncStream<Void>
    private let wakeUp: AsyncStream<Void>.Continuation
    private var desk: IncidentDesk?
    private let hospitals: [HospitalCode: ReceivingHospital]
    private let client: any ReceiverDelivering
    private let clock: any Clock<Duration>
    private let backoff: DeliveryBackoff
    private let random: @Sendable () -> Double
    private let logger: Logger

    /// A dispatcher for `hospitals` through `client`; `clock` and `random` time the retries.
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
        (wakeUps, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Where the answers go (set once, before ``run()``).
    public func attach(_ desk: IncidentDesk) {
        self.desk = desk
    }

    /// The hub's base URL for `codes`: the one all of them share, or nil when they are served by different hubs
    /// (or one is not in the list).
    public func hubURL(for codes: [HospitalCode]) -> String? {
        let urls = Set(codes.compactMap { hospitals[$0]?.baseURL })
        guard urls.count == 1, codes.allSatisfy({ hospitals[$0] != nil }) else { return nil }
        return urls.first
    }

    /// Queues `request` of `incident` for the hub at `url`.
    public func submit(_ request: PlacementRequest, of incident: IncidentID, at url: String) {
        enqueue(.submit(incident, request, url: url))
    }

    /// Queues the withdrawal of `placement` of `incident` at the hub at `url`.
    public func cancel(_ placement: UUID, of incident: IncidentID, at url: String) {
        enqueue(.cancel(incident, placement, url: url))
    }

    /// Queues again what the restored incidents still owe the hub: requests it has not stored, and withdrawals it
    /// has not confirmed (the hub takes both again without harm).
    public func resume(_ snapshots: [IncidentSnapshot]) {
        for snapshot in snapshots {
            guard let placement = snapshot.state.placement, let set = snapshot.state.handoff?.machine.documentSet,
                let url = hubURL(for: placement.hospitals)
            else { continue }
            if !placement.stored, placement.isOpen || placement.cancelRequested {
                let request = PlacementRequest(
                    placement: placement.id,
                    documentSet: set,
                    hospitals: placement.hospitals,
                    summary: placement.summary
                )
                enqueue(.submit(snapshot.state.id, request, url: url))
            }
            if placement.cancelRequested, placement.entries.contains(where: { $0.answer == .pending }) {
                enqueue(.cancel(snapshot.state.id, placement.id, url: url))
            }
        }
    }

    /// How many calls wait (for tests).
    public func depth() -> Int { queue.count }

    private func enqueue(_ job: Job) {
        guard !queue.contains(job) else { return }
        queue.append(job)
        wakeUp.yield()
    }

    /// Makes the calls until cancelled.
    public func run() async {
        var iterator = wakeUps.makeAsyncIterator()
        var failures = 0
        while !Task.isCancelled {
            guard let job = queue.first else {
                guard await iterator.next() != nil else { return }
                continue
            }
            if await attempt(job) {
                failures = 0
                queue.removeFirst()
                continue
            }
            failures += 1
            do {
                try await clock.sleep(for: backoff.delay(afterFailures: failures, unit: random()))
            } catch {
                return
            }
        }
    }

    /// One call; false when it is to be tried again.
    private func attempt(_ job: Job) async -> Bool {
        switch job {
        case .submit(let incident, let request, let url):
            let result = await client.submitPlacement(request, at: url)
            let runner = await self.runner(incident)
            switch result {
            case .done(let view):
                await runner?.placementStored(request.placement, answers: view.answers)
                return true
            case .retry(let problem):
                await runner?.placementProblem(request.placement, problem: problem, final: false)
                return false
            case .conflict(let problem), .refused(let problem):
                logger.warning("the regional hub refused a placement request")
                await runner?.placementProblem(request.placement, problem: problem, final: true)
                return true
            }
        case .cancel(let incident, let placement, let url):
            let result = await client.cancelPlacement(placement, at: url)
            let runner = await self.runner(incident)
            switch result {
            case .done(let view):
                await runner?.placementStored(placement, answers: view.answers)
                return true
            case .retry(let problem):
                await runner?.placementProblem(placement, problem: problem, final: false)
                return false
            case .conflict:
                // A hospital accepted first: read the answers (the event stream brings them too).
                var answers: [HospitalCode: PlacementAnswer] = [:]
                if case .done(let view) = await client.placement(placement, at: url) { answers = view.answers }
                await runner?.placementCancelRefused(placement, answers: answers)
                return true
            case .refused(let problem):
                await runner?.placementProblem(placement, problem: problem, final: false)
                return true
            }
        }
    }

    private func runner(_ incident: IncidentID) async -> IncidentRunner? {
        guard let desk else { return nil }
        return try? await desk.runner(incident)
    }
}

extension PlacementDispatcher: PlacementWithdrawing {
    /// Queues the withdrawal of `placement` at the hub serving `hospitals` (none when they share no hub).
    public func withdraw(_ placement: UUID, from hospitals: [HospitalCode], of incident: IncidentID) {
        guard let url = hubURL(for: hospitals) else { return }
        cancel(placement, of: incident, at: url)
    }
}

/// The placement dispatcher as a service in the gateway's group: it hands the hospitals' answers on the device
/// event stream to the incidents (through ``ReceiverEventsService``) and makes the calls until shutdown.
struct PlacementService: Service {
    let dispatcher: PlacementDispatcher
    let desk: IncidentDesk

    func run() async throws {
        await dispatcher.attach(desk)
        await cancelWhenGracefulShutdown {
            await dispatcher.run()
        }
    }
}
