public import Foundation
public import KyukyuDomain

/// What the receiver needs to know about a valid document, read from it by a ``HandoffDocumentValidating``.
/// Nothing here is patient data: identifiers are random, the rest names the sender, the destination and the audit.
public struct ValidatedDocumentInfo: Sendable, Hashable {
    /// The document set (`Composition.identifier`, `urn:uuid:<set-uuid>`): the incident, across versions.
    public var documentSet: UUID
    /// The version number (`Bundle.meta.versionId`), 1, 2, …
    public var version: Int
    /// This version's identifier (`Bundle.identifier.value`, `urn:uuid:<version-uuid>`): the idempotency key.
    public var versionIdentifier: String
    /// `Bundle.id` (the `Location` of the stored document).
    public var bundleID: String
    /// The destination hospital (`Encounter.hospitalization.destination` → `Organization.identifier`).
    public var destination: HospitalCode
    /// The sending device (`Provenance.agent` → `Device.identifier`, system `urn:kyukyu:device`).
    public var senderDevice: String
    /// The gateway's audit head at build time, when the document carries one.
    public var auditAnchor: AuditAnchor?
    /// `Bundle.timestamp`: when the version was built.
    public var timestamp: Date
    /// The previous version's identifier (`Composition.relatesTo` `replaces`), for versions after the first.
    public var replaces: String?

    /// Makes the information (validators and test doubles).
    public init(
        documentSet: UUID,
        version: Int,
        versionIdentifier: String,
        bundleID: String,
        destination: HospitalCode,
        senderDevice: String,
        auditAnchor: AuditAnchor?,
        timestamp: Date,
        replaces: String? = nil
    ) {
        self.documentSet = documentSet
        self.version = version
        self.versionIdentifier = versionIdentifier
        self.bundleID = bundleID
        self.destination = destination
        self.senderDevice = senderDevice
        self.auditAnchor = auditAnchor
        self.timestamp = timestamp
        self.replaces = replaces
    }
}

/// One finding about a refused document, as an `OperationOutcome.issue` says it. `diagnostics` never quotes the
/// document's values (they may be patient data): it names the element and what is wrong.
public struct HandoffIssue: Sendable, Hashable, Codable {
    /// `fatal`, `error`, `warning` or `information`.
    public var severity: String
    /// The FHIR issue type (`structure`, `required`, `value`, `invalid`, `processing`, …).
    public var code: String
    /// What is wrong, in words.
    public var diagnostics: String
    /// FHIRPath of the element, when known.
    public var expression: [String]?

    /// Makes an issue.
    public init(severity: String = "error", code: String, diagnostics: String, expression: [String]? = nil) {
        self.severity = severity
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
    }
}

/// A document refused by a validator: the body is not JSON, or not a valid handoff document (400 either way).
public struct HandoffValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable { case invalidJSON, invalidDocument }
    private let kind: Kind
    /// The findings.
    public let issues: [HandoffIssue]

    private init(_ kind: Kind, _ issues: [HandoffIssue]) {
        self.kind = kind
        self.issues = issues
    }

    /// The body is not JSON.
    public static func invalidJSON(_ diagnostics: String = "the body is not valid JSON") -> Self {
        Self(.invalidJSON, [HandoffIssue(code: "structure", diagnostics: diagnostics)])
    }

    /// The body is JSON but not a valid document.
    public static func invalidDocument(_ issues: [HandoffIssue]) -> Self { Self(.invalidDocument, issues) }

    /// Whether the body was not JSON at all.
    public var isInvalidJSON: Bool { kind == .invalidJSON }

    /// The findings, joined.
    public var description: String { issues.map(\.diagnostics).joined(separator: "; ") }
}

/// Checks a posted document and reads what the receiver needs from it. The real FHIR validator (KyukyuFHIR)
/// conforms to this; ``StructuralHandoffValidator`` is the minimal one the receiver ships with.
public protocol HandoffDocumentValidating: Sendable {
    /// Validates `body` (the raw bytes of `POST /fhir/Bundle`) and returns its identity, or throws
    /// ``HandoffValidationError`` with every finding.
    func validate(_ body: Data) throws(HandoffValidationError) -> ValidatedDocumentInfo
}

/// The handoff contract's identity fields, read structurally from the JSON: a document `Bundle` whose first entry
/// is a `Composition`; identifiers in `urn:ietf:rfc:3986` form; the destination `Organization` and the sender
/// `Device` resolved through their references inside the bundle; the audit anchor extension on the `Provenance`.
/// It does not check FHIR R4 conformance beyond these (the real validator does).
public struct StructuralHandoffValidator: HandoffDocumentValidating {
    /// JP Core's identifier system of a medical institution code.
    public static let hospitalSystem = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no"
    /// The identifier system of a device (ambulance gateway).
    public static let deviceSystem = "urn:kyukyu:device"
    /// The audit anchor extension's URL.
    public static let anchorExtension = "http://kyukyu.example.jp/fhir/StructureDefinition/audit-anchor"

