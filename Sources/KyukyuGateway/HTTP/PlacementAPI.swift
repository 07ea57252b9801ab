import Foundation
import Hummingbird
import KyukyuDomain
import KyukyuOnshi
import KyukyuSummary
import KyukyuWorkflow

// The crew's hospital picker against the region's live acceptance (docs/gateway-api.yaml, tag `placement`): the
// hospitals ranked for this patient (KyukyuSummary's `PatientNeeds` and `HospitalRanking`, from the red flags, the
// crew's chief complaint and the patient's age), and a placement request to several hospitals at once, whose
// answers arrive on the device's event stream and show in the incident view's `placement`. The first acceptance
// makes its hospital the destination, as the crew's own pick does.

extension GatewayAPI {
    /// Registers the ranking and the placement routes on the `api/v1` group.
    func registerPlacement(on api: RouterGroup<GatewayRequestContext>) {
        api.get("incidents/:id/hospitals") { request, context in
            _ = try await session(request, touch: false)
            let runner = try await runner(context)
            return try json(await ranking(await runner.snapshot()))
        }
        api.post("incidents/:id/placements") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(request, context: context, allowed: ["hospitals"])
            let codes = try Self.placementHospitals(body, known: Set(hospitals.map(\.code)))
            guard let placements else {
                throw Problem(
                    .conflict,
                    "conflict",
                    "Not now",
                    detail: "this terminal cannot send placement requests"
                )
            }
            guard let url = await placements.hubURL(for: codes) else {
                throw Problem.validation("hospitals", "must all be served by the same regional hub")
            }
            let current = await runner.snapshot()
            let summary = try Self.placementSummary(current, needs: needs(current), now: now())
            let crewID = try Self.crewID(session)
            let started = try await workflow { () throws(WorkflowError) in
                try await runner.startPlacement(to: codes, summary: summary, by: crewID)
            }
            await placements.submit(
                PlacementRequest(
                    placement: started.placement.id,
                    documentSet: started.documentSet,
                    hospitals: codes,
                    summary: summary
                ),
                of: runner.id,
                at: url
            )
            return try json(view(started.snapshot, active: await desk.active == runner.id), status: .accepted)
        }
        api.post("incidents/:id/placements/cancel") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            _ = try await RequestBody.object(request, context: context, allowed: [])
            guard let placements else {
                throw Problem(.conflict, "conflict", "Not now", detail: "this terminal cannot send placement requests")
            }
            let crewID = try Self.crewID(session)
            let cancelled = try await workflow { () throws(WorkflowError) in
                try await runner.cancelPlacement(by: crewID)
            }
            if let url = await placements.hubURL(for: cancelled.placement.hospitals) {
                await placements.cancel(cancelled.placement.id, of: runner.id, at: url)
            }
            return try json(view(cancelled.snapshot, active: await desk.active == runner.id), status: .accepted)
        }
    }

    /// The hospitals of a placement request: 1 to 10 distinct codes from this gateway's list.
    static func placementHospitals(_ body: [String: JSONValue], known: Set<HospitalCode>) throws -> [HospitalCode] {
        guard case .array(let items)? = body["hospitals"] else {
            throw Problem.validation("hospitals", "must be an array of 1 to 10 hospital codes")
        }
        guard (1...10).contains(items.count) else {
            throw Problem.validation("hospitals", "must name 1 to 10 hospitals")
        }
        var codes: [HospitalCode] = []
        for item in items {
            guard case .string(let text) = item, let code = HospitalCode(rawValue: text) else {
                throw Problem.validation("hospitals", "must be 10-digit medical-institution codes")
            }
            guard known.contains(code) else {
                throw Problem.validation("hospitals", "names a hospital not in this gateway's list")
            }
            guard !codes.contains(code) else { throw Problem.validation("hospitals", "names a hospital twice") }
            codes.append(code)
        }
        return codes
    }

    /// What the asked hospitals are told: the age by decade and the sex from the patient's qualification when known
    /// (never the name or the birth date), the crew's complaint and triage, the needs, and the ETA left.
    static func placementSummary(_ snapshot: IncidentSnapshot, needs: PatientNeeds, now: Date) throws
        -> PlacementSummary
    {
        let patient = snapshot.summary?.patient
        let observations = snapshot.state.observations ?? CrewObservations()
        var eta: Int?
        if let minutes = observations.etaMinutes {
            let elapsed = observations.etaRecordedAt.map { Int(now.timeIntervalSince($0) / 60) } ?? 0
            eta = min(600, max(0, minutes - max(0, elapsed)))
        }
        do throws(PlacementError) {
            return try PlacementSummary(
                ageDecade: patient.map { min(11, max(0, $0.age) / 10) },
                sex: patient.flatMap { ["male", "female"].contains($0.sex) ? $0.sex : nil },
                chiefComplaint: observations.chiefComplaint,
                priority: observations.priority,
                needs: needs.conditions,
                etaMinutes: eta
            )
        } catch {
            throw Problem.validation("summary", error.reason)
        }
    }

    /// The patient's needs: the dialysis red flag from the records, the crew's chief complaint, and the age from the
    /// patient's qualification when the records arrived.
    func needs(_ snapshot: IncidentSnapshot) -> PatientNeeds {
        var flags: [RedFlag] = []
        if let last = snapshot.summary?.dialysis?.lastSession, let date = Self.onshiDate(last) {
            flags.append(.dialysis(lastSession: date))
        }
        return PatientNeeds.derive(
            redFlags: flags,
            chiefComplaint: snapshot.state.observations?.chiefComplaint,
            ageYears: snapshot.summary?.patient?.age
        )
    }

    /// `YYYY-MM-DD` as an onshi date.
    static func onshiDate(_ text: String) -> OnshiDate? {
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        return OnshiDate(year: parts[0], month: parts[1], day: parts[2])
    }

    /// The crew's hospitals ranked for this incident's patient, each with what it accepts of the needs, its
    /// publication, and its answer to the open placement request.
    func ranking(_ snapshot: IncidentSnapshot) async -> HospitalRankingView {
        let needs = needs(snapshot)
        let publications = await acceptance.all()
        let ranked = HospitalRanking.rank(hospitals.map { ($0.code, publications[$0.code]) }, needs: needs)
        let byCode = Dictionary(hospitals.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        return HospitalRankingView(
            needs: needs.needs.map(HospitalRankingView.Need.init),
            hospitals: ranked.compactMap { entry in
                byCode[entry.code].map { HospitalRankingView.Entry(entry, hospital: $0) }
            },
            asOf: now()
        )
    }
}

