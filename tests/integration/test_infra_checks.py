"""infra/check parses the Bicep and runs checkov for real: it passes on infra/ and fails on a bad change.

The first run in a fresh clone creates .venv-checkov (about 40 s); later runs take about 5 s each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "infra" / "check"
VENV = Path(os.environ.get("CHECKOV_VENV", ROOT / ".venv-checkov"))


def run_check(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script)],
        env=os.environ | {"CHECKOV_VENV": str(VENV)},
        capture_output=True,
        text=True,
        timeout=110,
    )


@pytest.fixture(scope="module", name="passing_run")
def _passing_run() -> subprocess.CompletedProcess[str]:
    return run_check(CHECK)


@pytest.fixture(name="infra_copy")
def _infra_copy(tmp_path: Path, passing_run: subprocess.CompletedProcess[str]) -> Path:
    """A copy of infra/ to break on purpose, checked with the virtualenv the passing run prepared."""
    assert passing_run.returncode == 0, passing_run.stdout + passing_run.stderr
    copy = tmp_path / "infra"
    shutil.copytree(ROOT / "infra", copy)
    return copy


def test_the_infrastructure_passes_its_checks(passing_run: subprocess.CompletedProcess[str]):
    """infra/check exits 0 on the committed Bicep: every file parses and no checkov finding is left open."""
    assert passing_run.returncode == 0, passing_run.stdout + passing_run.stderr
    assert "Failed checks: 0" in passing_run.stdout


def test_a_finding_without_a_written_skip_fails_the_check(infra_copy: Path):
    """Removing the reasoned skip for a real finding (storage network rules) makes infra/check fail on it."""
    storage = infra_copy / "modules" / "storage.bicep"
    storage.write_text(
        "".join(line for line in storage.read_text().splitlines(keepends=True) if "CKV_AZURE_35" not in line)
    )
    result = run_check(infra_copy / "check")
    assert result.returncode != 0
    assert "CKV_AZURE_35" in result.stdout


def test_a_bicep_file_that_does_not_parse_fails_the_check(infra_copy: Path):
    """A syntax error in a module fails infra/check and names the file, rather than being silently skipped."""
    module = infra_copy / "modules" / "servicebus.bicep"
    module.write_text(module.read_text().replace("resource busNamespace ", "resource busNamespace = = ", 1))
    result = run_check(infra_copy / "check")
    assert result.returncode != 0
    assert "servicebus.bicep: does not parse" in result.stderr
