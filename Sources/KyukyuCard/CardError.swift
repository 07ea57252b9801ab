/// An error thrown by the card client.
///
/// Every failure a paramedic or an operator can meet on the card path has its own ``code``:
/// pcscd not running, the reader unplugged, the card pulled away mid-read, a card that is not a
/// JPKI card, a phone token that wants its PIN or an on-phone approval, a wrong PIN, a PIN that
/// would lock on the next try, a locked PIN, and malformed answers.
///
/// The ``reason`` never carries patient data or a PIN. Only the ``code`` takes part in equality,
/// so tests can compare against `CardError.cardRemoved()` directly.
public struct CardError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let code: Code
    /// A sentence for a person: what happened and, where there is one, what to do.
    public let reason: String
    /// The PC/SC return code behind the error, when there is one.
    public let pcscReturnCode: Int?
    /// The card's status word behind the error, when there is one.
    public let statusWord: StatusWord?
    /// Tries left on the PIN concerned, when the card told us.
    public let triesLeft: Int?
    /// Source location where the error was created.
    public let file: String
    /// Source line where the error was created.
    public let line: UInt

    /// A human-readable description with the code, reason and source location.
    public var description: String {
        var text = "CardError.\(code): \(reason)"
        if let statusWord { text += " [SW \(statusWord)]" }
        if let pcscReturnCode { text += " [PC/SC 0x\(String(UInt32(truncatingIfNeeded: pcscReturnCode), radix: 16))]" }
        return text + " (\(file):\(line))"
    }

    /// Equality considers only the code.
    public static func == (lhs: CardError, rhs: CardError) -> Bool { lhs.code == rhs.code }

    /// Hashing considers only the code.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    private init(
        _ code: Code,
        _ reason: String,
        pcsc: Int? = nil,
        statusWord: StatusWord? = nil,
        triesLeft: Int? = nil,
        file: String,
        line: UInt
    ) {
        self.code = code
        self.reason = reason
        self.pcscReturnCode = pcsc
        self.statusWord = statusWord
        self.triesLeft = triesLeft
        self.file = file
        self.line = line
    }

    /// The kind of a ``CardError``.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case serviceUnavailable
            case noReaders
            case readerNotFound
            case readerUnavailable
            case noCard
            case cardRemoved
            case cardUnresponsive
            case sharingViolation
            case notJPKICard
            case certificateNeedsPIN
            case phoneApprovalRequired
            case wrongPIN
            case lastTryNeedsConfirmation
            case pinLocked
            case invalidPINFormat
            case malformedResponse
            case unexpectedStatus
            case forbiddenCommand
            case cancelled
            case timedOut
            case pcscFailure
        }

        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// A short name for the code.
        public var description: String { backing.rawValue }

        /// pcscd is not running or cannot be reached.
        public static let serviceUnavailable = Code(.serviceUnavailable)
        /// pcscd runs but no reader is connected.
        public static let noReaders = Code(.noReaders)
        /// The named reader does not exist.
        public static let readerNotFound = Code(.readerNotFound)
        /// The reader was unplugged or stopped answering.
        public static let readerUnavailable = Code(.readerUnavailable)
        /// No card is on the reader.
        public static let noCard = Code(.noCard)
        /// The card was removed (or reset by someone else) during the exchange.
        public static let cardRemoved = Code(.cardRemoved)
        /// The card does not answer.
        public static let cardUnresponsive = Code(.cardUnresponsive)
        /// Another program holds the card exclusively.
        public static let sharingViolation = Code(.sharingViolation)
        /// The card has no JPKI application or no token information.
        public static let notJPKICard = Code(.notJPKICard)
        /// A phone token wants its user-authentication PIN before it gives the certificate.
        public static let certificateNeedsPIN = Code(.certificateNeedsPIN)
        /// An iPhone token needs (or was refused) the holder's approval on the phone.
        public static let phoneApprovalRequired = Code(.phoneApprovalRequired)
        /// The PIN was wrong; ``CardError/triesLeft`` says how many tries are left.
        public static let wrongPIN = Code(.wrongPIN)
        /// Only one try is left: the library refuses to spend it unless a person confirms.
        public static let lastTryNeedsConfirmation = Code(.lastTryNeedsConfirmation)
        /// The PIN is locked; only the municipal office can reset it.
        public static let pinLocked = Code(.pinLocked)
        /// The PIN given does not have the card's PIN format; nothing was sent to the card.
        public static let invalidPINFormat = Code(.invalidPINFormat)
        /// The card's answer could not be understood.
        public static let malformedResponse = Code(.malformedResponse)
        /// The card answered with a status word that this step does not expect.
        public static let unexpectedStatus = Code(.unexpectedStatus)
        /// The library refuses to send this command (a raw VERIFY, or a read of the 12-digit number).
        public static let forbiddenCommand = Code(.forbiddenCommand)
        /// The operation was cancelled.
        public static let cancelled = Code(.cancelled)
        /// A wait ran out of time.
        public static let timedOut = Code(.timedOut)
        /// Any other PC/SC failure.
        public static let pcscFailure = Code(.pcscFailure)
    }
}

