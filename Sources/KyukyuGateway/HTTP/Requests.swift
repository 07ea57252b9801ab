import Foundation
import Hummingbird
import KyukyuDomain

/// Request bodies: JSON objects, strictly checked. An unknown key, a wrong type or a missing field is a 4xx
/// problem naming the field, never a silent default.
enum RequestBody {
    /// Reads the body as one JSON object with only `allowed` keys; its media type must be one of `mediaTypes`.
    static func object(
        _ request: Request,
        context: GatewayRequestContext,
        allowed: Set<String>,
        mediaTypes: [String] = ["application/json"]
    ) async throws -> [String: JSONValue] {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        let essence = type.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard let essence, mediaTypes.contains(essence) else {
            throw Problem(
                .unsupportedMediaType,
                "unsupported-media-type",
                "Unsupported media type",
                detail: "send the body as \(mediaTypes.joined(separator: " or "))"
            )
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            throw Problem(
                .contentTooLarge,
                "too-large",
                "Too large",
                detail: "the body is larger than \(context.maxUploadSize) bytes"
            )
        }
        return try Self.object(Data(buffer.readableBytesView), allowed: allowed)
    }

    /// Decodes a collected body as one JSON object with only `allowed` keys (``object(_:context:allowed:mediaTypes:)``
    /// once the media type and size are checked).
    static func object(_ data: Data, allowed: Set<String>) throws -> [String: JSONValue] {
        let parsed: JSONValue
        do {
            parsed = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw Problem.badRequest("the body is not valid JSON")
        }
        guard case .object(let object) = parsed else {
            throw Problem.badRequest("the body must be one JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw Problem.validation(FieldName.shown(unknown), "is not a field of this request")
        }
        return object
    }

    /// A required string field of `minLength` to `maxLength` characters (Unicode scalars, as JSON Schema counts).
    static func string(
        _ object: [String: JSONValue],
        _ key: String,
        minLength: Int = 0,
        maxLength: Int = 200
    ) throws -> String {
        guard let value = object[key] else { throw Problem.validation(key, "is required") }
        return try checked(value, key, minLength: minLength, maxLength: maxLength)
    }

    /// An optional string field: absent is `nil`; `null` is refused like any other non-string.
    static func optionalString(
        _ object: [String: JSONValue],
        _ key: String,
        minLength: Int = 0,
        maxLength: Int = 400
    ) throws -> String? {
        guard let value = object[key] else { return nil }
        return try checked(value, key, minLength: minLength, maxLength: maxLength)
    }

    /// An optional boolean field: absent is `nil`; `null` is refused.
    static func bool(_ object: [String: JSONValue], _ key: String) throws -> Bool? {
        guard let value = object[key] else { return nil }
        guard case .bool(let flag) = value else { throw Problem.validation(key, "must be true or false") }
        return flag
    }

    /// A required field that must be one of `values`.
    static func oneOf(_ object: [String: JSONValue], _ key: String, _ values: [String]) throws -> String {
        let text = try string(object, key, maxLength: 40)
        guard values.contains(text) else {
            throw Problem.validation(
                key,
                "must be \(values.dropLast().joined(separator: ", ")) or \(values.last ?? "")"
            )
        }
        return text
    }

    /// A required string of ASCII digits whose length is one of `lengths` (a PIN, a code, an insurer number).
    static func digits(_ object: [String: JSONValue], _ key: String, lengths: Set<Int>, words: String) throws -> String
    {
        let text = try string(object, key, maxLength: 64)
        guard lengths.contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw Problem.validation(key, "must be \(words)")
        }
        return text
    }

    /// A whole number, if `value` is one (JSON Schema's `integer`: `80` and `80.0` alike).
    static func integer(_ value: JSONValue) -> Int? {
        guard case .number(let number) = value, number.isFinite, number == number.rounded(),
            abs(number) <= 1_000_000_000
        else { return nil }
        return Int(number)
    }

    /// A required date-time in RFC 3339 form (`2026-11-27T03:12:00Z`, `2026-11-27T12:12:00.5+09:00`).
    static func timestamp(_ object: [String: JSONValue], _ key: String) throws -> Date {
        let text = try string(object, key, maxLength: 40)
        guard let date = RFC3339.date(text) else {
            throw Problem.validation(key, "must be an RFC 3339 date-time such as 2026-11-27T03:12:00Z")
        }
        return date
    }

    private static func checked(_ value: JSONValue, _ key: String, minLength: Int, maxLength: Int) throws -> String {
        guard case .string(let text) = value else { throw Problem.validation(key, "must be a string") }
        let length = text.unicodeScalars.count
        guard length <= maxLength else { throw Problem.validation(key, "is longer than \(maxLength) characters") }
        guard length >= minLength else {
            throw Problem.validation(key, minLength == 1 ? "is empty" : "is shorter than \(minLength) characters")
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Problem.validation(key, "contains control characters")
        }
        return text
    }
}

/// RFC 3339 date-times (JSON Schema's `date-time`), with any fraction of a second and `Z` or a numeric offset.
enum RFC3339 {
    /// The instant `text` names, or `nil` when it is not an RFC 3339 date-time of a real calendar day.
    static func date(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard bytes.count >= 20, bytes[4] == 0x2D, bytes[7] == 0x2D, [0x54, 0x74].contains(bytes[10]),
            bytes[13] == 0x3A, bytes[16] == 0x3A,
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var nanoseconds = 0
        if bytes[index] == 0x2E {
            let start = index + 1
            index = start
            while index < bytes.count, bytes[index] >= 0x30 && bytes[index] <= 0x39 { index += 1 }
            guard index > start else { return nil }
            let fraction = bytes[start..<min(index, start + 9)].map { Int($0 - 0x30) }
            nanoseconds = (fraction + Array(repeating: 0, count: 9 - fraction.count)).reduce(0) { $0 * 10 + $1 }
        }
        guard index < bytes.count else { return nil }
        var offset = 0
        switch bytes[index] {
        case 0x5A, 0x7A:
            guard index + 1 == bytes.count else { return nil }
        case 0x2B, 0x2D:
            guard index + 6 == bytes.count, bytes[index + 3] == 0x3A,
                let hours = number(index + 1..<index + 3), let minutes = number(index + 4..<index + 6),
                hours < 24, minutes < 60
            else { return nil }
            offset = (hours * 60 + minutes) * 60 * (bytes[index] == 0x2D ? -1 : 1)
        default:
            return nil
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard year >= 1, let date = calendar.date(from: components),
            calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date) == components
        else { return nil }
        return date.addingTimeInterval(Double(nanoseconds) / 1e9 - Double(offset))
    }
}

/// Any JSON value, decoded strictly (a number is never a boolean).
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}
