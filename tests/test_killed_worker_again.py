"""The worker SIGKILLed while each action is in flight with another seed (another
set of moments), in a file of its own so another test worker runs it: nothing is lost or
done twice (tests/test_end_to_end.py: kill_the_worker_through_a_postmortem)."""

from __future__ import annotations

from pathlib import Path

from tests.processes import Followthrough
from tests.test_end_to_end import (  # noqa: F401 (the fixture)
    followthrough,
    kill_the_worker_through_a_postmortem,
)


def test_killing_the_worker_loses_and_duplicates_nothing(
    followthrough: Followthrough,  # noqa: F811
    postgres_url: str,
    tmp_path: Path,
) -> None:
    kill_the_worker_through_a_postmortem(followthrough, postgres_url, tmp_path, seed=1234)
