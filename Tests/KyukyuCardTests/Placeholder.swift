import Testing
@Test func placeholderKyukyuCardTests() { #expect(Bool(true)) }
