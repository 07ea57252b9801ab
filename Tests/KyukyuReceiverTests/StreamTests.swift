import Clocks
import ConcurrencyExtras
import Foundation
import KyukyuDomain
import KyukyuReceiver
import Synchronization
import Testing

/// The event streams without HTTP: replay, live events, Last-Event-ID and the keep-alive on an injected clock.
@Suite("Event streams", .timeLimit(.minutes(1)))
struct StreamTests {
    /// Runs a device stream in a task, its lines into an async stream.
    func open(
        _ desk: HospitalDesk,
        device: String = "ambulance-01",
        lastEventID: Int64? = nil,
        board: Bool = false
    ) -> (AsyncStream<String>.AsyncIterator, Task<Void, Never>) {
        let (lines, continuation) = AsyncStream.makeStream(of: String.self)
        let task = Task {
            if board {
                await desk.runBoardStream(hospital: hospitalCode, lastEventID: lastEventID) { continuation.yield($0) }
            } else {
                await desk.runDeviceStream(device: device, lastEventID: lastEventID) { continuation.yield($0) }
            }
            continuation.finish()
        }
        return (lines.makeAsyncIterator(), task)
    }

    /// A desk over a new store in `directory`, with `devices` registered, its streams on `clock`.
    static func desk(
        _ directory: String,
        devices: [String],
        clock: TestClock<Duration> = TestClock()
    ) async throws -> HospitalDesk {
        let store = try openStore(directory)
        for device in devices { try await store.registerDevice(device) }
        return HospitalDesk(
            hospitals: [hospitalCode],
            store: store,
            validator: StructuralHandoffValidator(),
            clock: clock,
            logger: quiet
        )
    }

    func fields(_ frame: String) -> (id: String?, data: [String: Any]?) {
        var id: String?
        var data: [String: Any]?
        for line in frame.split(separator: "\n") {
            if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
            if line.hasPrefix("data: ") {
                data = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
            }
        }
        return (id, data)
    }

    @Test func replayLiveEventsAndLastEventID() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let desk = try await Self.desk(directory, devices: ["ambulance-01", "ambulance-02"])
        let document = SyntheticDocument()
        _ = try await desk.intake(
            body: document.data,
            idempotencyKey: document.versionIdentifier,
            device: "ambulance-01"
        )

