/// A message from vsmartcard's vpcd (the virtual reader inside pcscd) to the virtual card.
public enum VPCDMessage: Sendable, Hashable {
    /// `00`: power off.
    case powerOff
    /// `01`: power on.
    case powerOn
    /// `02`: reset.
    case reset
    /// `04`: send the ATR.
    case getATR
    /// Another one-byte control payload (ignored).
    case unknownControl(UInt8)
    /// A payload longer than one byte: a command APDU.
    case apdu([UInt8])

    /// Classifies one frame's payload.
    public init(payload: [UInt8]) {
        guard payload.count == 1 else {
            self = .apdu(payload)
            return
        }
        switch payload[0] {
        case 0x00: self = .powerOff
        case 0x01: self = .powerOn
        case 0x02: self = .reset
        case 0x04: self = .getATR
        default: self = .unknownControl(payload[0])
        }
    }
}

/// The vpcd wire format: every payload, both ways, is preceded by its length as a 2-byte big-endian integer.
public enum VPCDFraming {
    /// The largest payload a frame can carry.
    public static let maximumPayload = Int(UInt16.max)

    /// Frames a payload (an ATR or a response APDU).
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= maximumPayload, "vpcd payloads are at most 65535 bytes")
        return [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
    }
}

/// Reassembles vpcd frames from a byte stream that TCP may split or join anywhere.
public struct VPCDFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    /// An empty decoder.
    public init() {}

    /// The bytes received but not yet part of a complete frame.
    public var pendingByteCount: Int { self.buffer.count - self.start }

    /// Adds received bytes.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        self.buffer.append(contentsOf: bytes)
    }

    /// The next complete frame's payload, or `nil` until more bytes arrive. Zero-length frames are skipped.
    public mutating func nextPayload() -> [UInt8]? {
        while self.pendingByteCount >= 2 {
            let length = Int(self.buffer[self.start]) << 8 | Int(self.buffer[self.start + 1])
            guard self.pendingByteCount >= 2 + length else { return nil }
            let payload = Array(self.buffer[(self.start + 2)..<(self.start + 2 + length)])
            self.start += 2 + length
            self.compact()
            if length > 0 {
                return payload
            }
        }
        return nil
    }

    /// The next complete message, or `nil` until more bytes arrive.
    public mutating func nextMessage() -> VPCDMessage? {
        self.nextPayload().map(VPCDMessage.init(payload:))
    }

    private mutating func compact() {
        if self.start == self.buffer.count {
            self.buffer.removeAll(keepingCapacity: true)
            self.start = 0
        } else if self.start > 4096 {
            self.buffer.removeFirst(self.start)
            self.start = 0
        }
    }
}
