import Foundation
import KyukyuDomain
import KyukyuEligibility
import KyukyuEligibilitySim
import KyukyuOnshi
import Testing

/// One fetch's memory budget, through the real transport: answers are reserved as they stream in and released
/// once decoded, and an answer the budget cannot hold fails alone, as too large, without being read.
@Suite("Fetch memory budget over TLS", .serialized, .timeLimit(.minutes(1)))
struct FetchMemoryOverTLS {
    /// The medications answer, padded to 300 kB by the stub.
    static let padded = FaultConfiguration(
        endpoints: ["medications": FaultSpec(failures: [FailureSpec(kind: .oversized, sizeBytes: 300_000)])]
    )

    @Test func anAnswerTheBudgetCannotHoldFailsAloneAndNothingStaysReserved() async throws {
        try await withOnshi(faults: Self.padded) { bed in
            let session = try await bed.client.authenticate(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 3)),
                crewID: "crew-M1",
                consent: .verbal,
                timeout: .seconds(5)
            )
            // Other categories of the same fetch already hold 900 kB of a 1 MB budget.
            let account = FetchMemoryAccount(budget: FetchMemoryBudget(maxHeldBytes: 1_000_000))
            #expect(account.reserve(900_000))
            await #expect {
                _ = try await bed.client.category(
                    .medications,
                    session: session,
                    timeout: .seconds(5),
                    account: account
                )
            } throws: { error in
                let error = try #require(error as? EligibilityError)
                return error.code == .responseTooLarge && error.reason.contains("memory budget")
            }
            #expect(account.held == 900_000, "the refused answer gave back what it had reserved")

            // Once they are decoded and released, the same answer fits, and is released in turn.
            account.release(900_000)
            let response = try await bed.client.category(
                .medications,
                session: session,
                timeout: .seconds(5),
                account: account
            )
            #expect(response.category == .medications)
            #expect(account.held == 0)
            #expect(account.peak >= 300_000, "the answer was held while it was decoded")
        }
    }

    @Test func aFetchWhoseAnswersExceedTheBudgetShowsTheOthers() async throws {
        // A 250 kB budget: the padded medications answer (300 kB) cannot fit, the rest of holder 3's can.
        var configuration = EligibilityClientConfiguration(hedgeAfter: nil)
        configuration.memoryBudget = FetchMemoryBudget(maxHeldBytes: 250_000)
        try await withOnshi(faults: Self.padded, configuration: configuration) { bed in
            let final = await bed.client.fetch(
                .visualCheck(certificateDER: try OnshiBed.certificate(holder: 3)),
                crewID: "crew-M2",
                consent: .verbal,
                deadlines: FetchDeadlines(overall: .seconds(5))
            ).completion()
            #expect(final.failureCode(.medications) == .responseTooLarge)
            #expect(final.status(.qualification) == "ok")
            #expect(final.status(.visits) == "ok")
        }
    }
}