        var (lines, task) = open(desk)
        let replayed = fields(try #require(await lines.next()))
        #expect(replayed.id == "1")
        #expect(replayed.data?["status"] as? String == "received")
        #expect(replayed.data?["documentSet"] as? String == document.setIdentifier)
        #expect(replayed.data?["hospital"] as? String == "1312345678")

        // Another device's document is not on this stream; the acknowledgement is.
        var other = SyntheticDocument()
        other.device = "ambulance-02"
        _ = try await desk.intake(body: other.data, idempotencyKey: other.versionIdentifier, device: "ambulance-02")
        _ = try await desk.acknowledge(document.set, at: hospitalCode)
        let live = fields(try #require(await lines.next()))
        #expect(live.id == "2")
        #expect(live.data?["status"] as? String == "acknowledged")
        task.cancel()
        _ = await task.value

        // Reconnecting with Last-Event-ID 1 replays only what came later.
        _ = try await desk.divert(document.set, at: hospitalCode, reason: .noBeds, note: nil)
        (lines, task) = open(desk, lastEventID: 1)
        #expect(fields(try #require(await lines.next())).data?["status"] as? String == "acknowledged")
        let diverted = fields(try #require(await lines.next()))
        #expect(diverted.id == "3")
        #expect(diverted.data?["reason"] as? String == "no-beds")
        task.cancel()
        _ = await task.value
    }

    @Test func theBoardHearsEveryDeviceWithItsOwnIDs() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let desk = try await Self.desk(directory, devices: ["ambulance-01", "ambulance-02"])
        var one = SyntheticDocument()
        one.device = "ambulance-01"
        var two = SyntheticDocument()
        two.device = "ambulance-02"
        _ = try await desk.intake(body: one.data, idempotencyKey: one.versionIdentifier, device: "ambulance-01")
        _ = try await desk.intake(body: two.data, idempotencyKey: two.versionIdentifier, device: "ambulance-02")
        // The replay comes after the stream subscribed: once it is read, a new event arrives live.
        var (lines, task) = open(desk, lastEventID: 0, board: true)
        let first = fields(try #require(await lines.next()))
        let second = fields(try #require(await lines.next()))
        #expect([first.id, second.id] == ["1", "2"])
        #expect(second.data?["device"] as? String == "ambulance-02")
        _ = try await desk.acknowledge(two.set, at: hospitalCode)
        let live = fields(try #require(await lines.next()))
        #expect(live.id == "3")
        #expect(live.data?["sequence"] as? Int == 2)
        #expect(live.data?["status"] as? String == "acknowledged")
        task.cancel()
        _ = await task.value
        (lines, task) = open(desk, lastEventID: 2, board: true)
        #expect(fields(try #require(await lines.next())).id == "3")
        task.cancel()
        _ = await task.value
    }

    @Test func theBoardHearsItsHospitalsPublicationsLiveWithoutAnID() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let desk = try await Self.desk(directory, devices: ["ambulance-01"])
        let document = SyntheticDocument()
        _ = try await desk.intake(
            body: document.data,
            idempotencyKey: document.versionIdentifier,
            device: "ambulance-01"
        )
        var (lines, task) = open(desk, lastEventID: 0, board: true)
        #expect(fields(try #require(await lines.next())).id == "1")

        let published = try await desk.publishAcceptance(
            hospitalCode,
            setting: [.dialysis: try .notAccepting(.noBeds)],
            withdrawing: [],
            staff: "staff-01"
        )
        let frame = try #require(await lines.next())
        #expect(frame.hasPrefix("event: acceptance\n"), "no id: it does not move the board's Last-Event-ID")
        let live = fields(frame)
        #expect(live.id == nil)
        #expect(live.data?["hospital"] as? String == hospitalCode.rawValue)
        #expect((live.data?["revision"] as? NSNumber)?.int64Value == published.revision)
        // The board's next event keeps its numbering.
        _ = try await desk.acknowledge(document.set, at: hospitalCode)
        #expect(fields(try #require(await lines.next())).id == "2")
        task.cancel()
        _ = await task.value

        // A reconnected board is not sent the publication again (it reads the acceptance when it connects).
        (lines, task) = open(desk, lastEventID: 1, board: true)
        #expect(fields(try #require(await lines.next())).id == "2")
        _ = try await desk.divert(document.set, at: hospitalCode, reason: .noBeds, note: nil)
        #expect(fields(try #require(await lines.next())).id == "3")
        task.cancel()
        _ = await task.value
    }

    @Test func aKeepAliveEveryFifteenSecondsOfTheInjectedClock() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = TestClock()
        let desk = try await Self.desk(directory, devices: [], clock: clock)
        let arrived = Flag()
        let task = Task { () -> String? in
            let (lines, continuation) = AsyncStream.makeStream(of: String.self)
            let stream = Task {
                await desk.runDeviceStream(device: "ambulance-01", lastEventID: nil) { continuation.yield($0) }
            }
            var iterator = lines.makeAsyncIterator()
            let line = await iterator.next()
            arrived.set()
            stream.cancel()
            return line
        }
        // Nothing is sent while the clock stands still; advance it in 15 s steps until the stream's sleeper wakes.
        await Task.megaYield()
        #expect(!arrived.isSet)
        let start = clock.now
        var steps = 0
        while !arrived.isSet && steps < 100 {
            await clock.advance(by: .seconds(15))
            await Task.megaYield()
            steps += 1
        }
        #expect(await task.value == ": keep-alive\n\n")
        #expect(start.duration(to: clock.now) >= .seconds(15))
    }
}

/// A flag set from one task and read from another.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
