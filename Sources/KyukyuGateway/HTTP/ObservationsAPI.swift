import Foundation
import Hummingbird
import KyukyuDomain
import KyukyuWorkflow

// The crew's observations on the way (docs/gateway-api.yaml, tag `observations`): complaint, trauma, onset,
// priority, ETA and hospital as a JSON merge patch; timed vital-sign sets and treatments appended one at a time,
// and removed by index when entered by mistake. Every value is checked by KyukyuDomain's `validate()` first, so
// that a refusal names the field and says what is allowed in the domain's words, never with the value.

extension GatewayAPI {
    /// The media types the observations' patch accepts.
    static let mergePatchTypes = ["application/merge-patch+json", "application/json"]

    /// Registers the hospitals' list and the observations' routes on the `api/v1` group.
    func registerObservations(on api: RouterGroup<GatewayRequestContext>) {
        api.get("hospitals") { request, _ in
            _ = try await session(request, touch: false)
            let publications = await acceptance.all()
            return try json(
                HospitalListView(hospitals: hospitals.map { HospitalListView.Hospital($0, publications[$0.code]) })
            )
        }
        api.patch("incidents/:id/observations") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(
                request,
                context: context,
                allowed: ObservationPatch.fields,
                mediaTypes: Self.mergePatchTypes
            )
            let patch = try ObservationPatch(body, hospitals: Set(hospitals.map(\.code)), now: now())
            guard patch.onsetIsComplete(await runner.snapshot().state.observations ?? CrewObservations()) else {
                throw Problem.validation("onset", "a new onset needs both its kind and its time")
            }
            return try await update(runner, session, field: "observations") { patch.apply(to: &$0) }
        }
        api.post("incidents/:id/vitals") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(request, context: context, allowed: VitalsInput.fields)
            let set = try VitalsInput.vitalSigns(body, now: now())
            return try await update(runner, session, field: "vitals") { observations in
                let at = observations.vitals.firstIndex { $0.takenAt > set.takenAt } ?? observations.vitals.endIndex
                observations.vitals.insert(set, at: at)
            }
        }
        api.delete("incidents/:id/vitals/:index") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let index = try await Self.index(
                context,
                in: runner,
                { $0.vitals.count },
                "no vital-sign set at this index"
            )
            return try await update(runner, session, field: "vitals") { observations in
                if index < observations.vitals.count { observations.vitals.remove(at: index) }
            }
        }
        api.post("incidents/:id/treatments") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(request, context: context, allowed: ["kind", "at"])
            let kindText = try RequestBody.oneOf(body, "kind", TreatmentGiven.Kind.allCases.map(\.rawValue))
            let at = try ObservationPatch.time(body, "at", now: now(), words: "the treatment's time") ?? now()
            let treatment = TreatmentGiven(TreatmentGiven.Kind(rawValue: kindText)!, at: at)
            return try await update(runner, session, field: "treatments") { observations in
                let position = observations.treatments.firstIndex { $0.at > at } ?? observations.treatments.endIndex
                observations.treatments.insert(treatment, at: position)
            }
        }
        api.delete("incidents/:id/treatments/:index") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let index = try await Self.index(context, in: runner, { $0.treatments.count }, "no treatment at this index")
            return try await update(runner, session, field: "treatments") { observations in
                if index < observations.treatments.count { observations.treatments.remove(at: index) }
            }
        }
    }

    /// Applies `change` to the incident's observations: checked first against the current ones (a refusal names
    /// `field`), then recorded by the runner (which checks again, persists, audits and publishes).
    func update(
        _ runner: IncidentRunner,
        _ session: CrewSessionInfo,
        field: String,
        _ change: @escaping @Sendable (inout CrewObservations) -> Void
    ) async throws -> Response {
        var candidate = await runner.snapshot().state.observations ?? CrewObservations()
        change(&candidate)
        do {
            try candidate.validate()
        } catch {
            let complaint = error == .empty("") && candidate.chiefComplaint == .other
            throw Problem.validation(complaint ? "complaintNote" : field, error.reason)
        }
        let crewID = try Self.crewID(session)
        let snapshot = try await workflow { () throws(WorkflowError) in
            try await runner.updateObservations(by: crewID, change)
        }
        return try json(view(snapshot, active: await desk.active == runner.id))
    }

    /// The `index` path parameter: a position in a list of the incident's observations (`count` of them).
    static func index(
        _ context: GatewayRequestContext,
        in runner: IncidentRunner,
        _ count: (CrewObservations) -> Int,
        _ missing: String
    ) async throws -> Int {
        guard let text = context.parameters.get("index"), text.utf8.count <= 4,
            text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let index = Int(text)
        else { throw Problem.notFound(missing) }
        let observations = await runner.snapshot().state.observations ?? CrewObservations()
        guard index < count(observations) else { throw Problem.notFound(missing) }
        return index
    }
}

