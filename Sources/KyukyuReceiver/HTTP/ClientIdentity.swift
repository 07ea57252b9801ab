public import Hummingbird
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// Who is calling an ambulance route: the device id, or nil without a client certificate.
public protocol ClientDeviceIdentifying: Sendable {
    /// The calling device's id, or nil.
    func device(of request: Request, context: ReceiverRequestContext) async -> String?
}

/// The device id is the CN of the client certificate the TLS handshake verified against the receiver's CA (a
/// certificate from another CA never completes the handshake).
public struct TLSClientCertificateIdentity: ClientDeviceIdentifying {
    /// Makes the identity reader.
    public init() {}

    /// The verified client certificate's CN, if it is a device id.
    public func device(of request: Request, context: ReceiverRequestContext) async -> String? {
        guard let certificate = try? await context.channel.nioSSL_peerCertificate().get(),
            let der = try? certificate.toDERBytes(),
            let parsed = try? Certificate(derEncoded: der)
        else { return nil }
        for rdn in parsed.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                let name = String(describing: attribute.value)
                return DeviceName.isValid(name) ? name : nil
            }
        }
        return nil
    }
}
