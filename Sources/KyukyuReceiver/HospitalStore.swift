import Crypto
public import Foundation
public import KyukyuDomain
public import KyukyuVault
public import Logging

/// The receiver's store: tenancy and sealing over one of two engines.
///
/// - **SQLite** (``open(path:hospital:keyProvider:commitBatch:logger:)``): one hospital's receiver, a file in its state
///   folder; the default.
/// - **PostgreSQL** (``open(postgres:keyProvider:logger:)``): a region's hub, where many stateless instances share one
///   database; each instance hears the others' events through `LISTEN`/`NOTIFY`.
///
/// Both run the same migrations in their own dialect and pass the same tests. Every document version and every staff
/// note is sealed with AES-GCM under its hospital's own key (``DocumentSealer``) before it reaches the engine; the
/// plaintext columns hold only non-patient metadata: hospital codes, the random set and version identifiers, version
/// numbers, SHA-256s, sender devices, times and statuses. Intake is idempotent through a UNIQUE constraint on the
/// version identifier, so two identical posts at once, to one instance or to two, store one row.
public final class HospitalStore: Sendable {
    /// The SQLite database's file name in the state folder.
    public static let fileName = "hospital.sqlite"

    let storage: any HospitalStorage
    let sealer: DocumentSealer
    private let logger: Logger
    /// Where the data lives: the SQLite file's path, or the PostgreSQL server (without its password).
    public let location: String

    /// The engine: `sqlite` or `postgresql`.
    public var engine: String { storage.engine }

    init(storage: any HospitalStorage, keyring: DeviceKeyring, location: String, logger: Logger) {
        self.storage = storage
        self.sealer = DocumentSealer(keyring: keyring)
        self.location = location
        self.logger = logger
    }

    /// Opens (creating if missing, mode 0600 in a 0700 folder) the SQLite store at `path`, sealing with
    /// `keyProvider`'s keyring (created on first start by a ``KyukyuVault/KeyFileProvider``). Blocking: call at
    /// start-up.
    ///
    /// - Parameters:
    ///   - hospital: This receiver's hospital: the rows stored before tenancy (release 11 and earlier) are its. Nil
    ///     refuses (``ReceiverError/Code/invalidInput``) a database that holds such rows and was not upgraded yet.
    ///   - commitBatch: The most documents stored in one transaction when many arrive at once (group commit); 1
    ///     stores each in its own transaction (the benchmark's comparison).
    public static func open(
        path: String,
        hospital: HospitalCode?,
        keyProvider: any DeviceKeyProvider,
        commitBatch: Int = 256,
        logger: Logger
    ) throws(ReceiverError) -> HospitalStore {
        let keyring = try loadKeyring(keyProvider)
        let storage = try SQLiteStorage.open(path: path, hospital: hospital, commitBatch: commitBatch)
        return HospitalStore(storage: storage, keyring: keyring, location: path, logger: logger)
    }

    /// Opens the PostgreSQL store and migrates it (one instance at a time, under an advisory lock), sealing with
    /// `keyProvider`'s keyring: every instance of a region has the same keyring, and the database never sees it.
    /// The connections run in ``run(publishing:)``; until then only the migration's own connection is used.
    public static func open(
        postgres settings: PostgresSettings,
        keyProvider: any DeviceKeyProvider,
        logger: Logger
    ) async throws(ReceiverError) -> HospitalStore {
        let keyring = try loadKeyring(keyProvider)
        let storage = try await PostgresStorage.open(settings, logger: logger)
        return HospitalStore(storage: storage, keyring: keyring, location: settings.description, logger: logger)
    }

    private static func loadKeyring(_ provider: any DeviceKeyProvider) throws(ReceiverError) -> DeviceKeyring {
        do {
            return try provider.loadKeyring()
        } catch let error as VaultError {
            throw .storage("the device keyring cannot be loaded: \(error.reason)")
        } catch {
            throw .storage("the device keyring cannot be loaded")
        }
    }

    // MARK: - Devices

