import Foundation

/// Why the receiver refused something or could not do it. Built like swift-certificates' errors: a struct over a
/// private code, exposed as static members, carrying where it was thrown. Reasons never carry patient data.
public struct ReceiverError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure, stable for callers to match on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case storage, notFound, conflict, forbidden, invalidInput, pki, startUp
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// The store could not be read or written.
        public static let storage = Code(.storage)
        /// No such document set, device or file.
        public static let notFound = Code(.notFound)
        /// The request conflicts with what is stored (another content for the same key, a finished set).
        public static let conflict = Code(.conflict)
        /// The device or staff member may not do this.
        public static let forbidden = Code(.forbidden)
        /// A field or argument is malformed.
        public static let invalidInput = Code(.invalidInput)
        /// A certificate or key could not be made or read.
        public static let pki = Code(.pki)
        /// A part could not start.
        public static let startUp = Code(.startUp)

        /// The code's name.
        public var description: String { backing.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// What is wrong and what to do, in words (no patient data).
    public let reason: String
    /// Where it was thrown.
    public let file: String
    /// Where it was thrown.
    public let line: UInt

    private init(_ code: Code, _ reason: String, file: String, line: UInt) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// The store failed.
    public static func storage(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.storage, reason, file: file, line: line)
    }
    /// Something named does not exist.
    public static func notFound(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.notFound, reason, file: file, line: line)
    }
    /// A conflict with the stored state.
    public static func conflict(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.conflict, reason, file: file, line: line)
    }
    /// Not allowed for this caller.
    public static func forbidden(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.forbidden, reason, file: file, line: line)
    }
    /// A malformed input.
    public static func invalidInput(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.invalidInput, reason, file: file, line: line)
    }
    /// A certificate or key problem.
    public static func pki(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.pki, reason, file: file, line: line)
    }
    /// A start-up failure.
    public static func startUp(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.startUp, reason, file: file, line: line)
    }

    /// Errors compare by code.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    /// Hashes the code.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    /// The code and the reason.
    public var description: String { "ReceiverError.\(code): \(reason)" }
}
