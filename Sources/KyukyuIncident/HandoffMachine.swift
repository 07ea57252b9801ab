public import Foundation
public import KyukyuDomain

/// What happens to the handoff.
public enum HandoffEvent: Sendable, Hashable {
    /// The crew sent the document to `hospital` (first send, or another hospital after a divert or a change of
    /// mind).
    case send(to: HospitalCode)
    /// The crew's observations changed after the first send: an update follows.
    case observationsChanged
    /// The receiver stored `version` (201 or 200).
    case delivered(version: Int, hospital: HospitalCode)
    /// The hospital's status for this incident changed (from the receiver's event stream).
    case hospitalStatus(HandoffStatus, hospital: HospitalCode, divert: Divert?)
    /// A former hospital was told the patient goes elsewhere.
    case withdrawalDelivered(hospital: HospitalCode)

    /// The event's name for the audit (never a value).
    public var name: String {
        switch self {
        case .send: "handoff-send"
        case .observationsChanged: "handoff-update"
        case .delivered: "handoff-delivered"
        case .hospitalStatus(let status, _, _): "handoff-\(status.rawValue)"
        case .withdrawalDelivered: "handoff-withdrawn"
        }
    }
}

/// What the handoff machine asks its driver to do, in order.
public enum HandoffEffect: Sendable, Hashable {
    /// Build version `version` of the document for `hospital` from what the vault holds now, keep it, and queue it
    /// in the outbox (after every earlier version for that hospital).
    case buildAndQueue(version: Int, hospital: HospitalCode)
    /// Tell `hospital` the patient goes elsewhere (queued like a document).
    case withdraw(from: HospitalCode)
    /// Record the event in the audit trail.
    case audit(HandoffEvent)
    /// The patient was handed over: close the incident and shred it.
    case handedOver
}

/// An event the handoff cannot take now.
public struct HandoffTransitionError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable {
        case notSent = "not-sent"
        case handedOver = "handed-over"
        case sameHospital = "same-hospital"
    }
    private let code: Code
    /// The file that threw.
    public let file: String
    /// The line that threw.
    public let line: UInt

    private init(_ code: Code, file: String, line: UInt) {
        self.code = code
        self.file = file
        self.line = line
    }

    /// Nothing was sent yet.
    public static func notSent(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.notSent, file: file, line: line)
    }

    /// The patient was already handed over.
    public static func handedOver(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.handedOver, file: file, line: line)
    }

    /// The document already goes to that hospital.
    public static func sameHospital(file: String = #fileID, line: UInt = #line) -> Self {
        Self(.sameHospital, file: file, line: line)
    }

    /// Same refusal, wherever thrown.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// Hashes the code.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// In words for the crew.
    public var description: String {
        switch code {
        case .notSent: "nothing has been sent to a hospital yet"
        case .handedOver: "the patient was already handed over"
        case .sameHospital: "the document already goes to this hospital"
        }
    }
}

/// The pre-arrival handoff of one incident as a pure state machine: which hospital, which version of the document,
/// where it stands there. The driver builds and queues documents, delivers them in order, and feeds back what the
/// receiver said.
///
/// One document set per incident (``documentSet``); every version has its own number, increasing, whatever the
/// hospital. A divert leaves the incident waiting for the crew to pick another hospital; picking another while
/// the first has not diverted tells the first. Updates (vitals, ETA) follow the first send until the patient
/// arrives; the arrival hands the patient over, and the incident is shredded.
public struct HandoffMachine: Sendable, Hashable, Codable {
    /// The incident's document set (random; never derived from patient data).
    public let documentSet: UUID
    /// The hospital the document goes to now.
    public private(set) var hospital: HospitalCode?
    /// Where it stands there.
    public private(set) var status: HandoffStatus?
    /// The latest version built.
    public private(set) var latestVersion = 0
    /// The latest version the current hospital's receiver stored.
    public private(set) var deliveredVersion = 0
    /// The current hospital's divert, while it is ``HandoffStatus/diverted``.
    public private(set) var divert: Divert?
    /// Hospitals that diverted, oldest first (the crew should not pick them again without a reason).
    public private(set) var divertedBy: [HospitalCode] = []
    /// Former hospitals still to be told the patient goes elsewhere.
    public private(set) var pendingWithdrawals: [HospitalCode] = []

    /// A handoff not started, for the set `documentSet`.
    public init(documentSet: UUID = UUID()) {
        self.documentSet = documentSet
    }

    /// Applies `event`; returns the effects to carry out, in order. The state is unchanged on a throw.
    public mutating func handle(_ event: HandoffEvent) throws(HandoffTransitionError) -> [HandoffEffect] {
        guard status != .arrived else {
            if case .withdrawalDelivered(let hospital) = event { return withdrawalDone(hospital) }
            if case .hospitalStatus = event { return [] }
            if case .delivered = event { return [] }
            throw .handedOver()
        }
        switch event {
        case .send(let destination):
            if destination == hospital, status != .diverted { throw .sameHospital() }
            var effects: [HandoffEffect] = [.audit(event)]
            if let previous = hospital, previous != destination, status != .diverted,
                !pendingWithdrawals.contains(previous)
            {
                pendingWithdrawals.append(previous)
                effects.append(.withdraw(from: previous))
            }
            hospital = destination
            status = .queued
            divert = nil
            deliveredVersion = 0
            latestVersion += 1
            effects.append(.buildAndQueue(version: latestVersion, hospital: destination))
            return effects

        case .observationsChanged:
            guard let hospital, let status else { throw .notSent() }
            // A diverted document waits for the crew's next hospital, which gets the latest then.
            guard status != .diverted else { return [] }
            latestVersion += 1
            return [.buildAndQueue(version: latestVersion, hospital: hospital)]

        case .delivered(let version, let destination):
            guard destination == hospital, version > deliveredVersion else { return [] }
            deliveredVersion = version
            if status == .queued { status = .sent }
            return [.audit(event)]

        case .hospitalStatus(let new, let from, let divert):
            guard from == hospital, let current = status else { return [] }
            switch new {
            case .queued, .sent, .withdrawn:
                return []
            case .received:
                guard [.queued, .sent].contains(current) else { return [] }
                status = .received
                return [.audit(event)]
            case .acknowledged:
                guard current != .diverted else { return [] }
                status = .acknowledged
                return [.audit(event)]
            case .diverted:
                status = .diverted
                self.divert = divert ?? Divert(.other)
                if !divertedBy.contains(from) { divertedBy.append(from) }
                return [.audit(event)]
            case .arrived:
                status = .arrived
                return [.audit(event), .handedOver]
            }

        case .withdrawalDelivered(let hospital):
            return withdrawalDone(hospital)
        }
    }

    private mutating func withdrawalDone(_ hospital: HospitalCode) -> [HandoffEffect] {
        guard let index = pendingWithdrawals.firstIndex(of: hospital) else { return [] }
        pendingWithdrawals.remove(at: index)
        return [.audit(.withdrawalDelivered(hospital: hospital))]
    }
}
