import CPCSCLite
import Foundation
import Logging
import NIOPosix
import Synchronization

// MARK: - Return codes: the one place where a PC/SC result becomes a CardError

/// Checks a PC/SC return code and turns a failure into the matching ``CardError``.
///
/// Every PC/SC call in this module goes through here, so the mapping lives in one place.
@inline(__always)
func pcscCheck(_ rv: LONG, _ operation: StaticString, file: String = #fileID, line: UInt = #line) throws {
    guard rv != SCARD_S_SUCCESS else { return }
    throw CardError(pcscReturnCode: rv, operation: operation, file: file, line: line)
}

extension CardError {
    /// Creates the error for a failed PC/SC call.
    init(pcscReturnCode rv: LONG, operation: StaticString, file: String, line: UInt) {
        let code = Int(rv)
        switch rv {
        case SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED, SCARD_E_INVALID_HANDLE, SCARD_F_COMM_ERROR:
            self = .serviceUnavailable(pcsc: code, file: file, line: line)
        case SCARD_E_NO_READERS_AVAILABLE:
            self = .noReaders(pcsc: code, file: file, line: line)
        case SCARD_E_UNKNOWN_READER:
            self = .readerNotFound(pcsc: code, file: file, line: line)
        case SCARD_E_READER_UNAVAILABLE:
            self = .readerUnavailable(pcsc: code, file: file, line: line)
        case SCARD_E_NO_SMARTCARD:
            self = .noCard(pcsc: code, file: file, line: line)
        case SCARD_W_REMOVED_CARD:
            self = .cardRemoved(pcsc: code, file: file, line: line)
        case SCARD_W_RESET_CARD:
            self = .cardRemoved(
                "the card was reset by another program during the read; read again",
                pcsc: code,
                file: file,
                line: line
            )
        case SCARD_W_UNRESPONSIVE_CARD, SCARD_W_UNPOWERED_CARD, SCARD_W_UNSUPPORTED_CARD, SCARD_E_PROTO_MISMATCH,
            SCARD_E_CARD_UNSUPPORTED, SCARD_E_NOT_TRANSACTED, SCARD_E_COMM_DATA_LOST:
            self = .cardUnresponsive(pcsc: code, file: file, line: line)
        case SCARD_E_SHARING_VIOLATION:
            self = .sharingViolation(pcsc: code, file: file, line: line)
        case SCARD_E_CANCELLED, SCARD_E_SYSTEM_CANCELLED:
            self = .cancelled(pcsc: code, file: file, line: line)
        case SCARD_E_TIMEOUT:
            self = .timedOut("timed out waiting for the reader", pcsc: code, file: file, line: line)
        default:
            self = .pcscFailure("\(operation) failed", pcsc: code, file: file, line: line)
        }
    }
}

// MARK: - Reader state

/// What PC/SC reports about one reader.
public struct ReaderStatus: Hashable, Sendable, Codable {
    /// The reader's name as pcscd reports it.
    public var name: String
    /// Whether a card (or phone) is on the reader.
    public var cardPresent: Bool
    /// Whether the card does not answer to reset.
    public var cardMute: Bool
    /// Whether another program holds the card exclusively.
    public var exclusive: Bool
    /// The card's ATR, empty when no card is present.
    public var atr: [UInt8]

    /// Creates a reader status.
    public init(name: String, cardPresent: Bool, cardMute: Bool = false, exclusive: Bool = false, atr: [UInt8] = []) {
        self.name = name
        self.cardPresent = cardPresent
        self.cardMute = cardMute
        self.exclusive = exclusive
        self.atr = atr
    }

    /// Whether the ATR is one a contactless reader synthesises (PC/SC part 3: `3B 8x 80 01 …`).
    public var isContactless: Bool {
        atr.count >= 4 && atr[0] == 0x3B && atr[1] & 0xF0 == 0x80 && atr[2] == 0x80 && atr[3] == 0x01
    }
}

