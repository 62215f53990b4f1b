"""Shard 2 of the API fuzzer (tests/test_api_fuzz.py: operations whose index leaves 2 over
SHARDS), in a file of its own so that another test worker runs it."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from followthrough.storage import Store
from tests.test_api_fuzz import fuzz_shard


async def test_fuzzed_requests_of_shard_2(
    dev_server: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    await fuzz_shard(dev_server, sqlite_store, tmp_path, 2)
