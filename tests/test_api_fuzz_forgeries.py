"""The API fuzzer's forged bearer tokens and forged webhook signatures (tests/test_api_fuzz.py),
in a file of its own so that another test worker runs it."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from followthrough.storage import Store
from tests.test_api_fuzz import FORGERY_SHARD, fuzz_shard


async def test_forged_credentials_get_no_server_error_and_start_no_workflow(
    dev_server: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    await fuzz_shard(dev_server, sqlite_store, tmp_path, FORGERY_SHARD)
