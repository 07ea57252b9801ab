import Crypto
import Foundation
public import GRDB
public import Logging

/// One stored audit entry, as exported.
public struct AuditEntry: Hashable, Sendable, Codable {
    /// The position in the chain, from 1, without gaps.
    public var sequence: Int64
    /// When it was recorded (both clocks).
    public var timestamp: AuditTimestamp
    /// What happened.
    public var event: AuditEvent
    /// The hash of the previous entry (or of the genesis value for entry 1), hex.
    public var previousHash: String
    /// SHA-256 over the domain tag, the previous hash and the canonical body, hex.
    public var hash: String
    /// The canonical body exactly as hashed (UTF-8 JSON), so that an export can be verified off the device.
    public var body: String
}

/// The signed chain head: the last sequence number and hash, signed with the device signing key.
public struct AuditHead: Hashable, Sendable, Codable {
    /// The number of entries (and sequence of the last one) at signing time.
    public var sequence: Int64
    /// The hash of the last entry, hex.
    public var hash: String
    /// When the head was signed (wall clock), in milliseconds since 1970; this exact value is signed.
    public var signedAtMilliseconds: Int64
    /// The Ed25519 public key that signed it, base64.
    public var signingPublicKey: String
    /// The Ed25519 signature, base64.
    public var signature: String
}

/// Entries and the signed head read in one snapshot (one read transaction), as `kyukyu audit export` writes
/// them: an append between reading the entries and reading the head cannot make them disagree.
public struct AuditExport: Hashable, Sendable, Codable {
    /// The entries, in chain order.
    public var entries: [AuditEntry]
    /// The signed head of the same snapshot (`nil` if nothing was ever appended).
    public var head: AuditHead?

    /// Creates an export.
    public init(entries: [AuditEntry], head: AuditHead?) {
        self.entries = entries
        self.head = head
    }
}

/// One finding of ``AuditTrail/verify(anchor:)``.
public struct AuditProblem: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The kind of finding.
    public var kind: Kind
    /// The sequence number (row position) concerned, if any.
    public var sequence: Int64?
    /// Details for a human reader.
    public var detail: String

    /// The kinds of finding; each tampering pattern maps to its own kind.
    public struct Kind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        /// The kind name.
        public let rawValue: String
        /// Wraps a kind name.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The kind name.
        public var description: String { self.rawValue }

        /// An entry's content no longer matches its hash: edited.
        public static let altered = Kind(rawValue: "altered")
        /// Sequence numbers are missing in the middle of the chain: deleted.
        public static let missing = Kind(rawValue: "missing")
        /// An entry sits at a position other than the one it was written at: reordered.
        public static let reordered = Kind(rawValue: "reordered")
        /// An entry does not link to the one before it (and no other finding explains it).
        public static let chainBroken = Kind(rawValue: "chain-broken")
        /// Entries at the end are gone: fewer entries than the signed head counts.
        public static let truncated = Kind(rawValue: "truncated")
        /// Entries exist beyond the signed head: appended without the device key.
        public static let unsignedEntries = Kind(rawValue: "unsigned-entries")
        /// The head is missing although entries exist.
        public static let headMissing = Kind(rawValue: "head-missing")
        /// The head signature does not verify with the device key, or the head does not match the last entry.
        public static let headInvalid = Kind(rawValue: "head-invalid")
        /// The chain does not extend an exported anchor head (rolled back or replaced).
        public static let anchorMismatch = Kind(rawValue: "anchor-mismatch")
    }

    /// A one-line description.
    public var description: String {
        if let sequence { return "\(self.kind) at #\(sequence): \(self.detail)" }
        return "\(self.kind): \(self.detail)"
    }
}

/// A suspicious step of the wall clock between two consecutive entries.
public struct ClockJump: Hashable, Sendable, Codable {
    /// The sequence of the later entry.
    public var sequence: Int64
    /// Wall-clock change minus monotonic change, in seconds (negative: the wall clock went back).
    public var skewSeconds: Double
    /// Whether the two entries were in different boots (monotonic time not comparable).
    public var acrossReboot: Bool
}

