import Foundation
import KyukyuDomain
import Testing

/// The raw spellings are stored (audit entries, record kinds) and sent (onshi category names, CLI
/// arguments); a change to any of them must be a deliberate, documented format change.
@Suite struct VocabularyTests {
    @Test func consentBasisSpellings() {
        #expect(ConsentBasis.allCases.map(\.rawValue) == ["verbal", "life-or-body-exception", "refused"])
        #expect(ConsentBasis(rawValue: "exception") == nil, "the onshi wire text is not the domain spelling")
    }

    @Test func tokenTypeSpellings() {
        #expect(
            TokenType.allCases.map(\.rawValue) == ["individual-number-card", "juki-card", "android", "iphone"]
        )
        #expect(TokenType.allCases.filter(\.isPhone) == [.android, .iphone])
    }

    @Test func medicalCategorySpellings() {
        #expect(
            MedicalCategory.allCases.map(\.rawValue) == [
                "qualification", "visits", "diagnoses", "medications", "prescriptions", "surgery", "treatment",
                "checkups", "allergies",
            ]
        )
    }

    /// What a JSON-encoded audit attribute set or fetch summary carries: the raw value, as a plain string.
    @Test func codableUsesTheRawSpelling() throws {
        struct Entry: Codable, Equatable {
            var basis: ConsentBasis
            var tokenType: TokenType
            var categories: [MedicalCategory]
        }
        let entry = Entry(basis: .lifeOrBodyException, tokenType: .jukiCard, categories: [.prescriptions, .allergies])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(entry), as: UTF8.self)
        #expect(
            json
                == #"{"basis":"life-or-body-exception","categories":["prescriptions","allergies"],"tokenType":"juki-card"}"#
        )
        #expect(try JSONDecoder().decode(Entry.self, from: Data(json.utf8)) == entry)
    }

    @Test(arguments: ConsentBasis.allCases)
    func consentBasisRoundTrips(_ basis: ConsentBasis) throws {
        let data = try JSONEncoder().encode(basis)
        #expect(try JSONDecoder().decode(ConsentBasis.self, from: data) == basis)
        #expect(basis.description == basis.rawValue)
    }

    @Test(arguments: TokenType.allCases)
    func tokenTypeRoundTrips(_ type: TokenType) throws {
        let data = try JSONEncoder().encode(type)
        #expect(try JSONDecoder().decode(TokenType.self, from: data) == type)
    }

    @Test(arguments: MedicalCategory.allCases)
    func medicalCategoryRoundTrips(_ category: MedicalCategory) throws {
        let data = try JSONEncoder().encode(category)
        #expect(try JSONDecoder().decode(MedicalCategory.self, from: data) == category)
    }

    @Test func oldSpellingsAreRejected() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ConsentBasis.self, from: Data(#""exception""#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(MedicalCategory.self, from: Data(#""e-prescriptions""#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(TokenType.self, from: Data(#""smartphone""#.utf8))
        }
    }
}

/// What a refusal may repeat of a request's unknown key.
@Suite struct FieldNameTests {
    @Test(arguments: ["receivedAt", "chief-complaint", "spo2", "a", "x_y", String(repeating: "k", count: 64)])
    func aFieldNameIsShown(_ key: String) {
        #expect(FieldName.isPlain(key))
        #expect(FieldName.shown(key) == key)
    }

    @Test(arguments: [
        "", "架空市", "カクウ", "架空太郎", "12345678", "2026-11-27", "1a", "name with space", "naïve", "a.b", "a\u{0}",
        String(repeating: "k", count: 65),
    ])
    func anythingElseIsNot(_ key: String) {
        #expect(!FieldName.isPlain(key))
        #expect(FieldName.shown(key) == FieldName.unnamed)
    }
}
