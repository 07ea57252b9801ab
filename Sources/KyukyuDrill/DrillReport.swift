import Foundation

/// What one incident of the drill came to: the report's per-incident record (format `kyukyu-drill/1`).
public struct IncidentOutcome: Sendable, Codable, Hashable {
    /// One event on the incident's field timeline.
    public struct Event: Sendable, Codable, Hashable {
        /// Its name (dispatched, on-scene, consent, card-touched, summary, depart-scene, sent, received,
        /// acknowledged, diverted, arrival, closed, gateway-killed, gateway-back, dead-zone-start, dead-zone-end).
        public var event: String
        /// Seconds from dispatch, in field time: people's and vehicles' time from the plan, machines' as measured.
        public var at: Double
    }

    /// One category as the tablet showed it at the end.
    public struct Category: Sendable, Codable, Hashable {
        /// arrived, none-on-record, late, timed-out, failed, not-fetched.
        public var state: String
        /// Milliseconds from the start of the fetch, as the gateway measured them.
        public var ms: Double?
    }

    /// 1-based.
    public var number: Int
    /// The ambulance's terminal ID.
    public var ambulance: String
    /// The hospital the patient went to, or nil.
    public var hospital: String?
    /// The main cause.
    public var cause: String
    /// Every condition applied.
    public var conditions: [String]
    /// Whether the data-obtained goal counts it.
    public var eligible: Bool
    /// Whether data reached the tablet before arrival at the hospital.
    public var dataObtained: Bool
    /// How the patient was identified, or nil.
    public var identification: String?
    /// Whether the document was stored at the hospital before arrival (nil when none was sent).
    public var summaryBeforeArrival: Bool?
    /// Taps from the card (or the lookup) to the summary: consent, PIN, lookup, activate.
    public var taps: Int?
    /// Field seconds from arrival on scene to the summary on the tablet.
    public var sceneToSummarySeconds: Double?
    /// Milliseconds from the tap on "send" to the first version stored at the hospital.
    public var deliveryLatencyMs: Double?
    /// The field timeline.
    public var timeline: [Event]
    /// Per category.
    public var categories: [String: Category]
    /// What went wrong beyond the scenario's plan (never patient data).
    public var problems: [String]
    /// The document set, for the reconciliation (not shown).
    public var documentSet: String?
    /// The versions the gateway built, for the reconciliation.
    public var latestVersion: Int?
    /// Whether the network was in coverage at some moment before arrival (for the before-arrival goal).
    public var coverage: Bool
}

/// The reconciliation of the three ledgers.
public struct Reconciliation: Sendable, Codable, Hashable {
    /// Viewings.
    public struct Viewings: Sendable, Codable, Hashable {
        /// Sessions in onshi's viewing log (a card or a lookup each).
        public var sessions: Int
        /// Successful category fetches in onshi's viewing log.
        public var onshi: Int
        /// Categories stored in the gateways' audit trails.
        public var gateways: Int
        /// Stored categories backed by a fetch at onshi in the same incident.
        public var matched: Int
        /// Stored categories fetched again (a hedged or retried request).
        public var repeats: Int
        /// Categories onshi answered and the gateway never stored, in incidents with a fault.
        public var answersLost: Int
        /// Sessions at onshi that no incident accounts for.
        public var unaccounted: Int
    }

    /// Documents.
    public struct Documents: Sendable, Codable, Hashable {
        /// Document versions the gateways built and sent.
        public var sent: Int
        /// Versions stored at the hospitals.
        public var stored: Int
        /// Versions stored more than once.
        public var duplicates: Int
        /// Versions sent and never stored.
        public var missing: Int
    }

    /// Viewings.
    public var viewings: Viewings
    /// Documents.
    public var documents: Documents
    /// Whether every gateway's vault was empty at the end of the shift.
    public var vaultsEmpty: Bool
    /// Whether every gateway's audit trail verified.
    public var auditsVerify: Bool
    /// Every mismatch, in words (no patient data).
    public var mismatches: [String]
}

/// The drill's report (`report.json`, format `kyukyu-drill/1`); scripts/drill-report.py renders it as HTML.
public struct DrillReport: Sendable, Codable {
    /// A goal the report checks.
    public struct Goal: Sendable, Codable, Hashable {
        /// Its identifier.
        public var id: String
        /// What it says.
        public var text: String
        /// The target.
        public var target: String
        /// What the drill reached.
        public var value: String
        /// Whether it was met.
        public var met: Bool
    }

