"""A real Prometheus server (Debian's `prometheus`) for the tests.

    with MetricsTarget(service="checkout") as target:
        prom = Prometheus(tmp_path, scrape_targets=[target.address], rules_yaml=RULES)
        prom.backfill(openmetrics_family(...))         # optional: history, BEFORE it starts
        async with prom:
            await prom.wait_for('http_requests_total{code="500"}')
            data = await prom.query('sum(rate(http_requests_total{code="500"}[5s]))')
            rules = await prom.wait_rules_evaluated()

It runs /usr/bin/prometheus on 127.0.0.1 on a free port, its TSDB in the test's directory,
with a prometheus.yml it writes: global scrape_interval and evaluation_interval 1s, one scrape
job ("followthrough-test", static loopback targets, scrape_timeout 1s) and, when `rules_yaml`
is given, `rule_files: [rules.yml]` holding that text as is. `--web.enable-lifecycle` is on, so
`reload(rules_yaml=...)` can swap the rules in a running server. It waits for `/-/ready`; on
exit it terminates it (then kills it), and when the block failed, or Prometheus died, its log
goes to stderr, where pytest shows it.

Measured here (Prometheus 2.42.0+ds, Debian bookworm's package; 1s intervals; seconds from
spawning the process; 15 runs on this machine: typical, then the range):

- `/-/ready`: 0.06 s (0.05-0.11 s); the same with 7 days of backfilled blocks (0.12 s).
- (a) the first scrape's samples are queryable: 5.6 s (5.1-5.9 s). Almost all of it is fixed:
  Prometheus's scrape manager applies what service discovery found (even static_configs) only
  on its 5-second reload tick, and 2.42 has no flag to shorten it; the first scrape then comes
  within one scrape interval (a per-target offset). Shorter intervals would not help.
- (b) a recording and an alerting rule both show health "ok" in /api/v1/rules: 0.8 s
  (0.07-1.15 s). Rules start at once (no discovery), first evaluated within one
  evaluation_interval; before that they are listed with health "unknown" and lastEvaluation
  "0001-01-01T00:00:00Z". A rule over not-yet-scraped metrics is "ok" with an empty result
  (an alert on it "inactive"): "ok" says nothing about data; wait for the data with wait_for().
- (c) rate(http_requests_total[5s]) returns a value: 6.6 s (6.1-7.0 s), one scrape interval
  after (a), since rate() needs two samples in its window. Later, an increase made by the
  target shows in rate(...[5s]) 1.0 s after it, and an alert on a recording rule over it fires
  0.1-0.9 s after the recording rule shows the new value (the next rule evaluation).

So a test that needs scraped data spends ~6-7 s on it and should bound its waits well above
that (the helpers default to 30 s, and cap any timeout at 60 s); a test that needs only rules,
or only backfilled history, waits about a second or not at all.

Backfilled history: Debian's promtool 2.42 has `promtool tsdb create-blocks-from openmetrics`
and it works. `backfill(openmetrics_text)` writes the text to a file and runs promtool, which
makes TSDB blocks directly in this server's storage directory. Call it BEFORE the server
starts (after constructing `Prometheus(...)`, before `async with` / `start()`; afterwards it
raises), as often as needed; Prometheus loads the blocks when it opens its TSDB, so the
history is queryable as soon as `/-/ready` answers. What to know:

- The input is OpenMetrics text: `# TYPE name counter` then `name_total{labels} value ts`
  lines, timestamps in SECONDS (floats allowed), ending with `# EOF` (added if missing).
  `openmetrics_family()` formats one metric family; join several with "".
- promtool reads the whole input once per block it makes. With its default 2-hour blocks,
  7 days of 1-minute samples for 2 series made 85 blocks in 3.4 s; backfill() passes the
  (hidden in 2.42, but working) `--max-block-duration=24h`: 11 blocks in 0.45 s (168h: 0.12 s).
- Old history is not "now": an instant query at the current time sees only samples from the
  last 5 minutes (the lookback). Use query_range(), an instant query `at=` a past moment, or
  range selectors (`increase(x[7d])`). A range query returns at most 11,000 points per series
  (Prometheus answers 400 bad_data otherwise): a 7-day range needs a step of at least 55 s.
- Retention is 400d (`--storage.tsdb.retention.time`) so that backfilled weeks are never
  deleted as too old.
- History and live scraping mix: backfilled blocks may overlap the live head (allowed since
  2.39). Backfilling `http_requests_total{job="followthrough-test", instance=<target>, ...}`
  up to a second before start, then scraping the target, gave ONE series with its 10,081
  backfilled and the live samples (the live counter starting lower reads as a counter reset,
  which rate()/increase() handle). Scraped series carry `job` and `instance`; history meant to
  continue them must carry the same.

Errors: Prometheus's own answers are kept. A query that Prometheus rejects (malformed PromQL:
HTTP 400, `{"status": "error", "errorType": "bad_data", "error": "invalid parameter \"query\":
1:..."}`) raises `PrometheusError` with `status_code`, `error_type` and `error` from the body;
`get()` returns the raw httpx.Response when a test wants it untouched.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.debian import ensure_debian_package, find_installed
from tests.servers.daemon import LoopbackDaemon, is_loopback

PACKAGE = "prometheus"
BINARY = "prometheus"
PROMTOOL = "promtool"
JOB = "followthrough-test"
WAIT = 30.0
MAX_WAIT = 60.0

Labels = Mapping[str, str]
Predicate = Callable[[Any], bool]


class PrometheusError(Exception):
    """Prometheus answered an API call with an error (or not with JSON)."""

    def __init__(self, status_code: int, error_type: str, error: str, body: str) -> None:
        super().__init__(f"Prometheus answered {status_code} {error_type}: {error}")
        self.status_code = status_code
        self.error_type = error_type
        self.error = error
        self.body = body


def prometheus_binary() -> str:
    """The installed Prometheus, installing Debian's package if need be (skip, or fail in CI)."""
    return ensure_debian_package(PACKAGE, BINARY)


