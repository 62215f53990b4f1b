"""The dashboard benchmark's own code path with tiny sizes: its scratch databases on PostgreSQL,
the seeding, the real app in-process and its report. It proves the benchmark works; its timings
are printed, never asserted."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import psycopg
import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.postgres


def test_the_dashboard_benchmark_times_every_page_at_both_sizes(postgres_server: str) -> None:
    prefix = f"followthrough_benchsmoke_{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "bench/dashboard.py", "--small", "20", "--large", "60"]
    command += ["--rounds", "2", "--warmup", "1", "--prefix", prefix]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"page \(ms\) +20 postmortems +60 postmortems +large/small", lines[0])
    timed = [line for line in lines if re.search(r"( +[0-9.]+){4} +[0-9.]+x$", line)]
    labels = [re.split(r" {2,}", line)[0] for line in timed]
    assert labels[0] == "overview" and "overdue action items" in labels
    assert {"search 'timeout'", "search 'certificate expired'"} <= set(labels)
    # Each period measured afresh (as after a change) and again (from the metrics cache).
    reliability = [label for label in labels if label.startswith("reliability (")]
    assert [label.split(", ")[-1] for label in reliability] == ["first view", "again"] * 2
    # What each database holds: exactly the postmortems seeded, and their items and history.
    for size, count in (("small", 20), ("large", 60)):
        rows = next(line for line in lines if line.startswith(f"{size}: {count} postmortems, "))
        assert re.search(r"[0-9,]+ action items, [0-9,]+ audit events; seeded in \d+ s$", rows)
    assert "FAILED" not in done.stdout
    assert "reproduce: python bench/dashboard.py --small 20 --large 60" in done.stdout
    # Its scratch databases are gone.
    with psycopg.connect(postgres_server) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)
        ).fetchall()
    assert left == []
