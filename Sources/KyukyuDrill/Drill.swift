import Foundation
import KyukyuDomain
import KyukyuTestbed
import KyukyuVault
import Logging
import NIOCore
import NIOHTTP1

/// A drill: starts the region, runs the shift (each ambulance its incidents in turn, all ambulances at once),
/// reconciles the three ledgers and makes the report.
public struct Drill: Sendable {
    /// The scenario.
    public let scenario: DrillScenario
    /// Where it runs.
    public let layout: RegionLayout
    /// The drill's own log (no patient data).
    public let logger: Logger

    /// A drill.
    public init(scenario: DrillScenario, layout: RegionLayout, logger: Logger) {
        self.scenario = scenario
        self.layout = layout
        self.logger = logger
    }

    /// Runs the whole drill; the region is stopped before it returns, also on a failure.
    public func run() async throws -> DrillReport {
        let plans = ShiftPlan.make(scenario)
        let region = try await Region.start(layout: layout, scenario: scenario, plans: plans, logger: logger)
        let outcomes: [(IncidentOutcome, IncidentDriver.LedgerEntry)]
        let startedAt = Date()
        let start = ContinuousClock.now
        var reconciliation: Reconciliation
        do {
            outcomes = try await shift(region: region, plans: plans, start: start, startedAt: startedAt)
            if Task.isCancelled { throw DrillError.step("interrupted; every part of the region was stopped") }
            reconciliation = try await Ledgers(region: region, logger: logger).reconcile(outcomes)
        } catch {
            await region.stop()
            await region.http.shutdown()
            throw error
        }
        await region.http.shutdown()
        return DrillReport(
            scenario: scenario,
            startedAt: startedAt,
            wallSeconds: ((ContinuousClock.now - start).seconds * 10).rounded() / 10,
            incidents: outcomes.map(\.0).sorted { $0.number < $1.number },
            reconciliation: reconciliation
        )
    }

    private func shift(
        region: Region,
        plans: [IncidentPlan],
        start: ContinuousClock.Instant,
        startedAt: Date
    ) async throws -> [(IncidentOutcome, IncidentDriver.LedgerEntry)] {
        let clock = ShiftClock(compression: scenario.compression)
        let windows = try await scheduleOnshi(region: region, clock: clock, start: start, startedAt: startedAt)
        defer { windows.tasks.forEach { $0.cancel() } }
        logger.info(
            "shift started",
            metadata: ["kyukyu.drill.incidents": "\(plans.count)", "kyukyu.drill.ambulances": "\(scenario.ambulances)"]
        )
        return await withTaskGroup(of: [(IncidentOutcome, IncidentDriver.LedgerEntry)].self) { group in
            for ambulance in region.ambulances {
                let mine = plans.filter { $0.ambulance == ambulance.index }
                group.addTask {
                    var outcomes: [(IncidentOutcome, IncidentDriver.LedgerEntry)] = []
                    // The ambulances start a little apart, as a shift's first calls do.
                    var next = start + .milliseconds(250 * ambulance.index)
                    for plan in mine where !Task.isCancelled {
                        next = next + clock.real(plan.gapSeconds)
                        await clock.sleep(until: next)
                        var driver = IncidentDriver(
                            plan: plan,
                            ambulance: ambulance,
                            region: region,
                            clock: clock,
                            onshiWindows: windows.instants
                        )
                        let (outcome, free) = await driver.run(dispatch: max(next, .now))
                        outcomes.append((outcome, driver.ledger))
                        next = free
                        self.logger.info(
                            "incident done",
                            metadata: [
                                "kyukyu.drill.incident": "\(plan.number)", "kyukyu.drill.cause": "\(outcome.cause)",
                                "kyukyu.drill.data": "\(outcome.dataObtained)",
                            ]
                        )
                    }
                    return outcomes
                }
            }
            var all: [(IncidentOutcome, IncidentDriver.LedgerEntry)] = []
            for await outcomes in group { all += outcomes }
            return all
        }
    }

