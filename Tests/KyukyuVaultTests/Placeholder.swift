import Testing
@Test func placeholderKyukyuVaultTests() { #expect(Bool(true)) }
