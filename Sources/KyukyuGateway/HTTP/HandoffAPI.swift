import Foundation
import Hummingbird
import KyukyuDomain
import KyukyuIncident
import KyukyuWorkflow

// The crew sends the pre-arrival document to a receiving hospital (docs/gateway-api.yaml, tag `handoff`): the first
// send, or another hospital after a divert or a change of mind. The runner builds the document from what the vault
// holds and queues it in the outbox; where it stands follows in the incident view's `handoff` (and on the event
// stream), and every later change of the observations sends an update by itself.

extension GatewayAPI {
    /// Registers `POST /api/v1/incidents/{id}/handoff` on the `api/v1` group.
    func registerHandoff(on api: RouterGroup<GatewayRequestContext>) {
        api.post("incidents/:id/handoff") { request, context in
            let session = try await session(request, csrf: true)
            let runner = try await runner(context)
            let body = try await RequestBody.object(request, context: context, allowed: ["hospital"])
            guard let value = body["hospital"] else { throw Problem.validation("hospital", "is required") }
            guard case .string(let text) = value, let code = HospitalCode(rawValue: text) else {
                throw Problem.validation("hospital", "must be a 10-digit medical-institution code")
            }
            guard hospitals.contains(where: { $0.code == code }) else {
                throw Problem.validation("hospital", "is not in this gateway's list of receiving hospitals")
            }
            let crewID = try Self.crewID(session)
            let snapshot: IncidentSnapshot
            do throws(WorkflowError) {
                snapshot = try await runner.sendHandoff(to: code, by: crewID)
            } catch {
                // The runner's own list (the outbox's) lacking it is the same refusal, naming the field.
                throw error.kind == .invalidInput
                    ? Problem.validation("hospital", error.reason) : Problem.workflow(error)
            }
            return try json(view(snapshot, active: await desk.active == runner.id), status: .accepted)
        }
    }

    /// The hospitals' names by code, for the incident view's `handoff.hospitalName`.
    var hospitalNames: [HospitalCode: String] {
        Dictionary(hospitals.map { ($0.code, $0.name) }, uniquingKeysWith: { first, _ in first })
    }

    /// The incident's view, with the hospitals' names.
    func view(_ snapshot: IncidentSnapshot, active: Bool, includeSummary: Bool = true) -> IncidentView {
        IncidentView(snapshot, active: active, includeSummary: includeSummary, hospitalNames: hospitalNames)
    }
}

/// Where the pre-arrival document stands (docs/gateway-api.yaml, `HandoffView`): the document set, the hospital it
/// goes to and its state there, the versions built and delivered, the divert's reason, the hospitals that diverted,
/// the delivery problem in words, and what waits in the outbox. No patient data.
struct HandoffView: Encodable, Sendable {
    struct DivertView: Encodable, Sendable {
        var reason: String
        var note: String?
    }

    /// `urn:uuid:<set>`, as in the document's `Composition.identifier`.
    var documentSet: String
    var hospital: String
    var hospitalName: String?
    var status: String
    var latestVersion: Int
    var deliveredVersion: Int
    var divert: DivertView?
    var divertedBy: [String]
    var problem: String?
    /// Items still in the outbox (document versions and withdrawals).
    var waiting: Int
    /// When the oldest of them was queued.
    var waitingSince: Date?

    /// The view of `progress`, or nil before the first send.
    init?(_ progress: HandoffProgress?, names: [HospitalCode: String]) {
        guard let progress, let hospital = progress.machine.hospital, let status = progress.machine.status else {
            return nil
        }
        let machine = progress.machine
        documentSet = "urn:uuid:\(machine.documentSet.uuidString.lowercased())"
        self.hospital = hospital.rawValue
        hospitalName = names[hospital]
        self.status = status.rawValue
        latestVersion = machine.latestVersion
        deliveredVersion = machine.deliveredVersion
        divert = machine.divert.map { DivertView(reason: $0.reason.rawValue, note: $0.note) }
        divertedBy = machine.divertedBy.map(\.rawValue)
        problem = progress.problem
        waiting = progress.outbox.count
        waitingSince = progress.outbox.map(\.queuedAt).min()
    }
}