def promtool_binary() -> str:
    """promtool, which comes in the same Debian package."""
    found = find_installed(PROMTOOL)
    if found is None:
        found = ensure_debian_package(PACKAGE, PROMTOOL)
    return found


def prometheus_config(
    *,
    scrape_targets: Sequence[str] = (),
    rule_files: Sequence[str] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    job_name: str = JOB,
) -> dict[str, Any]:
    """The whole prometheus.yml: short intervals, one job with static loopback targets."""
    for target in scrape_targets:
        _require_loopback(target)
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    config["scrape_configs"] = [
        {"job_name": job_name, "static_configs": [{"targets": list(scrape_targets)}]}
        if scrape_targets
        else {"job_name": job_name, "static_configs": []}
    ]
    return config


def _require_loopback(target: str) -> None:
    host = target.rsplit(":", 1)[0].strip("[]") if ":" in target else target
    if not is_loopback(host):
        raise ValueError(
            f"the tests' scrape targets must be on loopback (host:port), not {target!r}"
        )


def openmetrics_family(
    name: str,
    kind: str,
    series: Iterable[tuple[Labels, Iterable[tuple[float, float]]]],
    *,
    help_text: str | None = None,
) -> str:
    """One metric family as OpenMetrics text for backfill(): samples are (unix seconds, value).

    For a counter pass the sample name (`http_requests_total`): the family is named without
    `_total`, as OpenMetrics wants. No `# EOF` here; backfill() adds it, so several families
    can be joined with "".
    """
    family = name.removesuffix("_total") if kind == "counter" else name
    sample = f"{family}_total" if kind == "counter" else name
    lines = [f"# TYPE {family} {kind}"]
    if help_text:
        lines.append(f"# HELP {family} {help_text}")
    for labels, samples in series:
        rendered = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
        selector = f"{sample}{{{rendered}}}" if rendered else sample
        lines.extend(f"{selector} {value!r} {timestamp:.3f}" for timestamp, value in samples)
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def result_values(data: Mapping[str, Any]) -> dict[tuple[tuple[str, str], ...], float]:
    """An instant vector's `data` as {sorted label pairs: value}; handy in assertions."""
    return {
        tuple(sorted(item["metric"].items())): float(item["value"][1])
        for item in data.get("result", [])
    }


