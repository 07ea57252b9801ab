// The child process of the vault crash test.
//
// Usage: kyukyu-vault-crashwriter <state-dir>
//
// Writes incidents, records and audit entries in a loop until killed. After each write *returns*
// it prints one line to stdout with a single write(2) (no buffering), so everything the parent has
// read was acknowledged before the kill:
//
//   incident <id>
//   record <id> <kind> <version> <fnv1a64-of-payload>
//   audit <seq>
//   shredding <id>        (printed *before* a shred starts: afterwards the incident may be gone)
//   shredded <id>
import Foundation
import KyukyuVault
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

func emit(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            exit(3)
        }
        offset += written
    }
}

/// FNV-1a, 64 bit: enough to check the parent got the same bytes back (AES-GCM already authenticates).
func fnv1a64(_ data: Data) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in data {
        hash ^= UInt64(byte)
        hash &*= 0x100_0000_01b3
    }
    return hash
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: kyukyu-vault-crashwriter <state-dir>\n".utf8))
    exit(2)
}
let stateDirectory = arguments[1]
var logger = Logger(label: "kyukyu.vault.crashwriter")
logger.logLevel = .warning

let kinds: [RecordKind] = [.patient, .medications, .diagnoses, .visits, .observations]
let crew = CrewID("crew-0001")!

do {
    let vault = try await IncidentVault.open(stateDirectory: stateDirectory, logger: logger)
    emit("ready")
    var generator = SystemRandomNumberGenerator()
    var open: [IncidentID] = []
    while true {
        let incident = try await vault.createIncident()
        emit("incident \(incident)")
        open.append(incident)
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            let kind = kinds.randomElement(using: &generator)!
            let size = Int.random(in: 64...(32 * 1024), using: &generator)
            let payload = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let version = try await vault.putRecord(incident: incident, kind: kind, payload: payload)
            let digest = String(fnv1a64(payload), radix: 16)
            emit("record \(incident) \(kind) \(version) \(digest)")
        }
        let sequence = try await vault.audit.append(.crewSignIn(crew: crew))
        emit("audit \(sequence)")
        if open.count > 3, Int.random(in: 0..<3, using: &generator) == 0 {
            let victim = open.removeFirst()
            emit("shredding \(victim)")
            try await vault.acknowledgeHandoff(incident: victim)
            emit("shredded \(victim)")
        }
    }
} catch {
    FileHandle.standardError.write(Data("crash writer failed: \(error)\n".utf8))
    exit(1)
}
