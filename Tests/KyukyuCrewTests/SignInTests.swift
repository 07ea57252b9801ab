import Foundation
import Testing

@testable import KyukyuCrew

@Suite("Crew sign-in: password, TOTP, replay, lockout", .timeLimit(.minutes(1)))
struct SignInTests {
    @Test("the right crew ID, password and TOTP code start a 24 h session")
    func signInSucceeds() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        let signedInAt = fixture.clock.now()
        let session = try await fixture.directory.signIn(
            crewID: " a1-test ",
            password: testPassword,
            totp: fixture.code(enrolment)
        )
        #expect(session.crewID == "A1-TEST")
        let token = try #require(session.token)
        #expect(Data(base64urlEncoded: token)?.count == 32)
        #expect(Data(base64urlEncoded: session.csrfToken)?.count == 32)
        #expect(session.csrfToken != token)
        #expect(session.createdAt == signedInAt)
        #expect(session.expiresAt == signedInAt.addingTimeInterval(24 * 3600))
        #expect(!session.locked)

        let looked = try await fixture.directory.session(token: token)
        #expect(looked.id == session.id)
        #expect(looked.token == nil, "the raw token is only known at sign-in")
        #expect(looked.csrfToken == session.csrfToken)
        #expect(looked.acceptsCSRFToken(session.csrfToken))
        // One character changed (to another one: a random token may end with "A" already).
        let other = session.csrfToken.hasSuffix("A") ? "B" : "A"
        #expect(!looked.acceptsCSRFToken(String(session.csrfToken.dropLast()) + other))
        #expect(!looked.acceptsCSRFToken(""))

