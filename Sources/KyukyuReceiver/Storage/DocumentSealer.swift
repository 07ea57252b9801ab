import Crypto
import Foundation
import KyukyuVault

/// Seals what the receiver stores, with each hospital's own key, so that neither the database's operator nor
/// another tenant can read a document or a note: AES-GCM under an HKDF key derived from the receiver's device keyring
/// (KyukyuVault's 0600 key file, or its systemd credential) for that hospital alone, with the hospital and the row's
/// identity in the authenticated data (a row moved to another hospital or another set does not open).
///
/// `sealing` 1 is the receiver-wide key of the releases before tenancy (rows migrated from them keep it); 2 is the
/// per-hospital key.
struct DocumentSealer: Sendable {
    /// The HKDF purpose of the keys.
    static let purpose = "kyukyu-hospital documents"
    /// What new rows are sealed with.
    static let currentSealing = 2

    let keyring: DeviceKeyring

    private func key(hospital: String, sealing: Int, keyID: DeviceKeyID) throws -> SymmetricKey {
        switch sealing {
        case 1: try keyring.derivedKey(purpose: Self.purpose, keyID: keyID)
        default: try keyring.derivedKey(purpose: Self.purpose + " for " + hospital, keyID: keyID)
        }
    }

    private static func documentContext(hospital: String, sealing: Int, versionIdentifier: String) -> Data {
        Data((sealing == 1 ? "document \(versionIdentifier)" : "document \(hospital) \(versionIdentifier)").utf8)
    }

    private static func noteContext(hospital: String, sealing: Int, set: String) -> Data {
        Data((sealing == 1 ? "note \(set)" : "note \(hospital) \(set)").utf8)
    }

    /// Seals a posted document for `hospital`: the key's id and the combined box.
    func sealDocument(_ body: Data, hospital: String, versionIdentifier: String) throws(ReceiverError) -> (
        keyID: String, sealed: Data
    ) {
        let keyID = keyring.currentKeyID
        do {
            let key = try key(hospital: hospital, sealing: Self.currentSealing, keyID: keyID)
            let box = try AES.GCM.seal(
                body,
                using: key,
                authenticating: Self.documentContext(
                    hospital: hospital,
                    sealing: Self.currentSealing,
                    versionIdentifier: versionIdentifier
                )
            )
            return (keyID.rawValue, box.combined!)
        } catch {
            throw .storage("the document cannot be sealed")
        }
    }

    /// Opens a stored document (throws on another keyring, another hospital's row, or a damaged one).
    func openDocument(_ row: SealedDocumentRow) throws -> Data {
        let key = try key(
            hospital: row.version.hospital,
            sealing: row.sealing,
            keyID: DeviceKeyID(rawValue: row.keyID)
        )
        return try AES.GCM.open(
            AES.GCM.SealedBox(combined: row.sealed),
            using: key,
            authenticating: Self.documentContext(
                hospital: row.version.hospital,
                sealing: row.sealing,
                versionIdentifier: row.version.versionIdentifier
            )
        )
    }

    /// Seals a staff note of a set at `hospital`: the key id, a zero byte, and the combined box.
    func sealNote(_ note: String, hospital: String, set: String) throws(ReceiverError) -> Data {
        do {
            let keyID = keyring.currentKeyID
            let key = try key(hospital: hospital, sealing: Self.currentSealing, keyID: keyID)
            let box = try AES.GCM.seal(
                Data(note.utf8),
                using: key,
                authenticating: Self.noteContext(hospital: hospital, sealing: Self.currentSealing, set: set)
            )
            return Data(keyID.rawValue.utf8) + Data([0]) + box.combined!
        } catch {
            throw .storage("the note cannot be sealed")
        }
    }

    /// Opens a sealed note (nil for none).
    func openNote(_ data: Data?, sealing: Int, hospital: String, set: String) throws -> String? {
        guard let data, let separator = data.firstIndex(of: 0) else { return nil }
        let keyID = DeviceKeyID(rawValue: String(decoding: data[data.startIndex..<separator], as: UTF8.self))
        let key = try key(hospital: hospital, sealing: sealing, keyID: keyID)
        let box = try AES.GCM.SealedBox(combined: data[(separator + 1)...])
        return String(
            decoding: try AES.GCM.open(
                box,
                using: key,
                authenticating: Self.noteContext(hospital: hospital, sealing: sealing, set: set)
            ),
            as: UTF8.self
        )
    }

    /// Seals other values of a hospital (a placement's summary, an answer's note) the way notes are, with `context`
    /// (what the value is, and whose) in the authenticated data.
    func sealValue(_ value: Data, hospital: String, context: String) throws(ReceiverError) -> Data {
        do {
            let keyID = keyring.currentKeyID
            let key = try key(hospital: hospital, sealing: Self.currentSealing, keyID: keyID)
            let box = try AES.GCM.seal(value, using: key, authenticating: Data("\(context) \(hospital)".utf8))
            return Data(keyID.rawValue.utf8) + Data([0]) + box.combined!
        } catch {
            throw .storage("a value cannot be sealed")
        }
    }

    /// Opens a value sealed by ``sealValue(_:hospital:context:)``.
    func openValue(_ data: Data, hospital: String, context: String) throws -> Data {
        guard let separator = data.firstIndex(of: 0) else { throw ReceiverError.storage("a sealed value is damaged") }
        let keyID = DeviceKeyID(rawValue: String(decoding: data[data.startIndex..<separator], as: UTF8.self))
        let key = try key(hospital: hospital, sealing: Self.currentSealing, keyID: keyID)
        return try AES.GCM.open(
            AES.GCM.SealedBox(combined: data[(separator + 1)...]),
            using: key,
            authenticating: Data("\(context) \(hospital)".utf8)
        )
    }
}
