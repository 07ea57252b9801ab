/// An error thrown by the card simulator.
///
/// Only ``code`` takes part in equality, so tests can compare with a freshly made error:
/// `#expect(throws: CardSimulatorError.invalidConfiguration(""))`. The reason, file and line are there for
/// diagnostics and appear in ``description``.
public struct CardSimulatorError: Error, Hashable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidConfiguration
            case pkiStorage
            case pkiCorrupt
            case certificateCreation
            case signing
        }

        private var backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// A configuration value is out of range (a PIN of the wrong form, a negative count, an unknown holder).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The test PKI folder could not be created, read or written.
        public static let pkiStorage = Code(.pkiStorage)
        /// A file of the test PKI exists but cannot be parsed.
        public static let pkiCorrupt = Code(.pkiCorrupt)
        /// A key or certificate of the test PKI could not be made.
        public static let certificateCreation = Code(.certificateCreation)
        /// The simulated card's private-key operation failed.
        public static let signing = Code(.signing)

        /// A short name of the code.
        public var description: String {
            String(describing: self.backing)
        }
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable reason. Never carries PINs or personal data.
    public var reason: String
    /// The file in which the error was made.
    public var file: String
    /// The line on which the error was made.
    public var line: UInt

    private init(code: Code, reason: String, file: String, line: UInt) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// A textual form with code, reason and source location.
    public var description: String {
        "CardSimulatorError.\(self.code): \(self.reason) (\(self.file):\(self.line))"
    }

    /// Compares the codes only.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code
    }

    /// Hashes the code only.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.code)
    }

    /// A configuration value is out of range.
    @inline(never)
    public static func invalidConfiguration(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(code: .invalidConfiguration, reason: reason, file: file, line: line)
    }

    /// The test PKI folder could not be created, read or written.
    @inline(never)
    public static func pkiStorage(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(code: .pkiStorage, reason: reason, file: file, line: line)
    }

    /// A file of the test PKI cannot be parsed.
    @inline(never)
    public static func pkiCorrupt(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(code: .pkiCorrupt, reason: reason, file: file, line: line)
    }

    /// A key or certificate could not be made.
    @inline(never)
    public static func certificateCreation(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(code: .certificateCreation, reason: reason, file: file, line: line)
    }

    /// The private-key operation failed.
    @inline(never)
    public static func signing(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(code: .signing, reason: reason, file: file, line: line)
    }
}