/// A change on the readers, as reported by ``PCSCService/events(pollInterval:)``.
public enum ReaderEvent: Hashable, Sendable {
    /// pcscd is reachable and these readers are present (first event, and after pcscd comes back).
    case serviceAvailable(readers: [ReaderStatus])
    /// pcscd went away; the monitor keeps trying to reach it.
    case serviceUnavailable
    /// A reader was plugged in.
    case readerAdded(String)
    /// A reader was unplugged.
    case readerRemoved(String)
    /// A card (or phone) touched the reader.
    case cardInserted(ReaderStatus)
    /// The card left the reader.
    case cardRemoved(reader: String)
}

// MARK: - The service

/// The PC/SC resource manager (pcscd) as seen by the gateway.
///
/// Every blocking PC/SC call runs on a private thread pool, never on Swift's cooperative pool, and a
/// wait for reader changes is cancelled with `SCardCancel` when its task is cancelled. Each operation and
/// each card connection has its own PC/SC context, so a long wait never blocks a card exchange and a
/// restarted pcscd is picked up by the next call.
public final class PCSCService: Sendable {
    /// The pseudo-reader through which pcsc-lite reports reader plug and unplug.
    static let plugAndPlayReader = "\\\\?PnP?\\Notification"

    let pool: NIOThreadPool
    let logger: Logger

    /// Creates the service and starts its threads.
    /// - Parameters:
    ///   - threads: Threads for blocking PC/SC calls: one per concurrent card exchange or monitor.
    ///   - logger: Where card events are logged; never receives card data.
    public init(threads: Int = 4, logger: Logger) {
        self.pool = NIOThreadPool(numberOfThreads: threads)
        self.pool.start()
        self.logger = logger
    }

