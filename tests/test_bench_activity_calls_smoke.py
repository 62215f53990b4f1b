"""The activity-calls benchmark's own code path with a few items: the typed copy of `workflows/`,
one worker per variant on the product's `build_worker`, parked items and the report. It proves
the benchmark works (and that today's workflows open and park with typed activity calls under the
sandbox); its figures are printed, never asserted."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.processes import ROOT

ITEMS = 4


def test_the_activity_calls_benchmark_parks_items_both_ways_and_reports_ratios() -> None:
    command = [sys.executable, "bench/activity_calls.py", "--items", str(ITEMS), "--rounds", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    clean = "worker log: 0 warnings, 0 errors, 0 records/notices on a retry"
    names = next(line for line in lines if line.startswith("round 1 names: "))
    typed = next(line for line in lines if line.startswith("round 1 typed: "))
    assert names.startswith(f"round 1 names: {ITEMS}/{ITEMS} parked, workflows from {ROOT}")
    assert re.match(rf"round 1 typed: {ITEMS}/{ITEMS} parked, workflows from /\S+/typed/", typed)
    assert names.endswith(clean) and typed.endswith(clean)
    # Both ways the items schedule the same activities (the typed copy changes no command); an
    # approved item's owner is told it is theirs (the item_assigned hand-off) before it parks;
    # its ticket asks for its impact facts first (the impact-priority patch).
    scheduled = "scheduled impact_facts, open_ticket, record_action_item, send_notice"
    assert f"round 1 names: {scheduled}" in lines
    assert f"round 1 typed: {scheduled}" in lines
    assert "round 1: the same activities both ways" in lines
    # Every activity the workflows call is called typed in the copy.
    assert "RecordActivities.record_action_item" in done.stdout
    assert "NoticeActivities.send_notice" in done.stdout
    for label in ("worker RSS per cached workflow (KiB)", "worker CPU per started workflow (ms)"):
        row = next(line for line in lines if line.startswith(label))
        assert re.search(r" 1 +[0-9.-]+ +[0-9.-]+ +(-|[0-9.]+x)$", row), row
    assert "reproduce: python bench/activity_calls.py --items 4 --rounds 1" in done.stdout
