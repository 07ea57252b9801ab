import ArgumentParser

/// `kyukyu-gateway`: the edge service the paramedic's tablet talks to, and its crew accounts.
@main
struct KyukyuGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-gateway",
        abstract: "The Myna Kyukyu field gateway: the tablet's API and UI, the card reader, onshi and the vault.",
        subcommands: [ServeCommand.self, CrewCommand.self, CheckConfigCommand.self, CertCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
