import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Limits applied while decoding, before any typed decoding happens.
public struct OnshiXMLLimits: Sendable, Hashable {
    /// The largest document accepted, in bytes.
    public var maxBytes: Int
    /// The deepest element nesting accepted (the root is depth 1).
    public var maxDepth: Int
    /// The most elements accepted in one document.
    public var maxElements: Int

    /// Makes limits.
    public init(maxBytes: Int, maxDepth: Int, maxElements: Int) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxElements = maxElements
    }

    /// 16 MiB, depth 16, 250,000 elements: about 6 times the largest synthetic answer (holder 1's five years of
    /// dispensings: 2.1 MB, 43,242 elements). Each element costs a tree node of a hundred-odd bytes while the
    /// answer is decoded, so the element limit, not the byte limit, bounds the tree.
    public static let `default` = OnshiXMLLimits(maxBytes: 16 << 20, maxDepth: 16, maxElements: 250_000)
}

/// One parsed element; a class so that building the tree does not copy arrays of children.
final class XMLNode {
    let name: String
    let attributes: [String: String]
    var children: [XMLNode] = []
    var text: String = ""

    init(name: String, attributes: [String: String]) {
        self.name = name
        self.attributes = attributes
    }
}

/// Turns bytes into an ``XMLNode`` tree with FoundationXML's `XMLParser`, applying ``OnshiXMLLimits``.
enum XMLTreeParser {
    static func parse(_ bytes: [UInt8], limits: OnshiXMLLimits) throws(OnshiXMLError) -> XMLNode {
        guard bytes.count <= limits.maxBytes else { throw .tooLarge(limit: limits.maxBytes) }
        try requireUTF8(bytes)
        if containsDeclaration(bytes) { throw .forbiddenDeclaration() }
        if containsProcessingInstruction(bytes) { throw .forbiddenProcessingInstruction() }
        let delegate = TreeBuilder(limits: limits)
        // The parser reads the caller's bytes in place: no second copy of a body of several megabytes.
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return false }
            let data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: raw.count, deallocator: .none)
            let parser = XMLParser(data: data)
            parser.shouldProcessNamespaces = false
            parser.shouldReportNamespacePrefixes = false
            parser.shouldResolveExternalEntities = false
            parser.delegate = delegate
            return parser.parse()
        }
        if let error = delegate.limitError { throw error }
        guard ok, let root = delegate.root, delegate.stack.isEmpty else {
            // libxml2's error codes and positions for a cut-off document vary with where the cut falls (inside
            // a tag, a multi-byte character, text), so the failure is classified with a small tag scan instead.
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { throw .truncated() }
            if looksTruncated(bytes) { throw .truncated() }
            throw .malformed()
        }
        return root
    }

    /// Whether `bytes` reads as the beginning of a well-formed document: every end tag matches its start tag, and
    /// the input ends before the root element closes (possibly inside a tag, comment, or CDATA section).
    static func looksTruncated(_ b: [UInt8]) -> Bool {
        do {
            let n = b.count
            var stack: [ArraySlice<UInt8>] = []
            var rootClosed = false
            var i = 0

            func find(_ pattern: [UInt8], from start: Int) -> Int? {
                guard pattern.count <= n else { return nil }
                var j = start
                while j + pattern.count <= n {
                    var k = 0
                    while k < pattern.count, b[j + k] == pattern[k] { k += 1 }
                    if k == pattern.count { return j }
                    j += 1
                }
                return nil
            }
            func hasPrefix(_ pattern: [UInt8], at start: Int) -> Bool {
                guard start + pattern.count <= n else {
                    // A cut inside the pattern itself: the rest of the input must still match it.
                    return (start..<n).allSatisfy { b[$0] == pattern[$0 - start] }
                }
                return (0..<pattern.count).allSatisfy { b[start + $0] == pattern[$0] }
            }
            func isNameEnd(_ c: UInt8) -> Bool {
                c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 || c == 0x3E || c == 0x2F
            }

            while i < n {
                guard b[i] == 0x3C else {
                    i += 1
                    continue
                }
                if rootClosed { return false }
                if i + 1 >= n { return true }
                if hasPrefix(Array("<!--".utf8), at: i) {
                    guard let end = find(Array("-->".utf8), from: i + 4) else { return true }
                    i = end + 3
                } else if hasPrefix(Array("<![CDATA[".utf8), at: i) {
                    guard let end = find(Array("]]>".utf8), from: i + 9) else { return true }
                    i = end + 3
                } else if b[i + 1] == 0x3F {
                    guard let end = find(Array("?>".utf8), from: i + 2) else { return true }
                    i = end + 2
                } else if b[i + 1] == 0x2F {
                    var j = i + 2
                    while j < n, !isNameEnd(b[j]) { j += 1 }
                    let name = b[(i + 2)..<j]
                    while j < n, b[j] != 0x3E { j += 1 }
                    if j >= n {
                        // Cut inside an end tag: what was read must be a prefix of the open element's name.
                        guard let open = stack.last else { return false }
                        return name.count <= open.count && open.starts(with: name)
                    }
                    guard let open = stack.popLast(), open.elementsEqual(name) else { return false }
                    if stack.isEmpty { rootClosed = true }
                    i = j + 1
                } else {
                    var j = i + 1
                    while j < n, !isNameEnd(b[j]) { j += 1 }
                    let name = b[(i + 1)..<j]
                    var quote: UInt8 = 0
                    while j < n {
                        let c = b[j]
                        if quote != 0 {
                            if c == quote { quote = 0 }
                        } else if c == 0x22 || c == 0x27 {
                            quote = c
                        } else if c == 0x3E {
                            break
                        }
                        j += 1
                    }
                    if j >= n { return true }
                    if b[j - 1] == 0x2F {
                        if stack.isEmpty { rootClosed = true }
                    } else {
                        stack.append(name)
                    }
                    i = j + 1
                }
            }
            return !stack.isEmpty
        }
    }

    /// Refuses anything but plain UTF-8, before the declaration filter and the parser see the bytes.
    ///
    /// libxml2 detects UTF-16, UTF-32 and EBCDIC from a byte-order mark or the first bytes, and honours an
    /// `encoding` declaration; in any of those a `<!DOCTYPE` is not the ASCII bytes the filter looks for. So the
    /// document must be valid UTF-8 (which EBCDIC's `<?xm` is not) with no BOM and no NUL, and declare no encoding
    /// but UTF-8.
    static func requireUTF8(_ bytes: [UInt8]) throws(OnshiXMLError) {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) || bytes.starts(with: [0xFE, 0xFF])
            || bytes.starts(with: [0xFF, 0xFE])
        {
            throw .notUTF8(reason: "byte-order mark")
        }
        if bytes.contains(0) { throw .notUTF8(reason: "NUL byte") }
        // A multi-byte character cut off by the end of the input is a truncation, which the parse reports as such.
        var checkedCount = bytes.count
        if let lead = bytes.suffix(3).lastIndex(where: { $0 >= 0xC0 }) {
            let length = bytes[lead] >= 0xF0 ? 4 : bytes[lead] >= 0xE0 ? 3 : 2
            if bytes.count - lead < length { checkedCount = lead }
        }
        let valid = bytes.withUnsafeBufferPointer { whole in
            let buffer = UnsafeBufferPointer(rebasing: whole.prefix(checkedCount))
            var iterator = buffer.makeIterator()
            var decoder = UTF8()
            while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: return true
                case .error: return false
                }
            }
        }
        guard valid else { throw .notUTF8(reason: "invalid UTF-8 sequence") }
        guard let first = bytes.firstIndex(where: { !isXMLSpace($0) }) else { return }
        guard bytes[first...].starts(with: Array("<?xml".utf8)) else { return }
        let declarationEnd = bytes[first...].firstRange(of: Array("?>".utf8))?.lowerBound ?? bytes.endIndex
        let declaration = String(decoding: bytes[first..<declarationEnd], as: UTF8.self)
        guard let encodingRange = declaration.range(of: "encoding") else { return }
        let rest = declaration[encodingRange.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\t" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else {
            throw .notUTF8(reason: "unreadable encoding declaration")
        }
        let name = rest.dropFirst().prefix { $0 != quote }
        guard ["utf-8", "utf8"].contains(name.lowercased()) else {
            throw .notUTF8(reason: "declared encoding is not UTF-8")
        }
    }

    static func isXMLSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    /// `<?` anywhere but in the XML declaration at the start (`<?xml` and a space, after optional white space).
    ///
    /// FoundationXML's `XMLParser` passes libxml2's data of a processing instruction to `strlen`, and libxml2 gives
    /// NULL for one without data (`<?x?>`): the process faults (found by fuzz-onshi-xml, docs/fuzzing.md). Onshi
    /// messages carry no processing instruction, and their text escapes `<`, so `<?` is refused wherever it is.
    static func containsProcessingInstruction(_ bytes: [UInt8]) -> Bool {
        var allowed: Int?
        if let first = bytes.firstIndex(where: { !isXMLSpace($0) }), bytes[first...].starts(with: Array("<?xml".utf8)),
            first + 5 < bytes.count, isXMLSpace(bytes[first + 5])
        {
            allowed = first
        }
        return bytes.withUnsafeBufferPointer { buffer in
            guard buffer.count >= 2 else { return false }
            for i in 0..<(buffer.count - 1) where buffer[i] == 0x3C && buffer[i + 1] == 0x3F && i != allowed {
                return true
            }
            return false
        }
    }

    /// `<!` followed by a letter (DOCTYPE, ENTITY, ELEMENT, ATTLIST, NOTATION) anywhere in the bytes.
    static func containsDeclaration(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            guard buffer.count >= 3 else { return false }
            var i = 0
            let end = buffer.count - 2
            while i < end {
                if buffer[i] == 0x3C, buffer[i + 1] == 0x21 {
                    let c = buffer[i + 2]
                    if (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) { return true }
                }
                i += 1
            }
            return false
        }
    }
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    let limits: OnshiXMLLimits
    var root: XMLNode?
    var stack: [XMLNode] = []
    var count = 0
    var limitError: OnshiXMLError?

    init(limits: OnshiXMLLimits) {
        self.limits = limits
    }

    func parser(
        _ parser: XMLParser,
        didStartElement elementName: String,
        namespaceURI: String?,
        qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        self.count += 1
        if self.count > self.limits.maxElements {
            self.limitError = .tooManyElements(limit: self.limits.maxElements)
            parser.abortParsing()
            return
        }
        if self.stack.count + 1 > self.limits.maxDepth {
            self.limitError = .tooDeep(limit: self.limits.maxDepth)
            parser.abortParsing()
            return
        }
        let node = XMLNode(name: elementName, attributes: attributeDict)
        if let parent = self.stack.last {
            parent.children.append(node)
        } else if self.root == nil {
            self.root = node
        }
        self.stack.append(node)
    }

    func parser(
        _ parser: XMLParser,
        didEndElement elementName: String,
        namespaceURI: String?,
        qualifiedName qName: String?
    ) {
        _ = self.stack.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        self.stack.last?.text += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        self.stack.last?.text += String(decoding: CDATABlock, as: UTF8.self)
    }
}