def _timestamp(moment: datetime | float | str) -> str:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError(f"{moment!r} has no timezone; Prometheus needs absolute times")
        return f"{moment.timestamp():.3f}"
    if isinstance(moment, float | int):
        return f"{moment:.3f}"
    return moment


class Prometheus(LoopbackDaemon):
    """One Prometheus process; an async context manager. See the module docstring."""

    name = "Prometheus"

    def __init__(
        self,
        directory: Path,
        *,
        scrape_targets: Sequence[str] = (),
        rules_yaml: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        job_name: str = JOB,
        retention: str = "400d",
        binary: str | None = None,
        log_level: str = "info",
    ) -> None:
        self.rules_path = directory / "rules.yml"
        self.rules_yaml = rules_yaml
        config = prometheus_config(
            scrape_targets=scrape_targets,
            rule_files=[str(self.rules_path)] if rules_yaml is not None else [],
            scrape_interval=scrape_interval,
            evaluation_interval=evaluation_interval,
            job_name=job_name,
        )
        super().__init__(directory, stem="prometheus", config=config, binary=binary)
        self.retention = retention
        self.log_level = log_level
        self._backfills = 0

    # -- backfill (before start) -------------------------------------------------------------

    def backfill(self, openmetrics_text: str, *, max_block_duration: str = "24h") -> str:
        """Turn OpenMetrics text into TSDB blocks in the storage directory; returns promtool's
        output (the blocks made). Only before the server starts: it raises otherwise.

        max_block_duration is promtool's (hidden in 2.42) flag: blocks of at most that span,
        aligned to it; promtool reads the whole input once per block, so longer is faster."""
        if self.process is not None:
            raise RuntimeError("backfill() must be called before Prometheus starts")
        text = openmetrics_text if openmetrics_text.endswith("\n") else openmetrics_text + "\n"
        if not text.rstrip().endswith("# EOF"):
            text += "# EOF\n"
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self._backfills += 1
        source = self.directory / f"backfill-{self._backfills}.om"
        source.write_text(text)
        command = [
            promtool_binary(),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            f"--max-block-duration={max_block_duration}",
            str(source),
            str(self.storage_path),
        ]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` failed ({result.returncode}):\n{result.stdout}"
            )
        return result.stdout

    # -- lifecycle (the rest is LoopbackDaemon's) --------------------------------------------

    def find_binary(self) -> str:
        return prometheus_binary()

    def prepare(self) -> None:
        super().prepare()
        if self.rules_yaml is not None:
            self.rules_path.write_text(self.rules_yaml)

    def flags(self) -> list[str]:
        return [
            f"--storage.tsdb.path={self.storage_path}",
            f"--storage.tsdb.retention.time={self.retention}",
            "--web.enable-lifecycle",
            f"--log.level={self.log_level}",
        ]

    async def reload(self, rules_yaml: str | None = None) -> None:
        """Rewrite the rule file (when given) and POST /-/reload; PrometheusError if rejected
        (500; its `error` has Prometheus's answer and the log's error lines, which say why:
        e.g. `could not parse expression`). Prometheus then keeps the previous rules.

        Only for a server started with rules_yaml (the rule file is in its config)."""
        if rules_yaml is not None:
            if self.rules_yaml is None:
                raise RuntimeError("started without rules_yaml: no rule file in the config")
            self.rules_yaml = rules_yaml
            self.rules_path.write_text(rules_yaml)
        log_size = len(self.log())
        response = await self._api().post(f"{self.base_url}/-/reload")
        if response.status_code != 200:
            # The answer only says "failed to reload config"; the reason is in the log.
            reasons = [line for line in self.log()[log_size:].splitlines() if "level=error" in line]
            error = "\n".join([response.text.strip(), *reasons])
            raise PrometheusError(response.status_code, "reload", error, response.text)

    # -- the HTTP API ------------------------------------------------------------------------

    async def get(self, path: str, **params: str) -> httpx.Response:
        """GET base_url + path with query parameters: the raw response."""
        return await self._api().get(f"{self.base_url}{path}", params=params)

    async def _data(self, path: str, **params: str) -> Any:
        response = await self.get(path, **params)
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                response.status_code, "not_json", response.text[:500], response.text
            ) from None
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                response.status_code,
                str(body.get("errorType", "")),
                str(body.get("error", "")),
                response.text,
            )
        return body["data"]

    async def query(self, promql: str, *, at: datetime | float | None = None) -> dict[str, Any]:
        """GET /api/v1/query: the `data` ({"resultType": ..., "result": ...}), at now or `at`."""
        params = {"query": promql}
        if at is not None:
            params["time"] = _timestamp(at)
        data: dict[str, Any] = await self._data("/api/v1/query", **params)
        return data

    async def query_range(
        self,
        promql: str,
        start: datetime | float,
        end: datetime | float,
        step: str | float,
    ) -> dict[str, Any]:
        """GET /api/v1/query_range: the `data` (resultType "matrix"). At most 11,000 points
        per series: step >= (end - start) / 11000."""
        data: dict[str, Any] = await self._data(
            "/api/v1/query_range",
            query=promql,
            start=_timestamp(start),
            end=_timestamp(end),
            step=str(step),
        )
        return data

    async def rules(self, type: str | None = None) -> dict[str, Any]:
        """GET /api/v1/rules: {"groups": [{"name", "file", "rules": [...], ...}]};
        type="alert" or "record" filters."""
        params = {"type": type} if type else {}
        data: dict[str, Any] = await self._data("/api/v1/rules", **params)
        return data

    async def targets(self) -> dict[str, Any]:
        """GET /api/v1/targets: {"activeTargets": [...], "droppedTargets": [...]}."""
        data: dict[str, Any] = await self._data("/api/v1/targets")
        return data

    async def wait_for(
        self,
        promql: str,
        predicate: Predicate = bool,
        timeout: float = WAIT,
        *,
        interval: float = 0.1,
    ) -> dict[str, Any]:
        """Query until predicate(data["result"]) holds (default: any series); returns `data`.

        A query Prometheus rejects raises PrometheusError at once: it would never succeed.
        """
        timeout = min(timeout, MAX_WAIT)
        deadline = time.monotonic() + timeout
        while True:
            data = await self.query(promql)
            if predicate(data["result"]):
                return data
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{promql!r} did not give the awaited result within {timeout:.0f}s; "
                    f"last: {data['result']!r}"
                )
            self._check_alive()
            await asyncio.sleep(interval)

    async def wait_rules_evaluated(self, timeout: float = WAIT) -> dict[str, Any]:
        """Wait until every rule in /api/v1/rules has been evaluated and has health "ok"."""
        timeout = min(timeout, MAX_WAIT)
        deadline = time.monotonic() + timeout
        while True:
            data = await self.rules()
            rules = [rule for group in data["groups"] for rule in group["rules"]]
            if rules and all(rule.get("health") == "ok" for rule in rules):
                return data
            if time.monotonic() > deadline:
                raise AssertionError(f"rules not all healthy within {timeout:.0f}s: {data!r}")
            self._check_alive()
            await asyncio.sleep(0.1)


__all__ = [
    "JOB",
    "Prometheus",
    "PrometheusError",
    "openmetrics_family",
    "prometheus_binary",
    "prometheus_config",
    "promtool_binary",
    "result_values",
]