        let signIns = fixture.audit.events(.signIn)
        #expect(signIns.count == 1)
        #expect(signIns.first?.crewID == "A1-TEST")
        #expect(signIns.first?.attributes["session"] == session.id)
        let account = try #require(try await fixture.directory.list().first)
        #expect(account.lastSignInAt == signedInAt)
        #expect(account.failedSignIns == 0)
    }

    @Test("the enrolment's base32 secret is the one in its otpauth URI")
    func enrolmentIsConsistent() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        let components = try #require(URLComponents(string: enrolment.otpauthURI))
        #expect(components.scheme == "otpauth")
        #expect(components.host == "totp")
        #expect(components.path == "/Myna Kyukyu:A1-TEST")
        let query = Dictionary(uniqueKeysWithValues: (components.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        #expect(query["secret"] == enrolment.totpSecret)
        #expect(query["issuer"] == "Myna Kyukyu")
        #expect(base32Decode(enrolment.totpSecret).count * 8 >= 160, "RFC 4226 recommends a 160-bit secret")
        #expect(!"\(enrolment)".contains(enrolment.totpSecret))
    }

    @Test("a wrong password fails without saying which factor; the audit says password")
    func wrongPassword() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        let error = await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(
                crewID: "A1-TEST",
                password: "synthetic-wrong-0001",
                totp: fixture.code(enrolment)
            )
        }
        #expect(error?.reason == CrewError.signInFailed().reason)
        let failure = try #require(fixture.audit.events(.signInFailed).first)
        #expect(failure.attributes["reason"] == "password")
        #expect(failure.attributes["failures"] == "1")
        #expect(try await fixture.directory.list().first?.failedSignIns == 1)
    }

    @Test("a wrong TOTP code fails with the same error; the audit says totp")
    func wrongTOTP() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        let right = fixture.code(enrolment)
        let wrong = String(format: "%06d", (Int(right)! + 1) % 1_000_000)
        let error = await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: wrong)
        }
        #expect(error?.reason == CrewError.signInFailed().reason)
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: "12345")
        }
        #expect(fixture.audit.events(.signInFailed).map { $0.attributes["reason"] } == ["totp", "totp"])
        #expect(fixture.audit.events(.signIn).isEmpty)
    }

    @Test("a TOTP code already used is refused, and so is one of an earlier step")
    func replayedTOTP() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        let code = fixture.code(enrolment)
        let first = try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: code)
        try await fixture.directory.signOut(token: try #require(first.token))

        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: code)
        }
        // The previous step's code is inside the ±1 window, but older than the one used.
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(
                crewID: "A1-TEST",
                password: testPassword,
                totp: fixture.code(enrolment, steps: -1)
            )
        }
        #expect(
            fixture.audit.events(.signInFailed).map { $0.attributes["reason"] } == ["totp-replayed", "totp-replayed"]
        )

        // The next step's code is new: accepted.
        fixture.clock.advance(seconds: 30)
        _ = try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: fixture.code(enrolment))
    }

    @Test("codes of the previous and the next step are accepted; two steps away are not")
    func totpWindow() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        for steps in [-2, 2] {
            await expectCrewError(.signInFailed) { () async throws(CrewError) in
                try await fixture.directory.signIn(
                    crewID: "A1-TEST",
                    password: testPassword,
                    totp: fixture.code(enrolment, steps: steps)
                )
            }
        }
        // Increasing steps, so that none is a replay of the one before.
        for steps in [-1, 0, 1] {
            let session = try await fixture.directory.signIn(
                crewID: "A1-TEST",
                password: testPassword,
                totp: fixture.code(enrolment, steps: steps)
            )
            #expect(session.token != nil)
        }
        #expect(fixture.audit.events(.signIn).count == 3)
    }

    @Test("5 failures lock the account for 60 s, each further failure doubles it, and a success resets")
    func lockoutAndBackoff() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        @Sendable func wrong() async throws(CrewError) -> CrewSession {
            try await fixture.directory.signIn(crewID: "A1-TEST", password: "synthetic-wrong-0001", totp: "000000")
        }
        for _ in 1...4 { await expectCrewError(.signInFailed, wrong) }
        let locked = await expectCrewError(.accountLocked, wrong)
        #expect(locked?.retryAfter == .seconds(60))
        #expect(locked?.retryAfterSeconds == 60)
        #expect(fixture.audit.events(.accountLocked).last?.attributes["lockedForSeconds"] == "60")

        // Locked: even the right password and code are refused, and not counted.
        fixture.clock.advance(seconds: 59)
        let stillLocked = await expectCrewError(.accountLocked) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: fixture.code(enrolment))
        }
        #expect(stillLocked?.retryAfterSeconds == 1)
        #expect(try await fixture.directory.list().first?.failedSignIns == 5)
        #expect(try await fixture.directory.list().first?.lockedUntil != nil)

        // After the lock, one more failure locks again for twice as long, then four times.
        fixture.clock.advance(seconds: 1)
        #expect(try await fixture.directory.list().first?.lockedUntil == nil)
        #expect(await expectCrewError(.accountLocked, wrong)?.retryAfterSeconds == 120)
        fixture.clock.advance(seconds: 120)
        #expect(await expectCrewError(.accountLocked, wrong)?.retryAfterSeconds == 240)

        // Once it expires, the right factors sign in and the count starts again.
        fixture.clock.advance(seconds: 240)
        _ = try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: fixture.code(enrolment))
        let account = try #require(try await fixture.directory.list().first)
        #expect(account.failedSignIns == 0)
        #expect(account.lockedUntil == nil)
        await expectCrewError(.signInFailed, wrong)
    }

    @Test("the lockout doubles up to the 1 h cap")
    func lockoutCap() {
        let policy = CrewDirectory.Policy()
        #expect(CrewDirectory.lockout(failures: 5, policy: policy) == 60)
        #expect(CrewDirectory.lockout(failures: 6, policy: policy) == 120)
        #expect(CrewDirectory.lockout(failures: 10, policy: policy) == 1920)
        #expect(CrewDirectory.lockout(failures: 11, policy: policy) == 3600)
        #expect(CrewDirectory.lockout(failures: 500, policy: policy) == 3600)
    }

    @Test("parallel wrong guesses are counted one by one: the 5th locks, the rest are refused uncounted")
    func parallelGuessesAreSerialized() async throws {
        let fixture = try CrewFixture()
        _ = try await fixture.addCrew()
        let codes = await withTaskGroup(of: CrewError.Code?.self) { group in
            for _ in 0..<9 {
                group.addTask { () -> CrewError.Code? in
                    do throws(CrewError) {
                        _ = try await fixture.directory.signIn(
                            crewID: "A1-TEST",
                            password: "synthetic-wrong-0001",
                            totp: "000000"
                        )
                        return nil
                    } catch {
                        return error.code
                    }
                }
            }
            return await group.reduce(into: [CrewError.Code?]()) { $0.append($1) }
        }
        #expect(codes.filter { $0 == .signInFailed }.count == 4)
        #expect(codes.filter { $0 == .accountLocked }.count == 5)
        #expect(try await fixture.directory.list().first?.failedSignIns == 5)
    }

    @Test("an unknown crew ID fails like a wrong password and spends a bcrypt verification of the policy's cost")
    func unknownCrew() async throws {
        let fixture = try CrewFixture()
        _ = try await fixture.addCrew()
        let error = await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "Z9-NOBODY", password: testPassword, totp: "123456")
        }
        #expect(error?.reason == CrewError.signInFailed().reason)
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "not a crew id!", password: testPassword, totp: "123456")
        }
        let failures = fixture.audit.events(.signInFailed)
        #expect(failures.map(\.crewID) == ["Z9-NOBODY", nil], "a malformed ID (perhaps a password) is not kept")
        #expect(failures.allSatisfy { $0.attributes["reason"] == "unknown-crew" })
        // The dummy hash is a real bcrypt hash at the policy's cost, so its verification costs the same.
        #expect(fixture.directory.dummyHash.hasPrefix("$2b$04$"))
        #expect(fixture.directory.dummyHash.utf8.count == 60)
        #expect(try await fixture.directory.list().map(\.failedSignIns) == [0])
    }

    @Test("a disabled account cannot sign in, and disabling ends its sessions")
    func disabledAccount() async throws {
        let fixture = try CrewFixture()
        let (enrolment, session) = try await fixture.signedIn()
        try await fixture.directory.disable(crewID: "a1-test")
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.session(token: session.token!)
        }
        fixture.clock.advance(seconds: 30)
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: fixture.code(enrolment))
        }
        #expect(fixture.audit.events(.signInFailed).last?.attributes["reason"] == "disabled")
        #expect(fixture.audit.events(.accountDisabled).first?.attributes["sessionsEnded"] == "1")
        #expect(try await fixture.directory.list().first?.disabled == true)
    }

    @Test("the default cost (10) signs in; the time of one verification is printed, not asserted")
    func defaultCost() async throws {
        let fixture = try CrewFixture(policy: CrewDirectory.Policy())
        let clock = ContinuousClock()
        var added: CrewEnrolment?
        let addTime = try await clock.measure { added = try await fixture.addCrew() }
        let enrolment = try #require(added)
        var session: CrewSession?
        let elapsed = try await clock.measure {
            session = try await fixture.directory.signIn(
                crewID: "A1-TEST",
                password: testPassword,
                totp: fixture.code(enrolment)
            )
        }
        #expect(session?.token != nil)
        #expect(fixture.directory.dummyHash.hasPrefix("$2b$10$"))
        print("kyukyu.crew: at bcrypt cost 10, add (2 hashes) took \(addTime), sign-in (1 verify) took \(elapsed)")
    }
}

