import Crypto
import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import Logging
import NIOSSL
import Testing

/// The gateway's eligibility client against the stub over mutual TLS on loopback.
@Suite("Eligibility over TLS", .serialized, .timeLimit(.minutes(1)))
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
            #expect(Set(viewing.categories) == Set(MedicalCategory.allCases))
        }
    }

    @Test func cardlessLookupByTheFourFields() async throws {
        let holder = SyntheticHolder(number: 7)
        try await withOnshi { bed in
            let final = await bed.client.fetch(
                .lookup(
                    holder.demographicsQuery
                ),
                crewID: "crew-T1",
                consent: .lifeOrBodyException,
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
            let files = TerminalTLSFiles(
                certificatePath: stranger + "/t/stranger.cert.pem",
                keyPath: stranger + "/t/stranger.key.pem",
                trustRootsPath: ours.trustRootsPath
            )
            let error = try #require(await authenticationError(baseURL: "https://127.0.0.1:\(bed.port)", tls: files))
            #expect(error.tlsRefusal == .clientCertificateRefused, "\(error)")
            #expect(await bed.simulator.service.viewings.all().isEmpty, "nothing reached the service")
        }
    }

    @Test func aServerFromAnotherCAIsRefused() async throws {
        let rogue = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-it-rogue-onshi-tls").path
        try await withOnshi(serverPKI: rogue) { bed in
            let error = try #require(await authenticationError(baseURL: "https://127.0.0.1:\(bed.port)"))
            #expect(error.code == .unreachable, "\(error)")
            #expect(error.tlsRefusal == .untrustedServer, "\(error)")
            #expect(await bed.simulator.service.viewings.all().isEmpty, "nothing reached the rogue server")
        }
    }

    @Test func aServerCertificateForAnotherNameIsRefused() async throws {
        // Issued by onshi's CA, but for another name than the host of the URL (127.0.0.1).
        let listener = try await Listener.tls(dnsName: "onshi.invalid")
        let error = try #require(await authenticationError(baseURL: "https://127.0.0.1:\(listener.port)"))
        await listener.close()
        #expect(error.code == .unreachable, "\(error)")
        #expect(error.tlsRefusal == .hostNameMismatch, "\(error)")
        #expect(listener.connections >= 1, "the client did connect")
        #expect(listener.bytes == 0, "no byte of the request reached a server with another name")
    }

    @Test func aServerOfferingLessThanTLS12IsRefused() async throws {
        let listener = try await Listener.tls(maximum: .tlsv11)
        let error = try #require(await authenticationError(baseURL: "https://127.0.0.1:\(listener.port)"))
        await listener.close()
        #expect(error.tlsRefusal == .protocolVersion, "\(error)")
        #expect(listener.connections >= 1, "the client did connect")
        #expect(listener.bytes == 0, "no byte of the request crossed a TLS 1.1 session")
    }

    @Test func plainHTTPIsRefusedBeforeAnythingIsSent() async throws {
        let listener = try await Listener()
        let holder = SyntheticHolder(number: 7)
        for url in [
            "http://127.0.0.1:\(listener.port)", "HTTP://127.0.0.1:\(listener.port)", "127.0.0.1:\(listener.port)",
            "ftp://127.0.0.1:\(listener.port)", "https://crew:secret@127.0.0.1:\(listener.port)",
            "//127.0.0.1:\(listener.port)",
        ] {
            do {
                let (client, transport) = try terminalClient(baseURL: url)
                // Were it accepted, this lookup would carry a name, a birth date and an address in cleartext.
                _ = await client.fetch(
                    .lookup(
                        holder.demographicsQuery
                    ),
                    crewID: "crew-T1",
                    consent: .lifeOrBodyException,
                    deadlines: FetchDeadlines(overall: .seconds(1))
                ).completion()
                await transport.shutdown()
                Issue.record("\(url) was accepted")
            } catch let error as EligibilityError {
                #expect(error.code == .configuration, "\(url): \(error)")
                #expect(error.reason.contains("https") || error.reason.contains("user"), "\(url): \(error.reason)")
            }
        }
        await listener.close()
        #expect(listener.connections == 0)
        #expect(listener.bytes == 0, "nothing was sent")
    }

    @Test func aClosedPortIsUnreachableAndNotATLSProblem() async throws {
        let listener = try await Listener()
        let port = listener.port
        await listener.close()
        let error = try #require(await authenticationError(baseURL: "https://127.0.0.1:\(port)"))
        #expect(error.code == .unreachable, "\(error)")
        #expect(error.tlsRefusal == nil)
    }
}

