import Clocks
import Foundation
import KyukyuDomain
import KyukyuWorkflow
import Synchronization

@testable import KyukyuGateway

/// The regional hub's ambulance API in memory (the spec of issue 12): acceptance streams per base URL, driven by the
/// test; placement calls recorded and answered from a script (else stored with every hospital pending, and a
/// cancel cancels the pending ones); device streams per hospital carrying placement answers the test sends.
final class FakeHub: ReceiverDelivering {
    typealias AcceptanceContinuation = AsyncThrowingStream<HospitalAcceptance, any Error>.Continuation
    typealias MessageContinuation = AsyncThrowingStream<ReceiverMessage, any Error>.Continuation

    private struct State {
        var acceptanceStreams: [String: AcceptanceContinuation] = [:]
        var connections: [String: Int] = [:]
        var submitted: [(request: PlacementRequest, url: String, body: Data)] = []
        var cancelled: [UUID] = []
        var submitScript: [PlacementCallResult] = []
        var cancelScript: [PlacementCallResult] = []
        var views: [UUID: PlacementHubView] = [:]
        var deviceStreams: [HospitalCode: MessageContinuation] = [:]
    }

    private let state = Mutex(State())
    private let connectedStream = AsyncStream<String>.makeStream()
    private let callStream = AsyncStream<String>.makeStream()
    private let deviceStream = AsyncStream<HospitalCode>.makeStream()

    /// Yields a base URL at every acceptance connection.
    var connected: AsyncStream<String> { connectedStream.stream }
    /// Yields `submit` or `cancel` after every placement call.
    var calls: AsyncStream<String> { callStream.stream }
    /// Yields a hospital's code when its device stream opens.
    var deviceConnected: AsyncStream<HospitalCode> { deviceStream.stream }

    /// Acceptance connections made to `url` so far.
    func connections(_ url: String) -> Int { state.withLock { $0.connections[url] ?? 0 } }
    /// Every placement request received, in order, with its body's bytes.
    var submitted: [(request: PlacementRequest, url: String, body: Data)] { state.withLock { $0.submitted } }
    /// Every cancelled placement, in order.
    var cancelled: [UUID] { state.withLock { $0.cancelled } }

    /// The next answers to `submitPlacement`, in order.
    func scriptSubmits(_ results: [PlacementCallResult]) { state.withLock { $0.submitScript = results } }
    /// The next answers to `cancelPlacement`, in order.
    func scriptCancels(_ results: [PlacementCallResult]) { state.withLock { $0.cancelScript = results } }
    /// What `placement(_:at:)` answers for `id`.
    func setView(_ view: PlacementHubView) { state.withLock { $0.views[view.placement] = view } }

    /// Sends `publication` on the open acceptance stream of `url`.
    func publish(_ publication: HospitalAcceptance, on url: String) {
        _ = state.withLock { $0.acceptanceStreams[url] }?.yield(publication)
    }

    /// Ends the acceptance stream of `url` (the connection drops).
    func drop(_ url: String) {
        state.withLock { $0.acceptanceStreams.removeValue(forKey: url) }?.finish(
            throwing: ReceiverStreamError(status: 0)
        )
    }

    /// Sends `message` on `hospital`'s device stream.
    func send(_ message: ReceiverMessage, to hospital: HospitalCode) {
        _ = state.withLock { $0.deviceStreams[hospital] }?.yield(message)
    }

    func acceptance(from baseURL: String) -> AsyncThrowingStream<HospitalAcceptance, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: HospitalAcceptance.self)
        state.withLock {
            $0.acceptanceStreams[baseURL] = continuation
            $0.connections[baseURL, default: 0] += 1
        }
        connectedStream.continuation.yield(baseURL)
        return stream
    }

    func submitPlacement(_ request: PlacementRequest, at baseURL: String) async -> PlacementCallResult {
        let body = (try? request.body()) ?? Data()
        let result = state.withLock { state -> PlacementCallResult in
            state.submitted.append((request, baseURL, body))
            if !state.submitScript.isEmpty { return state.submitScript.removeFirst() }
            let view = PlacementHubView(
                placement: request.placement,
                answers: Dictionary(uniqueKeysWithValues: request.hospitals.map { ($0, .pending) })
            )
            state.views[request.placement] = view
            return .done(view)
        }
        callStream.continuation.yield("submit")
        return result
    }

    func cancelPlacement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult {
        let result = state.withLock { state -> PlacementCallResult in
            state.cancelled.append(placement)
            if !state.cancelScript.isEmpty { return state.cancelScript.removeFirst() }
            var view = state.views[placement] ?? PlacementHubView(placement: placement, answers: [:])
            for (code, answer) in view.answers where answer == .pending { view.answers[code] = .cancelled }
            state.views[placement] = view
            return .done(view)
        }
        callStream.continuation.yield("cancel")
        return result
    }

    func placement(_ placement: UUID, at baseURL: String) async -> PlacementCallResult {
        state.withLock { $0.views[placement] }.map { .done($0) } ?? .refused("unknown")
    }

    func messages(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverMessage, any Error
    > {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ReceiverMessage.self)
        state.withLock { $0.deviceStreams[hospital.code] = continuation }
        deviceStream.continuation.yield(hospital.code)
        return stream
    }

    func post(_ document: Data, versionID: UUID, to hospital: ReceivingHospital) async -> DeliveryResult { .delivered }

    func withdraw(documentSet: UUID, reason: String, at hospital: ReceivingHospital) async -> DeliveryResult {
        .delivered
    }

    func events(from hospital: ReceivingHospital, after lastEventID: String?) -> AsyncThrowingStream<
        ReceiverEvent, any Error
    > {
        AsyncThrowingStream { $0.finish() }
    }
}

/// Advances `clock` in steps until `condition` holds, at most `steps` times; whether it held.
func advance(
    _ clock: TestClock<Duration>,
    by step: Duration = .milliseconds(100),
    steps: Int = 2_000,
    until condition: () async -> Bool
) async -> Bool {
    for _ in 0..<steps {
        if await condition() { return true }
        await clock.advance(by: step)
        for _ in 0..<20 { await Task.yield() }
    }
    return await condition()
}

/// Yields until `condition` holds, at most `times` times; whether it held.
func eventually(times: Int = 100_000, _ condition: () async -> Bool) async -> Bool {
    for _ in 0..<times {
        if await condition() { return true }
        await Task.yield()
    }
    return await condition()
}

/// A publication, or a test failure.
func publication(
    _ code: String,
    revision: Int64,
    _ conditions: [AcceptanceCondition: ConditionAcceptance],
    at time: Date = Date(timeIntervalSince1970: 1_795_000_000)
) throws -> HospitalAcceptance {
    try HospitalAcceptance(
        hospital: HospitalCode(rawValue: code)!,
        conditions: conditions,
        revision: revision,
        updatedAt: time
    )
}
