public import Foundation
public import KyukyuCard
import KyukyuDomain
public import KyukyuVault

/// The vault as the workflow's store: every write durable, every read audited as a view by the crew member.
/// (``IncidentVault/createIncident(now:)`` is the vault's own.)
extension IncidentVault: IncidentStore {
    /// Stores a new version of `kind`.
    public func put(_ payload: Data, kind: RecordKind, incident: IncidentID, now: Date) async throws {
        _ = try await putRecord(incident: incident, kind: kind, payload: payload, now: now)
    }

    /// Stores the records and reads `readingBack` back in one transaction (one commit).
    public func put(
        _ records: [(kind: RecordKind, payload: Data)],
        readingBack: Set<RecordKind>,
        incident: IncidentID,
        viewer: CrewID,
        now: Date
    ) async throws -> [RecordKind: Data] {
        var latest: [RecordKind: Data] = [:]
        for record in try await putRecords(
            incident: incident,
            records,
            readingBack: readingBack,
            viewer: viewer,
            now: now
        ) {
            latest[record.kind] = record.payload
        }
        return latest
    }

    /// The latest version of every kind, audited as viewed by `viewer`.
    public func latest(incident: IncidentID, viewer: CrewID) async throws -> [RecordKind: Data] {
        var latest: [RecordKind: Data] = [:]
        for record in try await latestRecords(incident: incident, viewer: viewer) {
            latest[record.kind] = record.payload
        }
        return latest
    }

    /// The latest version of one kind, audited as viewed by `viewer`.
    public func latest(incident: IncidentID, kind: RecordKind, viewer: CrewID) async throws -> Data? {
        try await latestRecord(incident: incident, kind: kind, viewer: viewer)?.payload
    }

    /// The incidents held, oldest first.
    public func incidentIDs() async throws -> [IncidentID] {
        try await incidents().map(\.id)
    }

    /// Crypto-shreds the incident.
    public func shred(incident: IncidentID, reason: PurgeReason) async throws {
        _ = try await shred(incident: incident, reason: reason) as Bool
    }

    /// Appends to the audit trail.
    public func audit(_ event: AuditEvent) async throws {
        _ = try await audit.append(event)
    }

    /// The audit trail's signed head.
    public func auditHead() async throws -> AuditHead? {
        try await audit.head()
    }
}

/// The PC/SC reader as the workflow's card: one guarded session per call, released (and reset after a PIN) when
/// the body returns.
public struct ReaderCard: PatientCard {
    /// The card service.
    public let reader: CardReader
    /// The reader's name (or prefix); nil for the reader with a card.
    public let readerName: String?

    /// Wraps a reader.
    public init(reader: CardReader, readerName: String? = nil) {
        self.reader = reader
        self.readerName = readerName
    }

    /// Runs `body` on a session with the card on the reader.
    public func withCard<T: Sendable>(_ body: @Sendable (any CardAccess) async throws -> T) async throws -> T {
        try await reader.withSession(reader: readerName) { session in
            try await body(SessionAccess(session: session))
        }
    }
}

struct SessionAccess: CardAccess {
    let session: CardSession

    func tokenType() async throws -> TokenType { try await session.tokenType() }

    func triesLeft() async throws -> Int { try await session.triesLeft(.userAuthentication) ?? 0 }

    func verify(pin: String, confirmLastTry: Bool) async throws {
        try await session.verify(CardPIN(pin, kind: .userAuthentication), confirmLastTry: confirmLastTry)
    }

    func authenticationCertificate() async throws -> [UInt8] {
        try await session.readCertificateDER(.userAuthentication)
    }

    func signWithAuthenticationKey(sha256 digest: [UInt8]) async throws -> [UInt8] {
        try await session.signWithAuthenticationKey(sha256: digest)
    }
}
