import AsyncHTTPClient
import Foundation
import KyukyuReceiver
import KyukyuTestbed
import KyukyuVault
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

/// The receiver through its real parts: the `kyukyu-hospital` executable (ca init, device issue/revoke, staff add,
/// serve, export, anchors), HTTPS with mutual TLS on loopback, a real SQLite file, and AsyncHTTPClient presenting a
/// certificate that `device issue` wrote.
@Suite("kyukyu-hospital through its real parts", .serialized, .timeLimit(.minutes(3)))
struct RealPartsTests {
    struct Setup {
        let state: String
        let port: Int
        let executable: String
        let totpSecret: String
    }

    func hospital(_ arguments: [String], stdin: String? = nil) async throws -> Commands.Result {
        let result = try await Commands.run(try Commands.executable("kyukyu-hospital"), arguments, stdin: stdin)
        #expect(result.status == 0, "kyukyu-hospital \(arguments.joined(separator: " ")): \(result.stderr)")
        return result
    }

    func client(_ setup: Setup, device: String?, certificates directory: String? = nil) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(setup.state + "/pki/ca.cert.pem"))
        if let device {
            let folder = directory ?? setup.state + "/devices/\(device)"
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(folder + "/\(device).cert.pem").map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: folder + "/\(device).key.pem", format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func serve(_ setup: Setup, log: String, notify: DatagramSink? = nil) async throws -> SpawnedProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify?.path
        let process = try Commands.spawn(
            setup.executable,
            ["serve", "--state-directory", setup.state, "--http-port", String(setup.port), "--log-level", "info"],
            log: log,
            environment: environment
        )
        // Ready when it answers over TLS.
        let probe = try client(setup, device: nil)
        defer { Task { try? await probe.shutdown() } }
        for _ in 0..<200 {
            if let response = try? await probe.execute(
                HTTPClientRequest(url: base(setup) + "/health/live"),
                timeout: .seconds(2)
            ),
                response.status == .ok
            {
                return process
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CommandError(
            "kyukyu-hospital serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"
        )
    }

    struct CommandError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Stops the server (SIGTERM) and waits for it, off the cooperative pool.
    static func stop(_ server: SpawnedProcess) async {
        await Task.detached { server.stop() }.value
    }

    func base(_ setup: Setup) -> String { "https://127.0.0.1:\(setup.port)" }

    func post(
        _ client: HTTPClient,
        _ setup: Setup,
        _ document: SyntheticDocument,
        contentType: String = "application/fhir+json"
    )
        async throws -> (HTTPResponseStatus, String)
    {
        var request = HTTPClientRequest(url: base(setup) + "/fhir/Bundle")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "Idempotency-Key", value: document.versionIdentifier)
        request.body = .bytes(ByteBuffer(bytes: document.data))
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status, String(buffer: body))
    }

    /// Reads server-sent events from `response` until `count` `handoff` events came.
    func events(_ response: HTTPClientResponse, count: Int) async throws -> [(id: Int, status: String)] {
        var text = ""
        var found: [(Int, String)] = []
        for try await chunk in response.body {
            text += String(buffer: chunk)
            while let end = text.range(of: "\n\n") {
                let frame = String(text[..<end.lowerBound])
                text.removeSubrange(..<end.upperBound)
                guard let idLine = frame.split(separator: "\n").first(where: { $0.hasPrefix("id: ") }),
                    let dataLine = frame.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }),
                    let data = try JSONSerialization.jsonObject(with: Data(dataLine.dropFirst(6).utf8))
                        as? [String: Any]
                else { continue }
                found.append((Int(idLine.dropFirst(4)) ?? -1, data["status"] as? String ?? ""))
                if found.count == count { return found }
            }
        }
        return found
    }

    func eventStream(_ client: HTTPClient, _ setup: Setup, lastEventID: Int?) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: base(setup) + "/ambulance/v1/events")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: String(lastEventID)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        #expect(response.status == .ok)
        return response
    }

    func staffRequest(
        _ client: HTTPClient,
        _ setup: Setup,
        _ method: HTTPMethod,
        _ path: String,
        cookie: String,
        csrf: String
    )
        async throws -> HTTPClientResponse
    {
        var request = HTTPClientRequest(url: base(setup) + path)
        request.method = method
        request.headers.add(name: "Cookie", value: cookie)
        request.headers.add(name: "X-CSRF-Token", value: csrf)
        return try await client.execute(request, timeout: .seconds(30))
    }

    func backupAndRestore(state: String) async throws {
        let executable = try Commands.executable("kyukyu-hospital")
        let plain = state + "/backup-plain"
        let backup = try await Commands.run(executable, ["backup", "--state-dir", state, "--out", plain])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("backup of 2 document versions"), "\(backup.stdout)")
        #expect(!FileManager.default.fileExists(atPath: plain + "/keys"))
        let refused = try await Commands.run(
            executable,
            ["restore", "--from", plain, "--state-dir", state + "/restored-1"]
        )
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("made without its keys"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state + "/restored-1/hospital.sqlite"))
        let restored = try await Commands.run(
            executable,
            ["restore", "--from", plain, "--state-dir", state + "/restored-1", "--keys-from", state]
        )
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stdout.contains("2 document versions decrypt"))

        let withKeys = state + "/backup-keys"
        #expect(
            try await Commands.run(executable, ["backup", "--state-dir", state, "--out", withKeys, "--include-keys"])
                .status == 0
        )
        let keyMode =
            try FileManager.default.attributesOfItem(atPath: withKeys + "/keys/device-keyring.json")[.posixPermissions]
            as? NSNumber
        #expect(keyMode?.intValue == 0o600)
        let again = try await Commands.run(
            executable,
            ["restore", "--from", withKeys, "--state-dir", state + "/restored-2"]
        )
        #expect(again.status == 0, "\(again.stderr)")
        // Not over an existing state, and not from a damaged copy.
        let over = try await Commands.run(executable, ["restore", "--from", withKeys, "--state-dir", state])
        #expect(over.status != 0 && over.stderr.contains("not empty"), "\(over.stderr)")
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: withKeys + "/hospital.sqlite"))
        try handle.seek(toOffset: 5000)
        try handle.write(contentsOf: Data([0x42]))
        try handle.close()
        let damaged = try await Commands.run(
            executable,
            ["restore", "--from", withKeys, "--state-dir", state + "/restored-3"]
        )
        #expect(damaged.status != 0 && damaged.stderr.contains("does not match its manifest"), "\(damaged.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state + "/restored-3"))
    }

    @Test func theKeyringFromASystemdCredentialFailingClosed() async throws {
        let state = temporaryDirectory("kyukyu-hospital-credential")
        defer { try? FileManager.default.removeItem(atPath: state) }
        _ = try await hospital(["ca", "init", "--state-dir", state])
        // A keyring made the way a first start makes it, then moved into a credentials folder.
        try FileManager.default.createDirectory(
            atPath: state + "/keys",
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        _ = try KeyFileProvider(stateDirectory: state + "/keys").loadKeyring()
        let credentials = state + "/credentials"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        let executable = try Commands.executable("kyukyu-hospital")
        var environment = ProcessInfo.processInfo.environment
        environment["CREDENTIALS_DIRECTORY"] = credentials
        // No credential in the folder: refused, and no key file is made instead.
        let refused = try await Commands.run(
            executable,
            ["serve", "--state-directory", state, "--http-port", String(Ports.base + 3)],
            environment: environment,
            timeout: .seconds(60)
        )
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("kyukyu-device-keyring"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state + "/device-keyring.json"))
        // With it: the receiver starts and says so.
        try FileManager.default.copyItem(
            atPath: state + "/keys/device-keyring.json",
            toPath: credentials + "/kyukyu-device-keyring"
        )
        let notifications = try DatagramSink()
        environment["NOTIFY_SOCKET"] = notifications.path
        let server = try Commands.spawn(
            executable,
            ["serve", "--state-directory", state, "--http-port", String(Ports.base + 3)],
            log: state + "/serve.log",
            environment: environment
        )
        let ready = notifications.receiveText()
        #expect(
            ready?.hasPrefix("READY=1") == true,
            "\((try? String(contentsOfFile: state + "/serve.log", encoding: .utf8)) ?? "")"
        )
        #expect(!FileManager.default.fileExists(atPath: state + "/device-keyring.json"))
        await Self.stop(server)
    }

    @Test func intakeAcknowledgementRestartAndExports() async throws {
        let state = temporaryDirectory("kyukyu-hospital-it")
        defer { try? FileManager.default.removeItem(atPath: state) }
        _ = try await hospital(["ca", "init", "--state-dir", state])
        for device in ["ambulance-01", "ambulance-03"] {
            _ = try await hospital([
                "device", "issue", "--state-dir", state, "--device", device, "--out", state + "/devices/\(device)",
            ])
        }
        _ = try await hospital(["device", "revoke", "--state-dir", state, "--device", "ambulance-03"])
        let added = try await hospital(
            ["staff", "add", "NURSE-01", "--state-dir", state],
            stdin: "correct horse battery\n2468\n"
        )
        let secret = try #require(
            added.stdout.split(separator: "\n").first { $0.hasPrefix("TOTP secret (base32): ") }?.split(separator: " ")
                .last.map(String.init)
        )
        let keyMode =
            try FileManager.default.attributesOfItem(atPath: state + "/devices/ambulance-01/ambulance-01.key.pem")[
                .posixPermissions
            ] as? NSNumber
        #expect(keyMode?.intValue == 0o600)
        let caKeyMode =
            try FileManager.default.attributesOfItem(atPath: state + "/pki/ca.key.pem")[.posixPermissions] as? NSNumber
        #expect(caKeyMode?.intValue == 0o600)
        // A certificate of this CA for a device that was never registered, and one of another CA.
        try HospitalPKI(directory: state + "/pki").issueDevice(
            "ambulance-05",
            outDirectory: state + "/devices/ambulance-05"
        )
        let foreign = HospitalPKI(directory: state + "/foreign-pki")
        try foreign.initialize(hospital: "9999999999")
        try foreign.issueDevice("ambulance-01", outDirectory: state + "/foreign")

        let setup = Setup(
            state: state,
            port: Ports.base + 1,
            executable: try Commands.executable("kyukyu-hospital"),
            totpSecret: secret
        )
        let notifications = try DatagramSink()
        var server = try await serve(setup, log: state + "/serve-1.log", notify: notifications)
        // systemd's readiness: READY=1 with the port, sent by the process itself.
        let ready = notifications.receiveText()?.split(separator: "\n").map(String.init) ?? []
        #expect(ready.first == "READY=1")
        #expect(ready.contains("STATUS=receiving on port \(setup.port)"))
        let ambulance = try client(setup, device: "ambulance-01")
        let staff = try client(setup, device: nil)
        do {

            let document = SyntheticDocument()
            #expect(try await post(ambulance, setup, document).0 == .created)
            #expect(try await post(ambulance, setup, document).0 == .ok)
            var changed = document
            changed.chiefComplaint = "syncope"
            #expect(try await post(ambulance, setup, changed).0 == .conflict)
            let wrongType = try await post(ambulance, setup, document.next(), contentType: "text/plain")
            #expect(wrongType.0 == .unsupportedMediaType)
            #expect(wrongType.1.contains("OperationOutcome"))
            var large = document.next()
            large.padding = 5 * 1024 * 1024
            #expect(try await post(ambulance, setup, large).0 == .payloadTooLarge)
            var notJSON = HTTPClientRequest(url: base(setup) + "/fhir/Bundle")
            notJSON.method = .POST
            notJSON.headers.add(name: "Content-Type", value: "application/fhir+json")
            notJSON.headers.add(name: "Idempotency-Key", value: document.next().versionIdentifier)
            notJSON.body = .bytes(ByteBuffer(string: "{not json"))
            #expect(try await ambulance.execute(notJSON, timeout: .seconds(30)).status == .badRequest)
            var elsewhere = document.next()
            elsewhere.hospital = "2712345678"
            #expect(try await post(ambulance, setup, elsewhere).0 == .unprocessableEntity)

            // Another CA's certificate never completes the handshake; unknown and revoked devices are refused.
            let stranger = try client(setup, device: "ambulance-01", certificates: state + "/foreign")
            await #expect(throws: (any Error).self) { _ = try await post(stranger, setup, document.next()) }
            try await stranger.shutdown()
            for device in ["ambulance-05", "ambulance-03"] {
                let other = try client(setup, device: device)
                var theirs = SyntheticDocument()
                theirs.device = device
                #expect(try await post(other, setup, theirs).0 == .forbidden)
                try await other.shutdown()
            }

            // Two identical posts at once store one version.
            let twin = SyntheticDocument()
            async let first = post(ambulance, setup, twin)
            async let second = post(ambulance, setup, twin)
            let statuses = [try await first.0.code, try await second.0.code].sorted()
            #expect(statuses == [200, 201])

            // The intake so far, as Prometheus sees it: two stored, two resent, the refusals counted apart.
            let scrape = try await staff.execute(
                HTTPClientRequest(url: base(setup) + "/metrics"),
                timeout: .seconds(30)
            )
            #expect(scrape.status == .ok)
            let metrics = String(buffer: try await scrape.body.collect(upTo: 1 << 20))
            #expect(metrics.contains(#"kyukyu_receiver_documents_total{outcome="stored"} 2"#), "\(metrics)")
            #expect(metrics.contains(#"kyukyu_receiver_documents_total{outcome="duplicate"} 2"#))
            let rejected = metrics.split(separator: "\n").first {
                $0.hasPrefix(#"kyukyu_receiver_documents_total{outcome="rejected"} "#)
            }
            #expect(rejected.flatMap { Int($0.split(separator: " ").last ?? "") }.map { $0 >= 3 } == true)
            #expect(metrics.contains("kyukyu_receiver_pending_acknowledgements 2.0"))
            #expect(metrics.contains("kyukyu_receiver_ingest_duration_seconds_count"))

            // A backup while it serves, and its restores: without the keys it is refused until they are given;
            // with them every version decrypts; a damaged copy is refused before anything is written.
            try await backupAndRestore(state: state)

            // The staff acknowledge; the device's stream carries it, and Last-Event-ID replays it.
            let stream = try await eventStream(ambulance, setup, lastEventID: nil)
            let signIn = try await {
                var request = HTTPClientRequest(url: base(setup) + "/api/v1/session")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(
                    ByteBuffer(
                        string: #"{"staffId":"NURSE-01","password":"correct horse battery","totp":"\#(totp(secret))"}"#
                    )
                )
                return try await staff.execute(request, timeout: .seconds(30))
            }()
            #expect(signIn.status == .ok)
            let cookie = try #require(signIn.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init))
            let session =
                try JSONSerialization.jsonObject(
                    with: Data((try await signIn.body.collect(upTo: 1 << 16).readableBytesView))
                )
                as? [String: Any]
            let csrf = try #require(session?["csrfToken"] as? String)
            let set = document.set.uuidString.lowercased()
            let ack = try await staffRequest(
                staff,
                setup,
                .POST,
                "/api/v1/patients/\(set)/acknowledge",
                cookie: cookie,
                csrf: csrf
            )
            #expect(ack.status == .ok)
            let seen = try await events(stream, count: 3)
            #expect(seen.map(\.status) == ["received", "received", "acknowledged"])
            let acknowledgedID = try #require(seen.last?.id)
            let replay = try await events(
                try await eventStream(ambulance, setup, lastEventID: acknowledgedID - 1),
                count: 1
            )
            #expect(replay.map(\.id) == [acknowledgedID])
            #expect(replay.map(\.status) == ["acknowledged"])

            // A graceful stop (with a stream still open) and a restart lose nothing.
            let open = try await eventStream(ambulance, setup, lastEventID: acknowledgedID)
            let stopped = ContinuousClock.now
            await Self.stop(server)
            #expect(ContinuousClock.now - stopped < .seconds(8))
            for try await _ in open.body {}
            let log = try String(contentsOfFile: state + "/serve-1.log", encoding: .utf8)
            #expect(log.contains("receiver store checkpointed"))
            let stateBytes = bytesOfFiles(in: state) { $0.hasPrefix("hospital.sqlite") }
            #expect(!stateBytes.isEmpty)
            for needle in Synthetic.quotedNames {
                #expect(stateBytes.range(of: Data(needle.utf8)) == nil, "patient data in plaintext in hospital.sqlite")
            }

            server = try await serve(setup, log: state + "/serve-2.log")
            let all = try await events(try await eventStream(ambulance, setup, lastEventID: 0), count: 3)
            #expect(all.map(\.id) == [1, 2, 3])
            let detail = try await staffRequest(
                staff,
                setup,
                .GET,
                "/api/v1/patients/\(set)",
                cookie: cookie,
                csrf: csrf
            )
            #expect(detail.status == .ok)
            let view =
                try JSONSerialization.jsonObject(
                    with: Data((try await detail.body.collect(upTo: 1 << 20).readableBytesView))
                )
                as? [String: Any]
            #expect(view?["status"] as? String == "acknowledged")
            let posted = try JSONSerialization.jsonObject(with: document.data) as? NSDictionary
            #expect((view?["document"] as? NSDictionary) == posted)
            await Self.stop(server)

            // The exports: every version byte for byte, and the anchors for `kyukyu audit verify --anchors`.
            _ = try await hospital(["export", "--state-dir", state, "--out", state + "/export"])
            let files = try FileManager.default.contentsOfDirectory(atPath: state + "/export").sorted()
            #expect(files.count == 2)
            let exported = FileManager.default.contents(atPath: state + "/export/\(set)-v1.json")
            #expect(exported == document.data)
            _ = try await hospital([
                "anchors", "--state-dir", state, "--device", "ambulance-01", "--out", state + "/anchors.json",
            ])
            let anchors =
                try JSONSerialization.jsonObject(
                    with: try Data(contentsOf: URL(fileURLWithPath: state + "/anchors.json"))
                )
                as? [String: Any]
            #expect(anchors?["format"] as? String == HospitalExport.anchorsFormat)
            let list = anchors?["anchors"] as? [[String: Any]]
            #expect(list?.count == 2)
            #expect(list?.first?["signedAtMilliseconds"] as? Int == 1_795_749_119_123)
        } catch {
            try? await ambulance.shutdown()
            try? await staff.shutdown()
            throw error
        }
        try await ambulance.shutdown()
        try await staff.shutdown()
    }
}
