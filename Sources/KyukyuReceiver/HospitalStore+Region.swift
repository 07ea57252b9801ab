import Crypto
public import Foundation
public import KyukyuDomain

/// One asked hospital of a placement request, for the review.
public struct PlacementTargetRecord: Sendable, Hashable {
    /// The hospital.
    public var hospital: HospitalCode
    /// Its answer.
    public var answer: PlacementAnswer
    /// The reason of a decline.
    public var reason: DivertReason?
    /// When it answered (or was told).
    public var answeredAt: Date?
    /// The staff member who answered.
    public var staff: String?
}

/// A placement request with every answer and time, for the regional medical-control review.
public struct PlacementRecord: Sendable, Hashable {
    /// The request.
    public var placement: UUID
    /// The ambulance.
    public var device: String
    /// The patient's document set.
    public var documentSet: UUID
    /// When it was made.
    public var createdAt: Date
    /// The hospital that accepted first.
    public var placedAt: HospitalCode?
    /// When it accepted.
    public var placedTime: Date?
    /// When the crew withdrew it.
    public var cancelledAt: Date?
    /// What the hospitals were told (no name, no number, no date of birth).
    public var summary: PlacementSummary?
    /// Every asked hospital.
    public var targets: [PlacementTargetRecord]
}

/// A hospital's publication, with who made it (the review's history).
public struct AcceptanceRecord: Sendable, Hashable {
    /// The publication.
    public var acceptance: HospitalAcceptance
    /// The staff member who published it.
    public var staff: String?
}

extension HospitalStore {
    // MARK: - Acceptance

    /// Every hospital's latest publication.
    public func acceptances() async throws(ReceiverError) -> [HospitalAcceptance] {
        try await storage.acceptances().map { row throws(ReceiverError) in try Self.acceptance(row) }
    }

    /// One hospital's latest publication, if it published.
    public func acceptance(of hospital: HospitalCode) async throws(ReceiverError) -> HospitalAcceptance? {
        try await storage.acceptance(hospital: hospital.rawValue).map { row throws(ReceiverError) in
            try Self.acceptance(row)
        }
    }

    /// Publishes a change of `hospital`'s acceptance by `staff`: the conditions in `setting` take their new values,
    /// those in `withdrawing` become unknown, the rest are kept; the revision grows by one. Another instance
    /// publishing for the same hospital at the same moment waits for it, then applies its change on top.
    public func publishAcceptance(
        _ hospital: HospitalCode,
        setting: [AcceptanceCondition: ConditionAcceptance],
        withdrawing: Set<AcceptanceCondition> = [],
        staff: String,
        at time: Date
    ) async throws(ReceiverError) -> HospitalAcceptance {
        let row = try await storage.publishAcceptance(hospital: hospital.rawValue) {
            current throws(ReceiverError) -> AcceptanceRow in
            // A damaged stored row is the store's failure, not the staff's input.
            let latest: HospitalAcceptance? = if let current { try Self.acceptance(current) } else { nil }
            let next: HospitalAcceptance
            do throws(AcceptanceError) {
                let base: HospitalAcceptance
                if let latest {
                    base = latest
                } else {
                    base = try HospitalAcceptance(hospital: hospital, conditions: [:], revision: 0, updatedAt: time)
                }
                next = try base.updated(setting: setting, withdrawing: withdrawing, at: time)
            } catch {
                throw .invalidInput(error.description)
            }
            let body: String
            do {
                body = String(decoding: try JSONEncoder().encode(next), as: UTF8.self)
            } catch {
                throw .storage("the publication cannot be written")
            }
            return AcceptanceRow(
                hospital: hospital.rawValue,
                revision: next.revision,
                body: body,
                staff: staff,
                at: StorageTime.ms(time)
            )
        }
        return try Self.acceptance(row)
    }

    /// The publications made from `from` until `to`, in order.
    public func acceptanceHistory(from: Date, to: Date) async throws(ReceiverError) -> [AcceptanceRecord] {
        try await storage.acceptanceHistory(since: StorageTime.ms(from), until: StorageTime.ms(to)).map {
            row throws(ReceiverError) in AcceptanceRecord(acceptance: try Self.acceptance(row), staff: row.staff)
        }
    }

