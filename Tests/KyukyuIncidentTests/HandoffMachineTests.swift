import Foundation
import KyukyuDomain
import KyukyuIncident
import Testing

@Suite("Handoff machine")
struct HandoffMachineTests {
    static let first = HospitalCode(rawValue: "1310000001")!
    static let second = HospitalCode(rawValue: "1310000002")!

    @Test func sendThenUpdatesThenAcknowledgedThenArrivedHandsOver() throws {
        var machine = HandoffMachine()
        #expect(throws: HandoffTransitionError.notSent()) { try machine.handle(.observationsChanged) }
        #expect(
            try machine.handle(.send(to: Self.first)) == [
                .audit(.send(to: Self.first)), .buildAndQueue(version: 1, hospital: Self.first),
            ]
        )
        #expect(machine.status == .queued)
        // A vitals update before the first version is even delivered: version 2 queues behind it.
        #expect(try machine.handle(.observationsChanged) == [.buildAndQueue(version: 2, hospital: Self.first)])
        _ = try machine.handle(.delivered(version: 1, hospital: Self.first))
        #expect(machine.status == .sent)
        _ = try machine.handle(.delivered(version: 2, hospital: Self.first))
        // A resend's late answer for an older version changes nothing.
        #expect(try machine.handle(.delivered(version: 1, hospital: Self.first)).isEmpty)
        #expect(machine.deliveredVersion == 2)
        _ = try machine.handle(.hospitalStatus(.received, hospital: Self.first, divert: nil))
        _ = try machine.handle(.hospitalStatus(.acknowledged, hospital: Self.first, divert: nil))
        #expect(machine.status == .acknowledged)
        // A late "received" does not move it back.
        _ = try machine.handle(.hospitalStatus(.received, hospital: Self.first, divert: nil))
        #expect(machine.status == .acknowledged)
        let effects = try machine.handle(.hospitalStatus(.arrived, hospital: Self.first, divert: nil))
        #expect(effects.last == .handedOver)
        #expect(throws: HandoffTransitionError.handedOver()) { try machine.handle(.observationsChanged) }
        #expect(throws: HandoffTransitionError.handedOver()) { try machine.handle(.send(to: Self.second)) }
    }

    @Test func aDivertWaitsForAnotherHospitalWhichGetsTheLatestVersion() throws {
        var machine = HandoffMachine()
        _ = try machine.handle(.send(to: Self.first))
        _ = try machine.handle(.delivered(version: 1, hospital: Self.first))
        let divert = Divert(.noBeds)
        _ = try machine.handle(.hospitalStatus(.diverted, hospital: Self.first, divert: divert))
        #expect(machine.status == .diverted)
        #expect(machine.divert == divert)
        // Updates wait while diverted.
        #expect(try machine.handle(.observationsChanged).isEmpty)
        // The diverting hospital is not told again: it said no.
        let effects = try machine.handle(.send(to: Self.second))
        #expect(effects == [.audit(.send(to: Self.second)), .buildAndQueue(version: 2, hospital: Self.second)])
        #expect(machine.hospital == Self.second)
        #expect(machine.deliveredVersion == 0)
        #expect(machine.divertedBy == [Self.first])
        // The first hospital's later events are not the second's.
        #expect(try machine.handle(.hospitalStatus(.acknowledged, hospital: Self.first, divert: nil)).isEmpty)
        #expect(machine.status == .queued)
    }

    @Test func choosingAnotherHospitalTellsTheFirstOnce() throws {
        var machine = HandoffMachine()
        _ = try machine.handle(.send(to: Self.first))
        #expect(throws: HandoffTransitionError.sameHospital()) { try machine.handle(.send(to: Self.first)) }
        let effects = try machine.handle(.send(to: Self.second))
        #expect(effects.contains(.withdraw(from: Self.first)))
        #expect(machine.pendingWithdrawals == [Self.first])
        // Back to the first, then the second again: the first is already being told, the second is now.
        _ = try machine.handle(.send(to: Self.first))
        #expect(machine.pendingWithdrawals == [Self.first, Self.second])
        _ = try machine.handle(.withdrawalDelivered(hospital: Self.first))
        #expect(machine.pendingWithdrawals == [Self.second])
    }

    @Test func theMachineSurvivesARestartAsJSON() throws {
        var machine = HandoffMachine()
        _ = try machine.handle(.send(to: Self.first))
        _ = try machine.handle(.hospitalStatus(.diverted, hospital: Self.first, divert: Divert(.icuFull)))
        let restored = try JSONDecoder().decode(HandoffMachine.self, from: JSONEncoder().encode(machine))
        #expect(restored == machine)
    }
}