    /// Records a device whose certificate was just issued (again: clears a revocation).
    public func registerDevice(_ id: String, at: Date = Date()) async throws(ReceiverError) {
        try await storage.registerDevice(id, at: StorageTime.ms(at))
    }

    /// Revokes a device: its posts and streams are refused (403) from now on.
    public func revokeDevice(_ id: String, at: Date = Date()) async throws(ReceiverError) {
        guard try await storage.revokeDevice(id, at: StorageTime.ms(at)) else { throw .notFound("no device \(id)") }
    }

    /// The device, if known.
    public func device(_ id: String) async throws(ReceiverError) -> DeviceRecord? { try await storage.device(id) }

    /// Every known device.
    public func devices() async throws(ReceiverError) -> [DeviceRecord] { try await storage.devices() }

    // MARK: - Intake

    /// Stores a validated version at its destination hospital: a new row (with its `received` event and its audit
    /// anchor) the first time, a resend when the same key arrives with the same SHA-256,
    /// ``ReceiverError/Code/conflict`` when it arrives with other bytes (or another key claims a stored set and
    /// version), ``ReceiverError/Code/forbidden`` when the set belongs to another device.
    public func intake(
        _ info: ValidatedDocumentInfo,
        body: Data,
        device: String,
        at: Date
    ) async throws(ReceiverError) -> IntakeOutcome {
        let hospital = info.destination.rawValue
        let (keyID, sealed) = try sealer.sealDocument(
            body,
            hospital: hospital,
            versionIdentifier: info.versionIdentifier
        )
        let row = IntakeRow(
            hospital: hospital,
            set: Self.text(info.documentSet),
            version: info.version,
            versionIdentifier: info.versionIdentifier,
            bundleID: info.bundleID,
            builtAt: StorageTime.ms(info.timestamp),
            sha: Self.hex(SHA256.hash(data: body)),
            keyID: keyID,
            sealing: DocumentSealer.currentSealing,
            sealed: sealed,
            device: device,
            at: StorageTime.ms(at),
            anchor: info.auditAnchor
        )
        switch await storage.intake(row) {
        case .success(.created(let version, let event)):
            return .created(try Self.version(version), try self.event(event))
        case .success(.resent(let stored)): return .resent(try Self.version(stored))
        case .failure(let error): throw error
        }
    }

    // MARK: - Status changes

    /// Who changes a status.
    public enum Actor: Sendable, Hashable {
        /// Staff on the board.
        case staff
        /// The device that sends the set (withdraw).
        case device(String)
    }

    /// Moves the set at `hospital` to `status` and records the event. The same status again changes nothing (nil
    /// event). Refused (``ReceiverError/Code/conflict``) from a closed set, or a staff action after a divert; a device
    /// may only withdraw its own sets (``ReceiverError/Code/notFound`` otherwise).
    ///
    /// A device's withdrawal may leave `hospital` out when the set is at one hospital only (the receivers before
    /// tenancy knew one hospital); staff always name theirs.
    public func transition(
        _ documentSet: UUID,
        at hospital: HospitalCode?,
        to status: HandoffStatus,
        reason: String?,
        note: String?,
        by actor: Actor,
        at time: Date
    ) async throws(ReceiverError) -> (DocumentSetSummary, HandoffEvent?) {
        let set = Self.text(documentSet)
        let code: String
        if let hospital {
            code = hospital.rawValue
        } else {
            let holding = try await storage.hospitals(holding: set)
            guard let only = holding.first else { throw .notFound("no such document set") }
            guard holding.count == 1 else {
                throw .invalidInput("hospital: this document set was sent to several hospitals; name one")
            }
            code = only
        }
        let change = StatusChange(
            hospital: code,
            set: set,
            status: status,
            reason: reason,
            noteSealed: try note.map { note throws(ReceiverError) in
                try sealer.sealNote(note, hospital: code, set: set)
            },
            actor: actor,
            at: StorageTime.ms(time)
        )
        switch try await storage.transition(change) {
        case .done(let row, let event):
            let summary = try summary(row)
            guard let event else { return (summary, nil) }
            return (summary, try self.event(event))
        case .notFound: throw .notFound("no such document set")
        case .conflict(let reason): throw .conflict(reason)
        }
    }

