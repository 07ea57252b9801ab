import ArgumentParser
import Foundation
import KyukyuEligibility
import KyukyuOnshi
import KyukyuWorkflow

/// The fields of a card-less lookup, from flags or (preferably) from one JSON object on standard input, so that
/// patient data stays out of `/proc/*/cmdline` and shell history.
struct LookupInput: Decodable, Equatable {
    var name: String?
    var birth: String?
    var sex: String?
    var address: String?
    var insurerNumber: String?
    var insuredSymbol: String?
    var insuredNumber: String?

    init(
        name: String? = nil,
        birth: String? = nil,
        sex: String? = nil,
        address: String? = nil,
        insurerNumber: String? = nil,
        insuredSymbol: String? = nil,
        insuredNumber: String? = nil
    ) {
        self.name = name
        self.birth = birth
        self.sex = sex
        self.address = address
        self.insurerNumber = insurerNumber
        self.insuredSymbol = insuredSymbol
        self.insuredNumber = insuredNumber
    }

    /// The most standard input read for a lookup: the four fields are short.
    static let maxBytes = 16 * 1024

    /// Reads one JSON object from standard input (after a PIN line, if any, has been read).
    static func readStandardInput() throws -> LookupInput {
        let data = FileHandle.standardInput.readData(ofLength: maxBytes + 1)
        guard data.count <= maxBytes else {
            throw ValidationError("--lookup-stdin: the input is longer than \(maxBytes) bytes")
        }
        return try parse(data)
    }

    /// Parses the JSON object; every error names the field, never its value.
    static func parse(_ data: Data) throws -> LookupInput {
        guard !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            throw ValidationError("--lookup-stdin was given but standard input was empty")
        }
        do {
            return try JSONDecoder().decode(LookupInput.self, from: data)
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ValidationError("--lookup-stdin: the field \(field) must be a string")
        } catch {
            throw ValidationError(
                "--lookup-stdin: standard input is not one JSON object such as "
                    + #"{"name": "…", "birth": "YYYY-MM-DD", "sex": "male|female|other", "address": "…"}"#
            )
        }
    }

    /// The query onshi is asked, checked field by field (the workflow's rules, shared with the tablet's form).
    func query() throws -> PatientQuery {
        do {
            return try LookupFields(
                name: name,
                birthDate: birth,
                sex: sex,
                address: address,
                insurerNumber: insurerNumber,
                insuredSymbol: insuredSymbol,
                insuredNumber: insuredNumber
            ).query()
        } catch {
            throw ValidationError(error.reason)
        }
    }
}

/// Checks of flags that name things (crew, device) or places (URLs), shared by the commands.
enum FlagCheck {
    /// A short identifier: letters, digits, `.`, `_`, `-`; it becomes part of file names and audit entries.
    static func identifier(_ value: String, flag: String) throws {
        guard (1...64).contains(value.count),
            value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
            value != ".", value != ".."
        else {
            throw ValidationError("\(flag) must be 1 to 64 of A-Z a-z 0-9 . _ -")
        }
    }

    /// An `https://host[:port][/path]` URL: patient data never travels in cleartext.
    static func httpsURL(_ value: String, flag: String) throws {
        guard let components = URLComponents(string: value), components.scheme?.lowercased() == "https",
            let host = components.host, !host.isEmpty, components.user == nil, components.password == nil,
            components.query == nil, components.fragment == nil
        else {
            throw ValidationError("\(flag) must be an https:// URL with a host (no user, query or fragment)")
        }
    }
}
