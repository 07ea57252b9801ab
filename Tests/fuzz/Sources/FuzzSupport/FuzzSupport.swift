import CLibFuzzer
import Foundation

/// Runs libFuzzer's driver on `test` with this process's arguments, and exits with its status.
///
/// SwiftPM links each executable with a `main` of its own (the module's `main.swift`), so libFuzzer's `main` is never
/// linked: the harness's `main.swift` calls this instead.
public func runLibFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}

/// The input libFuzzer hands a harness, as bytes.
public func fuzzBytes(_ start: UnsafeRawPointer?, _ count: Int) -> [UInt8] {
    guard let start, count > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: start, count: count))
}

/// Stops the run with `message` when an invariant does not hold: libFuzzer records the input as a crash.
///
/// The message names the invariant, never the input's values (which a reproducer file keeps).
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { invariantBroken(message()) }
}

/// Stops the run: an invariant does not hold.
public func invariantBroken(_ message: String) -> Never {
    FileHandle.standardError.write(Data("fuzz invariant broken: \(message)\n".utf8))
    abort()
}

/// Reads an input from its front: small numbers to steer a harness, then the rest as payload.
public struct FuzzReader {
    private let bytes: [UInt8]
    private var index = 0

    /// A reader at the start of `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The next byte, or 0 when the input is used up.
    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// The next `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, index + max(0, count))
        defer { index = end }
        return Array(bytes[index..<end])
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] { take(bytes.count - index) }

    /// Whether everything has been read.
    public var atEnd: Bool { index >= bytes.count }
}
