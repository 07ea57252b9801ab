import Foundation
import Testing

@testable import KyukyuVault

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Device key providers")
struct KeyProviderTests {
    @Test func keyFileIsCreatedOwnerOnlyAndReloaded() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let provider = KeyFileProvider(stateDirectory: directory)
        let first = try provider.loadKeyring()
        #expect(permissionBits(provider.path) == 0o600)
        let second = try provider.loadKeyring()
        #expect(first.currentKeyID == second.currentKeyID)
        #expect(first.signingPublicKey == second.signingPublicKey)
        #expect(!FileManager.default.fileExists(atPath: provider.path + ".tmp-\(getpid())"))
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o602, 0o620])
    func looserPermissionsAreRefused(_ looseMode: Int) throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let provider = KeyFileProvider(stateDirectory: directory)
        _ = try provider.loadKeyring()
        chmod(provider.path, mode_t(looseMode))
        #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) { try provider.loadKeyring() }
        do {
            _ = try provider.loadKeyring()
        } catch let error as VaultError {
            #expect(error.reason.contains("chmod 600"))
        }
        chmod(provider.path, 0o600)
        _ = try provider.loadKeyring()
    }

    @Test func symlinkedKeyFileIsRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let real = KeyFileProvider(path: directory + "/real.json")
        _ = try real.loadKeyring()
        symlink(directory + "/real.json", directory + "/link.json")
        #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) {
            try KeyFileProvider(path: directory + "/link.json").loadKeyring()
        }
    }

    @Test func missingKeyFileWithoutCreationIsAnError() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) {
            try KeyFileProvider(stateDirectory: directory, createIfMissing: false).loadKeyring()
        }
    }

    @Test func malformedKeyFileIsAnError() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/" + KeyFileProvider.defaultFileName
        #expect(
            FileManager.default.createFile(
                atPath: path,
                contents: Data("{}".utf8),
                attributes: [.posixPermissions: 0o600]
            )
        )
        #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) { try KeyFileProvider(path: path).loadKeyring() }
    }

    @Test func systemdCredentialIsRead() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let keyring = DeviceKeyring.generate()
        let path = directory + "/kyukyu-device-keyring"
        _ = FileManager.default.createFile(
            atPath: path,
            contents: keyring.serialized(),
            attributes: [.posixPermissions: 0o400]
        )
        let loaded = try SystemdCredentialProvider(directory: directory).loadKeyring()
        #expect(loaded.currentKeyID == keyring.currentKeyID)
        chmod(path, 0o444)
        #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) {
            try SystemdCredentialProvider(directory: directory).loadKeyring()
        }
        #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) {
            try SystemdCredentialProvider(name: "absent", directory: directory).loadKeyring()
        }
        #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) {
            try SystemdCredentialProvider(directory: "").loadKeyring()
        }
    }

    @Test func keyringRoundTripsAndRotates() throws {
        let keyring = DeviceKeyring.generate()
        let reloaded = try DeviceKeyring(serialized: keyring.serialized())
        #expect(reloaded.currentKeyID == keyring.currentKeyID)
        #expect(reloaded.wrappingKeyIDs == keyring.wrappingKeyIDs)
        let rotated = keyring.addingWrappingKey()
        #expect(rotated.retiredKeyIDs == [keyring.currentKeyID])
        #expect(rotated.removingRetiredKeys().wrappingKeyIDs == [rotated.currentKeyID])
        #expect(rotated.signingPublicKey == keyring.signingPublicKey)
    }

    @Test func rotationOnAKeyFileVault() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let capture = LogCapture()
        let vault = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        let id = try await vault.createIncident()
        try await vault.putRecord(incident: id, kind: .patient, payload: Data("p".utf8))
        let provider = KeyFileProvider(stateDirectory: directory)
        let report = try await vault.rotateDeviceKey(provider: provider)
        #expect(permissionBits(provider.path) == 0o600)
        #expect(try provider.loadKeyring().currentKeyID == report.current)
        #expect(try provider.loadKeyring().retiredKeyIDs.isEmpty)
        let reopened = try await IncidentVault.open(stateDirectory: directory, logger: capture.logger())
        #expect(try await reopened.records(incident: id, viewer: testCrew).first?.payload == Data("p".utf8))
        #expect(try await reopened.audit.verify().isIntact)
    }

    @Test func lostKeyFileIsNotSilentlyReplaced() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        _ = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        try FileManager.default.removeItem(atPath: directory + "/" + KeyFileProvider.defaultFileName)
        await #expect(throws: VaultError.deviceKeyUnavailable(reason: "")) {
            _ = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/" + KeyFileProvider.defaultFileName))
    }

    @Test func openRefusesLooseKeyFile() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        _ = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        chmod(directory + "/" + KeyFileProvider.defaultFileName, 0o644)
        await #expect(throws: VaultError.keyFilePermissionsTooOpen(reason: "")) {
            _ = try await IncidentVault.open(stateDirectory: directory, logger: LogCapture().logger())
        }
    }
}
