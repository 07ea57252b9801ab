/// Why an onshi XML message could not be decoded.
///
/// Built like swift-certificates' `CertificateError`: a struct over a private code, exposed as static members,
/// carrying the file and line where it was thrown. Descriptions name the element path that failed
/// (`MessageBody/ResultList/Medication[3]/YJCode`, 1-based indices for repeated elements) and never echo an
/// element's value: values are patient data.
public struct OnshiXMLError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case truncated
        case malformed
        case forbiddenDeclaration
        case forbiddenProcessingInstruction
        case notUTF8(reason: String)
        case wrongRoot(expected: String, found: String)
        case missingElement(path: String)
        case duplicateElement(path: String)
        case unexpectedElement(path: String)
        case missingAttribute(path: String, attribute: String)
        case invalidValue(path: String, expected: String)
        case tooLarge(limit: Int)
        case tooDeep(limit: Int)
        case tooManyElements(limit: Int)
    }

    private var code: Code
    /// The file that threw the error.
    public var file: String
    /// The line that threw the error.
    public var line: UInt

    private init(_ code: Code, file: String, line: UInt) {
        self.code = code
        self.file = file
        self.line = line
    }

    /// The document ends before its root element is closed.
    public static func truncated(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.truncated, file: file, line: line)
    }

    /// The bytes are not well-formed XML (or not UTF-8).
    public static func malformed(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.malformed, file: file, line: line)
    }

    /// The document has a DOCTYPE or an entity declaration; both are refused before parsing.
    public static func forbiddenDeclaration(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.forbiddenDeclaration, file: file, line: line)
    }

    /// The document has a processing instruction (`<?target data?>`) other than its XML declaration; refused before
    /// parsing (FoundationXML's parser faults on one without data, and onshi messages carry none).
    public static func forbiddenProcessingInstruction(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.forbiddenProcessingInstruction, file: file, line: line)
    }

    /// The document is not plain UTF-8: a byte-order mark, a NUL byte, an invalid UTF-8 sequence, or an encoding
    /// declaration other than UTF-8. Refused before parsing, so that no other encoding can carry a declaration past
    /// the filter to the parser.
    public static func notUTF8(reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.notUTF8(reason: reason), file: file, line: line)
    }

    /// The root element is not the message that was expected.
    public static func wrongRoot(
        expected: String,
        found: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> Self {
        Self(.wrongRoot(expected: expected, found: found), file: file, line: line)
    }

    /// A required element is absent.
    public static func missingElement(path: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.missingElement(path: path), file: file, line: line)
    }

    /// An element that may occur once occurs more than once.
    public static func duplicateElement(path: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.duplicateElement(path: path), file: file, line: line)
    }

    /// An element that the format does not define at this place.
    public static func unexpectedElement(path: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.unexpectedElement(path: path), file: file, line: line)
    }

    /// A required attribute is absent.
    public static func missingAttribute(
        path: String,
        attribute: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> Self {
        Self(.missingAttribute(path: path, attribute: attribute), file: file, line: line)
    }

    /// An element's or attribute's text is not of the expected kind (`expected` names the kind, e.g. "date
    /// YYYYMMDD"; the value itself is never kept).
    public static func invalidValue(
        path: String,
        expected: String,
        file: String = #fileID,
        line: UInt = #line
    ) -> Self {
        Self(.invalidValue(path: path, expected: expected), file: file, line: line)
    }

    /// The document is larger than the byte limit.
    public static func tooLarge(limit: Int, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.tooLarge(limit: limit), file: file, line: line)
    }

    /// Elements nest deeper than the limit.
    public static func tooDeep(limit: Int, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.tooDeep(limit: limit), file: file, line: line)
    }

    /// The document has more elements than the limit.
    public static func tooManyElements(limit: Int, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.tooManyElements(limit: limit), file: file, line: line)
    }

    /// The element path the error is about, when it is about one.
    public var path: String? {
        switch self.code {
        case .missingElement(let p), .duplicateElement(let p), .unexpectedElement(let p): p
        case .missingAttribute(let p, _), .invalidValue(let p, _): p
        default: nil
        }
    }

    /// A short machine-readable kind: `truncated`, `malformed`, `forbidden-declaration`,
    /// `forbidden-processing-instruction`, `not-utf8`, `wrong-root`, `missing`, `duplicate`, `unexpected`, `missing-attribute`, `invalid-value`, `too-large`, `too-deep`,
    /// `too-many-elements`.
    public var kind: String {
        switch self.code {
        case .truncated: "truncated"
        case .malformed: "malformed"
        case .forbiddenDeclaration: "forbidden-declaration"
        case .forbiddenProcessingInstruction: "forbidden-processing-instruction"
        case .notUTF8: "not-utf8"
        case .wrongRoot: "wrong-root"
        case .missingElement: "missing"
        case .duplicateElement: "duplicate"
        case .unexpectedElement: "unexpected"
        case .missingAttribute: "missing-attribute"
        case .invalidValue: "invalid-value"
        case .tooLarge: "too-large"
        case .tooDeep: "too-deep"
        case .tooManyElements: "too-many-elements"
        }
    }

    /// Two errors are the same kind of failure at the same place, wherever they were thrown.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the code only.
    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }

    /// Names the failure and its path; never a value.
    public var description: String {
        let what: String
        switch self.code {
        case .truncated: what = "truncated XML: the document ends before its root element closes"
        case .malformed: what = "malformed XML"
        case .forbiddenDeclaration: what = "DOCTYPE and entity declarations are not accepted"
        case .forbiddenProcessingInstruction: what = "processing instructions are not accepted"
        case .notUTF8(let reason): what = "only UTF-8 documents are accepted: \(reason)"
        case .wrongRoot(let expected, let found): what = "wrong root element \(found), expected \(expected)"
        case .missingElement(let path): what = "\(path) missing"
        case .duplicateElement(let path): what = "\(path) occurs more than once"
        case .unexpectedElement(let path): what = "\(path) is not part of the format"
        case .missingAttribute(let path, let attribute): what = "\(path) has no \(attribute) attribute"
        case .invalidValue(let path, let expected): what = "\(path) is not a valid \(expected)"
        case .tooLarge(let limit): what = "document larger than \(limit) bytes"
        case .tooDeep(let limit): what = "elements nested deeper than \(limit)"
        case .tooManyElements(let limit): what = "more than \(limit) elements"
        }
        return "OnshiXMLError: \(what) (\(self.file):\(self.line))"
    }
}
