public import AsyncHTTPClient
import Foundation
import NIOCore
public import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// An async-http-client whose client certificate can be replaced while it runs: a renewed device certificate is
/// used for the next connections without a restart (`kyukyu-gateway cert install`, then `SIGHUP`).
///
/// ``reload()`` reads the files again, checks that the key is the certificate's, and swaps in a new `HTTPClient`;
/// the previous one keeps its open connections for `grace` (longer than any exchange's deadline), so that nothing
/// in flight is cut, and is shut down then. A pair that does not match (a certificate installed without its key)
/// is refused and the client in use is kept.
public final class ReloadableHTTPClient: Sendable {
    private let tls: TerminalTLSFiles
    private let configure: @Sendable (TLSConfiguration) -> HTTPClient.Configuration
    private let grace: Duration
    private let state: Mutex<(current: HTTPClient, retiring: [HTTPClient])>

    /// A client presenting `tls`'s certificate; `configure` makes the client's configuration around a TLS
    /// configuration (the pool, timeouts). Throws when the files cannot be loaded or do not match.
    public init(
        tls: TerminalTLSFiles,
        grace: Duration = .seconds(150),
        configure: @escaping @Sendable (TLSConfiguration) -> HTTPClient.Configuration
    ) throws {
        self.tls = tls
        self.configure = configure
        self.grace = grace
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: configure(try Self.load(tls))
        )
        self.state = Mutex((client, []))
    }

    /// The client for the next request.
    public var current: HTTPClient { state.withLock { $0.current } }

    /// Reads the certificate, key and CA again and uses them for the next connections; returns the certificate's
    /// `notAfter`. Throws (and keeps the client in use) when they cannot be read or the key is not the
    /// certificate's.
    @discardableResult
    public func reload() throws -> Date {
        let configuration = try Self.load(tls)
        let notAfter = try Self.certificate(tls).notValidAfter
        let fresh = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: configure(configuration)
        )
        let old = state.withLock { state in
            let old = state.current
            state.current = fresh
            state.retiring.append(old)
            return old
        }
        let grace = self.grace
        Task {
            try? await Task.sleep(for: grace)
            let retire = self.state.withLock { state -> Bool in
                guard let index = state.retiring.firstIndex(where: { $0 === old }) else { return false }
                state.retiring.remove(at: index)
                return true
            }
            if retire { try? await old.shutdown() }
        }
        return notAfter
    }

    /// Shuts every client down, the retiring ones too.
    public func shutdown() async {
        let clients = state.withLock { state in
            let all = [state.current] + state.retiring
            state.retiring = []
            return all
        }
        for client in clients { try? await client.shutdown() }
    }

    /// The TLS configuration of `tls`, after checking that the key is the certificate's.
    static func load(_ tls: TerminalTLSFiles) throws -> TLSConfiguration {
        let certificate = try certificate(tls)
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: String(contentsOfFile: tls.keyPath, encoding: .utf8))
        } catch {
            throw EligibilityError.configuration("the key \(tls.keyPath) cannot be read: \(error)")
        }
        guard key.publicKey == certificate.publicKey else {
            throw EligibilityError.configuration(
                "the key \(tls.keyPath) is not the key of \(tls.certificatePath): install the certificate with its key"
            )
        }
        var configuration = try tls.clientConfiguration()
        configuration.shutdownTimeout = .milliseconds(100)
        return configuration
    }

    static func certificate(_ tls: TerminalTLSFiles) throws -> Certificate {
        do {
            return try Certificate(pemEncoded: String(contentsOfFile: tls.certificatePath, encoding: .utf8))
        } catch {
            throw EligibilityError.configuration("the certificate \(tls.certificatePath) cannot be read: \(error)")
        }
    }
}
