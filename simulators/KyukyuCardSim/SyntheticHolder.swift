/// A synthetic card holder, made deterministically from a number.
///
/// Holder N is the same person every time, on every machine: the card simulator writes it into the
/// 券面入力補助 AP and the signing certificate, and the eligibility stub (issue 3) uses the same number for its
/// patient. Names are realistic Japanese names; the address is in a made-up municipality (架空市 / テスト町) and
/// carries a `SYNTHETIC` marker, so no record can be mistaken for a real person.
public struct SyntheticHolder: Sendable, Hashable, Codable {
    /// Sex as the 券面入力補助 AP encodes it.
    public enum Sex: String, Sendable, Hashable, Codable {
        /// `1`.
        case male = "1"
        /// `2`.
        case female = "2"
        /// `9`: not applicable.
        case notApplicable = "9"

        /// The one-byte ASCII code of EF 0002.
        public var code: UInt8 { self.rawValue.utf8.first! }
    }

    /// A calendar date without time zone.
    public struct BirthDate: Sendable, Hashable, Codable, Comparable {
        /// Gregorian year.
        public var year: Int
        /// 1...12.
        public var month: Int
        /// 1...31.
        public var day: Int

        /// Makes a date.
        public init(year: Int, month: Int, day: Int) {
            self.year = year
            self.month = month
            self.day = day
        }

        /// `YYYYMMDD`, as in EF 0002.
        public var compact: String {
            pad(self.year, 4) + pad(self.month, 2) + pad(self.day, 2)
        }

        /// Orders by year, month, day.
        public static func < (lhs: Self, rhs: Self) -> Bool {
            (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
        }
    }

    /// The marker carried by every synthetic record.
    public static let syntheticMarker = "SYNTHETIC"

    /// The holder number (1 or more).
    public var number: Int
    /// Family name in kanji.
    public var familyName: String
    /// Given name in kanji.
    public var givenName: String
    /// Family name in katakana.
    public var familyNameKana: String
    /// Given name in katakana.
    public var givenNameKana: String
    /// Sex.
    public var sex: Sex
    /// Birth date.
    public var birthDate: BirthDate
    /// Postal code (`NNN-NNNN`), fictitious.
    public var postalCode: String
    /// The address as printed on the card (fictitious municipality, with the SYNTHETIC marker).
    public var address: String

    /// The name as the card stores it: family name, U+3000, given name.
    public var fullName: String { self.familyName + "\u{3000}" + self.givenName }
    /// The reading in katakana, family and given separated by U+3000.
    public var fullNameKana: String { self.familyNameKana + "\u{3000}" + self.givenNameKana }

    /// An opaque, stable identifier for the holder, used as the user-authentication certificate's CN (as on
    /// real cards, that certificate carries no personal data). 20 upper-case hex digits derived from the number.
    public var opaqueIdentifier: String {
        var rng = SplitMix64(seed: 0x4B59_554B_5955_0000 ^ UInt64(truncatingIfNeeded: self.number))
        var out = ""
        for _ in 0..<10 {
            out += hexString([UInt8(truncatingIfNeeded: rng.next())])
        }
        return out
    }

    /// Makes holder `number`. The same number always gives the same holder.
    public init(number: Int) {
        precondition(number >= 1, "holder numbers start at 1")
        var rng = SplitMix64(seed: 0x5359_4E54_4845_5449 &+ UInt64(truncatingIfNeeded: number) &* 0x9E37_79B9)
        self.number = number
        let family = Names.family[Int(rng.next() % UInt64(Names.family.count))]
        self.familyName = family.kanji
        self.familyNameKana = family.kana
        self.sex = rng.next() % 2 == 0 ? .male : .female
        let givenList = self.sex == .male ? Names.male : Names.female
        let given = givenList[Int(rng.next() % UInt64(givenList.count))]
        self.givenName = given.kanji
        self.givenNameKana = given.kana
        let year = 1930 + Int(rng.next() % 76)  // 1930...2005
        let month = 1 + Int(rng.next() % 12)
        let day = 1 + Int(rng.next() % UInt64(daysIn(month: month, year: year)))
        self.birthDate = BirthDate(year: year, month: month, day: day)
        let prefecture = Names.prefectures[Int(rng.next() % UInt64(Names.prefectures.count))]
        let town = Names.towns[Int(rng.next() % UInt64(Names.towns.count))]
        let chome = 1 + Int(rng.next() % 5)
        let banchi = 1 + Int(rng.next() % 30)
        let go = 1 + Int(rng.next() % 20)
        let room = rng.next() % 3 == 0 ? "\u{3000}テスト架空ハイツ\(1 + Int(rng.next() % 9))0\(1 + Int(rng.next() % 9))号室" : ""
        self.postalCode = "999-" + pad(Int(rng.next() % 10000), 4)
        self.address =
            "\(prefecture)架空市\(town)\(chome)丁目\(banchi)番\(go)号\(room)（\(Self.syntheticMarker)）"
    }
}

/// A small, fast, deterministic generator (SplitMix64); not for secrets.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func pad(_ value: Int, _ width: Int) -> String {
    let s = String(value)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

private func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

/// Name and place lists. Common names, so no combination points at anyone; the municipality is made up.
enum Names {
    struct Entry: Sendable {
        var kanji: String
        var kana: String
    }

