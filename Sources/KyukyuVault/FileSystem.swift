import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - The one errno wrapper

/// Runs a POSIX call that returns `-1` and sets `errno` on failure: retries on `EINTR`, reads `errno`
/// at once (before anything else can overwrite it) and turns a failure into a ``VaultError`` made by
/// `error` from the errno value. Every file-system call of this module goes through here (swift-nio's
/// `syscall` in `Sources/NIOPosix/System.swift` is the model).
@inline(__always)
func syscall<T: FixedWidthInteger>(
    _ body: () -> T,
    error: (Int32) -> VaultError
) throws -> T {
    while true {
        let result = body()
        if result == -1 {
            let code = errno
            if code == EINTR { continue }
            throw error(code)
        }
        return result
    }
}

/// The same, for calls where the caller needs the errno value itself (for example `ENOENT` or `EEXIST`
/// are expected): returns the result or the errno, retrying on `EINTR`.
@inline(__always)
func syscallResult<T: FixedWidthInteger>(_ body: () -> T) -> Result<T, POSIXErrno> {
    while true {
        let result = body()
        if result == -1 {
            let code = errno
            if code == EINTR { continue }
            return .failure(POSIXErrno(code: code))
        }
        return .success(result)
    }
}

/// An errno value, as returned by ``syscallResult(_:)``.
struct POSIXErrno: Error, Equatable {
    var code: Int32
    var text: String { errnoText(self.code) }
}

func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

// MARK: - Off the cooperative pool

/// Runs blocking work (fsync, flock, reads of secrets) on a dedicated thread, so that it never blocks
/// one of the few threads of Swift's cooperative pool.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = "kyukyu.vault.blocking"
        thread.start()
    }
}

// MARK: - Public permission check

/// Checks of files that hold secrets but are not the vault's own (for example the terminal's TLS key).
public enum FilePermissions {
    /// Refuses a secret file that others could read or swap: opens `path` with `O_NOFOLLOW` (a symlink is
    /// refused) and checks the opened descriptor with `fstat` (no gap between check and use): it must be a
    /// regular file owned by the effective user with no group or other permission bits.
    ///
    /// Throws ``VaultError/Code/keyFilePermissionsTooOpen`` (with a `chmod 600` hint) or
    /// ``VaultError/Code/fileSystem`` (missing, unreadable).
    public static func requirePrivate(path: String) throws {
        let fd = try FileSecurity.openNoFollow(path, kind: "file")
        defer { close(fd) }
        try FileSecurity.checkOwnerOnly(path: path, descriptor: fd)
    }
}

// MARK: - File-system calls for secrets and the state folder

/// File-system calls for secrets and the state folder; errno becomes an error only through ``syscall``.
enum FileSecurity {
    /// Opens `path` read-only without following a symlink. A symlink fails with
    /// ``VaultError/Code/keyFilePermissionsTooOpen``; a missing file with `ENOENT` in a
    /// ``VaultError/Code/deviceKeyUnavailable`` unless `missing` handles it.
    static func openNoFollow(_ path: String, kind: String) throws -> Int32 {
        switch syscallResult({ open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }) {
        case .success(let fd):
            return fd
        case .failure(let error) where error.code == ELOOP:
            throw VaultError.keyFilePermissionsTooOpen(
                reason: "\(path) is a symbolic link; the \(kind) must be a regular file"
            )
        case .failure(let error):
            throw VaultError.fileSystem(reason: "cannot open \(kind) \(path): \(error.text)")
        }
    }

    static func fstatDescriptor(_ fd: Int32, path: String) throws -> stat {
        var info = stat()
        _ = try syscall({ fstat(fd, &info) }) { VaultError.fileSystem(reason: "cannot stat \(path): \(errnoText($0))") }
        return info
    }

