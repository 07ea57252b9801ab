import ArgumentParser
import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuTestbed
import Logging

/// The peak memory of one fetch, measured in a process of its own (`fetch-memory-probe`) against the stub running
/// as another process, so that neither the stub's buffers nor an earlier case count.
///
/// Cases: the heaviest synthetic patient (holder 1, polypharmacy: 3,930 dispensings over 5 years); every category
/// answered with a body just under the 16 MiB cap padded by a comment (bytes only); and every category answered
/// with 15 MiB of empty elements (millions of tree nodes).
struct FetchMemoryBenchmark {
    let options: BenchOptions

    struct Case {
        var name: String
        var faults: FaultConfiguration?
    }

    static func everyCategory(_ failure: FailureSpec) -> FaultConfiguration {
        FaultConfiguration(endpoints: ["*": FaultSpec(failures: [failure])])
    }

    struct Result: Codable {
        var name: String
        var baselineRSSMiB: Double
        var peakRSSMiB: Double
        var peakAboveBaselineMiB: Double
        var categories: [String: String]
    }

    func run() async throws {
        let stateDir = URL(fileURLWithPath: options.stateDir).standardizedFileURL.path
        let tlsDir = stateDir + "/bench-memory-tls"
        let pkiDir = stateDir + "/sim-pki"
        let sim = try Commands.executable("kyukyu-eligibility-sim")
        let bench = try Commands.executable("kyukyu-bench")
        let issued = try await Commands.run(
            sim,
            ["issue-terminal-cert", "--device", "bench-mem-01", "--out", tlsDir + "/terminal", "--tls-dir", tlsDir]
        )
        guard issued.status == 0 else { throw TestbedError("issue-terminal-cert failed: \(issued.stderr)") }
        let cases = [
            Case(name: "heaviest synthetic patient (holder 1)", faults: nil),
            Case(
                name: "9 answers of 15.9 MiB (comment padding)",
                faults: Self.everyCategory(FailureSpec(kind: .oversized, sizeBytes: 16 * 1_048_576 - 65_536))
            ),
            Case(
                name: "9 answers of 15 MiB of empty elements",
                faults: Self.everyCategory(FailureSpec(kind: .bloated, sizeBytes: 15 * 1_048_576))
            ),
        ]
        var results: [Result] = []
        for (index, benchCase) in cases.enumerated() {
            let port = 18_700 + index * 2
            var arguments = [
                "serve", "--port", "\(port)", "--admin-port", "\(port + 1)", "--pki-dir", pkiDir, "--tls-dir", tlsDir,
            ]
            if let faults = benchCase.faults {
                let file = tlsDir + "/faults-\(index).json"
                try JSONEncoder().encode(faults).write(to: URL(fileURLWithPath: file))
                arguments += ["--faults", file]
            }
            let stub = try Commands.spawn(sim, arguments, log: tlsDir + "/stub-\(index).log")
            defer { stub.stop() }
            try await waitForListener(port: port, timeout: .seconds(60))
            let probe = try await Commands.run(
                bench,
                ["fetch-memory-probe", "--port", "\(port)", "--tls-dir", tlsDir + "/terminal", "--pki-dir", pkiDir],
                timeout: .seconds(300)
            )
            stub.stop()
            guard probe.status == 0, let data = probe.stdout.split(separator: "\n").last.map({ Data($0.utf8) }) else {
                throw TestbedError("the probe failed (\(probe.status)): \(probe.stderr)")
            }
            var result = try JSONDecoder().decode(Result.self, from: data)
            result.name = benchCase.name
            results.append(result)
        }
        try save(results, name: "fetch-memory", stateDir: options.stateDir)
        print("| case | RSS before | peak RSS | peak above before | categories |")
        print("|---|---|---|---|---|")
        for r in results {
            let outcomes = Dictionary(grouping: r.categories.values, by: { $0 }).map { "\($0.value.count) \($0.key)" }
            print(
                String(
                    format: "| %@ | %.1f MiB | %.1f MiB | %.1f MiB | %@ |",
                    r.name,
                    r.baselineRSSMiB,
                    r.peakRSSMiB,
                    r.peakAboveBaselineMiB,
                    outcomes.sorted().joined(separator: ", ")
                )
            )
        }
    }

    /// Waits until something listens on the loopback port.
    func waitForListener(port: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while !PrivatePCSCD.listeningTCPPorts().contains(port) {
            guard ContinuousClock.now < deadline else { throw TestbedError("nothing listens on \(port)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// One fetch in this process, with its peak resident memory; prints one JSON line.
struct FetchMemoryProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch-memory-probe",
        abstract: "(internal) One fetch of holder 1 from the stub on --port; prints its peak RSS as JSON.",
        shouldDisplay: false
    )

    @Option var port: Int
    @Option var tlsDir: String
    @Option var pkiDir: String
    @Option var holder = 1

    func run() async throws {
        let logger = Logger(label: "kyukyu.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let transport = try HTTPOnshiTransport(
            baseURL: "https://127.0.0.1:\(port)",
            tls: TerminalTLSFiles(
                certificatePath: tlsDir + "/bench-mem-01.cert.pem",
                keyPath: tlsDir + "/bench-mem-01.key.pem",
                trustRootsPath: tlsDir + "/ca.cert.pem"
            ),
            logger: logger
        )
        let client = EligibilityClient(transport: transport, logger: logger)
        let certificate = try TestPKI.loadOrCreate(directory: pkiDir, logger: logger).holder(holder, validity: .valid)
            .userAuthCertificateDER
        await transport.prewarm(connections: 9)
        let baseline = try ProcessMemory.residentBytes()
        try ProcessMemory.resetPeak()
        let fetch = client.fetch(
            .visualCheck(certificateDER: certificate),
            crewID: "bench-memory",
            consent: .verbal,
            deadlines: FetchDeadlines(overall: .seconds(60))
        )
        let final = await fetch.completion()
        let peak = try ProcessMemory.peakResidentBytes()
        await transport.shutdown()
        let mib = { (bytes: Int) in Double(bytes) / 1_048_576 }
        let result = FetchMemoryBenchmark.Result(
            name: "",
            baselineRSSMiB: mib(baseline),
            peakRSSMiB: mib(peak),
            peakAboveBaselineMiB: mib(peak - baseline),
            categories: Dictionary(uniqueKeysWithValues: final.categories.map { ($0.key.rawValue, $0.value.label) })
        )
        let line = try JSONEncoder().encode(result)
        print(String(decoding: line, as: UTF8.self))
    }
}

/// This process's resident memory, from `/proc/self`.
enum ProcessMemory {
    static func status(_ field: String) throws -> Int {
        let text = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
            let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { throw TestbedError("no \(field) in /proc/self/status") }
        return kib * 1024
    }

    /// `VmRSS`.
    static func residentBytes() throws -> Int { try status("VmRSS") }

    /// `VmHWM`: the most resident since start or the last ``resetPeak()``.
    static func peakResidentBytes() throws -> Int { try status("VmHWM") }

    /// Writing 5 to `clear_refs` resets `VmHWM` to the current RSS (Linux 4.0 and later).
    static func resetPeak() throws {
        try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
}
