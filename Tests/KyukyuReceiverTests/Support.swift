import Crypto
import Foundation
import Hummingbird
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuFHIR
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

    /// The four names as the plaintext document holds them, each within its JSON quotes: what a search of the bytes
    /// at rest looks for. A bare one-kanji given name (蓮, 誠) is three bytes, which megabytes of ciphertext hold by
    /// chance (R / 2^24 times in R random bytes); with its quotes it is five, and a chance match is 2^16 times rarer.
    static let quotedNames = [familyName, givenName, familyNameKana, givenNameKana].map { "\"\($0)\"" }
}

/// A pre-arrival document for the tests, as the gateway sends it (KyukyuFHIR's builder), with the fields the tests
/// vary: set, version, destination, sender, complaint, size and anchor.
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

    /// The document, built by KyukyuFHIR's builder from synthetic patient 7's records (deterministic: the same
    /// fields give the same bytes), padded with trailing spaces when `padding` asks for a large body.
    var data: Data {
        let signingKey = Self.signingKey
        let message = Data("head \(anchorSequence)".utf8)
        let anchor = AuditAnchor(
            sequence: anchorSequence,
            hash: String(repeating: "ab", count: 32),
            signedAtMilliseconds: 1_795_749_119_123,
            signingPublicKey: signingKey.publicKey.rawRepresentation.base64EncodedString(),
            signature: try! signingKey.signature(for: message).base64EncodedString()
        )
        var observations = CrewObservations()
        if let complaint = ChiefComplaint(rawValue: chiefComplaint) {
            observations.chiefComplaint = complaint
        } else {
            observations.chiefComplaint = .other
            observations.complaintNote = chiefComplaint
        }
        observations.priority = .red
        var records: [MedicalCategory: CategoryRecords] = [:]
        for category in MedicalCategory.allCases { records[category] = patient.records(category) }
        let input = HandoffInput(
            documentSet: set,
            version: version,
            versionID: versionID,
            // A later version the test made by hand (not with next()) replaces a made-up one.
            previousVersionID: replaces.flatMap { UUID(uuidString: String($0.dropFirst("urn:uuid:".count))) }
                ?? (version > 1 ? UUID(uuidString: "00000000-0000-4000-8000-000000000001") : nil),
            builtAt: Date(timeIntervalSince1970: 1_800_000_100),
            dataAsOf: Date(timeIntervalSince1970: 1_800_000_000),
            records: records,
            gaps: [],
            observations: observations,
            consent: .verbal,
            crewID: "TEST-A1",
            deviceID: device,
            // A malformed code (a test of the refusal) is put in after the build, which checks codes.
            hospital: HospitalCode(rawValue: hospital) ?? HospitalCode(rawValue: "0000000001")!,
            hospitalName: "テスト救命救急センター (架空)",
            auditAnchor: anchor
        )
        var data = try! HandoffDocumentBuilder.build(input)
        if HospitalCode(rawValue: hospital) == nil {
            data = Data(
                String(decoding: data, as: UTF8.self).replacingOccurrences(
                    of: "\"0000000001\"",
                    with: "\"\(hospital)\""
                )
                .utf8
            )
        }
        if padding > 0 { data.append(Data(repeating: 0x20, count: padding)) }
        return data
    }

    /// The document as JSON objects.
    var json: [String: Any] { try! JSONSerialization.jsonObject(with: data) as! [String: Any] }

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
        hospital: hospitalCode,
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
