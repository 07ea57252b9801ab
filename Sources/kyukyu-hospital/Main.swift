import ArgumentParser

/// `kyukyu-hospital`: the hospital's receiver of pre-arrival documents, its CA, its staff and its exports.
@main
struct KyukyuHospitalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kyukyu-hospital",
        abstract:
            "The hospital's receiver: intake over mutual TLS, the ER board's API, and the ambulances' acknowledgements.",
        subcommands: [
            ServeCommand.self, CACommand.self, DeviceCommand.self, StaffCommand.self, ExportCommand.self,
            AnchorsCommand.self, CheckConfigCommand.self, BackupCommand.self, RestoreCommand.self, ReviewCommand.self,
        ],
        defaultSubcommand: ServeCommand.self
    )
}

/// A failure at run time (not a usage error): `Error: …` on standard error, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