/// A JSON merge patch (RFC 7396) of the observations' single-valued fields: a field absent is left as it is, `null`
/// removes it, a value replaces it; `trauma` and `onset` merge member by member. Every value is checked on its own
/// with the domain's rules, so that a refusal names the field.
struct ObservationPatch: Sendable {
    static let fields: Set<String> = [
        "chiefComplaint", "complaintNote", "trauma", "onset", "priority", "etaMinutes", "hospital",
    ]

    /// A field's new value: `.remove` for `null`.
    enum Change<Value: Sendable>: Sendable {
        case keep
        case remove
        case set(Value)
    }

    var chiefComplaint: Change<ChiefComplaint> = .keep
    var complaintNote: Change<String> = .keep
    var traumaRemoved = false
    var mechanism: Change<TraumaDetails.Mechanism> = .keep
    var injuries: Change<[TraumaDetails.Region]> = .keep
    var onsetRemoved = false
    var onsetKind: OnsetTime.Kind?
    var onsetAt: Date?
    var priority: Change<TriagePriority> = .keep
    var eta: Change<Int> = .keep
    var hospital: Change<HospitalCode> = .keep
    /// When the patch was received: the ETA's time.
    var now: Date

    init(_ body: [String: JSONValue], hospitals: Set<HospitalCode>, now: Date) throws {
        self.now = now
        chiefComplaint = try Self.change(body, "chiefComplaint") { value in
            try Self.enumeration(value, "chiefComplaint", ChiefComplaint.self)
        }
        complaintNote = try Self.change(body, "complaintNote") { _ in
            let note = try RequestBody.string(body, "complaintNote", maxLength: CrewObservations.maximumNoteLength)
            var probe = CrewObservations()
            probe.complaintNote = note
            try Self.check(probe, "complaintNote")
            return note
        }
        if case .set(let note) = complaintNote, note.isEmpty { complaintNote = .remove }
        switch body["trauma"] {
        case nil: break
        case .null?: traumaRemoved = true
        case .object(let trauma)?:
            if let unknown = trauma.keys.sorted().first(where: { !["mechanism", "injuries"].contains($0) }) {
                throw Problem.validation("trauma.\(FieldName.shown(unknown))", "is not a field of the trauma details")
            }
            mechanism = try Self.change(trauma, "mechanism") { value in
                try Self.enumeration(value, "trauma.mechanism", TraumaDetails.Mechanism.self)
            }
            injuries = try Self.change(trauma, "injuries") { value in
                guard case .array(let items) = value, items.count <= TraumaDetails.Region.allCases.count else {
                    throw Problem.validation(
                        "trauma.injuries",
                        "must be a list of at most \(TraumaDetails.Region.allCases.count) regions"
                    )
                }
                let regions = try items.map { try Self.enumeration($0, "trauma.injuries", TraumaDetails.Region.self) }
                guard Set(regions).count == regions.count else {
                    throw Problem.validation("trauma.injuries", "names a region twice")
                }
                return regions
            }
        default:
            throw Problem.validation("trauma", "must be an object with mechanism and injuries, or null")
        }
        switch body["onset"] {
        case nil: break
        case .null?: onsetRemoved = true
        case .object(let onset)?:
            if let unknown = onset.keys.sorted().first(where: { !["kind", "at"].contains($0) }) {
                throw Problem.validation("onset.\(FieldName.shown(unknown))", "is not a field of the onset")
            }
            if onset["kind"] != nil {
                onsetKind = try Self.enumeration(onset["kind"]!, "onset.kind", OnsetTime.Kind.self)
            }
            onsetAt = try Self.time(onset, "at", field: "onset.at", now: now, words: "the onset", days: 7)
        default:
            throw Problem.validation("onset", "must be an object with kind and at, or null")
        }
        priority = try Self.change(body, "priority") { value in
            try Self.enumeration(value, "priority", TriagePriority.self)
        }
        eta = try Self.change(body, "etaMinutes") { value in
            guard let minutes = RequestBody.integer(value) else {
                throw Problem.validation("etaMinutes", "must be a whole number of minutes")
            }
            var probe = CrewObservations()
            probe.etaMinutes = minutes
            probe.etaRecordedAt = now
            try Self.check(probe, "etaMinutes")
            return minutes
        }
        hospital = try Self.change(body, "hospital") { value in
            guard case .string(let text) = value, let code = HospitalCode(rawValue: text) else {
                throw Problem.validation("hospital", "must be a 10-digit medical-institution code")
            }
            guard hospitals.contains(code) else {
                throw Problem.validation("hospital", "is not in this gateway's list of receiving hospitals")
            }
            return code
        }
    }

