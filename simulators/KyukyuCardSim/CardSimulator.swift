import Logging
import NIOCore
import NIOPosix

/// A simulated JPKI card that plugs into a virtual reader of vsmartcard's vpcd, so that a real pcscd — and
/// every PC/SC client behind it — sees a card.
///
/// The simulator connects to vpcd's TCP port, answers the reader's control bytes (power, reset, ATR) and
/// command APDUs through a ``JPKICard``, and reconnects with a short backoff when vpcd is not up yet or drops
/// the link. Closing the socket is card removal: ``removeCard()`` keeps the card out until ``insertCard()``.
///
/// ```swift
/// let simulator = try CardSimulator(configuration: .init(port: 41000), logger: logger)
/// let task = Task { try await simulator.run() }
/// // … drive pcscd …
/// task.cancel()
/// ```
public actor CardSimulator {
    /// The configuration the simulator was made with.
    public let configuration: CardSimulatorConfiguration
    /// The card's credentials (certificates and keys of the synthetic holder).
    public let credentials: HolderCredentials

    private let logger: Logger
    private var card: JPKICard
    private var inserted = true
    private var automaticRemovalDone = false
    private var channel: (any Channel)?
    private var reinsertTask: Task<Void, Never>?
    private let insertions: AsyncStream<Void>
    private let insertionsContinuation: AsyncStream<Void>.Continuation

    /// Command APDUs served so far (control bytes are not counted).
    public private(set) var commandCount = 0

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
    public func removeCard() {
        guard self.inserted else { return }
        self.inserted = false
        self.reinsertTask?.cancel()
        self.reinsertTask = nil
        self.logger.info("card removed")
        self.channel?.close(promise: nil)
    }

    /// Puts the card back; the simulator connects to vpcd again.
    public func insertCard() {
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
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
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
                        if let limit = self.configuration.removeAfterAPDUs, !self.automaticRemovalDone,
                            self.commandCount >= limit
                        {
                            self.automaticRemovalDone = true
                            self.removeCard()
                            self.scheduleReinsertion()
                            return
                        }
                    }
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    private func scheduleReinsertion() {
        guard let after = self.configuration.reinsertAfter else { return }
        self.reinsertTask = Task {
            try? await Task.sleep(for: after)
            guard !Task.isCancelled else { return }
            self.insertCard()
        }
    }
}