    static let family: [Entry] = [
        .init(kanji: "佐藤", kana: "サトウ"), .init(kanji: "鈴木", kana: "スズキ"), .init(kanji: "高橋", kana: "タカハシ"),
        .init(kanji: "田中", kana: "タナカ"), .init(kanji: "伊藤", kana: "イトウ"), .init(kanji: "渡辺", kana: "ワタナベ"),
        .init(kanji: "山本", kana: "ヤマモト"), .init(kanji: "中村", kana: "ナカムラ"), .init(kanji: "小林", kana: "コバヤシ"),
        .init(kanji: "加藤", kana: "カトウ"), .init(kanji: "吉田", kana: "ヨシダ"), .init(kanji: "山田", kana: "ヤマダ"),
        .init(kanji: "佐々木", kana: "ササキ"), .init(kanji: "山口", kana: "ヤマグチ"), .init(kanji: "松本", kana: "マツモト"),
        .init(kanji: "井上", kana: "イノウエ"), .init(kanji: "木村", kana: "キムラ"), .init(kanji: "林", kana: "ハヤシ"),
        .init(kanji: "斎藤", kana: "サイトウ"), .init(kanji: "清水", kana: "シミズ"), .init(kanji: "山崎", kana: "ヤマザキ"),
        .init(kanji: "森", kana: "モリ"), .init(kanji: "池田", kana: "イケダ"), .init(kanji: "橋本", kana: "ハシモト"),
        .init(kanji: "阿部", kana: "アベ"), .init(kanji: "石川", kana: "イシカワ"), .init(kanji: "前田", kana: "マエダ"),
        .init(kanji: "藤田", kana: "フジタ"), .init(kanji: "小川", kana: "オガワ"), .init(kanji: "岡田", kana: "オカダ"),
        .init(kanji: "長谷川", kana: "ハセガワ"), .init(kanji: "村上", kana: "ムラカミ"),
    ]

    static let male: [Entry] = [
        .init(kanji: "大翔", kana: "ヒロト"), .init(kanji: "蓮", kana: "レン"), .init(kanji: "健太", kana: "ケンタ"),
        .init(kanji: "翔太", kana: "ショウタ"), .init(kanji: "拓也", kana: "タクヤ"), .init(kanji: "大輔", kana: "ダイスケ"),
        .init(kanji: "誠", kana: "マコト"), .init(kanji: "浩", kana: "ヒロシ"), .init(kanji: "茂", kana: "シゲル"),
        .init(kanji: "清", kana: "キヨシ"), .init(kanji: "勇", kana: "イサム"), .init(kanji: "和夫", kana: "カズオ"),
        .init(kanji: "隆", kana: "タカシ"), .init(kanji: "修", kana: "オサム"), .init(kanji: "直樹", kana: "ナオキ"),
        .init(kanji: "悠真", kana: "ユウマ"), .init(kanji: "湊", kana: "ミナト"), .init(kanji: "一郎", kana: "イチロウ"),
        .init(kanji: "正雄", kana: "マサオ"), .init(kanji: "健一", kana: "ケンイチ"),
    ]

    static let female: [Entry] = [
        .init(kanji: "陽葵", kana: "ヒマリ"), .init(kanji: "結衣", kana: "ユイ"), .init(kanji: "美咲", kana: "ミサキ"),
        .init(kanji: "さくら", kana: "サクラ"), .init(kanji: "陽子", kana: "ヨウコ"), .init(kanji: "恵子", kana: "ケイコ"),
        .init(kanji: "幸子", kana: "サチコ"), .init(kanji: "和子", kana: "カズコ"), .init(kanji: "洋子", kana: "ヨウコ"),
        .init(kanji: "久美子", kana: "クミコ"), .init(kanji: "由美", kana: "ユミ"), .init(kanji: "真由美", kana: "マユミ"),
        .init(kanji: "愛", kana: "アイ"), .init(kanji: "彩", kana: "アヤ"), .init(kanji: "花子", kana: "ハナコ"),
        .init(kanji: "凛", kana: "リン"), .init(kanji: "芽依", kana: "メイ"), .init(kanji: "千代", kana: "チヨ"),
        .init(kanji: "節子", kana: "セツコ"), .init(kanji: "明美", kana: "アケミ"),
    ]

    static let prefectures: [String] = [
        "北海道", "宮城県", "東京都", "神奈川県", "埼玉県", "千葉県", "愛知県", "大阪府", "京都府", "兵庫県", "広島県", "福岡県",
    ]

    static let towns: [String] = [
        "テスト町", "さくらテスト町", "みどり架空台", "ひかりテスト", "青葉架空町", "港テスト町", "若葉テスト台", "旭架空町",
    ]
}
