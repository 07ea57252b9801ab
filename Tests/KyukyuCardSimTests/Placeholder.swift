import Testing
@Test func placeholderKyukyuCardSimTests() { #expect(Bool(true)) }
