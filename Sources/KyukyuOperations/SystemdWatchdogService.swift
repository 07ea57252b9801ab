public import Logging
public import ServiceLifecycle

/// Keeps systemd's watchdog fed while the process is healthy, and says `STOPPING=1` on the way out.
///
/// Every half of `$WATCHDOG_USEC` it asks `isHealthy` and, when the answer is yes, sends `WATCHDOG=1`. A process
/// whose tasks are stuck (a starved cooperative pool, a deadlocked store) stops sending, and systemd restarts it
/// (`Restart=on-failure`); the vault and the outbox are durable, so a restart loses nothing. With no watchdog
/// configured it only waits for shutdown. Runs as one `Service` in the program's `ServiceGroup`.
public struct SystemdWatchdogService<C: Clock>: Service where C.Duration == Duration {
    private let notifier: SystemdNotifier
    private let clock: C
    private let isHealthy: @Sendable () async -> Bool
    private let logger: Logger

    /// A watchdog keeper.
    ///
    /// - Parameters:
    ///   - notifier: Where the notifications go (from the environment).
    ///   - clock: The clock the pings are paced by (a test clock in tests).
    ///   - isHealthy: Whether the process is well enough to be kept; asked before each ping.
    ///   - logger: Logs a skipped ping at warning (never patient data).
    public init(
        notifier: SystemdNotifier,
        clock: C,
        isHealthy: @escaping @Sendable () async -> Bool = { true },
        logger: Logger
    ) {
        self.notifier = notifier
        self.clock = clock
        self.isHealthy = isHealthy
        self.logger = logger
    }

    /// Pings until graceful shutdown, then notifies `STOPPING=1`.
    public func run() async throws {
        if let timeout = notifier.watchdogTimeout {
            let interval = timeout / 2
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    if await isHealthy() {
                        do {
                            try notifier.watchdog()
                        } catch {
                            logger.warning("watchdog notification failed", metadata: ["kyukyu.error": "\(error)"])
                        }
                    } else {
                        logger.warning("unhealthy: the watchdog is not fed, systemd will restart the service")
                    }
                    do {
                        try await clock.sleep(for: interval)
                    } catch {
                        return
                    }
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        do {
            try notifier.stopping(status: "stopping")
        } catch {
            logger.warning("stopping notification failed", metadata: ["kyukyu.error": "\(error)"])
        }
    }
}
