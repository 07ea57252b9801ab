import Testing
@Test func placeholderKyukyuEligibilitySimTests() { #expect(Bool(true)) }
