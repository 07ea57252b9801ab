import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuEligibilitySim
import KyukyuOnshi
import Testing

@Suite struct AuthenticationTests {
    func visual(_ credentials: HolderCredentials, consent: ConsentBasis = .verbal) -> AuthenticationRequest {
        AuthenticationRequest(
            header: Fixture.header,
            assurance: .visual,
            certificateDER: credentials.userAuthCertificateDER,
            crewID: "crew-7",
            consent: consent
        )
    }

    @Test func validCertificateOpensASession() async throws {
        let service = Fixture.service()
        let response = await service.authenticate(visual(Fixture.holder(3)), deviceID: "amb-01")
        #expect(response.result == .completed)
        #expect(response.header.resultSegment == .success)
        #expect(response.qualificationValidity == 1)
        let token = try #require(response.sessionToken)
        let consent = try #require(response.consent)
        #expect(consent.basis == .verbal)
        #expect(consent.availableUntil > Date().addingTimeInterval(23 * 3600))
        let meds = await service.category(token: token, category: .medications, deviceID: "amb-01")
        #expect(meds.result.code == OnshiResultCode.completed)
        #expect(meds.records.count > 0)
        let allergies = await service.category(token: token, category: .allergies, deviceID: "amb-01")
        #expect(allergies.result.code == OnshiResultCode.noRecords)
    }

    @Test(arguments: [
        (CertificateValidity.expired, OnshiResultCode.certificateExpired),
        (CertificateValidity.notYetValid, OnshiResultCode.certificateNotYetValid),
    ])
    func outOfPeriodCertificates(validity: CertificateValidity, code: String) async {
        let service = Fixture.service()
        let response = await service.authenticate(visual(Fixture.holder(2, validity)), deviceID: "amb-01")
        #expect(response.result.status == .failed)
        #expect(response.result.code == code)
        #expect(response.header.errorCode == code)
        #expect(response.sessionToken == nil)
    }

    @Test func revokedBySerialAndSuspendedByHolder() async {
        let revokedHolder = Fixture.holder(8)
        let list = RevocationList(entries: [
            .init(serial: Fixture.serial(of: revokedHolder.userAuthCertificateDER), reason: .revoked),
            .init(holder: 9, reason: .suspended),
        ])
        let service = Fixture.service(revocations: list)
        let revoked = await service.authenticate(visual(revokedHolder), deviceID: "amb-01")
        #expect(revoked.result.code == OnshiResultCode.certificateRevoked)
        let suspended = await service.authenticate(visual(Fixture.holder(9)), deviceID: "amb-01")
        #expect(suspended.result.code == OnshiResultCode.certificateSuspended)
        // Lifting the suspension at run time.
        service.setRevocations(RevocationList())
        let lifted = await service.authenticate(visual(Fixture.holder(9)), deviceID: "amb-01")
        #expect(lifted.result == .completed)
    }

