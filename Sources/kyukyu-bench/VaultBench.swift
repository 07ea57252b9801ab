import Foundation
import GRDB
import Histogram
@_spi(Benchmarks) import KyukyuVault
import Logging

/// Figures for the encrypted incident vault: put and get of a 1 MB record, encrypted (the real vault:
/// AES-256-GCM under a per-incident data key, plus the audit entry in the same transaction) against a
/// like-for-like plain baseline (same schema, pragmas and transactions, the same audit entry appended in
/// the same transaction, the payload stored as is); and the time to purge 1,000 incidents.
struct VaultBenchmarkReport: Codable, Sendable, CustomStringConvertible {
    /// Latency distribution of one operation, in microseconds.
    struct Latency: Codable, Sendable {
        var samples: Int
        var p50Micros: UInt64
        var p99Micros: UInt64
        var maxMicros: UInt64
        var meanMicros: Double
    }

    var iterations: Int
    var payloadBytes: Int
    /// Creating an incident: fresh data key, wrapped, stored with its audit entry (one transaction).
    var createIncident: Latency
    var encryptedPut: Latency
    var plainPut: Latency
    var encryptedGet: Latency
    var plainGet: Latency
    /// Encrypted p50 divided by plain p50.
    var putRatioP50: Double
    /// Encrypted p50 divided by plain p50.
    var getRatioP50: Double
    /// The vault's AES-256-GCM seal of the record alone (no I/O, no audit), as the vault does it.
    var sealOnly: Latency
    /// The vault's AES-256-GCM open of the record alone.
    var openOnly: Latency
    /// (plain put p50 + seal p50) / plain put p50: the encryption's own cost relative to the plain write,
    /// without the fsync noise of comparing two separately measured disk writes.
    var sealCostRatio: Double
    var purgeIncidents: Int
    /// `purgeExpired` over all incidents at once (key, records, row per incident; one WAL truncation).
    var purgeExpiredMillis: Double
    /// Shredding the incidents one at a time as acknowledgements arrive (each with its WAL truncation).
    var shredOneByOne: Latency
    var shredOneByOneTotalMillis: Double
    /// `wipeAll` over all incidents (all keys in one transaction).
    var wipeMillis: Double

    var description: String {
        func row(_ name: String, _ latency: Latency) -> String {
            let padded = name.padding(toLength: 28, withPad: " ", startingAt: 0)
            return String(
                format: "%@ p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (n=%d)",
                padded,
                Double(latency.p50Micros) / 1000,
                Double(latency.p99Micros) / 1000,
                Double(latency.maxMicros) / 1000,
                latency.samples
            )
        }
        return [
            "vault: \(self.iterations) iterations, payload \(self.payloadBytes) bytes",
            row("create incident (key+audit)", self.createIncident),
            row("put encrypted+audited", self.encryptedPut),
            row("put plain", self.plainPut),
            String(format: "put ratio (p50)              %.2f×", self.putRatioP50),
            row("get encrypted+audited", self.encryptedGet),
            row("get plain", self.plainGet),
            String(format: "get ratio (p50)              %.2f×", self.getRatioP50),
            row("seal 1 MB only (no I/O)", self.sealOnly),
            row("open 1 MB only (no I/O)", self.openOnly),
            String(format: "(plain put + seal) / plain   %.2f×", self.sealCostRatio),
            String(format: "purgeExpired %d incidents    %.1f ms", self.purgeIncidents, self.purgeExpiredMillis),
            row("shred one by one", self.shredOneByOne),
            String(format: "shred %d one by one, total   %.1f ms", self.purgeIncidents, self.shredOneByOneTotalMillis),
            String(format: "wipeAll %d incidents         %.1f ms", self.purgeIncidents, self.wipeMillis),
        ].joined(separator: "\n")
    }
}

