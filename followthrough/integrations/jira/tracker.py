"""Action items as Jira tickets: create once, comment once, move the due date, find the done ones.

Synchronous (the `jira` library blocks): the activities call these methods in threads. Every
call builds a fresh client (no request is sent until used) through `connect()`: no retries of
its own, bounded by the configured timeout, so a failure comes back at once as JiraRefused
(permanent) or JiraUnavailable (transient; the activity's retry policy tries again later).

Idempotency: an item's ticket carries the label `item_label(action_item_id)` ("ft-..."), and
`ensure_ticket` searches for it before it creates. The library would retry POST /issue by itself
on a 429 or 503 with Retry-After, and a create whose reply is lost (a timeout, a proxy's 502, a
429 after the issue was made) cannot be told apart from one that did nothing; so we never let
the library retry (max_retries=0). Our only retry is the activity's, and it starts with the
search. What remains is a search that misses an issue created moments ago (Jira Cloud's search
index lags writes; two attempts running at once, when an attempt outlived its timeout): after
creating, we search again (on Cloud with `reconcileIssues` = the new issue's id, which makes it
visible) and, when the label finds several issues, the lowest key is the ticket: every attempt
agrees on it. Each extra loses the `postmortem` and item labels (so neither a later search nor
the done-ticket reconciliation sees it again), gains `followthrough-duplicate`, and gets a
comment naming the ticket kept. We do not transition it: workflows name their transitions
differently, and closing someone's issue by guess is worse than leaving one for a person.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from followthrough.domain.tickets import (
    TicketComment,
    TicketDone,
    TicketDue,
    TicketRef,
    TicketRequest,
    item_label,
)
from followthrough.integrations.jira.client import connect, field_errors, translate
from followthrough.integrations.jira.config import JiraConfig
from followthrough.integrations.jira.errors import JiraRefused
from followthrough.integrations.jira.wording import (
    comment_text,
    no_sprint_text,
    ticket_description,
)
from followthrough.logging import get_logger

if TYPE_CHECKING:
    from jira import JIRA

log = get_logger(__name__)

LABELS = ("postmortem", "reliability")  # on every item's ticket, with its own item label
EPIC_LABELS = ("reliability", "followthrough-epic")  # not "postmortem": an epic is no item
DUPLICATE_LABEL = "followthrough-duplicate"
PAGE = 100  # issues or comments per request (Jira caps it at 100 for search anyway)
MAX_PAGES = 1000  # a server repeating a page token must not loop forever
# Jira Software's epic fields on Server and Data Center, found by their schema type.
EPIC_NAME_TYPE = "com.pyxis.greenhopper.jira:gh-epic-label"
EPIC_LINK_TYPE = "com.pyxis.greenhopper.jira:gh-epic-link"
# A JQL date: a period relative to now ("-1d", "-4w 2d", "-12h") or a date ("2026-11-01").
JQL_DATE = re.compile(r"[-+]?(\d+[wdhm] ?)+|\d{4}[-/]\d{2}[-/]\d{2}( \d{2}:\d{2})?")


def marker(dedupe_key: str) -> str:
    """The text that finds a comment again. Brackets escaped: Jira's wiki markup would make
    `[followthrough:x]` a link; it shows `\\[x\\]` as [x]."""
    return f"\\[followthrough:{dedupe_key}\\]"


def has_marker(body: str, dedupe_key: str) -> bool:
    """The marker in a comment, as we wrote it or as Jira gives it back (brackets unescaped, or
    made into a link by Cloud's conversion): `followthrough:<key>` not followed by more key."""
    pattern = rf"followthrough:{re.escape(dedupe_key)}(?![^\s\]\\|}}])"
    return re.search(pattern, body) is not None


class JiraTracker:
    """One Jira, from a JiraConfig: its configured project and the projects routes name.
    Thread-safe: each call has its own client."""

    def __init__(self, config: JiraConfig, *, also_projects: Sequence[str] = ()) -> None:
        """`also_projects`: the projects the policy routes teams' tickets to, searched with the
        configured one for done tickets."""
        self.config = config
        self.projects = list(dict.fromkeys([config.project, *also_projects]))
        self._cloud: bool | None = {"auto": None, "cloud": True, "server": False}[config.deployment]
        self._epic_fields: tuple[str | None, str] | None = None  # Server: Epic Name, Epic Link
        self._lock = threading.Lock()

    def url(self, key: str) -> str:
        return f"{self.config.base_url}/browse/{key}"

    # -- the four operations -----------------------------------------------------------------

    def ensure_ticket(self, request: TicketRequest) -> TicketRef:
        """The item's ticket: found by its label, else created (see the module docstring), in
        the project its route names (else the configured one), under its route's epic, and into
        the board's active sprint when the route asks for this sprint."""
        label = item_label(request.action_item_id)
        project = self._project_of(request)
        doing = f"opening the ticket for {request.action_item_id} in project {project}"
        bound = log.bind(action_item_id=request.action_item_id, label=label, project=project)
        with self._client(doing) as client:
            found = self._find(client, project, label)
            if found:
                key = self._keep_lowest(client, found, label)
                bound.info("jira ticket found", key=key)
                if request.postmortem_url:
                    self._ensure_link(client, key, request, new=False)
                self._into_sprint(client, key, request)
                return TicketRef(key=key, url=self.url(key))
            parent = self._epic_fields_for(client, project, request)
            assignee, note = self._assignee(client, request)
            fields = self._item_fields(request, project, label, parent, assignee, note)
            try:
                created = client.create_issue(fields=fields, prefetch=False)
            except Exception as err:
                no_assignee, no_epic = _refused_assignee(err, fields), _refused_any(err, parent)
                if not (no_assignee or no_epic):
                    raise
                if no_assignee:
                    note = f"Jira refused to assign it to {_owner(request)}"
                    bound.warning("jira refused the assignee", assignee=fields.get("assignee"))
                    assignee = None
                if no_epic:  # a misfit epic in the policy: a ticket without it, for the team
                    bound.warning("jira refused the epic", epic=parent)
                    parent = {}
                fields = self._item_fields(request, project, label, parent, assignee, note)
                created = client.create_issue(fields=fields, prefetch=False)
            key = self._settle(client, project, label, _raw(created), fields["labels"])
            bound.info("jira ticket created", key=key, assigned=bool(fields.get("assignee")))
            if request.postmortem_url:
                self._ensure_link(client, key, request, new=True)
            self._into_sprint(client, key, request)
            return TicketRef(key=key, url=self.url(key))

    def comment(self, comment: TicketComment) -> bool:
        """Post the comment unless one with its marker is there already; True when posted."""
        doing = f"commenting on {comment.key} ({comment.dedupe_key})"
        with self._client(doing) as client:
            text = comment_text(comment)
            posted = self._comment_once(client, comment.key, comment.dedupe_key, text)
        log.info("jira comment", key=comment.key, dedupe_key=comment.dedupe_key, posted=posted)
        return posted

    def set_due(self, due: TicketDue) -> None:
        """Set the due-date field (setting it again to the same date changes nothing)."""
        doing = f"setting the due date of {due.key} to {due.due.isoformat()}"
        with self._client(doing) as client:
            self._put_fields(client, due.key, {self.config.due_field: due.due.isoformat()})
        log.info("jira due date set", key=due.key, due=due.due.isoformat())

    def done_tickets(self, window: str | None = None) -> list[TicketDone]:
        """The project's postmortem tickets in a done status updated within `window` (a JQL
        date: "-1d", "-4w", "2026-11-01"; default the configured one), by key."""
        since = (window or self.config.done_window).strip()
        if not JQL_DATE.fullmatch(since):
            raise JiraRefused(
                f"{since!r} is not a JQL date or period (like -1d, -12h or 2026-11-01): "
                "check FOLLOWTHROUGH_JIRA_DONE_JQL_WINDOW"
            )
        quoted = [_jql_string(p) for p in self.projects]
        projects = f"= {quoted[0]}" if len(quoted) == 1 else f"in ({', '.join(quoted)})"
        jql = (
            f"project {projects} AND labels = postmortem "
            f'AND statusCategory = Done AND updated >= "{since}" ORDER BY key ASC'
        )
        named = ", ".join(self.projects)
        doing = f"searching project {named} for done tickets updated since {since}"
        with self._client(doing) as client:
            issues = self._search(client, jql, "status,resolution,resolutiondate,updated,assignee")
        return [_done(issue) for issue in issues]

    # -- the client, and what Jira it is -----------------------------------------------------

    @property
    def project(self) -> str:
        return self.config.project

    def _project_of(self, request: TicketRequest) -> str:
        route = request.route
        return route.project if route is not None and route.project else self.config.project

    @contextmanager
    def _client(self, doing: str) -> Iterator[JIRA]:
        """A client for one operation; its failures become JiraRefused or JiraUnavailable,
        raised `from None` so that no JIRAError (whose str() has our credentials) is chained."""
        c = self.config
        client: JIRA | None = None
        try:
            client = connect(
                c.base_url, c.user, c.token, timeout=c.timeout, connect_timeout=c.connect_timeout
            )
            client.deploymentType = "Cloud" if self._is_cloud(client) else "Server"
            yield client
        except Exception as err:
            ours = translate(
                err, doing=doing, base=c.base_url, user=c.user, token=c.token, timeout=c.timeout
            )
            if ours is None:
                raise
            raise ours from None
        finally:
            if client is not None:
                client.close()  # type: ignore[no-untyped-call]

    def _is_cloud(self, client: JIRA) -> bool:
        """From the settings, else serverInfo.deploymentType, asked once per tracker."""
        with self._lock:
            if self._cloud is None:
                info = client.server_info()
                self._cloud = isinstance(info, dict) and info.get("deploymentType") == "Cloud"
                log.info("jira deployment", cloud=self._cloud, version=info.get("version"))
            return self._cloud

    # -- finding and creating ----------------------------------------------------------------

    def _find(
        self, client: JIRA, project: str, label: str, *, reconcile: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        jql = f"project = {_jql_string(project)} AND labels = {_jql_string(label)}"
        return self._search(client, f"{jql} ORDER BY key ASC", "labels", reconcile=reconcile)

    def _settle(
        self,
        client: JIRA,
        project: str,
        label: str,
        created: dict[str, Any],
        labels: list[str],
    ) -> str:
        """After a create: the lowest key with the label is the ticket (see the docstring)."""
        found = self._find(client, project, label, reconcile=[str(created.get("id", ""))])
        if all(issue["key"] != created["key"] for issue in found):  # not indexed yet
            found.append({"key": created["key"], "fields": {"labels": labels}})
        return self._keep_lowest(client, found, label)

    def _keep_lowest(self, client: JIRA, found: list[dict[str, Any]], label: str) -> str:
        ordered = sorted(found, key=lambda issue: _key_order(issue["key"]))
        kept = ordered[0]["key"]
        for extra in ordered[1:]:
            self._mark_duplicate(client, extra, kept, label)
        return str(kept)

    def _mark_duplicate(self, client: JIRA, extra: dict[str, Any], kept: str, label: str) -> None:
        key = extra["key"]
        text = (
            f"Followthrough created this ticket twice (a retried request); it keeps {kept} in "
            f"sync and no longer follows this one, which can be closed as a duplicate of {kept}."
        )
        self._comment_once(client, key, f"duplicate-of-{kept}", text)
        labels = (extra.get("fields") or {}).get("labels") or []
        kept_labels = [name for name in labels if name not in (label, "postmortem")]
        self._put_fields(client, key, {"labels": [*kept_labels, DUPLICATE_LABEL]})
        log.warning("jira duplicate ticket marked", key=key, kept=kept, label=label)

    def _item_fields(
        self,
        request: TicketRequest,
        project: str,
        label: str,
        parent: dict[str, Any],
        assignee: dict[str, str] | None,
        unassigned_why: str | None,
    ) -> dict[str, Any]:
        c = self.config
        theirs = request.route.labels if request.route is not None else []
        fields: dict[str, Any] = {
            "project": {"key": project},
            "issuetype": {"name": c.issue_type},
            "summary": _one_line(request.summary),
            "description": ticket_description(
                request, self._link_to_postmortem(request), _owner(request), unassigned_why
            ),
            "labels": list(dict.fromkeys([*LABELS, label, *theirs])),
            c.due_field: request.due.isoformat(),
            **parent,
        }
        priority = c.priorities.get(request.priority)
        if priority:
            fields["priority"] = {"name": priority}
        if assignee:
            fields["assignee"] = assignee
        if request.security_level:  # a restricted postmortem's: only its level's people see it
            fields["security"] = {"name": request.security_level}
        return fields

    def _link_to_postmortem(self, request: TicketRequest) -> str:
        title = _wiki_text(request.postmortem_title or request.postmortem_id)
        return f"[{title}|{request.postmortem_url}]" if request.postmortem_url else f"*{title}*"

    def _assignee(
        self, client: JIRA, request: TicketRequest
    ) -> tuple[dict[str, str] | None, str | None]:
        """({"accountId"} on Cloud, {"name"} on Server) from the settings or a user search by
        email; else (None, why), and the ticket is created unassigned."""
        cloud = self._is_cloud(client)
        account = self.config.accounts.get(request.owner)
        if account:
            return ({"accountId": account} if cloud else {"name": account}), None
        email = request.owner_email.strip()
        if not email:
            return None, f"no email address is known for {request.owner}"
        try:
            users = client.search_users(query=email) if cloud else client.search_users(user=email)
        except Exception as err:
            status = getattr(err, "status_code", None)
            if status in (400, 403, 404):  # no permission to browse users, or no such search
                return None, f"Jira did not let us look up {email} ({status})"
            raise
        raws = [user.raw for user in users if isinstance(user.raw, dict)]
        same = [u for u in raws if str(u.get("emailAddress", "")).lower() == email.lower()]
        if not same and len(raws) == 1:  # Cloud hides email addresses; its match is exact
            same = raws
        ident = "accountId" if cloud else "name"
        ids = {str(u[ident]) for u in same if u.get(ident)}
        if len(ids) != 1:
            found = "several Jira users match" if ids else "no Jira user was found for"
            return None, f"{found} {email}"
        return {ident: ids.pop()}, None

    def _ensure_link(self, client: JIRA, key: str, request: TicketRequest, *, new: bool) -> None:
        """A simple remote link back to the postmortem (POST .../remotelink; no applinks, which
        need an admin), unless the ticket has one to that URL already."""
        url = request.postmortem_url
        if not url:
            return
        if not new:
            links = client._get_json(f"issue/{key}/remotelink")
            for link in links if isinstance(links, list) else []:
                if isinstance(link, dict) and (link.get("object") or {}).get("url") == url:
                    return
        title = f"Postmortem: {_one_line(request.postmortem_title)}"
        client.add_simple_link(key, {"url": url, "title": title[:255]})

    # -- epics -------------------------------------------------------------------------------

    def _epic_fields_for(
        self, client: JIRA, project: str, request: TicketRequest
    ) -> dict[str, Any]:
        """The fields that link the ticket to its epic: the route's (an objective's, the
        tech-debt backlog's), else with epics on its postmortem's, else none."""
        route = request.route
        if route is not None and route.epic:
            return self._link_to_epic(client, route.epic, request)
        return self._ensure_epic(client, project, request) if self.config.epics else {}

    def _link_to_epic(self, client: JIRA, epic: str, request: TicketRequest) -> dict[str, Any]:
        """An existing epic, by key: Cloud `parent`, Server's Epic Link (without Jira Software's
        field, no epic, and a warning, as for the postmortem's epic)."""
        if self._is_cloud(client):
            return {"parent": {"key": epic}}
        epic_fields = self._server_epic_fields(client)
        if epic_fields is None:
            log.warning(
                "jira has no epic fields: creating the ticket without its epic",
                action_item_id=request.action_item_id,
                epic=epic,
            )
            return {}
        return {epic_fields[1]: epic}

    def _ensure_epic(self, client: JIRA, project: str, request: TicketRequest) -> dict[str, Any]:
        """The fields that put the item under its postmortem's epic (found by the label
        `item_label(postmortem_id)`, else created). Cloud: `parent` {"key"}. Server and Data
        Center (where `parent` is only for sub-tasks): Jira Software's Epic Link field, and on a
        new epic its Epic Name field (required there), both found by their schema types in GET
        /field; without an Epic Link field (no Jira Software) the item is created without an
        epic and a warning is logged: a misfit setting must not stop tickets."""
        cloud = self._is_cloud(client)
        epic_fields: tuple[str | None, str] | None = None
        if not cloud:
            epic_fields = self._server_epic_fields(client)
            if epic_fields is None:
                log.warning(
                    "jira has no epic fields: creating the ticket without an epic",
                    postmortem_id=request.postmortem_id,
                )
                return {}
        label = item_label(request.postmortem_id)
        found = self._find(client, project, label)
        if found:
            key = self._keep_lowest(client, found, label)
        else:
            title = _one_line(f"Postmortem: {request.postmortem_title}")
            fields: dict[str, Any] = {
                "project": {"key": project},
                "issuetype": {"name": "Epic"},
                "summary": title,
                "description": f"The action items of {self._description_source(request)}.",
                "labels": [*EPIC_LABELS, label],
            }
            if epic_fields and epic_fields[0]:
                fields[epic_fields[0]] = title
            created = client.create_issue(fields=fields, prefetch=False)
            key = self._settle(client, project, label, _raw(created), fields["labels"])
            log.info("jira epic created", key=key, postmortem_id=request.postmortem_id)
        if epic_fields:
            return {epic_fields[1]: key}
        return {"parent": {"key": key}}

    def _description_source(self, request: TicketRequest) -> str:
        title = _wiki_text(request.postmortem_title)
        if request.postmortem_url:
            return f"the postmortem [{title}|{request.postmortem_url}]"
        return f"the postmortem {title}"

    def _server_epic_fields(self, client: JIRA) -> tuple[str | None, str] | None:
        """(the Epic Name field id or None, the Epic Link field id), or None without Jira
        Software's Epic Link; asked once per tracker (GET /rest/api/2/field)."""
        with self._lock:
            if self._epic_fields is None:
                ids: dict[str, str] = {}
                for f in client._get_json("field") or []:
                    custom = (f.get("schema") or {}).get("custom") if isinstance(f, dict) else None
                    if custom in (EPIC_NAME_TYPE, EPIC_LINK_TYPE):
                        ids.setdefault(custom, str(f["id"]))
                if EPIC_LINK_TYPE in ids:
                    self._epic_fields = (ids.get(EPIC_NAME_TYPE), ids[EPIC_LINK_TYPE])
            return self._epic_fields

    # -- sprints -----------------------------------------------------------------------------

    def _into_sprint(self, client: JIRA, key: str, request: TicketRequest) -> None:
        """Into the board's active sprint when the route asks for this sprint (Jira Agile REST:
        GET board/{id}/sprint?state=active, POST sprint/{id}/issue; adding an issue already in
        the sprint changes nothing, so a retry may add it again). No active sprint: it stays in
        the backlog, and says so once in a comment, so the team sees it was meant for now."""
        route = request.route
        if route is None or not route.this_sprint or route.board is None:
            return
        bound = log.bind(action_item_id=request.action_item_id, key=key, board=route.board)
        sprints = client.sprints(route.board, state="active", maxResults=0)
        active = [s for s in sprints if str(getattr(s, "state", "active")).lower() == "active"]
        if not active:
            bound.warning("jira board has no active sprint: the ticket stays in the backlog")
            self._comment_once(
                client, key, f"{request.action_item_id}/no-active-sprint", no_sprint_text(route)
            )
            return
        sprint = active[0]  # parallel sprints: the board's first, as its backlog view lists them
        client.add_issues_to_sprint(int(sprint.id), [key])
        bound.info("jira ticket in the active sprint", sprint=int(sprint.id))

    # -- comments, updates, search -----------------------------------------------------------

    def _comment_once(self, client: JIRA, key: str, dedupe_key: str, text: str) -> bool:
        for body in self._comment_bodies(client, key):
            if has_marker(body, dedupe_key):
                return False
        client.add_comment(key, f"{text.rstrip()}\n\n{marker(dedupe_key)}")
        return True

    def _comment_bodies(self, client: JIRA, key: str) -> Iterator[str]:
        start = 0
        for _ in range(MAX_PAGES):
            page = client._get_json(
                f"issue/{key}/comment", params={"startAt": start, "maxResults": PAGE}
            )
            comments = page.get("comments") or [] if isinstance(page, dict) else []
            for comment in comments:
                body = comment.get("body") if isinstance(comment, dict) else None
                yield body if isinstance(body, str) else json.dumps(body)
            start += len(comments)
            total = page.get("total") if isinstance(page, dict) else None
            if not comments or not isinstance(total, int) or start >= total:
                return

    def _put_fields(self, client: JIRA, key: str, fields: dict[str, Any]) -> None:
        url = client._get_url(f"issue/{key}")
        client._session.put(url, data=json.dumps({"fields": fields}))

    def _search(
        self, client: JIRA, jql: str, fields: str, *, reconcile: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """Every issue the JQL finds, paged by hand (the library's Server paging stops after
        `maxResults` unless told to fetch all, and it first GETs /field to translate names):
        Cloud GET /search/jql with nextPageToken (GET /search is gone there), Server GET
        /search with startAt until `total`."""
        issues: list[dict[str, Any]] = []
        if self._is_cloud(client):
            params: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": PAGE}
            ids = [int(i) for i in reconcile if str(i).isdigit()]
            if ids:
                params["reconcileIssues"] = ids
            seen: set[str] = set()
            for _ in range(MAX_PAGES):
                page = client._get_json("search/jql", params=params)
                issues.extend(page.get("issues") or [])
                token = page.get("nextPageToken")
                if not token or page.get("isLast") is True or token in seen:
                    break
                seen.add(token)
                params["nextPageToken"] = token
            return issues
        start = 0
        for _ in range(MAX_PAGES):
            page = client._get_json(
                "search",
                params={"jql": jql, "startAt": start, "maxResults": PAGE, "fields": fields},
            )
            got = page.get("issues") or []
            issues.extend(got)
            start = int(page.get("startAt", start)) + len(got)
            total = page.get("total")
            if not got or not isinstance(total, int) or start >= total:
                break
        return issues


def _refused_assignee(err: BaseException, fields: dict[str, Any]) -> bool:
    """A 400 whose field errors name the assignee (unknown user, or not assignable)."""
    return (
        "assignee" in fields
        and getattr(err, "status_code", None) == 400
        and "assignee" in field_errors(err)
    )


def _refused_any(err: BaseException, fields: dict[str, Any]) -> bool:
    """A 400 whose field errors name one of these fields (an epic Jira does not know)."""
    return (
        bool(fields)
        and getattr(err, "status_code", None) == 400
        and any(name in field_errors(err) for name in fields)
    )


def _raw(issue: Any) -> dict[str, Any]:
    raw = getattr(issue, "raw", None)
    return raw if isinstance(raw, dict) else {"key": str(issue.key), "id": str(issue.id)}


def _done(issue: dict[str, Any]) -> TicketDone:
    fields = issue.get("fields") or {}
    status = fields.get("status") or {}
    resolution = fields.get("resolution") or {}
    return TicketDone(
        key=str(issue["key"]),
        status=str(status.get("name", "?")),
        resolution=resolution.get("name") if isinstance(resolution, dict) else None,
        at=_jira_time(fields.get("resolutiondate")) or _jira_time(fields.get("updated")),
        source="reconciliation",
    )


def _jira_time(value: Any) -> datetime | None:
    """Jira's 2026-11-22T16:20:00.000+0000 (or ISO 8601) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    for parse in (
        lambda v: datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%f%z"),
        datetime.fromisoformat,
    ):
        try:
            moment = parse(value)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _key_order(key: str) -> tuple[str, int, str]:
    project, _, number = key.rpartition("-")
    return (project, int(number), key) if number.isdigit() else (project, 0, key)


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_line(text: str) -> str:
    """A summary: one line (Jira refuses newlines there), at most 255 characters."""
    return " ".join(text.split())[:255]


def _wiki_text(text: str) -> str:
    """Text inside a wiki-markup link, where | and ] would end it."""
    return _one_line(text).replace("|", "/").replace("[", "(").replace("]", ")")


def _owner(request: TicketRequest) -> str:
    return f"{request.owner} <{request.owner_email}>" if request.owner_email else request.owner
