#!/usr/bin/env python3
"""Signs a crew member in to a running gateway and prints the session as shell assignments.

Usage: signin.py <base-url>   (reads KYUKYU_FUZZ_CREW, KYUKYU_FUZZ_PASSWORD, KYUKYU_FUZZ_TOTP_SECRET;
KYUKYU_FUZZ_CA: a CA bundle for https, or "false" to skip verification)
Prints: KYUKYU_SESSION_COOKIE=<cookie value> and KYUKYU_CSRF_TOKEN=<token>, shell-quoted.
The TOTP code (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits) is computed with the standard library. A gateway refuses
a code twice, so the time step used is remembered in $KYUKYU_FUZZ_STATE (if set) and the next sign-in waits for a
fresh step.
"""
import base64
import hashlib
import hmac
import json
import os
import shlex
import ssl
import struct
import sys
import time
import urllib.error
import urllib.request

STEP = 30
LOCK_WAIT = 120


def totp(secret_base32: str, step: int, digits: int = 6) -> str:
    """RFC 6238 TOTP for the given time step (RFC 4226 HOTP over the step counter)."""
    key = base64.b32decode(secret_base32.upper().replace(" ", "") + "=" * (-len(secret_base32.replace(" ", "")) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return str(code).zfill(digits)


def fresh_step() -> int:
    """The current time step, waiting for the next one if the last sign-in used it."""
    state = os.environ.get("KYUKYU_FUZZ_STATE")
    step = int(time.time()) // STEP
    if state and os.path.exists(state):
        with open(state, encoding="utf-8") as handle:
            last = int(handle.read().strip() or "0")
        if step <= last:
            time.sleep((last + 1) * STEP - time.time() + 0.5)
            step = int(time.time()) // STEP
    if state:
        with open(state, "w", encoding="utf-8") as handle:
            handle.write(str(step))
    return step


def context():
    ca = os.environ.get("KYUKYU_FUZZ_CA", "")
    if ca == "false":
        return ssl._create_unverified_context()  # noqa: S323 - explicit opt-out for a self-signed test gateway
    return ssl.create_default_context(cafile=ca or None)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    base = sys.argv[1].rstrip("/")
    try:
        crew = os.environ["KYUKYU_FUZZ_CREW"]
        password = os.environ["KYUKYU_FUZZ_PASSWORD"]
        secret = os.environ["KYUKYU_FUZZ_TOTP_SECRET"]
    except KeyError as missing:
        print(f"signin: set {missing.args[0]}", file=sys.stderr)
        return 2
    # The fuzz may lock the account: schemathesis reuses the crew ID it read from GET /api/v1/session in its own
    # (wrong) sign-ins. A lock is waited out (retryAfterSeconds, at most LOCK_WAIT seconds in all), then a fresh code.
    waited = 0
    while True:
        body = json.dumps({"crewId": crew, "password": password, "totp": totp(secret, fresh_step())}).encode()
        request = urllib.request.Request(
            base + "/api/v1/session", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(
                request, timeout=30, context=context() if base.startswith("https") else None
            ) as response:
                session = json.load(response)
                cookies = response.headers.get_all("Set-Cookie") or []
            break
        except urllib.error.HTTPError as error:
            text = error.read()
            retry = json.loads(text).get("retryAfterSeconds", 0) if error.code == 423 else None
            if retry is None or waited + retry > LOCK_WAIT:
                print(f"signin: {error.code} {text[:300]!r}", file=sys.stderr)
                return 1
            print(f"signin: the account is locked; waiting {retry} s", file=sys.stderr)
            time.sleep(retry + 0.5)
            waited += retry
    cookie = next((c.split(";", 1)[0].split("=", 1)[1] for c in cookies if c.startswith("kyukyu_session=")), None)
    if not cookie or not session.get("csrfToken"):
        print("signin: no kyukyu_session cookie or csrfToken in the answer", file=sys.stderr)
        return 1
    print(f"KYUKYU_SESSION_COOKIE={shlex.quote(cookie)}")
    print(f"KYUKYU_CSRF_TOKEN={shlex.quote(session['csrfToken'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
