import Crypto
import Foundation
import Hummingbird
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuReceiver
import KyukyuVault
import Logging

/// Ports of the real-parts tests: `KYUKYU_TEST_BASE_PORT` (default 21100) moves them, so that checkouts can run
/// their suites side by side. Below Linux's ephemeral range.
enum Ports {
    static let base = ProcessInfo.processInfo.environment["KYUKYU_TEST_BASE_PORT"].flatMap { Int($0) } ?? 21100
}

let quiet: Logger = {
    var logger = Logger(label: "kyukyu.test.hospital")
    logger.logLevel = .critical
    return logger
}()

/// The test's hospital.
let hospitalCode = HospitalCode(rawValue: "1312345678")!

/// A fresh folder, removed by the caller.
func temporaryDirectory(_ name: String = "kyukyu-hospital") -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        .path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The synthetic patient of the documents (obviously synthetic, from the simulator's population).
let patient = SyntheticPatient(number: 7, today: OnshiDate(year: 2026, month: 11, day: 27))

/// The synthetic patient's names, as they would appear in plaintext (UTF-8).
enum Synthetic {
    static let familyName = patient.holder.familyName
    static let givenName = patient.holder.givenName
    static let familyNameKana = patient.holder.familyNameKana
    static let givenNameKana = patient.holder.givenNameKana
}

/// A hand-built handoff document (the real builder lands later), per docs/handoff-contract.md: a document Bundle
/// with a Composition first, the Patient, the Encounter with its destination Organization, the sending Device and
/// the Provenance with the audit anchor.
struct SyntheticDocument {
    var set = UUID()
    var version = 1
    var versionID = UUID()
    var replaces: String?
    var hospital = "1312345678"
    var device = "ambulance-01"
    var chiefComplaint = "chest-pain"
    var padding = 0
    var anchorSequence: Int64 = 42

    var versionIdentifier: String { "urn:uuid:" + versionID.uuidString.lowercased() }
    var setIdentifier: String { "urn:uuid:" + set.uuidString.lowercased() }

    static let signingKeyBytes = Curve25519.Signing.PrivateKey().rawRepresentation
    static var signingKey: Curve25519.Signing.PrivateKey {
        try! Curve25519.Signing.PrivateKey(rawRepresentation: signingKeyBytes)
    }

    var json: [String: Any] {
        let holder = patient.holder
        let signature = try! Self.signingKey.signature(for: Data("head \(anchorSequence)".utf8))
        var composition: [String: Any] = [
            "resourceType": "Composition",
            "id": "composition",
            "identifier": ["system": "urn:ietf:rfc:3986", "value": setIdentifier],
            "status": "final",
            "title": "救急搬送前情報 / Pre-arrival summary",
            "section": [
                ["title": "Chief complaint", "text": ["status": "generated", "div": "<div>\(chiefComplaint)</div>"]]
            ],
        ]
        if let replaces {
            composition["relatesTo"] = [
                ["code": "replaces", "targetIdentifier": ["system": "urn:ietf:rfc:3986", "value": replaces]]
            ]
        }
        var entries: [[String: Any]] = [
            ["fullUrl": "urn:uuid:11111111-0000-4000-8000-000000000001", "resource": composition],
            [
                "fullUrl": "urn:uuid:11111111-0000-4000-8000-000000000002",
                "resource": [
                    "resourceType": "Patient",
                    "id": "patient",
                    "name": [
                        [
                            "use": "official", "text": holder.fullName, "family": holder.familyName,
                            "given": [holder.givenName],
                        ],
                        [
                            "use": "official", "text": holder.fullNameKana, "family": holder.familyNameKana,
                            "given": [holder.givenNameKana],
                        ],
                    ],
                    "birthDate": String(
                        format: "%04d-%02d-%02d",
                        holder.birthDate.year,
                        holder.birthDate.month,
                        holder.birthDate.day
                    ),
                ] as [String: Any],
            ],
            [
                "fullUrl": "urn:uuid:11111111-0000-4000-8000-000000000003",
                "resource": [
                    "resourceType": "Encounter",
                    "id": "transport",
                    "status": "in-progress",
                    "hospitalization": ["destination": ["reference": "urn:uuid:11111111-0000-4000-8000-000000000004"]],
                ] as [String: Any],
            ],
            [
                "fullUrl": "urn:uuid:11111111-0000-4000-8000-000000000004",
                "resource": [
                    "resourceType": "Organization",
                    "id": "destination",
                    "identifier": [["system": StructuralHandoffValidator.hospitalSystem, "value": hospital]],
                ] as [String: Any],
            ],
            [
                "fullUrl": "urn:uuid:11111111-0000-4000-8000-000000000005",
                "resource": [
                    "resourceType": "Device",
                    "id": "gateway",
                    "identifier": [["system": StructuralHandoffValidator.deviceSystem, "value": device]],
                ] as [String: Any],
            ],
            [
                "fullUrl": "urn:uuid:11111111-0000-4000-8000-000000000006",
                "resource": [
                    "resourceType": "Provenance",
                    "id": "provenance",
                    "recorded": "2026-11-27T03:12:00Z",
                    "agent": [
                        ["who": ["reference": "urn:uuid:11111111-0000-4000-8000-000000000005"]],
                        ["who": ["identifier": ["system": "urn:kyukyu:crew", "value": "CREW-01"]]],
                    ],
                    "extension": [
                        [
                            "url": StructuralHandoffValidator.anchorExtension,
                            "extension": [
                                ["url": "sequence", "valueString": String(anchorSequence)],
                                ["url": "hash", "valueString": String(repeating: "ab", count: 32)],
                                ["url": "signedAt", "valueInstant": "2026-11-27T03:11:59.123Z"],
                                [
                                    "url": "signingPublicKey",
                                    "valueBase64Binary": Self.signingKey.publicKey.rawRepresentation
                                        .base64EncodedString(),
                                ],
                                ["url": "signature", "valueBase64Binary": signature.base64EncodedString()],
                            ],
                        ]
                    ],
                ] as [String: Any],
            ],
        ]
        if padding > 0 {
            entries.append([
                "fullUrl": "urn:uuid:11111111-0000-4000-8000-000000000007",
                "resource": ["resourceType": "Basic", "id": "padding", "text": String(repeating: "x", count: padding)],
            ])
        }
        return [
            "resourceType": "Bundle",
            "id": "bundle-\(versionID.uuidString.lowercased().prefix(8))-v\(version)",
            "meta": ["versionId": String(version)],
            "identifier": ["system": "urn:ietf:rfc:3986", "value": versionIdentifier],
            "type": "document",
            "timestamp": "2026-11-27T03:12:00.000Z",
            "entry": entries,
        ]
    }

    var data: Data { try! JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) }

    /// The next version of this document.
    func next(chiefComplaint: String? = nil) -> SyntheticDocument {
        var next = self
        next.version += 1
        next.versionID = UUID()
        next.replaces = versionIdentifier
        if let chiefComplaint { next.chiefComplaint = chiefComplaint }
        return next
    }
}

