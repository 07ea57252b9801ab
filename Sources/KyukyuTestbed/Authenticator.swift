import Crypto
public import Foundation

/// RFC 6238 (SHA-1, 6 digits, 30 s) over a base32 secret, as an authenticator app computes it: the crew's and the
/// staff's second factor in tests, benchmarks and drills. Written apart from KyukyuCrew's check on purpose, so that
/// a test signing in with it checks the product against an independent implementation.
public func totp(_ base32: String, at date: Date = Date()) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    var buffer = 0
    var bits = 0
    var key: [UInt8] = []
    for character in base32 where character != "=" {
        guard let value = alphabet.firstIndex(of: character) else { continue }
        buffer = (buffer << 5) | value
        bits += 5
        if bits >= 8 {
            key.append(UInt8((buffer >> (bits - 8)) & 0xFF))
            bits -= 8
        }
    }
    var counter = UInt64(date.timeIntervalSince1970 / 30).bigEndian
    let message = withUnsafeBytes(of: &counter) { Array($0) }
    let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    let offset = Int(mac[19] & 0x0F)
    let code =
        (UInt32(mac[offset] & 0x7F) << 24 | UInt32(mac[offset + 1]) << 16 | UInt32(mac[offset + 2]) << 8
            | UInt32(mac[offset + 3])) % 1_000_000
    let digits = String(code)
    return String(repeating: "0", count: 6 - digits.count) + digits
}
