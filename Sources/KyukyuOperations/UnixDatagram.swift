#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Sends one datagram to a unix socket address, as systemd's notification and journal sockets take them.
///
/// `address` is a path, or an abstract name written with a leading `@` (systemd's convention for
/// `$NOTIFY_SOCKET`). A socket is opened and closed per datagram: these are rare (readiness, the watchdog every few
/// seconds, log lines), and a fresh socket survives systemd re-creating its end.
enum UnixDatagram {
    static func send(_ payload: [UInt8], to address: String) throws(OperationsError) {
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var path = Array(address.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        guard !path.isEmpty, path.count < capacity else { throw .invalidSocketAddress(address) }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        #if canImport(Darwin)
            let fd = socket(AF_UNIX, SOCK_DGRAM, 0)
        #else
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #endif
        guard fd >= 0 else { throw .socketFailure("socket(AF_UNIX, SOCK_DGRAM)", errno: errno) }
        defer { close(fd) }
        let sent = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), address, length)
                }
            }
        }
        guard sent == payload.count else { throw .socketFailure("sendto(\(address))", errno: errno) }
    }
}
