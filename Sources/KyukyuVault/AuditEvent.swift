import Foundation
import KyukyuDomain

/// What happened, as recorded in the audit trail. Extensible: new actions are new static members.
public struct AuditAction: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The action name, e.g. `card.read`.
    public let rawValue: String

    /// Wraps an action name.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The action name.
    public var description: String { self.rawValue }

    /// A crew member signed in on the device.
    public static let crewSignIn = AuditAction(rawValue: "crew.sign-in")
    /// A crew member signed out.
    public static let crewSignOut = AuditAction(rawValue: "crew.sign-out")
    /// A card was read.
    public static let cardRead = AuditAction(rawValue: "card.read")
    /// The basis for viewing (consent, exception or refusal) was recorded.
    public static let consentRecorded = AuditAction(rawValue: "consent.recorded")
    /// A data category was fetched from the eligibility service and stored.
    public static let categoryFetched = AuditAction(rawValue: "category.fetched")
    /// A data category was read out of the vault for display.
    public static let categoryViewed = AuditAction(rawValue: "category.viewed")
    /// The handoff was sent to a hospital.
    public static let handoffSent = AuditAction(rawValue: "handoff.sent")
    /// The hospital acknowledged the handoff.
    public static let handoffAcknowledged = AuditAction(rawValue: "handoff.acknowledged")
    /// An incident was created.
    public static let incidentCreated = AuditAction(rawValue: "incident.created")
    /// An incident was crypto-shredded.
    public static let incidentPurged = AuditAction(rawValue: "incident.purged")
    /// The whole vault was wiped.
    public static let vaultWiped = AuditAction(rawValue: "vault.wiped")
    /// The device wrapping key was rotated.
    public static let keyRotated = AuditAction(rawValue: "key.rotated")
    /// A step of an incident's workflow (consent, identification, fetch outcome, deferral, close).
    public static let incidentStep = AuditAction(rawValue: "incident.step")
    /// A crew account or session event (sign-in failure, lock, unlock, account changes).
    public static let crewEvent = AuditAction(rawValue: "crew.event")
}

/// Why an incident was purged.
public struct PurgeReason: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The reason name.
    public let rawValue: String

    /// Wraps a reason name.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The reason name.
    public var description: String { self.rawValue }

    /// The hospital acknowledged the handoff.
    public static let acknowledged = PurgeReason(rawValue: "acknowledged")
    /// The incident reached the maximum age.
    public static let expired = PurgeReason(rawValue: "expired")
    /// An operator purged it by hand.
    public static let manual = PurgeReason(rawValue: "manual")
    /// Rows left behind by an interrupted purge were removed at start-up.
    public static let interruptedPurge = PurgeReason(rawValue: "interrupted-purge")
}

/// A keyed hash (HMAC-SHA-256 with the device audit key) of a card certificate serial.
///
/// Only ``AuditTrail/serialDigest(ofCertificateSerial:)`` makes one, so the audit cannot receive a
/// raw serial by mistake. The same serial gives the same digest on the same device, which lets an
/// auditor correlate reads without the log revealing the serial.
public struct CertificateSerialDigest: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The digest as lower-case hex.
    public let hexValue: String

    init(hexValue: String) { self.hexValue = hexValue }

    /// The digest as lower-case hex.
    public var description: String { self.hexValue }
}

/// One access-relevant event. Built only through the static factories, which admit identifiers,
/// category names and states, never medical data or free text.
public struct AuditEvent: Hashable, Sendable, Codable {
    /// What happened.
    public let action: AuditAction
    /// The incident concerned, if any.
    public let incident: IncidentID?
    /// Who did it: a crew member identifier, or `device` for automatic actions.
    public let actor: String?
    /// Non-medical details (token type, serial digest, consent basis, category, destination…).
    public let attributes: [String: String]

    init(action: AuditAction, incident: IncidentID?, actor: String?, attributes: [String: String] = [:]) {
        self.action = action
        self.incident = incident
        self.actor = actor
        self.attributes = attributes
    }

    /// A crew member signed in.
    public static func crewSignIn(crew: CrewID) -> AuditEvent {
        AuditEvent(action: .crewSignIn, incident: nil, actor: crew.rawValue)
    }

    /// A crew member signed out.
    public static func crewSignOut(crew: CrewID) -> AuditEvent {
        AuditEvent(action: .crewSignOut, incident: nil, actor: crew.rawValue)
    }

    /// A card was read for an incident: token type and a keyed hash of the certificate serial.
    public static func cardRead(
        incident: IncidentID,
        tokenType: TokenType,
        serial: CertificateSerialDigest,
        by crew: CrewID
    ) -> AuditEvent {
        AuditEvent(
            action: .cardRead,
            incident: incident,
            actor: crew.rawValue,
            attributes: ["token-type": tokenType.rawValue, "serial-hmac": serial.hexValue]
        )
    }

