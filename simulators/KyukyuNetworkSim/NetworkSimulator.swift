import Foundation
public import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle

/// One link of the network simulator: a name, where it listens, where it forwards, and its conditions over time.
public struct LinkSpec: Sendable, Hashable {
    /// The link's name in the control API (`onshi`, `hospital-1`…): 1–32 of a-z, 0-9 and '-'.
    public var name: String
    /// The port it listens on, on 127.0.0.1 (0 for any).
    public var port: Int
    /// Where it forwards.
    public var upstreamHost: String
    /// Where it forwards.
    public var upstreamPort: Int
    /// Its conditions from the start (followed until a control request sets others).
    public var schedule: LinkSchedule

    /// A link.
    public init(name: String, port: Int, upstreamHost: String, upstreamPort: Int, schedule: LinkSchedule) {
        self.name = name
        self.port = port
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        self.schedule = schedule
    }

    /// Reads `name,port,host:port` (the command line's form).
    public init?(argument: String, schedule: LinkSchedule) {
        let parts = argument.split(separator: ",").map(String.init)
        guard parts.count == 3, Self.isName(parts[0]), let port = Int(parts[1]), (0...65535).contains(port),
            let colon = parts[2].lastIndex(of: ":"), let upstream = Int(parts[2][parts[2].index(after: colon)...]),
            (1...65535).contains(upstream)
        else { return nil }
        self.init(
            name: parts[0],
            port: port,
            upstreamHost: String(parts[2][..<colon]),
            upstreamPort: upstream,
            schedule: schedule
        )
    }

    static func isName(_ text: String) -> Bool {
        (1...32).contains(text.utf8.count)
            && text.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }
}

/// The network simulator as services: every link's proxy, following its schedule, and the control API on
/// loopback (`GET /links`, `GET|PUT /links/{name}/conditions`), for a drill to open and close dead zones.
public struct NetworkSimulator: Service {
    let links: [LinkSpec]
    let controlPort: Int
    let random: @Sendable () -> Double
    let onRunning: @Sendable ([String: Int], Int) async -> Void
    let logger: Logger

    /// The simulator; `onRunning` gets each link's port and the control port once all listen.
    public init(
        links: [LinkSpec],
        controlPort: Int,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        onRunning: @escaping @Sendable ([String: Int], Int) async -> Void = { _, _ in },
        logger: Logger
    ) {
        self.links = links
        self.controlPort = controlPort
        self.random = random
        self.onRunning = onRunning
        self.logger = logger
    }

    /// Runs until graceful shutdown.
    public func run() async throws {
        var proxies: [String: FaultProxy] = [:]
        do {
            for link in links {
                proxies[link.name] = try await FaultProxy.start(
                    port: link.port,
                    upstreamHost: link.upstreamHost,
                    upstreamPort: link.upstreamPort,
                    conditions: link.schedule.conditions(at: 0),
                    random: random,
                    logger: logger
                )
            }
        } catch {
            for proxy in proxies.values { await proxy.close() }
            throw error
        }
        let started = proxies
        let ports = started.mapValues(\.port)
        let overridden = OverriddenLinks()
        let application = Application(
            router: Self.router(proxies: started, overridden: overridden),
            configuration: .init(address: .hostname("127.0.0.1", port: controlPort)),
            onServerRunning: { channel in await onRunning(ports, channel.localAddress?.port ?? 0) },
            logger: logger
        )
        await withDiscardingTaskGroup { group in
            for link in links where !link.schedule.windows.isEmpty {
                guard let proxy = started[link.name] else { continue }
                group.addTask {
                    // A schedule is followed until the control API sets the link's conditions itself, or shutdown.
                    try? await cancelWhenGracefulShutdown {
                        try await proxy.follow(
                            link.schedule,
                            clock: OverridableClock(link: link.name, overridden: overridden)
                        )
                    }
                }
            }
            group.addTask {
                try? await application.runService()
            }
            group.addTask {
                try? await gracefulShutdown()
                for proxy in started.values { await proxy.close() }
            }
        }
    }

    static func router(proxies: [String: FaultProxy], overridden: OverriddenLinks) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in "ok\n" }
        router.get("/links") { _, _ in
            try Self.json(
                proxies.mapValues { LinkView(port: $0.port, conditions: $0.conditions, heldBytes: $0.heldBytes) }
            )
        }
        router.get("/links/:name/conditions") { _, context in
            let proxy = try Self.proxy(proxies, context)
            return try Self.json(proxy.conditions)
        }
        router.put("/links/:name/conditions") { request, context in
            let proxy = try Self.proxy(proxies, context)
            let body = try await request.body.collect(upTo: 64 * 1024)
            let conditions: LinkConditions
            do {
                conditions = try JSONDecoder().decode(LinkConditions.self, from: Data(body.readableBytesView))
            } catch {
                throw HTTPError(.badRequest, message: "the body is not a LinkConditions object (JSON)")
            }
            if let problem = conditions.problem { throw HTTPError(.badRequest, message: problem) }
            await overridden.insert(context.parameters.get("name") ?? "")
            proxy.set(conditions)
            return try Self.json(proxy.conditions)
        }
        return router
    }

    static func proxy(_ proxies: [String: FaultProxy], _ context: BasicRequestContext) throws -> FaultProxy {
        guard let name = context.parameters.get("name"), let proxy = proxies[name] else {
            throw HTTPError(.notFound, message: "no such link")
        }
        return proxy
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
        )
    }
}

/// A link as the control API shows it.
struct LinkView: Codable {
    var port: Int
    var conditions: LinkConditions
    var heldBytes: Int
}

/// Links whose conditions the control API set: their schedules stop.
actor OverriddenLinks {
    private var names: Set<String> = []
    func insert(_ name: String) { names.insert(name) }
    func contains(_ name: String) -> Bool { names.contains(name) }
}

/// The continuous clock, whose sleeps end in cancellation once the control API took a link over.
struct OverridableClock: Clock {
    typealias Instant = ContinuousClock.Instant
    let link: String
    let overridden: OverriddenLinks
    private let base = ContinuousClock()

    init(link: String, overridden: OverriddenLinks) {
        self.link = link
        self.overridden = overridden
    }

    var now: Instant { base.now }
    var minimumResolution: Duration { base.minimumResolution }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        while base.now < deadline {
            if await overridden.contains(link) { throw CancellationError() }
            try await base.sleep(until: min(deadline, base.now.advanced(by: .milliseconds(100))), tolerance: tolerance)
        }
        if await overridden.contains(link) { throw CancellationError() }
    }
}
