import Foundation
import KyukyuEligibilitySim
import KyukyuFHIR
import KyukyuTestbed
import Testing

/// The documents checked by another implementation: PyPI's fhir.resources 6.4.0 (FHIR R4 models, pydantic 1) and
/// the Bundle invariants in FHIRPath (fhirpathpy), by Tests/fhir/validate.py in the venv that
/// scripts/install-deps.sh makes (state/fhir-venv; `KYUKYU_FHIR_PYTHON` names another python).
@Suite("The pre-arrival document: independent check (fhir.resources, fhirpathpy)")
struct IndependentCheckTests {
    static let repository: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    static var python: String {
        if let python = ProcessInfo.processInfo.environment["KYUKYU_FHIR_PYTHON"], !python.isEmpty { return python }
        return repository.appendingPathComponent("state/fhir-venv/bin/python3").path
    }

    /// Writes every variant (archetype × vitals or none × all categories or some missing) to `folder`.
    static func writeDocuments(to folder: URL) throws -> Int {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var count = 0
        for (name, input) in Fixture.variants {
            try HandoffDocumentBuilder.build(input).write(to: folder.appendingPathComponent("\(name).json"))
            count += 1
        }
        var second = Fixture.input(.dialysis, version: 2)
        second.versionID = UUID(uuidString: "22222222-3333-4444-8555-666666666666")!
        try HandoffDocumentBuilder.build(second).write(to: folder.appendingPathComponent("dialysis-version-2.json"))
        return count + 1
    }

    @Test(
        "Every archetype × {vitals, none} × {all categories, some missing} passes fhir.resources R4 and the FHIRPath invariants",
        .timeLimit(.minutes(1))
    )
    func independentValidator() async throws {
        // KYUKYU_FHIR_OUT keeps the documents (make fhir-test writes them under state/ for other tools).
        let folder =
            ProcessInfo.processInfo.environment["KYUKYU_FHIR_OUT"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-fhir-\(UUID().uuidString)")
        defer {
            if ProcessInfo.processInfo.environment["KYUKYU_FHIR_OUT"] == nil {
                try? FileManager.default.removeItem(at: folder)
            }
        }
        let written = try Self.writeDocuments(to: folder)
        #expect(written == 7 * 2 * 2 + 1)
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            Issue.record(
                "\(Self.python) is missing: run scripts/install-deps.sh (it makes the venv with fhir.resources)"
            )
            return
        }
        let script = Self.repository.appendingPathComponent("Tests/fhir/validate.py").path
        let result = try await Commands.run(Self.python, [script, folder.path], timeout: .seconds(50))
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("\(written)/\(written) documents valid"), "\(result.stdout)")
    }

    @Test("The independent check is not a rubber stamp: it refuses a broken document", .timeLimit(.minutes(1)))
    func independentValidatorRefuses() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            Issue.record("\(Self.python) is missing: run scripts/install-deps.sh")
            return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kyukyu-fhir-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var tree = Fixture.tree(try HandoffDocumentBuilder.build(Fixture.input(.dialysis)))
        var entries = tree["entry"] as! [[String: Any]]
        entries.swapAt(0, 1)  // bdl-11
        entries[2]["fullUrl"] = entries[3]["fullUrl"]  // bdl-7
        let encounter = entries.firstIndex {
            ($0["resource"] as? [String: Any])?["resourceType"] as? String == "Encounter"
        }!
        var resource = entries[encounter]["resource"] as! [String: Any]
        resource["status"] = nil  // a required element (Encounter.status 1..1)
        entries[encounter]["resource"] = resource
        tree["entry"] = entries
        try Fixture.data(tree).write(to: folder.appendingPathComponent("broken.json"))
        let script = Self.repository.appendingPathComponent("Tests/fhir/validate.py").path
        let result = try await Commands.run(Self.python, [script, folder.path], timeout: .seconds(50))
        #expect(result.status == 1)
        #expect(result.stdout.contains("bdl-11 failed"))
        #expect(result.stdout.contains("bdl-7 failed"))
        #expect(result.stdout.contains("fhir.resources 4.0.1"))
        #expect(result.stdout.contains("status"))
    }
}
