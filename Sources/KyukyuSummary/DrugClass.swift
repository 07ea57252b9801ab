/// The drug classes a paramedic must see first, derived from the YJ code.
///
/// The first four digits of a YJ code (個別医薬品コード) are the drug's therapeutic category (薬効分類番号), the
/// medicine section of the Japan Standard Commodity Classification (日本標準商品分類 第87類 医薬品). The table
/// below uses the category numbers:
///
/// | class | categories | what they are |
/// |---|---|---|
/// | anticoagulant | 333x | 血液凝固阻止剤 (warfarin 3332, heparins, the DOACs 3339) |
/// | antiplatelet | 3399 | 他に分類されない血液・体液用薬: aspirin 100 mg, clopidogrel, cilostazol, prasugrel… |
/// | insulin | 2492 | すい臓ホルモン剤 (insulins) |
/// | other hypoglycaemic | 396x | 糖尿病用剤 (sulfonylureas, biguanides, DPP-4, SGLT2…) |
/// | antiepileptic | 113x | 抗てんかん剤 |
/// | corticosteroid | 245x except 2451 | 副腎ホルモン剤 (2451 is adrenaline, not a steroid) |
/// | opioid | 811x, 821x | あへんアルカロイド系麻薬, 合成麻薬 (812x, cocaine alkaloids, is not an opioid) |
///
/// Sources: the classification's three-digit categories (113 抗てんかん剤, 245 副腎ホルモン剤, 249 その他のホルモン剤,
/// 333 血液凝固阻止剤, 339 その他の血液・体液用薬, 396 糖尿病用剤, 811, 821) as the Japanese Wikipedia article
/// 「医薬品の薬効分類」 lists them. The four-digit numbers agree with the YJ codes the synthetic population uses for
/// these drugs (warfarin 3332…, apixaban 3339…, insulin glargine 2492…, metformin 3962…, aspirin 100 mg 3399…,
/// levetiracetam 1139…). The exclusion of 2451 (adrenaline) within 245 is from memory and still to be checked
/// against the official classification. Not covered: opioids outside the narcotic categories and antiplatelets
/// filed elsewhere; the drug's name is always shown beside its class.
public enum DrugClass: String, Sendable, Hashable, Codable, CaseIterable {
    /// Anticoagulants: bleeding risk, reversal, no neuraxial procedures.
    case anticoagulant
    /// Antiplatelets: bleeding risk.
    case antiplatelet
    /// Insulin: hypoglycaemia.
    case insulin
    /// Other glucose-lowering drugs: hypoglycaemia.
    case otherHypoglycaemic = "other-hypoglycaemic"
    /// Antiepileptics: a known seizure disorder.
    case antiepileptic
    /// Systemic corticosteroids: adrenal crisis, infection masked.
    case corticosteroid
    /// Opioids: respiratory depression, naloxone.
    case opioid

    /// The class of the drug with this YJ code, or `nil` when it is none of the red-flag classes.
    public init?(yjCode: String) {
        let digits = Array(yjCode.prefix(4))
        guard digits.count == 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let category = String(digits)
        let group = String(digits.prefix(3))
        switch (group, category) {
        case ("333", _): self = .anticoagulant
        case (_, "3399"): self = .antiplatelet
        case (_, "2492"): self = .insulin
        case ("396", _): self = .otherHypoglycaemic
        case ("113", _): self = .antiepileptic
        case ("245", "2451"): return nil
        case ("245", _): self = .corticosteroid
        case ("811", _), ("821", _): self = .opioid
        default: return nil
        }
    }
}
