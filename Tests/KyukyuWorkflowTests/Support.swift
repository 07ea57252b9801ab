import Foundation
import KyukyuCard
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuTestbed
import KyukyuVault
import KyukyuWorkflow
import Logging
import Synchronization

let silent = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The effects of one test: the in-memory store, an eligibility client on the in-memory onshi.
struct Harness {
    let store = InMemoryIncidentStore()
    let onshi: InMemoryOnshi
    let effects: WorkflowEffects
    let configuration: WorkflowConfiguration
    let crew = CrewID("TEST-A1")!

    init(
        onshi: InMemoryOnshi = InMemoryOnshi(),
        clock: some Clock<Duration> = ContinuousClock(),
        onshiClock: any Clock<Duration> = ContinuousClock(),
        deadlines: FetchDeadlines = FetchDeadlines(overall: .seconds(20), perCategory: .seconds(20))
    ) {
        self.onshi = onshi
        let client = EligibilityClient(
            transport: onshi,
            configuration: EligibilityClientConfiguration(hedgeAfter: nil),
            breaker: CircuitBreaker(failureThreshold: 50, clock: onshiClock),
            clock: onshiClock,
            logger: silent
        )
        effects = WorkflowEffects(store: store, fetching: client, clock: WorkflowClock(clock: clock))
        configuration = WorkflowConfiguration(terminalID: "ambulance-test", deadlines: deadlines)
    }

    func desk() -> IncidentDesk { IncidentDesk(effects: effects, configuration: configuration, logger: silent) }
}

/// Waits for the first update of `runner` that satisfies `condition`.
func waitFor(
    _ runner: IncidentRunner,
    _ condition: @Sendable (IncidentSnapshot) -> Bool
) async -> IncidentSnapshot? {
    for await snapshot in await runner.updates() where condition(snapshot) { return snapshot }
    return nil
}
