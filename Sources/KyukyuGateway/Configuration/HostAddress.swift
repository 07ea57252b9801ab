#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The address the gateway listens on, classified for the listening policy and the certificate's names.
struct HostAddress: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// Four bytes.
        case ipv4([UInt8])
        /// Sixteen bytes.
        case ipv6([UInt8])
        /// A host name (lower-cased).
        case name(String)
        /// Neither an address nor a valid host name.
        case invalid
    }

    let kind: Kind

    /// Parses `host`: an IPv4 address, an IPv6 address (brackets allowed), or a host name.
    init(_ host: String) {
        var text = host
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let bytes = Self.parse(text, family: AF_INET, count: 4) {
            self.kind = .ipv4(bytes)
        } else if let bytes = Self.parse(text, family: AF_INET6, count: 16) {
            self.kind = .ipv6(bytes)
        } else if text == host, Self.isHostName(text) {
            self.kind = .name(text.lowercased())
        } else {
            self.kind = .invalid
        }
    }

    var isValid: Bool { self.kind != .invalid }

    /// 127.0.0.0/8, `::1`, `::ffff:127.0.0.0/104`, or `localhost`.
    var isLoopback: Bool {
        switch self.kind {
        case .ipv4(let bytes):
            return bytes[0] == 127
        case .ipv6(let bytes):
            if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
            return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
        case .name(let name):
            return name == "localhost"
        case .invalid:
            return false
        }
    }

    /// `0.0.0.0` or `::`: every address of the machine.
    var isWildcard: Bool {
        switch self.kind {
        case .ipv4(let bytes), .ipv6(let bytes): bytes.allSatisfy { $0 == 0 }
        case .name, .invalid: false
        }
    }

    private static func parse(_ text: String, family: Int32, count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let result = buffer.withUnsafeMutableBytes { inet_pton(family, text, $0.baseAddress) }
        return result == 1 ? Array(buffer.prefix(count)) : nil
    }

    /// RFC 1123: at most 253 bytes, labels of 1-63 letters, digits and inner hyphens.
    private static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
            return label.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D
            }
        }
    }
}