    /// Sets onshi's latency and maintenance windows (real dates), and schedules the fault windows.
    private func scheduleOnshi(
        region: Region,
        clock: ShiftClock,
        start: ContinuousClock.Instant,
        startedAt: Date
    ) async throws -> (
        instants: [(cause: DrillCause, from: ContinuousClock.Instant, until: ContinuousClock.Instant)],
        tasks: [Task<Void, Never>]
    ) {
        var instants: [(cause: DrillCause, from: ContinuousClock.Instant, until: ContinuousClock.Instant)] = []
        let formatter = ISO8601DateFormatter()
        var maintenance: [JSONValue] = []
        for window in scenario.onshi.maintenance {
            let from = clock.real(window.at * 60)
            let until = clock.real((window.at + window.minutes) * 60)
            instants.append((.maintenance, start + from, start + until))
            maintenance.append(
                .object([
                    "from": .string(formatter.string(from: startedAt.addingTimeInterval(from.seconds))),
                    "until": .string(formatter.string(from: startedAt.addingTimeInterval(until.seconds))),
                ])
            )
        }
        func faults(_ endpoints: [String: JSONValue]) -> String {
            var everything = endpoints
            if let latency = scenario.onshi.latency {
                var star: [String: JSONValue] = [:]
                if case .object(let existing) = everything["*"] { star = existing }
                if star["latency"] == nil { star["latency"] = latency }
                everything["*"] = .object(star)
            }
            let value = JSONValue.object([
                "seed": .number(Double(scenario.seed % (1 << 52))),
                "endpoints": .object(everything),
                "maintenanceWindows": .array(maintenance),
            ])
            return String(decoding: (try? JSONEncoder().encode(value)) ?? Data(), as: UTF8.self)
        }
        let admin = region.stubAdmin + "/admin/faults"
        let base = faults([:])
        let answer = try await region.http.send(.PUT, admin, json: base)
        guard answer.status == 200 else {
            throw DrillError.scenario(
                "the stub refused the scenario's onshi settings: \(String(decoding: answer.body, as: UTF8.self).prefix(300))"
            )
        }
        var tasks: [Task<Void, Never>] = []
        for window in scenario.onshi.faults {
            let from = start + clock.real(window.at * 60)
            let until = start + clock.real((window.at + window.minutes) * 60)
            instants.append((.onshiFault, from, until))
            var endpoints: [String: JSONValue] = [:]
            if case .object(let object) = window.endpoints { endpoints = object }
            let during = faults(endpoints)
            let http = region.http
            tasks.append(
                Task {
                    try? await Task.sleep(until: from, clock: .continuous)
                    guard !Task.isCancelled else { return }
                    _ = try? await http.send(.PUT, admin, json: during)
                    try? await Task.sleep(until: until, clock: .continuous)
                    _ = try? await http.send(.PUT, admin, json: base)
                }
            )
        }
        return (instants, tasks)
    }
}

/// The three ledgers at the end of the shift: the gateways' audit trails, onshi's viewing log and the hospitals'
/// receipts; and the vaults, which must be empty.
struct Ledgers {
    let region: Region
    let logger: Logger

