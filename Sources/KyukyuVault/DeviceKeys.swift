import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The identifier of one device wrapping key, recorded next to every wrapped data key.
public struct DeviceKeyID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The identifier text, `dk-` followed by 16 hex digits.
    public let rawValue: String

    /// Wraps an identifier text.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A fresh random identifier.
    static func random() -> DeviceKeyID {
        DeviceKeyID(rawValue: "dk-" + hex(randomBytes(8)))
    }

    /// The identifier text.
    public var description: String { self.rawValue }

    /// Decodes the identifier text.
    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    /// Encodes the identifier text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.rawValue)
    }
}

/// The secrets a device holds: the wrapping keys for incident data keys, the audit HMAC key and the
/// audit signing key.
///
/// - The *current* wrapping key wraps every new data key; older wrapping keys stay in the keyring only
///   until ``IncidentVault/rewrapDataKeys()`` has re-wrapped the data keys that still use them.
/// - The audit key turns certificate serials into keyed hashes, so the audit trail never holds a serial.
/// - The signing key (Ed25519) signs the audit chain head.
///
/// The raw key bytes never leave this type except through the serialized keyring a provider stores.
public struct DeviceKeyring: Sendable {
    /// The identifier of the wrapping key used for new incidents.
    public let currentKeyID: DeviceKeyID
    let wrappingKeys: [DeviceKeyID: Data]
    let auditKey: Data
    let signingKey: Data

    private init(currentKeyID: DeviceKeyID, wrappingKeys: [DeviceKeyID: Data], auditKey: Data, signingKey: Data) {
        self.currentKeyID = currentKeyID
        self.wrappingKeys = wrappingKeys
        self.auditKey = auditKey
        self.signingKey = signingKey
    }

    /// Generates a keyring with fresh random keys.
    public static func generate() -> DeviceKeyring {
        let id = DeviceKeyID.random()
        return DeviceKeyring(
            currentKeyID: id,
            wrappingKeys: [id: randomBytes(32)],
            auditKey: randomBytes(32),
            signingKey: Curve25519.Signing.PrivateKey().rawRepresentation
        )
    }

    /// All wrapping key identifiers in the keyring, current one included, sorted.
    public var wrappingKeyIDs: [DeviceKeyID] { self.wrappingKeys.keys.sorted { $0.rawValue < $1.rawValue } }

    /// The identifiers of wrapping keys that are kept only to unwrap data keys not yet re-wrapped.
    public var retiredKeyIDs: [DeviceKeyID] { self.wrappingKeyIDs.filter { $0 != self.currentKeyID } }

    /// The audit signing public key, raw 32-byte Ed25519 representation.
    public var signingPublicKey: Data {
        // The stored key was validated when the keyring was built.
        (try? Curve25519.Signing.PrivateKey(rawRepresentation: self.signingKey))?.publicKey.rawRepresentation ?? Data()
    }

    /// A keyring whose current wrapping key is a new random one; the previous keys stay as retired keys.
    public func addingWrappingKey() -> DeviceKeyring {
        let id = DeviceKeyID.random()
        var keys = self.wrappingKeys
        keys[id] = randomBytes(32)
        return DeviceKeyring(currentKeyID: id, wrappingKeys: keys, auditKey: self.auditKey, signingKey: self.signingKey)
    }

    /// A keyring without the retired wrapping keys. Only safe after every data key has been re-wrapped.
    public func removingRetiredKeys() -> DeviceKeyring {
        DeviceKeyring(
            currentKeyID: self.currentKeyID,
            wrappingKeys: [self.currentKeyID: self.wrappingKeys[self.currentKeyID]!],
            auditKey: self.auditKey,
            signingKey: self.signingKey
        )
    }

    func wrappingKey(_ id: DeviceKeyID) throws -> SymmetricKey {
        guard let bytes = self.wrappingKeys[id] else {
            throw VaultError.unknownDeviceKey(reason: "wrapping key \(id) is not in the device keyring")
        }
        return SymmetricKey(data: bytes)
    }

    var currentWrappingKey: SymmetricKey { SymmetricKey(data: self.wrappingKeys[self.currentKeyID]!) }

    func makeSigningKey() throws -> Curve25519.Signing.PrivateKey {
        try Curve25519.Signing.PrivateKey(rawRepresentation: self.signingKey)
    }

    // MARK: Serialization

    private struct Stored: Codable {
        struct WrappingKey: Codable {
            var id: String
            var key: String
        }
        var format: String
        var current: String
        var wrappingKeys: [WrappingKey]
        var auditKey: String
        var signingKey: String
    }

    static let formatName = "kyukyu-device-keyring/1"

