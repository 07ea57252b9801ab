import Crypto
import Dispatch
import Foundation
internal import HummingbirdBcrypt
internal import HummingbirdOTP

// MARK: - Random values

/// Random bytes from the system's cryptographically secure generator (`getrandom` on Linux).
func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}

/// `count` random bytes, base64url without padding (RFC 4648 §5): session and CSRF tokens.
package func randomToken(bytes count: Int = 32) -> String {
    Data(randomBytes(count)).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// The SHA-256 of a session token: the only form in which a token is stored.
package func tokenDigest(_ token: String) -> Data {
    Data(SHA256.hash(data: Data(token.utf8)))
}

// MARK: - Base32 (RFC 4648 §6)

enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Base32 without padding, as authenticator apps take a TOTP secret.
    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 0x1F)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 0x1F)]) }
        return String(decoding: output, as: UTF8.self)
    }
}

// MARK: - TOTP

/// TOTP (RFC 6238) with HummingbirdOTP: SHA-1, 6 digits, 30 s steps, as every authenticator app defaults to.
package enum TOTPCheck {
    static let timeStep = 30
    static let digits = 6
    /// Characters of a generated secret, and how many: 28 alphanumerics are 166 bits (RFC 4226 asks ≥ 128,
    /// recommends 160). HummingbirdOTP keys HMAC with the secret string's UTF-8 bytes, and its otpauth URI
    /// base32-encodes the same bytes, so the secret must be a string; ASCII keeps bytes and characters equal.
    private static let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    private static let secretLength = 28

    package static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<secretLength).map { _ in secretAlphabet.randomElement(using: &generator)! })
    }

    /// The time step (RFC 6238's T) at `date`.
    static func step(at date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / Double(timeStep)).rounded(.down))
    }

    /// The code of `step` for `secret`.
    static func code(secret: String, step: Int64) -> Int {
        TOTP(secret: secret, length: digits, timeStep: timeStep, hashFunction: .sha1)
            .compute(date: Date(timeIntervalSince1970: Double(step) * Double(timeStep)))
    }

    /// The steps among now-1, now and now+1 whose code is `code`: usually none or one.
    package static func matchingSteps(code: String, secret: String, at date: Date) -> [Int64] {
        let typed = code.filter { $0 != " " }
        guard typed.utf8.count == digits, typed.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let value = Int(typed)
        else { return [] }
        let now = step(at: date)
        return (now - 1...now + 1).filter { step in
            // Evaluate every candidate: the time spent does not depend on which one matches.
            self.code(secret: secret, step: step) == value
        }
    }

    package static func enrolment(crewID: String, secret: String, issuer: String) -> CrewEnrolment {
        let totp = TOTP(secret: secret, length: digits, timeStep: timeStep, hashFunction: .sha1)
        return CrewEnrolment(
            crewID: crewID,
            totpSecret: Base32.encode(Array(secret.utf8)),
            otpauthURI: totp.createAuthenticatorURL(label: "\(issuer):\(crewID)", issuer: issuer)
        )
    }
}

// MARK: - Sealing the TOTP secret

/// Seals TOTP secrets (ChaChaPoly) under the key given to ``CrewDirectory/open(path:secretKey:policy:now:logger:audit:)``,
/// bound to the crew ID, so that the database file alone yields no secret and a sealed secret cannot be moved to
/// another account.
package struct SecretBox: @unchecked Sendable {  // its one `let` key is immutable; SymmetricKey is not Sendable
    let key: SymmetricKey

    /// A box sealing under `key`.
    package init(key: SymmetricKey) { self.key = key }

    private static func associatedData(_ purpose: String) -> Data { Data("kyukyu.crew.\(purpose).v1".utf8) }

    package func sealTOTPSecret(_ secret: String, crewID: String) throws -> Data {
        try ChaChaPoly.seal(Data(secret.utf8), using: self.key, authenticating: Self.associatedData("totp:\(crewID)"))
            .combined
    }

    package func openTOTPSecret(_ sealed: Data, crewID: String) throws -> String {
        let box = try ChaChaPoly.SealedBox(combined: sealed)
        let plain = try ChaChaPoly.open(box, using: self.key, authenticating: Self.associatedData("totp:\(crewID)"))
        return String(decoding: plain, as: UTF8.self)
    }

    /// A value sealed at creation and opened at every open: a wrong key is found at once, not at the first sign-in.
    func sealKeyCheck() throws -> Data {
        try ChaChaPoly.seal(Data(), using: self.key, authenticating: Self.associatedData("key-check")).combined
    }

    func opensKeyCheck(_ sealed: Data) -> Bool {
        guard let box = try? ChaChaPoly.SealedBox(combined: sealed) else { return false }
        return (try? ChaChaPoly.open(box, using: self.key, authenticating: Self.associatedData("key-check"))) != nil
    }
}

// MARK: - bcrypt off the cooperative pool

/// Runs bcrypt on one dedicated serial queue: a cost-10 hash is tens of milliseconds of CPU, which must not block
/// one of the few threads of Swift's cooperative pool. Serial on purpose: a flood of sign-ins uses at most one core,
/// and the gateway keeps the other for incidents.
package struct BcryptRunner: Sendable {
    private let queue = DispatchQueue(label: "kyukyu.crew.bcrypt", qos: .userInitiated)

    /// A runner with its own queue.
    package init() {}

    package func hash(_ text: String, cost: UInt8) async -> String {
        await withCheckedContinuation { continuation in
            self.queue.async { continuation.resume(returning: Bcrypt.hash(text, cost: cost)) }
        }
    }

    package func verify(_ text: String, hash: String) async -> Bool {
        await withCheckedContinuation { continuation in
            self.queue.async { continuation.resume(returning: Bcrypt.verify(text, hash: hash)) }
        }
    }

    /// The cost recorded in a `$2b$NN$...` hash, if it has one.
    package static func cost(of hash: String) -> UInt8? {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: true)
        guard parts.count >= 2 else { return nil }
        return UInt8(parts[1])
    }
}
