"""PHI at rest (issue 8, "Figures"): after the browser scenarios, no file of any gateway's state folder (vault
database, WAL, SHM, crew database, keys, logs) nor the gateway's log file holds a synthetic patient's name (kanji
and kana, with and without the ideographic space), birth date (YYYYMMDD, YYYY-MM-DD, YYYY/MM/DD), address or insurer
number, as UTF-8 or as JSON \\u escapes. The values come from the stub's population, not from this file. Nor does any
hold the free-text notes the crew typed in the scenarios (test_observations.py's complaint note).

Runs after test_flows.py and test_observations.py (pytest takes files in name order) over every stack that ran in
the same session.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack import Patient, patient


def _escaped(text: str) -> list[bytes]:
    """The JSON \\uXXXX spellings of a non-ASCII string (lower and upper case hex)."""
    if text.isascii():
        return []
    lower = "".join(c if c.isascii() else f"\\u{ord(c):04x}" for c in text)
    return [lower.encode(), lower.upper().replace("\\U", "\\u").encode()]


def needles(p: Patient) -> dict[str, re.Pattern[bytes]]:
    """What to search for, by label (the label names the kind of value, never the value)."""
    texts: dict[str, str] = {}
    for label, value in (("name", p.name), ("kana", p.kana)):
        texts[f"{label} (U+3000)"] = value
        texts[f"{label} (no space)"] = value.replace("\u3000", "")
        texts[f"{label} (ASCII space)"] = value.replace("\u3000", " ")
    texts["address"] = p.address
    texts["address without marker"] = re.sub(r"（SYNTHETIC）$", "", p.address)
    patterns: dict[str, re.Pattern[bytes]] = {}
    for label, text in texts.items():
        spellings = [text.encode()] + _escaped(text)
        patterns[label] = re.compile(b"|".join(re.escape(s) for s in spellings))
    digits = {
        "birth date YYYYMMDD": p.birth,
        "birth date YYYY-MM-DD": p.birth_iso,
        "birth date YYYY/MM/DD": p.birth_iso.replace("-", "/"),
        "insurer number": p.insurer_number,
    }
    if len(p.insured_number) >= 6:
        digits["insured number"] = p.insured_number
    for label, text in digits.items():
        patterns[label] = re.compile(rb"(?<![0-9])" + re.escape(text.encode()) + rb"(?![0-9])")
    return patterns


def scan(files: list[Path], patients: list[Patient]) -> list[str]:
    """Every (file, patient number, kind of value) found."""
    found = []
    compiled = [(p, needles(p)) for p in patients]
    for path in files:
        data = path.read_bytes()
        for p, patterns in compiled:
            for label, pattern in patterns.items():
                if pattern.search(data):
                    found.append(f"{path}: patient {p.number}: {label}")
    return found


def test_no_patient_data_at_rest(used, tmp_path):
    if not used.stacks:
        pytest.skip("no browser scenario ran in this session (run the whole Tests/browser folder)")
    patients = [patient(n) for n in sorted(used.patients)]
    files: list[Path] = []
    for stack in used.stacks:
        state = stack.dir / "gateway"
        assert state.is_dir(), f"{state} missing"
        files += sorted(p for p in state.rglob("*") if p.is_file())
        log = stack.dir / "logs" / "gateway.log"
        assert log.is_file() and log.stat().st_size > 0, f"{log} missing or empty"
        files.append(log)
    names = {p.name for p in files}
    assert {"crew.sqlite", "vault.sqlite"} <= names, sorted(names)
    scanned = sum(p.stat().st_size for p in files)

    # The search itself works: each kind of value, written as the gateway would write it, is found.
    control = tmp_path / "control.log"
    sample = patients[0]
    control.write_text(
        f'{{"n":"{sample.name}","k":"{sample.kana.replace(chr(0x3000), "")}","b":"{sample.birth_iso}",'
        f'"a":"{sample.address}","i":"x{sample.insurer_number} "}}\n', encoding="utf-8"
    )
    hits = scan([control], [sample])
    for label in ("name (U+3000)", "kana (no space)", "birth date YYYY-MM-DD", "address", "insurer number"):
        assert any(h.endswith(label) for h in hits), (label, hits)
    escaped = tmp_path / "escaped.log"
    escaped.write_bytes(_escaped(sample.name)[0])
    assert scan([escaped], [sample]), "a JSON-escaped name is found"

    found = scan(files, patients)
    for note in sorted(used.notes):
        spellings = [note.encode()] + _escaped(note)
        pattern = re.compile(b"|".join(re.escape(s) for s in spellings))
        found += [f"{path}: a crew note" for path in files if pattern.search(path.read_bytes())]
    print(f"\n[browser] PHI at rest: {len(files)} files, {scanned} bytes, {len(patients)} synthetic patients "
          f"({', '.join(str(p.number) for p in patients)}) and {len(used.notes)} crew notes from {len(used.stacks)} stacks: "
          f"{len(found)} found")
    assert not found, "patient data at rest:\n" + "\n".join(found)
