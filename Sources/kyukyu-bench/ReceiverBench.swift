import AsyncHTTPClient
import Crypto
import Foundation
import Histogram
import KyukyuCrew
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuFHIR
import KyukyuGateway
import KyukyuOnshi
import KyukyuReceiver
import KyukyuReceiverProbe
import KyukyuTestbed
import KyukyuVault
import KyukyuWorkflow
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// The hospital's receiver under many ambulances (issue 9):
/// - ingest: `kyukyu-hospital serve` as its own process, and many ambulances posting pre-arrival documents at once,
///   each with its own device certificate and connection, through the gateway's own client
///   (``KyukyuGateway/HTTPReceiverClient``), each ambulance in order (as its outbox does);
/// - the same documents through the parts alone, in this process, to say where the time goes: validation, sealing,
///   and the store's commits;
/// - acknowledgement latency: from the staff's `acknowledge` request to the event on the ambulance's own stream,
///   on an idle receiver and during the ingest.
struct ReceiverBenchmark {
    let options: BenchOptions
    let ambulances: Int
    let documentsPerAmbulance: Int
    let acknowledgements: Int
    let port: Int
    let partsOnly: Bool

    static let hospital = HospitalCode(rawValue: "9999999901")!

    /// One ingest run: every ambulance sends its documents in order, all ambulances at once.
    struct Ingest: Codable, CustomStringConvertible {
        var documents: Int
        var averageDocumentBytes: Int
        var seconds: Double
        var documentsPerSecond: Double
        var postLatency: LatencyStats
        var receiverCPUMillisecondsPerDocument: Double
        var ambulancesCPUMillisecondsPerDocument: Double
        var failures: Int

        var description: String {
            String(
                format: "%.0f documents/s (%d in %.2f s); CPU per document: receiver %.2f ms, ambulances %.2f ms",
                documentsPerSecond,
                documents,
                seconds,
                receiverCPUMillisecondsPerDocument,
                ambulancesCPUMillisecondsPerDocument
            )
        }
    }

    struct Report: Codable, CustomStringConvertible {
        var ambulances: Int
        var full: Ingest
        var observationsOnly: Ingest
        var validateOnlyDocumentsPerSecond: Double
        var storeOnlySequentialDocumentsPerSecond: Double
        var storeOnlyConcurrentDocumentsPerSecond: Double
        var storeOnlyConcurrentUnbatchedDocumentsPerSecond: Double
        var acknowledgementIdle: LatencyStats
        var acknowledgementDuringIngest: LatencyStats
        var refusedOrRetried: Int

        var description: String {
            """
            ## Receiver (issue 9): \(ambulances) ambulances sending at once over mutual TLS

            | measure | figure |
            | --- | --- |
            | ingest, documents with every category (\(full.averageDocumentBytes) bytes on average) | \(full) |
            | one POST during that ingest | \(full.postLatency) |
            | ingest, the crew's observations only (no card; \(observationsOnly.averageDocumentBytes) bytes) | \(observationsOnly) |
            | one POST during that ingest | \(observationsOnly.postLatency) |
            | validation alone (every category), one thread, in process | \(String(format: "%.0f", validateOnlyDocumentsPerSecond)) documents/s |
            | validation + sealing + store, in process, one at a time | \(String(format: "%.0f", storeOnlySequentialDocumentsPerSecond)) documents/s |
            | validation + sealing + store, in process, \(ambulances) at once, group commit | \(String(format: "%.0f", storeOnlyConcurrentDocumentsPerSecond)) documents/s |
            | the same, one transaction per document (no group commit) | \(String(format: "%.0f", storeOnlyConcurrentUnbatchedDocumentsPerSecond)) documents/s |
            | acknowledgement → the ambulance's stream, idle receiver | \(acknowledgementIdle) |
            | acknowledgement → the ambulance's stream, during the ingest | \(acknowledgementDuringIngest) |

            Refused or to retry: \(refusedOrRetried) (must be 0).
            """
        }
    }

