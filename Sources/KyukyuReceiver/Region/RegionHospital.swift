public import Foundation
public import KyukyuDomain

/// A hospital a region's hub serves: one of its tenants (`region.hospitals`).
public struct RegionHospital: Sendable, Hashable, Codable {
    /// The hospital's medical institution code.
    public var code: HospitalCode
    /// Its name, for the boards and the ambulances' picker; nil for a hospital's own receiver.
    public var name: String?

    /// A tenant.
    public init(code: HospitalCode, name: String?) {
        self.code = code
        self.name = name
    }

    /// Reads the `region.hospitals` file: a JSON array of 1 to 500 `{code, name}` objects, codes unique; a problem in
    /// words otherwise.
    static func load(_ path: String) -> Result<[RegionHospital], SecretFileProblem> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(SecretFileProblem("\(path) does not exist or cannot be read"))
        }
        guard data.count <= 1 << 20,
            let entries = try? JSONSerialization.jsonObject(with: data) as? [Any]
        else { return .failure(SecretFileProblem("\(path) is not a JSON array (at most 1 MiB)")) }
        guard (1...500).contains(entries.count) else {
            return .failure(SecretFileProblem("\(path) must list 1 to 500 hospitals"))
        }
        var hospitals: [RegionHospital] = []
        var seen: Set<HospitalCode> = []
        for (index, entry) in entries.enumerated() {
            guard let object = entry as? [String: Any], Set(object.keys).isSubset(of: ["code", "name"]),
                let codeText = object["code"] as? String, let code = HospitalCode(rawValue: codeText),
                let name = object["name"] as? String,
                !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 100,
                !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                return .failure(
                    SecretFileProblem(
                        "entry \(index + 1) of \(path) needs exactly a 10-digit code (a string) and a name of 1 to 100 characters"
                    )
                )
            }
            guard seen.insert(code).inserted else {
                return .failure(SecretFileProblem("entry \(index + 1) of \(path) repeats the code \(code)"))
            }
            hospitals.append(RegionHospital(code: code, name: name))
        }
        return .success(hospitals)
    }
}
