import Foundation
import KyukyuCardSim
import KyukyuNetworkSim
import NIOCore
import NIOHTTP1

/// The shift's clock. People's and vehicles' time (driving, reaching the patient, the transport) is the plan's field
/// time divided by the compression; machines' time (deadlines, timeouts, backoff, APDUs, TLS) is never scaled.
struct ShiftClock: Sendable {
    let compression: Double

    /// Real time for `fieldSeconds` of people's or vehicles' time.
    func real(_ fieldSeconds: Double) -> Duration { .microseconds(Int64(fieldSeconds * 1_000_000 / compression)) }

    /// Sleeps until `instant` (at once when it has passed).
    func sleep(until instant: ContinuousClock.Instant) async {
        try? await Task.sleep(until: instant, clock: .continuous)
    }
}

/// How long a dead zone at the card touch lasts in real seconds: compressed like the rest of the field's time, but
/// never below the floor when it lasts longer than the floor in the field (and as long as in the field when it is
/// shorter), so that a dead zone which outlasts the fetch deadlines in the field outlasts them in the drill too.
func deadZoneRealSeconds(field: Double, compression: Double, floor: Double) -> Double {
    max(field / compression, min(field, floor))
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

/// Runs one incident the way the crew and the hospital's staff would, through the gateway's and the receiver's
/// HTTP APIs, and the simulators' controls for what the world does (a card touched, a dead zone, a power loss).
struct IncidentDriver {
    let plan: IncidentPlan
    let ambulance: Ambulance
    let region: Region
    let clock: ShiftClock
    /// Onshi's fault and maintenance windows, as real instants.
    let onshiWindows: [(cause: DrillCause, from: ContinuousClock.Instant, until: ContinuousClock.Instant)]

    private var anchors: [(field: Double, instant: ContinuousClock.Instant)] = []
    private var marks: [(String, ContinuousClock.Instant)] = []
    private var problems: [String] = []
    private var taps = 0
    private var extraConditions: [DrillCause] = []
    private var arrivalInstant: ContinuousClock.Instant?
    /// Real time by which a floored dead zone held the field clock (``deadZoneReal(_:)``).
    private var held: Duration = .zero
    private var fieldMarks: [(String, Double)] = []
    /// What the reconciliation needs to find the incident in onshi's log and the gateway's audit.
    private(set) var ledger = LedgerEntry()

    /// One incident as the ledgers know it (never in the report: the holder stands for a patient).
    struct LedgerEntry: Sendable {
        /// The gateway's incident id.
        var incidentID: String?
        /// The terminal.
        var terminal = ""
        /// The synthetic patient, when a card or a lookup was used.
        var holder: Int?
        /// From dispatch to the end of the incident, in wall time (onshi's log has wall times).
        var from = Date()
        /// The end.
        var until = Date()
        /// Whether a fault may have lost an answer onshi had already logged (a dead zone, onshi's faults, a kill,
        /// a removed card).
        var faulted = false
        /// The categories the tablet still showed as not arrived when the patient arrived: an answer for one of them
        /// that came later was dropped with the incident, by design.
        var unsettled: Set<String> = []
    }

    init(
        plan: IncidentPlan,
        ambulance: Ambulance,
        region: Region,
        clock: ShiftClock,
        onshiWindows: [(cause: DrillCause, from: ContinuousClock.Instant, until: ContinuousClock.Instant)]
    ) {
        self.plan = plan
        self.ambulance = ambulance
        self.region = region
        self.clock = clock
        self.onshiWindows = onshiWindows
    }

    var http: DrillHTTP { region.http }
    var tablet: CrewTablet { ambulance.tablet }

    /// Field seconds from dispatch for a real instant: the latest scheduled step's field time, plus the real time
    /// since it (machines' time, at 1×).
    func field(_ instant: ContinuousClock.Instant) -> Double {
        guard let anchor = anchors.last(where: { $0.instant <= instant }) ?? anchors.first else { return 0 }
        return anchor.field + max(0, (instant - anchor.instant).seconds)
    }

    private mutating func anchor(_ fieldSeconds: Double, from dispatch: ContinuousClock.Instant)
        -> ContinuousClock.Instant
    {
        let instant = dispatch + clock.real(fieldSeconds) + held
        anchors.append((fieldSeconds, instant))
        anchors.sort { $0.instant < $1.instant }
        return instant
    }

    private mutating func mark(_ name: String, _ instant: ContinuousClock.Instant = .now) {
        marks.append((name, instant))
    }

    /// How long a dead zone at the card touch lasts in real time (``deadZoneRealSeconds(field:compression:floor:)``).
    func deadZoneReal(_ fieldSeconds: Double) -> Duration {
        let seconds = deadZoneRealSeconds(
            field: fieldSeconds,
            compression: clock.compression,
            floor: region.scenario.machineFloorSeconds
        )
        return .milliseconds(Int64(seconds * 1000))
    }

    /// Cuts `links` for `duration`, then restores the scenario's usual link (in the background); with no duration,
    /// until the caller restores them.
    private mutating func deadZone(
        _ links: [String],
        for duration: Duration?,
        fieldStart: Double? = nil,
        fieldLength: Double? = nil
    ) async {
        var blackhole = region.scenario.network.link
        blackhole.mode = .blackhole
        for link in links {
            do { try await ambulance.setLink(link, blackhole, http: http) } catch {
                problems.append("the dead zone could not be set on link \(link)")
            }
        }
        let start = ContinuousClock.now
        if let fieldStart, let fieldLength {
            fieldMarks += [("dead-zone-start", fieldStart), ("dead-zone-end", fieldStart + fieldLength)]
        } else {
            mark("dead-zone-start", start)
            if let duration { mark("dead-zone-end", start + duration) }
        }
        // Without a length, the caller restores the links.
        guard let duration else { return }
        let ambulance = self.ambulance
        let http = self.http
        let usual = region.scenario.network.link
        Task {
            try? await Task.sleep(for: duration)
            for link in links { try? await ambulance.setLink(link, usual, http: http) }
        }
    }

    /// Follows the incident until `condition` or `deadline`, riding out a gateway restart.
    func watch(
        _ id: String,
        until deadline: ContinuousClock.Instant,
        _ condition: @escaping @Sendable (IncidentView) -> Bool
    ) async -> IncidentView? {
        for _ in 0..<5 {
            do {
                return try await tablet.follow(id, until: deadline, condition)
            } catch {
                try? await ambulance.waitForRestart()
                guard ContinuousClock.now < deadline else { return nil }
                if await !tablet.hasSession() { try? await tablet.signIn(crew: ambulance.crew) }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        return nil
    }

    /// A crew call, once more after a gateway restart; the status (0 when it never got an answer).
    @discardableResult
    private mutating func crew(_ path: String, _ body: String = "{}", tap: Bool = false) async -> (Int, Data) {
        if tap { taps += 1 }
        for attempt in 0..<3 {
            if let answer = try? await tablet.post(path, body), answer.status != 401 || attempt == 2 {
                return answer
            }
            try? await ambulance.waitForRestart()
            if await !tablet.hasSession() { try? await tablet.signIn(crew: ambulance.crew) }
        }
        return (0, Data())
    }

    /// Runs the incident from its dispatch at `dispatch`; returns what it came to, and when the ambulance is free.
    mutating func run(dispatch: ContinuousClock.Instant) async -> (IncidentOutcome, ContinuousClock.Instant) {
        let onScene = plan.responseSeconds
        let consentAt = onScene + plan.contactSeconds
        let departAt = onScene + plan.sceneSeconds
        let arrivalAt = departAt + plan.transportSeconds
        _ = anchor(0, from: dispatch)
        mark("dispatched", dispatch)
        ledger.terminal = ambulance.terminalID
        ledger.from = Date().addingTimeInterval(-max(0, (ContinuousClock.now - dispatch).seconds))
        ledger.holder = plan.credential != .none || plan.fourFieldsKnown ? plan.holder : nil
        defer {
            ledger.until = Date()
            let faults: Set<DrillCause> = [
                .deadZone, .noCoverage, .onshiFault, .maintenance, .gatewayRestart, .cardRemoved,
            ]
            ledger.faulted = !faults.isDisjoint(with: plan.conditions + extraConditions)
        }
        var arrival: ContinuousClock.Instant { dispatch + clock.real(arrivalAt) + held }
        arrivalInstant = arrival
        if plan.noCoverage {
            // Until the arrival, however late the held clock makes it: the links come back at the hospital.
            await deadZone(ambulance.linkNames, for: nil)
        }

        await clock.sleep(until: anchor(onScene, from: dispatch))
        mark("on-scene")
        let (status, body) = await crew("/api/v1/incidents")
        guard status == 201,
            let id = (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["id"] as? String
        else {
            problems.append("the incident could not be created (HTTP \(status))")
            return (outcome(id: nil, summary: nil, identification: nil, delivery: nil), arrival)
        }
        ledger.incidentID = id

        await clock.sleep(until: anchor(consentAt, from: dispatch))
        let basis =
            plan.consent == .refused ? "refused" : plan.consent == .exception ? "life-or-body-exception" : "verbal"
        let consent = await crew("/api/v1/incidents/\(id)/consent", #"{"basis":"\#(basis)"}"#, tap: true)
        mark("consent")
        if consent.0 != 200 { problems.append("consent was refused by the gateway (HTTP \(consent.0))") }
        if plan.consent == .refused {
            _ = await watch(id, until: .now + .seconds(15)) { $0.phase == "closed" }
            mark("closed")
            await clock.sleep(until: dispatch + clock.real(departAt))
            return (outcome(id: id, summary: nil, identification: nil, delivery: nil), .now)
        }
        await crew(
            "/api/v1/incidents/\(id)/vitals",
            #"{"heartRate": 96, "systolic": 132, "diastolic": 84, "spo2": 95}"#
        )

        var summary: (instant: ContinuousClock.Instant, view: IncidentView)?
        var depart: ContinuousClock.Instant { dispatch + clock.real(departAt) + held }
        var sent: (instant: ContinuousClock.Instant, date: Date)?
        var hospitalSide: Task<HospitalSide, Never>?

        if !plan.urgent {
            summary = await identifyHoldingTheClock(id, from: consentAt, until: departAt, dispatch: dispatch)
        }
        await clock.sleep(until: anchor(departAt, from: dispatch))
        mark("depart-scene")
        if plan.deadZone == .hospital {
            // Compressed like the transport it falls in: what matters is whether the outbox's backoff (never
            // compressed, so the drill is the harder case) delivers before arrival.
            await deadZone(ambulance.linkNames.filter { $0 != "onshi" }, for: clock.real(plan.deadZoneSeconds))
        }
        let firstHospital = region.hospitals[plan.hospital]
        let handoff = await crew("/api/v1/incidents/\(id)/handoff", #"{"hospital":"\#(firstHospital.code)"}"#)
        if handoff.0 == 202 {
            sent = (.now, Date())
            mark("sent")
            let driver = self
            let expected = arrival
            hospitalSide = Task { await driver.hospital(id: id, arrival: expected) }
        } else {
            problems.append("the document could not be queued (HTTP \(handoff.0))")
        }

        if plan.urgent {
            await clock.sleep(until: anchor(departAt + 120, from: dispatch))
            summary = await identifyHoldingTheClock(id, from: departAt + 120, until: arrivalAt, dispatch: dispatch)
            if summary != nil {
                await crew("/api/v1/incidents/\(id)/vitals", #"{"heartRate": 92, "spo2": 97}"#)
            }
        } else if summary == nil, plan.credential != .none || plan.fourFieldsKnown {
            if let view = await watch(id, until: arrival, { $0.phase == "summary" && $0.hasData }) {
                summary = (.now, view)
                mark("summary")
                await crew("/api/v1/incidents/\(id)/vitals", #"{"heartRate": 92, "spo2": 97}"#)
            }
        }

        arrivalInstant = anchor(arrivalAt, from: dispatch)
        await clock.sleep(until: arrival)
        mark("arrival")
        if plan.noCoverage {
            for link in ambulance.linkNames {
                try? await ambulance.setLink(link, region.scenario.network.link, http: http)
            }
            mark("dead-zone-end")
        }
        // The patient keeps their card: it leaves the reader with them.
        if plan.credential != .none { _ = try? await http.send(.DELETE, ambulance.cardControl + "/card") }
        let side = await hospitalSide?.value
        problems += side?.problems ?? []
        marks += side?.marks ?? []
        let categories = try? await tablet.incident(id)
        ledger.unsettled = Set(
            (categories?.categories ?? [:]).filter { !["arrived", "none-on-record", "late"].contains($0.value.status) }
                .keys
        )
        var closed = false
        if let side, let final = side.finalHospital, let set = side.documentSet {
            let status = (try? await region.hospitals[final].desk.act(set, "arrived")) ?? 0
            if status == 200 {
                closed = await watch(id, until: .now + .seconds(30)) { $0.phase == "closed" } != nil
                if !closed { problems.append("the gateway did not close the incident after the handover") }
            } else {
                problems.append("the hospital could not mark the patient arrived (HTTP \(status))")
            }
        }
        if !closed {
            await crew("/api/v1/incidents/\(id)/close")
            closed = await watch(id, until: .now + .seconds(30)) { $0.phase == "closed" } != nil
        }
        mark("closed")
        var delivery: Delivery?
        if let sent, let side {
            delivery = Delivery(
                sent: sent.instant,
                sentDate: side.resentDate ?? sent.date,
                received: side.received,
                receivedDate: side.receivedDate,
                arrival: arrival,
                finalHospital: side.finalHospital,
                documentSet: side.documentSet,
                latestVersion: categories?.handoff?.latestVersion
            )
        }
        let result = outcome(
            id: id,
            summary: summary.map { ($0.instant, categories ?? $0.view) },
            identification: summary?.view.identification,
            delivery: delivery
        )
        return (result, .now)
    }

    /// Identifies the patient at field time `from`, with the field time until `until` (the departure, or the
    /// arrival for a card read during transport) for the machines to work in. That time is compressed like the rest
    /// of the field's, but when it lasts longer than the floor in the field the machines get up to the floor in real
    /// time: the field clock stands still for what they use beyond the compressed time (as for a dead zone, so that
    /// compression never cuts the machines' own timescale, a 1.5 s approval on an iPhone or a 3 s fetch deadline,
    /// short where the field would not).
    private mutating func identifyHoldingTheClock(
        _ id: String,
        from fieldStart: Double,
        until fieldEnd: Double,
        dispatch: ContinuousClock.Instant
    ) async -> (instant: ContinuousClock.Instant, view: IncidentView)? {
        let field = max(0, fieldEnd - fieldStart)
        let compressed = clock.real(field)
        let allowed = max(compressed, .milliseconds(Int64(min(field, region.scenario.machineFloorSeconds) * 1000)))
        let start = ContinuousClock.now
        let heldBefore = held
        let summary = await identify(id, deadline: start + allowed, dispatch: dispatch, fieldAt: fieldStart)
        // A dead zone's own hold (in `identify`) already moved the schedule by its extra time.
        let used = (ContinuousClock.now - start) - (held - heldBefore)
        if used > compressed { held += min(used, allowed) - compressed }
        return summary
    }

    /// Touches the card (or looks the patient up) and waits for the summary until `deadline`.
    private mutating func identify(
        _ id: String,
        deadline: ContinuousClock.Instant,
        dispatch: ContinuousClock.Instant,
        fieldAt: Double
    ) async -> (instant: ContinuousClock.Instant, view: IncidentView)? {
        var deadline = deadline
        var failed = plan.credential == .none
        if plan.credential != .none {
            let touch = ContinuousClock.now
            if plan.deadZone == .onshi {
                // The field clock stands still for the real time the floor adds, so the rest of the scene and the
                // transport keep their length after the dead zone, as in the field.
                let real = deadZoneReal(plan.deadZoneSeconds)
                let extra = real - clock.real(plan.deadZoneSeconds)
                await deadZone(["onshi"], for: real, fieldStart: fieldAt, fieldLength: plan.deadZoneSeconds)
                if extra > .zero {
                    held += extra
                    deadline = deadline + extra
                }
            }
            for window in onshiWindows where window.from <= touch && touch < window.until {
                extraConditions.append(window.cause)
            }
            await touchCard()
            if plan.gatewayRestart {
                try? await Task.sleep(for: .milliseconds(400))
                mark("gateway-killed")
                let restart = ambulance.killAndRestartGateway()
                if (try? await restart.value) == nil { problems.append("the gateway did not come back after the kill") }
                mark("gateway-back")
                // The gateway restores the incident as the active one and reads the card still on the reader. Where
                // that read was lost too (the card was mid-exchange), the crew touches the card again: no tap.
                let resumed = await watch(id, until: min(deadline, .now + .seconds(10))) { view in
                    view.phase != "consent-recorded" || view.card?.state == "failed"
                        || ["refused", "failed"].contains(view.authentication?.status ?? "")
                }
                if resumed == nil {
                    await touchCard()
                }
            }
            if plan.credential == .android {
                let asked = await watch(id, until: min(deadline, .now + .seconds(30))) {
                    $0.card?.state == "pin-required" || $0.phase == "summary" || $0.card?.state == "failed"
                }
                if asked?.card?.state == "pin-required" {
                    await crew("/api/v1/incidents/\(id)/pin", #"{"pin":"1234"}"#, tap: true)
                }
            }
            let view = await watch(id, until: deadline) { view in
                (view.phase == "summary" && view.hasData) || view.card?.state == "failed"
                    || ["refused", "failed"].contains(view.authentication?.status ?? "") || view.phase == "closed"
            }
            if let view, view.phase == "summary", view.hasData {
                mark("summary")
                return (.now, view)
            }
            // The card failed (not merely still working at the deadline): the crew turns to the four fields.
            failed = view != nil
        }
        guard failed, plan.fourFieldsKnown else { return nil }
        let holder = SyntheticHolder(number: plan.holder)
        let sex = holder.sex == .male ? "male" : holder.sex == .female ? "female" : "other"
        let birth = String(
            format: "%04d-%02d-%02d",
            holder.birthDate.year,
            holder.birthDate.month,
            holder.birthDate.day
        )
        let lookup =
            #"{"kind":"demographics","name":"\#(holder.fullName)","nameKana":"\#(holder.fullNameKana)","birthDate":"\#(birth)","sex":"\#(sex)","address":"\#(holder.address)"}"#
        mark("lookup")
        let answer = await crew("/api/v1/incidents/\(id)/lookup", lookup, tap: true)
        guard answer.0 == 202 else {
            problems.append("the lookup was refused (HTTP \(answer.0))")
            return nil
        }
        if let view = await watch(id, until: deadline, { $0.phase == "summary" && $0.hasData }) {
            mark("summary")
            return (.now, view)
        }
        return nil
    }

    /// Puts the patient's card or phone on the reader (the simulator's control), arming a removal first if asked.
    private mutating func touchCard() async {
        let control = ambulance.cardControl
        if plan.cardRemoved {
            _ = try? await http.send(
                .POST,
                control + "/card/remove-after-apdus",
                json: #"{"apdus": 8, "reinsertAfterMs": 1500}"#
            )
        }
        let profile = plan.credential == .android ? "android" : plan.credential == .iphone ? "iphone" : "card"
        let certificate = plan.certificate == .expired ? "expired" : "valid"
        let body =
            #"{"holder": \#(plan.holder), "profile": "\#(profile)", "certificate": "\#(certificate)", "removalMs": 0}"#
        let answer = try? await http.send(.PUT, control + "/card", json: body, timeout: .seconds(60))
        if answer?.status != 200 { problems.append("the card could not be put on the reader") }
        mark("card-touched")
    }

    /// What the hospital's side came to.
    struct HospitalSide: Sendable {
        var documentSet: String?
        var finalHospital: Int?
        var received: ContinuousClock.Instant?
        var receivedDate: Date?
        /// When the document was sent to the second hospital after a divert.
        var resentDate: Date?
        var marks: [(String, ContinuousClock.Instant)] = []
        var problems: [String] = []
    }

    /// The hospital's staff: waits for the document, diverts or acknowledges it; after a divert the crew sends it
    /// to the second hospital, which acknowledges.
    func hospital(id: String, arrival: ContinuousClock.Instant) async -> HospitalSide {
        var side = HospitalSide()
        var hospital = region.hospitals[plan.hospital]
        let deadline = arrival + .seconds(60 + region.scenario.machineFloorSeconds)
        for attempt in 0..<2 {
            let code = hospital.code
            guard
                let view = await watch(
                    id,
                    until: deadline,
                    { view in
                        view.handoff?.hospital == code && (view.handoff?.deliveredVersion ?? 0) >= 1
                    }
                ), let set = view.handoff?.documentSet
            else {
                side.problems.append("the document did not reach hospital \(hospital.index + 1) within 60 s of arrival")
                return side
            }
            side.marks.append(("received", .now))
            let uuid = String(set.dropFirst("urn:uuid:".count)).lowercased()
            side.documentSet = uuid
            side.finalHospital = hospital.index
            side.received = .now
            if let receipts = try? await hospital.desk.receipts(uuid),
                let first = receipts.min(by: { $0.version < $1.version })
            {
                side.receivedDate = first.receivedAt
            }
            try? await Task.sleep(for: clock.real(60))
            if plan.divert, attempt == 0 {
                let status = (try? await hospital.desk.act(uuid, "divert", #"{"reason":"no-beds"}"#)) ?? 0
                guard status == 200 else {
                    side.problems.append("the divert was refused (HTTP \(status))")
                    return side
                }
                side.marks.append(("diverted", .now))
                _ = await watch(id, until: .now + .seconds(30)) { $0.handoff?.status == "diverted" }
                hospital = region.hospitals[plan.secondHospital]
                let again = try? await tablet.post(
                    "/api/v1/incidents/\(id)/handoff",
                    #"{"hospital":"\#(hospital.code)"}"#
                )
                guard again?.status == 202 else {
                    side.problems.append("the second hospital could not be chosen (HTTP \(again?.status ?? 0))")
                    return side
                }
                side.marks.append(("sent", .now))
                side.resentDate = Date()
                side.received = nil
                side.receivedDate = nil
                continue
            }
            let status = (try? await hospital.desk.act(uuid, "acknowledge")) ?? 0
            if status == 200 {
                _ = await watch(id, until: .now + .seconds(30)) { $0.handoff?.status == "acknowledged" }
                side.marks.append(("acknowledged", .now))
            } else {
                side.problems.append("the acknowledgement was refused (HTTP \(status))")
            }
            return side
        }
        return side
    }

    /// When the document went and got there.
    struct Delivery {
        var sent: ContinuousClock.Instant
        var sentDate: Date
        var received: ContinuousClock.Instant?
        var receivedDate: Date?
        var arrival: ContinuousClock.Instant
        var finalHospital: Int?
        var documentSet: String?
        var latestVersion: Int?
    }

    private func outcome(
        id: String?,
        summary: (instant: ContinuousClock.Instant, view: IncidentView)?,
        identification: String?,
        delivery: Delivery?
    ) -> IncidentOutcome {
        let conditions = Array(Set(plan.conditions + extraConditions)).sorted()
        let cause = conditions.first ?? .card
        let arrival = arrivalInstant ?? .now
        let dataObtained = summary.map { $0.instant <= arrival } ?? false
        var events = marks.map { IncidentOutcome.Event(event: $0.0, at: (field($0.1) * 10).rounded() / 10) }
        events += fieldMarks.map { IncidentOutcome.Event(event: $0.0, at: ($0.1 * 10).rounded() / 10) }
        events.sort { $0.at < $1.at }
        let onScene = plan.responseSeconds
        var sceneToSummary: Double?
        if let summary, dataObtained { sceneToSummary = ((field(summary.instant) - onScene) * 10).rounded() / 10 }
        var categories: [String: IncidentOutcome.Category] = [:]
        for (name, state) in summary?.view.categories ?? [:] {
            let mapped: String
            switch state.status {
            case "arrived", "none-on-record", "late", "timed-out", "failed": mapped = state.status
            default: mapped = "not-fetched"
            }
            categories[name] = .init(state: mapped, ms: state.milliseconds.map(Double.init))
        }
        var latency: Double?
        if let delivery, let received = delivery.receivedDate {
            latency = (received.timeIntervalSince(delivery.sentDate) * 10_000).rounded() / 10
        }
        let summaryTaps = plan.credential == .none && !plan.fourFieldsKnown ? nil : (summary == nil ? nil : taps)
        return IncidentOutcome(
            number: plan.number,
            ambulance: ambulance.terminalID,
            hospital: delivery?.finalHospital.map { region.hospitals[$0].code },
            cause: cause.rawValue,
            conditions: conditions.map(\.rawValue),
            eligible: plan.eligible,
            dataObtained: dataObtained,
            identification: identification,
            summaryBeforeArrival: delivery.map { delivery in delivery.received.map { $0 <= delivery.arrival } ?? false
            },
            taps: summaryTaps,
            sceneToSummarySeconds: sceneToSummary,
            deliveryLatencyMs: latency,
            timeline: events,
            categories: categories,
            problems: problems,
            documentSet: delivery?.documentSet,
            latestVersion: delivery?.latestVersion,
            coverage: !plan.noCoverage
        )
    }
}
