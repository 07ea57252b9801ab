public import Hummingbird
public import NIOCore

/// The receiver's request context: Hummingbird's core, the connection (for the client certificate), and the
/// staff member once the session is checked.
public struct ReceiverRequestContext: RequestContext {
    /// Hummingbird's storage.
    public var coreContext: CoreRequestContextStorage
    /// The connection the request came on.
    public let channel: any Channel

    /// Makes a context for one request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The largest request body any route accepts (a document, 4 MiB).
    public var maxUploadSize: Int { HospitalDesk.maximumDocumentBytes }
}
