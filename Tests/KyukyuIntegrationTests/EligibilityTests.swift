import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import Logging
import Testing

/// The gateway's eligibility client against the stub over mutual TLS on loopback.
@Suite("Eligibility over TLS", .serialized)
struct EligibilityOverTLS {
    @Test func visualCheckFetchesEveryCategoryAndOnshiRecordsTheViewing() async throws {
        try await withOnshi { bed in
            let final = await bed.client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 3)),
                crewID: "crew-T1",
                consent: .verbal,
                deadlines: FetchDeadlines(overall: .seconds(5))
            ).completion()
            #expect(final.session != nil)
            #expect(final.status(.qualification) == "ok")
            guard case .ok(.medications(let medications), _) = final.categories[.medications] else {
                Issue.record("medications: \(final.status(.medications))")
                return
            }
            #expect(!medications.isEmpty)
            #expect(medications.allSatisfy { $0.synthetic })
            let viewings = await bed.simulator.service.viewings.all()
            let viewing = try #require(viewings.last)
            #expect(viewing.crewID == "crew-T1")
            #expect(viewing.deviceID == OnshiBed.device)
            #expect(viewing.consent == .verbal)
            #expect(viewing.assurance == .visual)
            #expect(viewing.patientNumber == 3)
            #expect(Set(viewing.categories) == Set(OnshiCategory.allCases))
        }
    }

    @Test func cardlessLookupByTheFourFields() async throws {
        let holder = SyntheticHolder(number: 7)
        try await withOnshi { bed in
            let birth = holder.birthDate
            let final = await bed.client.fetch(
                .lookup(
                    .demographics(
                        name: holder.fullName,
                        birthDate: OnshiDate(year: birth.year, month: birth.month, day: birth.day),
                        sex: OnshiSex(rawValue: holder.sex.rawValue)!,
                        address: holder.address
                    )
                ),
                crewID: "crew-T1",
                consent: .exception,
                categories: [.qualification],
                deadlines: FetchDeadlines(overall: .seconds(5))
            ).completion()
            #expect(final.session != nil, "\(String(describing: final.authenticationFailure))")
            #expect(final.status(.qualification) == "ok")
        }
    }

    @Test func refusedConsentGetsNothingButIsRecorded() async throws {
        try await withOnshi { bed in
            let final = await bed.client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 2)),
                crewID: "crew-T1",
                consent: .refused,
                deadlines: FetchDeadlines(overall: .seconds(5))
            ).completion()
            #expect(final.authenticationFailure?.code == .consentRefused)
            let viewing = try #require(await bed.simulator.service.viewings.all().last)
            #expect(viewing.consent == .refused)
            #expect(viewing.fetches.isEmpty)
        }
    }

    @Test(arguments: [RevocationList.Reason.revoked, .suspended])
    func revokedAndSuspendedCertificatesAreRefused(reason: RevocationList.Reason) async throws {
        try await withOnshi(revocations: RevocationList(entries: [.init(holder: 4, reason: reason)])) { bed in
            let final = await bed.client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 4)),
                crewID: "crew-T1",
                consent: .verbal,
                deadlines: FetchDeadlines(overall: .seconds(5))
            ).completion()
            #expect(final.authenticationFailure?.code == .certificateProblem)
            #expect(
                final.authenticationFailure?.reason.contains(reason == .suspended ? "suspended" : "revoked") == true
            )
        }
    }

    @Test func aTerminalWithoutAValidCertificateIsRefusedAtTLS() async throws {
        try await withOnshi { bed in
            // A certificate from another CA: the stub's TLS layer refuses the handshake.
            let stranger = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-it-stranger-tls").path
            let strangerPKI = try TerminalPKI.loadOrCreate(directory: stranger, logger: OnshiBed.quiet)
            try strangerPKI.writeClientCertificate(deviceID: "stranger", to: stranger + "/t")
            let ours = try OnshiBed.terminalFiles()
            let transport = try HTTPOnshiTransport(
                baseURL: "https://127.0.0.1:\(bed.port)",
                tls: TerminalTLSFiles(
                    certificatePath: stranger + "/t/stranger.cert.pem",
                    keyPath: stranger + "/t/stranger.key.pem",
                    trustRootsPath: ours.trustRootsPath
                ),
                logger: OnshiBed.quiet
            )
            let client = EligibilityClient(transport: transport, logger: OnshiBed.quiet)
            let final = await client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 1)),
                crewID: "crew-T1",
                consent: .verbal,
                deadlines: FetchDeadlines(overall: .seconds(3))
            ).completion()
            await transport.shutdown()
            #expect(final.authenticationFailure?.code == .unreachable)
            #expect(await bed.simulator.service.viewings.all().isEmpty, "nothing reached the service")
        }
    }
}

