import Dispatch
import KyukyuOnshi
import Synchronization

/// How much memory one patient fetch may hold in onshi's answers.
///
/// Nine categories are fetched at once, each answer up to ``EligibilityClientConfiguration/maxCategoryBytes``.
/// Without a budget, nine large answers are held together, and each becomes a parse tree several times its size:
/// gigabytes, on a tablet. With it, the answers of one fetch together hold at most ``maxHeldBytes`` while they
/// arrive and wait to be decoded (a category whose answer would exceed it fails as too large, and the others go
/// on), and answers are decoded one at a time (``ResponseDecoder``), so at most one tree exists at once.
public struct FetchMemoryBudget: Sendable, Hashable {
    /// The most answer bytes one fetch holds at once, all categories together.
    public var maxHeldBytes: Int

    /// Makes a budget.
    public init(maxHeldBytes: Int) {
        self.maxHeldBytes = maxHeldBytes
    }

    /// 32 MiB: about 13 times the whole history of the heaviest synthetic patient (2.4 MB, 3,930 dispensings).
    public static let `default` = FetchMemoryBudget(maxHeldBytes: 32 * 1_048_576)
}

/// One fetch's running account against its ``FetchMemoryBudget``: bytes are reserved as they arrive and released
/// once the answer is decoded or dropped.
public final class FetchMemoryAccount: Sendable {
    private struct State {
        var held = 0
        var peak = 0
    }
    private let state = Mutex(State())
    /// The budget.
    public let budget: FetchMemoryBudget

    /// Opens an account.
    public init(budget: FetchMemoryBudget) {
        self.budget = budget
    }

    /// Reserves `bytes`; `false` (and nothing reserved) when that would exceed the budget.
    public func reserve(_ bytes: Int) -> Bool {
        state.withLock { state in
            guard bytes >= 0, state.held + bytes <= budget.maxHeldBytes else { return false }
            state.held += bytes
            state.peak = max(state.peak, state.held)
            return true
        }
    }

    /// Gives back `bytes` reserved earlier.
    public func release(_ bytes: Int) {
        state.withLock { $0.held = max(0, $0.held - bytes) }
    }

    /// What is reserved now.
    public var held: Int { state.withLock { $0.held } }

    /// The most that was reserved at once.
    public var peak: Int { state.withLock { $0.peak } }
}

/// Decodes onshi's answers one at a time on a dispatch queue of its own, off Swift's cooperative pool: a large
/// answer neither holds a thread that deadline timers and other categories need, nor builds a second tree while
/// one is being built.
public enum ResponseDecoder {
    private static let queue = DispatchQueue(label: "kyukyu.onshi.decode", qos: .userInitiated)

    /// Decodes `bytes` as a `T` within `limits`, on the decoding queue.
    public static func decode<T: OnshiMessage & Sendable>(
        _ type: T.Type,
        from bytes: [UInt8],
        limits: OnshiXMLLimits = .default
    ) async throws(OnshiXMLError) -> T {
        let result: Result<T, OnshiXMLError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(
                    returning: Result { () throws(OnshiXMLError) -> T in
                        try OnshiXML.decode(type, from: bytes, limits: limits)
                    }
                )
            }
        }
        return try result.get()
    }
}
