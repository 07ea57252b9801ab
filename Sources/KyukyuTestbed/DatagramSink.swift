import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A unix datagram socket a test binds and reads, standing in for systemd's notification or journal socket.
/// Every receive has a time limit (`SO_RCVTIMEO`).
public final class DatagramSink: Sendable {
    /// The socket's address: a path, or `@name` for an abstract one.
    public let path: String
    private let fd: Int32

    /// Binds a socket in a fresh temporary folder, or an abstract name when `abstract` is set.
    public init(abstract: Bool = false, receiveTimeoutSeconds: Int = 10) throws {
        let name = "kyukyu-ops-\(UUID().uuidString.prefix(8))"
        if abstract {
            path = "@" + name
        } else {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            path = folder + "/notify.sock"
        }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        if !path.hasPrefix("@") { try? FileManager.default.removeItem(atPath: path) }
    }

    /// The next datagram, or `nil` after the receive timeout without one.
    public func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count >= 0 ? Array(buffer[..<count]) : nil
    }

    /// A datagram already queued, as text, without waiting; `nil` when none is.
    public func receiveTextNow() -> String? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return count >= 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    /// The next datagram as text, or `nil` after the receive timeout without one.
    public func receiveText() -> String? {
        receive().map { String(decoding: $0, as: UTF8.self) }
    }
}