    /// The scenario's headline.
    public struct ScenarioInfo: Sendable, Codable {
        /// The name.
        public var name: String
        /// The description.
        public var description: String
        /// Ambulances.
        public var ambulances: Int
        /// Hospitals.
        public var hospitals: Int
        /// Incidents.
        public var incidents: Int
        /// The compression.
        public var compression: Double
        /// The seed.
        public var seed: UInt64
    }

    /// Percentiles of a sample.
    public struct Percentiles: Sendable, Codable {
        /// Median.
        public var p50: Double?
        /// 90th.
        public var p90: Double?
        /// 99th.
        public var p99: Double?
        /// Largest.
        public var max: Double?
        /// Sample size.
        public var n: Int

        init(_ values: [Double]) {
            let sorted = values.sorted()
            func at(_ q: Double) -> Double? {
                guard !sorted.isEmpty else { return nil }
                let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
                return sorted[Swift.min(sorted.count - 1, Swift.max(0, rank))]
            }
            self.p50 = at(0.5)
            self.p90 = at(0.9)
            self.p99 = at(0.99)
            self.max = sorted.last
            self.n = sorted.count
        }
    }

    /// Incidents and data obtained, per cause.
    public struct CauseCount: Sendable, Codable {
        /// Incidents.
        public var incidents: Int
        /// With data.
        public var dataObtained: Int
    }

    /// Per category.
    public struct CategoryCount: Sendable, Codable {
        /// Arrived.
        public var arrived = 0
        /// None on record.
        public var noneOnRecord = 0
        /// Late.
        public var late = 0
        /// Timed out.
        public var timedOut = 0
        /// Failed.
        public var failed = 0
        /// Median ms.
        public var p50Ms: Double?
        /// 90th percentile ms.
        public var p90Ms: Double?
    }

    /// Taps.
    public struct Taps: Sendable, Codable {
        /// Most.
        public var max: Int?
        /// Mean.
        public var mean: Double?
        /// Incidents per tap count.
        public var histogram: [String: Int]
    }

    /// The figures over the whole shift.
    public struct Summary: Sendable, Codable {
        /// Incidents with data, of all.
        public var dataObtainedPercent: Double
        /// Eligible incidents.
        public var eligible: Int
        /// Incidents with data, of the eligible ones.
        public var eligibleObtainedPercent: Double?
        /// Per cause.
        public var byCause: [String: CauseCount]
        /// Scene to summary.
        public var sceneToSummarySeconds: Percentiles
        /// Documents at the hospital before arrival, of those sent while in coverage.
        public var beforeArrivalPercent: Double?
        /// Sent while in coverage.
        public var sent: Int
        /// Of those, stored before arrival.
        public var beforeArrival: Int
        /// Taps.
        public var taps: Taps
        /// Delivery latency.
        public var deliveryLatencyMs: Percentiles
        /// Per category.
        public var categoryArrival: [String: CategoryCount]
    }

    /// The national figure the survey found.
    public struct National: Sendable, Codable {
        /// Percent of attempts that got data.
        public var dataObtainedPercent: Double
        /// Where it comes from.
        public var source: String
    }

    /// Always `kyukyu-drill/1`.
    public var format = "kyukyu-drill/1"
    /// The scenario.
    public var scenario: ScenarioInfo
    /// When the shift started.
    public var startedAt: Date
    /// How long the drill took.
    public var wallSeconds: Double
    /// The national figure.
    public var national = National(
        dataObtainedPercent: 17.4,
        source: "national survey week, December 2025 (attempts that got data)"
    )
    /// Every incident.
    public var incidents: [IncidentOutcome]
    /// The figures.
    public var summary: Summary
    /// The goals.
    public var goals: [Goal]
    /// The ledgers.
    public var reconciliation: Reconciliation
    /// Whether every goal was met and the ledgers reconcile.
    public var ok: Bool

