import Foundation
import KyukyuDomain
import KyukyuOnshi
import Testing

@Suite struct RoundTripTests {
    func roundTrip<T: OnshiMessage>(_ message: T) throws {
        let bytes = OnshiXML.encode(message)
        let back = try OnshiXML.decode(T.self, from: bytes)
        #expect(back == message)
        #expect(OnshiXML.rootElementName(of: bytes) == T.rootElementName)
    }

    @Test func nonceMessages() throws {
        try roundTrip(NonceRequest(header: Fixtures.header, crewID: "crew-042"))
        try roundTrip(
            NonceResponse(
                header: Fixtures.header,
                result: .completed,
                nonceID: "n-1",
                nonce: Array(0..<32),
                expiresAt: Fixtures.now.addingTimeInterval(60)
            )
        )
        try roundTrip(
            NonceResponse(
                header: Fixtures.errorHeader,
                result: .failed(OnshiResultCode.maintenance, "maintenance"),
                nonceID: nil,
                nonce: nil,
                expiresAt: nil
            )
        )
    }

    @Test(arguments: AssuranceLevel.allCases, ConsentBasis.allCases)
    func authenticationRequest(assurance: AssuranceLevel, consent: ConsentBasis) throws {
        try roundTrip(
            AuthenticationRequest(
                header: Fixtures.header,
                assurance: assurance,
                certificateDER: Array(repeating: 0x30, count: 900),
                crewID: "crew-042",
                consent: consent,
                nonceID: assurance == .pin ? "n-1" : nil,
                signature: assurance == .pin ? Array(repeating: 7, count: 256) : nil
            )
        )
    }

    @Test func lookupRequests() throws {
        try roundTrip(
            LookupRequest(
                header: Fixtures.header,
                query: .demographics(
                    name: "佐藤 花子",
                    birthDate: OnshiDate(year: 1950, month: 2, day: 28),
                    sex: .female,
                    address: "東京都架空市テスト町1丁目2番3号"
                ),
                crewID: "crew-042",
                consent: .lifeOrBodyException
            )
        )
        try roundTrip(
            LookupRequest(
                header: Fixtures.header,
                query: .insurance(insurerNumber: "06139999", symbol: "101", number: "2345"),
                crewID: "crew-042",
                consent: .verbal
            )
        )
    }

    @Test func sessionResponses() throws {
        try roundTrip(
            SessionResponse(
                header: Fixtures.header,
                result: .completed,
                sessionToken: "tok",
                sessionExpiresAt: Fixtures.now.addingTimeInterval(900),
                qualificationValidity: 1,
                consent: ConsentFlags(
                    basis: .verbal,
                    medication: true,
                    diagnosis: true,
                    surgery: true,
                    checkup: false,
                    allergy: true,
                    availableUntil: Fixtures.now.addingTimeInterval(86400)
                )
            )
        )
        try roundTrip(SessionResponse(header: Fixtures.errorHeader, result: .failed(OnshiResultCode.consentRefused)))
    }

    @Test(arguments: Fixtures.allRecords)
    func categoryResponse(records: CategoryRecords) throws {
        try roundTrip(Fixtures.categoryResponse(records))
    }

    /// The onshi wire keeps its own text for the APPI exception; the domain spelling never goes on the wire.
    @Test func consentBasisWireText() throws {
        #expect(ConsentBasis.allCases.map(\.xmlText) == ["verbal", "exception", "refused"])
        #expect(ConsentBasis(xmlText: "exception") == .lifeOrBodyException)
        #expect(ConsentBasis(xmlText: "life-or-body-exception") == nil)
        let bytes = OnshiXML.encode(
            LookupRequest(
                header: Fixtures.header,
                query: .insurance(insurerNumber: "06139999", symbol: "101", number: "2345"),
                crewID: "crew-042",
                consent: .lifeOrBodyException
            )
        )
        #expect(String(decoding: bytes, as: UTF8.self).contains("<ConsentBasis>exception</ConsentBasis>"))
    }

    /// Category names on the wire (the `Category` element and the URL) are the domain spelling.
    @Test func categoryWireText() {
        #expect(MedicalCategory.allCases.allSatisfy { $0.xmlText == $0.rawValue })
        #expect(MedicalCategory(xmlText: "prescriptions") == .prescriptions)
        #expect(MedicalCategory(xmlText: "e-prescriptions") == nil)
    }

    @Test func everyCategoryHasALookBack() {
        #expect(MedicalCategory.prescriptions.lookBack == .days(100))
        #expect(MedicalCategory.medications.lookBack == .years(5))
        #expect(MedicalCategory.checkups.lookBack == .lastRecords(5))
        #expect(MedicalCategory.qualification.lookBack == .current)
        let today = OnshiDate(year: 2026, month: 11, day: 23)
        #expect(LookBack.days(100).includes(today.adding(days: -100), today: today))
        #expect(!LookBack.days(100).includes(today.adding(days: -101), today: today))
        #expect(LookBack.years(5).includes(OnshiDate(year: 2021, month: 11, day: 23), today: today))
        #expect(!LookBack.years(5).includes(OnshiDate(year: 2021, month: 11, day: 22), today: today))
    }

    @Test func datesRoundTrip() {
        for seconds in [0, 86399, 951_782_400, 1_795_000_000, -86401] {
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            #expect(Date(xmlText: date.xmlText) == date)
        }
        #expect(Date(xmlText: "2024-02-29T23:59:59Z") != nil)
        #expect(Date(xmlText: "2023-02-29T23:59:59Z") == nil)
        #expect(
            OnshiDate(japanDayOf: Date(timeIntervalSince1970: 15 * 3600)) == OnshiDate(year: 1970, month: 1, day: 2)
        )
    }

    @Test func escapesMarkupAndControls() throws {
        var q = Fixtures.qualification
        q.address = "a<b>&\"c\"\r\n\t\u{1}d"
        let response = Fixtures.categoryResponse(.qualification(q))
        let back = try OnshiXML.decode(CategoryResponse.self, from: OnshiXML.encode(response))
        guard case .qualification(let got?) = back.records else {
            Issue.record("no qualification")
            return
        }
        #expect(got.address == "a<b>&\"c\"\r\n\t\u{FFFD}d")
    }

    @Test func largeBodyDecodesQuickly() throws {
        let many = (0..<8000).map { i in
            var m = Fixtures.medication
            m.days = i % 90
            return m
        }
        let bytes = OnshiXML.encode(Fixtures.categoryResponse(.medications(many)))
        #expect(bytes.count > 3_000_000)
        let clock = ContinuousClock()
        let start = clock.now
        let back = try OnshiXML.decode(CategoryResponse.self, from: bytes)
        let elapsed = clock.now - start
        #expect(back.records.count == 8000)
        print("decoded \(bytes.count) bytes in \(elapsed)")
    }
}
