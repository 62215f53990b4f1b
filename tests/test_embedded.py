"""The README's first command: `followthrough up` runs everything, Ctrl-C stops it, and running it
again picks up every open postmortem where it was."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from followthrough.domain.relative_time import with_relative_times
from followthrough.temporal.binaries import find_binary
from followthrough.webhooks import sign_generic
from tests.processes import ROOT, Followthrough, free_port, wait_until

EXAMPLES = ROOT / "examples"
PM_ID = "postmortem-generic-INC-2041"


class Up:
    """`followthrough up` as a user runs it in a terminal, its output collected as it comes."""

    def __init__(self, ft: Followthrough, port: int, ui_port: int) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "followthrough.cli",
                "up",
                "--temporal-port",
                str(port),
                "--ui-port",
                str(ui_port),
            ],
            env=ft.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()
        started = "Ctrl-C stops everything."
        try:  # an `up` that exits instead says why at once
            wait_until(
                lambda: started in self.output or self.process.poll() is not None,
                timeout=90,
                what="the banner",
            )
        except AssertionError as err:
            raise AssertionError(f"{err}; output so far:\n{self.output}") from None
        assert started in self.output, f"`up` exited:\n{self.output}"

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def ctrl_c(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


def test_up_runs_everything_and_resumes_after_ctrl_c(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    ft = Followthrough.create(
        tmp_path, temporal_address=address, database_url=None, task_queue="followthrough"
    )
    ft.env["FOLLOWTHROUGH_WEBHOOK_SECRET_GENERIC"] = "embedded-secret"
    data_dir = Path(ft.env["FOLLOWTHROUGH_DATA_DIR"])
    api = f"http://127.0.0.1:{ft.env['FOLLOWTHROUGH_API_PORT']}"

    up = Up(ft, port, ui_port)
    try:
        banner = up.output
        assert f"Temporal      {address}" in banner
        assert f"Temporal UI   http://127.0.0.1:{ui_port}" in banner
        assert f"sqlite:///{data_dir / 'followthrough.db'}" in banner
        assert f"HTTP API      {api}/api" in banner
        assert f"Dashboard     {api}/" in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=10) as page:
            assert page.status == 200
        with urllib.request.urlopen(f"{api}/login", timeout=10) as sign_in:
            assert b"Sign in to Followthrough" in sign_in.read()
        with urllib.request.urlopen(f"{api}/healthz", timeout=10) as health:
            assert json.load(health) == {"status": "ok"}

        # An incident arriving by webhook, signed as the README shows, starts its postmortem.
        # A tool sends ISO 8601 times; the example's relative ones (`now-1h`) are for people.
        example, _ = with_relative_times(
            json.loads((EXAMPLES / "incident.json").read_text()), datetime.now(UTC)
        )
        body = json.dumps({**example, "id": "INC-77"})
        hooked = urllib.request.Request(
            f"{api}/webhooks/generic",
            data=body.encode(),
            headers=sign_generic("embedded-secret", body.encode(), int(time.time())),
            method="POST",
        )
        with urllib.request.urlopen(hooked, timeout=30) as answer:
            assert answer.status == 202
            assert json.load(answer)["workflow_id"] == "postmortem-generic-INC-77"

        started = ft.cli("incident", "resolved", str(EXAMPLES / "incident.json"))
        assert started.stdout.strip() == f"{PM_ID}: started"
        ft.cli("postmortem", "submit", "INC-2041", str(EXAMPLES / "draft.yaml"), "--as", "alice")

        listed = subprocess.run(
            [
                find_binary("temporal"),
                "workflow",
                "list",
                "--address",
                address,
                "--query",
                "PostmortemState='in_review'",
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found = [w["execution"]["workflowId"] for w in json.loads(listed.stdout)]
        assert found == [PM_ID]
        token = ft.cli("token", "create", "--for", "dan").stdout.strip()
        mine = urllib.request.Request(
            f"{api}/api/postmortems?state=drafting", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(mine, timeout=10) as listing:
            assert [pm["id"] for pm in json.load(listing)] == ["postmortem-generic-INC-77"]
    finally:
        code = up.ctrl_c()
    assert code == 0, up.output
    assert "Followthrough stopped." in up.output
    assert (data_dir / "temporal.db").exists()

    # Everything stopped: the ports are free for the next run, which resumes the postmortem.
    again = Up(ft, port, ui_port)
    try:
        approved = ft.cli("postmortem", "approve", "INC-2041", "--as", "erin")
        assert "tracking" in approved.stdout
        items = wait_until(
            lambda: (
                len(listed := json.loads(ft.cli("action", "list", "--json").stdout)) == 2 and listed
            ),
            what="both action items",
        )
        assert [i["spec"]["owner"] for i in items] == ["bob", "carol"]
        assert (
            ft.cli("incident", "resolved", str(EXAMPLES / "incident.json")).stdout.strip()
            == f"{PM_ID}: already open"
        )
    finally:
        assert again.ctrl_c() == 0, again.output


def test_up_refuses_a_busy_port_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ft = Followthrough.create(
            tmp_path,
            temporal_address=f"127.0.0.1:{port}",
            database_url=None,
            task_queue="followthrough",
        )
        result = ft.cli(
            "up", "--temporal-port", str(port), "--ui-port", str(free_port()), check=False
        )
        ft.env["FOLLOWTHROUGH_API_PORT"] = str(port)
        api_busy = ft.cli(
            "up", "--temporal-port", str(free_port()), "--ui-port", str(free_port()), check=False
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert api_busy.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in api_busy.stderr
    assert "FOLLOWTHROUGH_API_PORT" in api_busy.stderr


def _alive(pid: int) -> bool:
    """A live process (not one that has exited and waits to be reaped)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""
    except FileNotFoundError:
        return False