    func reconcile(_ entries: [(IncidentOutcome, IncidentDriver.LedgerEntry)]) async throws -> Reconciliation {
        let outcomes = entries.map(\.0)
        var mismatches: [String] = []
        let http = region.http

        // The shift is over when no gateway holds an open incident (at most 60 s for late deliveries).
        for ambulance in region.ambulances {
            let deadline = ContinuousClock.now + .seconds(60)
            var open = (try? await ambulance.tablet.openIncidents()) ?? []
            while !open.isEmpty, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(250))
                open = (try? await ambulance.tablet.openIncidents()) ?? open
            }
            if !open.isEmpty { mismatches.append("\(ambulance.terminalID) still had \(open.count) open incident(s)") }
        }

        // Onshi's viewing log: each session (a card or a lookup) and its successful category fetches.
        let answer = try await http.send(.GET, region.stubAdmin + "/admin/viewings")
        let viewings = (try? JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]]) ?? []

        // The hospitals' receipts, exported by each receiver.
        var receipts: [String: [Int]] = [:]
        for hospital in region.hospitals {
            let out = region.layout.directory + "/receipts/h\(hospital.index + 1)"
            let result = try await Commands.run(
                region.layout.binDirectory + "/kyukyu-hospital",
                [
                    "export", "--state-dir", hospital.directory, "--tls-dir", region.layout.directory + "/region-pki",
                    "--out", out,
                ]
            )
            if result.status != 0 {
                mismatches.append("hospital \(hospital.index + 1)'s export failed (status \(result.status))")
            }
            for name in (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? [] where name.hasSuffix(".json")
            {
                let stem = name.dropLast(".json".count)
                guard let dash = stem.range(of: "-v", options: .backwards), let version = Int(stem[dash.upperBound...])
                else {
                    continue
                }
                receipts[hospital.code + " " + String(stem[..<dash.lowerBound]).lowercased(), default: []].append(
                    version
                )
            }
        }

        await region.stop()

        // The gateways' vaults and audit trails: the categories each incident stored.
        var stored: [String: [String: Int]] = [:]
        var vaultsEmpty = true
        var auditsVerify = true
        for ambulance in region.ambulances {
            let vault = try await IncidentVault.open(stateDirectory: ambulance.gatewayState, logger: logger)
            let left = try await vault.incidents()
            if !left.isEmpty {
                vaultsEmpty = false
                mismatches.append("\(ambulance.terminalID)'s vault still holds \(left.count) incident(s)")
            }
            let verification = try await vault.audit.verify()
            if !verification.isIntact {
                auditsVerify = false
                mismatches.append("\(ambulance.terminalID)'s audit trail does not verify")
            }
            // Onshi's categories only: the vault also stores the identity, the incident's state and the documents.
            for entry in try await vault.audit.export() where entry.event.action == .categoryFetched {
                guard let incident = entry.event.incident, let category = entry.event.attributes["category"],
                    MedicalCategory(rawValue: category) != nil
                else { continue }
                stored[incident.description.lowercased(), default: [:]][category, default: 0] += 1
            }
        }
        let viewingCheck = Self.matchViewings(viewings, to: entries.map(\.1), stored: stored)
        mismatches += viewingCheck.mismatches

        // Every document: each version stored once at each hospital, and at the hospital the patient went to every
        // version from the first it got (the first version, or the latest at a divert) to the last the gateway built.
        var sent = 0
        var missing = 0
        let duplicates = receipts.values.map { $0.count - Set($0).count }.reduce(0, +)
        for (key, versions) in receipts where versions.count != Set(versions).count {
            mismatches.append(
                "a document set at hospital \(key.prefix(10)) has a version stored more than once: \(versions.sorted())"
            )
        }
        for outcome in outcomes {
            guard let set = outcome.documentSet, let latest = outcome.latestVersion, let hospital = outcome.hospital
            else { continue }
            let distinct = Set(receipts[hospital + " " + set] ?? [])
            let first = min(distinct.min() ?? 1, latest)
            sent += latest - first + 1
            let absent = (first...latest).filter { !distinct.contains($0) }
            missing += absent.count
            if !absent.isEmpty {
                mismatches.append(
                    "incident \(outcome.number): version(s) \(absent.map(String.init).joined(separator: ", ")) never stored"
                )
            }
        }
        for outcome in outcomes where outcome.summaryBeforeArrival != nil && outcome.documentSet == nil {
            mismatches.append("incident \(outcome.number): sent, but no hospital stored it")
        }
        return Reconciliation(
            viewings: viewingCheck.counts,
            documents: .init(
                sent: sent,
                stored: receipts.values.map(\.count).reduce(0, +),
                duplicates: duplicates,
                missing: missing
            ),
            vaultsEmpty: vaultsEmpty,
            auditsVerify: auditsVerify,
            mismatches: mismatches
        )
    }

    /// Matches onshi's sessions to the drill's incidents (the terminal, the incident's time, and the patient where
    /// onshi knows it), and each incident's categories stored by its gateway to successful fetches at onshi.
    ///
    /// Mismatches: a session no incident accounts for; a category stored without a fetch at onshi; a category onshi
    /// answered that the gateway never stored, in an incident without a fault. Counted, not mismatches: repeats (a
    /// stored category fetched again: a hedged or retried request) and answers lost, which onshi logged but the
    /// gateway never kept: lost to a fault (a dead zone, a reset, a kill), or come after the patient arrived for a
    /// category the tablet still showed as pending (dropped with the incident).
    static func matchViewings(
        _ viewings: [[String: Any]],
        to incidents: [IncidentDriver.LedgerEntry],
        stored: [String: [String: Int]]
    ) -> (counts: Reconciliation.Viewings, mismatches: [String]) {
        let formatter = ISO8601DateFormatter()
        var mismatches: [String] = []
        var fetched: [String: [String: Int]] = [:]
        var unaccounted = 0
        for viewing in viewings {
            let device = viewing["deviceID"] as? String ?? ""
            let patient = viewing["patientNumber"] as? Int
            let at = (viewing["at"] as? String).flatMap(formatter.date(from:)) ?? .distantPast
            // Onshi's times are whole seconds: a second of slack either side.
            guard
                let incident = incidents.first(where: {
                    $0.terminal == device && $0.from.addingTimeInterval(-1) <= at
                        && at <= $0.until.addingTimeInterval(1)
                        && (patient == nil || $0.holder == patient)
                }), let id = incident.incidentID?.lowercased()
            else {
                unaccounted += 1
                let method = viewing["method"] as? String ?? "?"
                let result = viewing["resultCode"] as? String ?? "?"
                mismatches.append(
                    "a session at onshi from \(device) (\(method), result \(result)) that no incident accounts for"
                )
                continue
            }
            for fetch in viewing["fetches"] as? [[String: Any]] ?? [] where fetch["resultCode"] as? String == "0000" {
                fetched[id, default: [:]][fetch["category"] as? String ?? "?", default: 0] += 1
            }
        }
        var counts = Reconciliation.Viewings(
            sessions: viewings.count,
            onshi: 0,
            gateways: 0,
            matched: 0,
            repeats: 0,
            answersLost: 0,
            unaccounted: unaccounted
        )
        for incident in incidents {
            guard let id = incident.incidentID?.lowercased() else { continue }
            let viewed = fetched[id] ?? [:]
            let kept = stored[id] ?? [:]
            for category in Set(viewed.keys).union(kept.keys).sorted() {
                let v = viewed[category] ?? 0
                let k = kept[category] ?? 0
                counts.onshi += v
                counts.gateways += k
                if k > 0, v > 0 {
                    counts.matched += k
                    counts.repeats += max(0, v - k)
                } else if k > 0 {
                    mismatches.append("\(incident.terminal): \(category) stored with no fetch at onshi")
                } else {
                    counts.answersLost += v
                    if !incident.faulted && !incident.unsettled.contains(category) {
                        mismatches.append(
                            "\(incident.terminal): \(category) answered by onshi, never stored, with no fault"
                        )
                    }
                }
            }
        }
        return (counts, mismatches)
    }
}
