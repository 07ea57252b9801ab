import Foundation
import KyukyuDomain
import Logging
import Synchronization
import Testing

@testable import KyukyuCard

/// Holds chosen commands "on the wire" until the test opens it, and counts their arrivals.
actor CommandGate {
    private(set) var arrivals = 0
    private var isOpen = false
    private var held: [CheckedContinuation<Void, Never>] = []
    private var arrivalWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []

    func arrive() async {
        arrivals += 1
        for waiter in arrivalWaiters where waiter.count <= arrivals { waiter.continuation.resume() }
        arrivalWaiters.removeAll { $0.count <= arrivals }
        guard !isOpen else { return }
        await withCheckedContinuation { held.append($0) }
    }

    func waitForArrivals(_ count: Int) async {
        guard arrivals < count else { return }
        await withCheckedContinuation { arrivalWaiters.append((count, $0)) }
    }

    func open() {
        isOpen = true
        held.forEach { $0.resume() }
        held.removeAll()
    }
}

@Suite("Command allow-list")
struct CommandAllowListTests {
    static let attributesSelected = CardSelection(application: .attributes, file: nil)
    static let jpkiSelected = CardSelection(application: .jpki, file: nil)

    static func select(p1: UInt8, p2: UInt8 = 0x0C, _ data: [UInt8], cla: UInt8 = 0x00) -> CommandAPDU {
        CommandAPDU(cla: cla, ins: 0xA4, p1: p1, p2: p2, data: data)
    }

