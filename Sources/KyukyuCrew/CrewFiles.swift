public import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - The one errno wrapper

/// Runs a POSIX call that returns `-1` and sets `errno` on failure: retries on `EINTR` and reads `errno` at once.
/// Every file-system call of this module goes through here (swift-nio's `syscall` is the model).
@inline(__always)
func posixCall<T: FixedWidthInteger>(_ body: () -> T) -> Result<T, POSIXErrno> {
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

/// An errno value from ``posixCall(_:)``.
struct POSIXErrno: Error, Equatable {
    var code: Int32
    var text: String { String(cString: strerror(self.code)) }
}

extension Result where Failure == POSIXErrno {
    /// The value, or a ``CrewError/storage(reason:file:line:)`` saying `what` failed and why.
    func orStorage(_ what: @autoclosure () -> String) throws(CrewError) -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let error): throw .storage(reason: "\(what()): \(error.text)")
        }
    }
}

// MARK: - Private files and folders

/// The crew database's folder and files: owner-only, never through a symbolic link.
enum CrewFiles {
    /// Creates `path` (and missing parents) with mode 0700; an existing folder must be a real directory of the
    /// effective user, and loses its group and other bits.
    static func ensurePrivateDirectory(_ path: String) throws(CrewError) {
        if !FileManager.default.fileExists(atPath: path) {
            do {
                try FileManager.default.createDirectory(
                    atPath: path,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            } catch {
                throw .storage(reason: "cannot create the crew database folder \(path)")
            }
        }
        let fd: Int32
        switch posixCall({ open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }) {
        case .success(let opened):
            fd = opened
        case .failure(let error) where error.code == ELOOP || error.code == ENOTDIR:
            throw .storage(reason: "the crew database folder \(path) is not a plain directory (a symbolic link?)")
        case .failure(let error):
            throw .storage(reason: "cannot open the crew database folder \(path): \(error.text)")
        }
        defer { close(fd) }
        try self.restrict(fd, path: path, mode: 0o700)
    }

    /// Opens (with `create`, creating with mode 0600) a file without following a symbolic link; it must be a
    /// regular file of the effective user, and loses its group and other bits. A missing file without `create` is
    /// left alone.
    static func ensurePrivateFile(_ path: String, create: Bool) throws(CrewError) {
        let flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd: Int32
        switch posixCall({ open(path, flags, 0o600) }) {
        case .success(let opened):
            fd = opened
        case .failure(let error) where error.code == ENOENT && !create:
            return
        case .failure(let error) where error.code == ELOOP:
            throw .storage(reason: "\(path) is a symbolic link; the crew database must be a regular file")
        case .failure(let error):
            throw .storage(reason: "cannot open \(path): \(error.text)")
        }
        defer { close(fd) }
        let info = try self.status(fd, path: path)
        guard info.st_mode & S_IFMT == S_IFREG else { throw .storage(reason: "\(path) is not a regular file") }
        try self.restrict(fd, path: path, mode: 0o600)
    }

    static func status(_ fd: Int32, path: String) throws(CrewError) -> stat {
        var info = stat()
        _ = try posixCall({ fstat(fd, &info) }).orStorage("cannot stat \(path)")
        return info
    }

    private static func restrict(_ fd: Int32, path: String, mode: mode_t) throws(CrewError) {
        let info = try self.status(fd, path: path)
        guard info.st_uid == geteuid() else { throw .storage(reason: "\(path) is not owned by the current user") }
        guard info.st_mode & 0o077 != 0 else { return }
        _ = try posixCall({ fchmod(fd, info.st_mode & 0o777 & ~0o077) })
            .orStorage("cannot restrict \(path) to mode \(String(mode, radix: 8))")
    }
}

// MARK: - The secret key file

/// The key that seals the crew's TOTP secrets, kept in a file of its own (so that a copy of `crew.sqlite` alone
/// yields no secret). The gateway may derive the key differently; the `crew` command uses this file.
public enum CrewSecretKey {
    /// The key file's name in a state folder.
    public static let fileName = "crew-secret.key"

    /// Reads the 32-byte key at `path`; with `create`, makes it (32 random bytes, mode 0600, folder 0700) when it is
    /// missing. The file must be a regular file of the current user with no group or other permission bits (a
    /// symbolic link is refused), and exactly 32 bytes long.
    public static func load(path: String, create: Bool) throws(CrewError) -> SymmetricKey {
        let folder = (path as NSString).deletingLastPathComponent
        if create {
            try CrewFiles.ensurePrivateDirectory(folder.isEmpty ? "." : folder)
            try self.createIfMissing(path)
        }
        let fd: Int32
        switch posixCall({ open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }) {
        case .success(let opened):
            fd = opened
        case .failure(let error) where error.code == ELOOP:
            throw .storage(reason: "\(path) is a symbolic link; the crew key must be a regular file")
        case .failure(let error) where error.code == ENOENT:
            throw .storage(reason: "no crew key at \(path)")
        case .failure(let error):
            throw .storage(reason: "cannot open the crew key \(path): \(error.text)")
        }
        defer { close(fd) }
        let info = try CrewFiles.status(fd, path: path)
        guard info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid() else {
            throw .storage(reason: "the crew key \(path) must be a regular file of the current user")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw .storage(
                reason: "the crew key \(path) has mode \(String(info.st_mode & 0o777, radix: 8)); "
                    + "it must be 600 (run: chmod 600 \(path))"
            )
        }
        var bytes = [UInt8](repeating: 0, count: 33)
        var count = 0
        while count < bytes.count {
            let got = try bytes.withUnsafeMutableBytes { raw in
                posixCall({ read(fd, raw.baseAddress! + count, raw.count - count) })
            }.orStorage("cannot read the crew key \(path)")
            if got == 0 { break }
            count += got
        }
        guard count == 32 else {
            throw .storage(reason: "the crew key \(path) must be exactly 32 bytes")
        }
        return SymmetricKey(data: bytes[0..<32])
    }

    /// Writes a new key to a temporary file, fsyncs it, and links it into place: a crash leaves no short key, and
    /// of two first runs the first one's key wins.
    private static func createIfMissing(_ path: String) throws(CrewError) {
        if case .success(let fd) = posixCall({ open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }) {
            close(fd)
            return
        }
        let temporary = path + ".tmp-\(getpid())"
        _ = posixCall { unlink(temporary) }
        let fd = try posixCall({ open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) })
            .orStorage("cannot create the crew key \(temporary)")
        defer { _ = posixCall { unlink(temporary) } }
        do {
            defer { close(fd) }
            let key = randomBytes(32)
            var written = 0
            while written < key.count {
                written += try key.withUnsafeBytes { raw in
                    posixCall({ write(fd, raw.baseAddress! + written, raw.count - written) })
                }.orStorage("cannot write the crew key \(temporary)")
            }
            _ = try posixCall({ fsync(fd) }).orStorage("cannot fsync the crew key \(temporary)")
        }
        if case .failure(let error) = posixCall({ link(temporary, path) }), error.code != EEXIST {
            throw .storage(reason: "cannot create the crew key \(path): \(error.text)")
        }
    }
}