    /// Makes the validator.
    public init() {}

    /// Reads the identity fields, or throws every finding.
    public func validate(_ body: Data) throws(HandoffValidationError) -> ValidatedDocumentInfo {
        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw HandoffValidationError.invalidJSON("the body must be one JSON object (a FHIR Bundle)")
            }
            root = object
        } catch let error as HandoffValidationError {
            throw error
        } catch {
            throw HandoffValidationError.invalidJSON()
        }
        var reader = Reader(root: root)
        let info = reader.read()
        guard reader.issues.isEmpty, let info else {
            throw HandoffValidationError.invalidDocument(reader.issues)
        }
        return info
    }

    private struct Reader {
        let root: [String: Any]
        var issues: [HandoffIssue] = []

        mutating func fail(_ code: String, _ diagnostics: String, _ expression: String) {
            issues.append(HandoffIssue(code: code, diagnostics: diagnostics, expression: [expression]))
        }

        /// A `urn:ietf:rfc:3986` identifier's `urn:uuid:` value.
        mutating func uuidIdentifier(_ value: Any?, _ expression: String) -> (String, UUID)? {
            guard let identifier = value as? [String: Any] else {
                fail("required", "\(expression) is missing", expression)
                return nil
            }
            guard identifier["system"] as? String == "urn:ietf:rfc:3986" else {
                fail("value", "\(expression).system must be urn:ietf:rfc:3986", expression + ".system")
                return nil
            }
            guard let text = identifier["value"] as? String, text.hasPrefix("urn:uuid:"),
                let uuid = UUID(uuidString: String(text.dropFirst(9)))
            else {
                fail("value", "\(expression).value must be urn:uuid: and a UUID", expression + ".value")
                return nil
            }
            return ("urn:uuid:" + uuid.uuidString.lowercased(), uuid)
        }

        mutating func read() -> ValidatedDocumentInfo? {
            guard root["resourceType"] as? String == "Bundle" else {
                fail("structure", "resourceType must be Bundle", "Bundle.resourceType")
                return nil
            }
            if root["type"] as? String != "document" {
                fail("value", "Bundle.type must be document", "Bundle.type")
            }
            let bundleID = root["id"] as? String
            if bundleID.map(Self.isFHIRID) != true {
                fail("required", "Bundle.id is missing or not a FHIR id ([A-Za-z0-9-.]{1,64})", "Bundle.id")
            }
            let identifier = uuidIdentifier(root["identifier"], "Bundle.identifier")
            let meta = root["meta"] as? [String: Any]
            let versionText = meta?["versionId"] as? String
            let version = versionText.flatMap { text in
                text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) && text.utf8.count <= 9 ? Int(text) : nil
            }
            if version == nil || version! < 1 {
                fail(
                    "value",
                    "Bundle.meta.versionId must be the version number as a string (\"1\", \"2\", …)",
                    "Bundle.meta.versionId"
                )
            }
            let timestamp = (root["timestamp"] as? String).flatMap(Instant.date)
            if timestamp == nil {
                fail("required", "Bundle.timestamp must be an instant with a time zone", "Bundle.timestamp")
            }
            guard let entries = root["entry"] as? [Any], !entries.isEmpty else {
                fail("required", "Bundle.entry must hold the Composition and its resources", "Bundle.entry")
                return nil
            }
            var resources: [[String: Any]] = []
            var byReference: [String: [String: Any]] = [:]
            for (index, element) in entries.enumerated() {
                guard let entry = element as? [String: Any], let resource = entry["resource"] as? [String: Any],
                    let type = resource["resourceType"] as? String
                else {
                    fail("structure", "Bundle.entry[\(index)] has no resource", "Bundle.entry[\(index)].resource")
                    continue
                }
                resources.append(resource)
                if let fullUrl = entry["fullUrl"] as? String { byReference[fullUrl] = resource }
                if let id = resource["id"] as? String { byReference["\(type)/\(id)"] = resource }
            }
            guard let composition = resources.first, composition["resourceType"] as? String == "Composition" else {
                fail("structure", "the first entry must be the Composition", "Bundle.entry[0].resource")
                return nil
            }
            let set = uuidIdentifier(composition["identifier"], "Composition.identifier")
            var replaces: String?
            if let relatesTo = composition["relatesTo"] as? [[String: Any]] {
                for relation in relatesTo where relation["code"] as? String == "replaces" {
                    replaces = ((relation["targetIdentifier"] as? [String: Any])?["value"] as? String)
                }
            }
            if let version, version > 1, replaces == nil {
                fail("required", "a version after the first must say which one it replaces", "Composition.relatesTo")
            }

            // The destination hospital.
            var destination: HospitalCode?
            let encounters = resources.filter { $0["resourceType"] as? String == "Encounter" }
            let destinationReference = encounters.lazy.compactMap {
                (($0["hospitalization"] as? [String: Any])?["destination"] as? [String: Any])?["reference"] as? String
            }.first
            if let destinationReference {
                if let organization = byReference[destinationReference],
                    organization["resourceType"] as? String == "Organization"
                {
                    let identifiers = organization["identifier"] as? [[String: Any]] ?? []
                    destination =
                        identifiers.lazy.filter { $0["system"] as? String == StructuralHandoffValidator.hospitalSystem }
                        .compactMap { ($0["value"] as? String).flatMap(HospitalCode.init(rawValue:)) }.first
                    if destination == nil {
                        fail(
                            "value",
                            "the destination Organization has no 10-digit medical institution code",
                            "Organization.identifier"
                        )
                    }
                } else {
                    fail(
                        "not-found",
                        "Encounter.hospitalization.destination does not resolve to an Organization in the bundle",
                        "Encounter.hospitalization.destination"
                    )
                }
            } else {
                fail(
                    "required",
                    "Encounter.hospitalization.destination is missing",
                    "Encounter.hospitalization.destination"
                )
            }

            // The sender and the audit anchor.
            var sender: String?
            var anchor: AuditAnchor?
            if let provenance = resources.first(where: { $0["resourceType"] as? String == "Provenance" }) {
                for agent in provenance["agent"] as? [[String: Any]] ?? [] {
                    guard let reference = (agent["who"] as? [String: Any])?["reference"] as? String,
                        let device = byReference[reference], device["resourceType"] as? String == "Device"
                    else { continue }
                    let identifiers = device["identifier"] as? [[String: Any]] ?? []
                    sender =
                        identifiers.lazy.filter { $0["system"] as? String == StructuralHandoffValidator.deviceSystem }
                        .compactMap { $0["value"] as? String }.first
                }
                if sender.map(Self.isDeviceID) != true {
                    fail(
                        "required",
                        "Provenance.agent names no Device with a urn:kyukyu:device identifier",
                        "Provenance.agent"
                    )
                }
                if let extensions = provenance["extension"] as? [[String: Any]],
                    let found = extensions.first(where: {
                        $0["url"] as? String == StructuralHandoffValidator.anchorExtension
                    })
                {
                    anchor = readAnchor(found)
                }
            } else {
                fail(
                    "required",
                    "the bundle has no Provenance naming the sending device",
                    "Bundle.entry.resource.ofType(Provenance)"
                )
            }
            guard issues.isEmpty, let bundleID, let identifier, let version, let timestamp, let set, let destination,
                let sender
            else { return nil }
            return ValidatedDocumentInfo(
                documentSet: set.1,
                version: version,
                versionIdentifier: identifier.0,
                bundleID: bundleID,
                destination: destination,
                senderDevice: sender,
                auditAnchor: anchor,
                timestamp: timestamp,
                replaces: replaces
            )
        }

        mutating func readAnchor(_ anchorExtension: [String: Any]) -> AuditAnchor? {
            let expression = "Provenance.extension('audit-anchor')"
            var values: [String: Any] = [:]
            for sub in anchorExtension["extension"] as? [[String: Any]] ?? [] {
                guard let url = sub["url"] as? String else { continue }
                values[url] = sub.first(where: { $0.key.hasPrefix("value") })?.value
            }
            guard let sequenceText = values["sequence"] as? String, let sequence = Int64(sequenceText), sequence >= 0,
                let hash = values["hash"] as? String, hash.utf8.count == 64,
                hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
                let signedAt = (values["signedAt"] as? String).flatMap(Instant.date),
                let key = values["signingPublicKey"] as? String, Data(base64Encoded: key)?.count == 32,
                let signature = values["signature"] as? String, Data(base64Encoded: signature)?.count == 64
            else {
                fail(
                    "value",
                    "the audit anchor needs sequence (decimal string), hash (64 hex), signedAt (instant), signingPublicKey and signature (base64 Ed25519)",
                    expression
                )
                return nil
            }
            return AuditAnchor(
                sequence: sequence,
                hash: hash,
                signedAtMilliseconds: Int64((signedAt.timeIntervalSince1970 * 1000).rounded()),
                signingPublicKey: key,
                signature: signature
            )
        }

        static func isFHIRID(_ text: String) -> Bool {
            (1...64).contains(text.utf8.count)
                && text.utf8.allSatisfy { byte in
                    (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                        || byte == 0x2D || byte == 0x2E
                }
        }

        static func isDeviceID(_ text: String) -> Bool { DeviceName.isValid(text) }
    }
}

/// Device ids (`[A-Za-z0-9._-]{1,64}`, the CN of a device certificate).
public enum DeviceName {
    /// Whether `text` is a device id.
    public static func isValid(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == 0x2D || byte == 0x2E || byte == 0x5F
            }
    }
}

/// FHIR `instant`s (and RFC 3339 date-times): a date, a time with seconds, an optional fraction, and `Z` or an
/// offset.
enum Instant {
    static func date(_ text: String) -> Date? {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return date }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text)
    }

    static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