/// A text value that can sit in an element or attribute of an onshi message.
public protocol OnshiXMLValue {
    /// What the value is, for errors ("integer", "date YYYYMMDD"…).
    static var xmlKind: String { get }
    /// The text written for the value.
    var xmlText: String { get }
    /// Parses the text; `nil` when it is not a valid value.
    init?(xmlText: String)
}

/// An element of a parsed message, with the path that leads to it, for typed decoding.
///
/// Accessors throw ``OnshiXMLError`` naming the path (`MessageBody/ResultList/Medication[3]/YJCode`).
public struct OnshiXMLElement {
    let node: XMLNode
    /// The path from the root's children, e.g. `MessageBody/ProcessingResult/Code`; empty for the root.
    public let path: String

    init(node: XMLNode, path: String) {
        self.node = node
        self.path = path
    }

    /// The element's name.
    public var name: String { self.node.name }

    /// The element's character data, as parsed.
    public var text: String { self.node.text }

    private func childPath(_ name: String) -> String {
        self.path.isEmpty ? name : self.path + "/" + name
    }

    /// An attribute's value, or `nil`.
    public func attribute(_ name: String) -> String? { self.node.attributes[name] }

    /// A required attribute, parsed.
    public func attribute<T: OnshiXMLValue>(_ type: T.Type, _ name: String) throws(OnshiXMLError) -> T {
        let where_ = self.path.isEmpty ? self.name : self.path
        guard let raw = self.node.attributes[name] else {
            throw .missingAttribute(path: where_, attribute: name)
        }
        guard let value = T(xmlText: raw) else {
            throw .invalidValue(path: where_ + "@" + name, expected: T.xmlKind)
        }
        return value
    }

