import Hummingbird
import Logging

/// Runs `router` on a real HTTP server on a free loopback port for `body`, then stops it.
func withServer(_ router: Router<BasicRequestContext>, _ body: (Int) async throws -> Void) async throws {
    let (ports, running) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { running.yield($0.localAddress?.port ?? 0) },
        logger: Logger(label: "kyukyu.load.test") { _ in SwiftLogNoOpLogHandler() }
    )
    let server = Task { try await app.runService() }
    defer { server.cancel() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw ServerDidNotStart() }
    try await body(port)
}

/// The test server never reported its port.
struct ServerDidNotStart: Error {}
