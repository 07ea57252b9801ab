import Foundation
import KyukyuVault

extension GatewayConfiguration {
    /// Checks what the configuration points at, without creating or changing anything: the hospitals' list, the
    /// configured HTTPS certificate and key, the terminal's certificate, key and CA for onshi, the dispatch token,
    /// and the state folder's parent. Returns every problem found (empty: the gateway can start with these files).
    /// What `kyukyu-gateway check-config` runs after loading.
    public func checkReferencedFiles() -> [GatewayConfigurationError] {
        var problems: [GatewayConfigurationError] = []
        do {
            _ = try hospitals()
        } catch {
            problems.append(error)
        }
        if let certificatePath = http.tls.certificatePath, let keyPath = http.tls.keyPath {
            do {
                _ = try Self.readConfiguredMaterial(certificatePath: certificatePath, keyPath: keyPath)
            } catch {
                problems.append(error)
            }
        }
        let onshi = GatewayConfigurationKey.onshiTLSDirectory.name
        let folder = self.onshi.tlsDirectory
        for (file, isKey) in [
            ("\(terminal.id).cert.pem", false), ("\(terminal.id).key.pem", true), ("ca.cert.pem", false),
        ] {
            let path = folder + "/" + file
            guard FileManager.default.isReadableFile(atPath: path) else {
                problems.append(
                    .fileSystem(
                        key: onshi,
                        reason:
                            "\(path) is missing or unreadable: onshi's terminal certificate, its key and onshi's CA "
                            + "must be in \(onshi) (\(folder)), named after terminal.id (\(terminal.id))"
                    )
                )
                continue
            }
            if isKey {
                do {
                    try FilePermissions.requirePrivate(path: path)
                } catch {
                    problems.append(
                        .fileSystem(key: onshi, reason: "\(path): \((error as? VaultError)?.reason ?? "\(error)")")
                    )
                }
            }
        }
        if let tokenFile = dispatch.tokenFile {
            let key = GatewayConfigurationKey.dispatchTokenFile.name
            if let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) {
                if token.trimmingCharacters(in: .whitespacesAndNewlines).count < 16 {
                    problems.append(.fileSystem(key: key, reason: "\(tokenFile) holds fewer than 16 characters"))
                }
            } else {
                problems.append(.fileSystem(key: key, reason: "\(tokenFile) is missing or unreadable"))
            }
        }
        let parent = (stateDirectory as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: stateDirectory, isDirectory: &isDirectory) {
            if !isDirectory.boolValue || !FileManager.default.isWritableFile(atPath: stateDirectory) {
                problems.append(
                    .fileSystem(
                        key: GatewayConfigurationKey.stateDirectory.name,
                        reason: "\(stateDirectory) is not a folder this user can write"
                    )
                )
            }
        } else if !parent.isEmpty, !FileManager.default.isWritableFile(atPath: parent) {
            problems.append(
                .fileSystem(
                    key: GatewayConfigurationKey.stateDirectory.name,
                    reason: "\(stateDirectory) does not exist and \(parent) is not writable, so it cannot be made"
                )
            )
        }
        return problems
    }
}