/// Every fault kind of the stub, on one category, while the others answer.
@Suite("Eligibility faults", .serialized, .timeLimit(.minutes(1)))
struct EligibilityFaults {
    /// What one fetch saw, and when (from the fetch's start).
    struct Outcome {
        var atDeadline: FetchSnapshot
        var final: FetchSnapshot
        var attempts: Int
        var snapshotAfter: Duration
        var completionAfter: Duration
    }

    func fetch(
        _ failure: FailureSpec,
        on category: MedicalCategory = .medications,
        deadlines: FetchDeadlines = FetchDeadlines(overall: .seconds(2), perCategory: .seconds(3))
    ) async throws -> Outcome {
        let faults = FaultConfiguration(seed: 7, endpoints: [category.rawValue: FaultSpec(failures: [failure])])
        return try await withOnshi(faults: faults) { bed in
            let start = ContinuousClock.now
            let fetch = bed.client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 1)),
                crewID: "crew-F1",
                consent: .lifeOrBodyException,
                deadlines: deadlines
            )
            let atDeadline = await fetch.snapshotAtDeadline()
            let snapshotAfter = ContinuousClock.now - start
            let final = await fetch.completion()
            let completionAfter = ContinuousClock.now - start
            let viewing = await bed.simulator.service.viewings.all().last
            let attempts = viewing?.fetches.filter { $0.category == category }.count ?? 0
            return Outcome(
                atDeadline: atDeadline,
                final: final,
                attempts: attempts,
                snapshotAfter: snapshotAfter,
                completionAfter: completionAfter
            )
        }
    }

    func othersAreFine(_ snapshot: FetchSnapshot, except category: MedicalCategory = .medications) {
        for other in MedicalCategory.allCases where other != category {
            #expect(["ok", "empty"].contains(snapshot.status(other)), "\(other): \(snapshot.status(other))")
        }
    }

    @Test func serverErrorsAreRetriedThenReported() async throws {
        let final = try await fetch(FailureSpec(kind: .serverError, status: 502)).final
        #expect(final.failureCode(.medications) == .serverError)
        othersAreFine(final)
    }

    @Test func aServerErrorThatClearsIsRetriedToSuccess() async throws {
        let final = try await fetch(FailureSpec(kind: .serverError, probability: 0.5)).final
        // Seeded: with three attempts the category gets through.
        #expect(final.status(.medications) == "ok")
        othersAreFine(final)
    }

    @Test func throttlingIsReportedWhenRetryAfterDoesNotFit() async throws {
        let final = try await fetch(FailureSpec(kind: .throttle, retryAfterSeconds: 30)).final
        #expect(final.failureCode(.medications) == .rateLimited)
        othersAreFine(final)
    }

    @Test func connectionResetIsRetriedThenReported() async throws {
        let final = try await fetch(FailureSpec(kind: .reset)).final
        let code = final.failureCode(.medications)
        #expect(code == .unreachable || code == .connectionLost, "\(String(describing: code))")
        othersAreFine(final)
    }

    /// Real parts are bounded at the deadline plus this.
    static let slack = Duration.milliseconds(250)

    @Test func aStallAfterHeadersTimesOutAtTheCategoryDeadline() async throws {
        let outcome = try await fetch(
            FailureSpec(kind: .stall),
            deadlines: FetchDeadlines(overall: .milliseconds(800), perCategory: .milliseconds(1500))
        )
        #expect(outcome.atDeadline.status(.medications) == "pending")
        othersAreFine(outcome.atDeadline)
        #expect(outcome.snapshotAfter <= .milliseconds(800) + Self.slack, "snapshot after \(outcome.snapshotAfter)")
        #expect(outcome.final.status(.medications) == "timed-out")
        #expect(
            outcome.completionAfter <= .milliseconds(1500) + Self.slack,
            "the stalled category ended \(outcome.completionAfter) after the start"
        )
    }

    @Test func aSlowDripPastTheDeadlineTimesOut() async throws {
        let outcome = try await fetch(
            FailureSpec(kind: .slowDrip, chunkBytes: 16, intervalMs: 200),
            deadlines: FetchDeadlines(overall: .milliseconds(500), perCategory: .seconds(1))
        )
        #expect(outcome.final.status(.medications) == "timed-out")
        #expect(outcome.snapshotAfter <= .milliseconds(500) + Self.slack, "snapshot after \(outcome.snapshotAfter)")
        #expect(
            outcome.completionAfter <= .seconds(1) + Self.slack,
            "the dripping category ended \(outcome.completionAfter) after the start"
        )
        othersAreFine(outcome.final)
    }

    @Test func truncatedMalformedAndOversizedAnswersAreClearFailures() async throws {
        let truncated = try await fetch(FailureSpec(kind: .truncated)).final
        #expect(truncated.failureCode(.medications) == .malformedResponse)
        let malformed = try await fetch(FailureSpec(kind: .malformed)).final
        #expect(malformed.failureCode(.medications) == .malformedResponse)
        let oversized = try await fetch(FailureSpec(kind: .oversized, sizeBytes: 40 * 1_048_576)).final
        #expect(oversized.failureCode(.medications) == .responseTooLarge)
        othersAreFine(oversized)
    }

    @Test func maintenanceIsItsOwnFailureAndNotRetried() async throws {
        let outcome = try await fetch(FailureSpec(kind: .maintenance))
        #expect(outcome.final.failureCode(.medications) == .maintenance)
        #expect(outcome.attempts <= 1)
        othersAreFine(outcome.final)
    }

    @Test func theOverallDeadlineHoldsWhenEveryCategoryStalls() async throws {
        let stall = FaultSpec(failures: [FailureSpec(kind: .stall)])
        let faults = FaultConfiguration(
            seed: 1,
            endpoints: Dictionary(uniqueKeysWithValues: MedicalCategory.allCases.map { ($0.rawValue, stall) })
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
            #expect(atDeadline <= .milliseconds(700) + Self.slack, "the snapshot came \(atDeadline) after the start")
            #expect(!snapshot.isComplete)
            let final = await fetch.completion()
            let completed = ContinuousClock.now - start
            // The cancelled exchanges close their connections without waiting 5 s for a close_notify.
            let shutdown = ContinuousClock.now
            await bed.transport.shutdown()
            let shutdownTook = ContinuousClock.now - shutdown
            #expect(shutdownTook <= .seconds(1), "the transport took \(shutdownTook) to shut down")
            #expect(final.isComplete)
            #expect(MedicalCategory.allCases.allSatisfy { final.status($0) == "timed-out" })
            #expect(completed <= .milliseconds(1200) + Self.slack, "every category ended \(completed) after the start")
        }
    }

    @Test(arguments: ["visual", "lookup"])
    func authenticationIsNotRetriedAfterADrop(mode: String) async throws {
        // onshi records the viewing, then the connection drops before the answer: a retry would record another.
        let faults = FaultConfiguration(
            seed: 1,
            endpoints: ["sessions": FaultSpec(failures: [FailureSpec(kind: .dropAfterProcessing)])]
        )
        let holder = SyntheticHolder(number: 7)
        try await withOnshi(faults: faults) { bed in
            let identity: PatientIdentity
            if mode == "visual" {
                identity = .visualCheck(certificateDER: try OnshiBed.certificate(holder: 7))
            } else {
                identity = .lookup(
                    holder.demographicsQuery
                )
            }
            let final = await bed.client.fetch(
                identity,
                crewID: "crew-D1",
                consent: .lifeOrBodyException,
                deadlines: FetchDeadlines(overall: .seconds(3))
            ).completion()
            let error = try #require(final.authenticationError)
            #expect(error.code == .connectionLost, "\(error)")
            let viewings = await bed.simulator.service.viewings.all()
            #expect(viewings.count == 1, "exactly one viewing, not one per attempt")
            #expect(viewings.first?.crewID == "crew-D1")
        }
    }
}

