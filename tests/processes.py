"""Running Followthrough the way a user does: as processes, with environment variables."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Followthrough:
    """One user's environment: where Temporal is, which database, which task queue."""

    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path | None = None

    @classmethod
    def create(
        cls, tmp_path: Path, *, temporal_address: str, database_url: str | None, task_queue: str
    ) -> Followthrough:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("FOLLOWTHROUGH_", "TEMPORAL_"))
        }
        env.update(
            {
                "TEMPORAL_ADDRESS": temporal_address,
                "FOLLOWTHROUGH_DATA_DIR": str(tmp_path / "data"),
                "FOLLOWTHROUGH_TASK_QUEUE": task_queue,
                "FOLLOWTHROUGH_API_PORT": str(free_port()),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if database_url:
            env["FOLLOWTHROUGH_DATABASE_URL"] = database_url
        return cls(env=env, log_dir=tmp_path)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "followthrough.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"followthrough {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def cli_background(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "followthrough.cli", *args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start_worker(self) -> subprocess.Popen[bytes]:
        assert self.log_dir is not None
        log = (self.log_dir / f"worker-{len(self.workers)}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "worker.py"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()


def wait_until(predicate: Any, *, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