    @Test func theCommandsTheGatewaySendsAreAllowed() throws {
        let digest = [UInt8](repeating: 1, count: 32)
        let cases: [(CommandAPDU, CardSelection, CommandAllowList.Command)] = [
            (Self.select(p1: 4, JPKI.jpkiAID), .unknown, .selectApplication(.jpki)),
            (Self.select(p1: 4, JPKI.attributesAID), .unknown, .selectApplication(.attributes)),
            (Self.select(p1: 2, [0x00, 0x06]), Self.jpkiSelected, .selectFile(0x0006)),
            (Self.select(p1: 2, [0x00, 0x0A]), Self.jpkiSelected, .selectFile(0x000A)),
            (Self.select(p1: 2, [0x00, 0x17]), Self.jpkiSelected, .selectFile(0x0017)),
            (Self.select(p1: 2, [0x00, 0x11]), Self.attributesSelected, .selectFile(0x0011)),
            (Self.select(p1: 2, [0x00, 0x02]), Self.attributesSelected, .selectFile(0x0002)),
            (
                CommandAPDU(ins: 0xB0, p1: 0x7F, p2: 0xFF, le: 256), CardSelection(application: .jpki, file: 0x000A),
                .readBinary
            ),
            (
                CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 5), CardSelection(application: .attributes, file: 0x0002),
                .readBinary
            ),
            (
                CommandAPDU(ins: 0x20, p1: 0, p2: 0x80), CardSelection(application: .jpki, file: 0x0018),
                .pinCounterQuery
            ),
            (
                CommandAPDU(cla: 0x80, ins: 0x2A, p1: 0, p2: 0x80, data: DigestInfo.sha256Prefix + digest, le: 256),
                CardSelection(application: .jpki, file: 0x0017), .computeSignature
            ),
        ]
        for (command, selection, expected) in cases {
            #expect(try CommandAllowList.classify(command, selection: selection) == expected, "\(command)")
        }
        let pin = CommandAPDU(ins: 0x20, p1: 0, p2: 0x80, data: Array("1234".utf8))
        #expect(
            try CommandAllowList.classify(
                pin,
                selection: CardSelection(application: .attributes, file: 0x0011),
                pinVerification: true
            ) == .verifyPIN
        )
    }

    /// Every encoding that could reach the 12-digit number (EF 0001 of 券面入力補助), and every other command the
    /// gateway does not send.
    static let refused: [(String, CommandAPDU, CardSelection)] = [
        ("SELECT EF 0001, P1=02", select(p1: 0x02, [0x00, 0x01]), attributesSelected),
        ("SELECT EF 0001, P1=00 (from the MF)", select(p1: 0x00, [0x00, 0x01]), attributesSelected),
        ("SELECT EF 0001, P1=08 (path from the MF)", select(p1: 0x08, [0x00, 0x01]), attributesSelected),
        (
            "SELECT by path AID/0001, P1=08", select(p1: 0x08, JPKI.attributesAID + [0x00, 0x01]),
            attributesSelected
        ),
        ("SELECT EF 0001, P1=09 (path from the DF)", select(p1: 0x09, [0x00, 0x01]), attributesSelected),
        ("SELECT EF 0001, P1=01 (child DF)", select(p1: 0x01, [0x00, 0x01]), attributesSelected),
        ("SELECT EF 0001 with FCI, P2=00", select(p1: 0x02, p2: 0x00, [0x00, 0x01]), attributesSelected),
        ("SELECT EF 0001 with FCP, P2=04", select(p1: 0x02, p2: 0x04, [0x00, 0x01]), attributesSelected),
        ("SELECT EF 0002 with FCI, P2=00", select(p1: 0x02, p2: 0x00, [0x00, 0x02]), attributesSelected),
        ("SELECT EF 0001 on logical channel 1", select(p1: 0x02, [0x00, 0x01], cla: 0x01), attributesSelected),
        ("SELECT EF 0002 on logical channel 1", select(p1: 0x02, [0x00, 0x02], cla: 0x01), attributesSelected),
        ("SELECT EF 0001 with secure messaging", select(p1: 0x02, [0x00, 0x01], cla: 0x0C), attributesSelected),
        ("SELECT EF 0001, 1-byte FID", select(p1: 0x02, [0x01]), attributesSelected),
        ("SELECT EF 0002 with an unknown AP", select(p1: 0x02, [0x00, 0x02]), .unknown),
        ("SELECT EF 0001 of JPKI (signing certificate)", select(p1: 0x02, [0x00, 0x01]), jpkiSelected),
        ("SELECT EF 001A (signing key)", select(p1: 0x02, [0x00, 0x1A]), jpkiSelected),
        ("SELECT the 券面 AP", select(p1: 0x04, [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02]), .unknown),
        ("SELECT the MF", select(p1: 0x00, [0x3F, 0x00]), .unknown),
        ("SELECT an AP by partial AID", select(p1: 0x04, Array(JPKI.attributesAID.prefix(5))), .unknown),
        ("SELECT an AP with FCI", select(p1: 0x04, p2: 0x00, JPKI.attributesAID), .unknown),
        ("SELECT an AP, next occurrence", select(p1: 0x04, p2: 0x0E, JPKI.attributesAID), .unknown),
        ("READ BINARY SFI 1 (P1=81)", CommandAPDU(ins: 0xB0, p1: 0x81, p2: 0, le: 256), attributesSelected),
        (
            "READ BINARY SFI 1 with the attributes EF selected", CommandAPDU(ins: 0xB0, p1: 0x81, p2: 0, le: 16),
            CardSelection(application: .attributes, file: 0x0002)
        ),
        (
            "READ BINARY SFI 2 (P1=82)", CommandAPDU(ins: 0xB0, p1: 0x82, p2: 0, le: 16),
            CardSelection(application: .jpki, file: 0x000A)
        ),
        (
            "READ BINARY odd instruction by FID 0001", CommandAPDU(ins: 0xB1, p1: 0x00, p2: 0x01, data: [0x54, 0x00]),
            attributesSelected
        ),
        ("READ BINARY with no EF known", CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 256), attributesSelected),
        ("READ BINARY with nothing known", CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 256), .unknown),
        (
            "READ BINARY of the PIN EF", CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 256),
            CardSelection(application: .attributes, file: 0x0011)
        ),
        (
            "READ BINARY of the key EF", CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 256),
            CardSelection(application: .jpki, file: 0x0017)
        ),
        (
            "READ BINARY with data", CommandAPDU(ins: 0xB0, p1: 0, p2: 0, data: [0], le: 256),
            CardSelection(application: .jpki, file: 0x000A)
        ),
        (
            "READ RECORD", CommandAPDU(ins: 0xB2, p1: 1, p2: 0x0C, le: 256),
            CardSelection(application: .attributes, file: 0x0002)
        ),
        (
            "VERIFY with a PIN outside the verify path",
            CommandAPDU(ins: 0x20, p1: 0, p2: 0x80, data: [0x31, 0x32, 0x33, 0x34]),
            CardSelection(application: .attributes, file: 0x0011)
        ),
        (
            "VERIFY of an EF that is not a PIN", CommandAPDU(ins: 0x20, p1: 0, p2: 0x80),
            CardSelection(application: .attributes, file: 0x0002)
        ),
        (
            "VERIFY with a PIN reference in P2", CommandAPDU(ins: 0x20, p1: 0, p2: 0x81),
            CardSelection(application: .jpki, file: 0x0018)
        ),
        (
            "CHANGE REFERENCE DATA", CommandAPDU(ins: 0x24, p1: 0, p2: 0x80, data: [1, 2, 3, 4]),
            CardSelection(application: .jpki, file: 0x0018)
        ),
        (
            "RESET RETRY COUNTER", CommandAPDU(ins: 0x2C, p1: 0, p2: 0x80),
            CardSelection(application: .jpki, file: 0x0018)
        ),
        (
            "COMPUTE DIGITAL SIGNATURE with the signing key selected",
            CommandAPDU(
                cla: 0x80,
                ins: 0x2A,
                p1: 0,
                p2: 0x80,
                data: DigestInfo.sha256Prefix + [UInt8](repeating: 0, count: 32),
                le: 256
            ),
            CardSelection(application: .jpki, file: 0x001A)
        ),
        (
            "COMPUTE DIGITAL SIGNATURE over raw data",
            CommandAPDU(cla: 0x80, ins: 0x2A, p1: 0, p2: 0x80, data: [UInt8](repeating: 0, count: 51), le: 256),
            CardSelection(application: .jpki, file: 0x0017)
        ),
        ("MANAGE CHANNEL", CommandAPDU(ins: 0x70, p1: 0, p2: 0, le: 1), .unknown),
        ("GET DATA", CommandAPDU(ins: 0xCA, p1: 0x01, p2: 0x01, le: 256), jpkiSelected),
        (
            "UPDATE BINARY", CommandAPDU(ins: 0xD6, p1: 0, p2: 0, data: [0]),
            CardSelection(application: .attributes, file: 0x0002)
        ),
    ]

    @Test(arguments: refused.map(\.0))
    func everyOtherEncodingIsRefused(name: String) throws {
        let (_, command, selection) = try #require(Self.refused.first { $0.0 == name })
        #expect(throws: CardError.forbiddenCommand("")) {
            try CommandAllowList.classify(command, selection: selection)
        }
    }

    @Test func aSelectionThatDidNotSucceedIsUnknownNotEmpty() {
        let attributes = CardSelection(application: .attributes, file: 0x0002)
        #expect(
            CommandAllowList.selection(after: .selectApplication(.jpki), statusWord: .fileNotFound, from: attributes)
                == .unknown
        )
        #expect(
            CommandAllowList.selection(after: .selectApplication(.jpki), statusWord: nil, from: attributes) == .unknown
        )
        #expect(
            CommandAllowList.selection(after: .selectApplication(.jpki), statusWord: .success, from: attributes)
                == CardSelection(application: .jpki, file: nil)
        )
        #expect(
            CommandAllowList.selection(after: .selectFile(0x0011), statusWord: .fileNotFound, from: attributes)
                == CardSelection(application: .attributes, file: nil)
        )
    }
}

