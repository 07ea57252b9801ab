import Clocks
import ConcurrencyExtras
import Foundation
import KyukyuDomain
import Synchronization
import Testing

@testable import KyukyuReceiver

/// A placement request nobody answers is withdrawn after its age, as its ambulance would: an ambulance that stopped
/// asking leaves no hospital alerted for ever. The same tests on both engines; time is the desk's injected clock
/// and wall clock.
@Suite("Placement requests left waiting expire")
struct PlacementExpiryTests {
    static let first = RegionStoreTests.first
    static let second = RegionStoreTests.second
    static let start = Date(timeIntervalSince1970: 1_795_749_120)  // 2026-11-27T03:12:00Z

    /// The desk's wall clock, which the test moves.
    final class WallClock: Sendable {
        private let date = Mutex(PlacementExpiryTests.start)
        func now() -> Date { date.withLock { $0 } }
        func set(minutes: Double) { date.withLock { $0 = PlacementExpiryTests.start.addingTimeInterval(minutes * 60) } }
    }

    static func desk(_ store: HospitalStore, wall: WallClock, clock: TestClock<Duration>) -> HospitalDesk {
        HospitalDesk(
            hospitals: [first, second],
            store: store,
            validator: StructuralHandoffValidator(),
            clock: clock,
            now: { wall.now() },
            logger: quiet
        )
    }

    static func request(
        _ store: HospitalStore,
        to hospitals: [HospitalCode],
        atMinute minute: Double
    ) async throws -> UUID {
        let id = UUID()
        _ = try await store.createPlacement(
            id,
            device: "ambulance-01",
            documentSet: UUID(),
            hospitals: hospitals,
            summary: try RegionStoreTests.summary(),
            at: start.addingTimeInterval(minute * 60)
        )
        return id
    }

    @Test(.timeLimit(.minutes(1)), arguments: Engine.allCases)
    func onlyARequestStillWaitingPastItsAgeIsWithdrawn(engine: Engine) async throws {
        try await withStore(engine) { _, store in
            let wall = WallClock()
            let desk = Self.desk(store, wall: wall, clock: TestClock())
            let waiting = try await Self.request(store, to: [Self.first, Self.second], atMinute: 0)
            let placed = try await Self.request(store, to: [Self.first, Self.second], atMinute: 0)
            let withdrawn = try await Self.request(store, to: [Self.second], atMinute: 0)
            let young = try await Self.request(store, to: [Self.first], atMinute: 50)
            _ = try await store.answerPlacement(
                waiting,
                at: Self.first,
                answer: .declined,
                reason: .noBeds,
                note: nil,
                staff: "NURSE-A",
                at: Self.start.addingTimeInterval(60)
            )
            _ = try await store.answerPlacement(
                placed,
                at: Self.second,
                answer: .accepted,
                reason: nil,
                note: nil,
                staff: "NURSE-B",
                at: Self.start.addingTimeInterval(60)
            )
            _ = try await store.cancelPlacement(
                withdrawn,
                device: "ambulance-01",
                at: Self.start.addingTimeInterval(60)
            )

            wall.set(minutes: 59)
            #expect(await desk.expirePlacements(olderThan: .seconds(3600)) == 0, "not an hour old yet")
            wall.set(minutes: 61)
            #expect(await desk.expirePlacements(olderThan: .seconds(3600)) == 1)
            #expect(
                try await store.placement(waiting, device: "ambulance-01")?.answers == [
                    Self.first: .declined, Self.second: .cancelled,
                ]
            )
            #expect(try await store.placement(placed, device: "ambulance-01")?.placedAt == Self.second)
            #expect(try await store.placement(young, device: "ambulance-01")?.answers == [Self.first: .pending])
            #expect(await desk.expirePlacements(olderThan: .seconds(3600)) == 0, "withdrawn once")
            // The ambulance's stream and the hospital's board are told, as for the crew's own withdrawal.
            let stream = try await store.streamEvents(device: "ambulance-01", after: 0)
            let cancelled = stream.compactMap { event -> UUID? in
                if case .placement(let placement) = event, placement.answer == .cancelled { return placement.placement }
                return nil
            }
            #expect(cancelled == [withdrawn, waiting])
            let board = try await store.streamBoardEvents(hospital: Self.second, after: 0)
            #expect(board.count { if case .placement(let p) = $0 { p.answer == .cancelled } else { false } } == 2)

            wall.set(minutes: 111)
            #expect(await desk.expirePlacements(olderThan: .seconds(3600)) == 1, "the young one, an hour later")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theServiceSweepsAfterEachMinuteOfTheDesksClock() async throws {
        try await withStore(.sqlite) { _, store in
            let wall = WallClock()
            let clock = TestClock()
            let desk = Self.desk(store, wall: wall, clock: clock)
            let id = try await Self.request(store, to: [Self.first], atMinute: 0)
            wall.set(minutes: 61)
            let service = PlacementExpiryService(desk: desk, age: .seconds(3600), interval: .seconds(60))
            let running = Task { try await service.run() }
            defer { running.cancel() }
            // Old enough, but the desk's clock has not moved: no sweep yet.
            await Task.megaYield()
            #expect(try await store.placement(id, device: "ambulance-01")?.answers == [Self.first: .pending])
            // Each minute of the desk's clock, a sweep (bounded: the service may not be asleep at the first advance).
            var answers: [HospitalCode: PlacementAnswer]? = [Self.first: .pending]
            var minutes = 0
            while answers == [Self.first: .pending], minutes < 10_000 {
                await clock.advance(by: .seconds(60))
                minutes += 1
                answers = try await store.placement(id, device: "ambulance-01")?.answers
            }
            #expect(answers == [Self.first: .cancelled])
            // The ambulance's stream has the withdrawal (after the request's own event, sequence 1).
            let (lines, continuation) = AsyncStream.makeStream(of: String.self)
            let stream = Task {
                await desk.runDeviceStream(device: "ambulance-01", lastEventID: 1) { continuation.yield($0) }
                continuation.finish()
            }
            defer { stream.cancel() }
            var iterator = lines.makeAsyncIterator()
            let frame = try #require(await iterator.next())
            #expect(frame.contains(#""answer":"cancelled""#))
            #expect(frame.contains(id.uuidString.lowercased()))
        }
    }
}
