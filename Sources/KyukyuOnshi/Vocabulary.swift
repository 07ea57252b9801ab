import KyukyuDomain

// The categories and consent bases are KyukyuDomain's; this file adds what only the onshi protocol knows.

extension MedicalCategory: OnshiXMLValue {
    /// How far back the マイナ救急 view reaches for this category (domain.md).
    public var lookBack: LookBack {
        switch self {
        case .qualification: .current
        case .visits, .diagnoses, .medications, .surgery, .treatment: .years(5)
        case .prescriptions: .days(100)
        case .checkups: .lastRecords(5)
        case .allergies: .allRecorded
        }
    }

    /// The element name of one record of this category in a `ResultList`.
    public var recordElementName: String {
        switch self {
        case .qualification: "Qualification"
        case .visits: "Visit"
        case .diagnoses: "Diagnosis"
        case .medications: "Medication"
        case .prescriptions: "Prescription"
        case .surgery: "Surgery"
        case .treatment: "Treatment"
        case .checkups: "Checkup"
        case .allergies: "Allergy"
        }
    }
}

/// How far back a category reaches.
public enum LookBack: Sendable, Hashable, CustomStringConvertible {
    /// Only what holds now.
    case current
    /// This many days back from today.
    case days(Int)
    /// This many years back from today.
    case years(Int)
    /// The last this-many records, however old.
    case lastRecords(Int)
    /// Everything recorded (no look-back limit).
    case allRecorded

    /// Whether a record dated `date` is inside the look-back period that ends on `today`.
    public func includes(_ date: OnshiDate, today: OnshiDate) -> Bool {
        switch self {
        case .current, .lastRecords, .allRecorded: true
        case .days(let n): date.daysSinceEpoch >= today.daysSinceEpoch - n && date <= today
        case .years(let n):
            date >= OnshiDate(year: today.year - n, month: today.month, day: min(today.day, 28)) && date <= today
        }
    }

    /// "current", "100 days", "5 years", "last 5", "all recorded".
    public var description: String {
        switch self {
        case .current: "current"
        case .days(let n): "\(n) days"
        case .years(let n): "\(n) years"
        case .lastRecords(let n): "last \(n)"
        case .allRecorded: "all recorded"
        }
    }
}

extension ConsentBasis: OnshiXMLValue {
    /// "code", as for every other coded value.
    public static var xmlKind: String { "code" }

    /// The onshi wire text: `verbal`, `exception` (for ``ConsentBasis/lifeOrBodyException``) or `refused`.
    public var xmlText: String {
        switch self {
        case .verbal: "verbal"
        case .lifeOrBodyException: "exception"
        case .refused: "refused"
        }
    }

    /// Parses the onshi wire text; only the three wire spellings are accepted.
    public init?(xmlText: String) {
        switch xmlText {
        case "verbal": self = .verbal
        case "exception": self = .lifeOrBodyException
        case "refused": self = .refused
        default: return nil
        }
    }
}

/// How the crew established that the card belongs to the patient.
public enum AssuranceLevel: String, Sendable, Codable, CaseIterable, OnshiXMLValue {
    /// The crew compared the patient with the card's photo (目視).
    case visual
    /// The patient entered the user-authentication PIN; the card signed the stub's nonce.
    case pin
}

/// Sex, coded as on the card's 券面入力補助 AP.
public enum OnshiSex: String, Sendable, Codable, CaseIterable, OnshiXMLValue {
    /// `1`.
    case male = "1"
    /// `2`.
    case female = "2"
    /// `9`: not applicable.
    case notApplicable = "9"
}

/// Result codes of ``ProcessingResult/code``. Four digits; `0000` is success.
///
/// Modelled on onshi's result codes, not copied: the first digit groups them (1 certificate, 2 PIN mode,
/// 3 consent, 4 lookup, 5 session, 6 request, 9 service).
public enum OnshiResultCode {
    /// Completed.
    public static let completed = "0000"
    /// Completed, and the category has no records in its look-back period.
    public static let noRecords = "0001"
    /// The user-authentication certificate has expired.
    public static let certificateExpired = "1001"
    /// The user-authentication certificate is not valid yet.
    public static let certificateNotYetValid = "1002"
    /// The user-authentication certificate has been revoked.
    public static let certificateRevoked = "1003"
    /// The user-authentication certificate is suspended (e.g. a lost phone).
    public static let certificateSuspended = "1004"
    /// The certificate does not chain to the JPKI user-authentication CA (or cannot be parsed).
    public static let certificateUntrusted = "1005"
    /// The certificate is trusted but belongs to no known holder.
    public static let certificateUnknownHolder = "1006"
    /// PIN mode: no nonce, an unknown or used nonce, or an expired one.
    public static let nonceInvalid = "2001"
    /// PIN mode: the signature over the nonce does not verify with the certificate's key.
    public static let signatureInvalid = "2002"
    /// The patient refused consent: nothing is returned.
    public static let consentRefused = "3001"
    /// Lookup: no patient matches.
    public static let patientNotFound = "4001"
    /// Lookup: more than one patient matches; narrow the query.
    public static let patientAmbiguous = "4002"
    /// The session token is unknown or has expired.
    public static let sessionInvalid = "5001"
    /// The session's consent does not cover this category.
    public static let consentNotCovering = "5002"
    /// The request is not a valid message.
    public static let requestInvalid = "6001"
    /// The service is in a maintenance window.
    public static let maintenance = "9001"
    /// Too many requests; retry after the `Retry-After` delay.
    public static let throttled = "9002"
    /// The service failed.
    public static let internalError = "9999"
}
