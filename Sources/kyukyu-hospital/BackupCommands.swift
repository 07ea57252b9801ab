import ArgumentParser
import Foundation
import KyukyuReceiver

/// `kyukyu-hospital backup --out DIR [--include-keys]`.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up the receiver's databases while it serves (SQLite's online backup), with a manifest.",
        discussion: """
            The documents are sealed with <state>/device-keyring.json. Without --include-keys the backup holds \
            ciphertext only: keep the keyring and staff-secret.key apart (offline, or with another custodian), and \
            give them to restore with --keys-from. With --include-keys they, and the CA, go into <out>/keys (0600): \
            the backup is then as sensitive as the receiver. docs/operations.md says how to keep each.
            """
    )

    @OptionGroup var state: StateOptions

    @Option(help: "The folder to write the backup to (must not exist, or be empty).")
    var out: String

    @Flag(help: "Put the keyring, the staff key and the CA in the backup too.")
    var includeKeys = false

    func run() async throws {
        do {
            let manifest = try HospitalBackup.backup(
                stateDirectory: state.stateDirectory,
                tlsDirectory: state.tlsDirectory ?? state.stateDirectory + "/pki",
                to: out,
                includeKeys: includeKeys
            )
            print("backup of \(manifest.documentVersions) document versions written to \(out)")
            if !includeKeys {
                print(
                    "the keys are not in it: back up \(state.stateDirectory)/device-keyring.json and "
                        + "staff-secret.key apart from it, or the backup cannot be read"
                )
            }
        } catch {
            throw CommandFailure(error.reason)
        }
    }
}

/// `kyukyu-hospital restore --from DIR --state-dir NEW [--keys-from DIR]`.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a new, empty state folder; check every file and decrypt every document.",
        discussion: """
            Never overwrites: --state-dir must not exist, or be empty. Start the receiver on the restored folder \
            afterwards (serve --state-directory). A backup made without its keys needs --keys-from.
            """
    )

    @OptionGroup var state: StateOptions

    @Option(help: "The backup folder.")
    var from: String

    @Option(help: "The folder holding device-keyring.json and staff-secret.key (and pki/), for a backup without keys.")
    var keysFrom: String?

    func run() async throws {
        do {
            let count = try await HospitalBackup.restore(
                from: from,
                stateDirectory: state.stateDirectory,
                tlsDirectory: state.tlsDirectory ?? state.stateDirectory + "/pki",
                keysDirectory: keysFrom,
                hospital: try state.hospitalCode()
            )
            print("restored into \(state.stateDirectory): \(count) document versions decrypt")
        } catch let error as ReceiverError {
            throw CommandFailure(error.reason)
        }
    }
}
