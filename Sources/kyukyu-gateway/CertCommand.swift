import ArgumentParser
import Foundation
import KyukyuGateway
import SwiftASN1
import X509

/// `kyukyu-gateway cert`: the device's certificates for onshi and for the hospitals' network.
struct CertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "The gateway's own certificates: request (key and CSR), install (checked), status.",
        discussion: """
            PURPOSE is onshi (the terminal certificate, in onshi.tls-directory) or hospital (the hospitals' network, \
            in handoff.tls-directory); the device's name is terminal.id. The configuration is read as serve reads it \
            (--config FILE and the same flags). After an install, `systemctl reload kyukyu-gateway` (SIGHUP) makes \
            a running gateway use the new certificate for its next connections, without a restart.
            """,
        subcommands: [Request.self, Install.self, Status.self]
    )

    enum Purpose: String, ExpressibleByArgument, CaseIterable {
        case onshi, hospital
    }

    static func store(_ purpose: Purpose, options: [String]) async throws -> DeviceCertificates {
        let configuration: GatewayConfiguration
        do {
            configuration = try await GatewayConfiguration.load(
                arguments: options,
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            throw CertFailure(error.reason)
        }
        let directory = purpose == .onshi ? configuration.onshi.tlsDirectory : configuration.handoff.tlsDirectory
        return DeviceCertificates(directory: directory, deviceID: configuration.terminal.id)
    }

    /// `cert request PURPOSE`.
    struct Request: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new key (kept on this device) and a signing request for the CA; prints the request."
        )

        @Argument(help: "onshi or hospital.")
        var purpose: Purpose

        @Argument(parsing: .captureForPassthrough, help: "Configuration flags, as serve takes them.")
        var options: [String] = []

        func run() async throws {
            let store = try await CertCommand.store(purpose, options: options)
            do {
                let pem = try store.request()
                FileHandle.standardError.write(
                    Data(
                        "key: \(store.pendingKeyPath) (0600, waiting for its certificate)\nrequest: \(store.requestPath)\n"
                            .utf8
                    )
                )
                print(pem, terminator: "")
            } catch {
                throw CertFailure(error.reason)
            }
        }
    }

    /// `cert install PURPOSE FILE`.
    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an issued certificate against the pending key, this device's name and the CA; install it.",
            discussion: """
                FILE holds the certificate, optionally followed by its CA (which then replaces ca.cert.pem). Nothing \
                changes unless every check passes.
                """
        )

        @Argument(help: "onshi or hospital.")
        var purpose: Purpose

        @Argument(help: "The issued certificate (PEM), optionally followed by its CA.")
        var file: String

        @Argument(parsing: .captureForPassthrough, help: "Configuration flags, as serve takes them.")
        var options: [String] = []

        func run() async throws {
            let store = try await CertCommand.store(purpose, options: options)
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw CertFailure("\(file) cannot be read")
            }
            do {
                let certificate = try await store.install(certificatePEM: text)
                print(
                    "installed \(store.certificatePath): valid until \(certificate.notValidAfter); "
                        + "reload the gateway (systemctl reload kyukyu-gateway) to use it"
                )
            } catch {
                throw CertFailure(error.reason)
            }
        }
    }

    /// `cert status`.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each certificate's subject, expiry and days left; a warning within 30 days (exit 1)."
        )

        @Argument(parsing: .captureForPassthrough, help: "Configuration flags, as serve takes them.")
        var options: [String] = []

        func run() async throws {
            var warn = false
            for purpose in Purpose.allCases {
                let store = try await CertCommand.store(purpose, options: options)
                guard let text = try? String(contentsOfFile: store.certificatePath, encoding: .utf8),
                    let certificate = try? Certificate(pemEncoded: text)
                else {
                    print("\(purpose.rawValue): no certificate at \(store.certificatePath)")
                    continue
                }
                let days = Int(certificate.notValidAfter.timeIntervalSinceNow / 86_400)
                let pending =
                    FileManager.default.fileExists(atPath: store.pendingKeyPath) ? " (a request is pending)" : ""
                let note = days < 0 ? "EXPIRED" : days <= 30 ? "EXPIRES SOON: request a renewal" : "ok"
                if days <= 30 { warn = true }
                print(
                    "\(purpose.rawValue): \(certificate.subject), valid until \(certificate.notValidAfter), \(days) days "
                        + "left: \(note)\(pending)"
                )
            }
            if warn { throw ExitCode(1) }
        }
    }
}

/// A failure of a `cert` command: its reason on standard error, exit status 1.
struct CertFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
