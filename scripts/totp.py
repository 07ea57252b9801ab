#!/usr/bin/env python3
"""Prints the current TOTP code (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps) for a base32 secret.

Standard library only. Used by `make run` to show the demo crew's code, and by the browser tests to sign in.

    scripts/totp.py JBSWY3DPEHPK3PXP            # 6 digits for now
    scripts/totp.py JBSWY3DPEHPK3PXP --at 59    # for a given Unix time (RFC 6238 test vectors)
    scripts/totp.py JBSWY3DPEHPK3PXP --remaining    # the code, then the seconds it stays valid
    scripts/totp.py --self-test                 # checks the RFC 6238 appendix B SHA-1 vectors
"""
import argparse
import base64
import hashlib
import hmac
import struct
import sys
import time


def totp(secret_base32: str, at: float, digits: int = 6, step: int = 30) -> str:
    """The RFC 6238 code for the secret at Unix time `at`."""
    cleaned = secret_base32.strip().replace(" ", "").upper()
    key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    counter = int(at) // step
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % (10**digits)).zfill(digits)


# RFC 6238 appendix B, SHA-1: the secret is the ASCII "12345678901234567890", 8 digits.
RFC6238_SHA1 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
                (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]


def self_test() -> int:
    secret = base64.b32encode(b"12345678901234567890").decode()
    failures = [(t, want, totp(secret, t, 8)) for t, want in RFC6238_SHA1 if totp(secret, t, 8) != want]
    for t, want, got in failures:
        print(f"totp.py: at {t} expected {want}, got {got}", file=sys.stderr)
    print("totp.py self-test: %d passed, %d failed" % (len(RFC6238_SHA1) - len(failures), len(failures)))
    return 1 if failures else 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    parser = argparse.ArgumentParser(description="Print the current TOTP code for a base32 secret.")
    parser.add_argument("secret", help="the base32 secret (as `kyukyu-gateway crew add` prints it)")
    parser.add_argument("--at", type=float, default=None, help="Unix time (default: now)")
    parser.add_argument("--digits", type=int, default=6)
    parser.add_argument("--step", type=int, default=30)
    parser.add_argument("--remaining", action="store_true", help="also print the seconds the code stays valid")
    args = parser.parse_args()
    now = time.time() if args.at is None else args.at
    try:
        code = totp(args.secret, now, args.digits, args.step)
    except (ValueError, base64.binascii.Error):
        print("totp.py: the secret is not base32", file=sys.stderr)
        return 2
    if args.remaining:
        print(code, args.step - int(now) % args.step)
    else:
        print(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
