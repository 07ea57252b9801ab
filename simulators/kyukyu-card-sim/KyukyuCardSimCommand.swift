import ArgumentParser
import Dispatch
import KyukyuCardSim
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// `kyukyu-card-sim`: a simulated JPKI card (My Number card or phone token) for a vpcd virtual reader.
@main
struct KyukyuCardSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-card-sim",
        abstract: "A simulated JPKI card (My Number card, old card, Android or iPhone token) for vsmartcard's vpcd.",
        discussion: """
            Connects to the vpcd port of a pcscd virtual reader and behaves as a JPKI card holding a synthetic \
            holder's certificates from a test PKI (made on first use in --data-dir, then reused). Reconnects when \
            pcscd is not up yet or restarts. Stops on SIGINT or SIGTERM.

            With --control-port, serves a small HTTP control on 127.0.0.1 that swaps what is on the reader at run \
            time: GET /card, PUT /card {"holder": N, "profile": "android", "certificate": "expired"}, DELETE /card, \
            POST /card/remove-after-apdus {"apdus": N, "reinsertAfterMs": M}. See docs/card-simulator.md.
            """
    )

    @Option(help: "Host where vpcd listens (loopback).")
    var host = "127.0.0.1"

    @Option(help: "vpcd port (the reader's CHANNELID).")
    var port = 35963

    @Option(help: "Token profile: card, old-card, android, iphone.")
    var profile: String = SimulatedTokenProfile.card.rawValue

    @Option(help: "Synthetic holder number (holder N is patient N in the eligibility stub).")
    var holder = 1

    @Option(name: .customLong("auth-pin"), help: "4-digit user-authentication PIN.")
    var authPIN = "1234"

    @Option(name: .customLong("attributes-pin"), help: "4-digit 券面入力補助 PIN (default: the auth PIN).")
    var attributesPIN: String?

    @Option(name: .customLong("signing-pin"), help: "Signing PIN, 6-16 of A-Z0-9.")
    var signingPIN = "ABC123"

    @Option(help: "Folder of the test PKI.")
    var dataDir = "state/sim-pki"

    @Option(help: "Delay before answering each command APDU, in milliseconds (about 20 resembles contactless).")
    var apduLatencyMs = 0

    @Option(help: "Remove the card (close the socket) after this many command APDUs.")
    var removeAfterApdus: Int?

    @Option(help: "After such a removal, insert the card again after this many milliseconds.")
    var reinsertAfterMs: Int?

    @Option(help: "Tries left on the auth PIN at start (0-3).")
    var authPinTries = 3

    @Flag(help: "Start with the auth PIN locked (same as --auth-pin-tries 0).")
    var locked = false

    @Flag(help: "Answer with the contactless ATR (card profiles).")
    var contactless = false

    @Option(help: "iPhone profile: what the holder does when asked to approve: approve or deny.")
    var iphoneApproval = "approve"

    @Option(help: "iPhone profile: how long the holder takes to answer, in milliseconds.")
    var iphoneApprovalDelayMs = 1500

    @Option(help: "User-authentication certificate: valid, expired or not-yet-valid.")
    var certificate: String = CertificateValidity.valid.rawValue

    @Option(help: "Serve the run-time control (HTTP) on 127.0.0.1 at this port (0 picks one and logs it).")
    var controlPort: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard SimulatedTokenProfile(rawValue: self.profile) != nil else {
            throw ValidationError("--profile must be one of: card, old-card, android, iphone")
        }
        guard CertificateValidity(rawValue: self.certificate) != nil else {
            throw ValidationError("--certificate must be one of: valid, expired, not-yet-valid")
        }
        guard ["approve", "deny"].contains(self.iphoneApproval) else {
            throw ValidationError("--iphone-approval must be approve or deny")
        }
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of: trace, debug, info, notice, warning, error, critical")
        }
        if let controlPort, !(0...65535).contains(controlPort) {
            throw ValidationError("--control-port must be 0 to 65535")
        }
        guard self.apduLatencyMs >= 0, self.iphoneApprovalDelayMs >= 0, (self.reinsertAfterMs ?? 0) >= 0 else {
            throw ValidationError("delays must not be negative")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: self.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "kyukyu-card-sim")

        let approvalDelay = Duration.milliseconds(self.iphoneApprovalDelayMs)
        let configuration = CardSimulatorConfiguration(
            host: self.host,
            port: self.port,
            profile: SimulatedTokenProfile(rawValue: self.profile) ?? .card,
            holder: self.holder,
            authPIN: self.authPIN,
            attributesPIN: self.attributesPIN,
            signingPIN: self.signingPIN,
            dataDirectory: self.dataDir,
            apduLatency: .milliseconds(self.apduLatencyMs),
            removeAfterAPDUs: self.removeAfterApdus,
            reinsertAfter: self.reinsertAfterMs.map { .milliseconds($0) },
            authPINTriesLeft: self.locked ? 0 : self.authPinTries,
            contactless: self.contactless,
            iphoneApproval: self.iphoneApproval == "deny"
                ? .deny(after: approvalDelay) : .approve(after: approvalDelay),
            certificateValidity: CertificateValidity(rawValue: self.certificate) ?? .valid
        )
        let simulator: CardSimulator
        do {
            simulator = try CardSimulator(configuration: configuration, logger: logger)
        } catch let error as CardSimulatorError where error.code == .invalidConfiguration {
            throw ValidationError(error.reason)
        }
        logger.info(
            "card simulator starting",
            metadata: [
                "kyukyu.sim.holder": "\(self.holder)",
                "kyukyu.sim.certificate": "\(self.certificate)",
                "kyukyu.sim.apdu_latency_ms": "\(self.apduLatencyMs)",
            ]
        )

        var controlServer: CardSimulatorControlServer?
        if let controlPort {
            let control = CardSimulatorControl(
                simulator: simulator,
                credentials: CardSimulatorControl.testPKICredentials(directory: self.dataDir, logger: logger),
                logger: logger
            )
            controlServer = try await CardSimulatorControlServer.bind(
                port: controlPort,
                control: control,
                logger: logger
            )
        }
        let task = Task { [controlServer] in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await simulator.run() }
                if let controlServer {
                    group.addTask { try await controlServer.run() }
                }
                // Either ends only when cancelled (or the control's socket fails): stop both then.
                try await group.next()
                group.cancelAll()
                try await group.waitForAll()
            }
        }
        let signals = Self.onTerminationSignal {
            logger.info("signal received, stopping")
            task.cancel()
        }
        defer { signals.forEach { $0.cancel() } }
        try await task.value
    }

    /// Turns SIGINT and SIGTERM into a call of `handler` (on a dispatch queue, not in a signal context).
    private static func onTerminationSignal(
        _ handler: @escaping @Sendable () -> Void
    ) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }
}
