import Crypto
import Logging

/// One session with a JPKI token: the My Number card, an old 住基 card, or a phone credential.
///
/// The session knows which application is selected and enforces the rules no caller may get wrong:
/// - before every VERIFY it asks the card for the tries left (an empty VERIFY, which spends none);
/// - it never retries a VERIFY by itself;
/// - it refuses to spend the last try unless the call explicitly confirms;
/// - a locked PIN (`63C0`, `6984`, `6983`) is its own error;
/// - the EF holding the 12-digit number is never selected, and raw VERIFY commands are refused.
///
/// A session serves one task at a time: the steps of one operation must not interleave with another's.
public actor CardSession {
    let exchange: APDUExchange
    let logger: Logger
    private var selectedApplication: [UInt8]?
    private var cachedTokenType: TokenType?

    /// The connection underneath.
    public nonisolated var connection: any CardConnection { exchange.connection }

    /// Creates a session over a card connection.
    public init(connection: any CardConnection, logger: Logger) {
        self.exchange = APDUExchange(connection: connection)
        self.logger = logger
    }

    /// Releases the card.
    public func close() async {
        await exchange.connection.disconnect()
    }

    // MARK: Raw APDUs, guarded

    /// Sends a command APDU, refusing the ones that bypass this library's safety rules: a VERIFY carrying a
    /// PIN (use ``verify(_:confirmLastTry:)``) and any selection of the EF that holds the 12-digit number.
    public func transmit(_ command: CommandAPDU) async throws -> ResponseAPDU {
        if command.ins == 0x20, !command.data.isEmpty {
            throw CardError.forbiddenCommand("a VERIFY with a PIN goes only through verify(_:confirmLastTry:)")
        }
        return try await send(command)
    }

    private func send(_ command: CommandAPDU) async throws -> ResponseAPDU {
        if command.ins == 0xA4, command.p1 == 0x02, command.data == fileID(JPKI.forbiddenAttributesEF),
            selectedApplication == JPKI.attributesAID
        {
            throw CardError.forbiddenCommand("the 12-digit number is never read by this gateway")
        }
        if command.ins == 0xA4, command.p1 == 0x04 {
            selectedApplication = nil
        }
        let response = try await exchange.send(command)
        if command.ins == 0xA4, command.p1 == 0x04, response.statusWord.isSuccess {
            selectedApplication = command.data
        }
        logger.trace(
            "apdu",
            metadata: [
                "kyukyu.apdu.ins": "\(String(command.ins, radix: 16))",
                "kyukyu.apdu.sw": "\(response.statusWord)",
            ]
        )
        return response
    }

    private func fileID(_ fid: UInt16) -> [UInt8] { [UInt8(fid >> 8), UInt8(fid & 0xFF)] }

    // MARK: Selection and reading

    /// Selects an application by AID. Selecting an application forgets every PIN verification on the card.
    public func selectApplication(_ aid: [UInt8]) async throws {
        let response = try await send(CommandAPDU(ins: 0xA4, p1: 0x04, p2: 0x0C, data: aid))
        switch response.statusWord {
        case .success: return
        case .fileNotFound:
            if aid == JPKI.jpkiAID {
                throw CardError.notJPKICard(statusWord: response.statusWord)
            }
            throw CardError.notJPKICard(
                "this token has no 券面入力補助 application (phone credentials carry only JPKI)",
                statusWord: response.statusWord
            )
        default:
            throw CardError.unexpectedStatus(response.statusWord, during: "the application selection")
        }
    }

    /// Selects an EF inside the current application.
    public func selectFile(_ fid: UInt16) async throws {
        let response = try await send(CommandAPDU(ins: 0xA4, p1: 0x02, p2: 0x0C, data: fileID(fid)))
        try checkAccess(response.statusWord, during: "the file selection")
    }

    /// Maps the status words that mean "not allowed yet" on phone tokens.
    private func checkAccess(_ statusWord: StatusWord, during step: String) throws {
        switch statusWord {
        case .success: return
        case .securityStatusNotSatisfied:
            throw CardError.certificateNeedsPIN(statusWord: statusWord)
        case .conditionsNotSatisfied where cachedTokenType == .iphone:
            throw CardError.phoneApprovalRequired(statusWord: statusWord)
        case .fileNotFound:
            throw CardError.malformedResponse("the token lacks a file the JPKI layout requires", statusWord: statusWord)
        default:
            throw CardError.unexpectedStatus(statusWord, during: step)
        }
    }

    /// Reads `length` bytes of the selected EF from `offset`, in chunks of up to 256 bytes.
    public func readBinary(offset: Int, length: Int) async throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(length)
        while result.count < length {
            let position = offset + result.count
            guard position <= 0x7FFF else {
                throw CardError.malformedResponse("the file is longer than a short READ BINARY can address")
            }
            let chunk = min(256, length - result.count)
            let response = try await send(
                CommandAPDU(ins: 0xB0, p1: UInt8(position >> 8), p2: UInt8(position & 0xFF), le: chunk)
            )
            try checkAccess(response.statusWord, during: "the read")
            guard !response.data.isEmpty else {
                throw CardError.malformedResponse("the card returned no data before the end of the object")
            }
            result += response.data.prefix(length - result.count)
        }
        return result
    }

    /// Reads a DER object (a certificate) from the selected EF: the length comes from the DER header, and
    /// any filler after the object is left unread.
    public func readDERObject() async throws -> [UInt8] {
        let header = try await readBinary(offset: 0, length: 4)
        let total = try DERHeader.totalLength(header)
        return header + (total > header.count ? try await readBinary(offset: 4, length: total - 4) : [])
    }

    // MARK: JPKI

    /// Selects the JPKI application, reads EF 0006 and classifies the token.
    public func tokenType() async throws -> TokenType {
        try await selectApplication(JPKI.jpkiAID)
        do {
            try await selectFile(JPKI.tokenInfoEF)
        } catch let error as CardError where error.code == .malformedResponse {
            throw CardError.notJPKICard("the JPKI application has no token information (EF 0006)")
        }
        let info = try await readBinary(offset: 0, length: 32)
        let label = String(decoding: info.prefix { $0 != 0x20 && $0 != 0x00 }, as: UTF8.self)
        guard let type = TokenType(label: label) else {
            throw CardError.notJPKICard("unknown JPKI token label")
        }
        cachedTokenType = type
        logger.debug("token classified", metadata: ["kyukyu.card.token": "\(type.rawValue)"])
        return type
    }

    /// Which certificate to read.
    public enum CertificateFile: Sendable {
        /// The user-authentication certificate (EF 000A). On an Android token the auth PIN must be verified
        /// first; an iPhone asks the holder to approve.
        case userAuthentication
        /// The user-authentication CA certificate (EF 000B).
        case userAuthenticationCA

        var fid: UInt16 { self == .userAuthentication ? JPKI.authCertificateEF : JPKI.authCACertificateEF }
    }

    /// Reads a certificate's DER from the JPKI application (which must be selected, e.g. by ``tokenType()``).
    public func readCertificateDER(_ file: CertificateFile) async throws -> [UInt8] {
        if selectedApplication != JPKI.jpkiAID { try await selectApplication(JPKI.jpkiAID) }
        try await selectFile(file.fid)
        return try await readDERObject()
    }

    // MARK: PINs

    /// Asks the card how many tries the PIN has left, without spending one.
    ///
    /// Returns nil when the card says the PIN is already verified in this session.
    public func triesLeft(_ kind: PINKind) async throws -> Int? {
        if selectedApplication != kind.application { try await selectApplication(kind.application) }
        try await selectFile(kind.file)
        let response = try await send(CommandAPDU(ins: 0x20, p1: 0x00, p2: 0x80))
        if let tries = response.statusWord.verifyTriesLeft { return tries }
        switch response.statusWord {
        case .success: return nil
        case .referenceDataNotUsable, .authenticationBlocked: return 0
        default: throw CardError.unexpectedStatus(response.statusWord, during: "the PIN counter query")
        }
    }

    /// Verifies a PIN, safely: asks the tries left first, never retries, refuses the last try without
    /// `confirmLastTry`, and reports a locked PIN as ``CardError/Code/pinLocked``.
    public func verify(_ pin: CardPIN, confirmLastTry: Bool = false) async throws {
        guard let tries = try await triesLeft(pin.kind) else { return }
        guard tries > 0 else { throw CardError.pinLocked() }
        if tries == 1, !confirmLastTry { throw CardError.lastTryNeedsConfirmation() }
        // The PIN EF is selected by triesLeft; send exactly one VERIFY.
        let response = try await send(CommandAPDU(ins: 0x20, p1: 0x00, p2: 0x80, data: pin.bytes))
        switch response.statusWord {
        case .success:
            logger.debug("pin verified", metadata: ["kyukyu.card.pin": "\(pin.kind.rawValue)"])
        case .referenceDataNotUsable, .authenticationBlocked:
            throw CardError.pinLocked(statusWord: response.statusWord)
        case let sw where sw.verifyTriesLeft != nil:
            let left = sw.verifyTriesLeft!
            logger.notice(
                "wrong pin",
                metadata: ["kyukyu.card.pin": "\(pin.kind.rawValue)", "kyukyu.card.pin.tries_left": "\(left)"]
            )
            if left == 0 { throw CardError.pinLocked(statusWord: sw) }
            throw CardError.wrongPIN(triesLeft: left, statusWord: sw)
        default:
            throw CardError.unexpectedStatus(response.statusWord, during: "the PIN verification")
        }
    }

    // MARK: Signature

    /// Signs a SHA-256 hash with the user-authentication key (PKCS#1 v1.5 over the DigestInfo, done by the card).
    ///
    /// The user-authentication PIN must have been verified in this session (``verify(_:confirmLastTry:)``).
    public func signWithAuthenticationKey(sha256 digest: [UInt8]) async throws -> [UInt8] {
        guard digest.count == SHA256.byteCount else {
            throw CardError.forbiddenCommand("a SHA-256 digest is 32 bytes, not \(digest.count)")
        }
        let digestInfo = DigestInfo.sha256Prefix + digest
        if selectedApplication != JPKI.jpkiAID { try await selectApplication(JPKI.jpkiAID) }
        try await selectFile(JPKI.authKeyEF)
        let response = try await send(CommandAPDU(cla: 0x80, ins: 0x2A, p1: 0x00, p2: 0x80, data: digestInfo, le: 256))
        switch response.statusWord {
        case .success:
            guard response.data.count == 256 else {
                throw CardError.malformedResponse("the signature is \(response.data.count) bytes, not 256")
            }
            return response.data
        case .securityStatusNotSatisfied:
            throw CardError.unexpectedStatus(response.statusWord, during: "the signature (PIN not verified)")
        default:
            try checkAccess(response.statusWord, during: "the signature")
            return response.data
        }
    }

    // MARK: 券面入力補助

    /// Reads the four attributes (name, address, birth date, sex) from the 券面入力補助 application, verifying
    /// its PIN safely first. The EF with the 12-digit number is never touched.
    public func readAttributes(pin: CardPIN, confirmLastTry: Bool = false) async throws -> CardAttributes {
        guard pin.kind == .attributes else {
            throw CardError.invalidPINFormat("the attributes need the 券面入力補助 PIN")
        }
        try await verify(pin, confirmLastTry: confirmLastTry)
        try await selectFile(JPKI.attributesEF)
        let header = try await readBinary(offset: 0, length: 5)
        let total = try CardAttributes.totalLength(header: header)
        let body = header + (total > 5 ? try await readBinary(offset: 5, length: total - 5) : [])
        return try CardAttributes(tlv: body)
    }
}

/// DER DigestInfo prefixes.
public enum DigestInfo {
    /// `SEQUENCE { SEQUENCE { sha256, NULL }, OCTET STRING (32) }` before the hash.
    public static let sha256Prefix: [UInt8] = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ]
}

/// Reads the length of a DER object from its first bytes.
enum DERHeader {
    /// The full length (header included) of the DER SEQUENCE starting with `header` (at least 4 bytes).
    static func totalLength(_ header: [UInt8]) throws -> Int {
        guard header.count >= 2, header[0] == 0x30 else {
            throw CardError.malformedResponse("the certificate file does not start with a DER SEQUENCE")
        }
        let first = header[1]
        if first < 0x80 { return 2 + Int(first) }
        let count = Int(first & 0x7F)
        guard (1...2).contains(count), header.count >= 2 + count else {
            throw CardError.malformedResponse("the certificate's DER length is not one this card can hold")
        }
        var length = 0
        for byte in header[2..<(2 + count)] { length = length << 8 | Int(byte) }
        return 2 + count + length
    }
}
