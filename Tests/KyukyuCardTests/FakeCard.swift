import Synchronization

@testable import KyukyuCard

/// An in-memory JPKI token for unit tests: files, PIN counters and a command log.
final class FakeCard: CardConnection {
    struct State {
        var files: [[UInt8]: [UInt16: [UInt8]]] = [:]
        var pins: [UInt16: (value: [UInt8], tries: Int)] = [:]
        var protectedFiles: [UInt16: UInt16] = [:]  // file → PIN file that must be verified
        var selectedAID: [UInt8]?
        var selectedFile: UInt16?
        var verified: Set<UInt16> = []
        var log: [[UInt8]] = []
        var override: (@Sendable ([UInt8]) -> [UInt8]?)?
        /// ISO 7816-4: an empty VERIFY of a verified PIN answers 9000 (instead of 63Cx).
        var answersVerifiedToCounterQuery = false
        /// PC/SC events in order: "begin", "end(leave)", "end(reset)", "disconnect(...)".
        var events: [String] = []
        var inTransaction = false
        var commandsOutsideTransaction = 0
        /// Awaited after the card processed a command and before its answer returns: lets a test hold an
        /// exchange "on the wire".
        var gate: (@Sendable ([UInt8]) async -> Void)?
    }

    let state: Mutex<State>
    let cardProtocol: CardProtocol
    let atr: [UInt8] = [0x3B, 0xC5, 0xFF, 0x81, 0x31, 0xFB, 0x45, 0x80, 0x73, 0xC6, 0x01, 0x00, 0x00]

    init(cardProtocol: CardProtocol = .t1, _ configure: (inout State) -> Void = { _ in }) {
        var state = State()
        configure(&state)
        self.state = Mutex(state)
        self.cardProtocol = cardProtocol
    }

    static func jpki(
        label: String = "JPKIAPICCTOKEN2",
        certificate: [UInt8] = [],
        authTries: Int = 3,
        gate: (@Sendable ([UInt8]) async -> Void)? = nil
    ) -> FakeCard {
        FakeCard { state in
            state.gate = gate
            var info = Array(label.utf8) + [UInt8](repeating: 0x20, count: 32 - label.utf8.count)
            info += [UInt8](repeating: 0, count: 128)
            state.files[JPKI.jpkiAID] = [JPKI.tokenInfoEF: info, JPKI.authCertificateEF: certificate]
            state.files[JPKI.attributesAID] = [:]
            state.pins[JPKI.authPINEF] = (Array("1234".utf8), authTries)
            state.pins[JPKI.attributesPINEF] = (Array("1234".utf8), 3)
        }
    }

    var commands: [[UInt8]] { state.withLock { $0.log } }
    var events: [String] { state.withLock { $0.events } }

    func transmit(_ command: [UInt8]) async throws -> [UInt8] {
        let (answer, gate) = state.withLock { state in
            state.log.append(command)
            if !state.inTransaction { state.commandsOutsideTransaction += 1 }
            if let override = state.override, let answer = override(command) { return (answer, state.gate) }
            return (Self.process(command, &state), state.gate)
        }
        // The card has answered; the answer is still on its way back.
        if let gate { await gate(command) }
        return answer
    }

    func beginTransaction() async throws {
        state.withLock { state in
            state.events.append("begin")
            state.inTransaction = true
        }
    }

    func close(endingTransaction: Bool, disposition: CardDisposition) async {
        state.withLock { state in
            if endingTransaction {
                state.events.append("end(\(disposition))")
                state.inTransaction = false
            } else {
                state.events.append("disconnect(\(disposition))")
            }
            if disposition == .reset {
                state.selectedAID = nil
                state.selectedFile = nil
                state.verified = []
            }
        }
    }

    static func process(_ apdu: [UInt8], _ state: inout State) -> [UInt8] {
        let ins = apdu[1]
        let p1 = apdu[2]
        let p2 = apdu[3]
        let lc = apdu.count > 5 ? Int(apdu[4]) : 0
        let data = apdu.count > 5 ? Array(apdu[5..<(5 + lc)]) : []
        switch ins {
        case 0xA4 where p1 == 0x04:
            guard state.files[data] != nil else { return [0x6A, 0x82] }
            state.selectedAID = data
            state.selectedFile = nil
            state.verified = []
            return [0x90, 0x00]
        case 0xA4 where p1 == 0x02:
            let fid = UInt16(data[0]) << 8 | UInt16(data[1])
            guard let aid = state.selectedAID,
                state.files[aid]?[fid] != nil || state.pins[fid] != nil || fid == 0x0017
            else { return [0x6A, 0x82] }
            state.selectedFile = fid
            return [0x90, 0x00]
        case 0xB0:
            guard let aid = state.selectedAID, let fid = state.selectedFile, let file = state.files[aid]?[fid] else {
                return [0x69, 0x86]
            }
            if let pin = state.protectedFiles[fid], !state.verified.contains(pin) { return [0x69, 0x82] }
            let offset = Int(p1) << 8 | Int(p2)
            guard offset < file.count else { return [0x6B, 0x00] }
            let le = apdu.count == 5 ? (apdu[4] == 0 ? 256 : Int(apdu[4])) : 256
            return Array(file[offset..<min(file.count, offset + le)]) + [0x90, 0x00]
        case 0x20:
            guard let fid = state.selectedFile, var pin = state.pins[fid] else { return [0x69, 0x86] }
            if pin.tries == 0 { return [0x69, 0x84] }
            if data.isEmpty {
                if state.answersVerifiedToCounterQuery, state.verified.contains(fid) { return [0x90, 0x00] }
                return [0x63, 0xC0 | UInt8(pin.tries)]
            }
            if data == pin.value {
                pin.tries = fid == JPKI.authPINEF || fid == JPKI.attributesPINEF ? 3 : 5
                state.pins[fid] = pin
                state.verified.insert(fid)
                return [0x90, 0x00]
            }
            pin.tries -= 1
            state.pins[fid] = pin
            return [0x63, 0xC0 | UInt8(pin.tries)]
        case 0x2A:
            guard state.verified.contains(JPKI.authPINEF) else { return [0x69, 0x82] }
            return [UInt8](repeating: 0xA5, count: 256) + [0x90, 0x00]
        default:
            return [0x6D, 0x00]
        }
    }
}

/// A DER-like blob: `30 82 hh ll` + body, followed by filler.
func derBlob(bodyLength: Int, filler: Int = 0) -> [UInt8] {
    [0x30, 0x82, UInt8(bodyLength >> 8), UInt8(bodyLength & 0xFF)]
        + (0..<bodyLength).map { UInt8(truncatingIfNeeded: $0 * 7) }
        + [UInt8](repeating: 0xFF, count: filler)
}
