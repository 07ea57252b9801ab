import Logging
import NIOCore
import NIOPosix

/// A simulated JPKI card that plugs into a virtual reader of vsmartcard's vpcd, so that a real pcscd — and
/// every PC/SC client behind it — sees a card.
///
/// The simulator connects to vpcd's TCP port, answers the reader's control bytes (power, reset, ATR) and
/// command APDUs through a ``JPKICard``, and reconnects with a short backoff when vpcd is not up yet or drops
/// the link. Closing the socket is card removal: ``removeCard()`` keeps the card out until ``insertCard()``.
/// ``replaceCard(with:credentials:removalGap:)`` swaps what is on the reader at run time (another holder, profile
/// or certificate), and ``armRemoval(afterAPDUs:reinsertAfter:)`` arms a removal in the middle of the next read;
/// ``CardSimulatorControlServer`` offers both over loopback HTTP.
///
/// ```swift
/// let simulator = try CardSimulator(configuration: .init(port: 41000), logger: logger)
/// let task = Task { try await simulator.run() }
/// // … drive pcscd …
/// task.cancel()
/// ```
public actor CardSimulator {
    /// The configuration in force: the one the simulator was made with, with the card part (profile, holder,
    /// PINs, certificate) as last set by ``replaceCard(with:credentials:removalGap:)``.
    public private(set) var configuration: CardSimulatorConfiguration
    /// The card's credentials (certificates and keys of the synthetic holder).
    public private(set) var credentials: HolderCredentials

    private var logger: Logger
    private var card: JPKICard
    private var inserted = true
    /// The armed automatic removal: after the command count reaches `atCommand`, the card goes out.
    private var pendingRemoval: (atCommand: Int, reinsertAfter: Duration?)?
    /// Bumped by every removal or swap asked from outside, so that a swap waiting out its removal gap yields to a
    /// later request.
    private var generation = 0
    private var channel: (any Channel)?
    private var reinsertTask: Task<Void, Never>?
    private let insertions: AsyncStream<Void>
    private let insertionsContinuation: AsyncStream<Void>.Continuation

    /// Command APDUs served so far (control bytes are not counted).
    public private(set) var commandCount = 0
    /// vpcd connections made so far (each one is an insertion as the reader sees it).
    public private(set) var connectionCount = 0

    /// Makes a simulator, loading (or creating) the test PKI in ``CardSimulatorConfiguration/dataDirectory``.
    ///
    /// The first use of a data folder generates RSA keys and may take some seconds; later uses read files.
    public init(configuration: CardSimulatorConfiguration, logger: Logger) throws {
        try configuration.validate()
        let pki = try TestPKI.loadOrCreate(directory: configuration.dataDirectory, logger: logger)
        let credentials = try pki.holder(configuration.holder, validity: configuration.certificateValidity)
        try self.init(configuration: configuration, credentials: credentials, logger: logger)
    }

    /// Makes a simulator for credentials the caller already has (no disk access).
    public init(configuration: CardSimulatorConfiguration, credentials: HolderCredentials, logger: Logger) throws {
        try configuration.validate()
        self.configuration = configuration
        self.credentials = credentials
        self.card = try JPKICard(configuration: configuration, credentials: credentials)
        var logger = logger
        logger[metadataKey: "kyukyu.sim.port"] = "\(configuration.port)"
        logger[metadataKey: "kyukyu.sim.profile"] = "\(configuration.profile.rawValue)"
        self.logger = logger
        (self.insertions, self.insertionsContinuation) = AsyncStream<Void>.makeStream()
        self.pendingRemoval = configuration.removeAfterAPDUs.map { ($0, configuration.reinsertAfter) }
    }

    /// Tries left on the user-authentication PIN (0 = locked).
    public var authPINTriesLeft: Int { self.card.authPINTriesLeft }

    /// Tries left on any PIN of the card.
    public func triesLeft(_ pin: JPKICard.PIN) -> Int { self.card.triesLeft(pin) }

    /// The user-authentication certificate on the card (DER, without the file's filler).
    public var userAuthCertificateDER: [UInt8] { self.credentials.userAuthCertificateDER }

    /// Whether the card is in the reader (not removed by ``removeCard()`` or ``CardSimulatorConfiguration/removeAfterAPDUs``).
    public var isInserted: Bool { self.inserted }

    /// Whether a vpcd connection is open right now.
    public var isConnected: Bool { self.channel != nil }

    /// Command APDUs still to be answered before the armed automatic removal, or `nil` when none is armed.
    public var apdusUntilRemoval: Int? {
        self.pendingRemoval.map { max($0.atCommand - self.commandCount, 0) }
    }

    /// Connects to vpcd and serves the card until the task is cancelled, reconnecting after failures and drops.
    ///
    /// Returns (without throwing) when the surrounding task is cancelled. Call it once per simulator.
    public func run() async throws {
        defer {
            self.reinsertTask?.cancel()
            self.channel?.close(promise: nil)
            self.channel = nil
        }
        let minimumDelay = max(self.configuration.reconnectDelay, .milliseconds(10))
        var delay = minimumDelay
        var reportedUnreachable = false
        while !Task.isCancelled {
            guard self.inserted else {
                await self.waitForInsertion()
                continue
            }
            do {
                let asyncChannel = try await self.connect()
                guard self.inserted, !Task.isCancelled else {
                    // Close through the async channel so its writer is finished (NIO traps otherwise).
                    try? await asyncChannel.executeThenClose { _, _ in }
                    continue
                }
                self.logger.info(
                    "card inserted: connected to vpcd",
                    metadata: ["kyukyu.sim.host": "\(self.configuration.host)"]
                )
                reportedUnreachable = false
                delay = minimumDelay
                try await self.serve(asyncChannel)
                self.logger.info("vpcd link closed")
            } catch {
                if Task.isCancelled { break }
                if !reportedUnreachable {
                    self.logger.info(
                        "vpcd not reachable or link lost; retrying",
                        metadata: ["kyukyu.sim.error": "\(error)"]
                    )
                    reportedUnreachable = true
                } else {
                    self.logger.trace("vpcd still not reachable", metadata: ["kyukyu.sim.error": "\(error)"])
                }
            }
            if Task.isCancelled { break }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(1))
        }
        self.logger.info("card simulator stopped")
    }

    /// Takes the card out of the reader: closes the socket and stays out until ``insertCard()``.
    ///
    /// Also cancels a swap that is waiting out its removal gap (``replaceCard(with:credentials:removalGap:)``).
    public func removeCard() {
        self.generation += 1
        self.takeOut()
    }

    /// Swaps what is on the reader: the current card goes out (the reader sees a removal), stays out for
    /// `removalGap`, and a new card made from `configuration` and `credentials` goes in (the reader sees an
    /// insertion of a fresh card: new ATR for a new profile, full PIN counters).
    ///
    /// Only the card part of `configuration` is taken (profile, holder, PINs, tries, contactless, iPhone approval,
    /// certificate validity); the link settings (host, port, latency, reconnect delay) stay. An armed automatic
    /// removal stays armed. pcscd polls a vpcd reader's presence about every 400 ms, so a gap of a second makes
    /// sure every PC/SC client sees the card go; a shorter gap can hide the removal from pcscd.
    ///
    /// Returns `false` when a later ``removeCard()`` or swap overtook this one during the gap (the card then
    /// stays as that call left it).
    ///
    /// - Throws: ``CardSimulatorError/Code/invalidConfiguration`` when the card part is invalid (nothing changes),
    ///   ``CardSimulatorError/Code/signing`` when a key of `credentials` cannot be loaded.
    @discardableResult
    public func replaceCard(
        with configuration: CardSimulatorConfiguration,
        credentials: HolderCredentials,
        removalGap: Duration = .seconds(1)
    ) async throws -> Bool {
        var next = self.configuration
        next.profile = configuration.profile
        next.holder = configuration.holder
        next.authPIN = configuration.authPIN
        next.attributesPIN = configuration.attributesPIN
        next.signingPIN = configuration.signingPIN
        next.authPINTriesLeft = configuration.authPINTriesLeft
        next.contactless = configuration.contactless
        next.iphoneApproval = configuration.iphoneApproval
        next.certificateValidity = configuration.certificateValidity
        try next.validate()
        guard removalGap >= .zero else {
            throw CardSimulatorError.invalidConfiguration("the removal gap must not be negative")
        }
        let card = try JPKICard(configuration: next, credentials: credentials)

        self.generation += 1
        let mine = self.generation
        self.takeOut()
        if removalGap > .zero {
            try? await Task.sleep(for: removalGap)
        }
        guard self.generation == mine else { return false }
        self.configuration = next
        self.credentials = credentials
        self.card = card
        self.logger[metadataKey: "kyukyu.sim.profile"] = "\(next.profile.rawValue)"
        self.logger.info(
            "card swapped",
            metadata: [
                "kyukyu.sim.holder": "\(next.holder)",
                "kyukyu.sim.profile": "\(next.profile.rawValue)",
                "kyukyu.sim.certificate": "\(next.certificateValidity.rawValue)",
            ]
        )
        self.putIn()
        return true
    }

    /// Arms a removal in the middle of the next read: the card goes out after `apdus` more command APDUs have
    /// been answered, once, and comes back after `reinsertAfter` (or stays out until ``insertCard()`` or a swap
    /// when `nil`). Replaces a removal armed earlier, including the configuration's ``CardSimulatorConfiguration/removeAfterAPDUs``.
    ///
    /// - Throws: ``CardSimulatorError/Code/invalidConfiguration`` for a negative count or delay.
    public func armRemoval(afterAPDUs apdus: Int, reinsertAfter: Duration?) throws {
        guard apdus >= 0, (reinsertAfter ?? .zero) >= .zero else {
            throw CardSimulatorError.invalidConfiguration("the APDU count and the delay must not be negative")
        }
        self.pendingRemoval = (self.commandCount + apdus, reinsertAfter)
        self.logger.info(
            "removal armed",
            metadata: [
                "kyukyu.sim.after_apdus": "\(apdus)",
                "kyukyu.sim.reinsert_after": "\(reinsertAfter.map { "\($0)" } ?? "never")",
            ]
        )
    }

    /// Puts the card back; the simulator connects to vpcd again.
    ///
    /// Also cancels a swap that is waiting out its removal gap: the card that was there comes back.
    public func insertCard() {
        self.generation += 1
        self.putIn()
    }

    private func takeOut() {
        self.reinsertTask?.cancel()
        self.reinsertTask = nil
        guard self.inserted else { return }
        self.inserted = false
        self.logger.info("card removed")
        self.channel?.close(promise: nil)
    }

    private func putIn() {
        self.reinsertTask?.cancel()
        self.reinsertTask = nil
        guard !self.inserted else { return }
        self.inserted = true
        self.logger.info("card inserted")
        self.insertionsContinuation.yield()
    }

    // MARK: - Internals

    private func waitForInsertion() async {
        for await _ in self.insertions where self.inserted {
            return
        }
    }

    private func connect() async throws -> NIOAsyncChannel<VPCDMessage, [UInt8]> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: self.configuration.host, port: self.configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(VPCDInboundHandler())
                    try channel.pipeline.syncOperations.addHandler(VPCDOutboundHandler())
                    return try NIOAsyncChannel<VPCDMessage, [UInt8]>(wrappingChannelSynchronously: channel)
                }
            }
    }

    private func serve(_ asyncChannel: NIOAsyncChannel<VPCDMessage, [UInt8]>) async throws {
        let channel = asyncChannel.channel
        self.channel = channel
        self.connectionCount += 1
        self.card.reset()
        defer {
            self.card.reset()
            if self.channel === channel {
                self.channel = nil
            }
        }
        try await withTaskCancellationHandler {
            try await asyncChannel.executeThenClose { inbound, outbound in
                for try await message in inbound {
                    switch message {
                    case .getATR:
                        try await outbound.write(self.card.atr)
                    case .powerOn, .powerOff, .reset:
                        self.logger.trace("reader control", metadata: ["kyukyu.sim.control": "\(message)"])
                        self.card.reset()
                    case .unknownControl(let byte):
                        self.logger.debug("unknown control byte ignored", metadata: ["kyukyu.sim.control": "\(byte)"])
                    case .apdu(let bytes):
                        if self.configuration.apduLatency > .zero {
                            try await Task.sleep(for: self.configuration.apduLatency)
                        }
                        let reply = self.card.process(bytes)
                        if reply.approvalDelay > .zero {
                            self.logger.debug("waiting for the holder's approval on the phone")
                            try await Task.sleep(for: reply.approvalDelay)
                        }
                        self.commandCount += 1
                        // Instruction, sizes and status only: never command data (PINs) or response data.
                        self.logger.debug(
                            "apdu",
                            metadata: [
                                "kyukyu.sim.ins": "\(bytes.count > 1 ? hexString([bytes[1]]) : "?")",
                                "kyukyu.sim.sw": "\(reply.status)",
                                "kyukyu.sim.response.bytes": "\(reply.response.data.count)",
                            ]
                        )
                        guard self.inserted, self.channel === channel else { return }
                        try await outbound.write(reply.bytes)
                        if let removal = self.pendingRemoval, self.commandCount >= removal.atCommand {
                            self.pendingRemoval = nil
                            self.takeOut()
                            self.scheduleReinsertion(after: removal.reinsertAfter)
                            return
                        }
                    }
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    private func scheduleReinsertion(after: Duration?) {
        guard let after else { return }
        self.reinsertTask = Task {
            try? await Task.sleep(for: after)
            guard !Task.isCancelled else { return }
            self.putIn()
        }
    }
}