    // MARK: - Reading

    /// The device's events after `sequence`; with `nil`, every event of its sets that are not closed, and of sets
    /// closed within `closedWithin` (so that a gateway that lost its place still learns of an arrival). Every
    /// hospital's: the events name theirs.
    public func events(
        device: String,
        after sequence: Int64?,
        closedWithin: TimeInterval = 24 * 3600,
        now: Date = Date()
    ) async throws(ReceiverError) -> [HandoffEvent] {
        let rows =
            if let sequence {
                try await storage.events(device: device, after: sequence)
            } else {
                try await storage.events(
                    device: device,
                    openOrClosedSince: StorageTime.ms(now.addingTimeInterval(-closedWithin))
                )
            }
        return try rows.map { row throws(ReceiverError) in try event(row) }
    }

    /// One hospital's events after its board position `position`.
    public func boardEvents(hospital: HospitalCode, after position: Int64) async throws(ReceiverError)
        -> [HandoffEvent]
    {
        try await storage.boardEvents(hospital: hospital.rawValue, after: position).map {
            row throws(ReceiverError) in try event(row)
        }
    }

    /// Every event of one set at one hospital, in order (the board's timeline).
    public func events(of documentSet: UUID, at hospital: HospitalCode) async throws(ReceiverError) -> [HandoffEvent] {
        try await storage.events(hospital: hospital.rawValue, set: Self.text(documentSet)).map {
            row throws(ReceiverError) in try event(row)
        }
    }

    /// The events with these storage ids (what another instance's notification names).
    func events(ids: [Int64]) async throws(ReceiverError) -> [HandoffEvent] {
        try await storage.events(ids: ids).map { row throws(ReceiverError) in try event(row) }
    }

    /// One hospital's sets that are not closed, newest first (every hospital's with `nil`: the operator's view).
    public func openSets(at hospital: HospitalCode?) async throws(ReceiverError) -> [DocumentSetSummary] {
        try await storage.openSets(hospital: hospital?.rawValue).map { row throws(ReceiverError) in try summary(row) }
    }

    /// One set at one hospital (nil when that hospital has no such set, whatever others hold).
    public func set(_ documentSet: UUID, at hospital: HospitalCode) async throws(ReceiverError) -> DocumentSetSummary? {
        try await storage.set(hospital: hospital.rawValue, set: Self.text(documentSet)).map {
            row throws(ReceiverError) in try summary(row)
        }
    }

    /// Every stored version of a set at one hospital, oldest first.
    public func versions(of documentSet: UUID, at hospital: HospitalCode) async throws(ReceiverError)
        -> [StoredVersion]
    {
        try await storage.versions(hospital: hospital.rawValue, set: Self.text(documentSet)).map {
            row throws(ReceiverError) in try Self.version(row)
        }
    }

    /// The decrypted bytes of one version, exactly as posted; ``ReceiverError/Code/notFound`` when it is not
    /// `hospital`'s.
    public func document(versionIdentifier: String, at hospital: HospitalCode) async throws(ReceiverError) -> Data {
        guard let row = try await storage.sealedDocument(versionIdentifier: versionIdentifier),
            row.version.hospital == hospital.rawValue
        else { throw .notFound("no such document version") }
        return try open(row)
    }

    /// Every stored version with its decrypted bytes, in the order they arrived (for `export`); one hospital's, or
    /// every hospital's with `nil`.
    public func forEachDocument(
        at hospital: HospitalCode? = nil,
        _ body: (StoredVersion, Data) throws -> Void
    ) async throws(ReceiverError) {
        for row in try await storage.sealedDocuments(hospital: hospital?.rawValue) {
            let data = try open(row)
            do {
                try body(try Self.version(row.version), data)
            } catch let error as ReceiverError {
                throw error
            } catch {
                throw .storage("cannot export: \(error)")
            }
        }
    }

