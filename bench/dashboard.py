#!/usr/bin/env python
"""Dashboard: the overview, reliability, search and overdue action-item pages over PostgreSQL
seeded with 1,000 and with 10,000 postmortems (about 5 action items each), each page against
itself at the smaller size.

A benchmark, not a test: it prints timings and asserts none, but it checks its own bookkeeping
(each database holds what it seeded, every page answers 200 with its own title) and exits 1 when
that fails. Two scratch databases beside --database-url (created and dropped here, through an
AUTOCOMMIT connection to it), migrated and filled by `followthrough seed`'s generator through the
store's own write path. The pages are the real app in-process (httpx's ASGI transport around
create_app), signed in through the sign-in form with an API token; Temporal is a lazy client
that never connects (no page read here needs it). After a warm-up, every round asks every page
once of each database, the two alternating (ABAB...), so neither gains from going first. Run from
the project root:

    python bench/dashboard.py                              # 1,000 vs 10,000 postmortems
    python bench/dashboard.py --small 200 --large 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import yaml
from parked_items import log, quantile, ratio, run_and_exit, secs
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from temporalio.client import Client

from followthrough.api import Services, create_app
from followthrough.api.auth import issue_token
from followthrough.domain.metrics import recent_quarters
from followthrough.domain.policy import Policy, load_policy
from followthrough.seed import seed, sized_for
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.storage.tables import ActionItemRow, AuditEventRow, PostmortemRow

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SLOW = 1.0  # seconds: a page slower than this at the large size is called out
VIEWER = "grace"  # a council member: every page shows them everything
REQUEST_TIMEOUT = 300.0  # seconds: one page, however slow, cannot hang the benchmark


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    title: str  # what its <title> starts with: the page itself, not the sign-in page
    shows: str = ""  # a regex whose first group says how much it found, for the table
    fresh: bool = False  # measured as the first view after a change: the metrics cache emptied


def pages(today: datetime) -> list[Page]:
    quarter = recent_quarters(today.date(), 2)[1]  # the newest full quarter
    return [
        Page("overview", "/overview", "Overview"),
        Page("my work", "/", "My work"),
        Page("reliability (12 months), first view", "/reliability", "Metrics", fresh=True),
        Page("reliability (12 months), again", "/reliability", "Metrics"),
        Page(
            f"reliability ({quarter}), first view",
            f"/reliability?quarter={quarter}",
            "Metrics",
            fresh=True,
        ),
        Page(f"reliability ({quarter}), again", f"/reliability?quarter={quarter}", "Metrics"),
        Page("search 'timeout'", "/search?q=timeout", "Search", r"<p class=\"muted\">(\d+) match"),
        Page(
            "search 'certificate expired'",
            "/search?q=certificate+expired",
            "Search",
            r"<p class=\"muted\">(\d+) match",
        ),
        Page(
            "overdue action items",
            "/action-items?overdue=true",
            "Action items",
            r"<h1>Action items <span class=\"muted\">\((\d+)\)",
        ),
        Page(
            "postmortems",
            "/postmortems",
            "Postmortems",
            r"<h1>Postmortems <span class=\"muted\">\((\d+)\)",
        ),
    ]


@dataclass
class Size:
    """One seeded database and the app over it."""

    label: str  # "small" or "large"
    postmortems: int
    url: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    seed_seconds: float = 0.0
    reused: bool = False  # every postmortem was there from a kept database (--reuse)
    times: dict[str, list[float]] = field(default_factory=dict)  # page label -> seconds
    shows: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# --- the databases ---------------------------------------------------------------------------


def admin_url(database_url: str) -> str:
    """psycopg's form of the URL (no '+psycopg'), for CREATE and DROP DATABASE."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_databases(
    database_url: str, names: Sequence[str], reuse: bool, keep: bool
) -> Iterator[list[str]]:
    """Databases beside `database_url`, created fresh (or kept from --keep with --reuse)."""
    admin = admin_url(database_url)
    urls = [make_url(database_url).set(database=n).render_as_string(False) for n in names]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists and not reuse:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            if not exists or not reuse:
                conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urls
    finally:
        if keep:
            log(f"kept {', '.join(names)} (--reuse runs the pages on them again)")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_rows(store: Store) -> dict[str, int]:
    with Session(store.engine) as session:
        return {
            name: session.scalar(select(func.count()).select_from(table)) or 0
            for name, table in (
                ("postmortems", PostmortemRow),
                ("action items", ActionItemRow),
                ("audit events", AuditEventRow),
            )
        }