    /// Every ambulance posts its documents one after another (as its outbox delivers), all ambulances at once.
    static func ingest(
        _ perAmbulance: [[Document]],
        clients: [HTTPReceiverClient],
        hospital: ReceivingHospital,
        server: SpawnedProcess
    ) async -> Ingest {
        let failures = Counter()
        let serverBefore = cpuSeconds(pid: server.pid)
        let ownBefore = cpuSeconds(pid: getpid())
        let start = ContinuousClock.now
        let histograms = await withTaskGroup(of: Histogram<UInt64>.self) { group in
            for (client, documents) in zip(clients, perAmbulance) {
                group.addTask {
                    var histogram = Histogram<UInt64>(
                        highestTrackableValue: 600_000_000,
                        numberOfSignificantValueDigits: .three
                    )
                    for document in documents {
                        let sent = ContinuousClock.now
                        let result = await client.post(document.body, versionID: document.versionID, to: hospital)
                        _ = histogram.record(microseconds(ContinuousClock.now - sent))
                        if result != .delivered { await failures.add() }
                    }
                    return histogram
                }
            }
            var all: [Histogram<UInt64>] = []
            for await histogram in group { all.append(histogram) }
            return all
        }
        let seconds = seconds(ContinuousClock.now - start)
        let serverCPU = cpuSeconds(pid: server.pid) - serverBefore
        let ownCPU = cpuSeconds(pid: getpid()) - ownBefore
        var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        for histogram in histograms { latency.add(histogram) }
        let count = perAmbulance.map(\.count).reduce(0, +)
        let bytes = perAmbulance.flatMap { $0 }.map(\.body.count).reduce(0, +)
        return Ingest(
            documents: count,
            averageDocumentBytes: bytes / max(count, 1),
            seconds: seconds,
            documentsPerSecond: Double(count) / seconds,
            postLatency: LatencyStats(latency),
            receiverCPUMillisecondsPerDocument: serverCPU * 1000 / Double(count),
            ambulancesCPUMillisecondsPerDocument: ownCPU * 1000 / Double(count),
            failures: await failures.value
        )
    }

