import Crypto
public import Foundation
internal import GRDB
public import KyukyuDomain
import KyukyuVault
import Logging

/// Backups of a receiver's state, taken while it serves, and their restore into a new state folder.
///
/// A backup holds the databases as SQLite's online backup copies them: one consistent snapshot each, taken
/// without stopping intake. The documents in `hospital.sqlite` are sealed with the receiver's keyring
/// (`device-keyring.json`), so a backup without the keyring is ciphertext. By default the keys are left out, to be
/// kept apart (offline, or with another custodian); with `includeKeys` they go into `keys/` in the backup (0600),
/// which then is as sensitive as the receiver itself. `manifest.json` lists each file's SHA-256, and a restore
/// checks them before it writes anything.
public enum HospitalBackup {
    /// What a backup holds.
    public struct Manifest: Codable, Sendable, Hashable {
        /// `kyukyu-hospital-backup/1`.
        public var format: String
        /// When the snapshot was taken.
        public var createdAt: Date
        /// The document versions in the snapshot (a restore decrypts every one).
        public var documentVersions: Int
        /// The schema migrations applied to `hospital.sqlite`.
        public var migrations: [String]
        /// Each file (a path in the backup) and its SHA-256, hex.
        public var files: [String: String]
        /// Whether `keys/` holds the keyring, the staff key and the CA.
        public var includesKeys: Bool
    }

    /// The manifest's format name.
    public static let format = "kyukyu-hospital-backup/1"

    /// The state files that are keys: the documents' keyring and the staff's TOTP sealing key.
    static let keyFiles = ["device-keyring.json", "staff-secret.key"]

