/// The categories of medical facts about a patient, each fetched from onshi with its own request and
/// stored in the vault as its own record kind.
///
/// The raw value is the one spelling used everywhere: the onshi `Category` element and URL path, the
/// command line, the vault's record kinds and the audit trail's `category` attribute.
public enum MedicalCategory: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Insurer, symbol/number, validity, and the patient's name, birth date, sex and address
    /// (`qualification`).
    case qualification
    /// Visits: institutions and dates (`visits`).
    case visits
    /// Diagnoses and past history, ICD-10 and the standard disease name (`diagnoses`).
    case diagnoses
    /// Dispensed drugs: YJ code, name, dose, days (`medications`).
    case medications
    /// Electronic prescriptions (`prescriptions`).
    case prescriptions
    /// Operations (`surgery`).
    case surgery
    /// Treatment: procedures, including dialysis (`treatment`).
    case treatment
    /// Specific health checkups, JLAC10 items (`checkups`).
    case checkups
    /// Allergies, drug contraindications, infections (`allergies`).
    case allergies

    /// The raw value.
    public var description: String { self.rawValue }
}
