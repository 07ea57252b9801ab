import Testing
@Test func placeholderKyukyuIntegrationTests() { #expect(Bool(true)) }
