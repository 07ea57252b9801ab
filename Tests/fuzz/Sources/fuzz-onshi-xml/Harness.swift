// The onshi XML decoder (KyukyuOnshi: XMLTree, Messages, Records) on hostile bytes.
//
// Invariants: decoding throws only `OnshiXMLError` (typed) and never traps; a message that decodes re-encodes to
// XML that decodes to the same message, and encoding that message again gives the same bytes.

import FuzzSupport
import KyukyuOnshi

/// Small limits, so that the fuzzer reaches every limit's refusal with short inputs.
let limits = OnshiXMLLimits(maxBytes: 64 << 10, maxDepth: 16, maxElements: 2_000)

/// libFuzzer's entry point: checks one input (always returns 0; a broken invariant aborts).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = fuzzBytes(start, count)
    switch OnshiXML.rootElementName(of: bytes) {
    case NonceRequest.rootElementName: check(NonceRequest.self, bytes)
    case NonceResponse.rootElementName: check(NonceResponse.self, bytes)
    case AuthenticationRequest.rootElementName: check(AuthenticationRequest.self, bytes)
    case LookupRequest.rootElementName: check(LookupRequest.self, bytes)
    case SessionResponse.rootElementName: check(SessionResponse.self, bytes)
    default: check(CategoryResponse.self, bytes)
    }
    return 0
}

func check<T: OnshiMessage>(_ type: T.Type, _ bytes: [UInt8]) {
    let message: T
    do {
        message = try OnshiXML.decode(T.self, from: bytes, limits: limits)
    } catch {
        // Typed: `error` is an OnshiXMLError (the compiler checks it); it must say something.
        require(!error.description.isEmpty, "an OnshiXMLError without a description")
        return
    }
    let encoded = OnshiXML.encode(message)
    let again: T
    do {
        again = try OnshiXML.decode(T.self, from: encoded, limits: .default)
    } catch {
        invariantBroken("\(T.self) decoded, but its own encoding does not decode: \(error)")
    }
    require(again == message, "\(T.self) changed through encode → decode")
    require(OnshiXML.encode(again) == encoded, "\(T.self)'s encoding is not stable")
}
