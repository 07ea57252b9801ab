import ArgumentParser
import Foundation
import KyukyuDomain
import KyukyuReceiver

/// `kyukyu-hospital ca init`.
struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "The receiver's certificate authority.",
        subcommands: [Init.self]
    )

    /// `ca init`: the CA and the server certificate.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Make the CA (ca.cert.pem, ca.key.pem) and the server certificate (server.cert.pem, server.key.pem).",
            discussion: "Keys are written with mode 0600. An existing CA is never replaced."
        )

        /// `--hospital`: this hospital's 10-digit medical institution code, named in the CA's subject.
        @OptionGroup var state: StateOptions

        /// The CA's hospital: `--hospital`, or the demo hospital's code.
        var hospital: String { state.hospital ?? "1312345678" }

        @Option(
            name: .customLong("server-name"),
            help: "A DNS name or IPv4 address of the server (repeatable; default localhost and 127.0.0.1)."
        )
        var serverNames: [String] = []

        func validate() throws {
            guard HospitalCode(rawValue: hospital) != nil else { throw ValidationError("--hospital must be 10 digits") }
        }

        func run() async throws {
            let pki = state.pki
            do {
                try pki.initialize(
                    hospital: hospital,
                    serverNames: serverNames.isEmpty ? ["localhost", "127.0.0.1"] : serverNames
                )
            } catch {
                throw CommandFailure(error.reason)
            }
            print("CA and server certificate written to \(pki.directory)")
        }
    }
}

/// `kyukyu-hospital device issue|revoke|list`.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "The ambulances' client certificates.",
        subcommands: [Issue.self, Sign.self, Revoke.self, List.self]
    )

    /// `device issue --device ID --out DIR`.
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a client certificate for an ambulance and register the device.",
            discussion: "Writes <out>/<device>.cert.pem, <out>/<device>.key.pem (0600) and <out>/ca.cert.pem."
        )

        @OptionGroup var state: StateOptions

        @Option(help: "The device id (the certificate's CN): 1-64 of A-Z a-z 0-9 . _ -.")
        var device: String

        @Option(help: "The folder to write the certificate and key to.")
        var out: String

        func validate() throws {
            guard DeviceName.isValid(device) else {
                throw ValidationError("--device must be 1-64 of A-Z a-z 0-9 . _ -")
            }
        }

        func run() async throws {
            let store = try await state.openStore()
            do {
                let path = try state.pki.issueDevice(device, outDirectory: out)
                try await store.registerDevice(device)
                print("Certificate for \(device) written to \(path)")
            } catch {
                throw CommandFailure(error.reason)
            }
        }
    }

    /// `device sign --csr FILE --out FILE`.
    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign an ambulance's certificate signing request and register the device.",
            discussion: """
                The ambulance made the request with `kyukyu-gateway cert request hospital`, so its key never leaves \
                it. Writes the certificate followed by this CA's to --out, for `kyukyu-gateway cert install \
                hospital`.
                """
        )

        @OptionGroup var state: StateOptions

        @Option(help: "The signing request (PEM).")
        var csr: String

        @Option(help: "The file to write the certificate and the CA's to.")
        var out: String

        func run() async throws {
            let store = try await state.openStore()
            do {
                let request = try String(contentsOfFile: csr, encoding: .utf8)
                let signed = try state.pki.signDeviceRequest(request)
                try signed.certificatesPEM.write(toFile: out, atomically: true, encoding: .utf8)
                try await store.registerDevice(signed.device)
                print("Certificate for \(signed.device) written to \(out)")
            } catch let error as ReceiverError {
                throw CommandFailure(error.reason)
            } catch {
                throw CommandFailure("\(error)")
            }
        }
    }

    /// `device revoke --device ID`.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a device: its posts and streams are refused (403)."
        )

        @OptionGroup var state: StateOptions

        @Option(help: "The device id.")
        var device: String

        func run() async throws {
            let store = try await state.openStore()
            do {
                try await store.revokeDevice(device)
            } catch {
                throw CommandFailure(error.reason)
            }
            print("Device \(device) revoked.")
        }
    }

    /// `device list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registered devices.")

        @OptionGroup var state: StateOptions

        func run() async throws {
            let store = try await state.openStore()
            let devices: [DeviceRecord]
            do {
                devices = try await store.devices()
            } catch {
                throw CommandFailure(error.reason)
            }
            let formatter = ISO8601DateFormatter()
            for device in devices {
                let status = device.revokedAt.map { "revoked \(formatter.string(from: $0))" } ?? "active"
                print("\(device.id)  issued \(formatter.string(from: device.issuedAt))  \(status)")
            }
        }
    }
}
