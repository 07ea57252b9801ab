import Foundation
import KyukyuCardSim
import Testing

/// Writes the seed corpora of the card harnesses (Tests/fuzz/corpus: fuzz-card-tlv, fuzz-card-certificate,
/// fuzz-vpcd) from the simulator's own file builders, test PKI and command builders, when `KYUKYU_FUZZ_SEEDS` names
/// the corpus folder (docs/fuzzing.md); skipped otherwise. Every holder is synthetic.
@Suite struct FuzzSeedTests {
    static let folder = ProcessInfo.processInfo.environment["KYUKYU_FUZZ_SEEDS"]

    func write(_ harness: String, _ seeds: [(String, [UInt8])]) throws {
        let folder = try #require(Self.folder) + "/" + harness
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, bytes) in seeds {
            try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name))
        }
    }

    @Test(.enabled(if: folder != nil), .timeLimit(.minutes(5)))
    func writeSeeds() throws {
        let holder = SyntheticHolder(number: 1)
        let credentials = Fixtures.credentials(1)
        try write(
            "fuzz-card-tlv",
            [
                ("attributes-holder-1", JPKICardFiles.attributesFile(for: holder)),
                ("attributes-holder-2", JPKICardFiles.attributesFile(for: SyntheticHolder(number: 2))),
                (
                    "attributes-long-address",
                    JPKICardFiles.attributesFile(
                        name: "テスト\u{3000}太郎",
                        address: String(repeating: "架空県テスト市", count: 12),
                        birthDate: "19700101",
                        sex: 0x39
                    )
                ),
                ("token-info-card", JPKICardFiles.tokenInfo(label: "JPKIAPICCTOKEN2")),
                ("token-info-iphone", JPKICardFiles.tokenInfo(label: "JPKIAPIOSTOKEN")),
                ("response-63c2", [0x63, 0xC2]),
                ("response-data-9000", [0x01, 0x02, 0x03, 0x90, 0x00]),
            ]
        )
        try write(
            "fuzz-card-certificate",
            [
                ("auth-holder-1.der", credentials.userAuthCertificateDER),
                ("auth-ca.der", credentials.authCACertificateDER),
                ("auth-holder-1-expired.der", Fixtures.credentials(1, .expired).userAuthCertificateDER),
            ]
        )
        // vpcd: two seed bytes (how the stream is cut), then frames as pcscd sends them.
        func frames(_ payloads: [[UInt8]]) -> [UInt8] { [0x12, 0x34] + payloads.flatMap { VPCDFraming.frame($0) } }
        try write(
            "fuzz-vpcd",
            [
                ("power-atr", frames([[0x01], [0x04], [0x02], [0x00]])),
                (
                    "read-certificate",
                    frames([
                        [0x04], Commands.selectAP(JPKICardFiles.jpkiAID), Commands.selectEF(0x000A),
                        Commands.readBinary(offset: 0, le: 4), Commands.readBinary(offset: 4, le: 0),
                    ])
                ),
                (
                    "verify-and-sign",
                    frames([
                        Commands.selectAP(JPKICardFiles.jpkiAID), Commands.selectEF(0x0018), Commands.verify(""),
                        Commands.verify("1234"), Commands.selectEF(0x0017),
                        Commands.sign(Commands.sha256DigestInfoPrefix + Array(repeating: 0xAB, count: 32)),
                    ])
                ),
                (
                    "attributes",
                    frames([
                        Commands.selectAP(JPKICardFiles.attributesAID), Commands.selectEF(0x0011),
                        Commands.verify("5678"), Commands.selectEF(0x0002), Commands.readBinary(offset: 0, le: 5),
                        Commands.readBinary(offset: 5, le: 0),
                    ])
                ),
                (
                    "wrong-pin-twice",
                    frames([
                        Commands.selectAP(JPKICardFiles.jpkiAID), Commands.selectEF(0x0018),
                        Commands.verify("0000"), Commands.verify("0001"), [0x00],
                    ])
                ),
            ]
        )
    }
}
