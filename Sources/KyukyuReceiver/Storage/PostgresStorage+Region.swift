import Foundation
import KyukyuDomain
import Logging
import NIOCore
import PostgresNIO

/// Acceptance and placement requests on PostgreSQL (migration v3), as SQLiteStorage+Region.swift on SQLite. Every
/// change is announced at commit: `a:<hospital>` for a publication, `p:<id>` for a placement event.
extension PostgresStorage {
    static let regionMigration: (identifier: String, statements: [String]) = (
        "v3",
        [
            """
            CREATE TABLE acceptance (
                hospital TEXT NOT NULL PRIMARY KEY,
                revision BIGINT NOT NULL,
                body TEXT NOT NULL,
                staff TEXT,
                at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE acceptance_history (
                id BIGSERIAL PRIMARY KEY,
                hospital TEXT NOT NULL,
                revision BIGINT NOT NULL,
                body TEXT NOT NULL,
                staff TEXT,
                at BIGINT NOT NULL,
                UNIQUE (hospital, revision)
            )
            """,
            "CREATE INDEX acceptance_history_at ON acceptance_history(at)",
            """
            CREATE TABLE placement (
                id TEXT NOT NULL PRIMARY KEY,
                device TEXT NOT NULL,
                set_uuid TEXT NOT NULL,
                request_sha TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                placed_hospital TEXT,
                placed_at BIGINT,
                cancelled_at BIGINT
            )
            """,
            "CREATE INDEX placement_created ON placement(created_at)",
            """
            CREATE TABLE placement_target (
                placement TEXT NOT NULL REFERENCES placement(id),
                hospital TEXT NOT NULL,
                answer TEXT NOT NULL,
                reason TEXT,
                note_sealed BYTEA,
                summary_sealed BYTEA NOT NULL,
                answered_at BIGINT,
                staff TEXT,
                PRIMARY KEY (placement, hospital)
            )
            """,
            "CREATE INDEX placement_target_hospital ON placement_target(hospital, answer)",
            """
            CREATE TABLE placement_event (
                id BIGSERIAL PRIMARY KEY,
                hospital TEXT NOT NULL,
                board_sequence BIGINT NOT NULL,
                device TEXT NOT NULL,
                sequence BIGINT NOT NULL,
                placement TEXT NOT NULL,
                set_uuid TEXT NOT NULL,
                answer TEXT NOT NULL,
                reason TEXT,
                note_sealed BYTEA,
                at BIGINT NOT NULL,
                UNIQUE (device, sequence),
                UNIQUE (hospital, board_sequence)
            )
            """,
        ]
    )

    func acceptances() async throws(ReceiverError) -> [AcceptanceRow] {
        try await fetch(
            "SELECT hospital, revision, body, staff, at FROM acceptance WHERE revision > 0 ORDER BY hospital",
            Self.acceptance
        )
    }

    func acceptance(hospital: String) async throws(ReceiverError) -> AcceptanceRow? {
        try await fetch(
            "SELECT hospital, revision, body, staff, at FROM acceptance WHERE hospital = \(hospital) AND revision > 0",
            Self.acceptance
        ).first
    }

    func publishAcceptance(
        hospital: String,
        next: @escaping @Sendable (AcceptanceRow?) throws(ReceiverError) -> AcceptanceRow
    ) async throws(ReceiverError) -> AcceptanceRow {
        try await transaction { connection in
            // A row to lock even before the first publication (revision 0, no body: none yet), then the lock: the
            // instances publishing for one hospital take turns here.
            try await connection.query(
                """
                INSERT INTO acceptance (hospital, revision, body, staff, at) VALUES (\(hospital), 0, '', NULL, 0)
                ON CONFLICT (hospital) DO NOTHING
                """,
                logger: self.logger
            )
            let locked = try await connection.query(
                "SELECT hospital, revision, body, staff, at FROM acceptance WHERE hospital = \(hospital) FOR UPDATE",
                logger: self.logger
            ).collect().first.map(Self.acceptance)
            let row = try next(locked.flatMap { $0.revision == 0 ? nil : $0 })
            try await connection.query(
                """
                UPDATE acceptance SET revision = \(row.revision), body = \(row.body), staff = \(row.staff), at = \(row.at)
                WHERE hospital = \(row.hospital)
                """,
                logger: self.logger
            )
            try await connection.query(
                """
                INSERT INTO acceptance_history (hospital, revision, body, staff, at)
                VALUES (\(row.hospital), \(row.revision), \(row.body), \(row.staff), \(row.at))
                """,
                logger: self.logger
            )
            try await connection.query(
                "SELECT pg_notify(\(Self.eventsChannel), \("a:" + row.hospital))",
                logger: self.logger
            )
            return row
        }
    }

