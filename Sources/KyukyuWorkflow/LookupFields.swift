public import Foundation
public import KyukyuOnshi

/// The fields of a card-less lookup as the crew entered them, checked field by field before anything is sent:
/// the four fields (name, birth date, sex, address) or the insurance card's three. One set of rules for the
/// tablet's form and `kyukyu fetch --lookup-stdin`. Every error names the field, never its value.
public struct LookupFields: Sendable, Hashable {
    /// Full name, family and given separated by a space.
    public var name: String?
    /// Birth date, `YYYY-MM-DD` or `YYYYMMDD`.
    public var birthDate: String?
    /// `male`, `female` or `other`.
    public var sex: String?
    /// Address as on the card.
    public var address: String?
    /// Insurer number, 6 to 8 digits.
    public var insurerNumber: String?
    /// Insurance card symbol (記号); empty for cards that have none (後期高齢者医療).
    public var insuredSymbol: String?
    /// Insurance card number (番号).
    public var insuredNumber: String?

    /// Makes the fields.
    public init(
        name: String? = nil,
        birthDate: String? = nil,
        sex: String? = nil,
        address: String? = nil,
        insurerNumber: String? = nil,
        insuredSymbol: String? = nil,
        insuredNumber: String? = nil
    ) {
        self.name = name
        self.birthDate = birthDate
        self.sex = sex
        self.address = address
        self.insurerNumber = insurerNumber
        self.insuredSymbol = insuredSymbol
        self.insuredNumber = insuredNumber
    }

    /// The query onshi is asked, checked field by field; `today` bounds the birth date.
    public func query(today: Date = Date()) throws(WorkflowError) -> PatientQuery {
        let demographics = [name, birthDate, sex, address]
        let insurance = [insurerNumber, insuredSymbol, insuredNumber]
        let hasDemographics = demographics.contains { $0 != nil }
        let hasInsurance = insurance.contains { $0 != nil }
        if hasDemographics && hasInsurance {
            throw .invalidInput("give either name, birth, sex and address, or the three insurance fields, not both")
        }
        if hasInsurance {
            guard let insurerNumber, let insuredSymbol, let insuredNumber else {
                throw .invalidInput("a lookup by insurance needs insurerNumber, insuredSymbol and insuredNumber")
            }
            guard (6...8).contains(insurerNumber.count), insurerNumber.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw .invalidInput("the insurer number must be 6 to 8 digits")
            }
            // 後期高齢者 cards (insurer numbers 39…) have no 記号: an empty symbol is a real one.
            if !insuredSymbol.isEmpty {
                try Self.requireText(insuredSymbol, field: "insured symbol", maxLength: 40)
            }
            try Self.requireText(insuredNumber, field: "insured number", maxLength: 40)
            return .insurance(insurerNumber: insurerNumber, symbol: insuredSymbol, number: insuredNumber)
        }
        guard let name, let birthDate, let sex, let address else {
            throw .invalidInput("a card-less lookup needs all four: name, birth date, sex and address")
        }
        try Self.requireText(name, field: "name", maxLength: 100)
        try Self.requireText(address, field: "address", maxLength: 400)
        let birth = try Self.birthDate(birthDate, today: today)
        let code: OnshiSex
        switch sex.lowercased() {
        case "male", "m", "1": code = .male
        case "female", "f", "2": code = .female
        case "other", "9", "not-applicable": code = .notApplicable
        default: throw .invalidInput("the sex must be male, female or other")
        }
        return .demographics(
            name: name.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "\u{3000}"),
            birthDate: birth,
            sex: code,
            address: address
        )
    }

    /// `YYYY-MM-DD` or `YYYYMMDD`, a real calendar date, not after `today`.
    public static func birthDate(_ text: String, today: Date = Date()) throws(WorkflowError) -> OnshiDate {
        let digits = text.filter { $0 != "-" }
        guard digits.count == 8, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            text.count == 8 || (text.count == 10 && Array(text)[4] == "-" && Array(text)[7] == "-"),
            let year = Int(digits.prefix(4)), let month = Int(digits.dropFirst(4).prefix(2)),
            let day = Int(digits.suffix(2))
        else { throw .invalidInput("the birth date must be YYYY-MM-DD") }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Asia/Tokyo")!
        let components = DateComponents(year: year, month: month, day: day)
        guard year >= 1880, let date = calendar.date(from: components),
            calendar.dateComponents([.year, .month, .day], from: date) == components
        else { throw .invalidInput("the birth date is not a calendar date") }
        guard date <= today else { throw .invalidInput("the birth date is in the future") }
        return OnshiDate(year: year, month: month, day: day)
    }

    static func requireText(_ value: String, field: String, maxLength: Int) throws(WorkflowError) {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .invalidInput("the \(field) is empty") }
        guard value.count <= maxLength else {
            throw .invalidInput("the \(field) is longer than \(maxLength) characters")
        }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidInput("the \(field) contains control characters")
        }
    }
}
