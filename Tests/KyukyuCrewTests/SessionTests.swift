import Foundation
import Testing

@testable import KyukyuCrew

@Suite("Crew sessions: expiry, idle lock, PIN, sign-out", .timeLimit(.minutes(1)))
struct SessionTests {
    @Test("a session ends 24 h after sign-in, and is deleted when next used")
    func sessionExpires() async throws {
        let fixture = try CrewFixture()
        let (_, session) = try await fixture.signedIn()
        let token = try #require(session.token)
        fixture.clock.advance(seconds: 24 * 3600 - 1)
        let late = try await fixture.directory.session(token: token)
        #expect(late.locked, "idle for almost a day: locked, but still there")
        fixture.clock.advance(seconds: 1)
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.session(token: token)
        }
        #expect(fixture.audit.events(.sessionEnded).map { $0.attributes["reason"] } == ["expired"])
        #expect(try await fixture.directory.purgeExpiredSessions() == 0, "already deleted lazily")
    }

    @Test("purgeExpiredSessions deletes expired sessions only")
    func purge() async throws {
        let fixture = try CrewFixture()
        let (enrolment, old) = try await fixture.signedIn()
        fixture.clock.advance(seconds: 3600)
        let recent = try await fixture.directory.signIn(
            crewID: "A1-TEST",
            password: testPassword,
            totp: fixture.code(enrolment)
        )
        fixture.clock.advance(seconds: 23 * 3600)
        #expect(try await fixture.directory.purgeExpiredSessions() == 1)
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.session(token: old.token!)
        }
        #expect(try await fixture.directory.session(token: recent.token!).id == recent.id)
    }

    @Test("300 s without a crew action locks the session; a touch resets the timer")
    func idleLock() async throws {
        let fixture = try CrewFixture()
        let (_, session) = try await fixture.signedIn()
        let token = try #require(session.token)

        fixture.clock.advance(seconds: 299)
        #expect(try await !fixture.directory.session(token: token).locked)
        let touched = try await fixture.directory.touch(token: token)
        #expect(touched.lastActivity == fixture.clock.now())

        // 299 s after the touch (598 s after sign-in): still open, because of the touch.
        fixture.clock.advance(seconds: 299)
        #expect(try await !fixture.directory.session(token: token).locked)
        #expect(fixture.audit.events(.sessionLocked).isEmpty)

        fixture.clock.advance(seconds: 2)
        #expect(try await fixture.directory.session(token: token).locked)
        #expect(fixture.audit.events(.sessionLocked).map { $0.attributes["reason"] } == ["idle"])

        // A touch does not reset a locked session.
        await expectCrewError(.sessionLocked) { () async throws(CrewError) in
            try await fixture.directory.touch(token: token)
        }
        #expect(try await fixture.directory.session(token: token).locked)
    }

    @Test("a touch that comes after the idle time finds the session locked")
    func lateTouchIsRefused() async throws {
        let fixture = try CrewFixture()
        let (_, session) = try await fixture.signedIn()
        fixture.clock.advance(seconds: 301)
        await expectCrewError(.sessionLocked) { () async throws(CrewError) in
            try await fixture.directory.touch(token: session.token!)
        }
    }

    @Test("the PIN unlocks; a wrong PIN counts down; the 5th wrong PIN ends the session")
    func unlockWithPIN() async throws {
        let fixture = try CrewFixture()
        let (_, session) = try await fixture.signedIn()
        let token = try #require(session.token)

        // Not locked: nothing to unlock, the PIN is not checked.
        #expect(try await !fixture.directory.unlock(token: token, pin: "000000").locked)

        try await fixture.directory.lock(token: token)
        #expect(try await fixture.directory.session(token: token).locked)
        #expect(fixture.audit.events(.sessionLocked).map { $0.attributes["reason"] } == ["crew"])

        fixture.clock.advance(seconds: 10)
        let unlocked = try await fixture.directory.unlock(token: token, pin: testPIN)
        #expect(!unlocked.locked)
        #expect(unlocked.lastActivity == fixture.clock.now())
        #expect(fixture.audit.events(.unlocked).count == 1)

        // Two wrong, then the right one: the count starts again.
        try await fixture.directory.lock(token: token)
        for expected in [4, 3] {
            let error = await expectCrewError(.wrongPIN) { () async throws(CrewError) in
                try await fixture.directory.unlock(token: token, pin: "000000")
            }
            #expect(error?.triesLeft == expected)
        }
        _ = try await fixture.directory.unlock(token: token, pin: testPIN)

        try await fixture.directory.lock(token: token)
        // A malformed PIN costs no try.
        await expectCrewError(.invalidInput) { () async throws(CrewError) in
            try await fixture.directory.unlock(token: token, pin: "12a4")
        }
        for expected in [4, 3, 2, 1] {
            let error = await expectCrewError(.wrongPIN) { () async throws(CrewError) in
                try await fixture.directory.unlock(token: token, pin: "000000")
            }
            #expect(error?.triesLeft == expected)
        }
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.unlock(token: token, pin: "000000")
        }
        // Ended: even the right PIN does not bring it back.
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.unlock(token: token, pin: testPIN)
        }
        #expect(
            fixture.audit.events(.unlockFailed).map { $0.attributes["triesLeft"] } == [
                "4", "3", "4", "3", "2", "1", "0",
            ]
        )
        #expect(fixture.audit.events(.sessionEnded).map { $0.attributes["reason"] } == ["pin-failures"])
    }

    @Test("sign-out ends the session; signing out again does nothing")
    func signOut() async throws {
        let fixture = try CrewFixture()
        let (_, session) = try await fixture.signedIn()
        let token = try #require(session.token)
        try await fixture.directory.signOut(token: token)
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.session(token: token)
        }
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.touch(token: token)
        }
        try await fixture.directory.signOut(token: token)
        #expect(fixture.audit.events(.signedOut).map { $0.attributes["session"] } == [session.id])
    }

    @Test("an unknown token is unauthenticated")
    func unknownToken() async throws {
        let fixture = try CrewFixture()
        _ = try await fixture.signedIn()
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.session(token: randomToken())
        }
        await expectCrewError(.unauthenticated) { () async throws(CrewError) in
            try await fixture.directory.lock(token: "")
        }
    }

    @Test("a session, and its lock, survive a restart of the gateway")
    func sessionSurvivesRestart() async throws {
        let fixture = try CrewFixture()
        let (enrolment, session) = try await fixture.signedIn()
        let token = try #require(session.token)
        try await fixture.directory.lock(token: token)

        let restarted = try fixture.reopen()
        let found = try await restarted.session(token: token)
        #expect(found.id == session.id)
        #expect(found.csrfToken == session.csrfToken)
        #expect(found.locked)
        #expect(try await !restarted.unlock(token: token, pin: testPIN).locked)

        // Replay protection survives too: the code used before the restart is refused after it.
        await expectCrewError(.signInFailed) { () async throws(CrewError) in
            try await restarted.signIn(crewID: "A1-TEST", password: testPassword, totp: fixture.code(enrolment))
        }
    }
}
