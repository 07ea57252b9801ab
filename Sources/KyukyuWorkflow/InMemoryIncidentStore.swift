public import Foundation
public import KyukyuVault

/// An in-memory ``IncidentStore`` for unit tests and drills' dry runs: records and audit events in a dictionary,
/// nothing encrypted, nothing on disk. The service uses ``IncidentVault``.
public actor InMemoryIncidentStore: IncidentStore {
    private var incidents: [IncidentID: [RecordKind: [Data]]] = [:]
    private var created: [IncidentID: Date] = [:]
    /// Every audit event, in order.
    public private(set) var auditTrail: [AuditEvent] = []
    /// The incidents shredded, with the reason.
    public private(set) var shredded: [(IncidentID, PurgeReason)] = []
    private var failingWrites = false

    /// An empty store.
    public init() {}

    /// Makes every following write fail (a full disk), or work again.
    public func setFailingWrites(_ failing: Bool) { failingWrites = failing }

    /// Opens an incident.
    public func createIncident(now: Date) async throws -> IncidentID {
        let id = IncidentID()
        incidents[id] = [:]
        created[id] = now
        return id
    }

    /// Stores a version.
    public func put(_ payload: Data, kind: RecordKind, incident: IncidentID, now: Date) async throws {
        guard !failingWrites else { throw CocoaError(.fileWriteOutOfSpace) }
        guard incidents[incident] != nil else { throw CocoaError(.fileNoSuchFile) }
        incidents[incident]?[kind, default: []].append(payload)
    }

    /// Stores the versions, all or none, and returns the latest of each kind in `readingBack`.
    public func put(
        _ records: [(kind: RecordKind, payload: Data)],
        readingBack: Set<RecordKind>,
        incident: IncidentID,
        viewer: CrewID,
        now: Date
    ) async throws -> [RecordKind: Data] {
        guard !failingWrites else { throw CocoaError(.fileWriteOutOfSpace) }
        guard incidents[incident] != nil else { throw CocoaError(.fileNoSuchFile) }
        batches += 1
        for record in records { incidents[incident]?[record.kind, default: []].append(record.payload) }
        var latest: [RecordKind: Data] = [:]
        for kind in readingBack { latest[kind] = incidents[incident]?[kind]?.last }
        return latest
    }

    /// How many multi-record writes (``put(_:readingBack:incident:viewer:now:)``) were made.
    public private(set) var batches = 0

    /// The latest version of each kind.
    public func latest(incident: IncidentID, viewer: CrewID) async throws -> [RecordKind: Data] {
        guard let records = incidents[incident] else { throw CocoaError(.fileNoSuchFile) }
        return records.compactMapValues(\.last)
    }

    /// How many reads of one kind (``latest(incident:kind:viewer:)``) were made: each is a view the vault audits.
    public private(set) var singleKindReads = 0

    /// The latest version of one kind.
    public func latest(incident: IncidentID, kind: RecordKind, viewer: CrewID) async throws -> Data? {
        singleKindReads += 1
        guard let records = incidents[incident] else { throw CocoaError(.fileNoSuchFile) }
        return records[kind]?.last
    }

    /// Every version of `kind`, oldest first.
    public func versions(of kind: RecordKind, incident: IncidentID) -> [Data] {
        incidents[incident]?[kind] ?? []
    }

    /// The incidents held, oldest first.
    public func incidentIDs() async throws -> [IncidentID] {
        created.sorted { $0.value < $1.value }.map(\.key)
    }

    /// Forgets the incident. Like the vault (GRDB's async writes), it refuses to write for a cancelled task.
    public func shred(incident: IncidentID, reason: PurgeReason) async throws {
        try Task.checkCancellation()
        incidents[incident] = nil
        created[incident] = nil
        shredded.append((incident, reason))
    }

    /// Appends to the audit list; like the vault, not for a cancelled task.
    public func audit(_ event: AuditEvent) async throws {
        try Task.checkCancellation()
        auditTrail.append(event)
    }

    /// No signed trail in memory.
    public func auditHead() async throws -> AuditHead? { nil }
}