    /// Stops the threads. Call once, when no operation is running.
    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    /// Runs a blocking body on the service's threads with a fresh PC/SC context.
    func withContext<T: Sendable>(_ body: @escaping @Sendable (SCARDCONTEXT) throws -> T) async throws -> T {
        do {
            return try await pool.runIfActive {
                var context: SCARDCONTEXT = 0
                try pcscCheck(
                    SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &context),
                    "SCardEstablishContext"
                )
                defer { SCardReleaseContext(context) }
                return try body(context)
            }
        } catch let error as CardError {
            throw error
        } catch {
            throw CardError.cancelled("the card service is shutting down")
        }
    }

    /// The names of the connected readers (empty when none).
    public func readers() async throws -> [String] {
        try await withContext { context in try Self.listReaders(context) }
    }

    /// The current state of every reader.
    public func readerStatuses() async throws -> [ReaderStatus] {
        try await withContext { context in
            let names = try Self.listReaders(context)
            guard !names.isEmpty else { return [] }
            var states = names.map { ReaderWatch(name: $0) }
            _ = try Self.getStatusChange(context, &states, timeoutMilliseconds: 0)
            return states.map(\.status)
        }
    }

    /// Picks a reader by name, or the only one with a card on it (or the first one) when no name is given.
    public func resolveReader(_ name: String?) async throws -> ReaderStatus {
        let statuses = try await readerStatuses()
        guard !statuses.isEmpty else { throw CardError.noReaders() }
        if let name {
            guard
                let match = statuses.first(where: { $0.name == name })
                    ?? statuses.first(where: { $0.name.hasPrefix(name) })
            else {
                throw CardError.readerNotFound("no reader named \"\(name)\" is connected")
            }
            return match
        }
        return statuses.first(where: \.cardPresent) ?? statuses[0]
    }

    /// Waits until a card is on the reader (or any reader when `reader` is nil) and returns its status.
    ///
    /// The wait blocks in `SCardGetStatusChange` on the service's threads and ends at once when the task is
    /// cancelled.
    public func waitForCard(reader: String?, timeout: Duration) async throws -> ReaderStatus {
        let deadline = ContinuousClock.now + timeout
        while true {
            let statuses = try await readerStatuses()
            let candidates = statuses.filter { reader == nil || $0.name == reader || $0.name.hasPrefix(reader!) }
            if let present = candidates.first(where: \.cardPresent) { return present }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else {
                if let reader, candidates.isEmpty {
                    throw CardError.readerNotFound("no reader named \"\(reader)\" was connected within \(timeout)")
                }
                throw CardError.noCard("no card was placed on the reader within \(timeout)")
            }
            if candidates.isEmpty {
                // The reader is not (yet) plugged in: look again shortly.
                try await Task.sleep(for: min(remaining, .milliseconds(100)))
                continue
            }
            try await waitForChange(
                readers: candidates.map(\.name),
                current: statuses,
                timeout: min(remaining, .seconds(1))
            )
        }
    }

    /// Blocks until one of the readers changes state or the timeout passes; cancellable.
    func waitForChange(readers names: [String], current: [ReaderStatus], timeout: Duration) async throws {
        let contextBox = Mutex<SCARDCONTEXT?>(nil)
        let milliseconds = UInt32(
            clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        )
        try await withTaskCancellationHandler {
            try await withContext { context in
                contextBox.withLock { $0 = context }
                defer { contextBox.withLock { $0 = nil } }
                var states = names.map { name in
                    var watch = ReaderWatch(name: name)
                    if let status = current.first(where: { $0.name == name }) {
                        watch.currentState = DWORD(status.cardPresent ? SCARD_STATE_PRESENT : SCARD_STATE_EMPTY)
                    }
                    return watch
                }
                do {
                    _ = try Self.getStatusChange(context, &states, timeoutMilliseconds: milliseconds)
                } catch let error as CardError where error.code == .timedOut {
                    return
                }
            }
        } onCancel: {
            contextBox.withLock { context in
                if let context { SCardCancel(context) }
            }
        }
        try Task.checkCancellation()
    }

    /// Connects to the card on a reader.
    ///
    /// Internal: a raw connection bypasses every rule of ``CardSession``; outside this module cards are reached
    /// only through ``CardReader/withSession(reader:_:)``.
    func connect(reader: String) async throws -> PCSCCardConnection {
        let (context, handle, proto, atr) = try await pool.runIfActive {
            var context: SCARDCONTEXT = 0
            try pcscCheck(SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &context), "SCardEstablishContext")
            do {
                var handle: SCARDHANDLE = 0
                var active: DWORD = 0
                try pcscCheck(
                    SCardConnect(
                        context,
                        reader,
                        DWORD(SCARD_SHARE_SHARED),
                        DWORD(SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1),
                        &handle,
                        &active
                    ),
                    "SCardConnect"
                )
                let atr = Self.cardATR(handle)
                let proto: CardProtocol =
                    active == DWORD(SCARD_PROTOCOL_T0) ? .t0 : active == DWORD(SCARD_PROTOCOL_T1) ? .t1 : .raw
                return (context, handle, proto, atr)
            } catch {
                SCardReleaseContext(context)
                throw error
            }
        }
        logger.debug(
            "card connected",
            metadata: ["kyukyu.reader": "\(reader)", "kyukyu.card.protocol": "\(proto.rawValue)"]
        )
        return PCSCCardConnection(
            pool: pool,
            context: context,
            handle: handle,
            cardProtocol: proto,
            atr: atr,
            reader: reader
        )
    }

    // MARK: Blocking helpers (run on the pool)

    static func listReaders(_ context: SCARDCONTEXT) throws -> [String] {
        var length: DWORD = 0
        var rv = SCardListReaders(context, nil, nil, &length)
        if rv == SCARD_E_NO_READERS_AVAILABLE { return [] }
        try pcscCheck(rv, "SCardListReaders")
        var buffer = [CChar](repeating: 0, count: Int(length))
        rv = SCardListReaders(context, nil, &buffer, &length)
        if rv == SCARD_E_NO_READERS_AVAILABLE { return [] }
        try pcscCheck(rv, "SCardListReaders")
        return splitMultiString(buffer)
    }

    static func splitMultiString(_ buffer: [CChar]) -> [String] {
        var names: [String] = []
        var current: [UInt8] = []
        for char in buffer {
            if char == 0 {
                if current.isEmpty { break }
                names.append(String(decoding: current, as: UTF8.self))
                current.removeAll()
            } else {
                current.append(UInt8(bitPattern: char))
            }
        }
        return names
    }

    static func cardATR(_ handle: SCARDHANDLE) -> [UInt8] {
        var atr = [UInt8](repeating: 0, count: Int(MAX_ATR_SIZE))
        var atrLength = DWORD(MAX_ATR_SIZE)
        var state: DWORD = 0
        var proto: DWORD = 0
        var nameLength = DWORD(0)
        let rv = SCardStatus(handle, nil, &nameLength, &state, &proto, &atr, &atrLength)
        guard rv == SCARD_S_SUCCESS else { return [] }
        return Array(atr.prefix(Int(atrLength)))
    }

    /// Calls `SCardGetStatusChange` for the given readers, updating their event states.
    static func getStatusChange(
        _ context: SCARDCONTEXT,
        _ watches: inout [ReaderWatch],
        timeoutMilliseconds: UInt32
    ) throws -> Bool {
        let names = watches.map { strdup($0.name)! }
        defer { names.forEach { free($0) } }
        var states = watches.enumerated().map { index, watch in
            var state = SCARD_READERSTATE()
            state.szReader = UnsafePointer(names[index])
            state.dwCurrentState = watch.currentState
            return state
        }
        let rv = SCardGetStatusChange(context, DWORD(timeoutMilliseconds), &states, DWORD(states.count))
        try pcscCheck(rv, "SCardGetStatusChange")
        for index in watches.indices {
            let state = states[index]
            watches[index].eventState = state.dwEventState
            let count = min(Int(state.cbAtr), Int(MAX_ATR_SIZE))
            watches[index].atr = withUnsafeBytes(of: state.rgbAtr) { Array($0.prefix(count)) }
        }
        return true
    }
}