    /// Applies the patch. An onset without a kind or a time after the merge is left out (``check(_:)`` refuses it
    /// before: see ``onsetIsComplete(_:)``).
    func apply(to observations: inout CrewObservations) {
        Self.apply(chiefComplaint, to: &observations.chiefComplaint)
        Self.apply(complaintNote, to: &observations.complaintNote)
        if traumaRemoved {
            observations.trauma = nil
        } else if case .keep = mechanism, case .keep = injuries {
        } else {
            var trauma = observations.trauma ?? TraumaDetails()
            Self.apply(mechanism, to: &trauma.mechanism)
            switch injuries {
            case .keep: break
            case .remove: trauma.injuries = []
            case .set(let regions): trauma.injuries = regions
            }
            observations.trauma = trauma.mechanism == nil && trauma.injuries.isEmpty ? nil : trauma
        }
        if onsetRemoved {
            observations.onset = nil
        } else if let kind = onsetKind ?? observations.onset?.kind, let at = onsetAt ?? observations.onset?.at,
            onsetKind != nil || onsetAt != nil
        {
            observations.onset = OnsetTime(kind, at: at)
        }
        Self.apply(priority, to: &observations.priority)
        switch eta {
        case .keep: break
        case .remove:
            observations.etaMinutes = nil
            observations.etaRecordedAt = nil
        case .set(let minutes):
            observations.etaMinutes = minutes
            observations.etaRecordedAt = now
        }
        Self.apply(hospital, to: &observations.hospital)
    }

    /// Whether the onset, merged into `current`, has both its kind and its time (a new onset needs both).
    func onsetIsComplete(_ current: CrewObservations) -> Bool {
        guard !onsetRemoved, onsetKind != nil || onsetAt != nil else { return true }
        return (onsetKind ?? current.onset?.kind) != nil && (onsetAt ?? current.onset?.at) != nil
    }

    static func apply<Value>(_ change: Change<Value>, to value: inout Value?) {
        switch change {
        case .keep: break
        case .remove: value = nil
        case .set(let new): value = new
        }
    }

    static func change<Value>(
        _ body: [String: JSONValue],
        _ key: String,
        _ parse: (JSONValue) throws -> Value
    ) throws -> Change<Value> {
        switch body[key] {
        case nil: .keep
        case .null?: .remove
        case let value?: .set(try parse(value))
        }
    }

    static func enumeration<Value: RawRepresentable & CaseIterable>(
        _ value: JSONValue,
        _ field: String,
        _: Value.Type
    ) throws -> Value where Value.RawValue == String {
        let names = Value.allCases.map(\.rawValue)
        guard case .string(let text) = value, let result = Value(rawValue: text) else {
            throw Problem.validation(
                field,
                "must be \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "")"
            )
        }
        return result
    }

    /// Checks `observations` with the domain's rules; a refusal names `field`.
    static func check(_ observations: CrewObservations, _ field: String) throws {
        do {
            try observations.validate()
        } catch {
            throw Problem.validation(field, error.reason)
        }
    }

    /// An optional RFC 3339 time `key` of `object`: not in the future (a minute's grace for the tablet's clock),
    /// nor more than `days` days ago.
    static func time(
        _ object: [String: JSONValue],
        _ key: String,
        field: String? = nil,
        now: Date,
        words: String,
        days: Int = 1
    ) throws -> Date? {
        guard object[key] != nil else { return nil }
        let field = field ?? key
        guard case .string(let text)? = object[key], text.utf8.count <= 40, let date = RFC3339.date(text) else {
            throw Problem.validation(field, "must be an RFC 3339 date-time such as 2026-11-27T03:12:00Z")
        }
        let range = now.addingTimeInterval(-Double(days) * 86_400)...now.addingTimeInterval(60)
        guard range.contains(date) else {
            let error = ObservationError.outOfRange(
                words,
                days == 1
                    ? "within the last 24 hours, not in the future" : "within the last \(days) days, not in the future"
            )
            throw Problem.validation(field, error.reason)
        }
        return date
    }
}

