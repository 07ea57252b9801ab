/// A request's field name as a refusal may repeat it. An unknown key is the client's text: it is named only when it
/// reads as a field name (an ASCII letter, then at most 63 letters, digits, `-` or `_`), never when it could be a
/// value put where a key belongs: a name in kanji or kana, a number, a date.
public enum FieldName {
    /// What a refusal names in place of a key it does not repeat.
    public static let unnamed = "(a field whose name is not repeated)"

    /// `key` when it reads as a field name, else ``unnamed``.
    public static func shown(_ key: String) -> String {
        isPlain(key) ? key : unnamed
    }

    /// Whether `key` reads as a field name.
    public static func isPlain(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard let first = bytes.first, bytes.count <= 64, isLetter(first) else { return false }
        return bytes.allSatisfy { isLetter($0) || (0x30...0x39).contains($0) || $0 == 0x2D || $0 == 0x5F }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