/// The result of verifying the audit trail.
public struct AuditVerification: Hashable, Sendable, Codable {
    /// The number of entries stored.
    public var entryCount: Int
    /// The signed head, if present.
    public var head: AuditHead?
    /// Findings that indicate tampering or corruption. Empty means the chain is intact.
    public var problems: [AuditProblem]
    /// Clock jumps seen (not tampering, but a reason to distrust wall times around them).
    public var clockJumps: [ClockJump]

    /// Set only by a partial export check (``AuditTrail/verifyExport(entries:head:signingPublicKey:clockJumpTolerance:allowingPartial:)``
    /// with `allowingPartial`) of an export that starts after entry 1: the entries before this sequence
    /// number, and the link of this entry to them, were not checked.
    public var uncheckedBefore: Int64?

    /// Whether no problem was found (clock jumps do not count).
    public var isIntact: Bool { self.problems.isEmpty }

    /// Whether a problem of `kind` was found.
    public func has(_ kind: AuditProblem.Kind) -> Bool { self.problems.contains { $0.kind == kind } }
}

/// The append-only, hash-chained, signed audit trail stored beside the vault.
///
/// Entry `n` stores `hash_n = SHA-256("kyukyu.audit.entry.v1\0" ‖ hash_{n-1} ‖ body_n)`, where the body
/// is the canonical JSON of the sequence number, both clock readings and the event. After each append
/// the head `(n, hash_n, signedAt)` is signed with the device's Ed25519 key in the same transaction.
/// Editing an entry breaks its hash; deleting one leaves a gap; moving one puts a body whose sequence
/// differs from its position; removing entries from the end leaves fewer entries than the signed head
/// counts, and nobody without the device key can sign a shorter head.
public final class AuditTrail: Sendable {
    private let writer: any DatabaseWriter
    private let auditKey: Data
    private let signingKey: Data
    private let clock: any AuditClock
    private let logger: Logger
    /// A clock jump above this many seconds is flagged by verification.
    public let clockJumpTolerance: Double

    /// Creates a trail over a migrated vault database (see ``VaultDatabase``).
    public init(
        database: any DatabaseWriter,
        keyring: DeviceKeyring,
        clock: any AuditClock = SystemAuditClock(),
        clockJumpTolerance: Double = 2,
        logger: Logger
    ) {
        self.writer = database
        self.auditKey = keyring.auditKey
        self.signingKey = keyring.signingKey
        self.clock = clock
        self.clockJumpTolerance = clockJumpTolerance
        self.logger = logger
    }

    /// The device's audit signing public key (raw Ed25519), to pin when verifying exports elsewhere.
    public var signingPublicKey: Data {
        (try? Curve25519.Signing.PrivateKey(rawRepresentation: self.signingKey))?.publicKey.rawRepresentation ?? Data()
    }

