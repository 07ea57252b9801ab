import ArgumentParser
import Foundation
import KyukyuGateway

/// `kyukyu-gateway check-config`: validates a configuration and the files it names, and explains every error.
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration (file, environment and flags) and the files it names; explain every error.",
        discussion: """
            Loads the configuration exactly as serve does (flags over KYUKYU_GATEWAY_ variables over the file named \
            by --config or KYUKYU_GATEWAY_CONFIG over the defaults), then checks the hospitals' list, the HTTPS \
            certificate and key, onshi's terminal certificate, key and CA, the dispatch token and the state folder, \
            creating and changing nothing. Prints every problem, one per line, with the key and where its value came \
            from. Exit status 0: the gateway can start with it; 78 (EX_CONFIG): it cannot.
            """
    )

    @Argument(parsing: .captureForPassthrough, help: "The same flags as serve, --config FILE among them.")
    var options: [String] = []

    func run() async throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try await GatewayConfiguration.load(
                arguments: options,
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            Self.report(error.problems.isEmpty ? [error] : error.problems)
            throw ExitCode(78)
        }
        let problems = configuration.checkReferencedFiles()
        guard problems.isEmpty else {
            Self.report(problems)
            throw ExitCode(78)
        }
        print("configuration OK: every setting is valid and every file it names is in place")
    }

    static func report(_ problems: [GatewayConfigurationError]) {
        var text = "\(problems.count) problem\(problems.count == 1 ? "" : "s") in the configuration:\n"
        for problem in problems {
            text += "  - " + (problem.key.map { "\($0): " } ?? "") + problem.reason + "\n"
        }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
