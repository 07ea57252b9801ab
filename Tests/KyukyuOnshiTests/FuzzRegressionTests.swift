import Foundation
import KyukyuOnshi
import Testing

/// Inputs the fuzzing harnesses found (Tests/fuzz/regressions/fuzz-onshi-xml, docs/fuzzing.md).
@Suite struct FuzzRegressionTests {
    static func regression(_ name: String) throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return Array(try Data(contentsOf: root.appendingPathComponent("fuzz/regressions/fuzz-onshi-xml/\(name)")))
    }

    /// `<?x?>`: a processing instruction without data. FoundationXML's XMLParser hands libxml2's NULL data to
    /// strlen, and the process died of SIGSEGV (a fault an onshi answer could trigger). Refused before parsing now.
    @Test(.timeLimit(.minutes(1)))
    func processingInstructionWithoutData() throws {
        let bytes = try Self.regression("processing-instruction-without-data.xml")
        #expect(OnshiXML.rootElementName(of: bytes) == nil)
        #expect(throws: OnshiXMLError.forbiddenProcessingInstruction()) {
            try OnshiXML.decode(CategoryResponse.self, from: bytes, limits: .default)
        }
    }

    /// Processing instructions anywhere (with or without data, after the declaration, inside the root) are refused;
    /// the encoder's own XML declaration is not one of them.
    @Test(
        .timeLimit(.minutes(1)),
        arguments: [
            "<?x?><NonceRequest version=\"1\"/>",
            "<?xml version=\"1.0\"?><?xml-stylesheet?><NonceRequest version=\"1\"/>",
            "<NonceRequest version=\"1\"><?pi data?></NonceRequest>",
            "  <?xml-model?><NonceRequest version=\"1\"/>",
        ]
    )
    func processingInstructionsRefused(document: String) {
        #expect(throws: OnshiXMLError.forbiddenProcessingInstruction()) {
            try OnshiXML.decode(NonceRequest.self, from: Array(document.utf8), limits: .default)
        }
    }
}
