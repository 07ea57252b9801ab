import Foundation
import KyukyuDomain
import KyukyuOnshi

/// One viewing, as onshi records it: who, from which terminal, when, how, on what basis, and what was seen.
public struct Viewing: Sendable, Hashable, Codable {
    /// One category fetched within the viewing.
    public struct Fetch: Sendable, Hashable, Codable {
        /// The category.
        public var category: MedicalCategory
        /// When.
        public var at: Date
        /// The result code returned.
        public var resultCode: String
        /// How many records were returned.
        public var records: Int
    }

    /// Sequence number (1, 2, …) since start or the last reset.
    public var id: Int
    /// When the session was asked for.
    public var at: Date
    /// The crew member.
    public var crewID: String
    /// The terminal: the device ID of its client certificate.
    public var deviceID: String
    /// `card` (certificate) or `lookup` (four fields / insurer number).
    public var method: String
    /// Visual or PIN, for card viewings.
    public var assurance: AssuranceLevel?
    /// The consent basis.
    public var consent: ConsentBasis
    /// The synthetic patient, when identified.
    public var patientNumber: Int?
    /// The session's result code.
    public var resultCode: String
    /// The categories fetched, in order.
    public var fetches: [Fetch]

    /// The distinct categories fetched.
    public var categories: [MedicalCategory] {
        var seen: [MedicalCategory] = []
        for fetch in self.fetches where !seen.contains(fetch.category) { seen.append(fetch.category) }
        return seen
    }
}

/// The stub's viewing log (in memory; `GET /admin/viewings`).
public actor ViewingLog {
    private var entries: [Viewing] = []

    /// An empty log.
    public init() {}

    /// Records a session attempt; returns its id.
    @discardableResult
    public func record(
        at: Date,
        crewID: String,
        deviceID: String,
        method: String,
        assurance: AssuranceLevel?,
        consent: ConsentBasis,
        patientNumber: Int?,
        resultCode: String
    ) -> Int {
        let id = self.entries.count + 1
        self.entries.append(
            Viewing(
                id: id,
                at: at,
                crewID: crewID,
                deviceID: deviceID,
                method: method,
                assurance: assurance,
                consent: consent,
                patientNumber: patientNumber,
                resultCode: resultCode,
                fetches: []
            )
        )
        return id
    }

    /// Adds a category fetch to viewing `id`.
    public func recordFetch(viewing id: Int, category: MedicalCategory, at: Date, resultCode: String, records: Int) {
        guard id >= 1, id <= self.entries.count else { return }
        self.entries[id - 1].fetches.append(
            Viewing.Fetch(category: category, at: at, resultCode: resultCode, records: records)
        )
    }

    /// Every viewing, oldest first.
    public func all() -> [Viewing] { self.entries }

    /// Forgets everything.
    public func reset() { self.entries = [] }
}
