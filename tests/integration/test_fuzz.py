"""A bounded schemathesis run over every operation of the real server (issue 9).

All four phases: the schema's examples, coverage (boundary and negative values of every
keyword), fuzzing, and stateful sequences that follow the schema's links (create a collection,
upsert into it, read the documents back, delete them). The checks are the ones that find bugs
rather than taste: no 5xx, statuses, content types, headers and bodies as documented.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.server import server

pytestmark = pytest.mark.slow

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
MAX_EXAMPLES = os.environ.get("SENTSIM_FUZZ_EXAMPLES", "60")


def test_schemathesis_finds_no_server_error_or_schema_violation(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis is not installed (pip install -r requirements-dev.lock)")
    report = tmp_path / "schemathesis.json"
    # The tiny random BERT doubles as an (untrained) SimBERT, so /paraphrase runs for real.
    args = ("--model", str(tiny_bert_dir), "--generator", str(tiny_bert_dir))
    with server(tmp_path, *args) as (_, url):
        run = subprocess.run(
            [
                st,
                "run",
                f"{url}/openapi.json",
                "--checks",
                ",".join(CHECKS),
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                "0",
                "--workers",
                "1",  # schemathesis's coverage phase is not thread-safe on Python 3.11
                "--generation-database",
                "none",
                "--no-color",
                "--report",
                "json",
                "--report-json-path",
                str(report),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,  # schemathesis keeps a .schemathesis/ cache in its working folder
        )
    result = json.loads(report.read_text())
    failures, errors = result["failures"], result["errors"]
    assert run.returncode == 0 and not failures and not errors, run.stdout[-6000:]
    cases = result["test_cases"]["generated"]
    assert result["operations"]["tested"] == result["operations"]["total"] >= 15
    assert cases >= 1000
    stateful = [line.strip() for line in run.stdout.splitlines() if "Scenarios:" in line]
    stateful += [line.strip() for line in run.stdout.splitlines() if "API Links:" in line]
    print(f"\nschemathesis: {cases} test cases, 0 failures, 0 errors; {stateful}")  # noqa: T201