    /// Backs up the receiver whose state is `stateDirectory` (and whose CA is in `tlsDirectory`) into `destination`,
    /// which must not exist or be empty. Safe while the receiver serves.
    ///
    /// - Returns: The manifest written.
    public static func backup(
        stateDirectory: String,
        tlsDirectory: String,
        to destination: String,
        includeKeys: Bool,
        now: Date = Date()
    ) throws(ReceiverError) -> Manifest {
        do {
            try requireEmpty(destination)
            try PrivateFiles.ensureDirectory(destination)
            var files: [String: String] = [:]
            var migrations: [String] = []
            var versions = 0
            for name in [HospitalStore.fileName, "staff.sqlite"] {
                let source = stateDirectory + "/" + name
                guard FileManager.default.fileExists(atPath: source) else {
                    if name == HospitalStore.fileName { throw ReceiverError.storage("no \(name) in \(stateDirectory)") }
                    continue
                }
                var configuration = Configuration()
                configuration.readonly = true
                configuration.busyMode = .timeout(10)
                let live = try DatabasePool(path: source, configuration: configuration)
                let target = destination + "/" + name
                try PrivateFiles.touch(target)
                let copy = try DatabaseQueue(path: target)
                try live.backup(to: copy)
                if name == HospitalStore.fileName {
                    (migrations, versions) = try copy.read { db in
                        (
                            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid"),
                            try Int.fetchOne(db, sql: "SELECT count(*) FROM document") ?? 0
                        )
                    }
                }
                try copy.close()
                try live.close()
                files[name] = try digest(target)
            }
            if includeKeys {
                try PrivateFiles.ensureDirectory(destination + "/keys")
                var keys = keyFiles.map { (stateDirectory + "/" + $0, "keys/" + $0) }
                for name in ["ca.cert.pem", "ca.key.pem", "server.cert.pem", "server.key.pem"] {
                    keys.append((tlsDirectory + "/" + name, "keys/pki/" + name))
                }
                try PrivateFiles.ensureDirectory(destination + "/keys/pki")
                for (source, relative) in keys where FileManager.default.fileExists(atPath: source) {
                    let data = try Data(contentsOf: URL(fileURLWithPath: source))
                    try PrivateFiles.create(destination + "/" + relative, data, mode: 0o600)
                    files[relative] = SHA256.hash(data: data).hex
                }
            }
            let manifest = Manifest(
                format: format,
                createdAt: now,
                documentVersions: versions,
                migrations: migrations,
                files: files,
                includesKeys: includeKeys
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            try PrivateFiles.create(destination + "/manifest.json", try encoder.encode(manifest), mode: 0o600)
            return manifest
        } catch let error as ReceiverError {
            throw error
        } catch {
            throw .storage("the backup into \(destination) failed: \(HospitalStore.describe(error))")
        }
    }

    /// Restores the backup in `source` into `stateDirectory` (and the CA into `tlsDirectory`), which must not exist
    /// or be empty: a restore never overwrites a receiver's state. The keys come from the backup's `keys/` or, for
    /// a backup made without them, from `keysDirectory` (a folder with `device-keyring.json` and
    /// `staff-secret.key`, and the CA's files in `pki/` if it is to be restored too).
    ///
    /// Every file's SHA-256 is checked first; then the store is opened with the restored keyring and every
    /// document is decrypted. A backup that fails any check leaves `stateDirectory` removed again.
    ///
    /// - Returns: The number of document versions that decrypted.
    public static func restore(
        from source: String,
        stateDirectory: String,
        tlsDirectory: String,
        keysDirectory: String?,
        hospital: HospitalCode? = nil
    ) async throws(ReceiverError) -> Int {
        let manifest: Manifest
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            manifest = try decoder.decode(
                Manifest.self,
                from: Data(contentsOf: URL(fileURLWithPath: source + "/manifest.json"))
            )
        } catch {
            throw .invalidInput("\(source)/manifest.json is missing or unreadable: not a receiver backup")
        }
        guard manifest.format == format else {
            throw .invalidInput("\(source) is a \(manifest.format) backup; this release reads \(format)")
        }
        for (relative, expected) in manifest.files.sorted(by: { $0.key < $1.key }) {
            let actual = try? digest(source + "/" + relative)
            guard actual == expected else {
                throw .invalidInput("\(relative) in the backup does not match its manifest (damaged or altered)")
            }
        }
        let keySource: String
        if manifest.includesKeys {
            keySource = source + "/keys"
        } else if let keysDirectory {
            keySource = keysDirectory
        } else {
            throw .invalidInput(
                "this backup was made without its keys: give the folder holding device-keyring.json and "
                    + "staff-secret.key (--keys-from), kept apart from the backup"
            )
        }
        do {
            try requireEmpty(stateDirectory)
        } catch {
            throw .invalidInput("\(stateDirectory) is not empty: a restore never overwrites a receiver's state")
        }
        do {
            try PrivateFiles.ensureDirectory(stateDirectory)
            for name in [HospitalStore.fileName, "staff.sqlite"] where manifest.files[name] != nil {
                try PrivateFiles.create(
                    stateDirectory + "/" + name,
                    try Data(contentsOf: URL(fileURLWithPath: source + "/" + name)),
                    mode: 0o600
                )
            }
            for name in keyFiles where FileManager.default.fileExists(atPath: keySource + "/" + name) {
                try PrivateFiles.create(
                    stateDirectory + "/" + name,
                    try Data(contentsOf: URL(fileURLWithPath: keySource + "/" + name)),
                    mode: 0o600
                )
            }
            let pki = keySource + "/pki"
            if FileManager.default.fileExists(atPath: pki + "/ca.key.pem") {
                try PrivateFiles.ensureDirectory(tlsDirectory)
                for name in try FileManager.default.contentsOfDirectory(atPath: pki) {
                    try PrivateFiles.create(
                        tlsDirectory + "/" + name,
                        try Data(contentsOf: URL(fileURLWithPath: pki + "/" + name)),
                        mode: name.hasSuffix(".key.pem") ? 0o600 : 0o644
                    )
                }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: stateDirectory)
            throw .storage("the restore into \(stateDirectory) failed: \(HospitalStore.describe(error))")
        }
        do {
            let store = try HospitalStore.open(
                path: stateDirectory + "/" + HospitalStore.fileName,
                hospital: hospital,
                keyProvider: KeyFileProvider(stateDirectory: stateDirectory),
                logger: Logger(label: "kyukyu.hospital.restore") { _ in SwiftLogNoOpLogHandler() }
            )
            var count = 0
            try await store.forEachDocument { _, _ in count += 1 }
            try await store.close()
            guard count == manifest.documentVersions else {
                throw ReceiverError.storage(
                    "\(count) document versions decrypted, the backup holds \(manifest.documentVersions)"
                )
            }
            return count
        } catch {
            try? FileManager.default.removeItem(atPath: stateDirectory)
            throw .storage(
                "the restored documents do not open with these keys (the keyring of another receiver?): \((error as? ReceiverError)?.reason ?? HospitalStore.describe(error))"
            )
        }
    }

    private static func requireEmpty(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue, try FileManager.default.contentsOfDirectory(atPath: path).isEmpty else {
            throw ReceiverError.invalidInput("\(path) exists and is not an empty folder")
        }
    }

    private static func digest(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).hex
    }
}

extension Digest {
    /// Lower-case hex.
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
