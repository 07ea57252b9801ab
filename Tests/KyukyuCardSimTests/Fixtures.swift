import Foundation
import KyukyuCardSim
import Logging

/// A test PKI shared by the tests of this process (keys are made once, in a private temporary folder).
enum Fixtures {
    static let logger = Logger(label: "kyukyu-card-sim-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Fixed, so that later runs reuse the keys (and so exercise loading); safe across processes thanks to the
    /// PKI's lock.
    static let pkiDirectory: String = NSTemporaryDirectory() + "kyukyu-card-sim-tests-pki"

    static let pki: TestPKI = try! TestPKI.loadOrCreate(directory: pkiDirectory, logger: logger)

    static func credentials(_ holder: Int = 1, _ validity: CertificateValidity = .valid) -> HolderCredentials {
        try! pki.holder(holder, validity: validity)
    }

    static func card(
        _ profile: SimulatedTokenProfile = .card,
        authPINTriesLeft: Int = 3,
        attributesPIN: String? = nil,
        contactless: Bool = false,
        iphoneApproval: IPhoneApproval = .approve(after: .milliseconds(700))
    ) -> JPKICard {
        try! JPKICard(
            profile: profile,
            credentials: credentials(),
            authPIN: "1234",
            attributesPIN: attributesPIN,
            signingPIN: "ABC123",
            authPINTriesLeft: authPINTriesLeft,
            contactless: contactless,
            iphoneApproval: iphoneApproval
        )
    }

    static func makeTemporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "kyukyu-card-sim-tests-\(getpid())-\(name)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Command builders, as a client would send them.
enum Commands {
    static func selectAP(_ aid: [UInt8]) -> [UInt8] { [0x00, 0xA4, 0x04, 0x0C, UInt8(aid.count)] + aid }
    static func selectEF(_ fid: UInt16) -> [UInt8] {
        [0x00, 0xA4, 0x02, 0x0C, 0x02, UInt8(fid >> 8), UInt8(fid & 0xFF)]
    }
    static func readBinary(offset: Int, le: UInt8) -> [UInt8] {
        [0x00, 0xB0, UInt8(offset >> 8), UInt8(offset & 0xFF), le]
    }
    static func verify(_ pin: String) -> [UInt8] {
        pin.isEmpty ? [0x00, 0x20, 0x00, 0x80] : [0x00, 0x20, 0x00, 0x80, UInt8(pin.utf8.count)] + Array(pin.utf8)
    }
    static func sign(_ digestInfo: [UInt8]) -> [UInt8] {
        [0x80, 0x2A, 0x00, 0x80, UInt8(digestInfo.count)] + digestInfo + [0x00]
    }
    static let sha256DigestInfoPrefix: [UInt8] = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ]
}

extension JPKICard {
    /// Sends a command and returns the status word.
    @discardableResult
    mutating func sw(_ bytes: [UInt8]) -> StatusWord {
        self.process(bytes).status
    }

    /// Reads a whole file the way clients do: 4 bytes, then chunks of `chunk` until 6B00 or a short read.
    mutating func readAll(chunk: UInt8 = 0) -> (data: [UInt8], status: StatusWord) {
        var data: [UInt8] = []
        while true {
            let reply = self.process(Commands.readBinary(offset: data.count, le: chunk))
            if reply.status == .wrongOffset { return (data, .success) }
            guard reply.status == .success else { return (data, reply.status) }
            data += reply.response.data
            let expected = chunk == 0 ? 256 : Int(chunk)
            if reply.response.data.count < expected { return (data, .success) }
        }
    }
}
