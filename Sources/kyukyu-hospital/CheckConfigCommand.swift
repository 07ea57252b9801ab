import ArgumentParser
import Foundation
import KyukyuReceiver

/// `kyukyu-hospital check-config`: validates a configuration and the files it names, and explains every error.
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration (file, environment and flags) and the files it names; explain every error.",
        discussion: """
            Loads the configuration exactly as serve does (flags over KYUKYU_HOSPITAL_ variables over the file named \
            by --config or KYUKYU_HOSPITAL_CONFIG over the defaults), then checks that the CA and server certificate \
            of tls.directory are in place with private keys, creating and changing nothing. Prints every problem, \
            one per line. Exit status 0: the receiver can start with it; 78 (EX_CONFIG): it cannot.
            """
    )

    @Argument(parsing: .captureForPassthrough, help: "The same flags as serve, --config FILE among them.")
    var options: [String] = []

    func run() async throws {
        let configuration: HospitalConfiguration
        do {
            configuration = try HospitalConfiguration.load(
                arguments: options,
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            FileHandle.standardError.write(Data("problem in the configuration: \(error.reason)\n".utf8))
            throw ExitCode(78)
        }
        var problems: [String] = []
        do {
            _ = try HospitalPKI(directory: configuration.tlsDirectory).serverTLSConfiguration()
        } catch {
            problems.append(
                "tls.directory: \(error.reason) (kyukyu-hospital ca init --tls-dir \(configuration.tlsDirectory) makes it)"
            )
        }
        guard problems.isEmpty else {
            FileHandle.standardError.write(
                Data(("problems in the configuration:\n" + problems.map { "  - " + $0 + "\n" }.joined()).utf8)
            )
            throw ExitCode(78)
        }
        print("configuration OK: every setting is valid and every file it names is in place")
    }
}
