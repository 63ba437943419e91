"""The API must fit Lambda's 250 MB limit: no pandas, no pyarrow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.hoststack import ROOT

pytestmark = pytest.mark.unit

HEAVY = ("pandas", "pyarrow", "numpy")


def test_importing_the_app_loads_no_heavy_library():
    probe = (f"import sys, app; heavy = [m for m in {HEAVY!r} if m in sys.modules]; "
             "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT / "chalice_app",
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "", f"the API imports {result.stdout.strip()}"


def test_the_lambda_requirements_name_no_heavy_library():
    lines = (ROOT / "chalice_app" / "requirements.txt").read_text().splitlines()
    names = {line.split("=")[0].split(">")[0].split("<")[0].strip().lower()
             for line in lines if line.strip() and not line.startswith("#")}
    assert not names & set(HEAVY)
