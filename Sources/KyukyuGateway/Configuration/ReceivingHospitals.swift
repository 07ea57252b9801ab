import Foundation
public import KyukyuDomain
public import KyukyuWorkflow

/// The receiving hospitals of the `handoff.hospitals` file (`GET /api/v1/hospitals`); the outbox sends the
/// document to each one's ``ReceivingHospital/url``.
extension ReceivingHospital {
    /// The list used when `handoff.hospitals` is not set: one fictitious hospital, whose receiver `make run`
    /// starts on loopback.
    public static let demo: [ReceivingHospital] = [
        ReceivingHospital(
            code: HospitalCode(rawValue: "9999999999")!,
            name: "テスト救命救急センター (架空)",
            nameKana: "テストキュウメイキュウキュウセンター",
            url: "https://127.0.0.1:20640"
        )
    ]

    /// What is wrong with this entry, in words, or `nil` when it is valid.
    func problem() -> String? {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, self.name.count <= 100,
            !self.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return "a name of 1 to 100 characters without control characters" }
        if let nameKana {
            guard !nameKana.isEmpty, nameKana.count <= 100,
                nameKana.unicodeScalars.allSatisfy({
                    (0x30A0...0x30FF).contains($0.value) || $0 == " " || $0 == "\u{3000}"
                })
            else { return "a nameKana of 1 to 100 katakana and spaces" }
        }
        guard url.utf8.count <= 2048, let components = URLComponents(string: url),
            components.scheme?.lowercased() == "https", let host = components.host, !host.isEmpty,
            components.user == nil, components.password == nil, components.query == nil, components.fragment == nil
        else { return "a url that is https, with a host and no user, query or fragment" }
        return nil
    }
}

extension GatewayConfiguration {
    /// The receiving hospitals: the `handoff.hospitals` file's entries, or ``ReceivingHospital/demo`` when the key is
    /// not set. Blocking file work; call once at start-up. Throws when the file cannot be read, is not a JSON array
    /// of 1 to 200 valid entries, or repeats a code.
    public func hospitals() throws(GatewayConfigurationError) -> [ReceivingHospital] {
        let key = GatewayConfigurationKey.handoffHospitals
        guard let path = handoff.hospitalsFile else { return ReceivingHospital.demo }
        let source = self.source(of: key.name) ?? .embeddedDefault
        func invalid(_ reason: String) -> GatewayConfigurationError {
            .invalidValue(key: key.name, source: source, reason: "\(path): \(reason)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw invalid("the file does not exist or cannot be read")
        }
        guard data.count <= 1 << 20 else { throw invalid("the file is larger than 1 MiB") }
        let list: [ReceivingHospital]
        do {
            let keys: Set<String> = ["code", "name", "nameKana", "url"]
            if let entries = try JSONSerialization.jsonObject(with: data) as? [Any] {
                for case (let index, let entry as [String: Any]) in entries.enumerated() {
                    if let unknown = entry.keys.sorted().first(where: { !keys.contains($0) }) {
                        throw invalid("entry \(index + 1) has an unknown field \"\(unknown)\"")
                    }
                }
            }
            list = try JSONDecoder().decode([ReceivingHospital].self, from: data)
        } catch let error as GatewayConfigurationError {
            throw error
        } catch {
            throw invalid(
                "not a JSON array of {code, name, nameKana?, url} objects with 10-digit codes as strings"
            )
        }
        guard (1...200).contains(list.count) else { throw invalid("the list must have 1 to 200 hospitals") }
        var seen: Set<HospitalCode> = []
        for (index, hospital) in list.enumerated() {
            if let problem = hospital.problem() { throw invalid("entry \(index + 1) needs \(problem)") }
            guard seen.insert(hospital.code).inserted else {
                throw invalid("entry \(index + 1) repeats the code \(hospital.code)")
            }
        }
        return list
    }
}