    /// Computes the figures and checks the goals.
    public init(
        scenario: DrillScenario,
        startedAt: Date,
        wallSeconds: Double,
        incidents: [IncidentOutcome],
        reconciliation: Reconciliation
    ) {
        self.scenario = ScenarioInfo(
            name: scenario.name,
            description: scenario.description,
            ambulances: scenario.ambulances,
            hospitals: scenario.hospitals,
            incidents: scenario.incidents,
            compression: scenario.compression,
            seed: scenario.seed
        )
        self.startedAt = startedAt
        self.wallSeconds = wallSeconds
        self.incidents = incidents
        self.reconciliation = reconciliation
        let summary = Self.summarize(incidents)
        self.summary = summary
        self.goals = Self.goals(summary, incidents)
        self.ok = goals.allSatisfy(\.met) && reconciliation.mismatches.isEmpty
    }

    static func percent(_ part: Int, _ whole: Int) -> Double? {
        whole == 0 ? nil : (Double(part) * 1000 / Double(whole)).rounded() / 10
    }

    static func summarize(_ incidents: [IncidentOutcome]) -> Summary {
        var byCause: [String: CauseCount] = [:]
        for incident in incidents {
            byCause[incident.cause, default: CauseCount(incidents: 0, dataObtained: 0)].incidents += 1
            if incident.dataObtained { byCause[incident.cause]!.dataObtained += 1 }
        }
        let eligible = incidents.filter(\.eligible)
        let sent = incidents.filter { $0.summaryBeforeArrival != nil && $0.coverage }
        let taps = incidents.compactMap(\.taps)
        var histogram: [String: Int] = [:]
        for tap in taps { histogram[String(tap), default: 0] += 1 }
        var categories: [String: CategoryCount] = [:]
        var times: [String: [Double]] = [:]
        for incident in incidents {
            for (name, category) in incident.categories {
                var count = categories[name] ?? CategoryCount()
                switch category.state {
                case "arrived": count.arrived += 1
                case "none-on-record": count.noneOnRecord += 1
                case "late": count.late += 1
                case "timed-out": count.timedOut += 1
                case "failed": count.failed += 1
                default: break
                }
                categories[name] = count
                if let ms = category.ms, ["arrived", "none-on-record", "late"].contains(category.state) {
                    times[name, default: []].append(ms)
                }
            }
        }
        for (name, values) in times {
            let percentiles = Percentiles(values)
            categories[name]?.p50Ms = percentiles.p50
            categories[name]?.p90Ms = percentiles.p90
        }
        return Summary(
            dataObtainedPercent: percent(incidents.filter(\.dataObtained).count, incidents.count) ?? 0,
            eligible: eligible.count,
            eligibleObtainedPercent: percent(eligible.filter(\.dataObtained).count, eligible.count),
            byCause: byCause,
            sceneToSummarySeconds: Percentiles(incidents.compactMap(\.sceneToSummarySeconds)),
            beforeArrivalPercent: percent(sent.filter { $0.summaryBeforeArrival == true }.count, sent.count),
            sent: sent.count,
            beforeArrival: sent.filter { $0.summaryBeforeArrival == true }.count,
            taps: Taps(
                max: taps.max(),
                mean: taps.isEmpty ? nil : Double(taps.reduce(0, +)) / Double(taps.count),
                histogram: histogram
            ),
            deliveryLatencyMs: Percentiles(incidents.compactMap(\.deliveryLatencyMs)),
            categoryArrival: categories
        )
    }

    static func goals(_ summary: Summary, _ incidents: [IncidentOutcome]) -> [Goal] {
        let eligible = incidents.filter(\.eligible)
        let obtained = eligible.filter(\.dataObtained).count
        let tapsMax = summary.taps.max ?? 0
        return [
            Goal(
                id: "data-obtained",
                text: "Data obtained where a card or the four fields exist and the network is up before arrival",
                target: "100 %",
                value:
                    "\(summary.eligibleObtainedPercent.map { "\($0) %" } ?? "n/a") (\(obtained) of \(eligible.count))",
                met: obtained == eligible.count
            ),
            Goal(
                id: "before-arrival",
                text: "Summary at the hospital before the patient arrives",
                target: "≥ 99 %",
                value:
                    "\(summary.beforeArrivalPercent.map { "\($0) %" } ?? "n/a") (\(summary.beforeArrival) of \(summary.sent))",
                met: summary.beforeArrival * 100 >= 99 * summary.sent
            ),
            Goal(
                id: "taps",
                text: "Taps from card to summary",
                target: "≤ 2",
                value: "at most \(tapsMax)",
                met: tapsMax <= 2
            ),
        ]
    }
}
