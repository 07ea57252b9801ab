import Foundation
import NIOCore
import NIOPosix

/// A minimal HTTP/1.1 client over a real loopback socket, for the control server: one request per connection,
/// the answer read until the server closes.
struct ControlHTTPClient {
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]

        /// The body as a JSON object.
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(self.body))) as? [String: Any] ?? [:]
        }
    }

    struct MalformedResponse: Error {}

    var port: Int

    func get(_ path: String) async throws -> Response {
        try await self.send("GET", path)
    }

    func put(_ path: String, json: String) async throws -> Response {
        try await self.send("PUT", path, body: json, headers: ["Content-Type": "application/json"])
    }

    func post(_ path: String, json: String) async throws -> Response {
        try await self.send("POST", path, body: json, headers: ["Content-Type": "application/json"])
    }

    func delete(_ path: String) async throws -> Response {
        try await self.send("DELETE", path)
    }

    /// Sends one request (with `Host: 127.0.0.1:<port>` unless `headers` names another) and reads the answer.
    func send(_ method: String, _ path: String, body: String = "", headers: [String: String] = [:]) async throws
        -> Response
    {
        var lines = ["\(method) \(path) HTTP/1.1"]
        var all = headers
        if all["Host"] == nil { all["Host"] = "127.0.0.1:\(self.port)" }
        all["Content-Length"] = String(body.utf8.count)
        all["Connection"] = "close"
        lines += all.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        let request = lines.joined(separator: "\r\n") + "\r\n\r\n" + body

        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        var received: [UInt8] = []
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            for try await buffer in inbound {
                received += buffer.readableBytesView
            }
        }
        return try Self.parse(received)
    }

    static func parse(_ bytes: [UInt8]) throws -> Response {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let split = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else {
            throw MalformedResponse()
        }
        let head = String(decoding: bytes[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw MalformedResponse() }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        return Response(status: status, headers: headers, body: Array(bytes[(split + separator.count)...]))
    }
}