    /// A stored publication, decoded; a damaged row is a storage failure.
    static func acceptance(_ row: AcceptanceRow) throws(ReceiverError) -> HospitalAcceptance {
        do {
            return try JSONDecoder().decode(HospitalAcceptance.self, from: Data(row.body.utf8))
        } catch {
            throw .storage("a stored publication cannot be read")
        }
    }

    // MARK: - Placement requests

    /// Stores a placement request from `device` and asks `hospitals` (each told `summary`, sealed with its own key).
    /// The same request again (same id, same content) is a resend: nothing changes; the same id with other content
    /// is ``ReceiverError/Code/conflict``.
    public func createPlacement(
        _ id: UUID,
        device: String,
        documentSet: UUID,
        hospitals: [HospitalCode],
        summary: PlacementSummary,
        at time: Date
    ) async throws(ReceiverError) -> (view: PlacementView, created: Bool, events: [PlacementEvent]) {
        let summaryBytes: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            summaryBytes = try encoder.encode(summary)
        } catch {
            throw .invalidInput("summary: cannot be encoded")
        }
        let key = Self.text(id)
        var digest = SHA256()
        digest.update(data: Data((device + " " + Self.text(documentSet) + " ").utf8))
        digest.update(data: Data(hospitals.map(\.rawValue).sorted().joined(separator: ",").utf8))
        digest.update(data: summaryBytes)
        let sha = Self.hex(digest.finalize())
        let row = PlacementRow(
            id: key,
            device: device,
            set: Self.text(documentSet),
            requestSHA: sha,
            createdAt: StorageTime.ms(time),
            placedHospital: nil,
            placedAt: nil,
            cancelledAt: nil
        )
        var targets: [PlacementTargetRow] = []
        for hospital in hospitals {
            targets.append(
                PlacementTargetRow(
                    placement: key,
                    hospital: hospital.rawValue,
                    answer: PlacementAnswer.pending.rawValue,
                    summarySealed: try sealer.sealValue(
                        summaryBytes,
                        hospital: hospital.rawValue,
                        context: "placement \(key)"
                    )
                )
            )
        }
        switch try await storage.createPlacement(row, targets: targets) {
        case .created(let events):
            guard let view = try await placement(id, device: device) else {
                throw .storage("the request was stored but cannot be read")
            }
            return (view, true, try events.map { event throws(ReceiverError) in try placementEvent(event) })
        case .existing(let existing):
            guard existing.requestSHA == sha, existing.device == device else {
                throw .conflict("this placement id is stored with another request")
            }
            guard let view = try await placement(id, device: device) else { throw .notFound("no such placement") }
            return (view, false, [])
        }
    }

    /// `hospital`'s staff answer a request: the first `accepted` places the patient there and tells every other
    /// pending hospital it went elsewhere; `declined` needs a reason (and a note for `other`).
    public func answerPlacement(
        _ id: UUID,
        at hospital: HospitalCode,
        answer: PlacementAnswer,
        reason: DivertReason?,
        note: String?,
        staff: String,
        at time: Date
    ) async throws(ReceiverError) -> (view: PlacementView, events: [PlacementEvent]) {
        if answer == .declined, reason == nil { throw .invalidInput("reason: a decline needs a reason") }
        if reason == .other, (note ?? "").isEmpty {
            throw .invalidInput("note: a note is required when the reason is other")
        }
        let key = Self.text(id)
        let sealed = try note.map { note throws(ReceiverError) in
            try sealer.sealValue(Data(note.utf8), hospital: hospital.rawValue, context: "placement note \(key)")
        }
        switch try await storage.answerPlacement(
            key,
            hospital: hospital.rawValue,
            answer: answer,
            reason: answer == .declined ? reason?.rawValue : nil,
            noteSealed: answer == .declined ? sealed : nil,
            staff: staff,
            at: StorageTime.ms(time)
        ) {
        case .done(let events):
            guard let view = try await placement(id, at: hospital) else { throw .notFound("no such placement") }
            return (view, try events.map { event throws(ReceiverError) in try placementEvent(event) })
        case .notFound: throw .notFound("no such placement request at this hospital")
        case .conflict(let reason): throw .conflict(reason)
        }
    }

    /// The ambulance withdraws its request: every hospital still asked is told.
    public func cancelPlacement(_ id: UUID, device: String, at time: Date) async throws(ReceiverError) -> (
        view: PlacementView, events: [PlacementEvent]
    ) {
        switch try await storage.cancelPlacement(Self.text(id), device: device, at: StorageTime.ms(time)) {
        case .done(let events):
            guard let view = try await placement(id, device: device) else { throw .notFound("no such placement") }
            return (view, try events.map { event throws(ReceiverError) in try placementEvent(event) })
        case .notFound: throw .notFound("no such placement")
        case .conflict(let reason): throw .conflict(reason)
        }
    }

    /// The requests made before `time` that still wait for an answer (none accepted, not withdrawn), oldest first,
    /// each with the ambulance that made it.
    public func waitingPlacements(requestedBefore time: Date) async throws(ReceiverError) -> [(
        placement: UUID, device: String
    )] {
        try await storage.waitingPlacements(before: StorageTime.ms(time)).compactMap { row in
            UUID(uuidString: row.id).map { (placement: $0, device: row.device) }
        }
    }

    /// A request as its ambulance sees it (nil when it is another device's).
    public func placement(_ id: UUID, device: String) async throws(ReceiverError) -> PlacementView? {
        guard let (row, targets) = try await storage.placement(Self.text(id)), row.device == device else { return nil }
        return try view(row, targets, reading: nil)
    }

    /// A request as an asked hospital sees it, with the summary it was told (nil when it was not asked).
    public func placement(_ id: UUID, at hospital: HospitalCode) async throws(ReceiverError) -> PlacementView? {
        guard let (row, targets) = try await storage.placement(Self.text(id)),
            targets.contains(where: { $0.hospital == hospital.rawValue })
        else { return nil }
        return try view(row, targets, reading: hospital)
    }

    /// The requests that asked `hospital`, newest first: those it has not answered, or all.
    public func placements(at hospital: HospitalCode, pendingOnly: Bool) async throws(ReceiverError)
        -> [PlacementView]
    {
        try await storage.placements(hospital: hospital.rawValue, pendingOnly: pendingOnly).map {
            placement throws(ReceiverError) in try view(placement.0, placement.1, reading: hospital)
        }
    }

    /// Every request made from `from` until `to`, with every answer and time (the review).
    public func placementRecords(from: Date, to: Date) async throws(ReceiverError) -> [PlacementRecord] {
        try await storage.placements(since: StorageTime.ms(from), until: StorageTime.ms(to)).map {
            placement throws(ReceiverError) in
            let (row, targets) = placement
            var summary: PlacementSummary?
            if let first = targets.first {
                summary = try openSummary(first, placement: row.id)
            }
            return PlacementRecord(
                placement: UUID(uuidString: row.id) ?? UUID(),
                device: row.device,
                documentSet: UUID(uuidString: row.set) ?? UUID(),
                createdAt: StorageTime.date(row.createdAt),
                placedAt: row.placedHospital.flatMap(HospitalCode.init(rawValue:)),
                placedTime: row.placedAt.map(StorageTime.date),
                cancelledAt: row.cancelledAt.map(StorageTime.date),
                summary: summary,
                targets: try targets.map { target throws(ReceiverError) in
                    PlacementTargetRecord(
                        hospital: try Self.code(target.hospital),
                        answer: PlacementAnswer(rawValue: target.answer) ?? .pending,
                        reason: target.reason.flatMap(DivertReason.init(rawValue:)),
                        answeredAt: target.answeredAt.map(StorageTime.date),
                        staff: target.staff
                    )
                }
            )
        }
    }

    private func view(_ row: PlacementRow, _ targets: [PlacementTargetRow], reading hospital: HospitalCode?)
        throws(ReceiverError) -> PlacementView
    {
        var answers: [HospitalCode: PlacementAnswer] = [:]
        for target in targets {
            answers[try Self.code(target.hospital)] = PlacementAnswer(rawValue: target.answer) ?? .pending
        }
        var summary: PlacementSummary?
        if let hospital, let target = targets.first(where: { $0.hospital == hospital.rawValue }) {
            summary = try openSummary(target, placement: row.id)
        }
        return PlacementView(
            placement: UUID(uuidString: row.id) ?? UUID(),
            device: row.device,
            documentSet: UUID(uuidString: row.set) ?? UUID(),
            createdAt: StorageTime.date(row.createdAt),
            placedAt: row.placedHospital.flatMap(HospitalCode.init(rawValue:)),
            answers: answers,
            summary: summary
        )
    }

    private func openSummary(_ target: PlacementTargetRow, placement: String) throws(ReceiverError)
        -> PlacementSummary
    {
        do {
            let bytes = try sealer.openValue(
                target.summarySealed,
                hospital: target.hospital,
                context: "placement \(placement)"
            )
            return try JSONDecoder().decode(PlacementSummary.self, from: bytes)
        } catch {
            throw .storage("a placement summary cannot be opened (another keyring, or a damaged row)")
        }
    }

    func placementEvent(_ row: PlacementEventRow) throws(ReceiverError) -> PlacementEvent {
        var note: String?
        if let sealed = row.noteSealed {
            do {
                note = String(
                    decoding: try sealer.openValue(
                        sealed,
                        hospital: row.hospital,
                        context: "placement note \(row.placement)"
                    ),
                    as: UTF8.self
                )
            } catch {
                throw .storage("a placement note cannot be opened")
            }
        }
        return PlacementEvent(
            id: row.boardSequence,
            hospital: try Self.code(row.hospital),
            device: row.device,
            sequence: row.sequence,
            placement: UUID(uuidString: row.placement) ?? UUID(),
            documentSet: UUID(uuidString: row.set) ?? UUID(),
            answer: PlacementAnswer(rawValue: row.answer) ?? .pending,
            reason: row.reason.flatMap(DivertReason.init(rawValue:)),
            note: note,
            at: StorageTime.date(row.at)
        )
    }

    // MARK: - Streams

    /// The device's stream after `sequence` (handoff and placement events, in order); with nil, as
    /// ``events(device:after:closedWithin:now:)``, and the placement events of the same window.
    public func streamEvents(
        device: String,
        after sequence: Int64?,
        closedWithin: TimeInterval = 24 * 3600,
        now: Date = Date()
    ) async throws(ReceiverError) -> [StreamEvent] {
        let handoff = try await events(device: device, after: sequence, closedWithin: closedWithin, now: now)
        let placements =
            if let sequence {
                try await storage.placementEvents(device: device, after: sequence)
            } else {
                try await storage.placementEvents(
                    device: device,
                    since: StorageTime.ms(now.addingTimeInterval(-closedWithin))
                )
            }
        let all =
            handoff.map(StreamEvent.handoff)
            + (try placements.map { row throws(ReceiverError) in StreamEvent.placement(try placementEvent(row)) })
        return all.sorted { ($0.sequence ?? 0) < ($1.sequence ?? 0) }
    }

    /// A hospital's board stream after its position (handoff and placement events, in order).
    public func streamBoardEvents(hospital: HospitalCode, after position: Int64) async throws(ReceiverError)
        -> [StreamEvent]
    {
        let handoff = try await boardEvents(hospital: hospital, after: position).map(StreamEvent.handoff)
        let placements = try await storage.placementBoardEvents(hospital: hospital.rawValue, after: position).map {
            row throws(ReceiverError) in StreamEvent.placement(try placementEvent(row))
        }
        return (handoff + placements).sorted { ($0.boardPosition ?? 0) < ($1.boardPosition ?? 0) }
    }

    /// What another instance's notifications name, read back.
    func streamEvents(_ notices: [StorageNotice]) async throws(ReceiverError) -> [StreamEvent] {
        var found: [StreamEvent] = []
        let events = notices.compactMap { if case .event(let id) = $0 { id } else { nil } }
        found += try await self.events(ids: events).map(StreamEvent.handoff)
        let placements = notices.compactMap { if case .placementEvent(let id) = $0 { id } else { nil } }
        found += try await storage.placementEvents(ids: placements).map { row throws(ReceiverError) in
            StreamEvent.placement(try placementEvent(row))
        }
        for case .acceptance(let hospital) in notices {
            if let code = HospitalCode(rawValue: hospital), let acceptance = try await acceptance(of: code) {
                found.append(.acceptance(acceptance))
            }
        }
        return found
    }
}
