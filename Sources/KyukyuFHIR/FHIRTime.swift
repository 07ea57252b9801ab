import Foundation
import KyukyuOnshi

/// FHIR's `instant`/`dateTime`/`date` texts, written and read without a formatter (deterministic, UTC, whole
/// milliseconds).
enum FHIRTime {
    /// `YYYY-MM-DDThh:mm:ssZ`, or `…ss.sssZ` when the milliseconds are not zero.
    static func instant(milliseconds: Int64) -> String {
        let ms = Int(milliseconds)
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let fraction = ms - seconds * 1000
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let (y, m, d) = civil(days)
        var text = "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rest / 3600, 2)):\(pad(rest / 60 % 60, 2)):"
        text += pad(rest % 60, 2)
        if fraction != 0 { text += "." + pad(fraction, 3) }
        return text + "Z"
    }

    /// The instant of `date`, to the millisecond.
    static func instant(_ date: Date) -> String {
        instant(milliseconds: milliseconds(date))
    }

    /// `date` in whole milliseconds since 1970 (rounded to the nearest).
    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    /// `YYYY-MM-DD`.
    static func date(_ day: OnshiDate) -> String {
        "\(pad(day.year, 4))-\(pad(day.month, 2))-\(pad(day.day, 2))"
    }

    /// Reads an instant with a zone (`Z` or `±hh:mm`) and optional fraction; milliseconds since 1970, or nil.
    static func parseInstant(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count >= 20, u[4] == 0x2D, u[7] == 0x2D, u[10] == 0x54, u[13] == 0x3A, u[16] == 0x3A,
            let y = number(u, 0, 4), let mo = number(u, 5, 2), let d = number(u, 8, 2), let h = number(u, 11, 2),
            let mi = number(u, 14, 2), let s = number(u, 17, 2), (1...12).contains(mo), d >= 1,
            d <= daysIn(month: mo, year: y), h < 24, mi < 60, s < 60
        else { return nil }
        var i = 19
        var fraction = 0
        if i < u.count, u[i] == 0x2E {
            i += 1
            var digits = 0
            while i < u.count, (0x30...0x39).contains(u[i]) {
                if digits < 3 { fraction = fraction * 10 + Int(u[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 { for _ in digits..<3 { fraction *= 10 } }
        }
        var offset = 0
        if i == u.count - 1, u[i] == 0x5A {
            offset = 0
        } else if i == u.count - 6, u[i] == 0x2B || u[i] == 0x2D, u[i + 3] == 0x3A,
            let oh = number(u, i + 1, 2), let om = number(u, i + 4, 2), oh <= 14, om < 60
        {
            offset = (oh * 60 + om) * 60 * (u[i] == 0x2D ? -1 : 1)
        } else {
            return nil
        }
        let seconds = days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
        return Int64(seconds) * 1000 + Int64(fraction)
    }

    /// A FHIR `dateTime` (a date, or a date and time with a zone).
    static func isDateTime(_ text: String) -> Bool {
        isDate(text) || parseInstant(text) != nil
    }

    /// A FHIR `date` `YYYY-MM-DD` (the partial forms are not used by this document).
    static func isDate(_ text: String) -> Bool {
        let u = Array(text.utf8)
        guard u.count == 10, u[4] == 0x2D, u[7] == 0x2D, let y = number(u, 0, 4), let m = number(u, 5, 2),
            let d = number(u, 8, 2), (1...12).contains(m), d >= 1
        else { return false }
        return d <= daysIn(month: m, year: y)
    }

    private static func number(_ u: [UInt8], _ start: Int, _ count: Int) -> Int? {
        guard start + count <= u.count else { return nil }
        var value = 0
        for c in u[start..<(start + count)] {
            guard (0x30...0x39).contains(c) else { return nil }
            value = value * 10 + Int(c - 0x30)
        }
        return value
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // The proleptic Gregorian calendar's day numbers (the well-known civil-from-days arithmetic).
    private static func days(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468
    }

    private static func civil(_ days: Int) -> (Int, Int, Int) {
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
}
