public import Hummingbird

/// The gateway's request context: Hummingbird's core, plus the crew member once the session is checked.
public struct GatewayRequestContext: RequestContext {
    /// Hummingbird's storage.
    public var coreContext: CoreRequestContextStorage
    /// The signed-in crew member's session, once checked.
    public var crew: CrewSessionInfo?

    /// Makes a context for one request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// The largest request body any route accepts.
    public var maxUploadSize: Int { 64 * 1024 }
}
