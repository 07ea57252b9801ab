import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuTestbed
import Testing

/// `kyukyu fetch` used as scripts and drills use it: bad flags, piped output under a deadline, lookups on stdin.
@Suite("kyukyu fetch flags and pipes", .timeLimit(.minutes(2)))
struct FetchCLIHardeningTests {
    static let base = ["fetch", "--consent", "verbal", "--crew", "crew-flags"]

    /// Every bad flag gets ArgumentParser's usage exit code (64) and a message naming the flag, never a trap.
    @Test(
        arguments: [
            (["--categories", "medications,medications"], "twice"),
            (["--categories", "medications,,visits"], "unknown category"),
            (["--deadline-ms", "9223372036854775807"], "--deadline-ms"),
            (["--deadline-ms", "0"], "--deadline-ms"),
            (["--category-deadline-ms=-5"], "--category-deadline-ms"),
            (["--category-deadline-ms", "9223372036854775807"], "--category-deadline-ms"),
            (["--onshi-url", "http://127.0.0.1:9"], "https"),
            (["--onshi-url", "https://user:pw@127.0.0.1:9"], "https"),
            (["--device", "../../etc/x"], "--device"),
            (["--institution-code", "12ab"], "--institution-code"),
            (["--lookup-stdin", "--pin-stdin"], "--lookup-stdin"),
            (["--wait=-1"], "--wait"),
            (["--wait", "nan"], "--wait"),
            (["--wait", "3601"], "--wait"),
            (["--lookup-stdin", "--wait", "5"], "--wait"),
            (["--lookup-stdin", "--insurer-number", "12345678"], "--lookup-stdin"),
            (["--name", "試験 太郎", "--birth", "1980-02-30", "--sex", "male", "--address", "x"], "calendar"),
        ]
    )
    func badFlagsAreRefusedWithAUsageError(extra: [String], message: String) async throws {
        let result = try await kyukyu(Self.base + extra, stdin: "")
        #expect(result.status == 64, "\(extra): \(result.stderr)")
        #expect(result.stderr.contains(message), "\(extra): \(result.stderr)")
    }

    /// The terminal's private key must be readable by its owner only; a copy that others can read is refused
    /// before anything is sent.
    @Test func aTerminalKeyOthersCanReadIsRefused() async throws {
        let files = try OnshiBed.terminalFiles()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-open-key-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for path in [files.certificatePath, files.keyPath, files.trustRootsPath] {
            try FileManager.default.copyItem(
                atPath: path,
                toPath: folder + "/" + URL(fileURLWithPath: path).lastPathComponent
            )
        }
        let key = folder + "/" + URL(fileURLWithPath: files.keyPath).lastPathComponent
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        let result = try await kyukyu(
            Self.base + ["--tls-dir", folder, "--device", OnshiBed.device, "--onshi-url", "https://127.0.0.1:9"]
        )
        #expect(result.status == 29, "\(result.stderr)")
        #expect(result.stderr.contains("chmod 600"), "\(result.stderr)")
    }