/// PIN mode through every real part: the card client signs onshi's nonce inside the fetch's deadline.
extension ThroughPCSCD {
    @Suite("PIN-mode signing through the card", .timeLimit(.minutes(1)))
    struct PINSigningThroughTheCard {
        /// A PIN-mode fetch whose `signNonce` is the card's signature; the PIN is not verified unless `pin` is given.
        func fetch(
            _ reader: CardReader,
            _ bed: OnshiBed,
            holder: Int,
            pin: String? = nil,
            overall: Duration
        ) async throws -> (FetchSnapshot, Duration) {
            try await reader.withSession(reader: Bed.readerName) { session in
                _ = try await session.tokenType()
                if let pin { try await session.verify(try CardPIN(pin, kind: .userAuthentication)) }
                let identity = PatientIdentity.pin(
                    certificateDER: try OnshiBed.certificate(holder: holder),
                    signNonce: { nonce in
                        try await session.signWithAuthenticationKey(sha256: Array(SHA256.hash(data: nonce)))
                    }
                )
                let start = ContinuousClock.now
                let final = await bed.client.fetch(
                    identity,
                    crewID: "crew-S1",
                    consent: .verbal,
                    categories: [.qualification],
                    deadlines: FetchDeadlines(overall: overall)
                ).completion()
                return (final, ContinuousClock.now - start)
            }
        }