    /// The consent basis was recorded, and by whom.
    public static func consentRecorded(incident: IncidentID, basis: ConsentBasis, recordedBy crew: CrewID) -> AuditEvent
    {
        AuditEvent(
            action: .consentRecorded,
            incident: incident,
            actor: crew.rawValue,
            attributes: ["basis": basis.rawValue]
        )
    }

    /// A category was fetched and stored (written by ``IncidentVault/putRecord(incident:kind:payload:)``).
    public static func categoryFetched(incident: IncidentID, category: RecordKind, version: Int) -> AuditEvent {
        AuditEvent(
            action: .categoryFetched,
            incident: incident,
            actor: "device",
            attributes: ["category": category.rawValue, "version": String(version)]
        )
    }

    /// A category was read for display (written by the vault's read methods).
    public static func categoryViewed(incident: IncidentID, category: RecordKind, by crew: CrewID) -> AuditEvent {
        AuditEvent(
            action: .categoryViewed,
            incident: incident,
            actor: crew.rawValue,
            attributes: ["category": category.rawValue]
        )
    }

    /// The handoff was sent to a hospital (identified by its institution code).
    public static func handoffSent(incident: IncidentID, destination: FacilityCode, by crew: CrewID) -> AuditEvent {
        AuditEvent(
            action: .handoffSent,
            incident: incident,
            actor: crew.rawValue,
            attributes: ["destination": destination.rawValue]
        )
    }

    /// The hospital acknowledged the handoff.
    public static func handoffAcknowledged(incident: IncidentID) -> AuditEvent {
        AuditEvent(action: .handoffAcknowledged, incident: incident, actor: "device")
    }

    /// A step of an incident's workflow, by whom, on which terminal: the step's name and outcome are the workflow's
    /// own identifiers (never free text), with the consent basis, the categories concerned and the attempt number
    /// where they apply. Which patient is the incident's opaque id.
    public static func incidentStep(
        incident: IncidentID,
        step: String,
        by actor: String,
        terminal: String,
        consent: ConsentBasis? = nil,
        outcome: String? = nil,
        categories: [MedicalCategory] = [],
        attempt: Int? = nil
    ) -> AuditEvent {
        var attributes = ["step": step, "terminal": terminal]
        if let consent { attributes["basis"] = consent.rawValue }
        if let outcome { attributes["outcome"] = outcome }
        if !categories.isEmpty { attributes["categories"] = categories.map(\.rawValue).joined(separator: ",") }
        if let attempt { attributes["attempt"] = String(attempt) }
        return AuditEvent(action: .incidentStep, incident: incident, actor: actor, attributes: attributes)
    }

    /// A crew account or session event (`kind` is the crew module's identifier for it, such as
    /// `sign-in-failed` or `unlocked`), with its non-secret attributes.
    public static func crewEvent(
        _ kind: String,
        crew: String,
        terminal: String,
        attributes: [String: String] = [:]
    ) -> AuditEvent {
        var all = attributes
        all["kind"] = kind
        all["terminal"] = terminal
        return AuditEvent(action: .crewEvent, incident: nil, actor: crew, attributes: all)
    }

    static func incidentCreated(incident: IncidentID) -> AuditEvent {
        AuditEvent(action: .incidentCreated, incident: incident, actor: "device")
    }

    static func incidentPurged(incident: IncidentID, reason: PurgeReason) -> AuditEvent {
        AuditEvent(
            action: .incidentPurged,
            incident: incident,
            actor: "device",
            attributes: ["reason": reason.rawValue]
        )
    }

    static func vaultWiped(incidents: Int, actor: String) -> AuditEvent {
        AuditEvent(action: .vaultWiped, incident: nil, actor: actor, attributes: ["incidents": String(incidents)])
    }

    static func keyRotated(from: [DeviceKeyID], to: DeviceKeyID, rewrapped: Int) -> AuditEvent {
        AuditEvent(
            action: .keyRotated,
            incident: nil,
            actor: "device",
            attributes: [
                "from": from.map(\.rawValue).joined(separator: ","), "to": to.rawValue, "rewrapped": String(rewrapped),
            ]
        )
    }
}

/// A crew member identifier (staff number), validated to be a short token: `[A-Za-z0-9._-]{1,64}`.
public struct CrewID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The identifier text.
    public let rawValue: String

    /// Validates a crew identifier; returns `nil` for anything but a short token.
    public init?(_ rawValue: String) {
        guard isShortToken(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// The identifier text.
    public var description: String { self.rawValue }
}

/// A medical institution code, validated to be a short token: `[A-Za-z0-9._-]{1,64}`.
public struct FacilityCode: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The code text.
    public let rawValue: String

    /// Validates an institution code; returns `nil` for anything but a short token.
    public init?(_ rawValue: String) {
        guard isShortToken(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// The code text.
    public var description: String { self.rawValue }
}

func isShortToken(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    return !bytes.isEmpty && bytes.count <= 64
        && bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
}
