public import Foundation
public import KyukyuDomain
public import KyukyuIncident
public import KyukyuOnshi
public import KyukyuVault

/// A receiving hospital the crew can pick: its code, its name as the tablet shows it, and where its receiver is
/// (the gateway reads the list from its `handoff.hospitals` file).
public struct ReceivingHospital: Sendable, Hashable, Codable {
    /// The 10-digit medical-institution code (医療機関コード).
    public var code: HospitalCode
    /// The name as the crew knows it.
    public var name: String
    /// The name in katakana, if given.
    public var nameKana: String?
    /// The base URL of the hospital's receiver (`https`).
    public var url: String

    /// A hospital.
    public init(code: HospitalCode, name: String, nameKana: String? = nil, url: String) {
        self.code = code
        self.name = name
        self.nameKana = nameKana
        self.url = url
    }
}

extension AuditAnchor {
    /// The vault's signed head as a document's anchor.
    public init(_ head: AuditHead) {
        self.init(
            sequence: head.sequence,
            hash: head.hash,
            signedAtMilliseconds: head.signedAtMilliseconds,
            signingPublicKey: head.signingPublicKey,
            signature: head.signature
        )
    }
}

/// Everything one version of the pre-arrival document is built from.
public struct HandoffBuildRequest: Sendable {
    /// The incident's document set.
    public var documentSet: UUID
    /// This version's number (1, 2, …).
    public var version: Int
    /// This version's own identifier (the idempotency key).
    public var versionID: UUID
    /// The version it replaces, if any.
    public var previousVersionID: UUID?
    /// When it is built.
    public var builtAt: Date
    /// When onshi's records last arrived (nil when none did).
    public var dataAsOf: Date?
    /// onshi's records, by category (what the vault holds; categories missing when they never arrived).
    public var records: [MedicalCategory: CategoryRecords]
    /// Each fetched category's status word (`arrived`, `late`, `timed-out`, `failed`, …) for the provenance.
    public var categoryStatus: [MedicalCategory: String]
    /// The crew's observations.
    public var observations: CrewObservations
    /// The consent basis, if recorded.
    public var consent: ConsentBasis?
    /// The crew member who sent it.
    public var crewID: String
    /// This terminal.
    public var terminalID: String
    /// Where it goes.
    public var hospital: ReceivingHospital
    /// The audit anchor.
    public var anchor: AuditAnchor?

    /// A request.
    public init(
        documentSet: UUID,
        version: Int,
        versionID: UUID,
        previousVersionID: UUID?,
        builtAt: Date,
        dataAsOf: Date?,
        records: [MedicalCategory: CategoryRecords],
        categoryStatus: [MedicalCategory: String],
        observations: CrewObservations,
        consent: ConsentBasis?,
        crewID: String,
        terminalID: String,
        hospital: ReceivingHospital,
        anchor: AuditAnchor?
    ) {
        self.documentSet = documentSet
        self.version = version
        self.versionID = versionID
        self.previousVersionID = previousVersionID
        self.builtAt = builtAt
        self.dataAsOf = dataAsOf
        self.records = records
        self.categoryStatus = categoryStatus
        self.observations = observations
        self.consent = consent
        self.crewID = crewID
        self.terminalID = terminalID
        self.hospital = hospital
        self.anchor = anchor
    }
}

/// Builds the document (KyukyuFHIR's builder in the service; a double in unit tests).
public protocol HandoffDocumentBuilding: Sendable {
    /// The document's bytes (FHIR JSON).
    func build(_ request: HandoffBuildRequest) throws -> Data
}

/// One thing the outbox delivers for an incident.
public struct OutboxItem: Sendable, Hashable, Codable {
    /// What is delivered.
    public enum Kind: Sendable, Hashable, Codable {
        /// A version of the document.
        case document(version: Int)
        /// The news that the patient goes elsewhere.
        case withdrawal
    }
    /// The incident.
    public var incident: IncidentID
    /// The hospital it goes to.
    public var hospital: HospitalCode
    /// What.
    public var kind: Kind
    /// When it was queued (the outbox delivers each hospital's items in this order).
    public var queuedAt: Date

    /// An item.
    public init(incident: IncidentID, hospital: HospitalCode, kind: Kind, queuedAt: Date) {
        self.incident = incident
        self.hospital = hospital
        self.kind = kind
        self.queuedAt = queuedAt
    }
}

/// What the outbox sends for an item.
public enum OutboxPayload: Sendable, Hashable {
    /// A version of the document: its bytes, its own identifier (the idempotency key) and its set.
    case document(Data, versionID: UUID, documentSet: UUID)
    /// A withdrawal of the set at the item's hospital.
    case withdrawal(documentSet: UUID)
}

