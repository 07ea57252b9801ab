public import Foundation
public import KyukyuDomain

// A placement request (一斉照会) as the incident keeps it: the hospitals asked at once, the summary they were sent
// (no name, no number, an age band), each one's answer as the regional hub reports it, and whether the hub has
// stored the request yet. Kept in the incident's state in the vault, so a restarted gateway still knows which
// hospitals were asked and what each said; the hub's answers reach the incident by its document set.

/// One placement request of an incident, and each asked hospital's answer so far.
public struct PlacementProgress: Sendable, Hashable, Codable {
    /// One asked hospital and where it stands.
    public struct Entry: Sendable, Hashable, Codable {
        /// The hospital.
        public var hospital: HospitalCode
        /// Its answer so far.
        public var answer: PlacementAnswer
        /// Why it declined (``PlacementAnswer/declined`` only), with its staff's note.
        public var divert: Divert?
        /// When the hub says it answered.
        public var answeredAt: Date?

        /// A hospital not answered yet.
        public init(hospital: HospitalCode) {
            self.hospital = hospital
            self.answer = .pending
        }
    }

    /// The request's identifier (random; the hub's idempotency key).
    public let id: UUID
    /// The asked hospitals, in the crew's order, with their answers.
    public var entries: [Entry]
    /// What the hospitals were told.
    public let summary: PlacementSummary
    /// When the crew asked.
    public let requestedAt: Date
    /// Whether the hub has stored the request (201 or 200).
    public var stored = false
    /// Whether the crew withdrew the request (the cancel is sent, or was).
    public var cancelRequested = false
    /// The latest problem reaching the hub, in words (no patient data), until a call succeeds.
    public var problem: String?

    /// A request to `hospitals`, each pending.
    public init(id: UUID = UUID(), hospitals: [HospitalCode], summary: PlacementSummary, requestedAt: Date) {
        self.id = id
        self.entries = hospitals.map(Entry.init(hospital:))
        self.summary = summary
        self.requestedAt = requestedAt
    }

    /// The asked hospitals, in the crew's order.
    public var hospitals: [HospitalCode] { entries.map(\.hospital) }

    /// The hospital that accepted, if one did.
    public var acceptedBy: HospitalCode? { entries.first { $0.answer == .accepted }?.hospital }

    /// Whether the request still waits for a hospital: none accepted, not withdrawn, and some hospital still
    /// pending.
    public var isOpen: Bool {
        acceptedBy == nil && !cancelRequested && entries.contains { $0.answer == .pending }
    }

    /// Records `answer` for `hospital`; a final answer is never replaced by ``PlacementAnswer/pending``, and an
    /// accepted one stays. Returns whether anything changed.
    @discardableResult
    public mutating func record(
        _ answer: PlacementAnswer,
        for hospital: HospitalCode,
        divert: Divert? = nil,
        at time: Date? = nil
    ) -> Bool {
        guard let index = entries.firstIndex(where: { $0.hospital == hospital }) else { return false }
        let current = entries[index]
        if answer == .pending || current.answer == .accepted || current.answer == answer { return false }
        // A second acceptance cannot happen at the hub; if one is reported, the first stands.
        if answer == .accepted, acceptedBy != nil { return false }
        entries[index].answer = answer
        entries[index].divert = answer == .declined ? divert : nil
        entries[index].answeredAt = time ?? entries[index].answeredAt
        return true
    }
}
