public import Crypto
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

    /// A 256-bit key for another service's own sealing (the hospital receiver's documents), derived with
    /// HKDF-SHA256 from wrapping key `keyID` (the current one when `nil`) and `purpose`; the wrapping key itself
    /// never leaves the keyring. Store the key ID beside what it seals: a rotated keyring still derives the old
    /// key while the retired wrapping key is kept.
    public func derivedKey(purpose: String, keyID: DeviceKeyID? = nil) throws -> SymmetricKey {
        let base = try self.wrappingKey(keyID ?? self.currentKeyID)
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: base,
            info: Data(("kyukyu-derived-key/1 " + purpose).utf8),
            outputByteCount: 32
        )
    }

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
/// Loading opens the file with `O_NOFOLLOW` and checks the opened descriptor with `fstat`: it must be a
/// regular file owned by the current user, not readable or writable by group or others
/// (``VaultError/Code/keyFilePermissionsTooOpen``). While `$CREDENTIALS_DIRECTORY` is set (the service
/// runs with systemd credentials), a missing key file is never created: the keyring must come from the
/// credential, and a plaintext key beside the data would silently defeat it.
public struct KeyFileProvider: WritableDeviceKeyProvider {
    /// The path of the key file.
    public let path: String
    /// Whether a missing key file is created with fresh keys.
    public let createIfMissing: Bool
    /// The credentials directory seen at creation (`$CREDENTIALS_DIRECTORY`); when set, creation is refused.
    public let credentialsDirectory: String?

    /// The key file name used inside a state directory.
    public static let defaultFileName = "device-keyring.json"