/// Every fault kind of the stub, on one category, while the others answer.
@Suite("Eligibility faults", .serialized)
struct EligibilityFaults {
    func fetch(
        _ failure: FailureSpec,
        on category: OnshiCategory = .medications,
        deadlines: FetchDeadlines = FetchDeadlines(overall: .seconds(2), perCategory: .seconds(3))
    ) async throws -> (FetchSnapshot, FetchSnapshot, Int) {
        let faults = FaultConfiguration(seed: 7, endpoints: [category.rawValue: FaultSpec(failures: [failure])])
        return try await withOnshi(faults: faults) { bed in
            let fetch = bed.client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 1)),
                crewID: "crew-F1",
                consent: .exception,
                deadlines: deadlines
            )
            let atDeadline = await fetch.snapshotAtDeadline()
            let final = await fetch.completion()
            let viewing = await bed.simulator.service.viewings.all().last
            let attempts = viewing?.fetches.filter { $0.category == category }.count ?? 0
            return (atDeadline, final, attempts)
        }
    }

    func othersAreFine(_ snapshot: FetchSnapshot, except category: OnshiCategory = .medications) {
        for other in OnshiCategory.allCases where other != category {
            #expect(["ok", "empty"].contains(snapshot.status(other)), "\(other): \(snapshot.status(other))")
        }
    }

    @Test func serverErrorsAreRetriedThenReported() async throws {
        let (_, final, _) = try await fetch(FailureSpec(kind: .serverError, status: 502))
        #expect(final.failureCode(.medications) == .serverError)
        othersAreFine(final)
    }

    @Test func aServerErrorThatClearsIsRetriedToSuccess() async throws {
        let (_, final, _) = try await fetch(FailureSpec(kind: .serverError, probability: 0.5))
        // Seeded: with three attempts the category gets through.
        #expect(final.status(.medications) == "ok")
        othersAreFine(final)
    }

    @Test func throttlingIsReportedWhenRetryAfterDoesNotFit() async throws {
        let (_, final, _) = try await fetch(FailureSpec(kind: .throttle, retryAfterSeconds: 30))
        #expect(final.failureCode(.medications) == .rateLimited)
        othersAreFine(final)
    }

    @Test func connectionResetIsRetriedThenReported() async throws {
        let (_, final, _) = try await fetch(FailureSpec(kind: .reset))
        let code = final.failureCode(.medications)
        #expect(code == .unreachable || code == .connectionLost, "\(String(describing: code))")
        othersAreFine(final)
    }

    @Test func aStallAfterHeadersTimesOutAtTheCategoryDeadline() async throws {
        let start = ContinuousClock.now
        let (atDeadline, final, _) = try await fetch(
            FailureSpec(kind: .stall),
            deadlines: FetchDeadlines(overall: .milliseconds(800), perCategory: .milliseconds(1500))
        )
        #expect(atDeadline.status(.medications) == "pending")
        othersAreFine(atDeadline)
        #expect(final.status(.medications) == "timed-out")
        #expect(ContinuousClock.now - start < .seconds(10), "the fetch does not hang on a stalled upstream")
    }

    @Test func aSlowDripPastTheDeadlineTimesOut() async throws {
        let (_, final, _) = try await fetch(
            FailureSpec(kind: .slowDrip, chunkBytes: 16, intervalMs: 200),
            deadlines: FetchDeadlines(overall: .milliseconds(500), perCategory: .seconds(1))
        )
        #expect(final.status(.medications) == "timed-out")
        othersAreFine(final)
    }

    @Test func truncatedMalformedAndOversizedAnswersAreClearFailures() async throws {
        let (_, truncated, _) = try await fetch(FailureSpec(kind: .truncated))
        #expect(truncated.failureCode(.medications) == .malformedResponse)
        let (_, malformed, _) = try await fetch(FailureSpec(kind: .malformed))
        #expect(malformed.failureCode(.medications) == .malformedResponse)
        let (_, oversized, _) = try await fetch(FailureSpec(kind: .oversized, sizeBytes: 40 * 1_048_576))
        #expect(oversized.failureCode(.medications) == .responseTooLarge)
        othersAreFine(oversized)
    }

    @Test func maintenanceIsItsOwnFailureAndNotRetried() async throws {
        let (_, final, attempts) = try await fetch(FailureSpec(kind: .maintenance))
        #expect(final.failureCode(.medications) == .maintenance)
        #expect(attempts <= 1)
        othersAreFine(final)
    }

    @Test func theOverallDeadlineHoldsWhenEveryCategoryStalls() async throws {
        let stall = FaultSpec(failures: [FailureSpec(kind: .stall)])
        let faults = FaultConfiguration(
            seed: 1,
            endpoints: Dictionary(uniqueKeysWithValues: OnshiCategory.allCases.map { ($0.rawValue, stall) })
        )
        try await withOnshi(faults: faults) { bed in
            let start = ContinuousClock.now
            let fetch = bed.client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 1)),
                crewID: "crew-F1",
                consent: .verbal,
                deadlines: FetchDeadlines(overall: .milliseconds(700), perCategory: .milliseconds(1200))
            )
            let snapshot = await fetch.snapshotAtDeadline()
            let atDeadline = ContinuousClock.now - start
            #expect(atDeadline < .milliseconds(700) + .seconds(1), "the snapshot comes at the deadline, not later")
            #expect(!snapshot.isComplete)
            let final = await fetch.completion()
            #expect(final.isComplete)
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }
}
