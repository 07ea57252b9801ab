import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Owner-only files and folders of the receiver's state (database, keys, certificates' keys).
enum PrivateFiles {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a POSIX call, retrying on EINTR; `-1` becomes a ``Failure`` naming `what` and errno's text.
    static func call<T: FixedWidthInteger>(_ what: @autoclosure () -> String, _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result == -1 {
                let code = errno
                if code == EINTR { continue }
                throw Failure(description: "\(what()): \(String(cString: strerror(code)))")
            }
            return result
        }
    }

    /// Creates `path` (and parents) with mode 0700; an existing folder loses its group and other bits.
    static func ensureDirectory(_ path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(
                atPath: path,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        }
        let fd = try call("cannot open \(path)") { open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        defer { close(fd) }
        _ = try call("cannot restrict \(path)") { fchmod(fd, 0o700) }
    }

    /// Creates `path` empty with mode 0600 if missing; an existing file must be a regular file (no symbolic link)
    /// and loses its group and other bits.
    static func touch(_ path: String) throws {
        let fd = try call("cannot open \(path)") { open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        defer { close(fd) }
        let type = try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
        guard type == .typeRegular else { throw Failure(description: "\(path) is not a regular file") }
        _ = try call("cannot restrict \(path)") { fchmod(fd, 0o600) }
    }

    /// Removes group and other bits of an existing file.
    static func restrict(_ path: String) throws {
        _ = try call("cannot restrict \(path)") { chmod(path, 0o600) }
    }

    /// Writes a new file with `mode` (refusing to replace one: `O_EXCL`), fsyncs it.
    static func create(_ path: String, _ data: Data, mode: mode_t) throws {
        let fd = try call("cannot create \(path)") {
            open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        }
        defer { close(fd) }
        var written = 0
        while written < data.count {
            written += try data.withUnsafeBytes { raw in
                try call("cannot write \(path)") { write(fd, raw.baseAddress! + written, raw.count - written) }
            }
        }
        _ = try call("cannot fsync \(path)") { fsync(fd) }
        _ = try call("cannot set the mode of \(path)") { fchmod(fd, mode) }
    }

    /// A secret from a file that only its owner may read (a systemd credential is): the first line, trimmed; a
    /// problem in words otherwise.
    static func readSecret(_ path: String) -> Result<String, SecretFileProblem> {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else { return .failure(SecretFileProblem("\(path) does not exist")) }
        guard mode & 0o077 == 0 else {
            return .failure(SecretFileProblem("\(path) may be read by others (chmod 600)"))
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4096,
            let text = String(data: data, encoding: .utf8)
        else { return .failure(SecretFileProblem("\(path) cannot be read as a short UTF-8 text")) }
        let secret =
            text.split(whereSeparator: \.isNewline).first.map(String.init)?
            .trimmingCharacters(in: .whitespaces) ?? ""
        guard !secret.isEmpty else { return .failure(SecretFileProblem("\(path) is empty")) }
        return .success(secret)
    }
}

/// Why a secret file cannot be used (never the secret).
struct SecretFileProblem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
