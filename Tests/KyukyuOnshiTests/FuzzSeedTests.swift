import Foundation
import KyukyuDomain
import KyukyuOnshi
import Testing

/// Writes the onshi harness's seed corpus (Tests/fuzz/corpus/fuzz-onshi-xml) from the encoder and this target's
/// synthetic fixtures, when `KYUKYU_FUZZ_SEEDS` names the corpus folder (docs/fuzzing.md); skipped otherwise.
@Suite struct FuzzSeedTests {
    static let folder = ProcessInfo.processInfo.environment["KYUKYU_FUZZ_SEEDS"]

    @Test(.enabled(if: folder != nil), .timeLimit(.minutes(1)))
    func writeSeeds() throws {
        let folder = try #require(Self.folder) + "/fuzz-onshi-xml"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var seeds: [(String, [UInt8])] = [
            ("nonce-request", OnshiXML.encode(NonceRequest(header: Fixtures.header, crewID: "crew-042"))),
            (
                "nonce-response",
                OnshiXML.encode(
                    NonceResponse(
                        header: Fixtures.header,
                        result: .completed,
                        nonceID: "n-1",
                        nonce: Array(0..<32),
                        expiresAt: Fixtures.now.addingTimeInterval(60)
                    )
                )
            ),
            (
                "authentication-request",
                OnshiXML.encode(
                    AuthenticationRequest(
                        header: Fixtures.header,
                        assurance: .pin,
                        certificateDER: Array(repeating: 0x30, count: 40),
                        crewID: "crew-042",
                        consent: .verbal,
                        nonceID: "n-1",
                        signature: Array(repeating: 7, count: 32)
                    )
                )
            ),
            (
                "lookup-demographics",
                OnshiXML.encode(
                    LookupRequest(
                        header: Fixtures.header,
                        query: .demographics(
                            name: "佐藤 花子",
                            birthDate: OnshiDate(year: 1950, month: 2, day: 28),
                            sex: .female,
                            address: "東京都架空市テスト町1丁目2番3号"
                        ),
                        crewID: "crew-042",
                        consent: .lifeOrBodyException
                    )
                )
            ),
            (
                "lookup-insurance",
                OnshiXML.encode(
                    LookupRequest(
                        header: Fixtures.header,
                        query: .insurance(insurerNumber: "06139999", symbol: "101", number: "2345"),
                        crewID: "crew-042",
                        consent: .verbal
                    )
                )
            ),
            (
                "session-response",
                OnshiXML.encode(
                    SessionResponse(
                        header: Fixtures.header,
                        result: .completed,
                        sessionToken: "tok",
                        sessionExpiresAt: Fixtures.now.addingTimeInterval(900),
                        qualificationValidity: 1,
                        consent: ConsentFlags(
                            basis: .verbal,
                            medication: true,
                            diagnosis: true,
                            surgery: true,
                            checkup: false,
                            allergy: true,
                            availableUntil: Fixtures.now.addingTimeInterval(86400)
                        )
                    )
                )
            ),
            (
                "session-refused",
                OnshiXML.encode(
                    SessionResponse(header: Fixtures.errorHeader, result: .failed(OnshiResultCode.consentRefused))
                )
            ),
        ]
        for records in Fixtures.allRecords {
            seeds.append(("category-\(records.category.rawValue)", OnshiXML.encode(Fixtures.categoryResponse(records))))
        }
        for (name, bytes) in seeds {
            #expect(OnshiXML.rootElementName(of: bytes) != nil)
            try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name + ".xml"))
        }
    }
}
