import Crypto
import KyukyuDomain
import Logging

/// One session with a JPKI token: the My Number card, an old 住基 card, or a phone credential.
///
/// The only way to reach a card from outside this module (``CardReader/withSession(reader:_:)`` makes one). The
/// session knows which application is selected and enforces the rules no caller may get wrong:
/// - every command is checked against the allow-list of the exact commands the gateway sends (SELECT by AID of the
///   JPKI and 券面入力補助 APs, SELECT of their allowed EFs, READ BINARY with plain offsets, VERIFY of the PIN EFs,
///   COMPUTE DIGITAL SIGNATURE with the user-authentication key); the EF holding the 12-digit number is never
///   selected, by any encoding;
/// - before every VERIFY it asks the card for the tries left (an empty VERIFY, which spends none), and a PIN the
///   card reports as already verified is checked anyway;
/// - it never retries or resends a VERIFY;
/// - it refuses to spend the last try unless the call explicitly confirms;
/// - a locked PIN (`63C0`, `6984`, `6983`) is its own error.
///
/// Operations run one at a time: a second call waits until the first is over, so two concurrent ``verify(_:confirmLastTry:)``
/// calls cannot both read the same tries left. From its first operation to its end the session holds a PC/SC
/// transaction, so no other program on the machine (OpenSC, a browser's PKCS#11 module) can send a command in
/// between; when the session sent a PIN, it ends by resetting the card, so that no other program finds the PIN
/// verified.
public actor CardSession {
    let exchange: APDUExchange
    let logger: Logger
    private(set) var selection = CardSelection.unknown
    private var cachedTokenType: TokenType?
    private var transactionHeld = false
    private var pinSent = false
    private var closed = false
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Creates a session over a card connection. Internal: sessions come from ``CardReader``.
    init(connection: any CardConnection, logger: Logger) {
        self.exchange = APDUExchange(connection: connection)
        self.logger = logger
    }

    // MARK: One operation at a time, inside the transaction

    /// Runs `body` alone: no other operation of this session starts before it ends, even across its suspensions
    /// (actor re-entrancy). The PC/SC transaction begins before the first operation's first command.
    private func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { relinquish() }
        guard !closed else { throw CardError.cardRemoved("the card session has ended; read the card again") }
        if !transactionHeld {
            try await exchange.connection.beginTransaction()
            transactionHeld = true
        }
        return try await body()
    }

    private func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func relinquish() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }

    /// Ends the transaction and releases the card; after a PIN was sent, the card is reset, which forgets every
    /// verification (ending the transaction with `SCARD_RESET_CARD`). Waits for a running operation first.
    func close() async {
        await acquire()
        defer { relinquish() }
        guard !closed else { return }
        closed = true
        await exchange.connection.close(endingTransaction: transactionHeld, disposition: pinSent ? .reset : .leave)
        if pinSent { logger.debug("card reset at the end of the session") }
    }

    // MARK: Commands, checked against the allow-list

    /// Sends an allowed command from outside the guarded verify path (for tests of the allow-list).
    func transmit(_ command: CommandAPDU) async throws -> ResponseAPDU {
        try await exclusive { try await send(command) }
    }

    /// Checks `command` against the allow-list, sends it, and updates what is known to be selected.
    private func send(_ command: CommandAPDU, pinVerification: Bool = false) async throws -> ResponseAPDU {
        let allowed = try CommandAllowList.classify(command, selection: selection, pinVerification: pinVerification)
        if allowed == .verifyPIN { pinSent = true }
        let response: ResponseAPDU
        do {
            response = try await exchange.send(command)
        } catch {
            selection = CommandAllowList.selection(after: allowed, statusWord: nil, from: selection)
            throw error
        }
        selection = CommandAllowList.selection(after: allowed, statusWord: response.statusWord, from: selection)
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

    /// Selects an application by AID (one of the two the allow-list knows).
    func selectApplication(_ aid: [UInt8]) async throws {
        try await exclusive { try await select(application: aid) }
    }

    /// Selecting an application forgets every PIN verification on the card.
    private func select(application aid: [UInt8]) async throws {
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
    private func select(file fid: UInt16) async throws {
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
    private func readBinary(offset: Int, length: Int) async throws -> [UInt8] {
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
    private func readDERObject() async throws -> [UInt8] {
        let header = try await readBinary(offset: 0, length: 4)
        let total = try DERHeader.totalLength(header)
        return header + (total > header.count ? try await readBinary(offset: 4, length: total - 4) : [])
    }

    // MARK: JPKI

    /// Selects the JPKI application, reads EF 0006 and classifies the token.
    public func tokenType() async throws -> TokenType {
        try await exclusive { try await classifyToken() }
    }

    private func classifyToken() async throws -> TokenType {
        try await select(application: JPKI.jpkiAID)
        do {
            try await select(file: JPKI.tokenInfoEF)
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

    /// Reads a certificate's DER from the JPKI application (selected first when it is not known to be).
    public func readCertificateDER(_ file: CertificateFile) async throws -> [UInt8] {
        try await exclusive {
            if selection.application != .jpki { try await select(application: JPKI.jpkiAID) }
            try await select(file: file.fid)
            return try await readDERObject()
        }
    }

    // MARK: PINs

    /// Asks the card how many tries the PIN has left, without spending one.
    ///
    /// Returns nil when the card says the PIN is already verified.
    public func triesLeft(_ kind: PINKind) async throws -> Int? {
        try await exclusive { try await queryTries(kind) }
    }

    private func queryTries(_ kind: PINKind) async throws -> Int? {
        if selection.application != JPKIApplication(aid: kind.application) {
            try await select(application: kind.application)
        }
        try await select(file: kind.file)
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
    ///
    /// The whole sequence (tries query, then VERIFY) runs as one operation of the session, inside its PC/SC
    /// transaction: neither a concurrent call nor another program can spend a try in between. When the card says
    /// the PIN is already verified (by another program, before this session), the application is selected again,
    /// which makes the card forget it, and the given PIN is checked like any other: success always means the card
    /// accepted this PIN.
    public func verify(_ pin: CardPIN, confirmLastTry: Bool = false) async throws {
        try await exclusive { try await verifyAlone(pin, confirmLastTry: confirmLastTry) }
    }

    private func verifyAlone(_ pin: CardPIN, confirmLastTry: Bool) async throws {
        var tries = try await queryTries(pin.kind)
        if tries == nil {
            logger.debug(
                "pin already verified; selecting the application again",
                metadata: ["kyukyu.card.pin": "\(pin.kind.rawValue)"]
            )
            try await select(application: pin.kind.application)
            tries = try await queryTries(pin.kind)
        }
        guard let tries else {
            throw CardError.unexpectedStatus(
                .success,
                during:
                    "the PIN check (the card reports the PIN verified even after its application was selected again)"
            )
        }
        guard tries > 0 else { throw CardError.pinLocked() }
        if tries == 1, !confirmLastTry { throw CardError.lastTryNeedsConfirmation() }
        // The PIN EF is selected by queryTries; send exactly one VERIFY.
        let response = try await send(
            CommandAPDU(ins: 0x20, p1: 0x00, p2: 0x80, data: pin.bytes),
            pinVerification: true
        )
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
        return try await exclusive {
            if selection.application != .jpki { try await select(application: JPKI.jpkiAID) }
            try await select(file: JPKI.authKeyEF)
            let response = try await send(
                CommandAPDU(cla: 0x80, ins: 0x2A, p1: 0x00, p2: 0x80, data: digestInfo, le: 256)
            )
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
    }

    // MARK: 券面入力補助

    /// Reads the four attributes (name, address, birth date, sex) from the 券面入力補助 application, verifying
    /// its PIN safely first. The EF with the 12-digit number is never touched.
    public func readAttributes(pin: CardPIN, confirmLastTry: Bool = false) async throws -> CardAttributes {
        guard pin.kind == .attributes else {
            throw CardError.invalidPINFormat("the attributes need the 券面入力補助 PIN")
        }
        return try await exclusive {
            try await verifyAlone(pin, confirmLastTry: confirmLastTry)
            try await select(file: JPKI.attributesEF)
            let header = try await readBinary(offset: 0, length: 5)
            let total = try CardAttributes.totalLength(header: header)
            let body = header + (total > 5 ? try await readBinary(offset: 5, length: total - 5) : [])
            return try CardAttributes(tlv: body)
        }
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

/// Reads the length of a DER object from its first bytes: how much of a certificate EF to read (the rest is filler).
public enum DERHeader {
    /// The full length (header included) of the DER SEQUENCE starting with `header` (at least 4 bytes).
    public static func totalLength(_ header: [UInt8]) throws -> Int {
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