    /// The keyring as the JSON document a provider stores (contains secrets: store with owner-only access).
    public func serialized() -> Data {
        let stored = Stored(
            format: Self.formatName,
            current: self.currentKeyID.rawValue,
            wrappingKeys: self.wrappingKeyIDs.map {
                .init(id: $0.rawValue, key: self.wrappingKeys[$0]!.base64EncodedString())
            },
            auditKey: self.auditKey.base64EncodedString(),
            signingKey: self.signingKey.base64EncodedString()
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? encoder.encode(stored)) ?? Data()
    }

    /// Parses and validates a serialized keyring.
    public init(serialized data: Data) throws {
        let stored: Stored
        do {
            stored = try JSONDecoder().decode(Stored.self, from: data)
        } catch {
            throw VaultError.deviceKeyUnavailable(reason: "the device keyring is not valid JSON")
        }
        guard stored.format == Self.formatName else {
            throw VaultError.deviceKeyUnavailable(reason: "unsupported device keyring format")
        }
        var keys: [DeviceKeyID: Data] = [:]
        for entry in stored.wrappingKeys {
            guard let bytes = Data(base64Encoded: entry.key), bytes.count == 32 else {
                throw VaultError.deviceKeyUnavailable(reason: "wrapping key \(entry.id) is not 32 bytes")
            }
            keys[DeviceKeyID(rawValue: entry.id)] = bytes
        }
        let current = DeviceKeyID(rawValue: stored.current)
        guard keys[current] != nil else {
            throw VaultError.deviceKeyUnavailable(reason: "the current wrapping key is missing from the keyring")
        }
        guard let audit = Data(base64Encoded: stored.auditKey), audit.count == 32 else {
            throw VaultError.deviceKeyUnavailable(reason: "the audit key is not 32 bytes")
        }
        guard let signing = Data(base64Encoded: stored.signingKey),
            (try? Curve25519.Signing.PrivateKey(rawRepresentation: signing)) != nil
        else {
            throw VaultError.deviceKeyUnavailable(reason: "the audit signing key is not an Ed25519 key")
        }
        self.init(currentKeyID: current, wrappingKeys: keys, auditKey: audit, signingKey: signing)
    }
}

/// A source of the device keyring (key file, systemd credential, hardware store…).
public protocol DeviceKeyProvider: Sendable {
    /// Loads the device keyring, failing with a ``VaultError`` if it is missing, malformed or
    /// insufficiently protected.
    func loadKeyring() throws -> DeviceKeyring
}

/// A device key provider that can also store a new keyring, which key rotation needs.
public protocol WritableDeviceKeyProvider: DeviceKeyProvider {
    /// Replaces the stored keyring atomically: after a crash either the old or the new one is there.
    func storeKeyring(_ keyring: DeviceKeyring) throws
}

/// A keyring in a file in the state folder, created on first use with mode 0600.
///
/// Loading refuses a file that is not a regular file owned by the current user, or that is
/// readable or writable by group or others (``VaultError/Code/keyFilePermissionsTooOpen``).
public struct KeyFileProvider: WritableDeviceKeyProvider {
    /// The path of the key file.
    public let path: String
    /// Whether a missing key file is created with fresh keys.
    public let createIfMissing: Bool

    /// The key file name used inside a state directory.
    public static let defaultFileName = "device-keyring.json"

    /// A provider for `path`; `createIfMissing` generates a keyring on first run.
    public init(path: String, createIfMissing: Bool = true) {
        self.path = path
        self.createIfMissing = createIfMissing
    }

    /// A provider for the default key file inside `stateDirectory`.
    public init(stateDirectory: String, createIfMissing: Bool = true) {
        self.init(path: stateDirectory + "/" + Self.defaultFileName, createIfMissing: createIfMissing)
    }

    /// Loads the keyring, creating it first if missing and allowed.
    public func loadKeyring() throws -> DeviceKeyring {
        var info = stat()
        if lstat(self.path, &info) != 0 {
            let code = errno
            guard code == ENOENT, self.createIfMissing else {
                throw VaultError.deviceKeyUnavailable(reason: "cannot stat key file \(self.path): \(errnoText(code))")
            }
            let keyring = DeviceKeyring.generate()
            try FileSecurity.writeAtomically(keyring.serialized(), to: self.path, createOnly: true)
            return try self.loadKeyring()
        }
        try FileSecurity.checkOwnerOnly(path: self.path, info: info)
        return try DeviceKeyring(serialized: try FileSecurity.read(path: self.path))
    }

    /// Atomically replaces the key file (write to a 0600 temporary file, fsync, rename, fsync folder).
    public func storeKeyring(_ keyring: DeviceKeyring) throws {
        try FileSecurity.writeAtomically(keyring.serialized(), to: self.path, createOnly: false)
    }
}

