import Foundation
import KyukyuTestbed
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `scripts/stack.sh` (what `make run` and the browser tests start everything with), run as CI runs it: no TTY, no
/// stdin, as root. Without the gateway (`KYUKYU_STACK_NO_GATEWAY=1`), whose own tests start it through the script.
@Suite("scripts/stack.sh", .serialized, .enabled(if: realPartsAvailable), .timeLimit(.minutes(2)))
struct StackScriptTests {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath
    }()

    /// The keys every consumer of stack.env relies on (the demo crew's only come with the gateway).
    static let keys = [
        "KYUKYU_STACK_DIR", "KYUKYU_BIN_DIR", "KYUKYU_STACK_LOGS", "PCSCLITE_CSOCK_NAME", "KYUKYU_READER_NAME",
        "KYUKYU_VPCD_PORT", "KYUKYU_PKI_DIR", "KYUKYU_CARD_CONTROL_PORT", "KYUKYU_CARD_CONTROL_URL",
        "KYUKYU_DEMO_HOLDER", "KYUKYU_ONSHI_PORT", "KYUKYU_ONSHI_URL", "KYUKYU_TERMINAL_TLS_DIR",
        "KYUKYU_STUB_ADMIN_PORT", "KYUKYU_STUB_ADMIN_URL", "KYUKYU_STACK_GATEWAY", "KYUKYU_STACK_GATEWAY_PORT",
        "KYUKYU_STACK_GATEWAY_URL", "KYUKYU_STACK_GATEWAY_STATE_DIR", "KYUKYU_PCSCD_PID", "KYUKYU_CARD_SIM_PID",
        "KYUKYU_ELIGIBILITY_SIM_PID", "KYUKYU_STACK_GATEWAY_PID",
    ]

    func stack(_ arguments: [String], _ environment: [String: String] = [:]) async throws -> Commands.Result {
        try await Commands.run(
            "/bin/bash",
            [Self.packageRoot + "/scripts/stack.sh"] + arguments,
            environment: environment,
            timeout: .seconds(90)
        )
    }

    @Test func startsEverythingSwapsTheCardThroughPCSCAndStopLeavesNothingRunning() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("kyukyu-stack-test-\(Bed.basePort)").path
        let environment = [
            "KYUKYU_STACK_NO_GATEWAY": "1",
            "KYUKYU_STACK_PORT_BASE": String(Bed.basePort + 60),
            "KYUKYU_BIN_DIR": Commands.binDirectory(),
            "KYUKYU_STACK_HOLDER": "5",
            "KYUKYU_STACK_APDU_LATENCY_MS": "0",
        ]
        let start = try await self.stack(["start", directory], environment)
        var values: [String: String] = [:]
        do {
            #expect(start.status == 0, "\(start.stderr)")
            values = try Self.parse(directory + "/stack.env")
            for key in Self.keys {
                #expect(values[key] != nil, "stack.env has no \(key)")
            }
            #expect(values["KYUKYU_STACK_GATEWAY"] == "0")
            #expect(values["KYUKYU_CARD_CONTROL_URL"] == "http://127.0.0.1:\(Bed.basePort + 70)")
            #expect(values["KYUKYU_DEMO_HOLDER"] == "5")

            // Through the stack's own pcscd, from another process (libpcsclite reads the socket variable once).
            let pcsc = ["PCSCLITE_CSOCK_NAME": values["PCSCLITE_CSOCK_NAME"] ?? ""]
            let kyukyu = try Commands.executable("kyukyu")
            let before = try await Commands.run(kyukyu, ["card", "status", "--wait", "10"], environment: pcsc)
            #expect(before.stdout.contains("Kyukyu Demo Reader 00 00"))
            #expect(before.stdout.contains("My Number card"), "\(before.stdout)")

            let swap = try await self.stack(["card", directory, #"{"holder": 6, "profile": "android"}"#])
            #expect(swap.status == 0, "\(swap.stderr)")
            #expect(swap.stdout.contains(#""profile":"android""#))
            #expect(swap.stdout.contains(#""connected":true"#))
            // pcscd polls vpcd: the new token shows within about half a second of the link.
            var after = ""
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, !after.contains("Android") {
                after = try await Commands.run(kyukyu, ["card", "status"], environment: pcsc).stdout
            }
            #expect(after.contains("Android"), "\(after)")

            let status = try await self.stack(["status", directory])
            #expect(status.status == 1)  // the gateway is not running
            #expect(status.stdout.contains("card-sim: running"))

            // The network lost and back: the stub goes away and comes back on the same ports.
            #expect(try await self.stack(["stop-stub", directory]).status == 0)
            #expect(try await self.stack(["status", directory]).stdout.contains("eligibility-sim: stopped"))
            #expect(try Self.parse(directory + "/stack.env")["KYUKYU_ELIGIBILITY_SIM_PID"] == "")
            #expect(try await self.stack(["start-stub", directory]).status == 0)
            #expect(try await self.stack(["status", directory]).stdout.contains("eligibility-sim: running"))
            values = try Self.parse(directory + "/stack.env")
            // Those commands ran without the start's environment: stack.env still says what the stack started with.
            #expect(values["KYUKYU_VPCD_PORT"] == String(Bed.basePort + 60))
            #expect(values["KYUKYU_DEMO_HOLDER"] == "5")
            #expect(values["KYUKYU_STACK_GATEWAY"] == "0")
        } catch {
            _ = try? await self.stack(["stop", directory])
            throw error
        }

        let stop = try await self.stack(["stop", directory])
        #expect(stop.status == 0, "\(stop.stderr)")
        for key in ["KYUKYU_PCSCD_PID", "KYUKYU_CARD_SIM_PID", "KYUKYU_ELIGIBILITY_SIM_PID"] {
            let pid = try #require(values[key].flatMap { Int32($0) }, "\(key)")
            #expect(!Self.isRunning(pid), "\(key) \(pid) still runs after stop")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/stack.env"))
    }

    @Test func startRefusesATakenPortAndLeavesNothingBehind() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("kyukyu-stack-test-taken-\(Bed.basePort)").path
        let taken = try Self.listen(port: Bed.basePort + 90)  // the gateway's port under this base
        defer { close(taken) }
        let start = try await self.stack(
            ["start", directory],
            ["KYUKYU_STACK_NO_GATEWAY": "1", "KYUKYU_STACK_PORT_BASE": String(Bed.basePort + 60)]
        )
        #expect(start.status != 0)
        #expect(start.stderr.contains("port \(Bed.basePort + 90)"), "\(start.stderr)")
        let status = try await self.stack(["status", directory])
        #expect(!status.stdout.contains("running"), "\(status.stdout)")
    }

    @Test func totpScriptGivesTheRFC6238Codes() async throws {
        let script = Self.packageRoot + "/scripts/totp.py"
        let selfTest = try await Commands.run("/usr/bin/env", ["python3", script, "--self-test"])
        #expect(selfTest.status == 0, "\(selfTest.stdout)\(selfTest.stderr)")
        #expect(selfTest.stdout.contains("6 passed, 0 failed"))
        // RFC 6238's SHA-1 secret in base32, at T = 59 s, 6 digits: the last six of 94287082.
        let code = try await Commands.run(
            "/usr/bin/env",
            ["python3", script, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "--at", "59"]
        )
        #expect(code.stdout == "287082\n")
    }

    /// `KEY='value'` lines.
    static func parse(_ path: String) throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
                .trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        }
        return values
    }

    /// Alive and not a zombie waiting to be reaped.
    static func isRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return !status.contains("State:\tZ")
    }

    /// A listening socket on 127.0.0.1:`port`, so that the script finds the port taken.
    static func listen(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else {
            close(fd)
            throw TestbedError("cannot listen on \(port)")
        }
        return fd
    }
}