    @Test func wrongCAAndGarbage() async throws {
        let service = Fixture.service()
        let foreign = try Fixture.otherPKI.holder(1, validity: .valid)
        let response = await service.authenticate(visual(foreign), deviceID: "amb-01")
        #expect(response.result.code == OnshiResultCode.certificateUntrusted)
        var garbage = visual(Fixture.holder(1))
        garbage.certificateDER = [0x30, 0x03, 0x02, 0x01, 0x00]
        #expect(
            await service.authenticate(garbage, deviceID: "amb-01").result.code == OnshiResultCode.certificateUntrusted
        )
    }

    @Test func pinModeVerifiesTheNonceSignature() async throws {
        let clock = TestClock()
        let service = Fixture.service(clock: { clock.now })
        let holder = Fixture.holder(5)
        func pin(_ nonce: NonceResponse, signature: [UInt8]?) -> AuthenticationRequest {
            AuthenticationRequest(
                header: Fixture.header,
                assurance: .pin,
                certificateDER: holder.userAuthCertificateDER,
                crewID: "crew-7",
                consent: .verbal,
                nonceID: nonce.nonceID,
                signature: signature
            )
        }
        // Good signature.
        let n1 = service.nonce(NonceRequest(header: Fixture.header, crewID: "crew-7"), deviceID: "amb-01")
        let nonce1 = try #require(n1.nonce)
        #expect(nonce1.count == 32)
        let ok = await service.authenticate(pin(n1, signature: Fixture.sign(nonce1, with: holder)), deviceID: "amb-01")
        #expect(ok.result == .completed)
        // The same nonce again: single use.
        let again = await service.authenticate(
            pin(n1, signature: Fixture.sign(nonce1, with: holder)),
            deviceID: "amb-01"
        )
        #expect(again.result.code == OnshiResultCode.nonceInvalid)
        // A signature by another holder's key.
        let n2 = service.nonce(NonceRequest(header: Fixture.header, crewID: "crew-7"), deviceID: "amb-01")
        let forged = await service.authenticate(
            pin(n2, signature: Fixture.sign(try #require(n2.nonce), with: Fixture.holder(6))),
            deviceID: "amb-01"
        )
        #expect(forged.result.code == OnshiResultCode.signatureInvalid)
        // A signature over other bytes.
        let n3 = service.nonce(NonceRequest(header: Fixture.header, crewID: "crew-7"), deviceID: "amb-01")
        let wrongBytes = await service.authenticate(
            pin(n3, signature: Fixture.sign([1, 2, 3], with: holder)),
            deviceID: "x"
        )
        #expect(wrongBytes.result.code == OnshiResultCode.signatureInvalid)
        // An expired nonce.
        let n4 = service.nonce(NonceRequest(header: Fixture.header, crewID: "crew-7"), deviceID: "amb-01")
        clock.advance(121)
        let late = await service.authenticate(
            pin(n4, signature: Fixture.sign(try #require(n4.nonce), with: holder)),
            deviceID: "x"
        )
        #expect(late.result.code == OnshiResultCode.nonceInvalid)
        // No nonce at all.
        let none = await service.authenticate(
            AuthenticationRequest(
                header: Fixture.header,
                assurance: .pin,
                certificateDER: holder.userAuthCertificateDER,
                crewID: "crew-7",
                consent: .verbal
            ),
            deviceID: "x"
        )
        #expect(none.result.code == OnshiResultCode.nonceInvalid)
    }

    @Test func refusedConsentGetsNothingButIsRecorded() async {
        let service = Fixture.service()
        let response = await service.authenticate(visual(Fixture.holder(4), consent: .refused), deviceID: "amb-09")
        #expect(response.result.code == OnshiResultCode.consentRefused)
        #expect(response.sessionToken == nil)
        #expect(response.consent == nil)
        let log = await service.viewings.all()
        #expect(log.count == 1)
        #expect(log[0].consent == .refused)
        #expect(log[0].resultCode == OnshiResultCode.consentRefused)
        #expect(log[0].deviceID == "amb-09")
        #expect(log[0].fetches.isEmpty)
    }

    @Test func viewingLogRecordsWhoWhereWhenWhatAndHow() async throws {
        let service = Fixture.service()
        let response = await service.authenticate(
            visual(Fixture.holder(3), consent: .lifeOrBodyException),
            deviceID: "amb-02"
        )
        let token = try #require(response.sessionToken)
        for category in [MedicalCategory.medications, .diagnoses, .medications] {
            _ = await service.category(token: token, category: category, deviceID: "amb-02")
        }
        let invalid = await service.category(token: "nope", category: .visits, deviceID: "amb-02")
        #expect(invalid.result.code == OnshiResultCode.sessionInvalid)
        let log = await service.viewings.all()
        #expect(log.count == 1)
        let viewing = log[0]
        #expect(viewing.crewID == "crew-7")
        #expect(viewing.deviceID == "amb-02")
        #expect(viewing.method == "card")
        #expect(viewing.assurance == .visual)
        #expect(viewing.consent == .lifeOrBodyException)
        #expect(viewing.patientNumber == 3)
        #expect(viewing.categories == [.medications, .diagnoses])
        #expect(viewing.fetches.count == 3)
        await service.reset()
        #expect(await service.viewings.all().isEmpty)
    }

    @Test func lookupByFourFieldsAndByInsurance() async throws {
        let service = Fixture.service()
        let holder = SyntheticHolder(number: 6)
        let byFields = await service.lookup(
            LookupRequest(
                header: Fixture.header,
                query: .demographics(
                    name: holder.familyNameKana + " " + holder.givenNameKana,
                    birthDate: OnshiDate(
                        year: holder.birthDate.year,
                        month: holder.birthDate.month,
                        day: holder.birthDate.day
                    ),
                    sex: OnshiSex(rawValue: holder.sex.rawValue)!,
                    address: holder.address
                ),
                crewID: "crew-7",
                consent: .lifeOrBodyException
            ),
            deviceID: "amb-03"
        )
        #expect(byFields.result == .completed)
        let token = try #require(byFields.sessionToken)
        let treatment = await service.category(token: token, category: .treatment, deviceID: "amb-03")
        guard case .treatment(let records) = treatment.records else {
            Issue.record("wrong records")
            return
        }
        #expect(records.contains { $0.dialysis })

        let insurer = SyntheticPatient(number: 6, today: OnshiDate(japanDayOf: Date())).insurer
        let byInsurance = await service.lookup(
            LookupRequest(
                header: Fixture.header,
                query: .insurance(insurerNumber: insurer.insurerNumber, symbol: insurer.symbol, number: insurer.number),
                crewID: "crew-7",
                consent: .verbal
            ),
            deviceID: "amb-03"
        )
        #expect(byInsurance.result == .completed)
        let nobody = await service.lookup(
            LookupRequest(
                header: Fixture.header,
                query: .insurance(insurerNumber: "00000000", symbol: "", number: "1"),
                crewID: "crew-7",
                consent: .verbal
            ),
            deviceID: "amb-03"
        )
        #expect(nobody.result.code == OnshiResultCode.patientNotFound)
        let log = await service.viewings.all()
        #expect(log.map(\.method) == ["lookup", "lookup", "lookup"])
        #expect(log[0].patientNumber == 6)
    }
}
