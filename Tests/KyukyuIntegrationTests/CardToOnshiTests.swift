import Crypto
import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import KyukyuTestbed
import Testing

/// Card → onshi through every real part: pcscd + vpcd + the card simulator, and the stub over mutual TLS.
extension ThroughPCSCD {
    @Suite("Card to onshi")
    struct CardToOnshi {
        /// Reads the card (PIN mode when `pin` is given: the card signs onshi's nonce) and fetches.
        func fetch(
            _ reader: CardReader,
            _ bed: OnshiBed,
            pin: String?,
            consent: ConsentBasis = .verbal
        ) async throws -> FetchSnapshot {
            try await reader.withSession(reader: Bed.readerName) { session in
                _ = try await session.tokenType()
                if let pin { try await session.verify(try CardPIN(pin, kind: .userAuthentication)) }
                let der = try await session.readCertificateDER(.userAuthentication)
                let identity: PatientIdentity =
                    pin == nil
                    ? .visualCheck(certificateDER: der)
                    : .pin(
                        certificateDER: der,
                        signNonce: { nonce in
                            try await session.signWithAuthenticationKey(sha256: Array(SHA256.hash(data: nonce)))
                        }
                    )
                return await bed.client.fetch(
                    identity,
                    crewID: "crew-C1",
                    consent: consent,
                    deadlines: FetchDeadlines(overall: .seconds(5))
                ).completion()
            }
        }

        @Test func pinModeTheCardSignsOnshisNonce() async throws {
            try await withSimulatedCard({ $0.holder = 6 }) { simulator, reader in
                try await withOnshi { bed in
                    let final = try await fetch(reader, bed, pin: "1234")
                    #expect(final.session != nil, "\(String(describing: final.authenticationFailure))")
                    guard case .ok(.treatment(let treatments), _) = final.categories[.treatment] else {
                        Issue.record("treatment: \(final.status(.treatment))")
                        return
                    }
                    #expect(treatments.contains { $0.dialysis }, "holder 6 is the dialysis patient")
                    let viewing = try #require(await bed.simulator.service.viewings.all().last)
                    #expect(viewing.assurance == .pin)
                    #expect(viewing.patientNumber == 6)
                    #expect(await simulator.authPINTriesLeft == 3)
                }
            }
        }

        @Test func visualCheckWithTheCard() async throws {
            try await withSimulatedCard({ $0.holder = 2 }) { _, reader in
                try await withOnshi { bed in
                    let final = try await fetch(reader, bed, pin: nil, consent: .lifeOrBodyException)
                    #expect(final.session != nil)
                    #expect(final.isComplete)
                    let viewing = try #require(await bed.simulator.service.viewings.all().last)
                    #expect(viewing.assurance == .visual)
                    #expect(viewing.consent == .lifeOrBodyException)
                }
            }
        }

        @Test func androidCredentialInPINMode() async throws {
            try await withSimulatedCard({
                $0.profile = .android
                $0.holder = 5
                $0.authPIN = "8642"
            }) { _, reader in
                try await withOnshi { bed in
                    let final = try await fetch(reader, bed, pin: "8642")
                    #expect(final.session != nil, "\(String(describing: final.authenticationFailure))")
                    #expect(try #require(await bed.simulator.service.viewings.all().last).patientNumber == 5)
                }
            }
        }

        @Test func iPhoneCredentialAfterApproval() async throws {
            try await withSimulatedCard({
                $0.profile = .iphone
                $0.holder = 7
                $0.iphoneApproval = .approve(after: .milliseconds(200))
            }) { _, reader in
                try await withOnshi { bed in
                    let final = try await fetch(reader, bed, pin: nil)
                    #expect(final.session != nil)
                    #expect(final.status(.medications) == "empty", "holder 7 is the healthy young adult")
                }
            }
        }

        @Test(arguments: [CertificateValidity.expired, .notYetValid])
        func aCardWhoseCertificateIsOutOfDateIsRefused(validity: CertificateValidity) async throws {
            try await withSimulatedCard({ $0.certificateValidity = validity }) { _, reader in
                try await withOnshi { bed in
                    let final = try await fetch(reader, bed, pin: nil)
                    #expect(final.authenticationFailure?.code == .certificateProblem)
                }
            }
        }
    }
}

