import Foundation
import KyukyuDomain

/// The request bodies' decoding without a request, for the fuzzing harnesses (Tests/fuzz, docs/fuzzing.md): each
/// route's body goes through the same functions the route calls (``RequestBody``, `lookupFields`,
/// `ObservationPatch`, `VitalsInput`), after the media type and the size, which need the request, are checked.
/// Not API: behind `@_spi(Fuzzing)`.
@_spi(Fuzzing) public enum RequestBodyDecoding {
    /// A route that takes a JSON body.
    public enum Route: String, CaseIterable, Sendable {
        /// `POST /api/v1/session`: crew ID, password and one-time code.
        case signIn
        /// `POST /api/v1/session/unlock`: the crew PIN.
        case unlock
        /// `POST /api/v1/incidents` and `…/close`: an empty object.
        case empty
        /// `POST /api/v1/dispatch/incidents`: the dispatch's facts.
        case dispatch
        /// `POST /api/v1/incidents/{id}/consent`: the consent basis.
        case consent
        /// `POST /api/v1/incidents/{id}/pin`: the card's PIN.
        case pin
        /// `POST /api/v1/incidents/{id}/lookup`: the card-less lookup's fields.
        case lookup
        /// `POST /api/v1/incidents/{id}/handoff`: the receiving hospital.
        case handoff
        /// `PATCH /api/v1/incidents/{id}/observations`: a merge patch of the observations.
        case observations
        /// `POST /api/v1/incidents/{id}/vitals`: one set of vital signs.
        case vitals
        /// `POST /api/v1/incidents/{id}/treatments`: a treatment and its time.
        case treatments
        /// `POST /api/v1/incidents/{id}/placements`: the hospitals asked at once (``hospital`` is the one known).
        case placements
    }

    /// A body a route accepted.
    public struct Accepted: Equatable {
        /// The body's JSON object again, keys sorted: decoding it must give the same object.
        public var canonicalJSON: Data
        fileprivate var object: [String: JSONValue]
    }

    /// The receiving hospital the ``Route/handoff``, ``Route/observations`` and ``Route/placements`` routes know (a
    /// fictitious one).
    public static let hospital = HospitalCode(rawValue: "9999999999")!

    /// Decodes `body` as `route` does at `now`; throws the route's ``Problem`` when it refuses the body.
    public static func decode(_ body: Data, route: Route, now: Date) throws -> Accepted {
        switch route {
        case .signIn:
            let object = try RequestBody.object(body, allowed: ["crewId", "password", "totp"])
            let crewID = try RequestBody.string(object, "crewId", minLength: 1, maxLength: 64)
            guard GatewayAPI.isCrewID(crewID) else { throw Problem.validation("crewId", "is not a crew ID") }
            _ = try RequestBody.string(object, "password", minLength: 1, maxLength: 256)
            _ = try RequestBody.digits(object, "totp", lengths: [6], words: "the 6 digits of the one-time code")
            return try accepted(object)
        case .unlock:
            let object = try RequestBody.object(body, allowed: ["pin"])
            _ = try RequestBody.digits(object, "pin", lengths: [4, 5, 6], words: "the crew PIN, 4 to 6 digits")
            return try accepted(object)
        case .empty:
            return try accepted(try RequestBody.object(body, allowed: []))
        case .dispatch:
            let object = try RequestBody.object(body, allowed: ["receivedAt", "location", "note"])
            _ = try RequestBody.timestamp(object, "receivedAt")
            _ = try RequestBody.optionalString(object, "location", minLength: 1, maxLength: 500)
            _ = try RequestBody.optionalString(object, "note", maxLength: 2000)
            return try accepted(object)
        case .consent:
            let object = try RequestBody.object(body, allowed: ["basis"])
            let text = try RequestBody.oneOf(object, "basis", ConsentBasis.allCases.map(\.rawValue))
            guard ConsentBasis(rawValue: text) != nil else { throw Problem.validation("basis", "is unknown") }
            return try accepted(object)
        case .pin:
            let object = try RequestBody.object(body, allowed: ["pin", "confirmLastTry"])
            _ = try RequestBody.digits(object, "pin", lengths: [4], words: "the card's PIN, 4 digits")
            _ = try RequestBody.bool(object, "confirmLastTry")
            return try accepted(object)
        case .lookup:
            let object = try RequestBody.object(
                body,
                allowed: [
                    "kind", "name", "nameKana", "birthDate", "sex", "address", "insurerNumber", "insuredSymbol",
                    "insuredNumber",
                ]
            )
            _ = try GatewayAPI.lookupFields(object)
            return try accepted(object)
        case .handoff:
            let object = try RequestBody.object(body, allowed: ["hospital"])
            guard case .string(let text)? = object["hospital"], HospitalCode(rawValue: text) != nil else {
                throw Problem.validation("hospital", "must be a 10-digit medical-institution code")
            }
            return try accepted(object)
        case .observations:
            let object = try RequestBody.object(body, allowed: ObservationPatch.fields)
            let patch = try ObservationPatch(object, hospitals: [hospital], now: now)
            var observations = CrewObservations()
            patch.apply(to: &observations)
            return try accepted(object)
        case .vitals:
            let object = try RequestBody.object(body, allowed: VitalsInput.fields)
            _ = try VitalsInput.vitalSigns(object, now: now)
            return try accepted(object)
        case .treatments:
            let object = try RequestBody.object(body, allowed: ["kind", "at"])
            let kind = try RequestBody.oneOf(object, "kind", TreatmentGiven.Kind.allCases.map(\.rawValue))
            guard TreatmentGiven.Kind(rawValue: kind) != nil else { throw Problem.validation("kind", "is unknown") }
            _ = try ObservationPatch.time(object, "at", now: now, words: "the treatment's time")
            return try accepted(object)
        case .placements:
            let object = try RequestBody.object(body, allowed: ["hospitals"])
            _ = try GatewayAPI.placementHospitals(object, known: [hospital])
            return try accepted(object)
        }
    }

    private static func accepted(_ object: [String: JSONValue]) throws -> Accepted {
        let data = try JSONSerialization.data(
            withJSONObject: foundation(.object(object)),
            options: [.sortedKeys, .fragmentsAllowed]
        )
        return Accepted(canonicalJSON: data, object: object)
    }

    private static func foundation(_ value: JSONValue) -> Any {
        switch value {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case .number(let number): return number
        case .string(let text): return text
        case .array(let items): return items.map(foundation)
        case .object(let members): return members.mapValues(foundation)
        }
    }
}
