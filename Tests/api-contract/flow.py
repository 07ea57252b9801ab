#!/usr/bin/env python3
"""Walks one incident through a running gateway with a card on the reader (scripts/stack.sh) and checks every answer
against docs/gateway-api.yaml: the responses a fuzz rarely reaches, with real data (a summary read back from the
vault, a category's details, the list, the close).

Usage: flow.py <base-url>   (KYUKYU_FUZZ_CREW, KYUKYU_FUZZ_PASSWORD, KYUKYU_FUZZ_TOTP_SECRET, KYUKYU_FUZZ_STATE as for
signin.py). Exits non-zero, naming the operation and the schema error, when an answer contradicts the document.
"""
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request

import jsonschema
import referencing
import yaml

HERE = pathlib.Path(__file__).resolve().parent
SPEC = HERE.parent.parent / "docs" / "gateway-api.yaml"
ROOT_ID = "urn:kyukyu:gateway-api"


def main() -> int:
    base = sys.argv[1].rstrip("/")
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    document["$id"] = ROOT_ID
    resource = referencing.Resource.from_contents(document, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource(ROOT_ID, resource)

    def escape(part):
        return part.replace("~", "~0").replace("/", "~1")

    def schema_of(path, method, status):
        """A reference to the response's schema inside the document (so its own references resolve)."""
        pointer = f"/paths/{escape(path)}/{method}/responses/{status}"
        response = document["paths"][path][method]["responses"][str(status)]
        while "$ref" in response:
            pointer = response["$ref"][1:]
            response = document["components"]["responses"][response["$ref"].split("/")[-1]]
        media = next(iter(response["content"]))
        return {"$ref": f"{ROOT_ID}#{pointer}/content/{escape(media)}/schema"}

    session = {}
    for line in subprocess.run(
        [sys.executable, str(HERE / "signin.py"), base], check=True, capture_output=True, text=True
    ).stdout.splitlines():
        key, value = line.split("=", 1)
        session[key] = value.strip("'")
    headers = {
        "Cookie": f"kyukyu_session={session['KYUKYU_SESSION_COOKIE']}",
        "X-CSRF-Token": session["KYUKYU_CSRF_TOKEN"],
        "Content-Type": "application/json",
    }
    failures = []

    def call(method, path, template, body=None, expect=200):
        request = urllib.request.Request(
            base + path, method=method, headers=headers, data=None if body is None else json.dumps(body).encode()
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, data = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, data = error.code, error.read()
        label = f"{method} {template} -> {status}"
        if status not in (expect if isinstance(expect, tuple) else (expect,)):
            failures.append(f"{label}: expected {expect}: {data[:300]!r}")
            return None
        value = json.loads(data)
        validator = jsonschema.Draft202012Validator(
            schema_of(template, method.lower(), status), registry=registry, format_checker=jsonschema.FormatChecker()
        )
        for error in validator.iter_errors(value):
            failures.append(f"{label}: {error.json_path}: {error.message[:300]}")
        print(f"flow: {label} checked")
        return value

    created = call("POST", "/api/v1/incidents", "/api/v1/incidents", {}, expect=201)
    if created is None:
        print("\n".join(failures), file=sys.stderr)
        return 1
    incident = created["id"]
    item = f"/api/v1/incidents/{incident}"
    call("POST", item + "/consent", "/api/v1/incidents/{id}/consent", {"basis": "verbal"})
    view = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = call("GET", item, "/api/v1/incidents/{id}")
        if view is None or view.get("phase") == "summary" and all(
            state["status"] != "pending" for state in view["categories"].values()
        ):
            break
        time.sleep(0.5)
    if view is None or view.get("phase") != "summary":
        failures.append(f"the incident did not reach its summary in 60 s (phase {view and view.get('phase')})")
    elif not view.get("summary", {}).get("patient"):
        failures.append("the summary has no patient")
    for category in ("qualification", "medications", "visits"):
        if view and view["categories"][category]["status"] in ("arrived", "late"):
            call("GET", f"{item}/details/{category}", "/api/v1/incidents/{id}/details/{category}")
    # The crew's observations, with real values (the incident view carries them back).
    hospitals = call("GET", "/api/v1/hospitals", "/api/v1/hospitals")
    code = hospitals["hospitals"][0]["code"] if hospitals and hospitals.get("hospitals") else None
    call("PATCH", item + "/observations", "/api/v1/incidents/{id}/observations", {
        "chiefComplaint": "trauma", "complaintNote": "flow", "priority": "yellow", "etaMinutes": 9, "hospital": code,
        "trauma": {"mechanism": "fall-from-height", "injuries": ["head", "spine"]},
        "onset": {"kind": "onset", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))},
    })
    call("POST", item + "/vitals", "/api/v1/incidents/{id}/vitals", {
        "jcs": 2, "gcs": {"eye": 4, "verbal": 4, "motor": 6}, "heartRate": 96, "systolic": 128, "diastolic": 80,
        "respiratoryRate": 18, "spo2": 98, "temperature": 36.6, "bloodGlucose": 104,
    })
    call("POST", item + "/vitals", "/api/v1/incidents/{id}/vitals", {"heartRate": 90})
    call("POST", item + "/treatments", "/api/v1/incidents/{id}/treatments", {"kind": "spinal-immobilisation"})
    call("POST", item + "/treatments", "/api/v1/incidents/{id}/treatments", {"kind": "oxygen"})
    call("DELETE", item + "/treatments/1", "/api/v1/incidents/{id}/treatments/{index}")
    call("DELETE", item + "/vitals/1", "/api/v1/incidents/{id}/vitals/{index}")
    refused = call("POST", item + "/vitals", "/api/v1/incidents/{id}/vitals", {"heartRate": 301}, expect=422)
    if refused is not None and "301" in refused.get("detail", ""):
        failures.append("the refusal echoes the value")
    view = call("GET", item, "/api/v1/incidents/{id}")
    if view is not None and [v.get("heartRate") for v in view["observations"]["vitals"]] != [96]:
        failures.append(f"the observations were not kept: {view['observations']}")
    # The handoff: 202 with the view's `handoff` block where the terminal has receiving hospitals configured, 409
    # where it has none; a code not in the list is refused naming the field.
    sent = call("POST", item + "/handoff", "/api/v1/incidents/{id}/handoff", {"hospital": code}, expect=(202, 409))
    if sent is not None and "handoff" in sent and sent["handoff"]["hospital"] != code:
        failures.append(f"the handoff went elsewhere: {sent['handoff']}")
    refused = call("POST", item + "/handoff", "/api/v1/incidents/{id}/handoff", {"hospital": "0000000000"}, expect=422)
    if refused is not None and (refused.get("invalidParams") or [{}])[0].get("name") != "hospital":
        failures.append(f"the unknown hospital's refusal does not name the field: {refused}")
    call("GET", "/api/v1/incidents", "/api/v1/incidents")
    call("GET", "/api/v1/reader", "/api/v1/reader")
    call("GET", "/api/v1/session", "/api/v1/session")
    closed = call("POST", item + "/close", "/api/v1/incidents/{id}/close", {})
    if closed is not None and "summary" in closed:
        failures.append("the closed incident still carries a summary")
    call("GET", f"{item}/details/medications", "/api/v1/incidents/{id}/details/{category}", expect=404)
    if failures:
        print("flow: the answers contradict the document:", file=sys.stderr)
        print("\n".join("  " + failure for failure in failures), file=sys.stderr)
        return 1
    print("flow: every answer as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
