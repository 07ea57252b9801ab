public import KyukyuIncident

/// Why a crew action on an incident was refused. Built like swift-certificates' errors: a struct over a private
/// code, with the file and line that threw; ``kind`` is what the HTTP layer maps to a status. Reasons never carry
/// patient data or a PIN.
public struct WorkflowError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of refusal.
    public enum Kind: String, Sendable, Hashable {
        /// No such incident (or it was shredded).
        case notFound = "not-found"
        /// The action does not apply in the incident's phase.
        case conflict
        /// The input is malformed (`reason` says which field and why).
        case invalidInput = "validation"
        /// The PIN was wrong; ``triesLeft`` says how many are left.
        case wrongPIN = "wrong-pin"
        /// One try is left: the holder must confirm before it is spent.
        case pinLastTry = "pin-last-try"
        /// The PIN is locked: the card cannot be read with it; use the lookup.
        case pinLocked = "pin-locked"
        /// The card could not be read (`reason` says what to do).
        case card
        /// The vault failed.
        case storage
    }

    private struct Code: Hashable, Sendable {
        var kind: Kind
        var triesLeft: Int?
    }
    private let code: Code
    /// Plain words for the crew.
    public let reason: String
    /// The card's own error behind a ``Kind/card`` refusal, where there is one.
    public private(set) var underlying: (any Error & Sendable)?
    /// The file that threw the error.
    public let file: String
    /// The line that threw the error.
    public let line: UInt

    private init(_ kind: Kind, triesLeft: Int? = nil, reason: String, file: String, line: UInt) {
        self.code = Code(kind: kind, triesLeft: triesLeft)
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// The kind of refusal.
    public var kind: Kind { code.kind }
    /// The PIN tries left, for a wrong PIN or the last-try guard.
    public var triesLeft: Int? { code.triesLeft }

    /// No such incident.
    public static func notFound(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.notFound, reason: "no such incident (it may have been closed and shredded)", file: file, line: line)
    }

    /// The action does not apply now.
    public static func conflict(_ error: IncidentTransitionError, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.conflict, reason: error.description, file: file, line: line)
    }

    /// The action does not apply now, in words.
    public static func conflict(reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.conflict, reason: reason, file: file, line: line)
    }

    /// Malformed input.
    public static func invalidInput(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.invalidInput, reason: reason, file: file, line: line)
    }

    /// A wrong PIN.
    public static func wrongPIN(triesLeft: Int?, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.wrongPIN, triesLeft: triesLeft, reason: "wrong PIN", file: file, line: line)
    }

    /// The last try needs the holder's explicit confirmation.
    public static func pinLastTry(file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .pinLastTry,
            triesLeft: 1,
            reason: "one try is left: a wrong PIN now locks the card; confirm to use it",
            file: file,
            line: line
        )
    }

    /// The PIN is locked.
    public static func pinLocked(file: String = #fileID, line: UInt = #line) -> Self {
        Self(
            .pinLocked,
            triesLeft: 0,
            reason: "the PIN is locked; identify the patient by the lookup",
            file: file,
            line: line
        )
    }

    /// The card could not be read; `underlying` is the card's own error.
    public static func card(
        _ reason: String,
        underlying: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) -> Self {
        var error = Self(.card, reason: reason, file: file, line: line)
        error.underlying = underlying
        return error
    }

    /// The vault failed.
    public static func storage(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.storage, reason: reason, file: file, line: line)
    }

    /// Two errors are the same refusal, wherever they were thrown.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the code only.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// The kind and the reason.
    public var description: String { "WorkflowError.\(kind.rawValue): \(reason) (\(file):\(line))" }
}
