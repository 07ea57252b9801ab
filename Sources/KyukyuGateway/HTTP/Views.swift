import Foundation
import KyukyuDomain
import KyukyuIncident
import KyukyuVault
import KyukyuWorkflow

/// An incident as the API returns it (docs/gateway-api.yaml, `IncidentView`).
struct IncidentView: Encodable, Sendable {
    struct Dispatch: Encodable, Sendable {
        var receivedAt: Date
        var location: String?
        var note: String?
    }
    struct Card: Encodable, Sendable {
        var state: String
        var tokenType: String?
        var triesLeft: Int?
        var lastTry: Bool
        var reason: String?
    }
    struct Retry: Encodable, Sendable {
        var reason: String
        var attempt: Int
        var nextAttemptAt: Date
    }
    struct Authentication: Encodable, Sendable {
        var status: String
        var reason: String?
    }
    struct Category: Encodable, Sendable {
        var status: String
        var reason: String?
        var milliseconds: Int?
        var count: Int?
    }

    var id: String
    var createdAt: Date
    var source: String
    var dispatch: Dispatch?
    var phase: String
    var consent: String?
    var identification: String?
    var card: Card
    var retry: Retry?
    var authentication: Authentication
    var categories: [String: Category]
    var summary: PatientSummary?
    var observations: ObservationsView?
    var closure: String?
    var handoff: HandoffView?
    var placement: PlacementView?
    var version: Int
    var active: Bool

    /// The view of `snapshot`; `hospitalNames` name the handoff's hospital. The handoff's progress carries no patient
    /// data, so it stays in the list and after the close (the tablet shows the handover).
    init(
        _ snapshot: IncidentSnapshot,
        active: Bool,
        includeSummary: Bool = true,
        hospitalNames: [HospitalCode: String] = [:]
    ) {
        let state = snapshot.state
        let closed = state.machine.phase == .closed
        id = state.id.description
        createdAt = state.createdAt
        source = state.source.rawValue
        dispatch =
            closed
            ? nil : state.dispatch.map { Dispatch(receivedAt: $0.receivedAt, location: $0.location, note: $0.note) }
        phase = state.machine.phase.rawValue
        consent = state.machine.consent?.rawValue
        identification = state.machine.identification?.label
        card = Card(
            state: state.card.state.rawValue,
            tokenType: state.card.tokenType?.rawValue,
            triesLeft: state.card.triesLeft,
            lastTry: state.card.lastTry,
            reason: state.card.reason
        )
        retry = state.retry.map {
            Retry(reason: $0.reason.rawValue, attempt: $0.attempt, nextAttemptAt: $0.nextAttemptAt)
        }
        authentication = Authentication(
            status: state.authentication.status.rawValue,
            reason: state.authentication.reason
        )
        var categories: [String: Category] = [:]
        for category in MedicalCategory.allCases {
            let progress = state[category]
            categories[category.rawValue] = Category(
                status: progress?.status.rawValue ?? "pending",
                reason: progress?.reason,
                milliseconds: progress?.milliseconds,
                count: progress?.count
            )
        }
        self.categories = categories
        summary = includeSummary && !closed ? snapshot.summary : nil
        observations = includeSummary && !closed ? ObservationsView(state.observations ?? CrewObservations()) : nil
        closure = state.machine.closure?.rawValue
        handoff = HandoffView(state.handoff, names: hospitalNames)
        placement = PlacementView(state.placement, names: hospitalNames)
        version = state.version
        self.active = active
    }
}

/// The crew's observations as the API returns them (docs/gateway-api.yaml, `ObservationsView`): a field with no
/// value is left out; the lists are oldest first, each entry with its `index` (for `DELETE …/vitals/{index}`).
struct ObservationsView: Encodable, Sendable {
    struct Trauma: Encodable, Sendable {
        var mechanism: String?
        var injuries: [String]
    }
    struct Onset: Encodable, Sendable {
        var kind: String
        var at: Date
    }
    struct GCS: Encodable, Sendable {
        var eye: Int
        var verbal: Int
        var motor: Int
        var total: Int
    }
    struct Vitals: Encodable, Sendable {
        var index: Int
        var takenAt: Date
        var jcs: Int?
        var jcsLabel: String?
        var gcs: GCS?
        var heartRate: Int?
        var systolic: Int?
        var diastolic: Int?
        var respiratoryRate: Int?
        var spo2: Int?
        var temperature: Double?
        var bloodGlucose: Int?
    }
    struct Treatment: Encodable, Sendable {
        var index: Int
        var kind: String
        var at: Date
    }

    var chiefComplaint: String?
    var complaintNote: String?
    var trauma: Trauma?
    var onset: Onset?
    var priority: String?
    var vitals: [Vitals]
    var treatments: [Treatment]
    var etaMinutes: Int?
    var etaRecordedAt: Date?
    var hospital: String?

    init(_ observations: CrewObservations) {
        chiefComplaint = observations.chiefComplaint?.rawValue
        complaintNote = observations.complaintNote
        trauma = observations.trauma.map {
            Trauma(mechanism: $0.mechanism?.rawValue, injuries: $0.injuries.map(\.rawValue))
        }
        onset = observations.onset.map { Onset(kind: $0.kind.rawValue, at: $0.at) }
        priority = observations.priority?.rawValue
        vitals = observations.vitals.enumerated().map { index, set in
            Vitals(
                index: index,
                takenAt: set.takenAt,
                jcs: set.jcs?.rawValue,
                jcsLabel: set.jcs?.label,
                gcs: set.gcs.map { GCS(eye: $0.eye, verbal: $0.verbal, motor: $0.motor, total: $0.total) },
                heartRate: set.heartRate,
                systolic: set.systolic,
                diastolic: set.diastolic,
                respiratoryRate: set.respiratoryRate,
                spo2: set.spo2,
                temperature: set.temperature,
                bloodGlucose: set.bloodGlucose
            )
        }
        treatments = observations.treatments.enumerated().map {
            Treatment(index: $0, kind: $1.kind.rawValue, at: $1.at)
        }
        etaMinutes = observations.etaMinutes
        etaRecordedAt = observations.etaRecordedAt
        hospital = observations.hospital?.rawValue
    }
}

/// The API's JSON encoder: ISO 8601 dates, sorted keys.
enum APIJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