    /// The keyed hash of a card certificate serial, for ``AuditEvent/cardRead(incident:tokenType:serial:by:)``.
    public func serialDigest(ofCertificateSerial serial: some DataProtocol) -> CertificateSerialDigest {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: self.auditKey))
        hmac.update(data: Array("kyukyu.audit.serial.v1\0".utf8))
        hmac.update(data: serial)
        return CertificateSerialDigest(hexValue: hex(hmac.finalize()))
    }

    /// Appends an event in its own short transaction and returns its sequence number.
    @discardableResult
    public func append(_ event: AuditEvent) async throws -> Int64 {
        try await self.writer.write { db in try self.append(event, in: db) }
    }

    /// Appends within a caller's transaction, so that an action and its audit entry commit together.
    /// (SPI for the benchmark, whose plain baseline writes the same entry in the same transaction.)
    @_spi(Benchmarks) @discardableResult
    public func append(_ event: AuditEvent, in db: Database) throws -> Int64 {
        // The signed head is the authority for what the chain commits to. Tampering must stay visible
        // after later appends, never be "healed" by them:
        // - rows cut off the end: the next entry still links to the signed head, so the gap remains;
        // - rows appended without the key: the next entry skips past them but links to the signed
        //   head, so the forged rows break the chain;
        // - head deleted: the next entry links to an all-zero hash, a break verification reports.
        let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_head WHERE id = 1")
        let tailSequence =
            try Int64.fetchOne(db, sql: "SELECT seq FROM audit_entry ORDER BY seq DESC LIMIT 1") ?? 0
        let headSequence: Int64 = head?["seq"] ?? 0
        let sequence = max(headSequence, tailSequence) + 1
        let previousHash: Data
        if let head {
            previousHash = head["hash"]
        } else if tailSequence > 0 {
            previousHash = Data(repeating: 0, count: 32)
            self.logger.error("audit head missing while entries exist: the chain continues with a visible break")
        } else {
            previousHash = self.genesisHash
        }
        let timestamp = self.clock.now()
        let body = try Self.encodeBody(sequence: sequence, timestamp: timestamp, event: event)
        let hash = Self.entryHash(previous: previousHash, body: body)
        try db.execute(
            sql: "INSERT INTO audit_entry (seq, wall_time, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
            arguments: [sequence, timestamp.wall.timeIntervalSince1970, body, previousHash, hash]
        )
        let signedAt = Int64((timestamp.wall.timeIntervalSince1970 * 1000).rounded())
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: self.signingKey)
        let signature = try key.signature(for: Self.headMessage(sequence: sequence, hash: hash, signedAt: signedAt))
        try db.execute(
            sql: """
                INSERT INTO audit_head (id, seq, hash, signed_at, signing_key, signature) VALUES (1, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                    signed_at = excluded.signed_at, signing_key = excluded.signing_key, signature = excluded.signature
                """,
            arguments: [sequence, hash, signedAt, key.publicKey.rawRepresentation, signature]
        )
        var logger = self.logger
        logger[metadataKey: "kyukyu.audit.seq"] = "\(sequence)"
        logger[metadataKey: "kyukyu.audit.action"] = "\(event.action)"
        if let incident = event.incident { logger[metadataKey: "kyukyu.incident"] = "\(incident)" }
        logger.debug("audit entry appended")
        return sequence
    }

    /// The current signed head, if any entry has been written.
    public func head() async throws -> AuditHead? {
        try await self.writer.read { db in try Self.fetchHead(db) }
    }

    /// Verifies the chain and the signed head with the device key.
    ///
    /// - Parameter anchor: a head exported earlier (kept off the device); if given, the chain must still
    ///   contain that entry with the same hash, which detects a rollback of the whole file to an older
    ///   state that a local check cannot see.
    public func verify(anchor: AuditHead? = nil) async throws -> AuditVerification {
        try await verify(anchors: anchor.map { [$0] } ?? [])
    }

    /// Verifies the chain and the signed head, and that the chain still contains every one of `anchors` (heads
    /// kept off the device: an export, or the anchors a hospital's receiver kept from the documents it got).
    public func verify(anchors: [AuditHead]) async throws -> AuditVerification {
        let (rows, head) = try await self.writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT seq, wall_time, body, prev_hash, hash FROM audit_entry ORDER BY seq"
            )
            .map {
                StoredRow(
                    sequence: $0["seq"],
                    wallTime: $0["wall_time"],
                    body: $0["body"],
                    previousHash: $0["prev_hash"],
                    hash: $0["hash"]
                )
            }
            return (rows, try Self.fetchHead(db))
        }
        return self.verify(rows: rows, head: head, anchors: anchors)
    }

    /// Verifies an export (entries in chain order plus the signed head) off the device, against a
    /// pinned signing public key (raw Ed25519, 32 bytes) obtained from the device out of band.
    ///
    /// Strict by default: the export must start at entry 1 (linked to the genesis value of the key) and end
    /// at the signed head, so an export with its first entries removed reports them ``AuditProblem/Kind/missing``.
    /// With `allowingPartial` (an export made with `since`), an export may start later: the link of its first
    /// entry to the entries before it cannot be checked, everything after it can, and
    /// ``AuditVerification/uncheckedBefore`` says where the check began.
    public static func verifyExport(
        entries: [AuditEntry],
        head: AuditHead,
        signingPublicKey: Data,
        clockJumpTolerance: Double = 2,
        allowingPartial: Bool = false
    ) -> AuditVerification {
        let rows = entries.map { entry in
            let bodyBytes = Data(entry.body.utf8)
            return StoredRow(
                sequence: entry.sequence,
                wallTime: (try? decodeBody(bodyBytes))?.wall ?? .nan,
                body: bodyBytes,
                previousHash: Data(hexString: entry.previousHash) ?? Data(),
                hash: Data(hexString: entry.hash) ?? Data()
            )
        }
        var verification = verifyChain(
            rows: rows,
            head: head,
            anchors: [],
            signingPublicKey: signingPublicKey,
            clockJumpTolerance: clockJumpTolerance,
            partial: allowingPartial
        )
        if allowingPartial, let first = entries.first, first.sequence > 1 {
            verification.uncheckedBefore = first.sequence
        }
        // The structured fields travel beside the body; they must say the same as the hashed body.
        for entry in entries {
            guard let body = try? decodeBody(Data(entry.body.utf8)) else { continue }
            // Exports may carry the wall time with whole-second precision (ISO 8601).
            let timestamp = body.timestamp
            let sameTime =
                abs(timestamp.wall.timeIntervalSince(entry.timestamp.wall)) < 1
                && timestamp.monotonicNanoseconds == entry.timestamp.monotonicNanoseconds
                && timestamp.bootID == entry.timestamp.bootID
            if body.event != entry.event || !sameTime,
                !verification.problems.contains(where: { $0.sequence == entry.sequence })
            {
                verification.problems.append(
                    .init(kind: .altered, sequence: entry.sequence, detail: "fields differ from the hashed body")
                )
            }
        }
        return verification
    }

    /// Entries recorded at or after `since` (wall clock), in chain order, with their hashes.
    public func export(since: Date? = nil) async throws -> [AuditEntry] {
        try await self.exportSnapshot(since: since).entries
    }

    /// Entries recorded at or after `since` and the signed head, read in one read transaction, so that
    /// they describe the same state even while other connections append.
    public func exportSnapshot(since: Date? = nil) async throws -> AuditExport {
        let (rows, head) = try await self.writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT seq, wall_time, body, prev_hash, hash FROM audit_entry WHERE wall_time >= ? ORDER BY seq",
                arguments: [since?.timeIntervalSince1970 ?? -Double.greatestFiniteMagnitude]
            ).map {
                StoredRow(
                    sequence: $0["seq"],
                    wallTime: $0["wall_time"],
                    body: $0["body"],
                    previousHash: $0["prev_hash"],
                    hash: $0["hash"]
                )
            }
            return (rows, try Self.fetchHead(db))
        }
        let entries = try rows.map { row in
            let body = try Self.decodeBody(row.body)
            return AuditEntry(
                sequence: row.sequence,
                timestamp: body.timestamp,
                event: body.event,
                previousHash: hex(row.previousHash),
                hash: hex(row.hash),
                body: String(decoding: row.body, as: UTF8.self)
            )
        }
        return AuditExport(entries: entries, head: head)
    }

    /// The number of stored entries.
    public func count() async throws -> Int {
        try await self.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_entry") ?? 0 }
    }

    // MARK: - Internals

    struct StoredRow: Sendable {
        var sequence: Int64
        var wallTime: Double
        var body: Data
        var previousHash: Data
        var hash: Data
    }

    struct Body: Codable {
        var seq: Int64
        var wall: Double
        var monotonicNanoseconds: UInt64
        var bootID: String
        var event: AuditEvent

        var timestamp: AuditTimestamp {
            AuditTimestamp(
                wall: Date(timeIntervalSince1970: self.wall),
                monotonicNanoseconds: self.monotonicNanoseconds,
                bootID: self.bootID
            )
        }
    }

    var genesisHash: Data { Self.genesisHash(signingPublicKey: self.signingPublicKey) }

    static func genesisHash(signingPublicKey: Data) -> Data {
        Data(SHA256.hash(data: Array("kyukyu.audit.genesis.v1\0".utf8) + Array(signingPublicKey)))
    }

    static func encodeBody(sequence: Int64, timestamp: AuditTimestamp, event: AuditEvent) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = Body(
            seq: sequence,
            wall: timestamp.wall.timeIntervalSince1970,
            monotonicNanoseconds: timestamp.monotonicNanoseconds,
            bootID: timestamp.bootID,
            event: event
        )
        return try encoder.encode(body)
    }

    static func decodeBody(_ data: Data) throws -> Body {
        do {
            return try JSONDecoder().decode(Body.self, from: data)
        } catch {
            throw VaultError.auditFailure(reason: "an audit entry body cannot be decoded")
        }
    }

    static func entryHash(previous: Data, body: Data) -> Data {
        var hasher = SHA256()
        hasher.update(data: Array("kyukyu.audit.entry.v1\0".utf8))
        hasher.update(data: previous)
        hasher.update(data: body)
        return Data(hasher.finalize())
    }

    static func headMessage(sequence: Int64, hash: Data, signedAt: Int64) -> Data {
        var message = Data("kyukyu.audit.head.v1\0".utf8)
        withUnsafeBytes(of: UInt64(bitPattern: sequence).bigEndian) { message.append(contentsOf: $0) }
        message.append(hash)
        withUnsafeBytes(of: UInt64(bitPattern: signedAt).bigEndian) { message.append(contentsOf: $0) }
        return message
    }

    static func fetchHead(_ db: Database) throws -> AuditHead? {
        guard let row = try Row.fetchOne(db, sql: "SELECT seq, hash, signed_at, signing_key, signature FROM audit_head")
        else { return nil }
        return AuditHead(
            sequence: row["seq"],
            hash: hex(row["hash"] as Data),
            signedAtMilliseconds: row["signed_at"],
            signingPublicKey: (row["signing_key"] as Data).base64EncodedString(),
            signature: (row["signature"] as Data).base64EncodedString()
        )
    }

    func verify(rows: [StoredRow], head: AuditHead?, anchors: [AuditHead]) -> AuditVerification {
        Self.verifyChain(
            rows: rows,
            head: head,
            anchors: anchors,
            signingPublicKey: self.signingPublicKey,
            clockJumpTolerance: self.clockJumpTolerance,
            partial: false
        )
    }

    /// The chain check shared by the local verification and the verification of exports.
    /// With `partial`, the rows may start after entry 1 (an export `since` a time).
    static func verifyChain(
        rows: [StoredRow],
        head: AuditHead?,
        anchors: [AuditHead],
        signingPublicKey: Data,
        clockJumpTolerance: Double,
        partial: Bool
    ) -> AuditVerification {
        let genesisHash = Self.genesisHash(signingPublicKey: signingPublicKey)
        var problems: [AuditProblem] = []
        var jumps: [ClockJump] = []
        var previous: (row: StoredRow, body: Body?)?
        var hashesBySequence: [Int64: String] = [:]
        for row in rows {
            var rowHasFinding = false
            let body = try? Self.decodeBody(row.body)
            // wall_time is an unhashed copy kept for `export(since:)`; it must agree with the body.
            if Self.entryHash(previous: row.previousHash, body: row.body) != row.hash || body == nil
                || body?.wall != row.wallTime
            {
                problems.append(
                    .init(kind: .altered, sequence: row.sequence, detail: "content does not match its hash")
                )
                rowHasFinding = true
            } else if let body, body.seq != row.sequence {
                problems.append(
                    .init(
                        kind: .reordered,
                        sequence: row.sequence,
                        detail: "entry written as #\(body.seq) is stored at position #\(row.sequence)"
                    )
                )
                rowHasFinding = true
            }
            let expected = previous.map { $0.row.sequence + 1 } ?? (partial ? row.sequence : 1)
            if row.sequence > expected {
                let range = expected == row.sequence - 1 ? "#\(expected)" : "#\(expected)–#\(row.sequence - 1)"
                problems.append(.init(kind: .missing, sequence: expected, detail: "entries \(range) are missing"))
                rowHasFinding = true
            }
            let expectedPrevious =
                previous?.row.hash ?? (row.sequence == 1 || !partial ? genesisHash : row.previousHash)
            if !rowHasFinding, row.previousHash != expectedPrevious {
                let previousFlagged = problems.contains { $0.sequence == previous?.row.sequence }
                if !previousFlagged {
                    problems.append(
                        .init(
                            kind: .chainBroken,
                            sequence: row.sequence,
                            detail: "does not link to the entry before it"
                        )
                    )
                }
            }
            if let body, let previousBody = previous?.body {
                let wallDelta = body.wall - previousBody.wall
                if body.bootID == previousBody.bootID {
                    let monoDelta =
                        (Double(body.monotonicNanoseconds) - Double(previousBody.monotonicNanoseconds)) / 1e9
                    let skew = wallDelta - monoDelta
                    if abs(skew) > clockJumpTolerance || monoDelta < 0 {
                        jumps.append(.init(sequence: row.sequence, skewSeconds: skew, acrossReboot: false))
                    }
                } else if wallDelta < 0 {
                    jumps.append(.init(sequence: row.sequence, skewSeconds: wallDelta, acrossReboot: true))
                }
            }
            hashesBySequence[row.sequence] = hex(row.hash)
            previous = (row, body)
        }

        if let head {
            let last = rows.last
            if !Self.headSignatureIsValid(head, signingPublicKey: signingPublicKey) {
                problems.append(.init(kind: .headInvalid, sequence: head.sequence, detail: "signature does not verify"))
            }
            if let last, head.sequence > last.sequence {
                problems.append(
                    .init(
                        kind: .truncated,
                        sequence: last.sequence + 1,
                        detail: "signed head counts \(head.sequence) entries, last stored is #\(last.sequence)"
                    )
                )
            } else if last == nil, head.sequence > 0 {
                problems.append(
                    .init(
                        kind: .truncated,
                        sequence: 1,
                        detail: "signed head counts \(head.sequence) entries, none stored"
                    )
                )
            } else if let last, head.sequence < last.sequence {
                problems.append(
                    .init(
                        kind: .unsignedEntries,
                        sequence: head.sequence + 1,
                        detail: "entries after the signed head #\(head.sequence) are not covered by a signature"
                    )
                )
            } else if let last, head.sequence == last.sequence, head.hash != hex(last.hash) {
                problems.append(
                    .init(kind: .headInvalid, sequence: head.sequence, detail: "head hash differs from the last entry")
                )
            }
        } else if !rows.isEmpty {
            problems.append(.init(kind: .headMissing, sequence: nil, detail: "entries exist but no signed head"))
        }

        for anchor in anchors {
            if !Self.headSignatureIsValid(anchor, signingPublicKey: signingPublicKey) {
                problems.append(
                    .init(kind: .anchorMismatch, sequence: anchor.sequence, detail: "anchor signature invalid")
                )
            } else if hashesBySequence[anchor.sequence] != anchor.hash {
                problems.append(
                    .init(
                        kind: .anchorMismatch,
                        sequence: anchor.sequence,
                        detail: "the chain does not contain the anchored entry #\(anchor.sequence)"
                    )
                )
            }
        }
        return AuditVerification(entryCount: rows.count, head: head, problems: problems, clockJumps: jumps)
    }

    static func headSignatureIsValid(_ head: AuditHead, signingPublicKey: Data) -> Bool {
        guard let signature = Data(base64Encoded: head.signature),
            let hash = Data(hexString: head.hash),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: signingPublicKey)
        else { return false }
        return key.isValidSignature(
            signature,
            for: Self.headMessage(sequence: head.sequence, hash: hash, signedAt: head.signedAtMilliseconds)
        )
    }
}

extension Data {
    init?(hexString: String) {
        let bytes = Array(hexString.utf8)
        guard bytes.count % 2 == 0 else { return nil }
        var out = Data(capacity: bytes.count / 2)
        var index = 0
        while index < bytes.count {
            guard let high = hexValue(bytes[index]), let low = hexValue(bytes[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        self = out
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
