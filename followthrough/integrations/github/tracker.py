"""Action items as GitHub issues: create once, comment once, move the due date, find the done ones.

Synchronous (githubkit's sync client): the activities call these methods in threads. Every call
builds a fresh client through `connect()`: no retries of its own, no cache, bounded by the
configured timeout, so a failure comes back at once as GitHubRefused (permanent) or
GitHubUnavailable (transient; the activity's retry policy tries again later).

Idempotency, as for Jira tickets: an item's issue carries the label `github_label(item_id)`
("ft-...", at most GitHub's 50 characters), and `ensure_ticket` lists the repository's issues
with that label (GET /repos/{o}/{r}/issues?labels=...&state=all, read from the database; the
search API lags writes) before it creates. A create whose reply is lost cannot be told apart
from one that did nothing, so the client never retries; our only retry is the activity's, and it
starts with the listing. Two attempts running at once (one outlived its timeout) may both
create: after creating we list again and the lowest number is the issue, which every attempt
agrees on. Each extra loses the `postmortem` and item labels (so neither a later listing nor the
reconciliation sees it again), gains `followthrough-duplicate`, and gets a comment naming the
issue kept; we do not close it (closing is a done claim's word here, and a person's call).

GitHub issues have no due date or priority: the body says both ("Due: 2026-12-01"), and
`set_due` rewrites that line and comments once per new date. Closed as `completed` (or with no
reason, as before GitHub had reasons) is a done claim; closed as `not_planned` or `duplicate` is
not: nobody claims the work was done, and the item stays open for its owner.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from githubkit import GitHub, Response, TokenAuthStrategy
from githubkit.utils import UNSET

from followthrough.domain.tickets import (
    TicketComment,
    TicketDone,
    TicketDue,
    TicketRef,
    TicketRequest,
    item_label,
)
from followthrough.integrations.github.client import (
    connect,
    error_codes,
    field_errors,
    translate,
)
from followthrough.integrations.github.config import GitHubConfig
from followthrough.integrations.github.errors import GitHubRefused
from followthrough.integrations.github.wording import comment_text, due_moved_text, issue_body
from followthrough.logging import get_logger

log = get_logger(__name__)

LABELS = ("postmortem", "reliability")  # on every item's issue, with its own item label
DUPLICATE_LABEL = "followthrough-duplicate"
DONE_REASONS = (None, "completed")  # closed for these is a done claim; not_planned is not
PAGE = 100  # GitHub's largest per_page
MAX_RESULTS = 100 * PAGE  # a server whose `next` link never ends must not loop forever
LABEL_MAX = 50  # GitHub refuses longer label names
TITLE_MAX = 256  # GitHub's limit on an issue title
BODY_MAX = 65_536  # and on a body: longer texts are shortened (the postmortem has them whole)
SHORTENED = 8_000
REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
KEY = re.compile(rf"(?P<repository>{REPOSITORY.pattern})#(?P<number>[1-9][0-9]{{0,9}})")
DUE_LINE = re.compile(r"^Due: (\d{4}-\d{2}-\d{2})$", re.MULTILINE)
# The reconciliation's window, in the same words as Jira's: "-1d", "-12h", "-4w 2d", a date.
PERIOD = re.compile(r"-?((\d+[wdhm] ?)+)")
PERIOD_PART = re.compile(r"(\d+)([wdhm])")
UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def github_label(item_id: str) -> str:
    """The label that finds an item's issue again: the Jira label when it fits GitHub's 50
    characters and has no comma (labels are listed comma-separated), else its start and a hash."""
    label = item_label(item_id)
    if len(label) <= LABEL_MAX and "," not in label and label.strip() == label:
        return label
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    start = re.sub(r"[^A-Za-z0-9._-]", "-", label)[: LABEL_MAX - len(digest) - 1]
    return f"{start}-{digest}"


def ticket_key(repository: str, number: int) -> str:
    return f"{repository}#{number}"


def marker(dedupe_key: str) -> str:
    """Finds a comment again; an HTML comment, so GitHub shows nothing of it."""
    return f"<!-- followthrough:{dedupe_key} -->"


def since_of(window: str, now: datetime) -> datetime:
    """The start of the reconciliation's window: now less a period ("-1d", "-4w 2d") or a
    date ("2026-11-01", midnight UTC). GitHubRefused for anything else (a setting to fix)."""
    text = window.strip()
    period = PERIOD.fullmatch(text)
    if period:
        amounts: dict[str, int] = {}
        for number, unit in PERIOD_PART.findall(period.group(1)):
            amounts[UNITS[unit]] = amounts.get(UNITS[unit], 0) + int(number)
        try:
            return now - timedelta(**amounts)
        except OverflowError:
            pass
    else:
        try:
            return datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            pass
    raise GitHubRefused(
        f"{window!r} is not a period (like -1d, -12h) or a date (2026-11-01) "
        "for finding closed issues: check FOLLOWTHROUGH_GITHUB_DONE_WINDOW"
    )


class GitHubTracker:
    """Issues in the repositories routes name (or the configured one). Thread-safe: each call
    has its own client."""

    def __init__(self, config: GitHubConfig) -> None:
        self.config = config

    # -- the four operations -----------------------------------------------------------------

    def ensure_ticket(self, request: TicketRequest) -> TicketRef:
        """The item's issue: found by its label, else created (see the module docstring)."""
        repository = self.repository_for(request)
        owner, repo = repository.split("/")
        label = github_label(request.action_item_id)
        doing = f"opening the issue for {request.action_item_id} in {repository}"
        bound = log.bind(action_item_id=request.action_item_id, label=label, repository=repository)
        with self._client(doing) as gh:
            found = self._find(gh, owner, repo, label)
            if found:
                kept = self._keep_lowest(gh, owner, repo, found, label)
                bound.info("github issue found", number=kept["number"])
                return self._ref(repository, kept)
            route = request.route
            milestone = (
                self._milestone(gh, owner, repo, route.epic) if route and route.epic else None
            )
            labels = list(dict.fromkeys([*LABELS, label, *(route.labels if route else [])]))
            login = self.config.logins.get(request.owner)
            why = None if login else f"no GitHub login is known for {request.owner}"
            data = self._issue(request, labels, milestone, login, why)
            try:
                created = gh.rest.issues.create(owner, repo, data=cast(Any, data)).json()
            except Exception as err:
                if login is None or not field_errors(err) & {"assignees", "assignee"}:
                    raise
                bound.warning("github refused the assignee", login=login)
                why = f"GitHub refused to assign it to {login}"
                data = self._issue(request, labels, milestone, None, why)
                created = gh.rest.issues.create(owner, repo, data=cast(Any, data)).json()
            again = self._find(gh, owner, repo, label)
            if all(issue["number"] != created["number"] for issue in again):  # not listed yet
                again.append(dict(created))
            kept = self._keep_lowest(gh, owner, repo, again, label)
            bound.info("github issue created", number=kept["number"], assigned=bool(login))
            return self._ref(repository, kept)

    def comment(self, comment: TicketComment) -> bool:
        """Post the comment unless one with its marker is there already; True when posted."""
        owner, repo, number = _parts(comment.key)
        doing = f"commenting on {comment.key} ({comment.dedupe_key})"
        with self._client(doing) as gh:
            posted = self._comment_once(
                gh, owner, repo, number, comment.dedupe_key, comment_text(comment)
            )
        log.info("github comment", key=comment.key, dedupe_key=comment.dedupe_key, posted=posted)
        return posted

    def set_due(self, due: TicketDue) -> None:
        """Rewrite the body's "Due:" line (GitHub issues have no due date) and comment once per
        new date; setting the same date again changes nothing."""
        owner, repo, number = _parts(due.key)
        doing = f"setting the due date of {due.key} to {due.due.isoformat()}"
        with self._client(doing) as gh:
            issue = gh.rest.issues.get(owner, repo, number).json()
            body = str(issue.get("body") or "")
            line = DUE_LINE.search(body)
            before = datetime.strptime(line.group(1), "%Y-%m-%d").date() if line else None
            if before != due.due:
                new = f"Due: {due.due.isoformat()}"
                body = DUE_LINE.sub(new, body, count=1) if line else f"{body.rstrip()}\n\n{new}"
                gh.rest.issues.update(owner, repo, number, data={"body": body})
            self._comment_once(
                gh,
                owner,
                repo,
                number,
                f"due-{due.due.isoformat()}",
                due_moved_text(due.due, before),
            )
        log.info("github due date set", key=due.key, due=due.due.isoformat())

    def done_tickets(self, window: str | None = None) -> list[TicketDone]:
        """Postmortem issues closed as completed and updated within `window` ("-1d", "-12h",
        "2026-11-01"; default the configured one), in every repository reconciled, by key."""
        since = since_of(window or self.config.done_window, datetime.now(UTC))
        done: list[TicketDone] = []
        for repository in self.config.reconciled:
            owner, repo = _repository(repository).split("/")
            doing = f"listing {repository}'s closed postmortem issues since {since.isoformat()}"
            with self._client(doing) as gh:
                issues = self._list(
                    gh, owner, repo, labels="postmortem", state="closed", since=since
                )
            for issue in issues:
                if issue.get("pull_request") or issue.get("state_reason") not in DONE_REASONS:
                    continue
                closed_by = issue.get("closed_by") or {}
                done.append(
                    TicketDone(
                        key=ticket_key(_canonical(repository, issue), int(issue["number"])),
                        status="closed",
                        resolution=issue.get("state_reason") or "completed",
                        by=closed_by.get("login") if isinstance(closed_by, dict) else None,
                        at=_time(issue.get("closed_at")) or _time(issue.get("updated_at")),
                        source="reconciliation",
                    )
                )
        return done

    # -- where, and the client ---------------------------------------------------------------

    def repository_for(self, request: TicketRequest) -> str:
        """The route's repository, else the configured default; GitHubRefused without one."""
        route = request.route
        named = route.project if route and route.tracker == "github" else None
        chosen = named or self.config.repository
        if not chosen:
            raise GitHubRefused(
                f"no GitHub repository for {request.action_item_id}: its route names none and "
                "FOLLOWTHROUGH_GITHUB_REPOSITORY is not set"
            )
        return _repository(chosen)

    @contextmanager
    def _client(self, doing: str) -> Iterator[GitHub[TokenAuthStrategy]]:
        """A client for one operation; its failures become GitHubRefused or GitHubUnavailable,
        raised `from None` so that no request (with its Authorization header) is chained."""
        try:
            with connect(self.config) as gh:
                yield gh
        except Exception as err:
            ours = translate(err, doing=doing, config=self.config)
            if ours is None:
                raise
            raise ours from None

    # -- finding and creating ----------------------------------------------------------------

    def _find(
        self, gh: GitHub[TokenAuthStrategy], owner: str, repo: str, label: str
    ) -> list[dict[str, Any]]:
        issues = self._list(gh, owner, repo, labels=label, state="all")
        return [issue for issue in issues if not issue.get("pull_request")]

    def _list(
        self,
        gh: GitHub[TokenAuthStrategy],
        owner: str,
        repo: str,
        *,
        labels: str,
        state: Literal["open", "closed", "all"],
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Every issue the query finds, following GitHub's Link `next` pages."""
        found: list[dict[str, Any]] = []
        pages = gh.rest.paginate(
            gh.rest.issues.list_for_repo,
            map_func=_json_list,
            owner=owner,
            repo=repo,
            labels=labels,
            state=state,
            since=UNSET if since is None else since,
            per_page=PAGE,
        )
        for issue in pages:
            found.append(issue)
            if len(found) >= MAX_RESULTS:
                break
        return found

    def _keep_lowest(
        self,
        gh: GitHub[TokenAuthStrategy],
        owner: str,
        repo: str,
        found: list[dict[str, Any]],
        label: str,
    ) -> dict[str, Any]:
        ordered = sorted(found, key=lambda issue: int(issue["number"]))
        kept = ordered[0]
        for extra in ordered[1:]:
            self._mark_duplicate(gh, owner, repo, extra, int(kept["number"]), label)
        return kept

    def _mark_duplicate(
        self,
        gh: GitHub[TokenAuthStrategy],
        owner: str,
        repo: str,
        extra: dict[str, Any],
        kept: int,
        label: str,
    ) -> None:
        number = int(extra["number"])
        text = (
            f"Followthrough created this issue twice (a retried request); it keeps #{kept} in "
            f"sync and no longer follows this one, which can be closed as a duplicate of #{kept}."
        )
        self._comment_once(gh, owner, repo, number, f"duplicate-of-{kept}", text)
        names = [_label_name(found) for found in extra.get("labels") or []]
        labels = [n for n in names if n and n not in (label, "postmortem", DUPLICATE_LABEL)]
        gh.rest.issues.update(owner, repo, number, data={"labels": [*labels, DUPLICATE_LABEL]})
        log.warning(
            "github duplicate issue marked", repo=f"{owner}/{repo}", number=number, kept=kept
        )

    def _issue(
        self,
        request: TicketRequest,
        labels: list[str],
        milestone: int | None,
        login: str | None,
        unassigned_why: str | None,
    ) -> dict[str, Any]:
        owner = f"{request.owner} <{request.owner_email}>" if request.owner_email else request.owner
        body = issue_body(request, owner, unassigned_why)
        if len(body) > BODY_MAX:
            short = {
                name: _shortened(getattr(request, name))
                for name in ("details", "description", "proposed_change")
            }
            body = issue_body(request.model_copy(update=short), owner, unassigned_why)[:BODY_MAX]
        data: dict[str, Any] = {
            "title": " ".join(request.summary.split())[:TITLE_MAX],
            "body": body,
            "labels": labels,
        }
        if login:
            data["assignees"] = [login]
        if milestone is not None:
            data["milestone"] = milestone
        return data

    def _milestone(self, gh: GitHub[TokenAuthStrategy], owner: str, repo: str, title: str) -> int:
        """The milestone's number, found by its title (open or closed), else created."""
        wanted = " ".join(title.split())
        for _attempt in range(2):
            for milestone in gh.rest.paginate(
                gh.rest.issues.list_milestones,
                map_func=_json_list,
                owner=owner,
                repo=repo,
                state="all",
                per_page=PAGE,
            ):
                if milestone.get("title") == wanted:
                    return int(milestone["number"])
            try:
                created = gh.rest.issues.create_milestone(owner, repo, data={"title": wanted})
            except Exception as err:
                if "already_exists" in error_codes(err):  # made meanwhile: list it again
                    continue
                raise
            log.info("github milestone created", repo=f"{owner}/{repo}", title=wanted)
            return int(created.json()["number"])
        raise GitHubRefused(
            f"GitHub says milestone {wanted!r} exists in {owner}/{repo} but lists none"
        )

    # -- comments ----------------------------------------------------------------------------

    def _comment_once(
        self,
        gh: GitHub[TokenAuthStrategy],
        owner: str,
        repo: str,
        number: int,
        dedupe_key: str,
        text: str,
    ) -> bool:
        wanted = marker(dedupe_key)
        comments = gh.rest.paginate(
            gh.rest.issues.list_comments,
            map_func=_json_list,
            owner=owner,
            repo=repo,
            issue_number=number,
            per_page=PAGE,
        )
        for seen, found in enumerate(comments):
            if wanted in str(found.get("body") or ""):
                return False
            if seen >= MAX_RESULTS:
                break
        body = f"{text.rstrip()}\n\n{wanted}"
        gh.rest.issues.create_comment(owner, repo, number, data={"body": body})
        return True

    def _ref(self, repository: str, issue: dict[str, Any]) -> TicketRef:
        number = int(issue["number"])
        key = ticket_key(_canonical(repository, issue), number)
        url = str(issue.get("html_url") or f"https://github.com/{repository}/issues/{number}")
        return TicketRef(key=key, url=url)


def _repository(name: str) -> str:
    name = name.strip()
    if not REPOSITORY.fullmatch(name):
        raise GitHubRefused(f"{name[:120]!r} is not a GitHub repository (owner/name)")
    return name


def _parts(key: str) -> tuple[str, str, int]:
    found = KEY.fullmatch(key)
    if found is None:
        raise GitHubRefused(f"{key[:120]!r} is not a GitHub issue (owner/name#number)")
    owner, repo = found.group("repository").split("/")
    return owner, repo, int(found.group("number"))


def _canonical(repository: str, issue: dict[str, Any]) -> str:
    """The repository as GitHub spells it (repository_url ends .../repos/{owner}/{repo}): the
    webhooks name it so, and keys must compare equal."""
    url = str(issue.get("repository_url") or "")
    _, _, tail = url.rpartition("/repos/")
    return tail if REPOSITORY.fullmatch(tail) and tail.lower() == repository.lower() else repository


def _shortened(text: str | None) -> str | None:
    if text is None or len(text) <= SHORTENED:
        return text
    return text[:SHORTENED] + " [...] (shortened: the postmortem has it whole)"


def _json_list(response: Response[Any]) -> list[dict[str, Any]]:
    """A page as GitHub sent it: dicts, not githubkit's models, which refuse any field a
    GitHub Enterprise Server version words differently."""
    page = response.json()
    return [item for item in page if isinstance(item, dict)] if isinstance(page, list) else []


def _label_name(label: Any) -> str:
    return str(label.get("name", "")) if isinstance(label, dict) else str(label)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