extension Data {
    /// Decodes base64url without padding.
    init?(base64urlEncoded text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }
}

@Suite("Crew sign-in: bcrypt's limits and cost changes", .timeLimit(.minutes(1)))
struct BcryptEdgeTests {
    @Test("a password longer than 72 bytes, or with a NUL, does not match on its prefix")
    func passwordPrefixDoesNotMatch() async throws {
        let fixture = try CrewFixture()
        let longest = "synthetic-" + String(repeating: "p", count: 62)
        #expect(longest.utf8.count == 72)
        let long = try await fixture.addCrew("A1-LONG", password: longest)
        let short = try await fixture.addCrew("B2-SHORT", password: testPassword)
        // bcrypt alone would accept both: it reads 72 bytes, and C strings end at the NUL.
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "A1-LONG", password: longest + "x", totp: fixture.code(long))
        }
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(
                crewID: "B2-SHORT",
                password: testPassword + "\u{0}x",
                totp: fixture.code(short)
            )
        }
        #expect(fixture.audit.events(.signInFailed).map { $0.attributes["reason"] } == ["password", "password"])
        _ = try await fixture.directory.signIn(crewID: "A1-LONG", password: longest, totp: fixture.code(long))
        _ = try await fixture.directory.signIn(crewID: "B2-SHORT", password: testPassword, totp: fixture.code(short))
    }

    @Test("hashes made at another cost are rehashed at the policy's cost when they next match")
    func rehashOnCostChange() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        #expect(try await fixture.directory.storedHashCosts(crewID: "A1-TEST")! == (4, 4))

        let stronger = try fixture.reopen(policy: CrewDirectory.Policy(bcryptCost: 5))
        #expect(stronger.dummyHash.hasPrefix("$2b$05$"))
        let session = try await stronger.signIn(
            crewID: "A1-TEST",
            password: testPassword,
            totp: fixture.code(enrolment)
        )
        #expect(try await stronger.storedHashCosts(crewID: "A1-TEST")! == (5, 4))
        try await stronger.lock(token: session.token!)
        _ = try await stronger.unlock(token: session.token!, pin: testPIN)
        #expect(try await stronger.storedHashCosts(crewID: "A1-TEST")! == (5, 5))

        // The rehashed credentials still work.
        try await stronger.lock(token: session.token!)
        _ = try await stronger.unlock(token: session.token!, pin: testPIN)
        fixture.clock.advance(seconds: 30)
        _ = try await stronger.signIn(crewID: "A1-TEST", password: testPassword, totp: fixture.code(enrolment))
    }
}
