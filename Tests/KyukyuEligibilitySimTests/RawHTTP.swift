import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A blocking one-request HTTP/1.1 client on a raw socket, to observe exactly what reaches the wire (a head
/// without a body, a reset).
enum RawHTTP {
    enum End: Equatable, Sendable {
        case closed
        case reset
        case timeout
    }

    struct Outcome: Sendable {
        var received: [UInt8]
        var end: End
        var headArrivedAfter: Duration
    }

    struct Failure: Error {
        var what: String
    }

    /// Runs the blocking exchange on a dispatch thread, not on the cooperative pool (which serves the server).
    static func get(port: Int, path: String, readFor seconds: Int) async throws -> Outcome {
        try await exchange(
            port: port,
            request: Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8),
            readFor: seconds
        )
    }

    /// A POST with an XML body.
    static func post(port: Int, path: String, body: [UInt8], readFor seconds: Int) async throws -> Outcome {
        let head =
            "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/xml; charset=utf-8\r\n"
            + "Content-Length: \(body.count)\r\n\r\n"
        return try await exchange(port: port, request: Array(head.utf8) + body, readFor: seconds)
    }

    static func exchange(port: Int, request: [UInt8], readFor seconds: Int) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result { try blockingExchange(port: port, request: request, readFor: seconds) }
                )
            }
        }
    }

    static func blockingExchange(port: Int, request: [UInt8], readFor seconds: Int) throws -> Outcome {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(what: "socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(what: "connect") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard send(fd, request, request.count, 0) == request.count else { throw Failure(what: "send") }
        let clock = ContinuousClock()
        let start = clock.now
        var received: [UInt8] = []
        var headAt: Duration = .seconds(3600)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while clock.now - start < .seconds(seconds) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                received.append(contentsOf: buffer[0..<n])
                if headAt == .seconds(3600), received.count >= 4,
                    received.suffix(4) == [13, 10, 13, 10]
                        || String(decoding: received, as: UTF8.self).contains("\r\n\r\n")
                {
                    headAt = clock.now - start
                }
            } else if n == 0 {
                return Outcome(received: received, end: .closed, headArrivedAfter: headAt)
            } else if errno == ECONNRESET {
                return Outcome(received: received, end: .reset, headArrivedAfter: headAt)
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                throw Failure(what: "recv errno \(errno)")
            }
        }
        return Outcome(received: received, end: .timeout, headArrivedAfter: headAt)
    }
}
