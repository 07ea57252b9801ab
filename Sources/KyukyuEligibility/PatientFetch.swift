import Foundation
import KyukyuDomain
import KyukyuOnshi
import Logging
import Metrics
import Synchronization

/// Where one category stands.
public enum CategoryStatus: Sendable, Hashable {
    /// Not answered yet.
    case pending
    /// A transient failure; attempt `attempt` is next.
    case retrying(attempt: Int, reason: String)
    /// Records arrived.
    case ok(CategoryRecords, elapsed: Duration)
    /// onshi has nothing for this patient in this category.
    case empty(elapsed: Duration)
    /// No complete answer within the category's deadline.
    case timedOut(after: Duration)
    /// The fetch was cancelled before the category settled (not onshi's fault, and not a timeout).
    case cancelled(after: Duration)
    /// Failed; the reason is something the crew can act on.
    case failed(code: EligibilityError.Code, reason: String, elapsed: Duration)

    /// Whether the category is settled (no more updates will come).
    public var isFinal: Bool {
        switch self {
        case .pending, .retrying: return false
        default: return true
        }
    }

    /// A word for tables and JSON: ok, empty, timed-out, cancelled, failed, retrying, pending.
    public var label: String {
        switch self {
        case .pending: return "pending"
        case .retrying: return "retrying"
        case .ok: return "ok"
        case .empty: return "empty"
        case .timedOut: return "timed-out"
        case .cancelled: return "cancelled"
        case .failed: return "failed"
        }
    }
}

/// One change during a fetch.
public enum FetchUpdate: Sendable, Hashable {
    /// The patient was authenticated and the session opened.
    case authenticated(EligibilitySession, elapsed: Duration)
    /// Authentication failed: nothing will be fetched.
    case authenticationFailed(code: EligibilityError.Code, reason: String, elapsed: Duration)
    /// A category changed state.
    case category(MedicalCategory, CategoryStatus)
}

/// What the crew sees at a moment: the session and every category's state.
public struct FetchSnapshot: Sendable, Hashable {
    /// The session, once authenticated.
    public var session: EligibilitySession?
    /// Why authentication failed, if it did.
    public var authenticationFailure: (code: EligibilityError.Code, reason: String)? {
        authenticationError.map { ($0.code, $0.reason) }
    }
    /// The error that ended authentication, if it failed: for ``EligibilityError/Code/signingFailed`` its
    /// ``EligibilityError/underlying`` is the card's own error.
    public var authenticationError: EligibilityError?
    /// Every requested category's state.
    public var categories: [MedicalCategory: CategoryStatus]
    /// Time since the fetch started.
    public var elapsed: Duration
    /// Whether every category is settled.
    public var isComplete: Bool { authenticationError != nil || categories.values.allSatisfy(\.isFinal) }
}

/// Deadlines of one fetch.
public struct FetchDeadlines: Sendable, Hashable {
    /// When the crew is shown whatever has arrived (from the start of the fetch).
    public var overall: Duration
    /// How long each category may take in all (retries included); late answers arrive as updates.
    public var perCategory: Duration

    /// Creates deadlines; `perCategory` defaults to twice `overall`.
    public init(overall: Duration, perCategory: Duration? = nil) {
        self.overall = overall
        self.perCategory = perCategory ?? overall * 2
    }
}

/// One patient's fetch in flight: authentication, then every category in parallel.
///
/// ``snapshotAtDeadline()`` returns at the overall deadline (or earlier when everything has settled) with what
/// has arrived; ``updates`` keeps delivering late categories until each settles or hits its own deadline.
/// Times are read from the client's clock.
public final class PatientFetch: Sendable {
    /// Every change, in order, including those after the overall deadline. Finishes when all are settled.
    public let updates: AsyncStream<FetchUpdate>
    let state: FetchState
    let task: Task<Void, Never>
    let start: OnshiInstant
    let clock: OnshiClock
    /// The deadlines.
    public let deadlines: FetchDeadlines

