import KyukyuCardSim
import Testing

@Suite("vpcd framing")
struct VPCDFramingTests {
    @Test func framesWithATwoByteBigEndianLength() {
        #expect(VPCDFraming.frame([0x90, 0x00]) == [0x00, 0x02, 0x90, 0x00])
        let long = [UInt8](repeating: 0xAB, count: 258)
        #expect(Array(VPCDFraming.frame(long).prefix(2)) == [0x01, 0x02])
        #expect(VPCDFraming.frame(long).count == 260)
    }

    @Test func classifiesControlBytesAndAPDUs() {
        #expect(VPCDMessage(payload: [0x00]) == .powerOff)
        #expect(VPCDMessage(payload: [0x01]) == .powerOn)
        #expect(VPCDMessage(payload: [0x02]) == .reset)
        #expect(VPCDMessage(payload: [0x04]) == .getATR)
        #expect(VPCDMessage(payload: [0x07]) == .unknownControl(0x07))
        #expect(VPCDMessage(payload: [0x00, 0xB0, 0x00, 0x00, 0x04]) == .apdu([0x00, 0xB0, 0x00, 0x00, 0x04]))
    }

    @Test func reassemblesFramesSplitAnywhere() {
        let stream: [UInt8] =
            VPCDFraming.frame([0x04]) + VPCDFraming.frame([0x00, 0xA4, 0x04, 0x0C, 0x02, 0x3F, 0x00])
            + VPCDFraming.frame([0x02])
        for split in 0...stream.count {
            var decoder = VPCDFrameDecoder()
            var messages: [VPCDMessage] = []
            decoder.append(stream[..<split])
            while let message = decoder.nextMessage() { messages.append(message) }
            decoder.append(stream[split...])
            while let message = decoder.nextMessage() { messages.append(message) }
            #expect(messages == [.getATR, .apdu([0x00, 0xA4, 0x04, 0x0C, 0x02, 0x3F, 0x00]), .reset])
            #expect(decoder.pendingByteCount == 0)
        }
    }

    @Test func byteByByteAndZeroLengthFrames() {
        var decoder = VPCDFrameDecoder()
        var messages: [VPCDMessage] = []
        for byte in [0x00, 0x00] + VPCDFraming.frame([0x01]) {
            decoder.append([byte])
            while let message = decoder.nextMessage() { messages.append(message) }
        }
        #expect(messages == [.powerOn])
        decoder.append([0x00, 0x05, 0x00])
        #expect(decoder.nextMessage() == nil)
        #expect(decoder.pendingByteCount == 3)
    }

    @Test func apduCodecRoundTrips() {
        let cases: [[UInt8]] = [
            [0x00, 0x20, 0x00, 0x80],
            [0x00, 0xB0, 0x00, 0x00, 0x00],
            [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06],
            [0x80, 0x2A, 0x00, 0x80, 0x02, 0x01, 0x02, 0x00],
        ]
        for bytes in cases {
            #expect(CommandAPDU(parsing: bytes)?.bytes == bytes)
        }
        #expect(CommandAPDU(parsing: [0x00, 0xB0, 0x00, 0x00, 0x00])?.le == 256)
        #expect(ResponseAPDU(parsing: [0x01, 0x90, 0x00]) == ResponseAPDU(data: [0x01], status: .success))
        #expect(StatusWord.triesLeft(2).description == "63C2")
    }
}
