import Logging
import Testing

@testable import KyukyuCard

@Suite("APDU layer")
struct APDUTests {
    @Test func encodesShortAPDUCases() throws {
        #expect(try CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 256).encoded() == [0x00, 0xB0, 0x00, 0x00, 0x00])
        #expect(try CommandAPDU(ins: 0x20, p1: 0, p2: 0x80).encoded() == [0x00, 0x20, 0x00, 0x80])
        #expect(
            try CommandAPDU(ins: 0xA4, p1: 4, p2: 0x0C, data: [1, 2]).encoded() == [0x00, 0xA4, 0x04, 0x0C, 0x02, 1, 2]
        )
        #expect(throws: CardError.forbiddenCommand("")) {
            try CommandAPDU(ins: 0xD6, p1: 0, p2: 0, data: [UInt8](repeating: 0, count: 256)).encoded()
        }
    }

    @Test func parsesStatusWords() throws {
        let response = try ResponseAPDU(bytes: [1, 2, 0x63, 0xC2])
        #expect(response.data == [1, 2])
        #expect(response.statusWord.verifyTriesLeft == 2)
        #expect(StatusWord.success.verifyTriesLeft == nil)
        #expect(throws: CardError.malformedResponse("")) { try ResponseAPDU(bytes: [0x90]) }
    }

    @Test func fetchesMoreDataWithGetResponse() async throws {
        let card = FakeCard { state in
            state.files[[0xA0]] = [:]
            state.override = { apdu in
                switch apdu[1] {
                case 0xCA: return [1, 2, 0x61, 0x03]
                case 0xC0 where apdu[4] == 3: return [3, 4, 5, 0x61, 0x01]
                case 0xC0 where apdu[4] == 1: return [6, 0x90, 0x00]
                default: return [0x6F, 0x00]
                }
            }
        }
        let response = try await APDUExchange(connection: card).send(CommandAPDU(ins: 0xCA, p1: 0, p2: 0, le: 256))
        #expect(response.data == [1, 2, 3, 4, 5, 6])
        #expect(response.statusWord == .success)
        #expect(card.commands.count == 3)
    }

    @Test func resendsWithTheLengthA6CxxAnswerAsksFor() async throws {
        let card = FakeCard { state in
            state.override = { apdu in
                apdu.last == 0x10 ? [UInt8](repeating: 7, count: 16) + [0x90, 0x00] : [0x6C, 0x10]
            }
        }
        let response = try await APDUExchange(connection: card).send(CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 256))
        #expect(response.data.count == 16)
        #expect(card.commands.map { $0.last } == [0x00, 0x10])
    }

    @Test func t0SendsCase4WithoutLeAndCollectsTheAnswer() async throws {
        let card = FakeCard(cardProtocol: .t0) { state in
            state.override = { apdu in
                if apdu[1] == 0x2A { return [0x61, 0x00] }  // 256 bytes waiting
                if apdu[1] == 0xC0 { return [UInt8](repeating: 1, count: 256) + [0x90, 0x00] }
                return nil
            }
        }
        let command = CommandAPDU(cla: 0x80, ins: 0x2A, p1: 0, p2: 0x80, data: [1, 2, 3], le: 256)
        let response = try await APDUExchange(connection: card).send(command)
        #expect(response.data.count == 256)
        #expect(card.commands[0] == [0x80, 0x2A, 0x00, 0x80, 0x03, 1, 2, 3], "no Le under T=0")
        #expect(card.commands[1] == [0x00, 0xC0, 0x00, 0x00, 0x00])
    }

    @Test func aCardThatNeverStopsAnnouncingDataIsMalformed() async throws {
        let card = FakeCard { state in state.override = { _ in [0x00, 0x61, 0x01] } }
        await #expect(throws: CardError.malformedResponse("")) {
            try await APDUExchange(connection: card).send(CommandAPDU(ins: 0xCA, p1: 0, p2: 0, le: 1))
        }
    }
}

@Suite("PC/SC return codes")
struct PCSCErrorTests {
    @Test(arguments: [
        (0x8010_001D, CardError.Code.serviceUnavailable),
        (0x8010_002E, .noReaders),
        (0x8010_0009, .readerNotFound),
        (0x8010_0017, .readerUnavailable),
        (0x8010_000C, .noCard),
        (0x8010_0069, .cardRemoved),
        (0x8010_0066, .cardUnresponsive),
        (0x8010_000B, .sharingViolation),
        (0x8010_0002, .cancelled),
        (0x8010_000A, .timedOut),
        (0x8010_0001, .pcscFailure),
    ])
    func mapsEveryReturnCodeInOnePlace(code: Int, expected: CardError.Code) {
        #expect(throws: Never.self) { try pcscCheck(0, "test") }
        do {
            try pcscCheck(code, "test")
            Issue.record("no error for \(code)")
        } catch let error as CardError {
            #expect(error.code == expected)
            #expect(error.pcscReturnCode == code)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
