import Foundation
import Hummingbird
import KyukyuDomain

/// Staff and ambulance request bodies: one JSON object, strictly checked (as the gateway's). An unknown key, a
/// wrong type or a missing field is a 4xx naming the field, never a silent default.
enum JSONBody {
    static let limit = 64 * 1024

    /// The body as one JSON object with only `allowed` keys.
    static func object(
        _ request: Request,
        context: ReceiverRequestContext,
        allowed: Set<String>
    ) async throws -> [String: Any] {
        guard let object = try await read(request, context: context, allowed: allowed, optional: false) else {
            throw ReceiverHTTPError.badRequest("the body must be one JSON object")
        }
        return object
    }

    /// An empty body, or one JSON object with only `allowed` keys.
    static func optionalObject(
        _ request: Request,
        context: ReceiverRequestContext,
        allowed: Set<String>
    ) async throws -> [String: Any]? {
        try await read(request, context: context, allowed: allowed, optional: true)
    }

    private static func read(
        _ request: Request,
        context: ReceiverRequestContext,
        allowed: Set<String>,
        optional: Bool
    ) async throws -> [String: Any]? {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw ReceiverHTTPError(
                .contentTooLarge,
                "too-large",
                issueType: "too-long",
                detail: "the body is larger than 64 KiB"
            )
        }
        if buffer.readableBytes == 0 && optional { return nil }
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/json") else {
            throw ReceiverHTTPError(
                .unsupportedMediaType,
                "unsupported-media-type",
                issueType: "not-supported",
                detail: "send the body as application/json"
            )
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
        } catch {
            throw ReceiverHTTPError.badRequest("the body is not valid JSON")
        }
        guard let object = parsed as? [String: Any] else {
            throw ReceiverHTTPError.badRequest("the body must be one JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ReceiverHTTPError.validation(FieldName.shown(unknown), "is not a field of this request")
        }
        return object
    }

    /// A required string of `minLength` to `maxLength` characters, without control characters.
    static func string(_ object: [String: Any], _ key: String, minLength: Int = 0, maxLength: Int = 200) throws
        -> String
    {
        guard let value = object[key] else { throw ReceiverHTTPError.validation(key, "is required") }
        return try checked(value, key, minLength: minLength, maxLength: maxLength)
    }

    /// An optional string: absent is nil; null is refused.
    static func optionalString(_ object: [String: Any], _ key: String, maxLength: Int) throws -> String? {
        guard let value = object[key] else { return nil }
        return try checked(value, key, minLength: 0, maxLength: maxLength)
    }

    /// A required string that must be one of `values`.
    static func oneOf(_ object: [String: Any], _ key: String, _ values: [String]) throws -> String {
        let text = try string(object, key, maxLength: 40)
        guard values.contains(text) else {
            throw ReceiverHTTPError.validation(key, "must be one of " + values.joined(separator: ", "))
        }
        return text
    }

    private static func checked(_ value: Any, _ key: String, minLength: Int, maxLength: Int) throws -> String {
        guard let text = value as? String else { throw ReceiverHTTPError.validation(key, "must be a string") }
        let length = text.unicodeScalars.count
        guard length <= maxLength else {
            throw ReceiverHTTPError.validation(key, "is longer than \(maxLength) characters")
        }
        guard length >= minLength else { throw ReceiverHTTPError.validation(key, "is too short") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ReceiverHTTPError.validation(key, "contains control characters")
        }
        return text
    }
}
