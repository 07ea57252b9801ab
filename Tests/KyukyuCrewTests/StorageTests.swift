import Foundation
import Testing

@testable import KyukyuCrew

@Suite("Crew database: files, secrets at rest, audit, administration", .timeLimit(.minutes(1)))
struct StorageTests {
    @Test("the database is 0600 in a 0700 folder, and so is the key file")
    func fileModes() async throws {
        let fixture = try CrewFixture()
        _ = try await fixture.signedIn()
        #expect(permissionBits(fixture.stateDirectory) == 0o700)
        #expect(permissionBits(fixture.databasePath) == 0o600)
        #expect(permissionBits(fixture.keyPath) == 0o600)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: fixture.databasePath + suffix) {
            #expect(permissionBits(fixture.databasePath + suffix) == 0o600)
        }
    }

    @Test("a readable database is restricted to 0600 when opened")
    func looseModeIsFixed() async throws {
        let fixture = try CrewFixture()
        chmod(fixture.databasePath, 0o644)
        chmod(fixture.stateDirectory, 0o755)
        _ = try fixture.reopen()
        #expect(permissionBits(fixture.databasePath) == 0o600)
        #expect(permissionBits(fixture.stateDirectory) == 0o700)
    }

    @Test("a symbolic link in place of the database is refused")
    func symlinkRefused() async throws {
        let fixture = try CrewFixture()
        let link = fixture.stateDirectory + "/linked.sqlite"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fixture.databasePath)
        let key = try CrewSecretKey.load(path: fixture.keyPath, create: false)
        let error = await expectCrewError(.storage) { () async throws(CrewError) in
            try CrewDirectory.open(path: link, secretKey: key, logger: CrewFixture.logger(fixture.logs))
        }
        #expect(error?.reason.contains("symbolic link") == true)
    }

    @Test("a key file that others can read is refused; a missing one is made only when asked")
    func keyFileChecks() async throws {
        let fixture = try CrewFixture()
        chmod(fixture.keyPath, 0o640)
        await expectCrewError(.storage) { () async throws(CrewError) in
            try CrewSecretKey.load(path: fixture.keyPath, create: false)
        }
        await expectCrewError(.storage) { () async throws(CrewError) in
            try CrewSecretKey.load(path: fixture.stateDirectory + "/absent.key", create: false)
        }
        _ = try CrewSecretKey.load(path: fixture.stateDirectory + "/made.key", create: true)
        #expect(FileManager.default.contents(atPath: fixture.stateDirectory + "/made.key")?.count == 32)
    }

    @Test("another secret key does not open the database")
    func wrongKeyRefused() async throws {
        let fixture = try CrewFixture()
        _ = try await fixture.addCrew()
        let otherKey = try CrewSecretKey.load(path: fixture.root + "/other.key", create: true)
        let error = await expectCrewError(.storage) { () async throws(CrewError) in
            try CrewDirectory.open(
                path: fixture.databasePath,
                secretKey: otherKey,
                logger: CrewFixture.logger(fixture.logs)
            )
        }
        #expect(error?.reason.contains("key") == true)
    }

    @Test("the files hold no password, PIN, TOTP secret or session token in the clear")
    func noPlaintextSecrets() async throws {
        let fixture = try CrewFixture()
        let (enrolment, session) = try await fixture.signedIn()
        let token = try #require(session.token)
        try await fixture.directory.lock(token: token)
        _ = try await fixture.directory.unlock(token: token, pin: testPIN)
        let rawSecret = Data(base32Decode(enrolment.totpSecret))

        let bytes = fixture.databaseBytes()
        #expect(bytes.count > 4096)
        #expect(bytes.range(of: Data("A1-TEST".utf8)) != nil, "the search itself works: the crew ID is stored")
        #expect(bytes.range(of: Data(session.csrfToken.utf8)) != nil, "the CSRF token may be stored as it is")
        for (name, secret) in [
            ("password", Data(testPassword.utf8)),
            ("PIN", Data(testPIN.utf8)),
            ("TOTP secret", rawSecret),
            ("TOTP secret in base32", Data(enrolment.totpSecret.utf8)),
            ("session token", Data(token.utf8)),
            ("session token bytes", Data(base64urlEncoded: token)!),
        ] {
            #expect(bytes.range(of: secret) == nil, "\(name) found in the crew database")
        }
    }

    @Test("audit events and logs carry no password, PIN, TOTP code or secret, or token")
    func auditAndLogsCarryNoSecrets() async throws {
        let fixture = try CrewFixture()
        let enrolment = try await fixture.addCrew()
        let wrongPassword = "synthetic-wrong-0002"
        let usedCode = fixture.code(enrolment)
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(crewID: "A1-TEST", password: wrongPassword, totp: usedCode)
        }
        let session = try await fixture.directory.signIn(crewID: "A1-TEST", password: testPassword, totp: usedCode)
        let token = try #require(session.token)
        try await fixture.directory.lock(token: token)
        await expectCrewError(.wrongPIN) { () async throws(CrewError) in
            try await fixture.directory.unlock(token: token, pin: "000111")
        }
        _ = try await fixture.directory.unlock(token: token, pin: testPIN)
        try await fixture.directory.signOut(token: token)
        let reset = try await fixture.directory.reset(crewID: "A1-TEST", password: "synthetic-pass-0002", pin: "482913")
        try await fixture.directory.disable(crewID: "A1-TEST")

        let actions = Set(fixture.audit.events.map(\.action))
        #expect(
            actions == [
                .accountAdded, .signInFailed, .signIn, .sessionLocked, .unlockFailed, .unlocked, .signedOut,
                .accountReset, .accountDisabled,
            ]
        )
        let auditText = fixture.audit.events.map { "\($0.action) \($0.crewID ?? "") \($0.attributes)" }
            .joined(separator: "\n")
        let secrets = [
            testPassword, wrongPassword, "synthetic-pass-0002", testPIN, "000111", "482913", usedCode,
            enrolment.totpSecret, reset.totpSecret, token, session.csrfToken,
            String(decoding: base32Decode(enrolment.totpSecret), as: UTF8.self),
        ]
        for secret in secrets {
            #expect(!auditText.contains(secret), "a secret in the audit")
            #expect(!fixture.logText.contains(secret), "a secret in the logs")
        }
        #expect(!fixture.logText.isEmpty)
        #expect(!"\(session)".contains(token))
    }

    @Test("add checks its input, normalises the crew ID and refuses a duplicate")
    func addValidation() async throws {
        let fixture = try CrewFixture()
        let cases: [(String, String, String, String)] = [
            ("a", testPassword, testPIN, "crewId"),
            ("A1_TEST", testPassword, testPIN, "crewId"),
            (String(repeating: "A", count: 33), testPassword, testPIN, "crewId"),
            ("A1-TEST", "nine-char", testPIN, "password"),
            ("A1-TEST", String(repeating: "x", count: 73), testPIN, "password"),
            ("A1-TEST", testPassword, "123", "pin"),
            ("A1-TEST", testPassword, "1234567", "pin"),
            ("A1-TEST", testPassword, "12a4", "pin"),
        ]
        for (crewID, password, pin, field) in cases {
            let error = await expectCrewError(.invalidInput) { () async throws(CrewError) in
                try await fixture.directory.add(crewID: crewID, password: password, pin: pin)
            }
            #expect(error?.field == field)
        }
        #expect(try await fixture.directory.list().isEmpty)

        let enrolment = try await fixture.directory.add(crewID: "b2-sato", password: testPassword, pin: "4826")
        #expect(enrolment.crewID == "B2-SATO")
        await expectCrewError(.exists) { () async throws(CrewError) in
            try await fixture.directory.add(crewID: "B2-SATO", password: testPassword, pin: "4826")
        }
        await expectCrewError(.notFound) { () async throws(CrewError) in
            try await fixture.directory.disable(crewID: "C3-NOBODY")
        }
        await expectCrewError(.notFound) { () async throws(CrewError) in
            try await fixture.directory.reset(crewID: "C3-NOBODY", password: testPassword, pin: "4826")
        }
    }

    @Test("reset gives a new TOTP secret, clears the lockout, ends sessions and enables the account")
    func resetAccount() async throws {
        let fixture = try CrewFixture()
        let (old, session) = try await fixture.signedIn()
        for _ in 1...5 {
            _ = try? await fixture.directory.signIn(crewID: "A1-TEST", password: "synthetic-wrong-0001", totp: "1")
        }
        try await fixture.directory.disable(crewID: "A1-TEST")
        let fresh = try await fixture.directory.reset(crewID: "A1-TEST", password: "synthetic-pass-0002", pin: "4826")
        #expect(fresh.totpSecret != old.totpSecret)
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.session(token: session.token!)
        }
        let account = try #require(try await fixture.directory.list().first)
        #expect(!account.disabled)
        #expect(account.lockedUntil == nil)
        #expect(account.failedSignIns == 0)

        fixture.clock.advance(seconds: 30)
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await fixture.directory.signIn(
                crewID: "A1-TEST",
                password: "synthetic-pass-0002",
                totp: fixture.code(old)
            )
        }
        let again = try await fixture.directory.signIn(
            crewID: "A1-TEST",
            password: "synthetic-pass-0002",
            totp: fixture.code(fresh)
        )
        try await fixture.directory.lock(token: again.token!)
        #expect(try await !fixture.directory.unlock(token: again.token!, pin: "4826").locked)
    }
}