@Suite("The guarded session")
struct GuardedSessionTests {
    let logger = Logger(label: "test")

    /// Through the session, every refused encoding is refused before it reaches the card.
    @Test(arguments: CommandAllowListTests.refused.map(\.0))
    func refusedCommandsNeverReachTheCard(name: String) async throws {
        let (_, command, selection) = try #require(CommandAllowListTests.refused.first { $0.0 == name })
        let card = FakeCard.jpki()
        card.state.withLock { $0.files[JPKI.attributesAID] = [0x0001: [0xFF, 0x10, 0x0C], JPKI.attributesEF: [0]] }
        let session = CardSession(connection: card, logger: logger)
        // Bring the session to the case's selection with allowed commands.
        if let application = selection.application { try await session.selectApplication(application.aid) }
        var reached = CardSelection(application: selection.application, file: nil)
        // (EF 001A cannot be reached at all: the signing-key case then runs with no EF known.)
        if let file = selection.file, selection.application?.selectableFiles.contains(file) == true {
            _ = try await session.transmit(
                CommandAPDU(ins: 0xA4, p1: 0x02, p2: 0x0C, data: [UInt8(file >> 8), UInt8(file & 0xFF)])
            )
            reached.file = file
        }
        #expect(await session.selection == reached)
        let sent = card.commands.count
        await #expect(throws: CardError.forbiddenCommand("")) { try await session.transmit(command) }
        #expect(card.commands.count == sent, "nothing reached the card")
    }

