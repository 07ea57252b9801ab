import Foundation
import HTTPTypes
import KyukyuDomain
import Testing

@_spi(Fuzzing) @testable import KyukyuGateway

/// Inputs the fuzzing harnesses found (Tests/fuzz/regressions, docs/fuzzing.md), each fed to what failed.
@Suite struct GatewayFuzzRegressionTests {
    static func regression(_ name: String) throws -> Data {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return try Data(contentsOf: root.appendingPathComponent("fuzz/regressions/fuzz-gateway-json/\(name)"))
    }

    /// `{"2溬都枬0":"2溬都枬0"}` to the dispatch route (fuzz-gateway-json, the first byte 3): the refusal named the
    /// unknown key, and with it a value of the body, since a key is the client's text too. A key that does not read
    /// as a field name is no longer repeated.
    @Test(.timeLimit(.minutes(1)))
    func anUnknownKeyInKanjiIsNotRepeated() throws {
        let input = try Self.regression("unknown-key-in-kanji")
        let route = RequestBodyDecoding.Route.allCases[Int(input[0]) % RequestBodyDecoding.Route.allCases.count]
        #expect(route == .dispatch)
        let problem = #expect(throws: Problem.self) {
            try RequestBodyDecoding.decode(input.dropFirst(), route: route, now: Date())
        }
        let body = try #require(try JSONSerialization.jsonObject(with: input.dropFirst()) as? [String: String])
        let key = try #require(body.keys.first)
        #expect(key.unicodeScalars.contains { !$0.isASCII })
        let texts = [problem?.detail ?? ""] + (problem?.invalidParams.map { $0.name + $0.reason } ?? [])
        #expect(problem?.status.code == 422)
        #expect(!texts.contains { $0.contains(key) })
        #expect(problem?.invalidParams.map(\.name) == [FieldName.unnamed])
        // Every route says the same of it.
        for route in RequestBodyDecoding.Route.allCases {
            let refused = #expect(throws: Problem.self) {
                try RequestBodyDecoding.decode(input.dropFirst(), route: route, now: Date())
            }
            #expect(refused?.detail.contains(key) == false, "\(route)")
        }
    }

    /// A key that reads as a field name is still named, so that a client's typo is found at once.
    @Test(.timeLimit(.minutes(1)))
    func aMistypedFieldIsNamed() throws {
        let problem = #expect(throws: Problem.self) {
            try RequestBodyDecoding.decode(
                Data(#"{"recievedAt":"2026-11-27T03:12:00Z"}"#.utf8),
                route: .dispatch,
                now: Date()
            )
        }
        #expect(problem?.invalidParams.map(\.name) == ["recievedAt"])
    }
}