    func run() async throws {
        var logger = Logger(label: "kyukyu.bench.receiver")
        logger.logLevel = .warning
        let root = URL(fileURLWithPath: options.stateDir).standardizedFileURL.path + "/bench-receiver"
        try? FileManager.default.removeItem(atPath: root)
        let hospitalState = root + "/hospital"
        let devices = root + "/devices"
        try FileManager.default.createDirectory(atPath: hospitalState, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: devices, withIntermediateDirectories: true)

        // The hospital: its CA and server certificate, a device certificate per ambulance, one staff member.
        let pki = HospitalPKI(directory: hospitalState + "/pki")
        try pki.initialize(hospital: Self.hospital.rawValue, serverNames: ["localhost", "127.0.0.1"])
        let names = (1...ambulances).map { String(format: "BENCH-AMB-%03d", $0) } + ["BENCH-ACK"]
        do {
            let store = try HospitalStore.open(
                path: hospitalState + "/" + HospitalStore.fileName,
                hospital: Self.hospital,
                keyProvider: KeyFileProvider(stateDirectory: hospitalState),
                logger: logger
            )
            for name in names {
                _ = try pki.issueDevice(name, outDirectory: devices)
                try await store.registerDevice(name)
            }
        }
        var policy = CrewDirectory.Policy()
        policy.bcryptCost = 4
        policy.totpIssuer = "Myna Kyukyu hospital"
        let enrolment = try await CrewDirectory.open(
            path: hospitalState + "/staff.sqlite",
            secretKey: try CrewSecretKey.load(path: hospitalState + "/staff-secret.key", create: true),
            policy: policy,
            logger: logger
        ).add(crewID: "BENCH-STAFF", password: "synthetic-bench-password", pin: "2468")

        // The documents, built before anything is timed.
        let perAmbulance = try names.dropLast().map { name in
            try (0..<documentsPerAmbulance).map { index in try Self.document(device: name, index: index) }
        }
        let all = perAmbulance.flatMap { $0 }
        // The same number of documents with the crew's observations only: no card, so no medical records (the
        // commonest case in the field, by the national survey).
        let lightPerAmbulance = try names.dropLast().map { name in
            try (0..<documentsPerAmbulance).map { index in
                try Self.document(device: name, index: documentsPerAmbulance + index, records: false)
            }
        }

        // Where the time goes, in this process: validation alone, then the whole intake without HTTP.
        let validator = FHIRHandoffValidator()
        let validateStart = ContinuousClock.now
        for document in all { _ = try validator.validate(document.body) }
        let validateRate = Double(all.count) / Self.seconds(ContinuousClock.now - validateStart)
        let sequentialRate = try await Self.storeOnly(
            perAmbulance,
            concurrent: false,
            directory: root + "/store-sequential",
            logger: logger
        )
        let concurrentRate = try await Self.storeOnly(
            perAmbulance,
            concurrent: true,
            directory: root + "/store-concurrent",
            logger: logger
        )
        let concurrentUnbatchedRate = try await Self.storeOnly(
            perAmbulance,
            concurrent: true,
            commitBatch: 1,
            directory: root + "/store-concurrent-unbatched",
            logger: logger
        )

        if partsOnly {
            print(
                String(
                    format: "validation alone %.0f documents/s; whole intake in process %.0f/s one at a time, "
                        + "%.0f/s %d at once (%.0f/s without group commit)",
                    validateRate,
                    sequentialRate,
                    concurrentRate,
                    ambulances,
                    concurrentUnbatchedRate
                )
            )
            return
        }

        // The receiver as its own process.
        let server = try Commands.spawn(
            try Commands.executable("kyukyu-hospital"),
            [
                "serve", "--state-directory", hospitalState, "--hospital-code", Self.hospital.rawValue,
                "--http-port", String(port), "--log-level", "warning",
            ],
            log: root + "/hospital.log"
        )
        defer { server.stop() }
        let url = "https://127.0.0.1:\(port)"
        let receiving = ReceivingHospital(code: Self.hospital, name: "ベンチ受入病院（架空）", url: url)
        let clients = try names.map { name in
            try HTTPReceiverClient(
                tls: ReceiverTLSFiles(
                    certificatePath: devices + "/\(name).cert.pem",
                    keyPath: devices + "/\(name).key.pem",
                    trustRootsPath: devices + "/ca.cert.pem"
                ),
                logger: logger
            )
        }
        defer { Task { for client in clients { await client.shutdown() } } }
        let staff = try StaffClient(base: url, caPEM: try pki.caCertificatePEM())
        defer { Task { await staff.shutdown() } }
        try await staff.waitUntilLive(timeout: .seconds(30))
        try await staff.signIn(
            staffID: enrolment.crewID,
            password: "synthetic-bench-password",
            totp: totp(enrolment.totpSecret)
        )

        // Acknowledgements on an idle receiver: one ambulance listens on its own stream, as the gateway does.
        let listener = AcknowledgementProbe(client: clients.last!, hospital: receiving)
        await listener.start()
        let idle = try await listener.measure(
            count: acknowledgements,
            device: names.last!,
            staff: staff,
            offset: 0
        )

        // The ingest: every ambulance sends its documents in order, all at once; acknowledgements go on beside it.
        async let duringIngest = listener.measure(
            count: acknowledgements,
            device: names.last!,
            staff: staff,
            offset: acknowledgements
        )
        let full = await Self.ingest(perAmbulance, clients: clients, hospital: receiving, server: server)
        let busy = try await duringIngest
        await listener.stop()
        let light = await Self.ingest(lightPerAmbulance, clients: clients, hospital: receiving, server: server)

        let report = Report(
            ambulances: ambulances,
            full: full,
            observationsOnly: light,
            validateOnlyDocumentsPerSecond: validateRate,
            storeOnlySequentialDocumentsPerSecond: sequentialRate,
            storeOnlyConcurrentDocumentsPerSecond: concurrentRate,
            storeOnlyConcurrentUnbatchedDocumentsPerSecond: concurrentUnbatchedRate,
            acknowledgementIdle: LatencyStats(idle),
            acknowledgementDuringIngest: LatencyStats(busy),
            refusedOrRetried: full.failures + light.failures
        )
        try save(report, name: "receiver", stateDir: options.stateDir)
        print(report)
        guard report.refusedOrRetried == 0 else {
            throw TestbedError("\(report.refusedOrRetried) documents were refused or left to retry; see \(root)")
        }
    }

