"""The ingest benchmark's own code path with a handful of incidents: its dev server, the baseline's
worker and starter processes, `followthrough worker` and `followthrough api`, signed deliveries and
its bookkeeping. It proves the benchmark works; its figures are printed, never asserted."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.processes import ROOT

INCIDENTS = 20


def test_the_ingest_benchmark_starts_every_postmortem_and_reports_both_rates() -> None:
    command = [sys.executable, "bench/ingest.py", "--incidents", str(INCIDENTS)]
    command += ["--concurrency", "4", "--phases", "baseline,ingest"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"baseline: {INCIDENTS}/{INCIDENTS} no-op workflows completed (visibility)" in lines
    assert (
        f"ingest: {INCIDENTS}/{INCIDENTS} deliveries answered 202 started; {INCIDENTS} "
        f"postmortems and {INCIDENTS} deliveries recorded; {INCIDENTS} postmortem workflows "
        "running (visibility)"
    ) in lines
    assert "ingest: API log: 0 warnings, 0 errors" in lines
    # Both rates and their ratio, whatever they are.
    rates = next(line for line in lines if line.startswith("workflows started per second"))
    assert re.fullmatch(r"workflows started per second +[0-9.]+ +[0-9.]+ +[0-9.]+x", rates.strip())
    for quantile in ("p50", "p95"):
        latency = next(
            line for line in lines if line.startswith(f"start call / delivery {quantile}")
        )
        assert re.search(r"\(ms\) +[0-9]+ +[0-9]+ +[0-9.]+x$", latency), latency
    assert any(line.startswith("ingest/baseline: ") for line in lines)
    assert f"reproduce: python bench/ingest.py --incidents {INCIDENTS} " in done.stdout
