// The receiver's intake of a pre-arrival document (KyukyuReceiver: FHIRHandoffValidator, HandoffValidation;
// KyukyuFHIR: its strict JSON parser and HandoffDocumentValidator) on hostile bodies.
//
// Invariants: a refusal is a typed `HandoffValidationError` with at least one issue, never a trap; bytes that are
// not JSON are refused as `invalidJSON`; the FHIR JSON parser accepts only what Foundation's JSONSerialization
// accepts too, with the same strings, keys and shapes; a document the FHIR validator accepts is accepted by the
// structural validator with the same identity (document set, version, identifiers, destination, sender); the same
// bytes give the same answer twice; no issue's diagnostics quote a non-ASCII string value of the document.

import Foundation
import FuzzSupport
import KyukyuDomain
@_spi(Fuzzing) import KyukyuFHIR
import KyukyuReceiver

/// libFuzzer's entry point: checks one input (always returns 0; a broken invariant aborts).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = Data(fuzzBytes(start, count))
    let parsed = JSONValue.parse(data)
    let foundation = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    if let parsed {
        guard let foundation else {
            invariantBroken("KyukyuFHIR's JSON parser accepted a body JSONSerialization refuses")
        }
        same(parsed, foundation, "$")
    }
    let fhir = Result { () throws(HandoffValidationError) in try FHIRHandoffValidator().validate(data) }
    let twice = Result { () throws(HandoffValidationError) in try FHIRHandoffValidator().validate(data) }
    switch (fhir, twice) {
    case (.success(let a), .success(let b)): require(a == b, "the same document read twice differently")
    case (.failure(let a), .failure(let b)): require(a.issues == b.issues, "the same document refused differently")
    default: invariantBroken("the same document accepted once and refused once")
    }
    switch fhir {
    case .failure(let error):
        require(!error.issues.isEmpty, "a refusal without issues")
        if parsed == nil { require(error.isInvalidJSON, "a body that is not JSON refused as an invalid document") }
        if let parsed { noValueQuoted(parsed, in: error.issues) }
    case .success(let info):
        require(info.version >= 1, "a document version below 1")
        do {
            let structural = try StructuralHandoffValidator().validate(data)
            require(structural.documentSet == info.documentSet, "the validators disagree on the document set")
            require(structural.version == info.version, "the validators disagree on the version")
            require(structural.versionIdentifier == info.versionIdentifier, "the validators disagree on the identifier")
            require(structural.bundleID == info.bundleID, "the validators disagree on Bundle.id")
            require(structural.destination == info.destination, "the validators disagree on the destination")
            require(structural.senderDevice == info.senderDevice, "the validators disagree on the sender")
            require(structural.replaces == info.replaces, "the validators disagree on the version replaced")
        } catch {
            invariantBroken("the FHIR validator accepts a document the structural one refuses: \(error.issues)")
        }
    }
    return 0
}

/// `value` (KyukyuFHIR's reading) and `object` (Foundation's) are the same JSON.
func same(_ value: JSONValue, _ object: Any, _ path: String) {
    switch value {
    case .null: require(object is NSNull, "\(path): null read as something else")
    case .bool, .integer, .number: require(object is NSNumber || object is Bool, "\(path): scalar read differently")
    case .string(let text): require((object as? String) == text, "\(path): a string read differently")
    case .array(let items):
        guard let others = object as? [Any], others.count == items.count else {
            invariantBroken("\(path): an array read differently")
        }
        for (index, item) in items.enumerated() { same(item, others[index], "\(path)[\(index)]") }
    case .object(let members):
        guard let others = object as? [String: Any], others.count == members.members.count else {
            invariantBroken("\(path): an object read differently")
        }
        for (key, member) in members {
            guard let other = others[key] else { invariantBroken("\(path): a key read differently") }
            same(member, other, "\(path).\(key.count)")
        }
    }
}

/// No diagnostics quote a string value with non-ASCII text (the kind a name or an address is).
func noValueQuoted(_ value: JSONValue, in issues: [HandoffIssue]) {
    switch value {
    case .string(let text) where text.unicodeScalars.count >= 4 && !text.unicodeScalars.allSatisfy(\.isASCII):
        require(!issues.contains { $0.diagnostics.contains(text) }, "a refusal quotes a value of the document")
    case .array(let items): items.forEach { noValueQuoted($0, in: issues) }
    case .object(let members): members.forEach { noValueQuoted($0.value, in: issues) }
    default: break
    }
}
