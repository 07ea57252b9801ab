import NIOCore

/// A minimal HTTP/1.1 response parser for the load client: it needs each answer's status and end, nothing else, so
/// it reads the status line and three headers (Content-Length, Transfer-Encoding, Connection) and skips the body
/// without copying it. Bodies are framed by Content-Length, chunked encoding, or the connection's close; 1xx answers
/// are skipped; 204 and 304 have no body.
struct ResponseParser {
    /// One complete answer.
    struct Answer: Equatable {
        /// The status code.
        var status: Int
        /// Whether the server said it will close the connection after it.
        var closes: Bool
    }

    /// A framing the parser cannot follow; the connection is then closed and its request counted failed.
    struct Malformed: Error {}

    private enum State {
        case head
        case body(remaining: Int, Answer)
        case chunkSize(Answer)
        case chunkData(remaining: Int, Answer)
        case chunkEnd(Answer)
        case trailers(Answer)
        case untilClose(Answer)
    }

    private var state = State.head
    private var buffer: ByteBuffer?
    /// The longest head accepted, so that garbage cannot grow the buffer without end.
    private let maximumHeadBytes = 64 * 1024

    /// Takes bytes as they arrive and calls `answered` for each answer they complete.
    mutating func feed(_ bytes: ByteBuffer, _ answered: (Answer) -> Void) throws {
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = bytes
        } else {
            var incoming = bytes
            buffer!.writeBuffer(&incoming)
        }
        while try step(answered) {}
        if buffer!.readableBytes == 0 {
            // Let go of the bytes: holding them would keep the channel from reusing its receive buffer.
            buffer = nil
        } else if buffer!.readerIndex > 4096 {
            buffer!.discardReadBytes()
        }
    }

    /// The connection closed: an answer framed by the close is complete; any other partial answer is not.
    mutating func closed() -> Answer? {
        if case .untilClose(let answer) = state {
            state = .head
            return answer
        }
        return nil
    }

    /// Whether the parser holds part of an answer.
    var isMidAnswer: Bool {
        if case .head = state { return (buffer?.readableBytes ?? 0) > 0 }
        return true
    }

    /// Advances one state; false when more bytes are needed.
    private mutating func step(_ answered: (Answer) -> Void) throws -> Bool {
        switch state {
        case .head:
            guard let end = find(Self.crlfcrlf) else {
                if buffer!.readableBytes > maximumHeadBytes { throw Malformed() }
                return false
            }
            let head = buffer!.readSlice(length: end + 4)!
            let parsed = try Self.parseHead(head)
            if parsed.answer.status < 200 { return true }  // 100 Continue and friends: the real answer follows.
            if parsed.answer.status == 204 || parsed.answer.status == 304 {
                answered(parsed.answer)
            } else if parsed.chunked {
                state = .chunkSize(parsed.answer)
            } else if let length = parsed.contentLength {
                if length == 0 { answered(parsed.answer) } else { state = .body(remaining: length, parsed.answer) }
            } else {
                state = .untilClose(parsed.answer)
            }
            return true
        case .body(let remaining, let answer):
            let take = min(remaining, buffer!.readableBytes)
            guard take > 0 else { return false }
            buffer!.moveReaderIndex(forwardBy: take)
            if take == remaining {
                state = .head
                answered(answer)
            } else {
                state = .body(remaining: remaining - take, answer)
            }
            return true
        case .chunkSize(let answer):
            guard let end = find(Self.crlf) else { return false }
            let line = buffer!.readSlice(length: end + 2)!
            var size = 0
            var digits = 0
            for byte in line.readableBytesView {
                guard let value = Self.hexValue(byte) else { break }
                size = size * 16 + value
                digits += 1
                if digits > 15 { throw Malformed() }
            }
            guard digits > 0 else { throw Malformed() }
            state = size == 0 ? .trailers(answer) : .chunkData(remaining: size, answer)
            return true
        case .chunkData(let remaining, let answer):
            let take = min(remaining, buffer!.readableBytes)
            guard take > 0 else { return false }
            buffer!.moveReaderIndex(forwardBy: take)
            state = take == remaining ? .chunkEnd(answer) : .chunkData(remaining: remaining - take, answer)
            return true
        case .chunkEnd(let answer):
            guard buffer!.readableBytes >= 2 else { return false }
            buffer!.moveReaderIndex(forwardBy: 2)
            state = .chunkSize(answer)
            return true
        case .trailers(let answer):
            guard let end = find(Self.crlf) else { return false }
            buffer!.moveReaderIndex(forwardBy: end + 2)
            if end == 0 {
                state = .head
                answered(answer)
            }
            return true
        case .untilClose:
            buffer!.moveReaderIndex(forwardBy: buffer!.readableBytes)
            return false
        }
    }

    private static let crlf: [UInt8] = [13, 10]
    private static let crlfcrlf: [UInt8] = [13, 10, 13, 10]

    /// The offset of `needle` in the readable bytes, or nil.
    private func find(_ needle: [UInt8]) -> Int? {
        buffer!.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= needle.count else { return nil }
            var index = 0
            let last = bytes.count - needle.count
            while index <= last {
                if bytes[index] == needle[0] {
                    var matched = 1
                    while matched < needle.count, bytes[index + matched] == needle[matched] { matched += 1 }
                    if matched == needle.count { return index }
                }
                index += 1
            }
            return nil
        }
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    private struct Head {
        var answer: Answer
        var contentLength: Int?
        var chunked: Bool
    }

    /// The status line and the three headers that frame the answer.
    private static func parseHead(_ head: ByteBuffer) throws -> Head {
        try head.withUnsafeReadableBytes { bytes -> Head in
            // "HTTP/1.x NNN ..."
            guard bytes.count >= 12, bytes[0] == UInt8(ascii: "H"), bytes[8] == UInt8(ascii: " ") else {
                throw Malformed()
            }
            var status = 0
            for offset in 9..<12 {
                let digit = bytes[offset]
                guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { throw Malformed() }
                status = status * 10 + Int(digit - UInt8(ascii: "0"))
            }
            // HTTP/1.0 closes unless told otherwise.
            var closes = bytes[7] == UInt8(ascii: "0")
            var result = Head(answer: Answer(status: status, closes: closes), contentLength: nil, chunked: false)
            var lineStart = 0
            while lineStart < bytes.count, bytes[lineStart] != 10 { lineStart += 1 }
            lineStart += 1
            while lineStart < bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count, bytes[lineEnd] != 13 { lineEnd += 1 }
                if lineEnd == lineStart { break }
                var colon = lineStart
                while colon < lineEnd, bytes[colon] != UInt8(ascii: ":") { colon += 1 }
                var valueStart = colon + 1
                while valueStart < lineEnd, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                let name = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<colon])
                let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<lineEnd])
                if equalsLowercased(name, "content-length") {
                    var length = 0
                    for digit in value {
                        guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { break }
                        length = length * 10 + Int(digit - UInt8(ascii: "0"))
                        if length > 1 << 40 { throw Malformed() }
                    }
                    result.contentLength = length
                } else if equalsLowercased(name, "transfer-encoding") {
                    result.chunked = containsLowercased(value, "chunked")
                } else if equalsLowercased(name, "connection") {
                    if containsLowercased(value, "close") { closes = true }
                    if containsLowercased(value, "keep-alive") { closes = false }
                }
                lineStart = lineEnd + 2
            }
            result.answer.closes = closes
            return result
        }
    }

    private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for index in 0..<bytes.count where bytes[index] | 0x20 != expected[index] { return false }
        return true
    }

    private static func containsLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: count)
        outer: for start in 0...(bytes.count - count) {
            for index in 0..<count where bytes[start + index] | 0x20 != expected[index] { continue outer }
            return true
        }
        return false
    }
}
