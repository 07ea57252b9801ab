#!/usr/bin/env python3
"""Checks docs/gateway-api.yaml: a valid OpenAPI 3.1 document, loadable by schemathesis, and as tight as the
contract wants (closed request bodies, bounded strings, the auth and error responses on every route).

Usage: python3 Tests/api-contract/check_spec.py [--write-routes] [path/to/spec.yaml]
Needs the pinned packages of Tests/api-contract/requirements.txt. Exits non-zero on any finding, printing one line
per finding and a closing 'N passed, N failed' line.

routes.txt beside this script lists "METHOD /path" for every operation; it must equal the document (a Swift test of
the gateway compares the router with it). --write-routes rewrites it from the document.
"""
import pathlib
import sys

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SPEC = ROOT / "docs" / "gateway-api.yaml"
ROUTES = HERE / "routes.txt"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
JSON_TYPES = ("application/json", "application/problem+json")


def resolve(document, node):
    """Follows $ref (local only) until a non-reference node."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = document
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def walk_schema(document, schema, where, visit, seen=None):
    """Calls visit(schema, where) on every subschema, following references once each."""
    seen = set() if seen is None else seen
    if isinstance(schema, dict) and "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen.add(schema["$ref"])
        walk_schema(document, resolve(document, schema), where + " -> " + schema["$ref"].split("/")[-1], visit, seen)
        return
    if not isinstance(schema, dict):
        return
    visit(schema, where)
    for key in ("properties", "patternProperties"):
        for name, sub in schema.get(key, {}).items():
            walk_schema(document, sub, f"{where}.{name}", visit, seen)
    for key in ("items", "additionalProperties", "propertyNames", "not", "if", "then", "else", "contains",
                "unevaluatedProperties"):
        if isinstance(schema.get(key), dict):
            walk_schema(document, schema[key], f"{where}[{key}]", visit, seen)
    for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
        for index, sub in enumerate(schema.get(key, [])):
            walk_schema(document, sub, f"{where}[{key}{index}]", visit, seen)


def types_of(schema):
    value = schema.get("type")
    return set(value) if isinstance(value, list) else ({value} if value else set())


def check_strings_bounded(document, schema, where, findings):
    def visit(node, path):
        if "string" in types_of(node) and "maxLength" not in node and "enum" not in node and "const" not in node:
            findings.append(f"{path}: a string without maxLength")
    walk_schema(document, schema, where, visit)


def check_objects_closed(document, schema, where, findings):
    def visit(node, path):
        closed = node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False
        if "object" in types_of(node) and not closed:
            findings.append(f"{path}: a request object without additionalProperties: false")
    walk_schema(document, schema, where, visit)


def routes_of(document):
    return sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    )


def main():
    arguments = sys.argv[1:]
    write_routes = "--write-routes" in arguments
    paths = [argument for argument in arguments if not argument.startswith("--")]
    spec = pathlib.Path(paths[0]) if paths else SPEC
    document = yaml.safe_load(spec.read_text(encoding="utf-8"))
    checks = []  # (name, findings)

    # 1. OpenAPI 3.1 validity (openapi-spec-validator).
    findings = []
    try:
        validate(document, cls=OpenAPIV31SpecValidator)
    except Exception as error:  # noqa: BLE001 - any validation error is a finding
        findings.append(f"not valid OpenAPI 3.1: {error}")
    checks.append(("valid OpenAPI 3.1", findings))

    # 2. schemathesis can load it and enumerate every operation.
    findings = []
    try:
        import schemathesis

        schema = schemathesis.openapi.from_path(str(spec))
        operations = [result.ok() for result in schema.get_all_operations()]
        if len(operations) != len(routes_of(document)):
            findings.append(f"schemathesis sees {len(operations)} operations, the document has {len(routes_of(document))}")
    except Exception as error:  # noqa: BLE001
        findings.append(f"schemathesis cannot load the document: {error!r}")
    checks.append(("loadable by schemathesis", findings))

    # 3. Tightness: request bodies closed; every string in JSON bounded; parameters bounded.
    closed, bounded = [], []
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            where = f"{method.upper()} {path}"
            for parameter in shared + operation.get("parameters", []):
                parameter = resolve(document, parameter)
                check_strings_bounded(document, parameter["schema"], f"{where} parameter {parameter['name']}", bounded)
            body = resolve(document, operation.get("requestBody", {}))
            for media, content in body.get("content", {}).items():
                check_objects_closed(document, content["schema"], f"{where} request", closed)
                check_strings_bounded(document, content["schema"], f"{where} request", bounded)
            for status, response in operation["responses"].items():
                response = resolve(document, response)
                for media, content in response.get("content", {}).items():
                    if media in JSON_TYPES:
                        check_strings_bounded(document, content["schema"], f"{where} {status} {media}", bounded)
    checks.append(("request bodies are closed objects", sorted(set(closed))))
    checks.append(("every JSON string has a maxLength", sorted(set(bounded))))

    # 4. The contract's auth and error responses.
    findings = []
    for path, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            where = f"{method.upper()} {path}"
            statuses = set(operation["responses"])
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            if "operationId" not in operation:
                findings.append(f"{where}: no operationId")
            if schemes and "401" not in statuses:
                findings.append(f"{where}: authenticated but no 401")
            if "crewSession" in schemes and method != "get" and "csrfToken" not in schemes:
                findings.append(f"{where}: state-changing crew route without the CSRF token")
            if "csrfToken" in schemes and "403" not in statuses:
                findings.append(f"{where}: CSRF-protected but no 403")
            if path.startswith("/api/v1/") and "403" not in statuses:
                findings.append(f"{where}: no 403 for a foreign Origin")
            if ("crewSession" in schemes and path.startswith("/api/v1/") and not path.startswith("/api/v1/session")
                    and "423" not in statuses):
                findings.append(f"{where}: a crew route without 423 session-locked")
            if "requestBody" in operation:
                for needed in ("400", "413", "415", "422"):
                    if needed not in statuses:
                        findings.append(f"{where}: takes a body but has no {needed}")
            if "{id}" in path and "404" not in statuses:
                findings.append(f"{where}: takes an incident ID but has no 404")
            for status, response in operation["responses"].items():
                response = resolve(document, response)
                if status.startswith(("4", "5")) and status != "503":
                    media = set(response.get("content", {}))
                    if media != {"application/problem+json"}:
                        findings.append(f"{where} {status}: errors must be application/problem+json, not {media}")
    checks.append(("auth and error responses on every route", findings))

    # 5. routes.txt equals the document.
    findings = []
    expected = "\n".join(routes_of(document)) + "\n"
    if write_routes:
        ROUTES.write_text(expected, encoding="utf-8")
    if not ROUTES.exists() or ROUTES.read_text(encoding="utf-8") != expected:
        findings.append("routes.txt differs from the document (run with --write-routes, then review)")
    checks.append(("routes.txt matches the document", findings))

    failed = 0
    for name, findings in checks:
        status = "ok" if not findings else "FAILED"
        print(f"{status}: {name}")
        for finding in findings:
            print(f"    {finding}")
        failed += bool(findings)
    print(f"check_spec: {len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
