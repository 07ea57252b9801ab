import Foundation
import KyukyuCard
import KyukyuDomain
import KyukyuTestbed
import Logging
import Testing

/// Runs the simulator executable on the first reader and waits until pcscd sees the card.
func withSimulatorProcess<T>(
    _ arguments: [String] = [],
    _ body: (SpawnedProcess) async throws -> T
) async throws -> T {
    let daemon = try await Bed.shared.pcscd()
    let simulator = try Commands.spawn(
        try Commands.executable("kyukyu-card-sim"),
        ["--port", "\(Bed.basePort)", "--data-dir", Bed.shared.pkiDirectory] + arguments,
        log: daemon.directory + "/card-sim-process.log"
    )
    let service = Bed.shared.service()
    defer { simulator.stop() }
    do {
        _ = try await service.waitForCard(reader: Bed.readerName, timeout: .seconds(20))
        let result = try await body(simulator)
        simulator.stop()
        try await waitForCardAbsent(service)
        await service.shutdown()
        return result
    } catch {
        simulator.stop()
        try? await waitForCardAbsent(service)
        await service.shutdown()
        throw error
    }
}

func kyukyu(_ arguments: [String], stdin: String? = nil) async throws -> Commands.Result {
    try await Commands.run(try Commands.executable("kyukyu"), arguments, stdin: stdin)
}

extension ThroughPCSCD {
    @Suite("kyukyu card CLI")
    struct CLI {
        @Test func statusReadAndAttributesAsJSON() async throws {
            try await withSimulatorProcess(["--holder", "5"]) { _ in
                let status = try await kyukyu(["card", "status", "--json", "--reader", Bed.readerName])
                #expect(status.status == 0, "\(status.stderr)")
                let reports = try JSONDecoder().decode([CardStatusReport].self, from: Data(status.stdout.utf8))
                #expect(reports.first?.tokenType == .individualNumberCard)
                #expect(reports.first?.authPINTriesLeft == 3)

                let read = try await kyukyu(["card", "read", "--json", "--pem"])
                #expect(read.status == 0, "\(read.stderr)")
                let object = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
                #expect(object?["tokenType"] as? String == "individual-number-card")
                #expect((object?["pem"] as? String)?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
                #expect(object?["validity"] as? String == "valid")
                #expect((object?["serialNumber"] as? String)?.isEmpty == false)

                let attributes = try await kyukyu(["card", "attributes", "--pin-stdin", "--json"], stdin: "1234\n")
                #expect(attributes.status == 0, "\(attributes.stderr)")
                let decoded = try JSONDecoder().decode(CardAttributes.self, from: Data(attributes.stdout.utf8))
                #expect(decoded.birthDate.count == 8)
                #expect(!attributes.stderr.contains(decoded.familyName), "no patient data on stderr")
            }
        }

        @Test func wrongPINsExitCodesAndTheLastTryGuard() async throws {
            try await withSimulatorProcess(["--auth-pin-tries", "2"]) { _ in
                let wrong = try await kyukyu(["card", "read", "--pin-stdin", "--json"], stdin: "0000\n")
                #expect(wrong.status == 15)
                #expect(wrong.stdout.contains("\"triesLeft\" : 1"))
                #expect(wrong.stderr.contains("1 try left"))

                let guarded = try await kyukyu(["card", "read", "--pin-stdin"], stdin: "1234\n")
                #expect(guarded.status == 16)
                #expect(guarded.stderr.contains("--confirm-last-try"))

                let status = try await kyukyu(["card", "status", "--json"])
                #expect(status.stdout.contains("\"authPINTriesLeft\" : 1"), "the guard spent nothing")

                let confirmed = try await kyukyu(
                    ["card", "read", "--pin-stdin", "--confirm-last-try"],
                    stdin: "1234\n"
                )
                #expect(confirmed.status == 0, "\(confirmed.stderr)")
                #expect(confirmed.stdout.contains("Token:     My Number card"))
            }
        }

        @Test func lockedCardAndMalformedPIN() async throws {
            try await withSimulatorProcess(["--locked"]) { _ in
                let locked = try await kyukyu(["card", "read", "--pin-stdin", "--confirm-last-try"], stdin: "1234\n")
                #expect(locked.status == 17)
                #expect(locked.stderr.contains("municipal office"))

                let malformed = try await kyukyu(["card", "attributes", "--pin-stdin"], stdin: "12\n")
                #expect(malformed.status == 15)
                #expect(malformed.stderr.contains("4 digits"))
            }
        }

        @Test func androidProfileThroughTheCLI() async throws {
            try await withSimulatorProcess(["--profile", "android", "--auth-pin", "2468"]) { _ in
                let needsPIN = try await kyukyu(["card", "read"])
                #expect(needsPIN.status == 14)
                let read = try await kyukyu(["card", "read", "--pin-stdin"], stdin: "2468\n")
                #expect(read.status == 0, "\(read.stderr)")
                #expect(read.stdout.contains("Android"))
            }
        }

        @Test func noServiceIsAClearErrorWithItsOwnExitCode() async throws {
            let result = try await Commands.run(
                try Commands.executable("kyukyu"),
                ["card", "status"],
                environment: ["PCSCLITE_CSOCK_NAME": "/nonexistent/pcscd.comm"]
            )
            #expect(result.status == 10)
            #expect(result.stderr.contains("pcscd"))
        }
    }
}