    /// The audit anchors received from `device` (every device when nil), by sequence.
    public func anchors(device: String?) async throws(ReceiverError) -> [StoredAnchor] {
        try await storage.anchors(device: device)
    }

    // MARK: - Lifecycle

    /// Runs the engine until the task is cancelled: PostgreSQL's listener, which hands what other instances commit
    /// (events, placement events, publications) to `publishing`; nothing to run for SQLite.
    public func run(publishing: @escaping @Sendable (StreamEvent) async -> Void) async throws {
        try await storage.run { notices in
            do throws(ReceiverError) {
                for event in try await self.streamEvents(notices) { await publishing(event) }
            } catch {
                self.logger.error(
                    "what another instance announced cannot be read",
                    metadata: ["kyukyu.error": "\(error.code)"]
                )
            }
        }
    }

    /// Moves SQLite's WAL into the database and truncates it (at shutdown); nothing for PostgreSQL.
    public func checkpoint() async { await storage.checkpoint() }

    /// Closes the store.
    public func close() async throws(ReceiverError) { try await storage.close() }

    // MARK: - Rows

    private func open(_ row: SealedDocumentRow) throws(ReceiverError) -> Data {
        do {
            return try sealer.openDocument(row)
        } catch {
            logger.error("a stored document cannot be opened", metadata: ["kyukyu.error": "\(type(of: error))"])
            throw .storage("a stored document cannot be opened (another keyring, or a damaged row)")
        }
    }

    private func note(_ data: Data?, sealing: Int, hospital: String, set: String) throws(ReceiverError) -> String? {
        do {
            return try sealer.openNote(data, sealing: sealing, hospital: hospital, set: set)
        } catch {
            logger.error("a stored note cannot be opened", metadata: ["kyukyu.error": "\(type(of: error))"])
            throw .storage("a stored note cannot be opened (another keyring, or a damaged row)")
        }
    }

    private func event(_ row: EventRow) throws(ReceiverError) -> HandoffEvent {
        HandoffEvent(
            id: row.boardSequence,
            hospital: try Self.code(row.hospital),
            device: row.device,
            sequence: row.sequence,
            documentSet: UUID(uuidString: row.set) ?? UUID(),
            version: row.version,
            status: HandoffStatus(rawValue: row.status) ?? .received,
            reason: row.reason,
            note: try note(row.noteSealed, sealing: row.sealing, hospital: row.hospital, set: row.set),
            at: StorageTime.date(row.at)
        )
    }

    private func summary(_ row: SetRow) throws(ReceiverError) -> DocumentSetSummary {
        DocumentSetSummary(
            documentSet: UUID(uuidString: row.set) ?? UUID(),
            hospital: try Self.code(row.hospital),
            device: row.device,
            status: HandoffStatus(rawValue: row.status) ?? .received,
            latestVersion: row.latestVersion,
            reason: row.reason,
            note: try note(row.noteSealed, sealing: row.sealing, hospital: row.hospital, set: row.set),
            firstReceivedAt: StorageTime.date(row.firstReceivedAt),
            updatedAt: StorageTime.date(row.updatedAt)
        )
    }

    static func code(_ text: String) throws(ReceiverError) -> HospitalCode {
        guard let code = HospitalCode(rawValue: text) else { throw .storage("a stored row names no valid hospital") }
        return code
    }

    static func version(_ row: StoredVersionRow) throws(ReceiverError) -> StoredVersion {
        StoredVersion(
            documentSet: UUID(uuidString: row.set) ?? UUID(),
            hospital: try code(row.hospital),
            version: row.version,
            versionIdentifier: row.versionIdentifier,
            bundleID: row.bundleID,
            sha256: row.sha256,
            device: row.device,
            receivedAt: StorageTime.date(row.receivedAt),
            builtAt: StorageTime.date(row.builtAt)
        )
    }

    static func text(_ uuid: UUID) -> String { uuid.uuidString.lowercased() }

    private static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of a digest (without `String(format:)`, which costs a formatter per byte).
    static func hex(_ digest: some Sequence<UInt8>) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func describe(_ error: any Error) -> String { SQLiteStorage.describe(error) }
}
