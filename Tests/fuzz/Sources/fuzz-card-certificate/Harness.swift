// The card's certificates on the card path (KyukyuCard: `DERHeader`, which sizes the read of EF 000A/000B, and
// `CertificateSummary`, which parses the DER with swift-certificates for the crew and the eligibility request).
//
// Invariants: a refusal is a `CardError`, never a trap; the header's length is within what a card can hold; a
// certificate that parses is exactly as long as its header says (the card read neither more nor less), its
// fingerprint is 64 hex digits, its serial an even count of hex digits, and its PEM decodes to the same DER.

import Foundation
import FuzzSupport
import KyukyuCard
import KyukyuDomain

/// A fixed reading time, so that the validity is a function of the input.
let now = Date(timeIntervalSince1970: 1_795_000_000)

/// libFuzzer's entry point: checks one input (always returns 0; a broken invariant aborts).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let der = fuzzBytes(start, count)
    var announced: Int?
    do {
        let total = try DERHeader.totalLength(Array(der.prefix(4)))
        require((2...(4 + 0xFFFF)).contains(total), "a DER length no card file holds")
        announced = total
    } catch {
        require(error is CardError, "DERHeader threw \(type(of: error)), not a CardError")
    }
    let summary: CertificateSummary
    do {
        summary = try CertificateSummary(der: der, tokenType: .individualNumberCard, now: now)
    } catch {
        require(error is CardError, "CertificateSummary threw \(type(of: error)), not a CardError")
        return 0
    }
    require(announced == der.count, "a certificate whose DER header does not give its length")
    require(summary.der == der, "the summary keeps other bytes than the card's")
    require(
        summary.sha256Fingerprint.count == 64 && summary.sha256Fingerprint.allSatisfy(\.isHexDigit),
        "a fingerprint that is not 64 hex digits"
    )
    require(
        summary.serialNumber.count % 2 == 0 && summary.serialNumber.allSatisfy(\.isHexDigit),
        "a serial number that is not whole bytes of hex"
    )
    require(summary.notValidBefore <= summary.notValidAfter || summary.validity != .valid, "valid outside validity")
    let body = summary.pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    require(Data(base64Encoded: body).map(Array.init) == der, "the PEM does not decode to the DER")
    return 0
}
