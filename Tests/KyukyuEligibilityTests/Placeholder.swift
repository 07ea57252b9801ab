import Testing
@Test func placeholderKyukyuEligibilityTests() { #expect(Bool(true)) }
