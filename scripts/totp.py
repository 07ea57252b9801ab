#!/usr/bin/env python3
"""Prints the current TOTP code (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps) for a base32 secret.

Standard library only. Used by `make run` to show the demo crew's code, and by the browser tests to sign in.

    scripts/totp.py JBSWY3DPEHPK3PXP            # 6 digits for now
    scripts/totp.py JBSWY3DPEHPK3PXP --at 59    # for a given Unix time (RFC 6238 test vectors)
    scripts/totp.py JBSWY3DPEHPK3PXP --remaining    # the code, then the seconds it stays valid
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


def main() -> int:
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
