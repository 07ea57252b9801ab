import CPCSCLite
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Synchronization

extension PCSCService {
    /// Reader plug/unplug and card insert/remove as an async sequence, so the gateway can start reading the
    /// moment a card touches the reader.
    ///
    /// The first event is ``ReaderEvent/serviceAvailable(readers:)`` with every reader's state (cards already
    /// present are reported there, not as insertions). When pcscd goes away the sequence reports
    /// ``ReaderEvent/serviceUnavailable`` and keeps trying to reach it every `pollInterval`; when it is back, a
    /// new ``ReaderEvent/serviceAvailable(readers:)`` follows. The sequence ends when the consuming task is
    /// cancelled or stops iterating; the blocking wait inside is cancelled with `SCardCancel`.
    ///
    /// Each sequence holds one of the service's threads while it runs.
    public func events(pollInterval: Duration = .milliseconds(500)) -> AsyncStream<ReaderEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: ReaderEvent.self, bufferingPolicy: .unbounded)
        let control = MonitorControl()
        continuation.onTermination = { _ in control.stop() }
        let logger = self.logger
        let pollMilliseconds = UInt32(
            clamping: pollInterval.components.seconds * 1000 + pollInterval.components.attoseconds
                / 1_000_000_000_000_000
        )
        pool.submit { state in
            guard state == .active else {
                continuation.finish()
                return
            }
            Self.monitorLoop(
                control: control,
                pollMilliseconds: pollMilliseconds,
                logger: logger,
                yield: { continuation.yield($0) }
            )
            continuation.finish()
        }
        return stream
    }

    /// The blocking monitor loop; runs on one of the service's threads until stopped.
    static func monitorLoop(
        control: MonitorControl,
        pollMilliseconds: UInt32,
        logger: Logger,
        yield: (ReaderEvent) -> Void
    ) {
        var serviceKnownDown = false
        while !control.isStopped {
            var context: SCARDCONTEXT = 0
            guard SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &context) == SCARD_S_SUCCESS else {
                if !serviceKnownDown {
                    serviceKnownDown = true
                    logger.warning("smart-card service unreachable; waiting for pcscd")
                    yield(.serviceUnavailable)
                }
                control.sleep(milliseconds: pollMilliseconds)
                continue
            }
            control.setContext(context)
            let outcome = watch(
                context: context,
                control: control,
                pollMilliseconds: pollMilliseconds,
                logger: logger,
                yield: yield
            )
            control.setContext(nil)
            SCardReleaseContext(context)
            serviceKnownDown = false
            if outcome == .serviceLost {
                serviceKnownDown = true
                logger.warning("smart-card service stopped; waiting for pcscd")
                yield(.serviceUnavailable)
                control.sleep(milliseconds: pollMilliseconds)
            }
        }
    }

    enum WatchOutcome { case stopped, serviceLost }

    /// Watches readers on one context until the service goes away or the monitor stops.
    static func watch(
        context: SCARDCONTEXT,
        control: MonitorControl,
        pollMilliseconds: UInt32,
        logger: Logger,
        yield: (ReaderEvent) -> Void
    ) -> WatchOutcome {
        var readers: [ReaderWatch]
        do {
            readers = try listReaders(context).map { ReaderWatch(name: $0) }
            if !readers.isEmpty { _ = try getStatusChange(context, &readers, timeoutMilliseconds: 0) }
        } catch {
            return .serviceLost
        }
        for index in readers.indices { readers[index].currentState = readers[index].eventState }
        yield(.serviceAvailable(readers: readers.map(\.status)))

        var plugAndPlay = ReaderWatch(name: plugAndPlayReader)
        while !control.isStopped {
            var watches = readers + [plugAndPlay]
            do {
                _ = try getStatusChange(context, &watches, timeoutMilliseconds: pollMilliseconds)
            } catch let error as CardError {
                switch error.code {
                case .timedOut: continue
                case .cancelled: return .stopped
                case .serviceUnavailable: return .serviceLost
                default:
                    // A reader vanished between listing and waiting: list again.
                    watches = readers + [plugAndPlay]
                }
            } catch {
                return .serviceLost
            }
            plugAndPlay = watches.removeLast()
            plugAndPlay.currentState = plugAndPlay.eventState

            for (index, watch) in watches.enumerated() where watch.changed {
                let before = readers[index]
                let wasPresent = before.currentState & DWORD(SCARD_STATE_PRESENT) != 0
                if watch.present, !wasPresent {
                    yield(.cardInserted(watch.status))
                } else if !watch.present, wasPresent {
                    yield(.cardRemoved(reader: watch.name))
                }
                readers[index] = watch
                readers[index].currentState = watch.eventState
            }

            // Reader plug/unplug: compare the reader list.
            guard let names = try? listReaders(context) else { return .serviceLost }
            let known = Set(readers.map(\.name))
            for removed in readers where !names.contains(removed.name) {
                if removed.present { yield(.cardRemoved(reader: removed.name)) }
                yield(.readerRemoved(removed.name))
            }
            readers.removeAll { !names.contains($0.name) }
            for name in names where !known.contains(name) {
                var added = [ReaderWatch(name: name)]
                _ = try? getStatusChange(context, &added, timeoutMilliseconds: 0)
                added[0].currentState = added[0].eventState
                yield(.readerAdded(name))
                if added[0].present { yield(.cardInserted(added[0].status)) }
                readers.append(added[0])
            }
        }
        return .stopped
    }
}

/// Lets the consumer of a monitor stop its blocking loop from another thread.
final class MonitorControl: Sendable {
    private let state = Mutex<(stopped: Bool, context: SCARDCONTEXT?)>((false, nil))
    private let wakeup = ConditionLock(value: 0)

    var isStopped: Bool { state.withLock { $0.stopped } }

    func setContext(_ context: SCARDCONTEXT?) {
        state.withLock { $0.context = context }
    }

    func stop() {
        state.withLock { state in
            state.stopped = true
            if let context = state.context { SCardCancel(context) }
        }
        wakeup.lock()
        wakeup.unlock(withValue: 1)
    }

    /// Sleeps up to the given time, waking early when stopped.
    func sleep(milliseconds: UInt32) {
        if wakeup.lock(whenValue: 1, timeoutSeconds: Double(milliseconds) / 1000) {
            wakeup.unlock()
        }
    }
}
