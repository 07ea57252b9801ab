import Foundation
internal import GRDB
import KyukyuDomain

/// Acceptance and placement requests on SQLite (migration v3); PostgresStorage+Region.swift is the same in
/// PostgreSQL's dialect.
extension SQLiteStorage {
    func acceptances() async throws(ReceiverError) -> [AcceptanceRow] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM acceptance ORDER BY hospital").map(Self.acceptance)
        }
    }

    func acceptance(hospital: String) async throws(ReceiverError) -> AcceptanceRow? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM acceptance WHERE hospital = ?", arguments: [hospital])
                .map(Self.acceptance)
        }
    }

    func publishAcceptance(
        hospital: String,
        next: @escaping @Sendable (AcceptanceRow?) throws(ReceiverError) -> AcceptanceRow
    ) async throws(ReceiverError) -> AcceptanceRow {
        // One writer: the read and the write are in one transaction, which nothing else interleaves.
        try await write { db in
            let current = try Row.fetchOne(
                db,
                sql: "SELECT * FROM acceptance WHERE hospital = ?",
                arguments: [hospital]
            )
            .map(Self.acceptance)
            let row = try next(current)
            try db.execute(
                sql: """
                    INSERT INTO acceptance (hospital, revision, body, staff, at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(hospital) DO UPDATE SET revision = excluded.revision, body = excluded.body,
                        staff = excluded.staff, at = excluded.at
                    """,
                arguments: [row.hospital, row.revision, row.body, row.staff, row.at]
            )
            try db.execute(
                sql: "INSERT INTO acceptance_history (hospital, revision, body, staff, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [row.hospital, row.revision, row.body, row.staff, row.at]
            )
            return row
        }
    }

    func acceptanceHistory(since: Int64, until: Int64) async throws(ReceiverError) -> [AcceptanceRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM acceptance_history WHERE at >= ? AND at < ? ORDER BY at, id",
                arguments: [since, until]
            ).map(Self.acceptance)
        }
    }

    func createPlacement(_ placement: PlacementRow, targets: [PlacementTargetRow]) async throws(ReceiverError)
        -> PlacementCreation
    {
        try await write { db in
            if let existing = try Row.fetchOne(
                db,
                sql: "SELECT * FROM placement WHERE id = ?",
                arguments: [placement.id]
            )
            .map(Self.placement) {
                return .existing(existing)
            }
            try db.execute(
                sql: """
                    INSERT INTO placement (id, device, set_uuid, request_sha, created_at) VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [placement.id, placement.device, placement.set, placement.requestSHA, placement.createdAt]
            )
            var events: [PlacementEventRow] = []
            for target in targets {
                try db.execute(
                    sql: """
                        INSERT INTO placement_target (placement, hospital, answer, summary_sealed) VALUES (?, ?, ?, ?)
                        """,
                    arguments: [placement.id, target.hospital, PlacementAnswer.pending.rawValue, target.summarySealed]
                )
                events.append(
                    try Self.appendPlacementEvent(
                        db,
                        placement: placement,
                        hospital: target.hospital,
                        answer: .pending,
                        reason: nil,
                        noteSealed: nil,
                        at: placement.createdAt
                    )
                )
            }
            return .created(events)
        }
    }

    func answerPlacement(
        _ placement: String,
        hospital: String,
        answer: PlacementAnswer,
        reason: String?,
        noteSealed: Data?,
        staff: String,
        at: Int64
    ) async throws(ReceiverError) -> PlacementStep {
        try await write { db in
            guard let (row, targets) = try Self.placement(db, placement) else { return .notFound }
            let target = targets.first { $0.hospital == hospital }
            if let refusal = PlacementRule.check(row, target: target, answer: answer) { return refusal }
            var events: [PlacementEventRow] = []
            try db.execute(
                sql: """
                    UPDATE placement_target SET answer = ?, reason = ?, note_sealed = ?, answered_at = ?, staff = ?
                    WHERE placement = ? AND hospital = ?
                    """,
                arguments: [answer.rawValue, reason, noteSealed, at, staff, placement, hospital]
            )
            events.append(
                try Self.appendPlacementEvent(
                    db,
                    placement: row,
                    hospital: hospital,
                    answer: answer,
                    reason: reason,
                    noteSealed: noteSealed,
                    at: at
                )
            )
            if answer == .accepted {
                try db.execute(
                    sql: "UPDATE placement SET placed_hospital = ?, placed_at = ? WHERE id = ?",
                    arguments: [hospital, at, placement]
                )
                for other in targets
                where other.hospital != hospital && other.answer == PlacementAnswer.pending.rawValue {
                    try db.execute(
                        sql: """
                            UPDATE placement_target SET answer = ?, answered_at = ? WHERE placement = ? AND hospital = ?
                            """,
                        arguments: [PlacementAnswer.placedElsewhere.rawValue, at, placement, other.hospital]
                    )
                    events.append(
                        try Self.appendPlacementEvent(
                            db,
                            placement: row,
                            hospital: other.hospital,
                            answer: .placedElsewhere,
                            reason: nil,
                            noteSealed: nil,
                            at: at
                        )
                    )
                }
            }
            return .done(events)
        }
    }

    func cancelPlacement(_ placement: String, device: String, at: Int64) async throws(ReceiverError) -> PlacementStep {
        try await write { db in
            guard let (row, targets) = try Self.placement(db, placement), row.device == device else { return .notFound }
            if row.cancelledAt != nil { return .done([]) }
            if row.placedHospital != nil { return .conflict("a hospital has accepted the patient already") }
            try db.execute(sql: "UPDATE placement SET cancelled_at = ? WHERE id = ?", arguments: [at, placement])
            var events: [PlacementEventRow] = []
            for target in targets where target.answer == PlacementAnswer.pending.rawValue {
                try db.execute(
                    sql: "UPDATE placement_target SET answer = ?, answered_at = ? WHERE placement = ? AND hospital = ?",
                    arguments: [PlacementAnswer.cancelled.rawValue, at, placement, target.hospital]
                )
                events.append(
                    try Self.appendPlacementEvent(
                        db,
                        placement: row,
                        hospital: target.hospital,
                        answer: .cancelled,
                        reason: nil,
                        noteSealed: nil,
                        at: at
                    )
                )
            }
            return .done(events)
        }
    }

    func placement(_ id: String) async throws(ReceiverError) -> (PlacementRow, [PlacementTargetRow])? {
        try await read { db in try Self.placement(db, id) }
    }

    func placements(hospital: String, pendingOnly: Bool) async throws(ReceiverError)
        -> [(PlacementRow, [PlacementTargetRow])]
    {
        try await read { db in
            let ids = try String.fetchAll(
                db,
                sql: """
                    SELECT p.id FROM placement p JOIN placement_target t ON t.placement = p.id
                    WHERE t.hospital = ? AND (? = 0 OR t.answer = 'pending') ORDER BY p.created_at DESC
                    """,
                arguments: [hospital, pendingOnly ? 1 : 0]
            )
            return try ids.compactMap { try Self.placement(db, $0) }
        }
    }

    func waitingPlacements(before: Int64) async throws(ReceiverError) -> [(id: String, device: String)] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT p.id, p.device FROM placement p
                    WHERE p.created_at < ? AND p.placed_hospital IS NULL AND p.cancelled_at IS NULL
                    AND EXISTS (SELECT 1 FROM placement_target t WHERE t.placement = p.id AND t.answer = 'pending')
                    ORDER BY p.created_at, p.id
                    """,
                arguments: [before]
            ).map { (id: $0["id"], device: $0["device"]) }
        }
    }

    func placements(since: Int64, until: Int64) async throws(ReceiverError) -> [(PlacementRow, [PlacementTargetRow])] {
        try await read { db in
            let ids = try String.fetchAll(
                db,
                sql: "SELECT id FROM placement WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
                arguments: [since, until]
            )
            return try ids.compactMap { try Self.placement(db, $0) }
        }
    }

    func placementEvents(device: String, after sequence: Int64) async throws(ReceiverError) -> [PlacementEventRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM placement_event WHERE device = ? AND sequence > ? ORDER BY sequence",
                arguments: [device, sequence]
            ).map(Self.placementEvent)
        }
    }

    func placementEvents(device: String, since: Int64) async throws(ReceiverError) -> [PlacementEventRow] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM placement_event WHERE device = ? AND at >= ? ORDER BY sequence",
                arguments: [device, since]
            ).map(Self.placementEvent)
        }
    }

    func placementBoardEvents(hospital: String, after position: Int64) async throws(ReceiverError)
        -> [PlacementEventRow]
    {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM placement_event WHERE hospital = ? AND board_sequence > ? ORDER BY board_sequence",
                arguments: [hospital, position]
            ).map(Self.placementEvent)
        }
    }

    func placementEvents(ids: [Int64]) async throws(ReceiverError) -> [PlacementEventRow] {
        guard !ids.isEmpty else { return [] }
        return try await read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT * FROM placement_event WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ","))) ORDER BY id",
                arguments: StatementArguments(ids)
            ).map(Self.placementEvent)
        }
    }

    // MARK: - Rows

    private static func appendPlacementEvent(
        _ db: Database,
        placement: PlacementRow,
        hospital: String,
        answer: PlacementAnswer,
        reason: String?,
        noteSealed: Data?,
        at: Int64
    ) throws -> PlacementEventRow {
        let (sequence, board) = try nextPositions(db, device: placement.device, hospital: hospital)
        try db.execute(
            sql: """
                INSERT INTO placement_event (hospital, board_sequence, device, sequence, placement, set_uuid, answer,
                    reason, note_sealed, at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                hospital, board, placement.device, sequence, placement.id, placement.set, answer.rawValue, reason,
                noteSealed, at,
            ]
        )
        return PlacementEventRow(
            id: db.lastInsertedRowID,
            hospital: hospital,
            boardSequence: board,
            device: placement.device,
            sequence: sequence,
            placement: placement.id,
            set: placement.set,
            answer: answer.rawValue,
            reason: reason,
            noteSealed: noteSealed,
            at: at
        )
    }

    private static func placement(_ db: Database, _ id: String) throws -> (PlacementRow, [PlacementTargetRow])? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM placement WHERE id = ?", arguments: [id]) else {
            return nil
        }
        let targets = try Row.fetchAll(
            db,
            sql: "SELECT * FROM placement_target WHERE placement = ? ORDER BY hospital",
            arguments: [id]
        ).map(target)
        return (placement(row), targets)
    }

    private static func acceptance(_ row: Row) -> AcceptanceRow {
        AcceptanceRow(
            hospital: row["hospital"],
            revision: row["revision"],
            body: row["body"],
            staff: row["staff"],
            at: row["at"]
        )
    }

    private static func placement(_ row: Row) -> PlacementRow {
        PlacementRow(
            id: row["id"],
            device: row["device"],
            set: row["set_uuid"],
            requestSHA: row["request_sha"],
            createdAt: row["created_at"],
            placedHospital: row["placed_hospital"],
            placedAt: row["placed_at"],
            cancelledAt: row["cancelled_at"]
        )
    }

    private static func target(_ row: Row) -> PlacementTargetRow {
        PlacementTargetRow(
            placement: row["placement"],
            hospital: row["hospital"],
            answer: row["answer"],
            reason: row["reason"],
            noteSealed: row["note_sealed"],
            summarySealed: row["summary_sealed"],
            answeredAt: row["answered_at"],
            staff: row["staff"]
        )
    }

    private static func placementEvent(_ row: Row) -> PlacementEventRow {
        PlacementEventRow(
            id: row["id"],
            hospital: row["hospital"],
            boardSequence: row["board_sequence"],
            device: row["device"],
            sequence: row["sequence"],
            placement: row["placement"],
            set: row["set_uuid"],
            answer: row["answer"],
            reason: row["reason"],
            noteSealed: row["note_sealed"],
            at: row["at"]
        )
    }
}