/// One reader's entry in a `SCardGetStatusChange` call.
struct ReaderWatch: Sendable {
    var name: String
    var currentState = DWORD(SCARD_STATE_UNAWARE)
    var eventState = DWORD(0)
    var atr: [UInt8] = []

    init(name: String) { self.name = name }

    var changed: Bool { eventState & DWORD(SCARD_STATE_CHANGED) != 0 }
    var present: Bool { eventState & DWORD(SCARD_STATE_PRESENT) != 0 }

    var status: ReaderStatus {
        ReaderStatus(
            name: name,
            cardPresent: present,
            cardMute: eventState & DWORD(SCARD_STATE_MUTE) != 0,
            exclusive: eventState & DWORD(SCARD_STATE_EXCLUSIVE) != 0,
            atr: present ? atr : []
        )
    }
}

// MARK: - A card connection through pcscd

/// A connection to a card through pcscd.
///
/// `transmit` runs `SCardTransmit` on the service's threads. A card that leaves the reader mid-exchange
/// surfaces as ``CardError/Code/cardRemoved``, checked against the reader's state when pcscd reports only a
/// generic transmission failure.
///
/// Release is explicit (``close(endingTransaction:disposition:)``, which ``CardSession`` calls at its end). A
/// connection dropped without it is released by `deinit`, which makes no PC/SC call itself: it hands the release
/// to the service's threads, so the thread that happened to drop the last reference (often one of Swift's
/// cooperative threads) never blocks on pcscd.
final class PCSCCardConnection: CardConnection {
    /// Disconnects a handle and releases its context: blocking, so it runs only on the PC/SC threads.
    typealias Release = @Sendable (_ handle: SCARDHANDLE, _ context: SCARDCONTEXT, _ disposition: DWORD) -> Void

    let pool: NIOThreadPool
    let context: SCARDCONTEXT
    let handle: SCARDHANDLE
    let closed = Atomic<Bool>(false)
    let release: Release

    /// The negotiated protocol.
    let cardProtocol: CardProtocol
    /// The ATR read at connection.
    let atr: [UInt8]
    /// The reader's name.
    let reader: String

    init(
        pool: NIOThreadPool,
        context: SCARDCONTEXT,
        handle: SCARDHANDLE,
        cardProtocol: CardProtocol,
        atr: [UInt8],
        reader: String,
        release: @escaping Release = PCSCCardConnection.disconnectAndRelease
    ) {
        self.pool = pool
        self.context = context
        self.handle = handle
        self.cardProtocol = cardProtocol
        self.atr = atr
        self.reader = reader
        self.release = release
    }