    @Test func aFailedApplicationSelectLeavesTheNumberFileOutOfReach() async throws {
        let card = FakeCard.jpki()
        card.state.withLock { state in
            state.files[JPKI.attributesAID] = [0x0001: [0xFF, 0x10, 0x0C], JPKI.attributesEF: [0xFF, 0x20, 0x00]]
            // Like a card that keeps its current AP when a SELECT fails.
            state.override = { apdu in apdu.count > 5 && Array(apdu[5...]) == JPKI.jpkiAID ? [0x6A, 0x82] : nil }
        }
        let session = CardSession(connection: card, logger: logger)
        try await session.selectApplication(JPKI.attributesAID)
        await #expect(throws: CardError.notJPKICard()) { try await session.selectApplication(JPKI.jpkiAID) }
        #expect(card.state.withLock { $0.selectedAID } == JPKI.attributesAID, "the card kept the 券面入力補助 AP")
        let sent = card.commands.count
        for command in [
            CommandAPDU(ins: 0xA4, p1: 0x02, p2: 0x0C, data: [0x00, 0x01]),
            CommandAPDU(ins: 0xA4, p1: 0x02, p2: 0x0C, data: [0x00, 0x02]),
            CommandAPDU(ins: 0xB0, p1: 0x00, p2: 0x00, le: 256),
        ] {
            await #expect(throws: CardError.forbiddenCommand("")) { try await session.transmit(command) }
        }
        #expect(card.commands.count == sent, "nothing reached the card until an application SELECT succeeds")
    }