/// `GET /api/v1/incidents/{id}/hospitals` (docs/gateway-api.yaml, `HospitalRanking`): the patient's needs with their
/// reasons, and the crew's hospitals best fit first. Carries the age in years as a need's reason (as the summary
/// does); never the name.
struct HospitalRankingView: Encodable, Sendable {
    struct Reason: Encodable, Sendable {
        var kind: String
        var flag: String?
        var date: String?
        var complaint: String?
        var years: Int?

        init(_ reason: NeedReason) {
            switch reason {
            case .redFlag(let flag):
                kind = "red-flag"
                if case .dialysis(let last) = flag {
                    self.flag = "dialysis"
                    date = String(format: "%04d-%02d-%02d", last.year, last.month, last.day)
                } else {
                    self.flag = "other"
                }
            case .chiefComplaint(let complaint):
                kind = "chief-complaint"
                self.complaint = complaint.rawValue
            case .age(let years):
                kind = "age"
                self.years = years
            }
        }
    }

    struct Need: Encodable, Sendable {
        var condition: String
        var reasons: [Reason]

        init(_ need: PatientNeeds.Need) {
            condition = need.condition.rawValue
            reasons = need.reasons.map(Reason.init)
        }
    }

    struct Declined: Encodable, Sendable {
        var condition: String
        var reason: String
        var note: String?
    }

    struct Entry: Encodable, Sendable {
        var code: String
        var name: String
        var nameKana: String?
        var tier: String
        var accepted: [String]
        var declined: [Declined]
        var unknown: [String]
        var acceptance: HospitalAcceptance?

        init(_ ranked: RankedHospital, hospital: ReceivingHospital) {
            code = ranked.code.rawValue
            name = hospital.name
            nameKana = hospital.nameKana
            tier = HospitalRankingView.word(ranked.tier)
            accepted = ranked.accepted.map(\.rawValue)
            declined = ranked.declined.map {
                Declined(condition: $0.condition.rawValue, reason: $0.refusal.reason.rawValue, note: $0.refusal.note)
            }
            unknown = ranked.unknown.map(\.rawValue)
            acceptance = ranked.acceptance
        }

        enum CodingKeys: String, CodingKey {
            case code, name, nameKana, tier, accepted, declined, unknown, acceptance
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(code, forKey: .code)
            try container.encode(name, forKey: .name)
            try container.encodeIfPresent(nameKana, forKey: .nameKana)
            try container.encode(tier, forKey: .tier)
            try container.encode(accepted, forKey: .accepted)
            try container.encode(declined, forKey: .declined)
            try container.encode(unknown, forKey: .unknown)
            // null, not absent: "not published" is an answer the picker shows.
            try container.encode(acceptance, forKey: .acceptance)
        }
    }

    var needs: [Need]
    var hospitals: [Entry]
    /// The gateway's time, against which the tablet ages each publication.
    var asOf: Date

    static func word(_ tier: RankedHospital.Tier) -> String {
        switch tier {
        case .acceptsAll: "accepts-all"
        case .acceptsSome: "accepts-some"
        case .unknown: "unknown"
        case .declines: "declines"
        }
    }
}

/// The incident's latest placement request (docs/gateway-api.yaml, `PlacementView`): each asked hospital's answer
/// with a decline's reason and note, whether it is still open, stored at the hub, withdrawn, and the problem
/// reaching the hub in words. No patient data (the summary the hospitals were sent is not repeated).
struct PlacementView: Encodable, Sendable {
    struct Hospital: Encodable, Sendable {
        var code: String
        var name: String?
        var answer: String
        var reason: String?
        var note: String?
        var answeredAt: Date?
    }

    var id: String
    var requestedAt: Date
    var open: Bool
    var stored: Bool
    var cancelRequested: Bool
    var acceptedBy: String?
    var problem: String?
    var hospitals: [Hospital]

    /// The view of `progress`, or nil when the crew never sent one.
    init?(_ progress: PlacementProgress?, names: [HospitalCode: String]) {
        guard let progress else { return nil }
        id = progress.id.uuidString.lowercased()
        requestedAt = progress.requestedAt
        open = progress.isOpen
        stored = progress.stored
        cancelRequested = progress.cancelRequested
        acceptedBy = progress.acceptedBy?.rawValue
        problem = progress.problem
        hospitals = progress.entries.map {
            Hospital(
                code: $0.hospital.rawValue,
                name: names[$0.hospital],
                answer: $0.answer.rawValue,
                reason: $0.divert?.reason.rawValue,
                note: $0.divert?.note,
                answeredAt: $0.answeredAt
            )
        }
    }
}