/// One set of vital signs from a request body (docs/gateway-api.yaml, `VitalsRequest`).
enum VitalsInput {
    static let fields: Set<String> = [
        "takenAt", "jcs", "gcs", "heartRate", "systolic", "diastolic", "respiratoryRate", "spo2", "temperature",
        "bloodGlucose",
    ]

    /// The set, every value checked with the domain's rules on its own first (so that a refusal names its field).
    static func vitalSigns(_ body: [String: JSONValue], now: Date) throws -> VitalSigns {
        let takenAt = try ObservationPatch.time(body, "takenAt", now: now, words: "the time the set was taken") ?? now
        var set = VitalSigns(takenAt: takenAt)
        if let value = body["jcs"] {
            guard let number = RequestBody.integer(value), let level = JCSLevel(rawValue: number) else {
                throw Problem.validation(
                    "jcs",
                    "must be a JCS level: 0, 1, 2, 3, 10, 20, 30, 100, 200 or 300"
                )
            }
            set.jcs = level
        }
        if let value = body["gcs"] {
            guard case .object(let parts) = value else {
                throw Problem.validation("gcs", "must be an object with eye, verbal and motor")
            }
            if let unknown = parts.keys.sorted().first(where: { !["eye", "verbal", "motor"].contains($0) }) {
                throw Problem.validation("gcs.\(unknown)", "is not a part of the GCS")
            }
            var numbers: [String: Int] = [:]
            for part in ["eye", "verbal", "motor"] {
                guard let value = parts[part] else { throw Problem.validation("gcs.\(part)", "is required") }
                guard let number = RequestBody.integer(value) else {
                    throw Problem.validation("gcs.\(part)", "must be a whole number")
                }
                numbers[part] = number
            }
            let (eye, verbal, motor) = (numbers["eye"]!, numbers["verbal"]!, numbers["motor"]!)
            do {
                set.gcs = try GCSScore(eye: eye, verbal: verbal, motor: motor)
            } catch {
                let part = !(1...4).contains(eye) ? "eye" : !(1...5).contains(verbal) ? "verbal" : "motor"
                throw Problem.validation("gcs.\(part)", error.reason)
            }
        }
        let integers: [(String, WritableKeyPath<VitalSigns, Int?>)] = [
            ("heartRate", \.heartRate), ("systolic", \.systolic), ("diastolic", \.diastolic),
            ("respiratoryRate", \.respiratoryRate), ("spo2", \.spo2), ("bloodGlucose", \.bloodGlucose),
        ]
        for (field, path) in integers {
            guard let value = body[field] else { continue }
            guard let number = RequestBody.integer(value) else {
                throw Problem.validation(field, "must be a whole number")
            }
            var probe = VitalSigns(takenAt: takenAt)
            probe[keyPath: path] = number
            try check(probe, field)
            set[keyPath: path] = number
        }
        if let value = body["temperature"] {
            guard case .number(let number) = value, number.isFinite else {
                throw Problem.validation("temperature", "must be a number, in °C")
            }
            // The value as sent is checked (45.04 is over 45), then kept to one decimal.
            var probe = VitalSigns(takenAt: takenAt)
            probe.temperature = number
            try check(probe, "temperature")
            set.temperature = (number * 10).rounded() / 10
        }
        // What only the whole set can say: the diastolic above the systolic, or no value at all.
        try check(set, set.systolic != nil && set.diastolic != nil ? "diastolic" : "vitals")
        return set
    }

    static func check(_ set: VitalSigns, _ field: String) throws {
        do {
            try set.validate()
        } catch {
            throw Problem.validation(field, error.reason)
        }
    }
}

/// `GET /api/v1/hospitals`: the receiving hospitals the crew may pick, each with its live acceptance publication
/// (their receivers' URLs stay on the gateway).
struct HospitalListView: Encodable {
    struct Hospital: Encodable {
        var code: String
        var name: String
        var nameKana: String?
        /// Its live publication; null when it has published nothing (or the gateway has not heard it yet).
        var acceptance: HospitalAcceptance?

        init(_ hospital: ReceivingHospital, _ acceptance: HospitalAcceptance?) {
            code = hospital.code.rawValue
            name = hospital.name
            nameKana = hospital.nameKana
            self.acceptance = acceptance
        }

        enum CodingKeys: String, CodingKey { case code, name, nameKana, acceptance }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(code, forKey: .code)
            try container.encode(name, forKey: .name)
            try container.encodeIfPresent(nameKana, forKey: .nameKana)
            try container.encode(acceptance, forKey: .acceptance)
        }
    }
    var hospitals: [Hospital]
}