extension ThroughPCSCD {
    @Suite("kyukyu fetch CLI")
    struct FetchCLI {
        func fetchArguments(_ bed: OnshiBed, _ extra: [String]) throws -> [String] {
            let files = try OnshiBed.terminalFiles()
            return [
                "fetch", "--onshi-url", "https://127.0.0.1:\(bed.port)", "--tls-dir",
                URL(fileURLWithPath: files.certificatePath).deletingLastPathComponent().path, "--device",
                OnshiBed.device,
                "--crew", "crew-CLI",
            ] + extra
        }

        @Test func cardToSummaryAsJSON() async throws {
            try await withSimulatedCard({ $0.holder = 4 }) { _, _ in
                try await withOnshi { bed in
                    let result = try await kyukyu(
                        try fetchArguments(bed, ["--consent", "verbal", "--json", "--deadline-ms", "4000"])
                    )
                    #expect(result.status == 0, "\(result.stderr)")
                    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                    #expect(object?["authenticated"] as? Bool == true)
                    let categories = object?["categories"] as? [String: [String: Any]]
                    #expect(categories?.count == MedicalCategory.allCases.count)
                    #expect(categories?["medications"]?["status"] as? String == "ok")
                    #expect(object?["cardMilliseconds"] is Double)
                }
            }
        }

        /// `--wait`: the command is started first and the card touches the reader afterwards, the way a crew uses
        /// it (and the way the gateway's clock runs from the card's touch). Without it, an empty reader is an error.
        @Test(.timeLimit(.minutes(1)))
        func theCardMayTouchTheReaderAfterTheCommandStarts() async throws {
            try await withOnshi { bed in
                let arguments = try fetchArguments(
                    bed,
                    ["--consent", "verbal", "--json", "--wait", "30", "--categories", "qualification"]
                )
                let fetch = Task { try await kyukyu(arguments) }
                let result = try await withSimulatedCard({ $0.holder = 4 }) { _, _ in try await fetch.value }
                #expect(result.status == 0, "\(result.stderr)")
                let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                #expect(object?["authenticated"] as? Bool == true)
                let cardMs = try #require(object?["cardMilliseconds"] as? Double)
                #expect(Duration.milliseconds(cardMs) < result.elapsed, "the card's time counts from its arrival")
            }
        }

        @Test func pinModeAndRefusedConsentThroughTheCLI() async throws {
            try await withSimulatedCard({ $0.holder = 1 }) { simulator, _ in
                try await withOnshi { bed in
                    let pin = try await kyukyu(
                        try fetchArguments(bed, ["--consent", "exception", "--pin-stdin"]),
                        stdin: "1234\n"
                    )
                    #expect(pin.status == 0, "\(pin.stderr)")
                    #expect(pin.stdout.contains("session open"))
                    #expect(try #require(await bed.simulator.service.viewings.all().last).assurance == .pin)

                    let refused = try await kyukyu(try fetchArguments(bed, ["--consent", "refused"]))
                    #expect(refused.status == 21)
                    #expect(refused.stderr.contains("refused consent"))

                    let wrong = try await kyukyu(
                        try fetchArguments(bed, ["--consent", "verbal", "--pin-stdin"]),
                        stdin: "0000\n"
                    )
                    #expect(wrong.status == 15)
                    #expect(await simulator.authPINTriesLeft == 2)
                }
            }
        }

        @Test func cardlessLookupThroughTheCLI() async throws {
            let holder = SyntheticHolder(number: 2)
            try await withOnshi { bed in
                let birth = String(
                    format: "%04d-%02d-%02d",
                    holder.birthDate.year,
                    holder.birthDate.month,
                    holder.birthDate.day
                )
                let result = try await kyukyu(
                    try fetchArguments(
                        bed,
                        [
                            "--consent", "life-or-body-exception", "--name", holder.familyName + " " + holder.givenName,
                            "--birth",
                            birth,
                            "--sex", holder.sex == .male ? "male" : "female", "--address", holder.address,
                            "--categories", "qualification,medications",
                        ]
                    )
                )
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout.contains("[medications]"))
            }
        }
    }
}