def policy_for(size: Size) -> Policy:
    """The shipped policy, its WIP caps raised to bear the seeded volume: at its own caps most
    seeded items would wait in line, and the pages would show a record no team could have."""
    return sized_for(load_policy(), size.postmortems)


def fill(size: Size, store: Store, policy: Policy, seed_number: int) -> None:
    """Seed the database (what is there already is kept) and count what it holds."""
    step = max(1, size.postmortems // 10)
    shown = [-1]

    def progress(done: int, total: int) -> None:
        if done // step > shown[0] or done == total:
            shown[0] = done // step
            log(f"{size.label}: seeded {done:,} of {total:,} postmortems")

    started = time.perf_counter()
    summary = seed(
        store,
        policy,
        postmortems=size.postmortems,
        now=datetime.now(UTC),
        seed=seed_number,
        progress=progress,
    )
    size.seed_seconds = time.perf_counter() - started
    # After a bulk load, as autovacuum would soon (the test server runs with it off): without
    # statistics the planner guesses a few dozen rows for every range and sorts on disk; without
    # the visibility map an index-only scan (the reliability figures') visits every row's page.
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    size.rows = count_rows(store)
    if summary.skipped:
        log(f"{size.label}: {summary.skipped:,} postmortems were seeded already (--reuse)")
    size.reused = summary.written == 0
    if size.rows["postmortems"] != size.postmortems:
        size.problems.append(
            f"holds {size.rows['postmortems']:,} postmortems, not the {size.postmortems:,} seeded"
        )


# --- the pages -------------------------------------------------------------------------------


async def ask(
    http: httpx.AsyncClient, services: Services, size: Size, page: Page, record: bool
) -> None:
    if page.fresh:  # as if the record had just changed: the page measures the period again
        services.reliability.clear()
    started = time.perf_counter()
    response = await http.get(page.path)
    seconds = time.perf_counter() - started
    title = re.search(r"<title>([^<]*)</title>", response.text)
    if response.status_code != 200 or not title or not title.group(1).startswith(page.title):
        got = title.group(1) if title else response.text[:200]
        size.problems.append(f"{page.path}: {response.status_code} {got!r}")
        return
    if page.shows and (found := re.search(page.shows, response.text)):
        size.shows[page.label] = found.group(1)
    if record:
        size.times.setdefault(page.label, []).append(seconds)


@contextmanager
def temporary_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="followthrough-dashboard-") as directory:
        yield Path(directory)


async def sign_in(http: httpx.AsyncClient, token: str) -> None:
    """As a person signs in: open the form, paste the token, press the button."""
    form = await http.get("/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    if csrf is None:
        raise SystemExit(f"the sign-in page has no form: {form.status_code}")
    done = await http.post("/login", data={"token": token, "next": "/", "csrf": csrf.group(1)})
    if done.status_code != 303 or done.headers.get("location") != "/":
        raise SystemExit(f"signing in as {VIEWER} failed: {done.status_code} {done.text[:200]}")


async def run_pages(args: argparse.Namespace, sizes: list[Size], stores: list[Store]) -> None:
    client = await Client.connect("127.0.0.1:1", lazy=True)  # pages read; they never act
    now = datetime.now(UTC)
    asked = pages(now)
    with temporary_directory() as root:
        clients, all_services = [], []
        for size, store in zip(sizes, stores, strict=True):
            # The app reads the record with the caps it was seeded under.
            policy_file = root / f"{size.label}-policy.yaml"
            policy_file.write_text(yaml.safe_dump(policy_for(size).model_dump(mode="json")))
            settings = Settings(
                data_dir=root / size.label,
                database_url=size.url,
                link_secret="bench-dashboard-link-secret-0123456789",
                policy=policy_file,
            )
            services = Services(settings=settings, store=store, client=client)
            all_services.append(services)
            token = issue_token(store, services.policy, VIEWER, "bench", now)
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(services)),
                base_url="http://followthrough.bench",
                timeout=REQUEST_TIMEOUT,
            )
            clients.append(http)
            await sign_in(http, token)
        try:
            log(f"warm-up: every page {args.warmup} times per size")
            for _ in range(args.warmup):
                for size, http, services in zip(sizes, clients, all_services, strict=True):
                    for page in asked:
                        await ask(http, services, size, page, record=False)
            for number in range(1, args.rounds + 1):
                for size, http, services in zip(sizes, clients, all_services, strict=True):  # ABAB
                    for page in asked:
                        await ask(http, services, size, page, record=True)
                log(f"round {number} of {args.rounds} done")
        finally:
            for http in clients:
                await http.aclose()