    /// The real release: `SCardDisconnect` with the disposition, then `SCardReleaseContext`.
    static let disconnectAndRelease: Release = { handle, context, disposition in
        SCardDisconnect(handle, disposition)
        SCardReleaseContext(context)
    }

    deinit {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // No blocking call on this thread. A connection dropped without close may have verified a PIN: reset.
        let (handle, context, release) = (self.handle, self.context, self.release)
        let disposition = DWORD(SCARD_RESET_CARD)
        pool.submit { state in
            if state == .active {
                release(handle, context, disposition)
            } else {
                // The pool is stopping and runs this inline on the dropping thread: release elsewhere.
                Thread.detachNewThread { release(handle, context, disposition) }
            }
        }
    }

    /// Sends raw command bytes and returns the raw answer.
    func transmit(_ command: [UInt8]) async throws -> [UInt8] {
        guard !closed.load(ordering: .acquiring) else {
            throw CardError.cardRemoved("the card connection was already closed")
        }
        let handle = self.handle
        let context = self.context
        let reader = self.reader
        let proto = self.cardProtocol
        do {
            return try await pool.runIfActive {
                var response = [UInt8](repeating: 0, count: 4096)
                var responseLength = DWORD(response.count)
                let pci: UnsafePointer<SCARD_IO_REQUEST> =
                    switch proto {
                    case .t0: kyukyu_pci_t0()
                    case .t1: kyukyu_pci_t1()
                    case .raw: kyukyu_pci_raw()
                    }
                let rv = SCardTransmit(handle, pci, command, DWORD(command.count), nil, &response, &responseLength)
                let broken =
                    rv == SCARD_E_NOT_TRANSACTED || rv == SCARD_F_COMM_ERROR
                    || (rv == SCARD_S_SUCCESS && responseLength < 2)
                if broken {
                    // pcscd reports a card pulled away mid-APDU as a generic failure (or an empty answer),
                    // and notices the removal only at its next presence poll: give the reader time to say.
                    var watches = [ReaderWatch(name: reader)]
                    watches[0].currentState = DWORD(SCARD_STATE_PRESENT)
                    if (try? PCSCService.getStatusChange(context, &watches, timeoutMilliseconds: 2000)) != nil,
                        !watches[0].present
                    {
                        throw CardError.cardRemoved(pcsc: Int(rv))
                    }
                    if rv == SCARD_S_SUCCESS { throw CardError.cardUnresponsive(pcsc: nil) }
                }
                try pcscCheck(rv, "SCardTransmit")
                return Array(response.prefix(Int(responseLength)))
            }
        } catch let error as CardError {
            throw error
        } catch {
            throw CardError.cancelled("the card service is shutting down")
        }
    }

    /// `SCardBeginTransaction`: waits while another program holds a transaction on the card.
    func beginTransaction() async throws {
        guard !closed.load(ordering: .acquiring) else {
            throw CardError.cardRemoved("the card connection was already closed")
        }
        let handle = self.handle
        do {
            try await pool.runIfActive {
                try pcscCheck(SCardBeginTransaction(handle), "SCardBeginTransaction")
            }
        } catch let error as CardError {
            throw error
        } catch {
            throw CardError.cancelled("the card service is shutting down")
        }
    }

    /// Ends the transaction with the disposition (`SCardEndTransaction`), then disconnects and releases the
    /// PC/SC context. When the transaction could not be ended (the card is gone), the disconnect carries the
    /// disposition instead. Safe to call more than once.
    func close(endingTransaction: Bool, disposition: CardDisposition) async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let (handle, context, release) = (self.handle, self.context, self.release)
        let requested = DWORD(disposition == .reset ? SCARD_RESET_CARD : SCARD_LEAVE_CARD)
        let work: @Sendable () -> Void = {
            var remaining = requested
            if endingTransaction, SCardEndTransaction(handle, requested) == SCARD_S_SUCCESS {
                remaining = DWORD(SCARD_LEAVE_CARD)
            }
            release(handle, context, remaining)
        }
        do {
            try await pool.runIfActive(work)
        } catch {
            // The pool is shutting down: still release, off the caller's thread.
            Thread.detachNewThread(work)
        }
    }
}
