import KyukyuOnshi
import KyukyuWorkflow
import Testing

@Suite("Card-less lookup fields")
struct LookupFieldsTests {
    @Test func anInsuranceCardWithoutASymbolIsLookedUp() throws {
        // 後期高齢者医療 cards (insurer 39…) carry a number but no 記号.
        let query = try LookupFields(insurerNumber: "39139982", insuredSymbol: "", insuredNumber: "K100006").query()
        #expect(query == .insurance(insurerNumber: "39139982", symbol: "", number: "K100006"))
    }

    @Test func aBlankSymbolOrNumberIsStillRefused() {
        #expect(throws: WorkflowError.self) {
            try LookupFields(insurerNumber: "06123456", insuredSymbol: "  ", insuredNumber: "1").query()
        }
        #expect(throws: WorkflowError.self) {
            try LookupFields(insurerNumber: "06123456", insuredSymbol: "A", insuredNumber: "").query()
        }
    }
}
