#!/usr/bin/env python3
"""Checks pre-arrival handoff documents with an implementation independent of the Swift one.

Usage: validate.py FOLDER   (every *.json in FOLDER is one document)

Each document is parsed into the R4 (4.0.1) models of PyPI's fhir.resources 6.4.0 (pydantic 1), which check
every element's type, cardinality and required-ness, and the Bundle invariants are evaluated in FHIRPath with
fhirpathpy: bdl-7 (fullUrl unique), bdl-9 (a document has an identifier), bdl-10 (a timestamp), bdl-11 (the
Composition first) and "every reference resolves inside the bundle". Prints one line per document and exits 1
when any fails, with the reason (element paths, never values).
"""
import json
import pathlib
import sys

from fhir.resources import __fhir_version__
from fhir.resources.bundle import Bundle
from fhirpathpy import evaluate
from fhirpathpy.models import models

# The invariants as FHIR R4 states them on Bundle (evaluated with fhirpathpy's R4 model), and the reference check.
# bdl-10's `timestamp.hasValue()` is written `timestamp.exists()`: fhirpathpy does not implement hasValue(), and a
# JSON primitive without a value cannot exist. Each must evaluate to [True].
INVARIANTS = {
    "bdl-7": "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl & iif(resource.meta.versionId.exists(),"
    " resource.meta.versionId, '')).isDistinct()",
    "bdl-9": "type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
    "bdl-10": "type = 'document' implies timestamp.exists()",
    "bdl-11": "type = 'document' implies entry.first().resource.is(Composition)",
    "every entry has a fullUrl": "entry.all(fullUrl.exists())",
    "every reference resolves": "entry.resource.descendants().where($this.reference.exists()).reference"
    ".all(%fullUrls contains $this)",
}


def check(path):
    """The problems of one document (an empty list when it is valid)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return [f"not UTF-8 JSON: {type(error).__name__}"]
    problems = []
    try:
        Bundle.parse_obj(data)
    except Exception as error:  # pydantic.ValidationError lists every failing element
        problems.append(f"fhir.resources {__fhir_version__}: {error}")
    full_urls = [e.get("fullUrl") for e in data.get("entry", []) if isinstance(e, dict)]
    for name, expression in INVARIANTS.items():
        try:
            result = evaluate(data, expression, {"fullUrls": full_urls}, models["r4"])
        except Exception as error:
            problems.append(f"{name}: FHIRPath failed: {error}")
            continue
        if result != [True]:
            problems.append(f"{name} failed ({expression})")
    if data.get("type") == "document":
        dangling = evaluate(
            data,
            "entry.resource.descendants().where($this.reference.exists()).reference"
            ".where((%fullUrls contains $this).not())",
            {"fullUrls": full_urls},
            models["r4"],
        )
        if dangling:
            problems.append(f"{len(dangling)} reference(s) do not resolve inside the bundle")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    folder = pathlib.Path(sys.argv[1])
    files = sorted(folder.glob("*.json"))
    if not files:
        print(f"no *.json in {folder}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        problems = check(path)
        if problems:
            failed += 1
            print(f"FAIL {path.name}")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"ok   {path.name}")
    print(f"{len(files) - failed}/{len(files)} documents valid (FHIR {__fhir_version__}, fhir.resources, fhirpathpy)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