    /// Checks, on the opened descriptor, that it is a regular file of the effective user, mode 0600 or stricter.
    static func checkOwnerOnly(path: String, descriptor fd: Int32) throws {
        let info = try fstatDescriptor(fd, path: path)
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw VaultError.keyFilePermissionsTooOpen(reason: "\(path) is not a regular file")
        }
        guard info.st_uid == geteuid() else {
            throw VaultError.keyFilePermissionsTooOpen(reason: "\(path) is not owned by the current user")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw VaultError.keyFilePermissionsTooOpen(
                reason: "\(path) has mode \(String(mode, radix: 8)); it must be 600 (run: chmod 600 \(path))"
            )
        }
    }

    /// Reads an open descriptor to its end.
    static func readAll(_ fd: Int32, path: String) throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try buffer.withUnsafeMutableBytes { raw in
                try syscall({ read(fd, raw.baseAddress, raw.count) }) {
                    VaultError.deviceKeyUnavailable(reason: "cannot read \(path): \(errnoText($0))")
                }
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return data
    }

    /// Writes `data` to a 0600 temporary file, fsyncs it, renames it over `path` and fsyncs the folder.
    /// With `createOnly`, an existing `path` is left alone (first-run race: the first writer wins).
    /// Blocking: call through ``runBlocking(_:)`` from async code.
    static func writeAtomically(_ data: Data, to path: String, createOnly: Bool) throws {
        let temporary = path + ".tmp-\(getpid())"
        _ = syscallResult { unlink(temporary) }
        let fd = try syscall({ open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }) {
            VaultError.fileSystem(reason: "cannot create \(temporary): \(errnoText($0))")
        }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    offset += try syscall({ write(fd, raw.baseAddress! + offset, raw.count - offset) }) {
                        VaultError.fileSystem(reason: "cannot write \(temporary): \(errnoText($0))")
                    }
                }
            }
            _ = try syscall({ fsync(fd) }) {
                VaultError.fileSystem(reason: "cannot fsync \(temporary): \(errnoText($0))")
            }
        } catch {
            _ = syscallResult { unlink(temporary) }
            throw error
        }
        defer { _ = syscallResult { unlink(temporary) } }
        if createOnly {
            // link() fails if the target exists, so a concurrent first run cannot replace a key in use.
            if case .failure(let error) = syscallResult({ link(temporary, path) }), error.code != EEXIST {
                throw VaultError.fileSystem(reason: "cannot create \(path): \(error.text)")
            }
        } else {
            _ = try syscall({ rename(temporary, path) }) {
                VaultError.fileSystem(reason: "cannot replace \(path): \(errnoText($0))")
            }
        }
        try syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = try syscall({ open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) {
            VaultError.fileSystem(reason: "cannot open folder of \(path): \(errnoText($0))")
        }
        defer { close(fd) }
        _ = try syscall({ fsync(fd) }) {
            VaultError.fileSystem(reason: "cannot fsync folder of \(path): \(errnoText($0))")
        }
    }

    /// Creates the state directory with mode 0700 if missing; if it exists, it must be a directory (not a
    /// symlink) owned by the effective user, and group/other bits are removed (fixed, not only reported).
    /// Returns whether the mode had to be fixed.
    @discardableResult
    static func ensurePrivateDirectory(_ path: String) throws -> Bool {
        if case .failure(let error) = syscallResult({ mkdir(path, 0o700) }), error.code != EEXIST {
            throw VaultError.fileSystem(reason: "cannot create state directory \(path): \(error.text)")
        }
        let fd: Int32
        switch syscallResult({ open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }) {
        case .success(let opened):
            fd = opened
        case .failure(let error) where error.code == ELOOP || error.code == ENOTDIR:
            throw VaultError.keyFilePermissionsTooOpen(reason: "state directory \(path) is not a plain directory")
        case .failure(let error):
            throw VaultError.fileSystem(reason: "cannot open state directory \(path): \(error.text)")
        }
        defer { close(fd) }
        return try self.restrict(fd, path: path, mode: 0o700, what: "state directory")
    }

    /// Creates an owner-only file if missing, so SQLite (which copies the main file's mode to its -wal and
    /// -shm files) never creates a readable database; an existing file must be a regular file of the
    /// effective user, and group/other bits are removed. Returns whether the mode had to be fixed.
    @discardableResult
    static func ensurePrivateFile(_ path: String, create: Bool) throws -> Bool {
        let flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd: Int32
        switch syscallResult({ open(path, flags, 0o600) }) {
        case .success(let opened):
            fd = opened
        case .failure(let error) where error.code == ENOENT && !create:
            return false
        case .failure(let error) where error.code == ELOOP:
            throw VaultError.keyFilePermissionsTooOpen(reason: "\(path) is a symbolic link")
        case .failure(let error):
            throw VaultError.fileSystem(reason: "cannot open \(path): \(error.text)")
        }
        defer { close(fd) }
        let info = try fstatDescriptor(fd, path: path)
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw VaultError.keyFilePermissionsTooOpen(reason: "\(path) is not a regular file")
        }
        return try self.restrict(fd, path: path, mode: 0o600, what: "file")
    }

    private static func restrict(_ fd: Int32, path: String, mode: mode_t, what: String) throws -> Bool {
        let info = try fstatDescriptor(fd, path: path)
        guard info.st_uid == geteuid() else {
            throw VaultError.keyFilePermissionsTooOpen(reason: "\(what) \(path) is not owned by the current user")
        }
        guard info.st_mode & 0o077 != 0 else { return false }
        _ = try syscall({ fchmod(fd, info.st_mode & 0o777 & ~0o077) }) {
            VaultError.fileSystem(reason: "cannot restrict \(path) to mode \(String(mode, radix: 8)): \(errnoText($0))")
        }
        return true
    }
}

// MARK: - Inter-process lock

/// An advisory `flock` on a lock file, held by one process at a time (exclusive) or by several (shared).
/// Taken by key rotation (exclusive) and by every wrap of a new data key (shared), so that no process
/// wraps under a key that a concurrent rotation is removing. Call ``release()`` exactly once.
struct FileLock: Sendable {
    private let fd: Int32

    /// Blocks until the lock is granted: call through ``runBlocking(_:)``.
    static func acquireBlocking(path: String, exclusive: Bool) throws -> FileLock {
        let fd = try syscall({ open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) }) {
            VaultError.fileSystem(reason: "cannot open lock file \(path): \(errnoText($0))")
        }
        do {
            _ = try syscall({ flock(fd, exclusive ? LOCK_EX : LOCK_SH) }) {
                VaultError.fileSystem(reason: "cannot lock \(path): \(errnoText($0))")
            }
        } catch {
            close(fd)
            throw error
        }
        return FileLock(fd: fd)
    }

    /// Takes the lock, waiting off the cooperative pool.
    static func acquire(path: String, exclusive: Bool) async throws -> FileLock {
        try await runBlocking { try FileLock.acquireBlocking(path: path, exclusive: exclusive) }
    }

    /// Releases the lock (closing the descriptor releases the `flock`; it does not block).
    func release() {
        close(self.fd)
    }
}
