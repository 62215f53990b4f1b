"""The alerts benchmark's own code path with tiny numbers: the real app in-process, a Temporal
dev server, Alertmanager notifications fired and resolved, and its report. It proves the
benchmark works; its timings are printed, never asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.processes import ROOT


def test_the_alerts_benchmark_reports_every_phase() -> None:
    command = [sys.executable, "bench/alerts.py", "--incidents", "3", "--ratio", "4"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=180, env=environment
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"phase +requests +p50 ms +p95 ms +cpu ms/req", lines[0])
    counts = {re.split(r" {2,}", line)[0]: int(line.split()[-4]) for line in lines[1:7]}
    assert counts == {
        "no-op GET /api/me": 12,
        "incident resolutions": 3,
        "alerts firing, 1 write each": 6,
        "alerts resolved, 1 write each": 6,
        "alerts firing": 6,
        "alerts resolved": 6,
    }
    for label in ("one write each", "as kept"):
        assert re.search(rf"^{label}: firing p95 / no-op p95: [0-9.]+x", done.stdout, re.M)
    assert "store growth during the alerts (both ways): 12 alert events" in done.stdout
    assert "FAILED" not in done.stdout
    assert "reproduce: python bench/alerts.py --incidents 3 --ratio 4" in done.stdout