    func acceptanceHistory(since: Int64, until: Int64) async throws(ReceiverError) -> [AcceptanceRow] {
        try await fetch(
            """
            SELECT hospital, revision, body, staff, at FROM acceptance_history WHERE at >= \(since) AND at < \(until)
            ORDER BY at, id
            """,
            Self.acceptance
        )
    }

    func createPlacement(_ placement: PlacementRow, targets: [PlacementTargetRow]) async throws(ReceiverError)
        -> PlacementCreation
    {
        try await transaction { connection in
            let inserted = try await connection.query(
                """
                INSERT INTO placement (id, device, set_uuid, request_sha, created_at)
                VALUES (\(placement.id), \(placement.device), \(placement.set), \(placement.requestSHA),
                    \(placement.createdAt))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """,
                logger: self.logger
            ).collect()
            guard !inserted.isEmpty else {
                guard let (existing, _) = try await self.placement(connection, placement.id) else {
                    throw ReceiverError.conflict("the request is stored but cannot be read")
                }
                return .existing(existing)
            }
            try await self.lockPositions(connection, device: placement.device, hospitals: targets.map(\.hospital))
            var events: [PlacementEventRow] = []
            for target in targets {
                try await connection.query(
                    """
                    INSERT INTO placement_target (placement, hospital, answer, summary_sealed)
                    VALUES (\(placement.id), \(target.hospital), 'pending', \(ByteBuffer(bytes: target.summarySealed)))
                    """,
                    logger: self.logger
                )
                events.append(
                    try await self.appendPlacementEvent(
                        connection,
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
        try await transaction { connection in
            // The request's row first: two hospitals answering at once, on two instances, take turns here.
            guard let (row, targets) = try await self.placement(connection, placement, forUpdate: true) else {
                return .notFound
            }
            let target = targets.first { $0.hospital == hospital }
            if let refusal = PlacementRule.check(row, target: target, answer: answer) { return refusal }
            try await self.lockPositions(connection, device: row.device, hospitals: targets.map(\.hospital))
            try await connection.query(
                """
                UPDATE placement_target SET answer = \(answer.rawValue), reason = \(reason),
                    note_sealed = \(noteSealed.map { ByteBuffer(bytes: $0) }), answered_at = \(at), staff = \(staff)
                WHERE placement = \(placement) AND hospital = \(hospital)
                """,
                logger: self.logger
            )
            var events = [
                try await self.appendPlacementEvent(
                    connection,
                    placement: row,
                    hospital: hospital,
                    answer: answer,
                    reason: reason,
                    noteSealed: noteSealed,
                    at: at
                )
            ]
            if answer == .accepted {
                try await connection.query(
                    "UPDATE placement SET placed_hospital = \(hospital), placed_at = \(at) WHERE id = \(placement)",
                    logger: self.logger
                )
                for other in targets where other.hospital != hospital && other.answer == "pending" {
                    try await connection.query(
                        """
                        UPDATE placement_target SET answer = 'placed-elsewhere', answered_at = \(at)
                        WHERE placement = \(placement) AND hospital = \(other.hospital)
                        """,
                        logger: self.logger
                    )
                    events.append(
                        try await self.appendPlacementEvent(
                            connection,
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
        try await transaction { connection in
            guard let (row, targets) = try await self.placement(connection, placement, forUpdate: true),
                row.device == device
            else { return .notFound }
            if row.cancelledAt != nil { return .done([]) }
            if row.placedHospital != nil { return .conflict("a hospital has accepted the patient already") }
            try await self.lockPositions(connection, device: row.device, hospitals: targets.map(\.hospital))
            try await connection.query(
                "UPDATE placement SET cancelled_at = \(at) WHERE id = \(placement)",
                logger: self.logger
            )
            var events: [PlacementEventRow] = []
            for target in targets where target.answer == "pending" {
                try await connection.query(
                    """
                    UPDATE placement_target SET answer = 'cancelled', answered_at = \(at)
                    WHERE placement = \(placement) AND hospital = \(target.hospital)
                    """,
                    logger: self.logger
                )
                events.append(
                    try await self.appendPlacementEvent(
                        connection,
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
        try await transaction { connection in try await self.placement(connection, id) }
    }

    func placements(hospital: String, pendingOnly: Bool) async throws(ReceiverError)
        -> [(PlacementRow, [PlacementTargetRow])]
    {
        let ids = try await fetch(
            """
            SELECT p.id FROM placement p JOIN placement_target t ON t.placement = p.id
            WHERE t.hospital = \(hospital) AND (\(!pendingOnly) OR t.answer = 'pending') ORDER BY p.created_at DESC
            """
        ) { try $0.decode(String.self) }
        return try await transaction { connection in
            var found: [(PlacementRow, [PlacementTargetRow])] = []
            for id in ids { if let placement = try await self.placement(connection, id) { found.append(placement) } }
            return found
        }
    }

    func waitingPlacements(before: Int64) async throws(ReceiverError) -> [(id: String, device: String)] {
        try await fetch(
            """
            SELECT p.id, p.device FROM placement p
            WHERE p.created_at < \(before) AND p.placed_hospital IS NULL AND p.cancelled_at IS NULL
            AND EXISTS (SELECT 1 FROM placement_target t WHERE t.placement = p.id AND t.answer = 'pending')
            ORDER BY p.created_at, p.id
            """
        ) { row in
            let (id, device) = try row.decode((String, String).self)
            return (id: id, device: device)
        }
    }

    func placements(since: Int64, until: Int64) async throws(ReceiverError) -> [(PlacementRow, [PlacementTargetRow])] {
        let ids = try await fetch(
            """
            SELECT id FROM placement WHERE created_at >= \(since) AND created_at < \(until) ORDER BY created_at, id
            """
        ) { try $0.decode(String.self) }
        return try await transaction { connection in
            var found: [(PlacementRow, [PlacementTargetRow])] = []
            for id in ids { if let placement = try await self.placement(connection, id) { found.append(placement) } }
            return found
        }
    }

    static let placementEventColumns =
        "id, hospital, board_sequence, device, sequence, placement, set_uuid, answer, reason, note_sealed, at"

    func placementEvents(device: String, after sequence: Int64) async throws(ReceiverError) -> [PlacementEventRow] {
        try await fetch(
            """
            SELECT \(unescaped: Self.placementEventColumns) FROM placement_event
            WHERE device = \(device) AND sequence > \(sequence) ORDER BY sequence
            """,
            Self.placementEvent
        )
    }

    func placementEvents(device: String, since: Int64) async throws(ReceiverError) -> [PlacementEventRow] {
        try await fetch(
            """
            SELECT \(unescaped: Self.placementEventColumns) FROM placement_event
            WHERE device = \(device) AND at >= \(since) ORDER BY sequence
            """,
            Self.placementEvent
        )
    }

    func placementBoardEvents(hospital: String, after position: Int64) async throws(ReceiverError)
        -> [PlacementEventRow]
    {
        try await fetch(
            """
            SELECT \(unescaped: Self.placementEventColumns) FROM placement_event
            WHERE hospital = \(hospital) AND board_sequence > \(position) ORDER BY board_sequence
            """,
            Self.placementEvent
        )
    }

    func placementEvents(ids: [Int64]) async throws(ReceiverError) -> [PlacementEventRow] {
        guard !ids.isEmpty else { return [] }
        return try await fetch(
            "SELECT \(unescaped: Self.placementEventColumns) FROM placement_event WHERE id = ANY(\(ids)) ORDER BY id",
            Self.placementEvent
        )
    }

    // MARK: - Rows

    /// Takes the position counters a transaction will use, in the one order every transaction takes them (the
    /// device's, then the hospitals' by code), so that two transactions never wait on each other in a cycle.
    private func lockPositions(_ connection: PostgresConnection, device: String, hospitals: [String]) async throws {
        try await connection.query(
            """
            INSERT INTO device_sequence (device, last_sequence) VALUES (\(device), 0) ON CONFLICT (device) DO NOTHING
            """,
            logger: logger
        )
        try await connection.query(
            "SELECT last_sequence FROM device_sequence WHERE device = \(device) FOR UPDATE",
            logger: logger
        )
        for hospital in hospitals.sorted() {
            try await connection.query(
                """
                INSERT INTO tenant (code, last_board_sequence) VALUES (\(hospital), 0) ON CONFLICT (code) DO NOTHING
                """,
                logger: logger
            )
            try await connection.query(
                "SELECT last_board_sequence FROM tenant WHERE code = \(hospital) FOR UPDATE",
                logger: logger
            )
        }
    }

    private func appendPlacementEvent(
        _ connection: PostgresConnection,
        placement: PlacementRow,
        hospital: String,
        answer: PlacementAnswer,
        reason: String?,
        noteSealed: Data?,
        at: Int64
    ) async throws -> PlacementEventRow {
        let sequence =
            try await connection.query(
                """
                UPDATE device_sequence SET last_sequence = last_sequence + 1 WHERE device = \(placement.device)
                RETURNING last_sequence
                """,
                logger: logger
            ).collect().first.map({ try $0.decode(Int64.self) }) ?? 1
        let board =
            try await connection.query(
                """
                UPDATE tenant SET last_board_sequence = last_board_sequence + 1 WHERE code = \(hospital)
                RETURNING last_board_sequence
                """,
                logger: logger
            ).collect().first.map({ try $0.decode(Int64.self) }) ?? 1
        let id =
            try await connection.query(
                """
                INSERT INTO placement_event (hospital, board_sequence, device, sequence, placement, set_uuid, answer,
                    reason, note_sealed, at)
                VALUES (\(hospital), \(board), \(placement.device), \(sequence), \(placement.id), \(placement.set),
                    \(answer.rawValue), \(reason), \(noteSealed.map { ByteBuffer(bytes: $0) }), \(at))
                RETURNING id
                """,
                logger: logger
            ).collect().first.map({ try $0.decode(Int64.self) }) ?? 0
        try await connection.query("SELECT pg_notify(\(Self.eventsChannel), \("p:\(id)"))", logger: logger)
        return PlacementEventRow(
            id: id,
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

    private func placement(
        _ connection: PostgresConnection,
        _ id: String,
        forUpdate: Bool = false
    ) async throws -> (PlacementRow, [PlacementTargetRow])? {
        let lock = forUpdate ? " FOR UPDATE" : ""
        guard
            let row = try await connection.query(
                """
                SELECT id, device, set_uuid, request_sha, created_at, placed_hospital, placed_at, cancelled_at
                FROM placement WHERE id = \(id)\(unescaped: lock)
                """,
                logger: logger
            ).collect().first
        else { return nil }
        let (pid, device, set, sha, created, placed, placedAt, cancelled) = try row.decode(
            (String, String, String, String, Int64, String?, Int64?, Int64?).self
        )
        var targets: [PlacementTargetRow] = []
        for target in try await connection.query(
            """
            SELECT placement, hospital, answer, reason, note_sealed, summary_sealed, answered_at, staff
            FROM placement_target WHERE placement = \(id) ORDER BY hospital
            """,
            logger: logger
        ).collect() {
            let (placement, hospital, answer, reason, note, summary, answered, staff) = try target.decode(
                (String, String, String, String?, Data?, Data, Int64?, String?).self
            )
            targets.append(
                PlacementTargetRow(
                    placement: placement,
                    hospital: hospital,
                    answer: answer,
                    reason: reason,
                    noteSealed: note,
                    summarySealed: summary,
                    answeredAt: answered,
                    staff: staff
                )
            )
        }
        return (
            PlacementRow(
                id: pid,
                device: device,
                set: set,
                requestSHA: sha,
                createdAt: created,
                placedHospital: placed,
                placedAt: placedAt,
                cancelledAt: cancelled
            ),
            targets
        )
    }

    private static func acceptance(_ row: PostgresRow) throws -> AcceptanceRow {
        let (hospital, revision, body, staff, at) = try row.decode((String, Int64, String, String?, Int64).self)
        return AcceptanceRow(hospital: hospital, revision: revision, body: body, staff: staff, at: at)
    }

    private static func placementEvent(_ row: PostgresRow) throws -> PlacementEventRow {
        let (id, hospital, board, device, sequence, placement, set, answer, reason, note, at) = try row.decode(
            (Int64, String, Int64, String, Int64, String, String, String, String?, Data?, Int64).self
        )
        return PlacementEventRow(
            id: id,
            hospital: hospital,
            boardSequence: board,
            device: device,
            sequence: sequence,
            placement: placement,
            set: set,
            answer: answer,
            reason: reason,
            noteSealed: note,
            at: at
        )
    }
}