    /// One document ready to post.
    typealias Document = SyntheticHandoff.Document

    /// A pre-arrival document for synthetic patient `index % 7 + 1`, from `device`, to this benchmark's hospital.
    static func document(device: String, index: Int, records: Bool = true) throws -> Document {
        try SyntheticHandoff.document(
            device: device,
            index: index,
            hospital: hospital,
            hospitalName: "ベンチ受入病院（架空）",
            records: records
        )
    }

    /// The intake without HTTP: a desk over a fresh store; documents one at a time, or each ambulance's in order
    /// and all ambulances at once. Documents per second.
    static func storeOnly(
        _ perAmbulance: [[Document]],
        concurrent: Bool,
        commitBatch: Int = 256,
        directory: String,
        logger: Logger
    ) async throws -> Double {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try HospitalStore.open(
            path: directory + "/" + HospitalStore.fileName,
            hospital: hospital,
            keyProvider: KeyFileProvider(stateDirectory: directory),
            commitBatch: commitBatch,
            logger: logger
        )
        for index in perAmbulance.indices {
            try await store.registerDevice(String(format: "BENCH-AMB-%03d", index + 1))
        }
        let desk = HospitalDesk(hospitals: [hospital], store: store, validator: FHIRHandoffValidator(), logger: logger)
        let start = ContinuousClock.now
        if concurrent {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, documents) in perAmbulance.enumerated() {
                    group.addTask {
                        for document in documents {
                            _ = try await desk.intake(
                                body: document.body,
                                idempotencyKey: "urn:uuid:\(document.versionID.uuidString.lowercased())",
                                device: String(format: "BENCH-AMB-%03d", index + 1)
                            )
                        }
                    }
                }
                try await group.waitForAll()
            }
        } else {
            for (index, documents) in perAmbulance.enumerated() {
                for document in documents {
                    _ = try await desk.intake(
                        body: document.body,
                        idempotencyKey: "urn:uuid:\(document.versionID.uuidString.lowercased())",
                        device: String(format: "BENCH-AMB-%03d", index + 1)
                    )
                }
            }
        }
        return Double(perAmbulance.map(\.count).reduce(0, +)) / seconds(ContinuousClock.now - start)
    }

    /// User and system CPU time of a process so far, from /proc (clock ticks of 1/100 s).
    static func cpuSeconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // After the command name: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(1, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000))
    }
}

/// A count shared by tasks.
actor Counter {
    private(set) var value = 0
    func add() { value += 1 }
}

/// One ambulance's event stream, and the staff acknowledging its documents one by one: the time from the staff's
/// request leaving to the `acknowledged` event arriving on the ambulance's stream.
struct AcknowledgementProbe {
    let client: HTTPReceiverClient
    let hospital: ReceivingHospital
    let watch: AcknowledgementWatch

    init(client: HTTPReceiverClient, hospital: ReceivingHospital) {
        self.client = client
        self.hospital = hospital
        self.watch = AcknowledgementWatch(client: client, hospital: hospital)
    }

    func start() async { await watch.start() }

    func stop() async { await watch.stop() }

    func measure(count: Int, device: String, staff: StaffClient, offset: Int) async throws -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        for index in 0..<count {
            let document = try ReceiverBenchmark.document(device: device, index: offset + index)
            guard await client.post(document.body, versionID: document.versionID, to: hospital) == .delivered else {
                throw TestbedError("the acknowledgement probe's document was not delivered")
            }
            try await watch.wait(for: .received, of: document.documentSet)
            let start = ContinuousClock.now
            try await staff.acknowledge(document.documentSet)
            try await watch.wait(for: .acknowledged, of: document.documentSet)
            _ = histogram.record(ReceiverBenchmark.microseconds(ContinuousClock.now - start))
        }
        return histogram
    }
}
