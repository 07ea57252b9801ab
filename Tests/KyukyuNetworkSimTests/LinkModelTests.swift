import Foundation
import KyukyuNetworkSim
import Testing

@Suite("Network simulator: the link model")
struct LinkModelTests {
    static let ms: Int64 = 1_000_000

    @Test func latencyAndJitterStayInBoundsAndKeepTheOrder() {
        var shaper = LinkShaper()
        let conditions = LinkConditions(latencyMilliseconds: 30, jitterMilliseconds: 10)
        // The jitter's extremes: 20 ms and 40 ms one way.
        #expect(
            shaper.release(bytes: 10, arrivedAt: 0, conditions: conditions, jitterDraw: 0, lossDraw: 1) == 20 * Self.ms
        )
        var other = LinkShaper()
        #expect(
            other.release(bytes: 10, arrivedAt: 0, conditions: conditions, jitterDraw: 1, lossDraw: 1) == 40 * Self.ms
        )
        // A piece drawn shorter than the one before it still leaves after it: TCP keeps order.
        var ordered = LinkShaper()
        let first = ordered.release(bytes: 10, arrivedAt: 0, conditions: conditions, jitterDraw: 1, lossDraw: 1)
        let second = ordered.release(
            bytes: 10,
            arrivedAt: 1 * Self.ms,
            conditions: conditions,
            jitterDraw: 0,
            lossDraw: 1
        )
        #expect(first == 40 * Self.ms && second == 40 * Self.ms)
        // Jitter larger than the latency never makes a negative delay.
        var wide = LinkShaper()
        let noDelay = LinkConditions(latencyMilliseconds: 5, jitterMilliseconds: 50)
        #expect(
            wide.release(bytes: 1, arrivedAt: 7 * Self.ms, conditions: noDelay, jitterDraw: 0, lossDraw: 1) == 7
                * Self.ms
        )
    }

    @Test func theBandwidthCapSerializesPieces() {
        var shaper = LinkShaper()
        // 1,000 bytes/s: 100 bytes take 100 ms, and the next 100 bytes queue behind them.
        let conditions = LinkConditions(bandwidthBytesPerSecond: 1_000)
        #expect(
            shaper.release(bytes: 100, arrivedAt: 0, conditions: conditions, jitterDraw: 0.5, lossDraw: 1) == 100
                * Self.ms
        )
        #expect(
            shaper.release(bytes: 100, arrivedAt: 0, conditions: conditions, jitterDraw: 0.5, lossDraw: 1) == 200
                * Self.ms
        )
        // After an idle second the link is free again.
        #expect(
            shaper.release(bytes: 100, arrivedAt: 1_000 * Self.ms, conditions: conditions, jitterDraw: 0.5, lossDraw: 1)
                == 1_100 * Self.ms
        )
    }

    @Test func aLossIsARetransmissionNotMissingBytes() {
        let conditions = LinkConditions(latencyMilliseconds: 10, lossRate: 0.25, retransmitMilliseconds: 200)
        var lost = LinkShaper()
        #expect(
            lost.release(bytes: 1, arrivedAt: 0, conditions: conditions, jitterDraw: 0.5, lossDraw: 0.1) == 210
                * Self.ms
        )
        var kept = LinkShaper()
        #expect(
            kept.release(bytes: 1, arrivedAt: 0, conditions: conditions, jitterDraw: 0.5, lossDraw: 0.3) == 10 * Self.ms
        )
    }

    @Test func aScheduleSaysWhatHoldsWhenAndWhenItChanges() {
        let schedule = LinkSchedule(
            base: .lte,
            windows: [
                .init(at: 10, seconds: 5, conditions: LinkConditions(mode: .blackhole)),
                .init(at: 12, seconds: 1, conditions: LinkConditions(mode: .reset)),
            ]
        )
        #expect(schedule.conditions(at: 0) == .lte)
        #expect(schedule.conditions(at: 10).mode == .blackhole)
        #expect(schedule.conditions(at: 12.5).mode == .reset, "the later window wins")
        #expect(schedule.conditions(at: 14.9).mode == .blackhole)
        #expect(schedule.conditions(at: 15) == .lte)
        #expect(schedule.nextChange(after: 0) == 10)
        #expect(schedule.nextChange(after: 12) == 13)
        #expect(schedule.nextChange(after: 15) == nil)
        #expect(schedule.problem == nil)
        #expect(LinkSchedule(windows: [.init(at: -1, seconds: 1, conditions: .lte)]).problem != nil)
    }

    @Test func badConditionsAreNamedAndMissingKeysTakeTheirDefaults() throws {
        #expect(LinkConditions(latencyMilliseconds: -1).problem == "latency must be 0…60000 ms")
        #expect(LinkConditions(lossRate: 1.5).problem == "loss must be 0…1")
        #expect(LinkConditions(bandwidthBytesPerSecond: 0).problem == "bandwidth must be at least 1 byte/s")
        #expect(LinkConditions.lte.problem == nil)
        let decoded = try JSONDecoder().decode(LinkConditions.self, from: Data(#"{"mode":"blackhole"}"#.utf8))
        #expect(decoded == LinkConditions(mode: .blackhole))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(LinkConditions.self, from: Data(#"{"mode":"sometimes"}"#.utf8))
        }
    }
}
