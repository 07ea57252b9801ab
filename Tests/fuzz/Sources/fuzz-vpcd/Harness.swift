// The card simulator's vpcd link (KyukyuCardSim: VPCDFraming.swift) and its APDU handling (APDU.swift, JPKICard)
// on a hostile byte stream from "pcscd". The first two bytes seed how the stream is cut into TCP reads.
//
// Invariants: the decoder yields exactly the frames a plain reading of the stream gives, whatever the cuts, each
// payload as long as its declared length (never longer, at most 65535 bytes), and keeps the rest pending; a
// command APDU that parses encodes back to its bytes; the card answers every command with a status word, in a
// response a vpcd frame can carry and a decoder gives back whole; PIN tries grow only by a VERIFY that succeeds.

import Foundation
import FuzzSupport
import KyukyuCardSim
import Logging

/// The card, made once from a test PKI (kept in `KYUKYU_FUZZ_PKI`, or a temporary folder).
let baseCard: JPKICard = {
    let directory =
        ProcessInfo.processInfo.environment["KYUKYU_FUZZ_PKI"] ?? NSTemporaryDirectory() + "kyukyu-fuzz-pki"
    let logger = Logger(label: "kyukyu-fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    do {
        let pki = try TestPKI.loadOrCreate(directory: directory, logger: logger)
        return try JPKICard(profile: .card, credentials: try pki.holder(1, validity: .valid), attributesPIN: "5678")
    } catch {
        invariantBroken("cannot make the card: \(error)")
    }
}()

/// libFuzzer's entry point: checks one input (always returns 0; a broken invariant aborts).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var reader = FuzzReader(fuzzBytes(start, count))
    var seed = UInt32(reader.byte()) << 8 | UInt32(reader.byte()) | 1
    let stream = reader.rest()

    // What the stream holds, read plainly.
    var expected: [[UInt8]] = []
    var position = 0
    while stream.count - position >= 2 {
        let length = Int(stream[position]) << 8 | Int(stream[position + 1])
        guard stream.count - position - 2 >= length else { break }
        if length > 0 { expected.append(Array(stream[(position + 2)..<(position + 2 + length)])) }
        position += 2 + length
    }

    var decoder = VPCDFrameDecoder()
    var payloads: [[UInt8]] = []
    var fed = 0
    while fed < stream.count {
        seed ^= seed << 13
        seed ^= seed >> 17
        seed ^= seed << 5
        let cut = min(stream.count - fed, Int(seed % 97) + 1)
        decoder.append(stream[fed..<(fed + cut)])
        fed += cut
        while let payload = decoder.nextPayload() {
            require(!payload.isEmpty && payload.count <= VPCDFraming.maximumPayload, "a payload of a bad length")
            payloads.append(payload)
        }
    }
    require(payloads == expected, "the decoder's frames are not the stream's")
    require(decoder.pendingByteCount == stream.count - position, "the decoder lost or invented bytes")

    var card = baseCard
    for payload in payloads {
        switch VPCDMessage(payload: payload) {
        case .powerOff, .powerOn, .reset: card.reset()
        case .getATR, .unknownControl: break
        case .apdu(let bytes):
            if let command = CommandAPDU(parsing: bytes) {
                require(command.bytes == bytes, "a command APDU does not encode back to its bytes")
            }
            let tries = JPKICard.PIN.allCases.map { card.triesLeft($0) }
            let reply = card.process(bytes)
            let grew = zip(tries, JPKICard.PIN.allCases.map { card.triesLeft($0) }).contains { $0 < $1 }
            require(!grew || (bytes[1] == 0x20 && reply.status == .success), "a PIN's tries grew without a VERIFY")
            let answer = reply.bytes
            require(answer.count >= 2 && answer.count <= VPCDFraming.maximumPayload, "an answer of a bad length")
            require(answer.count <= 256 + 2, "an answer longer than a short APDU's")
            var back = VPCDFrameDecoder()
            back.append(VPCDFraming.frame(answer))
            require(back.nextPayload() == answer && back.pendingByteCount == 0, "an answer's frame does not decode")
        }
    }
    return 0
}
