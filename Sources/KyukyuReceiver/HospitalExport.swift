public import Foundation
import KyukyuDomain

/// The receiver's exports: every document version as a FHIR JSON file, and one device's audit anchors.
public enum HospitalExport {
    /// The anchors file's format name.
    public static let anchorsFormat = "kyukyu-hospital-anchors/1"

    /// Writes every stored version, decrypted, byte for byte as posted, to `<directory>/<set-uuid>-v<version>.json`
    /// (mode 0600; the folder 0700). Returns how many were written. Refuses to replace a file.
    public static func documents(from store: HospitalStore, to directory: String) async throws(ReceiverError) -> Int {
        do {
            try PrivateFiles.ensureDirectory(directory)
        } catch {
            throw .storage("cannot prepare \(directory): \(error)")
        }
        var count = 0
        try await store.forEachDocument { version, data in
            let name = "\(HospitalStore.text(version.documentSet))-v\(version.version).json"
            try PrivateFiles.create(directory + "/" + name, data, mode: 0o600)
            count += 1
        }
        return count
    }

    /// Writes `device`'s anchors to `path` as one JSON object:
    /// `{"format": "kyukyu-hospital-anchors/1", "device": …, "anchors": [{"sequence", "hash",
    /// "signedAtMilliseconds", "signingPublicKey", "signature", "documentSet", "version", "receivedAt"}, …]}`,
    /// by sequence. Each anchor decodes as `KyukyuVault.AuditHead` (extra keys aside). Returns how many.
    public static func anchors(from store: HospitalStore, device: String, to path: String) async throws(ReceiverError)
        -> Int
    {
        let anchors = try await store.anchors(device: device)
        let data = anchorsJSON(device: device, anchors: anchors)
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try PrivateFiles.create(path, data, mode: 0o644)
        } catch {
            throw .storage("cannot write \(path): \(error)")
        }
        return anchors.count
    }

    /// The anchors document (see ``anchors(from:device:to:)``).
    public static func anchorsJSON(device: String, anchors: [StoredAnchor]) -> Data {
        let object: [String: Any] = [
            "format": anchorsFormat,
            "device": device,
            "anchors": anchors.map { stored -> [String: Any] in
                [
                    "sequence": stored.anchor.sequence,
                    "hash": stored.anchor.hash,
                    "signedAtMilliseconds": stored.anchor.signedAtMilliseconds,
                    "signingPublicKey": stored.anchor.signingPublicKey,
                    "signature": stored.anchor.signature,
                    "documentSet": "urn:uuid:" + HospitalStore.text(stored.documentSet),
                    "version": stored.version,
                    "receivedAt": Instant.string(stored.receivedAt),
                ]
            },
        ]
        return
            (try? JSONSerialization.data(
                withJSONObject: object,
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            ))
            ?? Data()
    }
}
