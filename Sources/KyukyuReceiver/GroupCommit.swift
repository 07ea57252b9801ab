import Synchronization

/// Group commit, leader and followers: the items that arrive while one transaction is being written wait, and the
/// next transaction writes them all, so that many ambulances posting at once share one fsync instead of queueing
/// for one each. No timer and no task of its own: the first caller to find no transaction under way leads; it
/// writes what is queued (its own item first), answers the others, and hands the lead to the oldest item still
/// waiting. A caller is answered only after the transaction holding its item has committed.
final class GroupCommit<Item: Sendable, Outcome: Sendable>: Sendable {
    private enum Role {
        case lead
        case done(Outcome)
    }

    private struct Waiter {
        var id: UInt64
        var item: Item
        var continuation: CheckedContinuation<Role, Never>
    }

    private struct State {
        var queue: [Waiter] = []
        var leading = false
        var lastID: UInt64 = 0
    }

    private let state = Mutex(State())
    /// The most items in one transaction (it bounds how long the first of them waits).
    let maximumBatch: Int

    /// How many items wait for the next transaction (for tests).
    var queued: Int { state.withLock { $0.queue.count } }

    /// - Parameter maximumBatch: The most items in one transaction.
    init(maximumBatch: Int = 256) {
        self.maximumBatch = max(1, maximumBatch)
    }

    /// Queues `item`; returns its outcome once the transaction holding it has committed. `commit` writes a batch in
    /// one transaction and returns one outcome per item, in order; it must not throw (a failed transaction is one
    /// failure outcome per item). Every caller passes the same `commit`: the leader's is the one used.
    func submit(_ item: Item, commit: ([Item]) async -> [Outcome]) async -> Outcome {
        let id = state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        let role: Role = await withCheckedContinuation { continuation in
            let leads = state.withLock { state in
                state.queue.append(Waiter(id: id, item: item, continuation: continuation))
                if state.leading { return false }
                state.leading = true
                return true
            }
            if leads { continuation.resume(returning: .lead) }
        }
        if case .done(let outcome) = role { return outcome }

        // Leading: this caller's item is the oldest queued one, so it is in the first batch.
        var mine: Outcome?
        while mine == nil {
            let batch = state.withLock { state in
                let count = min(state.queue.count, maximumBatch)
                let batch = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                return batch
            }
            let outcomes = await commit(batch.map(\.item))
            precondition(outcomes.count == batch.count, "a group commit returned one outcome per item")
            for (waiter, outcome) in zip(batch, outcomes) {
                if waiter.id == id {
                    mine = outcome
                } else {
                    waiter.continuation.resume(returning: .done(outcome))
                }
            }
        }
        let next = state.withLock { state -> Waiter? in
            guard let first = state.queue.first else {
                state.leading = false
                return nil
            }
            return first
        }
        next?.continuation.resume(returning: .lead)
        return mine!
    }
}
