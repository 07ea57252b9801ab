/// Why the eligibility stub could not start or carry out an admin command.
///
/// A struct over a private code (swift-certificates style); messages never carry patient data.
public struct EligibilitySimError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case tls(String)
        case storage(String)
        case invalidArgument(String)
        case faults(String)
        case pki(String)
    }

    private var code: Code
    /// The file that threw.
    public var file: String
    /// The line that threw.
    public var line: UInt

    private init(_ code: Code, file: String, line: UInt) {
        self.code = code
        self.file = file
        self.line = line
    }

    /// TLS material is missing or broken.
    public static func tls(_ detail: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.tls(detail), file: file, line: line)
    }

    /// A file could not be read or written.
    public static func storage(_ detail: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.storage(detail), file: file, line: line)
    }

    /// A command-line or admin argument is invalid.
    public static func invalidArgument(_ detail: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.invalidArgument(detail), file: file, line: line)
    }

    /// A fault configuration is invalid.
    public static func faults(_ detail: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.faults(detail), file: file, line: line)
    }

    /// The card simulator's PKI cannot be used.
    public static func pki(_ detail: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.pki(detail), file: file, line: line)
    }

    /// Compares the code only.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    /// Hashes the code only.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }

    /// What failed.
    public var description: String {
        let what: String
        switch self.code {
        case .tls(let d): what = "TLS: \(d)"
        case .storage(let d): what = "storage: \(d)"
        case .invalidArgument(let d): what = "invalid argument: \(d)"
        case .faults(let d): what = "faults: \(d)"
        case .pki(let d): what = "card PKI: \(d)"
        }
        return "EligibilitySimError: \(what) (\(self.file):\(self.line))"
    }
}
