import Foundation
import Hummingbird

/// Request bodies: JSON objects, strictly checked. An unknown key, a wrong type or a missing field is a 4xx
/// problem naming the field, never a silent default.
enum RequestBody {
    /// Reads the body as one JSON object with only `allowed` keys.
    static func object(
        _ request: Request,
        context: GatewayRequestContext,
        allowed: Set<String>
    ) async throws -> [String: JSONValue] {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/json") else {
            throw Problem(
                .unsupportedMediaType,
                "unsupported-media-type",
                "Unsupported media type",
                detail: "send the body as application/json"
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
        let data = Data(buffer.readableBytesView)
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
            throw Problem.validation(unknown, "is not a field of this request")
        }
        return object
    }

    /// A required string field of at most `maxLength` characters.
    static func string(_ object: [String: JSONValue], _ key: String, maxLength: Int = 200) throws -> String {
        guard let value = object[key] else { throw Problem.validation(key, "is required") }
        return try checked(value, key, maxLength: maxLength)
    }

    /// An optional string field.
    static func optionalString(_ object: [String: JSONValue], _ key: String, maxLength: Int = 400) throws -> String? {
        guard let value = object[key], value != .null else { return nil }
        return try checked(value, key, maxLength: maxLength)
    }

    /// An optional boolean field.
    static func bool(_ object: [String: JSONValue], _ key: String) throws -> Bool? {
        guard let value = object[key], value != .null else { return nil }
        guard case .bool(let flag) = value else { throw Problem.validation(key, "must be true or false") }
        return flag
    }

    private static func checked(_ value: JSONValue, _ key: String, maxLength: Int) throws -> String {
        guard case .string(let text) = value else { throw Problem.validation(key, "must be a string") }
        guard text.count <= maxLength else { throw Problem.validation(key, "is longer than \(maxLength) characters") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Problem.validation(key, "contains control characters")
        }
        return text
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