/// Opens a store in a fresh folder, with its keyring in a 0600 key file there.
func openStore(_ directory: String) throws -> HospitalStore {
    try HospitalStore.open(
        path: directory + "/" + HospitalStore.fileName,
        keyProvider: KeyFileProvider(stateDirectory: directory, credentialsDirectory: nil),
        logger: quiet
    )
}

/// Every byte of every file in `directory` (the database, its WAL, the keyring…).
func bytesOfFiles(in directory: String, matching: (String) -> Bool = { _ in true }) -> Data {
    var bytes = Data()
    let enumerator = FileManager.default.enumerator(atPath: directory)
    while let name = enumerator?.nextObject() as? String {
        guard matching((name as NSString).lastPathComponent) else { continue }
        if let data = FileManager.default.contents(atPath: directory + "/" + name) { bytes.append(data) }
    }
    return bytes
}

/// RFC 6238 (SHA-1, 6 digits, 30 s) over the base32 secret, as an authenticator app computes it.
func totp(_ base32: String, at date: Date = Date()) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    var buffer = 0
    var bits = 0
    var key: [UInt8] = []
    for character in base32 where character != "=" {
        guard let value = alphabet.firstIndex(of: character) else { continue }
        buffer = (buffer << 5) | value
        bits += 5
        if bits >= 8 {
            key.append(UInt8((buffer >> (bits - 8)) & 0xFF))
            bits -= 8
        }
    }
    var counter = UInt64(date.timeIntervalSince1970 / 30).bigEndian
    let message = withUnsafeBytes(of: &counter) { Array($0) }
    let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    let offset = Int(mac[19] & 0x0F)
    let code =
        (UInt32(mac[offset] & 0x7F) << 24 | UInt32(mac[offset + 1]) << 16 | UInt32(mac[offset + 2]) << 8
            | UInt32(mac[offset + 3])) % 1_000_000
    let digits = String(code)
    return String(repeating: "0", count: 6 - digits.count) + digits
}

/// A test double for the client certificate: the device named by the `X-Test-Device` header (router tests have no
/// TLS). Only in tests.
struct HeaderIdentity: ClientDeviceIdentifying {
    func device(of request: Request, context: ReceiverRequestContext) async -> String? {
        request.headers[.init("X-Test-Device")!]
    }
}

/// A validator double that returns fixed information and counts its calls.
struct FixedValidator: HandoffDocumentValidating {
    var info: ValidatedDocumentInfo
    func validate(_ body: Data) throws(HandoffValidationError) -> ValidatedDocumentInfo { info }
}
