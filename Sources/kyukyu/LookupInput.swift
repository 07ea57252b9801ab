import ArgumentParser
import Foundation
import KyukyuEligibility
import KyukyuOnshi

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

    /// The query onshi is asked, checked field by field.
    func query() throws -> PatientQuery {
        let demographics = [name, birth, sex, address]
        let insurance = [insurerNumber, insuredSymbol, insuredNumber]
        let hasDemographics = demographics.contains { $0 != nil }
        let hasInsurance = insurance.contains { $0 != nil }
        if hasDemographics && hasInsurance {
            throw ValidationError("give either name, birth, sex and address, or the three insurance fields, not both")
        }
        if hasInsurance {
            guard let insurerNumber, let insuredSymbol, let insuredNumber else {
                throw ValidationError("a lookup by insurance needs insurerNumber, insuredSymbol and insuredNumber")
            }
            guard (6...8).contains(insurerNumber.count), insurerNumber.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw ValidationError("the insurer number must be 6 to 8 digits")
            }
            try Self.requireText(insuredSymbol, field: "insured symbol", maxLength: 40)
            try Self.requireText(insuredNumber, field: "insured number", maxLength: 40)
            return .insurance(insurerNumber: insurerNumber, symbol: insuredSymbol, number: insuredNumber)
        }
        guard let name, let birth, let sex, let address else {
            throw ValidationError("a card-less lookup needs all four: name, birth date, sex and address")
        }
        try Self.requireText(name, field: "name", maxLength: 100)
        try Self.requireText(address, field: "address", maxLength: 400)
        let birthDate = try Self.birthDate(birth)
        let code: OnshiSex
        switch sex.lowercased() {
        case "male", "m", "1": code = .male
        case "female", "f", "2": code = .female
        case "other", "9", "not-applicable": code = .notApplicable
        default: throw ValidationError("the sex must be male, female or other")
        }
        return .demographics(
            name: name.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "\u{3000}"),
            birthDate: birthDate,
            sex: code,
            address: address
        )
    }

    /// `YYYY-MM-DD` or `YYYYMMDD`, a real calendar date, not in the future.
    static func birthDate(_ text: String) throws -> OnshiDate {
        let digits = text.filter { $0 != "-" }
        guard digits.count == 8, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            text.count == 8 || (text.count == 10 && Array(text)[4] == "-" && Array(text)[7] == "-"),
            let year = Int(digits.prefix(4)), let month = Int(digits.dropFirst(4).prefix(2)),
            let day = Int(digits.suffix(2))
        else { throw ValidationError("the birth date must be YYYY-MM-DD") }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Asia/Tokyo")!
        let components = DateComponents(year: year, month: month, day: day)
        guard year >= 1880, let date = calendar.date(from: components),
            calendar.dateComponents([.year, .month, .day], from: date) == components
        else { throw ValidationError("the birth date is not a calendar date") }
        guard date <= Date() else { throw ValidationError("the birth date is in the future") }
        return OnshiDate(year: year, month: month, day: day)
    }

    static func requireText(_ value: String, field: String, maxLength: Int) throws {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ValidationError("the \(field) is empty") }
        guard value.count <= maxLength else {
            throw ValidationError("the \(field) is longer than \(maxLength) characters")
        }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ValidationError("the \(field) contains control characters")
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