def test_up_keeps_its_files_private_clears_its_orphan_and_stops_when_its_server_dies(
    tmp_path: Path,
) -> None:
    port, ui_port = free_port(), free_port()
    ft = Followthrough.create(
        tmp_path,
        temporal_address=f"127.0.0.1:{port}",
        database_url=None,
        task_queue="followthrough",
    )
    data_dir = Path(ft.env["FOLLOWTHROUGH_DATA_DIR"])
    api = f"http://127.0.0.1:{ft.env['FOLLOWTHROUGH_API_PORT']}"
    pid_file = data_dir / "temporal.pid"
    # A pid file from long ago whose pid the system has since given to something else.
    data_dir.mkdir(parents=True)
    # Mail an earlier version kept readable by anyone on the machine.
    (data_dir / "outbox").mkdir(mode=0o755)
    (data_dir / "outbox" / "earlier.eml").write_text("Subject: kept\n")
    (data_dir / "outbox" / "earlier.eml").chmod(0o644)
    bystander = subprocess.Popen(["sleep", "300"])
    pid_file.write_text(f"{bystander.pid} 1\n")
    try:
        first = Up(ft, port, ui_port)
        assert bystander.poll() is None  # not ours: left alone
    finally:
        bystander.kill()
        bystander.wait()
    with urllib.request.urlopen(f"{api}/readyz", timeout=10) as ready:
        assert json.load(ready) == {"status": "ready", "temporal": "ok", "database": "ok"}
    # Nobody else on the machine may read the record, Temporal's state, the log or the secret.
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    private = [p for p in data_dir.iterdir() if p.is_file()]
    assert {"followthrough.db", "temporal.db", "temporal.log", "link-secret"} <= {
        p.name for p in private
    }
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in private} == {
        p.name: "0o600" for p in private
    }
    assert stat.S_IMODE((data_dir / "outbox").stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "outbox" / "earlier.eml").stat().st_mode) == 0o600

    # `up` killed outright leaves its server running (it has a session of its own) ...
    server_pid = int(pid_file.read_text().split()[0])
    first.process.kill()
    first.process.wait(timeout=30)
    assert _alive(server_pid)
    # ... and the next `up` stops it rather than finding the port taken.
    try:
        second = Up(ft, port, ui_port)
        orphan_stopped = not _alive(server_pid)
    finally:
        if _alive(server_pid):  # a failed start must not leave it to the next test run
            os.kill(server_pid, signal.SIGKILL)
    try:
        assert orphan_stopped
        assert "stopping the Temporal server an earlier run left behind" in second.output

        # Its server dying (the OOM killer, say) stops everything, saying why.
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        assert second.process.wait(timeout=90) == 1, second.output
    finally:
        if second.process.poll() is None:
            second.ctrl_c()
    assert "error: the Temporal dev server was killed by signal 9, so Followthrough stopped" in (
        second.output
    )
    assert not pid_file.exists()
