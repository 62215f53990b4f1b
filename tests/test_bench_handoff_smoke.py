"""The hand-off benchmark's own code path with a handful of webhooks: its dev server, worker, API
and both phases. It proves the benchmark works; its figures are printed, never asserted."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.processes import ROOT


def test_the_handoff_benchmark_reports_p50_and_p95_beside_its_baseline() -> None:
    command = [sys.executable, "bench/handoff_notice.py", "--incidents", "6"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for quantile in ("p50", "p95"):
        row = next(line for line in lines if line.rstrip().endswith("x") and quantile in line)
        assert re.search(r" +[0-9]+ +[0-9]+ +[0-9.]+x$", row), row
    assert "incidents: 6 webhooks, 6 no-op round trips" in lines
    assert "reproduce: python bench/handoff_notice.py --incidents 6" in lines
