import Foundation

/// Finds the package's built executables and runs commands for tests, benchmarks and drills.
public enum Commands {
    /// The folder with the built executables: `$KYUKYU_BIN_DIR`, else `.build/debug` beside the package.
    public static func binDirectory(file: String = #filePath) -> String {
        if let dir = ProcessInfo.processInfo.environment["KYUKYU_BIN_DIR"], !dir.isEmpty { return dir }
        var url = URL(fileURLWithPath: file)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.appendingPathComponent(".build/debug").path
            }
        }
        return ".build/debug"
    }

    /// The path of one of the package's executables, or an error saying how to build it.
    public static func executable(_ name: String) throws -> String {
        let path = binDirectory() + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestbedError("\(path) is not built; run `swift build` (or set KYUKYU_BIN_DIR)")
        }
        return path
    }

    /// The result of a finished command.
    public struct Result: Sendable {
        /// The exit status.
        public var status: Int32
        /// Standard output as UTF-8.
        public var stdout: String
        /// Standard error as UTF-8.
        public var stderr: String
        /// From the start to the first byte on standard output (a pipe, as a script sees it); `nil` if none came.
        public var firstStdoutByte: Duration?
        /// From the start to the process's exit.
        public var elapsed: Duration
    }

    /// Runs a command to completion with optional standard input, and captures its output.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        stdin: String? = nil,
        environment: [String: String] = [:],
        timeout: Duration = .seconds(60)
    ) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { process in
            exited.continuation.yield(process.terminationStatus)
            exited.continuation.finish()
        }
        let started = ContinuousClock.now
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Blocking reads run on their own threads: on the cooperative pool they could starve an in-process
        // simulator that the child is talking to.
        async let stdoutData = readToEnd(out.fileHandleForReading, started: started)
        async let stderrData = readToEnd(err.fileHandleForReading, started: started)
        let pid = process.processIdentifier
        let watchdog = Task.detached {
            try await Task.sleep(for: timeout)
            kill(pid, SIGKILL)
        }
        let (o, e) = await (stdoutData, stderrData)
        var status: Int32 = -1
        for await code in exited.stream { status = code }
        let elapsed = ContinuousClock.now - started
        watchdog.cancel()
        return Result(
            status: status,
            stdout: String(decoding: o.data, as: UTF8.self),
            stderr: String(decoding: e.data, as: UTF8.self),
            firstStdoutByte: o.firstByte,
            elapsed: elapsed
        )
    }

    /// Reads a pipe to its end on a dedicated thread, noting when its first byte came.
    static func readToEnd(
        _ handle: FileHandle,
        started: ContinuousClock.Instant
    ) async -> (data: Data, firstByte: Duration?) {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                var data = Data()
                var firstByte: Duration?
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    if firstByte == nil { firstByte = ContinuousClock.now - started }
                    data.append(chunk)
                }
                continuation.resume(returning: (data, firstByte))
            }
            thread.start()
        }
    }

    /// Starts a long-running process (a simulator) with its output appended to a log file; `environment`, when
    /// given, is its whole environment (else it inherits this process's).
    public static func spawn(
        _ executable: String,
        _ arguments: [String],
        log: String,
        environment: [String: String]? = nil
    ) throws -> SpawnedProcess {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return SpawnedProcess(process)
    }
}

/// A running child process that is stopped when asked (or when this value goes away).
public final class SpawnedProcess: Sendable {
    private let process: LockedProcess

    init(_ process: Process) {
        self.process = LockedProcess()
        self.process.set(process)
    }

    /// The process ID.
    public var pid: Int32 { process.get()?.processIdentifier ?? 0 }

    /// Whether it still runs.
    public var isRunning: Bool { process.get()?.isRunning ?? false }

    /// Sends SIGTERM (or the given signal) and waits for the exit; returns the exit status (`nil` when it was
    /// stopped already).
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32? {
        guard let process = process.take() else { return nil }
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { stop(signal: SIGKILL) }
}