/// A keyring delivered as a systemd credential: `$CREDENTIALS_DIRECTORY/<name>`.
///
/// Set up with `LoadCredentialEncrypted=` (or `LoadCredential=`) in the unit; systemd places the
/// file on a non-swappable, per-service file system readable only by the service. The credential is
/// read-only: rotation is done by deploying a keyring that holds both the new and the retired key,
/// starting the service (which re-wraps data keys), then deploying the keyring without the retired key.
public struct SystemdCredentialProvider: DeviceKeyProvider {
    /// The credential name.
    public let name: String
    /// The credentials directory, normally from `$CREDENTIALS_DIRECTORY`.
    public let directory: String?

    /// A provider for credential `name`, read from `directory` or `$CREDENTIALS_DIRECTORY`.
    public init(name: String = "kyukyu-device-keyring", directory: String? = nil) {
        self.name = name
        self.directory = directory ?? ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    }

    /// Loads the keyring from the credential file; it must not be accessible to others.
    public func loadKeyring() throws -> DeviceKeyring {
        guard let directory, !directory.isEmpty else {
            throw VaultError.deviceKeyUnavailable(reason: "CREDENTIALS_DIRECTORY is not set")
        }
        guard !self.name.contains("/") else {
            throw VaultError.invalidArgument(reason: "a credential name cannot contain '/'")
        }
        let path = directory + "/" + self.name
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw VaultError.deviceKeyUnavailable(reason: "credential \(self.name) not found: \(errnoText(errno))")
        }
        // systemd makes credentials 0400 (or 0440 for a shared group); others must have no access.
        guard info.st_mode & 0o007 == 0 else {
            throw VaultError.keyFilePermissionsTooOpen(
                reason:
                    "credential \(self.name) is accessible to others (mode \(String(info.st_mode & 0o777, radix: 8)))"
            )
        }
        return try DeviceKeyring(serialized: try FileSecurity.read(path: path))
    }
}

/// A keyring held in memory, for tests and benchmarks.
public struct InMemoryKeyProvider: WritableDeviceKeyProvider {
    private let box: LockedBox<DeviceKeyring>

    /// A provider holding `keyring` (fresh keys by default).
    public init(keyring: DeviceKeyring = .generate()) { self.box = LockedBox(keyring) }

    /// Returns the held keyring.
    public func loadKeyring() throws -> DeviceKeyring { self.box.value }

    /// Replaces the held keyring.
    public func storeKeyring(_ keyring: DeviceKeyring) throws { self.box.value = keyring }
}

// MARK: - Helpers

final class LockedBox<Value: Sendable>: @unchecked Sendable {  // Safe: `_value` is only touched under `lock`.
    private let lock = NSLock()
    private var _value: Value

    init(_ value: Value) { self._value = value }

    var value: Value {
        get { self.lock.withLock { self._value } }
        set { self.lock.withLock { self._value = newValue } }
    }
}

func randomBytes(_ count: Int) -> Data {
    var generator = SystemRandomNumberGenerator()
    return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
}

func hex(_ data: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for byte in data {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// File-system calls for secrets and the state folder; the only place that turns errno into errors.
enum FileSecurity {
    static func checkOwnerOnly(path: String, info: stat) throws {
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

    static func read(path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw VaultError.deviceKeyUnavailable(reason: "cannot open \(path): \(errnoText(errno))")
        }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw VaultError.deviceKeyUnavailable(reason: "cannot read \(path): \(errnoText(errno))")
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return data
    }

    /// Writes `data` to a 0600 temporary file, fsyncs it, renames it over `path` and fsyncs the folder.
    /// With `createOnly`, an existing `path` is left alone (first-run race: the first writer wins).
    static func writeAtomically(_ data: Data, to path: String, createOnly: Bool) throws {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw VaultError.fileSystem(reason: "cannot create \(temporary): \(errnoText(errno))")
        }
        var ok = true
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    ok = false
                    return
                }
                offset += written
            }
        }
        if fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok else {
            unlink(temporary)
            throw VaultError.fileSystem(reason: "cannot write \(temporary): \(errnoText(errno))")
        }
        if createOnly {
            // link() fails if the target exists, so a concurrent first run cannot replace a key in use.
            if link(temporary, path) != 0 {
                let code = errno
                unlink(temporary)
                if code != EEXIST {
                    throw VaultError.fileSystem(reason: "cannot create \(path): \(errnoText(code))")
                }
            } else {
                unlink(temporary)
            }
        } else if rename(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            throw VaultError.fileSystem(reason: "cannot replace \(path): \(errnoText(code))")
        }
        try syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = fsync(fd)
    }

    /// Creates the state directory with mode 0700 if missing.
    static func ensureDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw VaultError.fileSystem(reason: "cannot create state directory \(path): \(errnoText(errno))")
        }
    }

    /// Creates an empty owner-only file if missing, so SQLite (which copies the main file's mode to
    /// its -wal and -shm files) never creates a world-readable database.
    static func touchOwnerOnly(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw VaultError.fileSystem(reason: "cannot create \(path): \(errnoText(errno))")
        }
        close(fd)
    }
}
