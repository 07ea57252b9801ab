import ArgumentParser
import Foundation
import KyukyuReceiver

/// `kyukyu-hospital export --out DIR`: every stored version as a FHIR JSON file.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every stored document version as a FHIR JSON file (<set-uuid>-v<version>.json, mode 0600).",
        discussion: "The files hold patient data: the folder is made with mode 0700. Existing files are not replaced."
    )

    @OptionGroup var state: StateOptions

    @Option(help: "The folder to write to (created if missing).")
    var out: String

    func run() async throws {
        let store = try await state.openStore()
        do {
            let count = try await HospitalExport.documents(from: store, to: out)
            print("\(count) document versions written to \(out)")
        } catch {
            throw CommandFailure(error.reason)
        }
    }
}

/// `kyukyu-hospital anchors --device ID --out FILE`.
struct AnchorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anchors",
        abstract: "Write the audit anchors received from one device as JSON, for `kyukyu audit verify --anchors`."
    )

    @OptionGroup var state: StateOptions

    @Option(help: "The device id.")
    var device: String

    @Option(help: "The JSON file to write.")
    var out: String

    func run() async throws {
        let store = try await state.openStore()
        do {
            let count = try await HospitalExport.anchors(from: store, device: device, to: out)
            print("\(count) anchors of \(device) written to \(out)")
        } catch {
            throw CommandFailure(error.reason)
        }
    }
}