        @Test func aCardErrorDuringSigningIsReportedAsTheCardsOwnError() async throws {
            try await withSimulatedCard({ $0.holder = 3 }) { simulator, reader in
                try await withOnshi { bed in
                    // No PIN verified: the card refuses to sign (security status not satisfied).
                    let (final, _) = try await fetch(reader, bed, holder: 3, overall: .seconds(5))
                    let error = try #require(final.authenticationError)
                    #expect(error.code == .signingFailed, "not cancelled, not timed out: \(error)")
                    let cardError = try #require(error.underlying as? CardError, "\(error)")
                    #expect(cardError.code == .unexpectedStatus, "\(cardError)")
                    #expect(await simulator.authPINTriesLeft == 3, "no PIN try was spent")
                    #expect(await bed.simulator.service.viewings.all().isEmpty, "no session was opened")
                }
            }
        }

        @Test func waitingForTheIPhoneHoldersApprovalIsBoundedByTheDeadline() async throws {
            try await withSimulatedCard({
                $0.profile = .iphone
                $0.holder = 7
                $0.iphoneApproval = .approve(after: .seconds(4))
            }) { _, reader in
                try await withOnshi { bed in
                    let deadline = Duration.milliseconds(1500)
                    let (final, elapsed) = try await fetch(reader, bed, holder: 7, overall: deadline)
                    let error = try #require(final.authenticationError)
                    #expect(error.code == .timedOut, "\(error)")
                    #expect(error.reason.contains("sign"), "\(error.reason)")
                    #expect(elapsed <= deadline + .milliseconds(250), "the fetch ended \(elapsed) after its start")
                    #expect(await bed.simulator.service.viewings.all().isEmpty)
                }
            }
        }
    }
}
