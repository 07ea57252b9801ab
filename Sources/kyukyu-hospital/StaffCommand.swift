import ArgumentParser
import Foundation
import KyukyuCrew
import KyukyuDomain
import KyukyuReceiver
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `kyukyu-hospital staff add|list|disable`: the staff accounts that sign in to the board (KyukyuCrew's directory
/// in the receiver's own state folder, the shape of `kyukyu-gateway crew`).
///
/// Passwords and PINs come from standard input (two lines: the password, then the PIN; prompted without echo on a
/// terminal), never from a flag. Exit status: 0 done, 1 failed, 64 a usage error.
struct StaffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "staff",
        abstract: "Manage the staff accounts that sign in to the ER board.",
        subcommands: [Add.self, List.self, Disable.self]
    )

    /// `staff add <staff-id>`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a staff account; prints its TOTP secret once.",
            discussion: """
                Reads two lines from standard input: the password (at least 10 characters), then a PIN (4 to 6 \
                digits; kept for a later lock screen).
                """
        )

        @OptionGroup var store: StaffStoreOptions

        @Argument(help: "The staff ID: 2 to 32 characters of A-Z, 0-9 and '-' (lower case is upper-cased).")
        var staffID: String

        func validate() throws { _ = try StaffStoreOptions.canonical(staffID) }

        @Option(help: "With --config of a region's hub: the hospital the staff member works at (10 digits).")
        var hospital: String?

        func run() async throws {
            let staffID = try StaffStoreOptions.canonical(self.staffID)
            let enrolment: CrewEnrolment
            if let (region, opened) = try await store.region() {
                guard let hospital, let code = HospitalCode(rawValue: hospital) else {
                    throw ValidationError("a region's staff account needs --hospital, a 10-digit code")
                }
                guard let password = readPassword() else {
                    throw ValidationError("standard input must hold the password (one line)")
                }
                enrolment = try await runRegion { () async throws(ReceiverError) in
                    try await region.add(staffID: staffID, hospital: code, password: password)
                }
                try? await opened.close()
            } else {
                guard hospital == nil else {
                    throw ValidationError("--hospital is for a region's hub (--config with storage.engine postgresql)")
                }
                let (password, pin) = try readPasswordAndPIN()
                let directory = try store.open(create: true)
                enrolment = try await runStaff { () async throws(CrewError) in
                    try await directory.add(crewID: staffID, password: password, pin: pin)
                }
            }
            print(
                """
                Staff account \(enrolment.crewID) added.
                TOTP secret (base32): \(enrolment.totpSecret)
                otpauth URI: \(enrolment.otpauthURI)
                Shown once: add it to the staff member's authenticator app now (TOTP, SHA-1, 6 digits, 30 s).
                """
            )
        }
    }

    /// `staff list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the staff accounts (never a secret).")

        @OptionGroup var store: StaffStoreOptions

        func run() async throws {
            if let (region, opened) = try await store.region() {
                let accounts = try await runRegion { () async throws(ReceiverError) in try await region.list() }
                try? await opened.close()
                let formatter = ISO8601DateFormatter()
                for account in accounts {
                    let status =
                        account.disabled
                        ? "disabled"
                        : account.lockedUntil.map { "locked until \(formatter.string(from: $0))" } ?? "active"
                    print(
                        "\(account.staffID)  \(account.hospital)  \(status)  created \(formatter.string(from: account.createdAt))"
                    )
                }
                if accounts.isEmpty { print("No staff accounts.") }
                return
            }
            let directory = try store.open(create: false)
            let accounts = try await runStaff { () async throws(CrewError) in try await directory.list() }
            guard !accounts.isEmpty else {
                print("No staff accounts.")
                return
            }
            let formatter = ISO8601DateFormatter()
            for account in accounts {
                let status =
                    account.disabled
                    ? "disabled" : account.lockedUntil.map { "locked until \(formatter.string(from: $0))" } ?? "active"
                print("\(account.crewID)  \(status)  created \(formatter.string(from: account.createdAt))")
            }
        }
    }

    /// `staff disable <staff-id>`.
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a staff account and end its sessions.")

        @OptionGroup var store: StaffStoreOptions

        @Argument(help: "The staff ID.")
        var staffID: String

        func validate() throws { _ = try StaffStoreOptions.canonical(staffID) }

        func run() async throws {
            let staffID = try StaffStoreOptions.canonical(self.staffID)
            if let (region, opened) = try await store.region() {
                try await runRegion { () async throws(ReceiverError) in try await region.disable(staffID: staffID) }
                try? await opened.close()
                print("Staff account \(staffID) disabled; its sessions have ended on every instance.")
                return
            }
            let directory = try store.open(create: false)
            try await runStaff { () async throws(CrewError) in try await directory.disable(crewID: staffID) }
            print("Staff account \(staffID) disabled; its sessions have ended.")
        }
    }
}

