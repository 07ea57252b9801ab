import Crypto
import Foundation
import KyukyuCard
import KyukyuCardSim
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
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
                    let final = try await fetch(reader, bed, pin: nil, consent: .exception)
                    #expect(final.session != nil)
                    #expect(final.isComplete)
                    let viewing = try #require(await bed.simulator.service.viewings.all().last)
                    #expect(viewing.assurance == .visual)
                    #expect(viewing.consent == .exception)
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
