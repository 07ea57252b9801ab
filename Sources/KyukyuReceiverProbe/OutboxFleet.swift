public import Foundation
public import KyukyuDomain
public import KyukyuGateway
import KyukyuVault
public import KyukyuWorkflow
public import Logging
import Synchronization

/// Ambulances as a region sees them: each a real ``KyukyuGateway/GatewayOutbox`` delivering through its own
/// ``KyukyuGateway/HTTPReceiverClient`` (its device certificate), in order, resending with backoff until the receiver
/// takes each document. The documents come from the caller (synthetic ones, built beforehand); no incident, no vault.
/// For the region's kill test and load figures: an instance killed mid-run costs resends, never a document.
public final class OutboxFleet: Sendable {
    /// One ambulance of the fleet.
    public struct Ambulance: Sendable {
        /// Its device id (certificate CN).
        public var device: String
        /// Its client certificate, key and the receiver's CA.
        public var tls: ReceiverTLSFiles

        /// An ambulance.
        public init(device: String, tls: ReceiverTLSFiles) {
            self.device = device
            self.tls = tls
        }
    }

    /// What the fleet saw, so far.
    public struct Tally: Sendable, Hashable {
        /// Documents queued.
        public var queued = 0
        /// Documents the receiver took.
        public var delivered = 0
        /// Tries that failed for now and were made again later.
        public var retries = 0
        /// Documents refused for good.
        public var refused = 0
        /// From each document's queueing to its receiver's answer, in order of delivery.
        public var latencies: [Duration] = []
    }

    private let members: [String: Member]
    private let source: Source

    struct Member: Sendable {
        let outbox: GatewayOutbox
        let client: HTTPReceiverClient
    }

    /// Makes the fleet (nothing is sent until ``run()``).
    ///
    /// - Parameters:
    ///   - hospitals: Where documents go (their URLs: a hub's balancer, or each hospital's receiver).
    ///   - backoff: The outboxes' backoff (the gateway's default starts at 1 s).
    public init(
        ambulances: [Ambulance],
        hospitals: [ReceivingHospital],
        backoff: DeliveryBackoff = DeliveryBackoff(),
        logger: Logger
    ) throws {
        let source = Source()
        var members: [String: Member] = [:]
        for ambulance in ambulances {
            let client = try HTTPReceiverClient(tls: ambulance.tls, logger: logger)
            let outbox = GatewayOutbox(hospitals: hospitals, client: client, backoff: backoff, logger: logger)
            members[ambulance.device] = Member(outbox: outbox, client: client)
        }
        self.members = members
        self.source = source
    }

    /// Queues a document in `device`'s outbox for `hospital`; it is sent behind that ambulance's earlier ones.
    public func send(
        _ body: Data,
        versionID: UUID,
        documentSet: UUID,
        from device: String,
        to hospital: HospitalCode
    ) async {
        guard let member = members[device] else { return }
        let item = OutboxItem(incident: IncidentID(), hospital: hospital, kind: .document(version: 1), queuedAt: Date())
        source.add(item, payload: .document(body, versionID: versionID, documentSet: documentSet))
        await member.outbox.enqueue(item)
    }

    /// Delivers until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for member in members.values {
                group.addTask {
                    await member.outbox.attach(self.source)
                    await member.outbox.run()
                }
            }
        }
    }

    /// What was seen so far.
    public var tally: Tally { source.tally }

    /// Whether every queued document was answered (taken or refused).
    public var isIdle: Bool { source.isIdle }

    /// Closes the ambulances' connections.
    public func shutdown() async {
        for member in members.values { await member.client.shutdown() }
    }

    /// The documents, and what became of them.
    final class Source: OutboxItemSource {
        private struct State {
            var payloads: [OutboxItem: OutboxPayload] = [:]
            var tally = Tally()
        }
        private let state = Mutex(State())

        func add(_ item: OutboxItem, payload: OutboxPayload) {
            state.withLock {
                $0.payloads[item] = payload
                $0.tally.queued += 1
            }
        }

        var tally: Tally { state.withLock { $0.tally } }
        var isIdle: Bool { state.withLock { $0.payloads.isEmpty } }

        func payload(_ item: OutboxItem) async -> OutboxPayload? { state.withLock { $0.payloads[item] } }

        func delivered(_ item: OutboxItem) async {
            let latency = Date().timeIntervalSince(item.queuedAt)
            state.withLock {
                guard $0.payloads.removeValue(forKey: item) != nil else { return }
                $0.tally.delivered += 1
                $0.tally.latencies.append(.nanoseconds(Int64(latency * 1_000_000_000)))
            }
        }

        func problem(_ item: OutboxItem, problem: String, final: Bool) async {
            state.withLock {
                if final {
                    if $0.payloads.removeValue(forKey: item) != nil { $0.tally.refused += 1 }
                } else {
                    $0.tally.retries += 1
                }
            }
        }
    }
}
