import Foundation

extension String: OnshiXMLValue {
    /// "text".
    public static var xmlKind: String { "text" }
    /// The string itself.
    public var xmlText: String { self }
    /// Any text is a string.
    public init?(xmlText: String) { self = xmlText }
}

extension Int: OnshiXMLValue {
    /// "integer".
    public static var xmlKind: String { "integer" }
    /// Decimal digits.
    public var xmlText: String { String(self) }
    /// Decimal digits with an optional leading minus, nothing else.
    public init?(xmlText: String) {
        guard !xmlText.isEmpty, xmlText.utf8.count <= 19 else { return nil }
        guard let value = Int(xmlText, radix: 10) else { return nil }
        if xmlText.utf8.first == UInt8(ascii: "+") { return nil }
        self = value
    }
}

extension Double: OnshiXMLValue {
    /// "decimal number".
    public static var xmlKind: String { "decimal number" }
    /// The shortest text that reads back as the same value.
    public var xmlText: String { String(describing: self) }
    /// A finite decimal number (no `nan`, `inf`, hex floats).
    public init?(xmlText: String) {
        guard !xmlText.isEmpty, xmlText.utf8.count <= 32,
            xmlText.utf8.allSatisfy({
                ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x65 || $0 == 0x2B
            }),
            let value = Double(xmlText), value.isFinite
        else { return nil }
        self = value
    }
}

extension Bool: OnshiXMLValue {
    /// "boolean (true/false)".
    public static var xmlKind: String { "boolean (true/false)" }
    /// `true` or `false`.
    public var xmlText: String { self ? "true" : "false" }
    /// `true` or `false` only.
    public init?(xmlText: String) {
        switch xmlText {
        case "true": self = true
        case "false": self = false
        default: return nil
        }
    }
}

extension Date: OnshiXMLValue {
    /// "timestamp YYYY-MM-DDThh:mm:ssZ".
    public static var xmlKind: String { "timestamp YYYY-MM-DDThh:mm:ssZ" }

    /// UTC, whole seconds: `2026-11-23T05:30:00Z` (sub-second parts are dropped).
    public var xmlText: String {
        let seconds = Int(self.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let (y, m, d) = civilFromDays(days)
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(rest / 3600, 2) + ":"
            + pad(rest / 60 % 60, 2) + ":" + pad(rest % 60, 2) + "Z"
    }

    /// Exactly `YYYY-MM-DDThh:mm:ssZ`, UTC.
    public init?(xmlText: String) {
        let u = Array(xmlText.utf8)
        guard u.count == 20, u[4] == 0x2D, u[7] == 0x2D, u[10] == 0x54, u[13] == 0x3A, u[16] == 0x3A, u[19] == 0x5A,
            let y = digits(u, 0, 4), let mo = digits(u, 5, 2), let d = digits(u, 8, 2),
            let h = digits(u, 11, 2), let mi = digits(u, 14, 2), let s = digits(u, 17, 2),
            (1...12).contains(mo), d >= 1, d <= daysIn(month: mo, year: y), h < 24, mi < 60, s < 60
        else { return nil }
        let days = daysFromCivil(y, mo, d)
        self = Date(timeIntervalSince1970: TimeInterval(days * 86400 + h * 3600 + mi * 60 + s))
    }
}

/// A calendar date without time or zone, written `YYYYMMDD` as onshi does.
public struct OnshiDate: Sendable, Hashable, Codable, Comparable, OnshiXMLValue, CustomStringConvertible {
    /// Gregorian year (1000...9999).
    public var year: Int
    /// 1...12.
    public var month: Int
    /// 1...31.
    public var day: Int

    /// Makes a date; the caller keeps it valid (the decoder checks).
    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The day of `date` in UTC+9 (Japan), the zone every onshi calendar date is in.
    public init(japanDayOf date: Date) {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down)) + 9 * 3600
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        (self.year, self.month, self.day) = civilFromDays(days)
    }

    /// Days since 1970-01-01.
    public var daysSinceEpoch: Int { daysFromCivil(self.year, self.month, self.day) }

    /// The date `days` days later (earlier when negative).
    public func adding(days: Int) -> OnshiDate {
        let (y, m, d) = civilFromDays(self.daysSinceEpoch + days)
        return OnshiDate(year: y, month: m, day: d)
    }

    /// "date YYYYMMDD".
    public static var xmlKind: String { "date YYYYMMDD" }
    /// `YYYYMMDD`.
    public var xmlText: String { pad(self.year, 4) + pad(self.month, 2) + pad(self.day, 2) }
    /// `YYYYMMDD`, a real calendar day.
    public init?(xmlText: String) {
        let u = Array(xmlText.utf8)
        guard u.count == 8, let y = digits(u, 0, 4), let m = digits(u, 4, 2), let d = digits(u, 6, 2),
            y >= 1000, (1...12).contains(m), d >= 1, d <= daysIn(month: m, year: y)
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// `YYYYMMDD`.
    public var description: String { self.xmlText }

    /// Orders by year, month, day.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }
}

extension OnshiXMLValue where Self: RawRepresentable, Self.RawValue == String {
    /// "code".
    public static var xmlKind: String { "code" }
    /// The raw value.
    public var xmlText: String { self.rawValue }
    /// One of the defined raw values.
    public init?(xmlText: String) { self.init(rawValue: xmlText) }
}

func pad(_ value: Int, _ width: Int) -> String {
    let s = String(value)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

private func digits(_ u: [UInt8], _ start: Int, _ count: Int) -> Int? {
    var value = 0
    for i in start..<(start + count) {
        let c = u[i]
        guard c >= 0x30, c <= 0x39 else { return nil }
        value = value * 10 + Int(c - 0x30)
    }
    return value
}

func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

/// Howard Hinnant's days_from_civil.
func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146097 + doe - 719468
}

/// Howard Hinnant's civil_from_days.
func civilFromDays(_ days: Int) -> (Int, Int, Int) {
    let z = days + 719468
    let era = (z >= 0 ? z : z - 146096) / 146097
    let doe = z - era * 146097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
}