    /// The only child called `name`, or `nil`; throws when there are several.
    public func optionalChild(_ name: String) throws(OnshiXMLError) -> OnshiXMLElement? {
        var found: XMLNode?
        for child in self.node.children where child.name == name {
            if found != nil { throw .duplicateElement(path: self.childPath(name)) }
            found = child
        }
        return found.map { OnshiXMLElement(node: $0, path: self.childPath(name)) }
    }

    /// The only child called `name`; throws when it is missing or repeated.
    public func child(_ name: String) throws(OnshiXMLError) -> OnshiXMLElement {
        guard let child = try self.optionalChild(name) else { throw .missingElement(path: self.childPath(name)) }
        return child
    }

    /// Every child called `name`, in order, with 1-based indices in their paths.
    public func children(_ name: String) -> [OnshiXMLElement] {
        var out: [OnshiXMLElement] = []
        var index = 0
        for child in self.node.children where child.name == name {
            index += 1
            out.append(OnshiXMLElement(node: child, path: self.childPath(name) + "[\(index)]"))
        }
        return out
    }

    /// Throws ``OnshiXMLError/unexpectedElement(path:file:line:)`` for a child whose name is not listed.
    public func allowOnly(_ names: [String]) throws(OnshiXMLError) {
        for child in self.node.children where !names.contains(child.name) {
            throw .unexpectedElement(path: self.childPath(child.name))
        }
    }