    init(
        client: EligibilityClient,
        identity: PatientIdentity,
        crewID: String,
        consent: ConsentBasis,
        categories: [MedicalCategory],
        deadlines: FetchDeadlines
    ) {
        let clock = client.clock
        let start = clock.now
        let (stream, continuation) = AsyncStream.makeStream(of: FetchUpdate.self, bufferingPolicy: .unbounded)
        let state = FetchState(categories: categories, start: start, clock: clock, continuation: continuation)
        self.updates = stream
        self.state = state
        self.start = start
        self.clock = clock
        self.deadlines = deadlines
        let logger = client.logger
        let metrics = client.metrics
        self.task = Task {
            let categoryDeadline = start + deadlines.perCategory
            let session: EligibilitySession
            do {
                session = try await client.authenticate(
                    identity,
                    crewID: crewID,
                    consent: consent,
                    deadline: min(start + deadlines.overall, categoryDeadline)
                )
                await state.authenticated(session)
            } catch {
                let failure =
                    error as? EligibilityError ?? .connectionLost("authentication failed (\(type(of: error)))")
                logger.notice(
                    "onshi authentication failed",
                    metadata: [
                        "kyukyu.onshi.error": "\(failure.code)", "kyukyu.onshi.reason": "\(failure.reason)",
                        "kyukyu.onshi.assurance": "\(identity.assurance)",
                    ]
                )
                await state.authenticationFailed(failure)
                return
            }
            // One budget for all of this patient's answers: nine large ones are never held together.
            let account = FetchMemoryAccount(budget: client.configuration.memoryBudget)
            await withTaskGroup(of: Void.self) { group in
                for category in categories {
                    group.addTask {
                        let started = clock.now
                        let status: CategoryStatus
                        do {
                            let response = try await client.category(
                                category,
                                session: session,
                                deadline: categoryDeadline,
                                account: account
                            ) { attempt, error in
                                Task { await state.set(category, .retrying(attempt: attempt, reason: error.reason)) }
                            }
                            let elapsed = clock.now - started
                            status =
                                response.records.count == 0
                                ? .empty(elapsed: elapsed) : .ok(response.records, elapsed: elapsed)
                        } catch {
                            let elapsed = clock.now - started
                            let failure = error as? EligibilityError ?? .cancelled()
                            switch failure.code {
                            case .timedOut: status = .timedOut(after: elapsed)
                            case .cancelled: status = .cancelled(after: elapsed)
                            default: status = .failed(code: failure.code, reason: failure.reason, elapsed: elapsed)
                            }
                        }
                        Self.record(status, of: category, settledAt: clock.now - start, deadlines, metrics)
                        logger.debug(
                            "category settled",
                            metadata: [
                                "kyukyu.onshi.category": "\(category.rawValue)",
                                "kyukyu.onshi.status": "\(status.label)",
                            ]
                        )
                        await state.set(category, status)
                    }
                }
            }
        }
    }

    /// Records a settled category: how long it took, by outcome, and whether it missed the overall deadline (it
    /// timed out, or came after the crew was shown the summary). A cancelled fetch counts for neither.
    static func record(
        _ status: CategoryStatus,
        of category: MedicalCategory,
        settledAt sinceStart: Duration,
        _ deadlines: FetchDeadlines,
        _ metrics: any MetricsFactory
    ) {
        let elapsed: Duration
        let missed: Bool
        switch status {
        case .ok(_, let time), .empty(let time):
            elapsed = time
            missed = sinceStart > deadlines.overall
        case .timedOut(let time):
            elapsed = time
            missed = true
        case .failed(_, _, let time):
            elapsed = time
            missed = false
        case .cancelled, .pending, .retrying:
            return
        }
        Timer(
            label: "kyukyu_fetch_duration_seconds",
            dimensions: [("category", category.rawValue), ("outcome", status.label)],
            factory: metrics
        ).record(duration: elapsed)
        if missed {
            Counter(
                label: "kyukyu_fetch_deadline_misses_total",
                dimensions: [("category", category.rawValue)],
                factory: metrics
            ).increment()
        }
    }