/// Where the staff database and its key are (serve's `<state>/staff.sqlite` and `<state>/staff-secret.key`).
struct StaffStoreOptions: ParsableArguments {
    @Option(
        name: [.customLong("state-directory"), .customLong("state-dir")],
        help: "The receiver's state folder (as serve's state.directory)."
    )
    var stateDirectory = "state/hospital"

    @Option(
        help: """
            A region hub's configuration file (storage.engine postgresql): the accounts are then in the region's \
            database, each at one hospital.
            """
    )
    var config: String?

    var databasePath: String { stateDirectory + "/staff.sqlite" }

    /// The region's staff directory and its store, when `--config` names a hub's configuration.
    func region() async throws -> (RegionStaffDirectory, HospitalStore)? {
        guard let config else { return nil }
        var logger = Logger(label: "kyukyu.hospital.staff")
        logger.logLevel = .warning
        do {
            let configuration = try HospitalConfiguration.load(
                arguments: ["--config", config],
                environment: ProcessInfo.processInfo.environment
            )
            guard configuration.storageEngine == .postgresql, let postgres = configuration.postgres else {
                throw CommandFailure("\(config) is not a region hub's configuration (storage.engine postgresql)")
            }
            let keys = try ServeCommand.keyProvider(configuration)
            let store = try await HospitalStore.open(postgres: postgres, keyProvider: keys, logger: logger)
            var policy = CrewDirectory.Policy()
            policy.totpIssuer = "Myna Kyukyu hospital"
            do {
                return (try await RegionStaffDirectory.open(on: store, policy: policy, logger: logger), store)
            } catch {
                try? await store.close()
                throw error
            }
        } catch let error as ReceiverError {
            throw CommandFailure(error.reason)
        }
    }
    var keyPath: String { stateDirectory + "/staff-secret.key" }

    static func canonical(_ staffID: String) throws -> String {
        guard let canonical = CrewDirectory.canonicalCrewID(staffID) else {
            throw ValidationError("a staff ID is 2 to 32 characters of A-Z, 0-9 and '-'")
        }
        return canonical
    }

    func open(create: Bool) throws -> CrewDirectory {
        if !create, !FileManager.default.fileExists(atPath: databasePath) {
            throw CommandFailure("no staff database at \(databasePath) (add a staff member first, or set --state-dir)")
        }
        var logger = Logger(label: "kyukyu.hospital.staff")
        logger.logLevel = .warning
        do {
            var policy = CrewDirectory.Policy()
            policy.totpIssuer = "Myna Kyukyu hospital"
            let key = try CrewSecretKey.load(path: keyPath, create: create)
            return try CrewDirectory.open(path: databasePath, secretKey: key, policy: policy, logger: logger)
        } catch {
            throw CommandFailure(error.reason)
        }
    }
}

@discardableResult
private func runStaff<T>(_ body: () async throws(CrewError) -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        if error.code == .invalidInput { throw ValidationError(error.reason) }
        throw CommandFailure(error.reason)
    }
}

@discardableResult
private func runRegion<T>(_ body: () async throws(ReceiverError) -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        if error.code == .invalidInput { throw ValidationError(error.reason) }
        throw CommandFailure(error.reason)
    }
}

private func readPassword() -> String? {
    readSecretLine(prompt: isatty(STDIN_FILENO) != 0 ? "Password: " : nil)
}

private func readPasswordAndPIN() throws -> (password: String, pin: String) {
    let interactive = isatty(STDIN_FILENO) != 0
    guard let password = readSecretLine(prompt: interactive ? "Password: " : nil),
        let pin = readSecretLine(prompt: interactive ? "PIN (4 to 6 digits): " : nil)
    else {
        throw ValidationError("standard input must hold two lines: the password, then the PIN")
    }
    return (password, pin)
}

private func readSecretLine(prompt: String?) -> String? {
    var saved = termios()
    let echoOff = prompt != nil && tcgetattr(STDIN_FILENO, &saved) == 0
    if let prompt { FileHandle.standardError.write(Data(prompt.utf8)) }
    if echoOff {
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
    }
    defer {
        if echoOff {
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
    }
    guard var line = readLine(strippingNewline: true) else { return nil }
    if line.hasSuffix("\r") { line.removeLast() }
    return line.isEmpty ? nil : line
}