    /// Bad lookups on stdin are named by field, and the value never appears in the error.
    @Test(
        arguments: [
            ("", "empty"),
            ("not json", "JSON object"),
            (#"{"name": 5, "birth": "1980-01-01", "sex": "male", "address": "x"}"#, "name"),
            (#"{"name": "試験 花子", "birth": "1980-01-01", "sex": "male"}"#, "all four"),
            (#"{"name": "試験 花子", "birth": "2999-01-01", "sex": "male", "address": "架空市"}"#, "future"),
            (#"{"name": "試験 花子", "birth": "1980-01-01", "sex": "robot", "address": "架空市"}"#, "sex"),
            (#"{"insurerNumber": "1234", "insuredSymbol": "a", "insuredNumber": "b"}"#, "6 to 8 digits"),
        ]
    )
    func badLookupsOnStdinAreRefused(input: String, message: String) async throws {
        let result = try await kyukyu(Self.base + ["--lookup-stdin"], stdin: input)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stderr.contains("試験"), "no patient data in the error")
    }
}

extension ThroughPCSCD.FetchCLI {
    /// With every category stalled, a script reading `--json` through a pipe gets its answer, and the process
    /// ends, at the deadline plus start-up, not when the HTTP client gives up on the stalled connections.
    @Test(.timeLimit(.minutes(1)))
    func pipedJSONArrivesAtTheDeadline() async throws {
        let stall = FaultSpec(failures: [FailureSpec(kind: .stall)])
        let faults = FaultConfiguration(
            endpoints: Dictionary(uniqueKeysWithValues: MedicalCategory.allCases.map { ($0.rawValue, stall) })
        )
        let holder = SyntheticHolder(number: 3)
        try await withOnshi(faults: faults) { bed in
            let lookup = try Self.lookupJSON(holder)
            let deadlineMs = 1000
            let result = try await kyukyu(
                try fetchArguments(
                    bed,
                    ["--consent", "exception", "--lookup-stdin", "--json", "--deadline-ms", "\(deadlineMs)"]
                ),
                stdin: lookup
            )
            #expect(result.status == 0, "\(result.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(object?["authenticated"] as? Bool == true)
            let categories = object?["categories"] as? [String: [String: Any]]
            #expect(categories?["medications"]?["status"] as? String == "timed-out")
            // Start-up (process launch, TLS, authentication) is bounded generously; before the fix the answer
            // came after 6 s, the end of the HTTP client's 5 s TLS shutdown wait.
            let bound = Duration.milliseconds(deadlineMs) + .milliseconds(1500)
            let first = try #require(result.firstStdoutByte)
            #expect(first < bound, "first byte after \(first)")
            #expect(result.elapsed < bound, "process ended after \(result.elapsed)")
        }
    }

    @Test func aLookupOnStdinKeepsPatientDataOffTheCommandLine() async throws {
        let holder = SyntheticHolder(number: 2)
        try await withOnshi { bed in
            let result = try await kyukyu(
                try fetchArguments(
                    bed,
                    ["--consent", "verbal", "--lookup-stdin", "--categories", "qualification,medications"]
                ),
                stdin: try Self.lookupJSON(holder)
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("[medications]"))
            #expect(!result.stderr.contains("warning"), "no warning when the fields come on stdin")
            #expect(await bed.simulator.service.viewings.all().count == 1, "onshi recorded the one viewing")
        }
    }

    /// In PIN mode the card signs onshi's nonce during authentication and is not needed after it: the CLI releases
    /// it (ending its PC/SC transaction) while the categories are still arriving, so another program on the
    /// terminal can use the card. Before, the card stayed held until the last category, four seconds here.
    @Test(.timeLimit(.minutes(1)))
    func thePINModeFetchReleasesTheCardOnceAuthenticated() async throws {
        let stall = FaultSpec(failures: [FailureSpec(kind: .stall, stallMs: 4000)])
        let faults = FaultConfiguration(
            endpoints: Dictionary(uniqueKeysWithValues: MedicalCategory.allCases.map { ($0.rawValue, stall) })
        )
        try await withSimulatedCard({ $0.holder = 1 }) { _, reader in
            try await withOnshi(faults: faults) { bed in
                async let fetch: Commands.Result = kyukyu(
                    try fetchArguments(
                        bed,
                        [
                            "--consent", "verbal", "--pin-stdin", "--deadline-ms", "500", "--category-deadline-ms",
                            "4000",
                        ]
                    ),
                    stdin: "1234\n"
                )
                // Authentication is done when onshi has recorded the viewing (bounded wait, real processes).
                let authenticated = ContinuousClock.now + .seconds(20)
                while await bed.simulator.service.viewings.all().isEmpty, ContinuousClock.now < authenticated {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let askedAt = ContinuousClock.now
                let tries = try await reader.withSession(reader: Bed.readerName) {
                    try await $0.triesLeft(.userAuthentication)
                }
                // Held until the end, the card would come free only when the stalled categories give up, 4 s on.
                let waited = ContinuousClock.now - askedAt
                let result = try await fetch
                #expect(result.status == 0, "\(result.stderr)")
                #expect(tries == 3, "the PIN was right and nothing stays verified")
                #expect(waited < .seconds(2), "another program waited \(waited) for the card")
            }
        }
    }

    static func lookupJSON(_ holder: SyntheticHolder) throws -> String {
        let birth = String(
            format: "%04d-%02d-%02d",
            holder.birthDate.year,
            holder.birthDate.month,
            holder.birthDate.day
        )
        let object = [
            "name": holder.familyName + " " + holder.givenName, "birth": birth,
            "sex": holder.sex == .male ? "male" : "female", "address": holder.address,
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }
}
