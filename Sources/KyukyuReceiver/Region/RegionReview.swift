public import Foundation
public import KyukyuDomain

/// The regional medical-control review's exports: every placement request with every hospital's answer and its time
/// (CSV, and FHIR R4 `Task`s in a `collection` Bundle), and every publication of what hospitals accepted (CSV).
///
/// Nothing in them identifies a patient: the requests carry what the hospitals were told (an age band, the crew's
/// complaint and triage, the needs), never a name, a number or a date of birth.
public enum RegionReview {
    /// The CSV header of ``placementsCSV(_:)``.
    public static let placementColumns = [
        "placement", "document_set", "device", "created_at", "hospital", "answer", "reason", "answered_at",
        "seconds_to_answer", "staff", "placed_at", "placed_time", "cancelled_at", "age_band", "sex",
        "chief_complaint", "priority", "needs", "eta_minutes",
    ]

    /// One row per asked hospital of each request (RFC 4180: CRLF line ends, fields quoted when needed).
    public static func placementsCSV(_ records: [PlacementRecord]) -> String {
        var lines = [placementColumns.joined(separator: ",")]
        for record in records {
            for target in record.targets {
                let seconds = target.answeredAt.map { String(Int(($0.timeIntervalSince(record.createdAt)).rounded())) }
                let fields: [String?] = [
                    text(record.placement), text(record.documentSet), record.device, Instant.string(record.createdAt),
                    target.hospital.rawValue, target.answer.rawValue, target.reason?.rawValue,
                    target.answeredAt.map(Instant.string), seconds, target.staff, record.placedAt?.rawValue,
                    record.placedTime.map(Instant.string), record.cancelledAt.map(Instant.string),
                    record.summary?.ageBand, record.summary?.sex, record.summary?.chiefComplaint?.rawValue,
                    record.summary?.priority?.rawValue,
                    record.summary.map { $0.needs.map(\.rawValue).joined(separator: " ") },
                    record.summary?.etaMinutes.map(String.init),
                ]
                lines.append(fields.map { field($0 ?? "") }.joined(separator: ","))
            }
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// The CSV header of ``acceptanceCSV(_:)``.
    public static let acceptanceColumns = ["at", "hospital", "revision", "staff", "condition", "accepting", "reason"]

    /// One row per condition of each publication.
    public static func acceptanceCSV(_ records: [AcceptanceRecord]) -> String {
        var lines = [acceptanceColumns.joined(separator: ",")]
        for record in records {
            let acceptance = record.acceptance
            for condition in AcceptanceCondition.allCases {
                guard let state = acceptance[condition] else { continue }
                let fields = [
                    Instant.string(acceptance.updatedAt), acceptance.hospital.rawValue, String(acceptance.revision),
                    record.staff ?? "", condition.rawValue, state.isAccepting ? "true" : "false",
                    state.refusal?.reason.rawValue ?? "",
                ]
                lines.append(fields.map(field).joined(separator: ","))
            }
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// The requests as FHIR R4: one `Task` per asked hospital (`owner`: the hospital; `requester`: the ambulance's
    /// device; `focus`: the document set; `status`: requested, accepted, rejected or cancelled, with the answer in
    /// `businessStatus` and a decline's reason in `statusReason`), in a `collection` Bundle.
    public static func placementsFHIR(_ records: [PlacementRecord], generatedAt: Date) throws -> Data {
        var entries: [[String: Any]] = []
        for record in records {
            for target in record.targets {
                let id = text(record.placement) + "-" + target.hospital.rawValue
                var task: [String: Any] = [
                    "resourceType": "Task",
                    "id": id,
                    "identifier": [["system": "urn:ietf:rfc:3986", "value": "urn:uuid:" + text(record.placement)]],
                    "status": taskStatus(target.answer),
                    "businessStatus": ["text": target.answer.rawValue],
                    "intent": "order",
                    "code": ["text": "emergency placement request (一斉照会)"],
                    "authoredOn": Instant.string(record.createdAt),
                    "lastModified": Instant.string(target.answeredAt ?? record.createdAt),
                    "requester": [
                        "type": "Device", "identifier": ["system": "urn:kyukyu:device", "value": record.device],
                    ],
                    "owner": [
                        "type": "Organization",
                        "identifier": [
                            "system": StructuralHandoffValidator.hospitalSystem, "value": target.hospital.rawValue,
                        ],
                    ],
                    "focus": [
                        "identifier": ["system": "urn:ietf:rfc:3986", "value": "urn:uuid:" + text(record.documentSet)]
                    ],
                ]
                if let priority = record.summary?.priority {
                    task["priority"] =
                        switch priority {
                        case .red: "stat"
                        case .yellow: "urgent"
                        case .green: "routine"
                        }
                }
                if let reason = target.reason {
                    task["statusReason"] = [
                        "coding": [["system": "urn:kyukyu:divert-reason", "code": reason.rawValue]],
                        "text": reason.rawValue,
                    ]
                }
                var inputs: [[String: Any]] = []
                if let summary = record.summary {
                    for need in summary.needs {
                        inputs.append(["type": ["text": "need"], "valueString": need.rawValue])
                    }
                    if let band = summary.ageBand {
                        inputs.append(["type": ["text": "age band"], "valueString": band])
                    }
                    if let complaint = summary.chiefComplaint {
                        inputs.append(["type": ["text": "chief complaint"], "valueString": complaint.rawValue])
                    }
                    if let eta = summary.etaMinutes {
                        inputs.append(["type": ["text": "eta minutes"], "valueInteger": eta])
                    }
                }
                if !inputs.isEmpty { task["input"] = inputs }
                entries.append(["fullUrl": "urn:uuid:" + text(UUID()), "resource": task])
            }
        }
        let bundle: [String: Any] = [
            "resourceType": "Bundle",
            "id": text(UUID()),
            "type": "collection",
            "timestamp": Instant.string(generatedAt),
            "entry": entries,
        ]
        return try JSONSerialization.data(withJSONObject: bundle, options: [.sortedKeys, .prettyPrinted])
    }

    private static func taskStatus(_ answer: PlacementAnswer) -> String {
        switch answer {
        case .pending: "requested"
        case .accepted: "accepted"
        case .declined: "rejected"
        case .placedElsewhere, .cancelled: "cancelled"
        }
    }

    private static func text(_ uuid: UUID) -> String { uuid.uuidString.lowercased() }

    /// A CSV field, quoted when it holds a comma, a quote or a line end; a leading `=`, `+`, `-` or `@` is made
    /// inert for spreadsheets.
    static func field(_ value: String) -> String {
        var value = value
        if let first = value.first, "=+-@".contains(first), Double(value) == nil { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