    @Test func aFreshSessionReadsNothingBeforeItSelects() async throws {
        // Another program may have left EF 0001 of 券面入力補助 selected.
        let card = FakeCard.jpki()
        let session = CardSession(connection: card, logger: logger)
        await #expect(throws: CardError.forbiddenCommand("")) {
            try await session.transmit(CommandAPDU(ins: 0xB0, p1: 0, p2: 0, le: 256))
        }
        #expect(card.commands.isEmpty)
    }

    @Test(arguments: [[UInt8]([0x6C, 0x04]), [0x6C, 0x00]])
    func aVerifyAnswered6CxxIsNeverSentAgain(answer: [UInt8]) async throws {
        let card = FakeCard.jpki()
        card.state.withLock { state in
            state.override = { apdu in apdu[1] == 0x20 && apdu.count > 4 ? answer : nil }
        }
        let session = CardSession(connection: card, logger: logger)
        await #expect(throws: CardError.unexpectedStatus(.success, during: "")) {
            try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        }
        #expect(card.commands.filter { $0[1] == 0x20 && $0.count > 4 }.count == 1, "one VERIFY with the PIN")
    }

    @Test func aTriesQueryAnswered6CxxIsNotResentEither() async throws {
        let card = FakeCard { $0.override = { apdu in apdu[1] == 0x20 ? [0x6C, 0x08] : nil } }
        let response = try await APDUExchange(connection: card).send(CommandAPDU(ins: 0x20, p1: 0, p2: 0x80))
        #expect(response.statusWord == StatusWord(0x6C, 0x08))
        #expect(card.commands.count == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func twoConcurrentVerifiesCannotBothSpendTheLastTries() async throws {
        let queries = CommandGate()
        let card = FakeCard.jpki(authTries: 2) { apdu in
            if apdu == [0x00, 0x20, 0x00, 0x80] { await queries.arrive() }
        }
        let session = CardSession(connection: card, logger: logger)
        let wrong = try CardPIN("9999", kind: .userAuthentication)
        let first = Task { try await session.verify(wrong) }
        await queries.waitForArrivals(1)  // the first call's tries query is on the wire
        let second = Task { try await session.verify(wrong) }
        // Without one-operation-at-a-time, the second call's own query arrives while the first is held.
        for _ in 0..<2000 {
            if await queries.arrivals >= 2 { break }
            await Task.yield()
        }
        await queries.open()
        let firstError = await #expect(throws: CardError.self) { try await first.value }
        let secondError = await #expect(throws: CardError.self) { try await second.value }
        #expect(firstError?.code == .wrongPIN)
        #expect(firstError?.triesLeft == 1)
        #expect(secondError?.code == .lastTryNeedsConfirmation, "the second call saw 1 try left")
        #expect(card.state.withLock { $0.pins[JPKI.authPINEF]?.tries } == 1, "the last try was not spent")
        #expect(card.commands.filter { $0[1] == 0x20 && $0.count > 4 }.count == 1)
    }

    @Test func anAlreadyVerifiedPINIsCheckedAnyway() async throws {
        // ISO 7816-4: the counter query of a verified PIN answers 9000, without a count.
        let card = FakeCard.jpki()
        card.state.withLock { $0.answersVerifiedToCounterQuery = true }
        let session = CardSession(connection: card, logger: logger)
        try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        let error = await #expect(throws: CardError.self) {
            try await session.verify(try CardPIN("9999", kind: .userAuthentication))
        }
        #expect(error?.code == .wrongPIN, "a wrong PIN is never reported as verified")
        #expect(error?.triesLeft == 2)
        #expect(card.commands.filter { $0[1] == 0x20 && $0.count > 4 }.count == 2, "the second PIN was checked")
    }

    @Test func aCardThatStaysVerifiedAfterReselectionIsRefused() async throws {
        let card = FakeCard.jpki()
        card.state.withLock { state in
            state.override = { apdu in apdu == [0x00, 0x20, 0x00, 0x80] ? [0x90, 0x00] : nil }
        }
        let session = CardSession(connection: card, logger: logger)
        await #expect(throws: CardError.unexpectedStatus(.success, during: "")) {
            try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        }
        #expect(!card.commands.contains { $0[1] == 0x20 && $0.count > 4 }, "no PIN was sent")
    }

    @Test func everyCommandRunsInsideOneTransactionAndAVerifiedSessionEndsWithAReset() async throws {
        let card = FakeCard.jpki(certificate: derBlob(bodyLength: 300))
        let session = CardSession(connection: card, logger: logger)
        _ = try await session.tokenType()
        try await session.verify(try CardPIN("1234", kind: .userAuthentication))
        _ = try await session.readCertificateDER(.userAuthentication)
        await session.close()
        #expect(card.events == ["begin", "end(reset)"])
        #expect(card.state.withLock { $0.commandsOutsideTransaction } == 0)
        #expect(card.state.withLock { $0.verified }.isEmpty)
        await #expect(throws: CardError.cardRemoved()) { try await session.tokenType() }
    }

    @Test func aSessionWithoutAPINLeavesTheCard() async throws {
        let card = FakeCard.jpki(certificate: derBlob(bodyLength: 300))
        let session = CardSession(connection: card, logger: logger)
        _ = try await session.tokenType()
        _ = try await session.readCertificateDER(.userAuthentication)
        #expect(try await session.triesLeft(.userAuthentication) == 3)
        await session.close()
        await session.close()
        #expect(card.events == ["begin", "end(leave)"])
    }

    @Test(.timeLimit(.minutes(1)))
    func aDroppedConnectionIsReleasedOnThePCSCThreadsNotInDeinit() async throws {
        let service = PCSCService(threads: 1, logger: logger)
        let (released, continuation) = AsyncStream.makeStream(of: (pthread_t, UInt32).self)
        var connection: PCSCCardConnection? = PCSCCardConnection(
            pool: service.pool,
            context: 0,
            handle: 0,
            cardProtocol: .t1,
            atr: [],
            reader: "test",
            release: { _, _, disposition in continuation.yield((pthread_self(), UInt32(disposition))) }
        )
        _ = connection?.reader
        let dropping = pthread_self()
        connection = nil  // deinit runs here, on this thread
        var iterator = released.makeAsyncIterator()
        let first = await iterator.next()
        let (thread, disposition) = try #require(first)
        #expect(pthread_equal(thread, dropping) == 0, "the release ran on a PC/SC thread, not the dropping one")
        #expect(disposition == 1, "SCARD_RESET_CARD: a dropped session may have verified a PIN")
        await service.shutdown()
    }
}
