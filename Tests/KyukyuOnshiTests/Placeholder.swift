import Testing
@Test func placeholderKyukyuOnshiTests() { #expect(Bool(true)) }
