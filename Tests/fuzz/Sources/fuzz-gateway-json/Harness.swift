// The gateway's request bodies (KyukyuGateway: RequestBody in HTTP/Requests.swift, and each route's fields:
// sign-in, unlock, dispatch, consent, PIN, lookup, handoff, observations, vitals, treatments, placements) on hostile
// JSON.
// The first byte picks the route; the rest is the body.
//
// Invariants: a refusal is a `Problem` with a 4xx status, never a trap nor another error; a body a route accepts
// re-encodes (keys sorted) to JSON that the route accepts as the same body, and re-encodes to the same bytes; no
// refusal quotes a non-ASCII string value of the body.

import Foundation
import FuzzSupport
import HTTPTypes
@_spi(Fuzzing) import KyukyuGateway

/// A fixed "now", so that the answer is a function of the input (2026-11-27T03:12:00Z).
let now = Date(timeIntervalSince1970: 1_795_749_120)
let routes = RequestBodyDecoding.Route.allCases

/// libFuzzer's entry point: checks one input (always returns 0; a broken invariant aborts).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var reader = FuzzReader(fuzzBytes(start, count))
    let route = routes[Int(reader.byte()) % routes.count]
    let body = Data(reader.rest())
    let accepted: RequestBodyDecoding.Accepted
    do {
        accepted = try RequestBodyDecoding.decode(body, route: route, now: now)
    } catch let problem as Problem {
        require((400..<500).contains(problem.status.code), "\(route): a refusal with status \(problem.status.code)")
        let texts = [problem.detail] + problem.invalidParams.map(\.reason)
        for value in nonASCIIStrings(body) {
            require(!texts.contains { $0.contains(value) }, "\(route): a refusal quotes a value of the body")
        }
        return 0
    } catch {
        invariantBroken("\(route): refused with \(type(of: error)), not a Problem")
    }
    do {
        let again = try RequestBodyDecoding.decode(accepted.canonicalJSON, route: route, now: now)
        require(again == accepted, "\(route): the body changed through its re-encoding")
    } catch {
        invariantBroken("\(route): accepted, but its re-encoding is refused: \(error)")
    }
    return 0
}

/// The body's string values (and keys) that hold non-ASCII text of at least 4 scalars.
func nonASCIIStrings(_ body: Data) -> [String] {
    guard let object = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else { return [] }
    var found: [String] = []
    func walk(_ value: Any) {
        if let text = value as? String {
            if text.unicodeScalars.count >= 4, !text.unicodeScalars.allSatisfy(\.isASCII) { found.append(text) }
        } else if let items = value as? [Any] {
            items.forEach(walk)
        } else if let members = value as? [String: Any] {
            members.values.forEach(walk)
        }
    }
    walk(object)
    return found
}