extension CardError {
    /// pcscd is not running or cannot be reached.
    public static func serviceUnavailable(
        _ reason: String = "the smart-card service (pcscd) is not running; start it and try again",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.serviceUnavailable, reason, pcsc: pcsc, file: file, line: line)
    }

    /// No reader is connected.
    public static func noReaders(
        _ reason: String = "no card reader is connected; plug in the reader",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.noReaders, reason, pcsc: pcsc, file: file, line: line)
    }

    /// The named reader does not exist.
    public static func readerNotFound(
        _ reason: String = "the requested reader is not connected",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.readerNotFound, reason, pcsc: pcsc, file: file, line: line)
    }

    /// The reader went away.
    public static func readerUnavailable(
        _ reason: String = "the card reader was unplugged or stopped answering; reconnect it",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.readerUnavailable, reason, pcsc: pcsc, file: file, line: line)
    }

    /// No card on the reader.
    public static func noCard(
        _ reason: String = "no card on the reader; place the card (or phone) on the reader",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.noCard, reason, pcsc: pcsc, file: file, line: line)
    }

    /// The card was removed mid-exchange.
    public static func cardRemoved(
        _ reason: String = "the card was moved away from the reader during the read; hold it still and read again",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.cardRemoved, reason, pcsc: pcsc, file: file, line: line)
    }

    /// The card does not answer.
    public static func cardUnresponsive(
        _ reason: String = "the card does not answer; reposition it on the reader",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.cardUnresponsive, reason, pcsc: pcsc, file: file, line: line)
    }

    /// Another program holds the card.
    public static func sharingViolation(
        _ reason: String = "another program is using the card; close it and try again",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.sharingViolation, reason, pcsc: pcsc, file: file, line: line)
    }

    /// Not a JPKI card.
    public static func notJPKICard(
        _ reason: String = "this card has no JPKI application: it is not a My Number card or smartphone credential",
        statusWord: StatusWord? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.notJPKICard, reason, statusWord: statusWord, file: file, line: line)
    }

    /// The phone token wants its auth PIN first.
    public static func certificateNeedsPIN(
        _ reason: String =
            "this smartphone credential gives its certificate only after its 4-digit user-authentication PIN",
        statusWord: StatusWord? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.certificateNeedsPIN, reason, statusWord: statusWord, file: file, line: line)
    }

    /// The iPhone wants (or refused) an on-phone approval.
    public static func phoneApprovalRequired(
        _ reason: String = "the holder must approve on the iPhone (Face ID / Touch ID); it was not approved",
        statusWord: StatusWord? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.phoneApprovalRequired, reason, statusWord: statusWord, file: file, line: line)
    }

    /// Wrong PIN, with the tries left.
    public static func wrongPIN(
        triesLeft: Int,
        statusWord: StatusWord? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(
            .wrongPIN,
            "wrong PIN; \(triesLeft) \(triesLeft == 1 ? "try" : "tries") left before the PIN locks",
            statusWord: statusWord,
            triesLeft: triesLeft,
            file: file,
            line: line
        )
    }

    /// One try left and no confirmation.
    public static func lastTryNeedsConfirmation(
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(
            .lastTryNeedsConfirmation,
            "only 1 PIN try is left; a wrong PIN now locks the card until the holder visits the municipal office."
                + " Nothing was sent. Confirm explicitly (--confirm-last-try) to use it",
            triesLeft: 1,
            file: file,
            line: line
        )
    }

    /// The PIN is locked.
    public static func pinLocked(
        statusWord: StatusWord? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(
            .pinLocked,
            "the PIN is locked; only the holder's municipal office can reset it. Use the visual-check flow instead",
            statusWord: statusWord,
            triesLeft: 0,
            file: file,
            line: line
        )
    }

    /// The PIN is not in the card's format.
    public static func invalidPINFormat(
        _ reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.invalidPINFormat, reason, file: file, line: line)
    }

    /// The card's answer is malformed.
    public static func malformedResponse(
        _ reason: String,
        statusWord: StatusWord? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.malformedResponse, reason, statusWord: statusWord, file: file, line: line)
    }

    /// An unexpected status word.
    public static func unexpectedStatus(
        _ statusWord: StatusWord,
        during step: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(
            .unexpectedStatus,
            "the card refused \(step) (\(statusWord.meaning))",
            statusWord: statusWord,
            file: file,
            line: line
        )
    }

    /// The library refuses to send the command.
    public static func forbiddenCommand(
        _ reason: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.forbiddenCommand, reason, file: file, line: line)
    }

    /// Cancelled.
    public static func cancelled(
        _ reason: String = "the card operation was cancelled",
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.cancelled, reason, pcsc: pcsc, file: file, line: line)
    }

    /// Timed out.
    public static func timedOut(
        _ reason: String,
        pcsc: Int? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.timedOut, reason, pcsc: pcsc, file: file, line: line)
    }

    /// Any other PC/SC failure.
    public static func pcscFailure(
        _ reason: String,
        pcsc: Int,
        file: String = #fileID,
        line: UInt = #line
    ) -> CardError {
        CardError(.pcscFailure, reason, pcsc: pcsc, file: file, line: line)
    }
}
