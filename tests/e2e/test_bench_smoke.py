"""The benchmark's smoke run: every measurement of ``make bench`` on a few
rows, in well under a minute. Timings never decide anything here; the test
checks that the run finishes, and that its last line has every number and
each of them is positive."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from scripts.hoststack import ROOT

pytestmark = [pytest.mark.bench]

FINAL_LINE = re.compile(
    r"ratio_vs_copy=(?P<ratio_vs_copy>\S+) ratio_vs_old=(?P<ratio_vs_old>\S+) "
    r"rss_mb_3m=(?P<rss_mb_3m>\S+) rss_mb_12m=(?P<rss_mb_12m>\S+) "
    r"e2e_p50_s=(?P<e2e_p50_s>\S+) start_p50_s=(?P<start_p50_s>\S+)")


def test_smoke_run_ends_with_every_number_positive():
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--rows", "20000", "--big-rows", "30000",
         "--old-rows", "2000", "--uploads", "2", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    last = done.stdout.strip().splitlines()[-1]
    match = FINAL_LINE.fullmatch(last)
    assert match, f"unexpected last line: {last!r}"
    numbers = {name: float(value) for name, value in match.groupdict().items()}
    assert all(value > 0 for value in numbers.values()), numbers
    assert "ingest (worker code path)" in done.stdout