    /// A provider for `path`; `createIfMissing` generates a keyring on first run (never while
    /// `credentialsDirectory`, by default `$CREDENTIALS_DIRECTORY`, is set).
    public init(
        path: String,
        createIfMissing: Bool = true,
        credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    ) {
        self.path = path
        self.createIfMissing = createIfMissing
        self.credentialsDirectory = credentialsDirectory.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A provider for the default key file inside `stateDirectory`.
    public init(
        stateDirectory: String,
        createIfMissing: Bool = true,
        credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    ) {
        self.init(
            path: stateDirectory + "/" + Self.defaultFileName,
            createIfMissing: createIfMissing,
            credentialsDirectory: credentialsDirectory
        )
    }

    /// The lock file next to the key file, held by rotation (exclusive) and by wraps of new data keys (shared).
    public var lockPath: String { self.path + ".lock" }

    /// Loads the keyring, creating it first if missing and allowed. Blocking (file I/O, fsync on creation).
    public func loadKeyring() throws -> DeviceKeyring {
        let fd: Int32
        switch syscallResult({ open(self.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }) {
        case .success(let opened):
            fd = opened
        case .failure(let error) where error.code == ENOENT:
            guard self.createIfMissing else {
                throw VaultError.deviceKeyUnavailable(reason: "key file \(self.path) is missing")
            }
            if let credentialsDirectory {
                throw VaultError.deviceKeyUnavailable(
                    reason: "CREDENTIALS_DIRECTORY is set (\(credentialsDirectory)): refusing to create a plaintext "
                        + "key file; deliver the keyring as credential \(SystemdCredentialProvider.defaultName)"
                )
            }
            try FileSecurity.writeAtomically(DeviceKeyring.generate().serialized(), to: self.path, createOnly: true)
            return try self.loadKeyring()
        case .failure(let error) where error.code == ELOOP:
            throw VaultError.keyFilePermissionsTooOpen(reason: "\(self.path) is a symbolic link, not a regular file")
        case .failure(let error):
            throw VaultError.deviceKeyUnavailable(reason: "cannot open key file \(self.path): \(error.text)")
        }
        defer { close(fd) }
        // The checks run on the descriptor that is then read: nothing can be swapped in between.
        try FileSecurity.checkOwnerOnly(path: self.path, descriptor: fd)
        return try DeviceKeyring(serialized: try FileSecurity.readAll(fd, path: self.path))
    }

    /// Atomically replaces the key file (write to a 0600 temporary file, fsync, rename, fsync folder).
    /// Blocking.
    public func storeKeyring(_ keyring: DeviceKeyring) throws {
        try FileSecurity.writeAtomically(keyring.serialized(), to: self.path, createOnly: false)
    }
}

/// A keyring delivered as a systemd credential: `$CREDENTIALS_DIRECTORY/kyukyu-device-keyring`.
///
/// Set up with `LoadCredentialEncrypted=` (or `LoadCredential=`) in the unit; systemd places the
/// file on a non-swappable, per-service file system readable only by the service. The credential is
/// read-only: rotation is done by deploying a keyring that holds both the new and the retired key,
/// starting the service (which re-wraps data keys), then deploying the keyring without the retired key.
public struct SystemdCredentialProvider: DeviceKeyProvider {
    /// The one credential name the vault reads (and deploy/README.md and docs/vault.md name).
    public static let defaultName = "kyukyu-device-keyring"

    /// The credential name.
    public let name: String
    /// The credentials directory, normally from `$CREDENTIALS_DIRECTORY`.
    public let directory: String?

    /// A provider for credential `name`, read from `directory` or `$CREDENTIALS_DIRECTORY`.
    public init(name: String = SystemdCredentialProvider.defaultName, directory: String? = nil) {
        self.name = name
        self.directory = directory ?? ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    }

    /// Loads the keyring from the credential file (opened with `O_NOFOLLOW`, checked with `fstat`); it must
    /// be a regular file that others cannot access.
    public func loadKeyring() throws -> DeviceKeyring {
        guard let directory, !directory.isEmpty else {
            throw VaultError.deviceKeyUnavailable(reason: "CREDENTIALS_DIRECTORY is not set")
        }
        guard !self.name.contains("/") else {
            throw VaultError.invalidArgument(reason: "a credential name cannot contain '/'")
        }
        let path = directory + "/" + self.name
        let fd: Int32
        switch syscallResult({ open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }) {
        case .success(let opened):
            fd = opened
        case .failure(let error) where error.code == ELOOP:
            throw VaultError.keyFilePermissionsTooOpen(reason: "credential \(self.name) is a symbolic link")
        case .failure(let error):
            throw VaultError.deviceKeyUnavailable(
                reason: "credential \(self.name) cannot be read from $CREDENTIALS_DIRECTORY: \(error.text)"
            )
        }
        defer { close(fd) }
        let info = try FileSecurity.fstatDescriptor(fd, path: path)
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw VaultError.keyFilePermissionsTooOpen(reason: "credential \(self.name) is not a regular file")
        }
        // systemd makes credentials 0400 (or 0440 for a shared group); others must have no access.
        guard info.st_mode & 0o007 == 0 else {
            throw VaultError.keyFilePermissionsTooOpen(
                reason:
                    "credential \(self.name) is accessible to others (mode \(String(info.st_mode & 0o777, radix: 8)))"
            )
        }
        return try DeviceKeyring(serialized: try FileSecurity.readAll(fd, path: path))
    }
}

/// Where the device keyring comes from (`--key-source`).
public enum DeviceKeySource: String, Sendable, CaseIterable {
    /// The systemd credential whenever `$CREDENTIALS_DIRECTORY` is set (failing closed if it is missing),
    /// otherwise the key file.
    case auto
    /// The key file in the state folder; refused while `$CREDENTIALS_DIRECTORY` is set.
    case file
    /// The systemd credential only.
    case credential

    /// The provider for this source.
    ///
    /// Fails closed: while `$CREDENTIALS_DIRECTORY` is set (in `environment`), the keyring comes only from
    /// the credential ``SystemdCredentialProvider/defaultName``; a missing or unreadable credential is an
    /// error when loading, never a fallback to a key file, and `.file` is refused.
    ///
    /// - Parameter createIfMissing: whether a key file may be generated (first run without credentials).
    public func provider(
        stateDirectory: String,
        createIfMissing: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> any DeviceKeyProvider {
        let credentialsDirectory = environment["CREDENTIALS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }
        switch self {
        case .credential:
            return SystemdCredentialProvider(directory: credentialsDirectory ?? "")
        case .auto:
            if let credentialsDirectory { return SystemdCredentialProvider(directory: credentialsDirectory) }
            return KeyFileProvider(
                stateDirectory: stateDirectory,
                createIfMissing: createIfMissing,
                credentialsDirectory: nil
            )
        case .file:
            if credentialsDirectory != nil {
                throw VaultError.deviceKeyUnavailable(
                    reason: "CREDENTIALS_DIRECTORY is set: the keyring must come from credential "
                        + "\(SystemdCredentialProvider.defaultName), not from a key file"
                )
            }
            return KeyFileProvider(
                stateDirectory: stateDirectory,
                createIfMissing: createIfMissing,
                credentialsDirectory: nil
            )
        }
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