/// Runs the vault benchmark in a fresh folder under `stateDirectory` (removed afterwards).
///
/// - Parameters:
///   - iterations: measured put/get pairs per variant (after 3 warm-up pairs).
///   - stateDirectory: where the temporary databases go; use the device's real storage for real figures.
///   - purgeIncidents: incidents created for each purge measurement (default 1,000).
func runVaultBenchmark(
    iterations: Int,
    stateDirectory: String,
    purgeIncidents: Int = 1000
) async throws -> VaultBenchmarkReport {
    let root = stateDirectory + "/vault-bench-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(
        atPath: root + "/plain",
        withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700]
    )
    defer { try? FileManager.default.removeItem(atPath: root) }
    var logger = Logger(label: "kyukyu.bench.vault")
    logger.logLevel = .warning

    let vault = try await IncidentVault.open(
        stateDirectory: root + "/encrypted",
        keyProvider: InMemoryKeyProvider(),
        logger: logger
    )
    let plain = try VaultDatabase.openPool(path: root + "/plain/" + VaultDatabase.fileName)
    // The baseline's own audit trail: the plain put and get append the same entries as the vault does, in
    // the same transaction, so the ratio measures the encryption (and its key handling) only.
    let plainAudit = AuditTrail(database: plain, keyring: .generate(), logger: logger)
    let crew = CrewID("bench-crew")!
    let payloadBytes = 1 << 20
    var generator = SystemRandomNumberGenerator()
    let payload = Data((0..<payloadBytes).map { _ in UInt8.random(in: 0...255, using: &generator) })

    var encryptedPut = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var plainPut = encryptedPut
    var encryptedGet = encryptedPut
    var createIncident = encryptedPut
    var plainGet = encryptedPut
    let clock = ContinuousClock()
    func micros(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000 + UInt64(max(0, attoseconds)) / 1_000_000_000_000
    }

    for round in 0..<(iterations + 3) {
        let record = round >= 3
        // The real vault: a fresh incident (its data key is created and wrapped, untimed), then one
        // sealed 1 MB record with its audit entry in the same transaction (timed).
        var start = clock.now
        let incident = try await vault.createIncident()
        if record { _ = createIncident.record(micros(clock.now - start)) }
        start = clock.now
        try await vault.putRecord(incident: incident, kind: .medications, payload: payload)
        if record { _ = encryptedPut.record(micros(clock.now - start)) }
        start = clock.now
        let read = try await vault.latestRecord(incident: incident, kind: .medications, viewer: crew)
        if record { _ = encryptedGet.record(micros(clock.now - start)) }
        precondition(read?.payload.count == payloadBytes)

        // Like for like: the same schema and pragmas, one write transaction per put and per get, each
        // with the same audit entry as the vault's; only the payload is stored as is.
        let plainIncident = IncidentID()
        let id = plainIncident.description
        try await plain.write { db in
            let now = Date().timeIntervalSince1970
            try db.execute(
                sql: "INSERT INTO incident (id, created_at, expires_at) VALUES (?, ?, ?)",
                arguments: [id, now, now + 86400]
            )
        }
        start = clock.now
        try await plain.write { db in
            let version =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COALESCE(MAX(version), 0) + 1 FROM record WHERE incident_id = ? AND kind = ?",
                    arguments: [id, RecordKind.medications.rawValue]
                ) ?? 1
            try db.execute(
                sql: """
                    INSERT INTO record (incident_id, kind, version, stored_at, sealed)
                    VALUES (?, 'medications', ?, ?, ?)
                    """,
                arguments: [id, version, Date().timeIntervalSince1970, payload]
            )
            try plainAudit.append(
                .categoryFetched(incident: plainIncident, category: .medications, version: version),
                in: db
            )
        }
        if record { _ = plainPut.record(micros(clock.now - start)) }
        start = clock.now
        let plainRead = try await plain.write { db in
            let data = try Data.fetchOne(
                db,
                sql: "SELECT sealed FROM record WHERE incident_id = ? AND kind = 'medications'",
                arguments: [id]
            )
            try plainAudit.append(.categoryViewed(incident: plainIncident, category: .medications, by: crew), in: db)
            return data
        }
        if record { _ = plainGet.record(micros(clock.now - start)) }
        precondition(plainRead?.count == payloadBytes)
    }
    _ = try await vault.wipeAll(actor: "bench")
    try await plain.write { db in try db.execute(sql: "DELETE FROM record; DELETE FROM incident") }
    var sealOnly = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var openOnly = sealOnly
    for round in 0..<(iterations + 3) {
        let (seal, open) = try IncidentVault.measureRecordCrypto(payload: payload)
        if round >= 3 {
            _ = sealOnly.record(micros(seal))
            _ = openOnly.record(micros(open))
        }
    }

    // Purge: small incidents (a 4 KB record each), as after a shift.
    let small = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })
    func populate() async throws -> [IncidentID] {
        var ids: [IncidentID] = []
        for _ in 0..<purgeIncidents {
            let id = try await vault.createIncident(now: Date().addingTimeInterval(-2 * 86400))
            try await vault.putRecord(incident: id, kind: .patient, payload: small)
            ids.append(id)
        }
        return ids
    }
    _ = try await populate()
    var start = clock.now
    let purged = try await vault.purgeExpired(now: Date())
    let purgeExpiredMillis = Double(micros(clock.now - start)) / 1000
    precondition(purged.count == purgeIncidents)

    var shred = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    let toShred = try await populate()
    start = clock.now
    for id in toShred {
        let one = clock.now
        try await vault.shred(incident: id, reason: .acknowledged)
        _ = shred.record(micros(clock.now - one))
    }
    let shredTotalMillis = Double(micros(clock.now - start)) / 1000

    _ = try await populate()
    start = clock.now
    let wiped = try await vault.wipeAll(actor: "bench")
    let wipeMillis = Double(micros(clock.now - start)) / 1000
    precondition(wiped.count == purgeIncidents)

    func latency(_ histogram: Histogram<UInt64>) -> VaultBenchmarkReport.Latency {
        VaultBenchmarkReport.Latency(
            samples: Int(histogram.totalCount),
            p50Micros: histogram.valueAtPercentile(50),
            p99Micros: histogram.valueAtPercentile(99),
            maxMicros: histogram.max,
            meanMicros: histogram.mean
        )
    }
    let report = VaultBenchmarkReport(
        iterations: iterations,
        payloadBytes: payloadBytes,
        createIncident: latency(createIncident),
        encryptedPut: latency(encryptedPut),
        plainPut: latency(plainPut),
        encryptedGet: latency(encryptedGet),
        plainGet: latency(plainGet),
        putRatioP50: Double(encryptedPut.valueAtPercentile(50)) / Double(max(1, plainPut.valueAtPercentile(50))),
        getRatioP50: Double(encryptedGet.valueAtPercentile(50)) / Double(max(1, plainGet.valueAtPercentile(50))),
        sealOnly: latency(sealOnly),
        openOnly: latency(openOnly),
        sealCostRatio: Double(plainPut.valueAtPercentile(50) + sealOnly.valueAtPercentile(50))
            / Double(max(1, plainPut.valueAtPercentile(50))),
        purgeIncidents: purgeIncidents,
        purgeExpiredMillis: purgeExpiredMillis,
        shredOneByOne: latency(shred),
        shredOneByOneTotalMillis: shredTotalMillis,
        wipeMillis: wipeMillis
    )
    return report
}