    /// This element's own text, parsed; throws when it has child elements or its text is not a `T`.
    public func value<T: OnshiXMLValue>(_ type: T.Type) throws(OnshiXMLError) -> T {
        if let first = self.node.children.first {
            throw .unexpectedElement(path: self.childPath(first.name))
        }
        guard let value = T(xmlText: self.node.text) else {
            throw .invalidValue(path: self.path, expected: T.xmlKind)
        }
        return value
    }

    /// The required leaf child `name`, parsed.
    public func value<T: OnshiXMLValue>(_ type: T.Type, _ name: String) throws(OnshiXMLError) -> T {
        try self.child(name).value(T.self)
    }

    /// The optional leaf child `name`, parsed; `nil` when absent.
    public func optionalValue<T: OnshiXMLValue>(_ type: T.Type, _ name: String) throws(OnshiXMLError) -> T? {
        guard let child = try self.optionalChild(name) else { return nil }
        return try child.value(T.self)
    }

    /// The required leaf child `name` as an integer in `range`.
    public func int(_ name: String, in range: ClosedRange<Int>) throws(OnshiXMLError) -> Int {
        let child = try self.child(name)
        let value = try child.value(Int.self)
        guard range.contains(value) else {
            throw .invalidValue(path: child.path, expected: "integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// The required leaf child `name`, base64-decoded.
    public func base64(_ name: String) throws(OnshiXMLError) -> [UInt8] {
        let child = try self.child(name)
        return try child.base64Value()
    }

    /// The optional leaf child `name`, base64-decoded.
    public func optionalBase64(_ name: String) throws(OnshiXMLError) -> [UInt8]? {
        guard let child = try self.optionalChild(name) else { return nil }
        return try child.base64Value()
    }

    private func base64Value() throws(OnshiXMLError) -> [UInt8] {
        if let first = self.node.children.first {
            throw .unexpectedElement(path: self.childPath(first.name))
        }
        guard let data = Data(base64Encoded: self.node.text) else {
            throw .invalidValue(path: self.path, expected: "base64")
        }
        return Array(data)
    }
}

/// Writes an onshi message: UTF-8, two-space indentation, escaped text, one element per line.
public struct OnshiXMLWriter {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]
    private var depth = 0

    /// Starts a document with the XML declaration.
    public init(capacity: Int = 4096) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
        self.bytes.append(contentsOf: #"<?xml version="1.0" encoding="UTF-8"?>"#.utf8)
    }

    private mutating func newline() {
        self.bytes.append(0x0A)
        for _ in 0..<self.depth { self.bytes.append(0x20); self.bytes.append(0x20) }
    }

    /// Opens a container element.
    public mutating func open(_ name: String, attributes: KeyValuePairs<String, String> = [:]) {
        self.newline()
        self.startTag(name, attributes: attributes)
        self.depth += 1
    }

    /// Closes the container element opened last.
    public mutating func close(_ name: String) {
        self.depth -= 1
        self.newline()
        self.bytes.append(contentsOf: "</".utf8)
        self.bytes.append(contentsOf: name.utf8)
        self.bytes.append(0x3E)
    }

    /// Writes `<name>value</name>`.
    public mutating func leaf<T: OnshiXMLValue>(
        _ name: String,
        _ value: T,
        attributes: KeyValuePairs<String, String> = [:]
    ) {
        self.newline()
        self.startTag(name, attributes: attributes)
        Self.escape(value.xmlText, into: &self.bytes, attribute: false)
        self.bytes.append(contentsOf: "</".utf8)
        self.bytes.append(contentsOf: name.utf8)
        self.bytes.append(0x3E)
    }

    /// Writes `<name>value</name>` when `value` is not `nil`, nothing otherwise.
    public mutating func leaf<T: OnshiXMLValue>(_ name: String, _ value: T?) {
        if let value { self.leaf(name, value) }
    }

    /// Writes `<name>base64</name>`.
    public mutating func leaf(_ name: String, base64 value: [UInt8]) {
        self.leaf(name, Data(value).base64EncodedString())
    }

    /// Writes `<name>base64</name>` when `value` is not `nil`.
    public mutating func leaf(_ name: String, base64 value: [UInt8]?) {
        if let value { self.leaf(name, base64: value) }
    }

    private mutating func startTag(_ name: String, attributes: KeyValuePairs<String, String>) {
        self.bytes.append(0x3C)
        self.bytes.append(contentsOf: name.utf8)
        for (key, value) in attributes {
            self.bytes.append(0x20)
            self.bytes.append(contentsOf: key.utf8)
            self.bytes.append(contentsOf: "=\"".utf8)
            Self.escape(value, into: &self.bytes, attribute: true)
            self.bytes.append(0x22)
        }
        self.bytes.append(0x3E)
    }

    /// Escapes markup characters; control characters that XML 1.0 cannot carry become U+FFFD.
    static func escape(_ string: String, into out: inout [UInt8], attribute: Bool) {
        for byte in string.utf8 {
            switch byte {
            case 0x26: out.append(contentsOf: "&amp;".utf8)
            case 0x3C: out.append(contentsOf: "&lt;".utf8)
            case 0x3E: out.append(contentsOf: "&gt;".utf8)
            case 0x22 where attribute: out.append(contentsOf: "&quot;".utf8)
            case 0x0D: out.append(contentsOf: "&#13;".utf8)
            case 0x09 where attribute: out.append(contentsOf: "&#9;".utf8)
            case 0x0A where attribute: out.append(contentsOf: "&#10;".utf8)
            case 0x09, 0x0A: out.append(byte)
            case 0x00..<0x20: out.append(contentsOf: [0xEF, 0xBF, 0xBD])
            default: out.append(byte)
            }
        }
    }
}