/// The outbox: takes items to deliver, in order per hospital, through dead zones and restarts (the items are
/// kept in each incident's state, and queued again when the gateway restores its incidents).
public protocol HandoffOutbox: Sendable {
    /// Queues `item` behind everything queued earlier for its hospital.
    func enqueue(_ item: OutboxItem) async
    /// Keeps `notices` durably, outside any incident, and delivers them behind everything queued earlier for their
    /// hospitals. Called before an incident is shredded; returns once they are kept (or could not be: logged).
    func notify(_ notices: [HandoffNotice]) async
}

/// A word to a hospital that outlives the incident it is about: the patient will not come. The crew closed the
/// incident before the hospital marked the patient arrived, or chose another hospital and the first was not yet
/// told when the incident closed. It holds no patient data: the document set's random identifier, the hospital
/// and the reason.
public struct HandoffNotice: Sendable, Hashable, Codable {
    /// The document set the hospital holds.
    public var documentSet: UUID
    /// The hospital to tell.
    public var hospital: HospitalCode
    /// Why the patient will not come.
    public var reason: WithdrawReason
    /// When it was queued.
    public var queuedAt: Date

    /// A notice.
    public init(documentSet: UUID, hospital: HospitalCode, reason: WithdrawReason, queuedAt: Date) {
        self.documentSet = documentSet
        self.hospital = hospital
        self.reason = reason
        self.queuedAt = queuedAt
    }
}

extension HandoffProgress {
    /// What the hospitals are owed when the incident closes for `reason`: every former hospital not yet told the
    /// patient goes elsewhere; and, unless the hospital itself marked the patient arrived, the current hospital,
    /// which holds (or may be receiving) the document and would otherwise wait for a patient who will not come.
    /// Nothing for a hospital that diverted or already knows.
    public func noticesOnClose(_ reason: ClosureReason, at now: Date) -> [HandoffNotice] {
        let set = machine.documentSet
        var notices = machine.pendingWithdrawals.map {
            HandoffNotice(documentSet: set, hospital: $0, reason: .anotherHospital, queuedAt: now)
        }
        if reason != .handedOver, let hospital = machine.hospital, let status = machine.status,
            [.queued, .sent, .received, .acknowledged].contains(status)
        {
            notices.append(HandoffNotice(documentSet: set, hospital: hospital, reason: .closed, queuedAt: now))
        }
        return notices
    }
}

/// Withdraws a placement request at the regional hub (the gateway's `PlacementDispatcher`) when its incident ends
/// while hospitals are still asked: closed by the crew, consent run out, the patient handed over, onshi's refusal.
/// The hospitals still pending are told the request is withdrawn, so that none keeps a bed for a patient who goes
/// nowhere.
public protocol PlacementWithdrawing: Sendable {
    /// Queues the withdrawal of request `placement` to `hospitals`, of `incident` (which is being shredded: what
    /// the hub answers has no incident to go back to).
    func withdraw(_ placement: UUID, from hospitals: [HospitalCode], of incident: IncidentID) async
}

/// The handoff's effects: the document builder, the outbox, the hospitals the crew can pick, and the hub's
/// placement requests.
public struct HandoffEffects: Sendable {
    /// Builds documents.
    public var builder: any HandoffDocumentBuilding
    /// Delivers them.
    public var outbox: any HandoffOutbox
    /// The hospitals, by code.
    public var hospitals: [HospitalCode: ReceivingHospital]
    /// Withdraws an open placement request when its incident ends (none on a terminal without a regional hub).
    public var placements: (any PlacementWithdrawing)?

    /// Bundles them.
    public init(
        builder: any HandoffDocumentBuilding,
        outbox: any HandoffOutbox,
        hospitals: [ReceivingHospital],
        placements: (any PlacementWithdrawing)? = nil
    ) {
        self.builder = builder
        self.outbox = outbox
        self.hospitals = Dictionary(hospitals.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        self.placements = placements
    }
}

/// The handoff as the tablet sees it, kept in the incident's state.
public struct HandoffProgress: Sendable, Hashable, Codable {
    /// The machine.
    public var machine: HandoffMachine
    /// The latest version built and kept in the vault (0 before the first).
    public var storedVersion = 0
    /// That version's identifier (the next version replaces it).
    public var storedVersionID: UUID?
    /// What is still to be delivered.
    public var outbox: [OutboxItem] = []
    /// The latest delivery problem, in words (the receiver unreachable, a refusal), until a delivery succeeds.
    public var problem: String?

    /// A handoff for `documentSet`.
    public init(documentSet: UUID = UUID()) {
        machine = HandoffMachine(documentSet: documentSet)
    }
}

/// Record kinds of the handoff.
extension RecordKind {
    /// The document's versions as sent (FHIR JSON).
    public static let handoffDocument = RecordKind("handoff-document")!
}
