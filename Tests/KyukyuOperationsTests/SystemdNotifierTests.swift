import Clocks
import Foundation
import KyukyuOperations
import KyukyuTestbed
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite("systemd notifications")
struct SystemdNotifierTests {
    @Test("outside systemd every notification is a no-op")
    func inactiveWithoutSocket() throws {
        let notifier = try SystemdNotifier(environment: [:])
        #expect(!notifier.isActive)
        #expect(notifier.watchdogTimeout == nil)
        try notifier.ready(status: "serving")
    }

    @Test("READY=1 with a one-line status reaches a socket path")
    func readyToPath() throws {
        let sink = try DatagramSink()
        let notifier = try SystemdNotifier(environment: ["NOTIFY_SOCKET": sink.path])
        try notifier.ready(status: "serving on\nport 8443")
        let lines = try #require(sink.receiveText()).split(separator: "\n")
        #expect(lines.first == "READY=1")
        #expect(lines.contains("STATUS=serving on port 8443"))
        #expect(lines.contains("MAINPID=\(getpid())"))
    }

    @Test("an abstract socket name (@…) is used as systemd sets it")
    func abstractSocket() throws {
        let sink = try DatagramSink(abstract: true)
        let notifier = try SystemdNotifier(environment: ["NOTIFY_SOCKET": sink.path])
        try notifier.stopping(status: "bye")
        #expect(sink.receiveText()?.hasPrefix("STOPPING=1\n") == true)
    }

    @Test("the watchdog timeout comes from WATCHDOG_USEC, only for the process WATCHDOG_PID names")
    func watchdogEnvironment() throws {
        let base = ["NOTIFY_SOCKET": "/run/x.sock", "WATCHDOG_USEC": "30000000"]
        #expect(try SystemdNotifier(environment: base).watchdogTimeout == .seconds(30))
        #expect(
            try SystemdNotifier(environment: base.merging(["WATCHDOG_PID": "42"]) { $1 }, processID: 42)
                .watchdogTimeout == .seconds(30)
        )
        #expect(
            try SystemdNotifier(environment: base.merging(["WATCHDOG_PID": "43"]) { $1 }, processID: 42)
                .watchdogTimeout == nil
        )
        #expect(throws: OperationsError.invalidEnvironment("", "")) {
            try SystemdNotifier(environment: base.merging(["WATCHDOG_USEC": "soon"]) { $1 })
        }
        #expect(throws: OperationsError.invalidEnvironment("", "")) {
            try SystemdNotifier(environment: base.merging(["WATCHDOG_PID": "-1"]) { $1 })
        }
    }

    @Test("a socket address longer than sun_path is refused with a clear error")
    func tooLongAddress() throws {
        let notifier = try SystemdNotifier(environment: ["NOTIFY_SOCKET": "/" + String(repeating: "a", count: 200)])
        #expect(throws: OperationsError.invalidSocketAddress("")) { try notifier.ready(status: "x") }
    }

    @Test("the watchdog is fed every half timeout while healthy, skipped while not, and STOPPING=1 ends it")
    func watchdogService() async throws {
        let sink = try DatagramSink()
        let notifier = try SystemdNotifier(environment: ["NOTIFY_SOCKET": sink.path, "WATCHDOG_USEC": "2000000"])
        let clock = TestClock()
        let healthy = Mutex(true)
        let service = SystemdWatchdogService(
            notifier: notifier,
            clock: clock,
            isHealthy: { healthy.withLock { $0 } },
            logger: Logger(label: "test")
        )
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
        try await withThrowingTaskGroup { tasks in
            tasks.addTask { try await group.run() }
            #expect(sink.receiveText() == "WATCHDOG=1")
            try await Self.untilAsleep(clock)
            await clock.advance(by: .seconds(1))
            #expect(sink.receiveText() == "WATCHDOG=1")
            // Unhealthy: the next tick sends nothing; healthy again, the one after does.
            try await Self.untilAsleep(clock)
            healthy.withLock { $0 = false }
            await clock.advance(by: .seconds(1))
            try await Self.untilAsleep(clock)
            healthy.withLock { $0 = true }
            await clock.advance(by: .seconds(1))
            #expect(sink.receiveText() == "WATCHDOG=1")
            try await Self.untilAsleep(clock)
            await group.triggerGracefulShutdown()
            #expect(sink.receiveText()?.hasPrefix("STOPPING=1\n") == true)
            try await tasks.waitForAll()
        }
        #expect(healthy.withLock { $0 })
    }

    /// Waits (a bounded number of yields, no time) until the service sleeps on the test clock.
    static func untilAsleep(_ clock: TestClock<Duration>) async throws {
        for _ in 0..<100_000 {
            if (try? await clock.checkSuspension()) == nil { return }
            await Task.yield()
        }
        Issue.record("the service never slept on the clock")
    }
}