    /// Waits until the overall deadline, or until everything has settled if that comes first, and returns what
    /// the crew sees then.
    public func snapshotAtDeadline() async -> FetchSnapshot {
        let deadline = start + deadlines.overall
        let state = self.state
        let clock = self.clock
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = ResumeOnce(continuation)
            let timer = Task {
                try? await clock.sleep(until: deadline)
                once.resume()
            }
            // Ends by itself when the fetch settles, which each category's own deadline bounds.
            Task {
                await state.waitUntilComplete()
                timer.cancel()
                once.resume()
            }
        }
        return await state.snapshot()
    }

    /// Waits until every category has settled (each within its own deadline) and returns the final state.
    public func completion() async -> FetchSnapshot {
        await task.value
        return await state.snapshot()
    }

    /// The state now.
    public func snapshot() async -> FetchSnapshot { await state.snapshot() }

    /// Waits until the patient is authenticated or authentication has failed (within the deadlines), and returns
    /// the state then. Nothing after authentication needs the card: a caller holding it (PIN mode, where the card
    /// signs onshi's nonce) releases it here, while the categories are still arriving.
    public func authentication() async -> FetchSnapshot {
        await state.waitUntilAuthenticationSettled()
        return await state.snapshot()
    }

    /// Stops every request of this fetch; unsettled categories become ``CategoryStatus/cancelled(after:)``.
    public func cancel() { task.cancel() }
}

/// Resumes a continuation exactly once, from whichever of several tasks gets there first.
final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Void, Never>?>

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = Mutex(continuation) }

    func resume() {
        continuation.withLock { value in
            value?.resume()
            value = nil
        }
    }
}

/// The shared state of one fetch.
actor FetchState {
    private var snapshotValue: FetchSnapshot
    private let start: OnshiInstant
    private let clock: OnshiClock
    private let continuation: AsyncStream<FetchUpdate>.Continuation
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var authenticationWaiters: [CheckedContinuation<Void, Never>] = []

    init(
        categories: [MedicalCategory],
        start: OnshiInstant,
        clock: OnshiClock,
        continuation: AsyncStream<FetchUpdate>.Continuation
    ) {
        self.snapshotValue = FetchSnapshot(
            session: nil,
            authenticationError: nil,
            categories: Dictionary(uniqueKeysWithValues: categories.map { ($0, CategoryStatus.pending) }),
            elapsed: .zero
        )
        self.start = start
        self.clock = clock
        self.continuation = continuation
    }

    func snapshot() -> FetchSnapshot {
        var value = snapshotValue
        value.elapsed = clock.now - start
        return value
    }

    func authenticated(_ session: EligibilitySession) {
        snapshotValue.session = session
        continuation.yield(.authenticated(session, elapsed: clock.now - start))
        resumeAuthenticationWaiters()
    }

    func waitUntilAuthenticationSettled() async {
        if snapshotValue.session != nil || snapshotValue.authenticationError != nil { return }
        await withCheckedContinuation { authenticationWaiters.append($0) }
    }

    private func resumeAuthenticationWaiters() {
        for waiter in authenticationWaiters { waiter.resume() }
        authenticationWaiters.removeAll()
    }

    func authenticationFailed(_ error: EligibilityError) {
        snapshotValue.authenticationError = error
        let status: CategoryStatus =
            error.code == .cancelled
            ? .cancelled(after: .zero) : .failed(code: error.code, reason: error.reason, elapsed: .zero)
        for category in snapshotValue.categories.keys { snapshotValue.categories[category] = status }
        continuation.yield(
            .authenticationFailed(code: error.code, reason: error.reason, elapsed: clock.now - start)
        )
        resumeAuthenticationWaiters()
        finishIfComplete()
    }

    func set(_ category: MedicalCategory, _ status: CategoryStatus) {
        // A retry notice that arrives after the final status must not overwrite it.
        if snapshotValue.categories[category]?.isFinal == true { return }
        snapshotValue.categories[category] = status
        continuation.yield(.category(category, status))
        finishIfComplete()
    }

    func waitUntilComplete() async {
        if snapshotValue.isComplete { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func finishIfComplete() {
        guard snapshotValue.isComplete else { return }
        continuation.finish()
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }
}

extension EligibilityClient {
    /// Starts a fetch: authenticate, then every category in parallel, under the given deadlines.
    public func fetch(
        _ identity: PatientIdentity,
        crewID: String,
        consent: ConsentBasis,
        categories: [MedicalCategory] = MedicalCategory.allCases,
        deadlines: FetchDeadlines
    ) -> PatientFetch {
        PatientFetch(
            client: self,
            identity: identity,
            crewID: crewID,
            consent: consent,
            categories: categories,
            deadlines: deadlines
        )
    }
}