# --- the report ------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "-" if value is None else secs(value * 1000, 1)


def report(args: argparse.Namespace, sizes: list[Size], context: list[str]) -> str:
    small, large = sizes
    names = [p.label for p in pages(datetime.now(UTC))]
    width = max(len(n) for n in names) + 2
    head = f"{small.postmortems:,} postmortems"
    head_large = f"{large.postmortems:,} postmortems"
    out = [
        f"{'page (ms)':{width}}{head:>28}{head_large:>28}{'large/small':>14}",
        f"{'':{width}}{'median':>14}{'p90':>14}{'median':>14}{'p90':>14}{'(median)':>14}",
    ]
    slow = []
    for name in names:
        cells = []
        medians = []
        for size in sizes:
            values = size.times.get(name, [])
            median = statistics.median(values) if values else None
            medians.append(median)
            cells += [ms(median), ms(quantile(values, 0.9))]
        out.append(
            f"{name:{width}}" + "".join(f"{c:>14}" for c in cells) + f"{ratio(*medians[::-1]):>14}"
        )
        if medians[1] is not None and medians[1] > SLOW:
            slow.append(f"{name} ({medians[1]:.2f} s)")
    out.append("")
    for size in sizes:
        rows = ", ".join(f"{count:,} {name}" for name, count in size.rows.items())
        seeded = (
            "seeded by an earlier run" if size.reused else f"seeded in {size.seed_seconds:.0f} s"
        )
        out.append(f"{size.label}: {rows}; {seeded}")
        if size.shows:
            found = "; ".join(f"{label}: {value}" for label, value in size.shows.items())
            out.append(f"{size.label}: what the pages found: {found}")
        for problem in dict.fromkeys(size.problems):  # once, however many rounds saw it
            out.append(f"{size.label}: {problem}  <-- FAILED")
    out.append(
        f"slower than {SLOW:.0f} s at {large.postmortems:,}: {', '.join(slow)}"
        if slow
        else f"every page answered within {SLOW:.0f} s (median) at {large.postmortems:,}"
    )
    out.extend(context)
    return "\n".join(out)


def describe_postgres(url: str) -> str:
    with psycopg.connect(admin_url(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


# --- entry point -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=1000, help="postmortems in the baseline")
    parser.add_argument("--large", type=int, default=10_000, help="postmortems compared with it")
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (ABAB...)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first")
    parser.add_argument("--seed", type=int, default=7, help="the generator's seed")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a PostgreSQL URL; the scratch databases are created beside it (default "
        f"{DEFAULT_URL})",
    )
    parser.add_argument(
        "--prefix", default="followthrough_bench", help="the scratch databases' name prefix"
    )
    parser.add_argument("--keep", action="store_true", help="keep the seeded databases")
    parser.add_argument(
        "--reuse", action="store_true", help="seed into kept databases instead of fresh ones"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.small < args.large:
        parser.error("--small must be at least 1 and smaller than --large")
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL")
    return args


def database_name(prefix: str, postmortems: int) -> str:
    """followthrough_bench_1k, followthrough_bench_10k, followthrough_bench_60."""
    count = f"{postmortems // 1000}k" if postmortems % 1000 == 0 else str(postmortems)
    return f"{prefix}_{count}"


async def bench_main(args: argparse.Namespace) -> int:
    command = "python bench/dashboard.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    sizes = [Size("small", args.small), Size("large", args.large)]
    names = [database_name(args.prefix, size.postmortems) for size in sizes]
    with scratch_databases(args.database_url, names, args.reuse, args.keep) as urls:
        stores = []
        try:
            for size, url in zip(sizes, urls, strict=True):
                size.url = url
                upgrade(url)
                store = Store(url)
                stores.append(store)
                log(f"{size.label}: seeding {size.postmortems:,} postmortems into {url}")
                fill(size, store, policy_for(size), args.seed)
            await run_pages(args, sizes, stores)
        finally:
            for store in stores:
                store.close()
    context = [
        f"{describe_postgres(args.database_url)} on this machine; the app in-process "
        f"(httpx ASGI transport), signed in as {VIEWER}; {args.warmup} warm-up and "
        f"{args.rounds} measured rounds, sizes alternating",
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        f"reproduce: {command.strip()}",
    ]
    print(report(args, sizes, context), flush=True)
    return 0 if all(not size.problems for size in sizes) else 1


def main() -> None:
    run_and_exit(bench_main(parse_args()))


if __name__ == "__main__":
    main()
