import Testing

@testable import KyukyuReceiver

/// The event streams' memory of what they sent: events published out of order are all sent, each once.
@Suite("Event streams: what was sent")
struct SentPositionsTests {
    /// Admits each position in turn; whether each was new.
    func admit(_ positions: [Int64], into sent: inout SentPositions) -> [Bool] {
        positions.map { sent.admit($0) }
    }

    /// Two acknowledgements committed together publish 11 before 10: both go out (a high-water mark dropped 10).
    @Test func anEventPublishedAfterALaterOneIsStillSent() {
        var sent = SentPositions(floor: 9)
        #expect(admit([11, 10], into: &sent) == [true, true])
        #expect(sent.floor == 11)
        #expect(admit([10, 11], into: &sent) == [false, false], "each once")
        #expect(admit([9], into: &sent) == [false], "replayed before the stream went live")
    }

    @Test func aLiveOnlyStreamStartsAnywhere() {
        var sent = SentPositions(floor: Int64.min)
        #expect(admit([501, 500, 502, 501], into: &sent) == [true, true, true, false])
    }

    /// Positions with gaps are remembered up to a bound; the oldest half is then let go.
    @Test func theMemoryIsBounded() {
        var sent = SentPositions(floor: 0)
        let evens = Array(stride(from: Int64(2), through: Int64(2 * (SentPositions.memory + 1)), by: 2))
        #expect(admit(evens, into: &sent).allSatisfy { $0 })
        #expect(sent.floor > 0)
        #expect(admit([2, evens.last! + 1], into: &sent) == [false, true])
    }
}
