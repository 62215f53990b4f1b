"""The `followthrough` command line.

Reads come from the database (the queryable record); actions go to the workflows as updates, so
the workflow's validators decide and their message comes back verbatim when an action is refused.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import yaml
from pydantic import BaseModel

from followthrough.actions import ActionRefused, Actions
from followthrough.domain.access import (
    TokenScope,
    expires_in_days,
    without_others_links,
)
from followthrough.domain.audit_log import (
    AUDIT_PAGE_SIZE,
    audit_cursor,
    read_audit_cursor,
    slo_imported,
)
from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.decisions import FreezeStatus, service_problem
from followthrough.domain.draft import parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.limits import AUDIT_PAGE_MOST, DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS
from followthrough.domain.notice import NoticeDelivery, OutboxMessage
from followthrough.domain.policy import load_policy
from followthrough.domain.postmortem import (
    ActionItem,
    Approval,
    ChangeRequest,
    CollectAgain,
    DoneClaim,
    DraftSubmission,
    ExtensionDecision,
    ExtensionRequest,
    OptIn,
    Postmortem,
    Reassignment,
    Rejection,
    RiskAcceptanceRequest,
    Verification,
)
from followthrough.domain.problems import Problems
from followthrough.domain.relative_time import looks_relative, relative_day, with_relative_times
from followthrough.domain.slo_rules import proposed_change, proposed_windows, sloth_spec
from followthrough.domain.slo_specs import load_slo_specs
from followthrough.logging import configure_logging
from followthrough.progress import Progress
from followthrough.render import (
    action_item_detail,
    action_item_line,
    outbox_detail,
    outbox_line,
    postmortem_detail,
    postmortem_line,
    theme_detail,
    when,
)
from followthrough.reporting.document import postmortem_document, render_html, render_markdown
from followthrough.runtime import (
    StartupError,
    prepare_database,
    run_api,
    run_embedded,
    run_worker,
)
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.temporal.client import connect, start_postmortem

app = typer.Typer(help="Postmortems whose follow-ups actually get done.", no_args_is_help=True)
incident_app = typer.Typer(help="Resolved incidents.", no_args_is_help=True)
postmortem_app = typer.Typer(
    help="Postmortems: list, show, opt in, submit, review.", no_args_is_help=True
)
action_app = typer.Typer(help="Action items: list, show, claim done, verify.", no_args_is_help=True)
policy_app = typer.Typer(help="The severity policy and directory.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
token_app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)
slo_app = typer.Typer(
    help="Service level objectives (from Sloth or OpenSLO).", no_args_is_help=True
)
outbox_app = typer.Typer(help="The emails Followthrough sent or would send.", no_args_is_help=True)
theme_app = typer.Typer(help="Recurring contributing factors.", no_args_is_help=True)
report_app = typer.Typer(help="Reports for the reliability council.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The administrative audit log (tokens, SLO imports, policy changes, items closed).",
    no_args_is_help=True,
)
freeze_app = typer.Typer(
    help="The council's release freezes, for CI/CD gates.", no_args_is_help=True
)
app.add_typer(incident_app, name="incident")
app.add_typer(postmortem_app, name="postmortem")
app.add_typer(action_app, name="action")
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(outbox_app, name="outbox")
app.add_typer(token_app, name="token")
app.add_typer(slo_app, name="slo")
app.add_typer(theme_app, name="theme")
app.add_typer(report_app, name="report")
app.add_typer(freeze_app, name="freeze")
app.add_typer(audit_app, name="audit")

F = TypeVar("F", bound=Callable[..., Any])
Result = TypeVar("Result", bound=BaseModel)

Actor = Annotated[
    str | None,
    typer.Option("--as", help="who you are (default: $FOLLOWTHROUGH_USER)", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def friendly_errors(command: F) -> F:
    """Errors a user can act on become one clear message and exit status 1; nothing changed."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (Problems, ActionRefused, StartupError, LookupError, FileNotFoundError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
        except RuntimeError as err:
            if "Failed client connect" in str(err):
                typer.echo(
                    f"error: cannot reach Temporal ({err}); is `followthrough up` running, "
                    "or TEMPORAL_ADDRESS set?",
                    err=True,
                )
                raise typer.Exit(1) from None
            raise

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    return Settings()


def actor(name: str | None) -> str:
    who = name or settings().user
    if not who:
        raise LookupError("who are you? pass --as NAME or set FOLLOWTHROUGH_USER")
    return who


def administrator() -> str:
    """Who the audit log says did an administrative command: FOLLOWTHROUGH_USER, else the
    operating system's user."""
    return settings().user or getpass.getuser()


def open_store() -> Store:
    """The store, opened the same way by every command: any of them may be the first to touch
    the embedded SQLite database of a fresh install (migrated here); PostgreSQL is upgraded
    deliberately, and a schema behind this version is refused with the command to run."""
    return prepare_database(settings())


def read_mapping(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FileNotFoundError(f"{path}: {err.strerror}") from None
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON: one reader for both
    except yaml.YAMLError as err:
        raise Problems(str(path), [f"not valid YAML or JSON: {err}"]) from None


def read_written(path: Path) -> Any:
    """A file a person wrote (an incident, a draft): relative times (`now-1h`) written out."""
    data, problems = with_relative_times(read_mapping(path), datetime.now(UTC))
    if problems:
        raise Problems(str(path), problems)
    return data


def emit(model: BaseModel | list[Any] | dict[str, Any]) -> None:
    if isinstance(model, BaseModel):
        typer.echo(model.model_dump_json(indent=2))
    else:
        typer.echo(json.dumps(model, indent=2, default=str))


def act(store: Store, action: Callable[[Actions], Awaitable[Result]]) -> Result:
    """A person's action, decided as the API decides it (followthrough/actions.py), straight to
    Temporal; it connects only once the action has passed its preflight."""

    async def take() -> Result:
        return await action(Actions(temporal=connect, store=store, settings=settings()))

    return asyncio.run(take())


# --- running it --------------------------------------------------------------------------------


@app.command()
@friendly_errors
def up(
    temporal_port: Annotated[int, typer.Option(help="Temporal gRPC port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port")] = 8233,
) -> None:
    """Run the embedded default: Temporal dev server, SQLite and a worker, until Ctrl-C."""
    config = settings()
    configure_logging(json=config.log_json)
    asyncio.run(run_embedded(config, port=temporal_port, ui_port=ui_port))


@app.command()
@friendly_errors
def worker() -> None:
    """Run a worker against TEMPORAL_ADDRESS (default 127.0.0.1:7233) until Ctrl-C."""
    config = settings()
    configure_logging(json=config.log_json)
    asyncio.run(run_worker(config))


@app.command()
@friendly_errors
def api() -> None:
    """Run the HTTP API (webhooks, /api, /docs, /metrics) on FOLLOWTHROUGH_API_PORT until Ctrl-C."""
    config = settings()
    configure_logging(json=config.log_json)
    asyncio.run(run_api(config))


@app.command("notices")
@friendly_errors
def notices(
    digest: Annotated[
        NoticeDelivery | None,
        typer.Option(help="immediate: each hand-off at once; daily: one digest a day"),
    ] = None,
    by: Actor = None,
    as_json: AsJson = False,
) -> None:
    """Show or choose how you get non-urgent notices (escalations always come at once)."""
    person = actor(by)
    config, store = settings(), open_store()
    config.use_directory(store)
    if person not in config.loaded_policy.people:
        raise LookupError(f"'{person}' is not in the policy's directory")
    if digest is not None:
        store.preferences.choose(person, digest, datetime.now(UTC))
    chosen = store.preferences.delivery(person)
    if as_json:
        emit({"person": person, "digest": chosen.value})
    else:
        typer.echo(f"{person} gets non-urgent notices: {chosen.value}")


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Migrate the database to this version's schema."""
    url = settings().effective_database_url
    upgrade(url)
    typer.echo(f"database at the newest schema: {url}")


@app.command("seed")
@friendly_errors
def seed_command(
    postmortems: Annotated[int, typer.Option(min=0, help="how many (about 5 action items each)")],
    seed: Annotated[int, typer.Option(help="the same seed makes the same records")] = 7,
    force: Annotated[
        bool, typer.Option("--force", help="seed beside postmortems that were not seeded")
    ] = False,
) -> None:
    """Fill the database with realistic made-up records for demos, browser tests and benchmarks:
    postmortems of the past 15 months with their action items, reviews, escalations and SLO
    reviews. Running it again adds only the postmortems not seeded yet. The policy's WIP caps
    hold: a note says which teams' seeded items mostly wait in line."""
    from followthrough.seed import ID_PREFIX
    from followthrough.seed import seed as seed_records

    store = open_store()
    others = len(store.records.postmortem_ids() - store.records.postmortem_ids(ID_PREFIX))
    if others and not force:
        which = "postmortem that was" if others == 1 else "postmortems that were"
        typer.echo(
            f"error: the database holds {others} {which} not seeded; made-up records would mix "
            "with them on every page and in every report. Seed an empty database "
            "(FOLLOWTHROUGH_DATABASE_URL), or pass --force.",
            err=True,
        )
        raise typer.Exit(1)
    with Progress() as progress:
        summary = seed_records(
            store,
            settings().loaded_policy,
            postmortems=postmortems,
            now=datetime.now(UTC),
            seed=seed,
            progress=lambda done, total: progress("seeding postmortems", done, total),
        )
    typer.echo(summary.line())
    for line in summary.lines_in_line():
        typer.echo(f"note: {line}", err=True)


@policy_app.command("check")
@friendly_errors
def policy_check(file: Path) -> None:
    """Validate a policy file and summarize it."""
    policy = load_policy(file)
    required = [name for name, s in policy.severities.items() if s.postmortem_required]
    typer.echo(
        f"{file}: ok: {len(policy.severities)} severities ({', '.join(policy.severities)}), "
        f"postmortem required for {', '.join(required) or 'none'}; {len(policy.teams)} teams, "
        f"{len(policy.people)} people, council of {len(policy.council)}"
    )


# --- incidents ---------------------------------------------------------------------------------


def resolve_incident(file: Path) -> dict[str, Any]:
    config = settings()
    config.use_directory(open_store())  # the postmortem starts with today's directory too
    incident = parse_incident(
        read_written(file), config.loaded_policy, origin=str(file), now=datetime.now(UTC)
    )

    async def start() -> dict[str, Any]:
        result = await start_postmortem(
            await connect(), incident, config.loaded_policy, task_queue=config.task_queue
        )
        return result.model_dump()

    return asyncio.run(start())


@incident_app.command("resolved")
@friendly_errors
def incident_resolved(file: Path, as_json: AsJson = False) -> None:
    """Start the postmortem for a resolved incident (JSON file); idempotent per incident."""
    result = resolve_incident(file)
    if as_json:
        emit(result)
    else:
        typer.echo(f"{result['workflow_id']}: {result['outcome']}")


# --- postmortems -------------------------------------------------------------------------------


@postmortem_app.command("list")
@friendly_errors
def postmortem_list(
    state: Annotated[str | None, typer.Option(help="only this state")] = None,
    as_json: AsJson = False,
) -> None:
    """Postmortems, newest first."""
    postmortems = open_store().records.postmortems(state)
    if as_json:
        emit([pm.model_dump(mode="json") for pm in postmortems])
        return
    for pm in postmortems:
        typer.echo(postmortem_line(pm))


@postmortem_app.command("show")
@friendly_errors
def postmortem_show(postmortem: str, as_json: AsJson = False) -> None:
    """State, sections, action items and the audit trail of one postmortem."""
    store = open_store()
    pm, items = _postmortem_and_items(store, postmortem)
    trail = store.records.audit_trail(pm.id)
    if as_json:
        emit(
            {
                "postmortem": pm.model_dump(mode="json"),
                "action_items": [i.model_dump(mode="json") for i in items],
                "audit": [e.model_dump(mode="json") for e in trail],
            }
        )
        return
    typer.echo(postmortem_detail(pm, items, trail))


@postmortem_app.command("export")
@friendly_errors
def postmortem_export(
    postmortem: str,
    markdown: Annotated[bool, typer.Option("--markdown", help="Markdown instead of HTML")] = False,
) -> None:
    """The postmortem as a document anyone can read (HTML, printable; or Markdown)."""
    pm, items = _postmortem_and_items(open_store(), postmortem)
    page = postmortem_document(pm, items, settings().loaded_policy, datetime.now(UTC))
    typer.echo(render_markdown(page) if markdown else render_html(page), nl=False)


def _postmortem_and_items(store: Store, postmortem: str) -> tuple[Postmortem, list[ActionItem]]:
    """The postmortem a person named (its id or a unique tail) and its action items."""
    pm_id = store.records.resolve(postmortem)
    pm = store.records.postmortem(pm_id)
    if pm is None:
        raise LookupError(f"no postmortem '{postmortem}'")
    return pm, store.records.action_items(postmortem_id=pm_id)


@postmortem_app.command("opt-in")
@friendly_errors
def postmortem_opt_in(postmortem: str, by: Actor = None) -> None:
    """Take on an optional postmortem: it becomes yours to write, due as a required one's."""
    opt_in = OptIn(by=actor(by))
    store = open_store()
    pm_id = store.records.resolve(postmortem)
    pm = act(store, lambda actions: actions.opt_in(pm_id, opt_in))
    typer.echo(f"{pm.id} is {pm.state.value}: {pm.owner} writes it, draft due {when(pm.draft_due)}")


@postmortem_app.command("collect")
@friendly_errors
def postmortem_collect(postmortem: str, by: Actor = None) -> None:
    """Collect the incident's timeline from its sources again (the owner or a reviewer)."""
    request = CollectAgain(by=actor(by))
    store = open_store()
    pm_id = store.records.resolve(postmortem)
    pm = act(store, lambda actions: actions.collect_again(pm_id, request))
    typer.echo(
        f"{pm.id}: collecting its timeline again; the draft editor shows what each source gave"
    )


@postmortem_app.command("submit")
@friendly_errors
def postmortem_submit(postmortem: str, draft_file: Path, by: Actor = None) -> None:
    """Submit the draft (YAML) for review; every problem is listed at once if it is refused."""
    draft = parse_draft(read_written(draft_file), origin=str(draft_file))
    submission = DraftSubmission(by=actor(by), draft=draft)
    store = open_store()
    pm_id = store.records.resolve(postmortem)
    pm = act(store, lambda actions: actions.submit_draft(pm_id, submission))
    typer.echo(
        f"{pm.id} is {pm.state.value}: draft version {pm.draft_version} needs "
        f"{pm.approvals_required} approval(s)"
    )


@postmortem_app.command("approve")
@friendly_errors
def postmortem_approve(
    postmortem: str, by: Actor = None, comment: Annotated[str, typer.Option()] = ""
) -> None:
    """Approve the draft under review (reviewers only; never the author)."""
    approval = Approval(by=actor(by), comment=comment)
    store = open_store()
    pm_id = store.records.resolve(postmortem)
    pm = act(store, lambda actions: actions.approve(pm_id, approval))
    typer.echo(
        f"{pm.id} is {pm.state.value}: {len(pm.approvals())}/{pm.approvals_required} approvals"
        + (f"; {len(pm.action_item_ids)} action items opened" if pm.action_item_ids else "")
    )


@postmortem_app.command("request-changes")
@friendly_errors
def postmortem_request_changes(
    postmortem: str,
    reason: Annotated[str, typer.Option(help="what needs to change")],
    by: Actor = None,
) -> None:
    """Send the draft back to its owner with a reason."""
    request = ChangeRequest(by=actor(by), reason=reason)
    store = open_store()
    pm_id = store.records.resolve(postmortem)
    pm = act(store, lambda actions: actions.request_changes(pm_id, request))
    typer.echo(f"{pm.id} is {pm.state.value}")


# --- action items ------------------------------------------------------------------------------


@action_app.command("list")
@friendly_errors
def action_list(
    postmortem: Annotated[str | None, typer.Option(help="only this postmortem's")] = None,
    state: Annotated[str | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    team: Annotated[str | None, typer.Option()] = None,
    as_json: AsJson = False,
) -> None:
    """Action items, by postmortem."""
    store = open_store()
    pm_id = store.records.resolve(postmortem) if postmortem else None
    items = store.records.action_items(postmortem_id=pm_id, state=state, owner=owner, team=team)
    if as_json:
        emit([i.model_dump(mode="json") for i in items])
        return
    for item in items:
        typer.echo(action_item_line(item))


@action_app.command("show")
@friendly_errors
def action_show(item: str, as_json: AsJson = False) -> None:
    """One action item: its acceptance criterion, claims, verdicts and audit trail."""
    store = open_store()
    found = store.records.action_item(store.records.resolve(item, action_item=True))
    if found is None:
        raise LookupError(f"no action item '{item}'")
    if as_json:
        emit(found)
        return
    typer.echo(action_item_detail(found, store.records.audit_trail(found.postmortem_id)))


def _item_action(item: str, action: Callable[[Actions, str], Awaitable[ActionItem]]) -> None:
    """The action on the item the person named (by id or a unique tail), and what it is now."""
    store = open_store()
    item_id = store.records.resolve(item, action_item=True)
    result = act(store, lambda actions: action(actions, item_id))
    pending = result.pending_extension
    typer.echo(
        f"{result.id} is {result.state.value}, owned by {result.owner}, due {result.due}"
        + (f"; extension to {pending.until} awaits a decision" if pending else "")
    )


@action_app.command("done")
@friendly_errors
def action_done(
    item: str,
    evidence: Annotated[str, typer.Option(help="the change, dashboard or test that shows it")],
    by: Actor = None,
) -> None:
    """Claim an action item done (its owner); verification comes next."""
    claim = DoneClaim(by=actor(by), evidence=evidence)
    _item_action(item, lambda actions, item_id: actions.claim_done(item_id, claim))


@action_app.command("verify")
@friendly_errors
def action_verify(item: str, by: Actor = None, note: Annotated[str, typer.Option()] = "") -> None:
    """Verify a done claim against the acceptance criterion (never the owner)."""
    verification = Verification(by=actor(by), note=note)
    _item_action(item, lambda actions, item_id: actions.verify(item_id, verification))


@action_app.command("reject")
@friendly_errors
def action_reject(
    item: str,
    reason: Annotated[str, typer.Option(help="why the criterion is not met")],
    by: Actor = None,
) -> None:
    """Reject a done claim; the item reopens with the reason."""
    rejection = Rejection(by=actor(by), reason=reason)
    _item_action(item, lambda actions, item_id: actions.reject(item_id, rejection))


@action_app.command("extend")
@friendly_errors
def action_extend(
    item: str,
    until: Annotated[str, typer.Option(help="the new due date, YYYY-MM-DD or today+8w")],
    reason: Annotated[str, typer.Option(help="why more time is needed")],
    by: Actor = None,
) -> None:
    """Ask for a later due date (the owner); the manager or the council decides."""
    request = ExtensionRequest(by=actor(by), until=parse_day(until), reason=reason)
    _item_action(item, lambda actions, item_id: actions.request_extension(item_id, request))


@action_app.command("decide-extension")
@friendly_errors
def action_decide_extension(
    item: str,
    approve: Annotated[bool, typer.Option("--approve/--deny", help="the decision")],
    reason: Annotated[str, typer.Option(help="why (required to deny)")] = "",
    by: Actor = None,
) -> None:
    """Approve or deny a pending extension (the owner's manager or a council member)."""
    decision = ExtensionDecision(by=actor(by), approve=approve, reason=reason)
    _item_action(item, lambda actions, item_id: actions.decide_extension(item_id, decision))


@action_app.command("reassign")
@friendly_errors
def action_reassign(
    item: str,
    to: Annotated[str, typer.Option(help="the new owner")],
    team: Annotated[str | None, typer.Option(help="the new owner's team, if it changes")] = None,
    reason: Annotated[str, typer.Option()] = "",
    by: Actor = None,
) -> None:
    """Give an action item to a new owner, who is told by email."""
    change = Reassignment(by=actor(by), to=to, team=team, reason=reason)
    _item_action(item, lambda actions, item_id: actions.reassign(item_id, change))


@action_app.command("accept-risk")
@friendly_errors
def action_accept_risk(
    item: str,
    reason: Annotated[str, typer.Option(help="why the risk is acceptable, in writing")],
    by: Actor = None,
) -> None:
    """Close an action item as risk accepted (the reliability council only)."""
    request = RiskAcceptanceRequest(by=actor(by), reason=reason)
    _item_action(item, lambda actions, item_id: actions.accept_risk(item_id, request))


def parse_day(text: str) -> date:
    try:
        if looks_relative(text):
            return relative_day(text, datetime.now(UTC))
        return date.fromisoformat(text)
    except ValueError:
        message = f"'{text}' is not a date like 2027-01-31 or today+8w"
        raise Problems("--until", [message]) from None


# --- the outbox --------------------------------------------------------------------------------


@outbox_app.command("list")
@friendly_errors
def outbox_list(
    postmortem: Annotated[str | None, typer.Option(help="only this postmortem's")] = None,
    item: Annotated[str | None, typer.Option(help="only this action item's")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    as_json: AsJson = False,
) -> None:
    """Messages, newest first: when, status, recipients and subject."""
    store = open_store()
    messages = store.outbox.messages(
        postmortem_id=store.records.resolve(postmortem) if postmortem else None,
        action_item_id=store.records.resolve(item, action_item=True) if item else None,
        limit=limit,
    )
    if as_json:
        emit([_without_links(m).model_dump(mode="json", exclude={"html"}) for m in messages])
        return
    for message in messages:
        typer.echo(outbox_line(message))


@outbox_app.command("show")
@friendly_errors
def outbox_show(
    key: str, html: Annotated[bool, typer.Option("--html", help="the HTML part")] = False
) -> None:
    """One message as its reader sees it (the plain-text part unless --html), its one-click
    links replaced: they are for the addressee alone."""
    message = open_store().outbox.message(key)
    if message is None:
        raise LookupError(f"no message '{key}' in the outbox")
    shown = _without_links(message)
    typer.echo(shown.html if html else outbox_detail(shown))


def _without_links(message: OutboxMessage) -> OutboxMessage:
    """Whoever runs the CLI is not the addressee, and a one-click link acts as its addressee."""
    return message.model_copy(
        update={
            "text": without_others_links(message.text, None),
            "html": without_others_links(message.html, None),
        }
    )


# --- SLOs ---------------------------------------------------------------------------------------


@slo_app.command("import")
@friendly_errors
def slo_import(files: list[Path]) -> None:
    """Import SLOs from Sloth or OpenSLO v1 YAML files; all are checked before any is saved."""
    with Progress() as progress:
        found, refused = [], []
        for n, file in enumerate(files):  # every file valid, or nothing; every refusal said
            progress("checking SLO files", n, len(files))
            try:
                found.append((file, load_slo_specs(file)))
            except (Problems, OSError, UnicodeDecodeError) as err:
                refused.append(f"error: {err}")
        progress("checking SLO files", len(files), len(files))
        if refused:
            typer.echo("\n".join(refused), err=True)
            raise typer.Exit(1)
        store, by = open_store(), administrator()
        for n, (file, slos) in enumerate(found):
            progress("saving SLOs", n, len(found))
            now = datetime.now(UTC)
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            imported = slo_imported(str(file), [slo.id for slo in slos], digest, by, now)
            store.slos.save(slos, now, imported)
        progress("saving SLOs", len(found), len(found))
    for file, slos in found:
        typer.echo(f"{file}: {len(slos)} SLOs: " + ", ".join(slo.id for slo in slos))


@slo_app.command("list")
@friendly_errors
def slo_list(
    service: Annotated[str | None, typer.Option(help="only this service's")] = None,
    as_json: AsJson = False,
) -> None:
    """SLOs by service: objective, period and their queries."""
    slos = open_store().slos.all(service)
    if as_json:
        emit([slo.model_dump(mode="json") for slo in slos])
        return
    for slo in slos:
        typer.echo(
            f"{slo.id:<40} {slo.service:<14} {slo.objective:.3%} over {slo.period.days}d "
            f"({slo.source}, {len(slo.windows)} alert windows)"
        )


@slo_app.command("rules")
@friendly_errors
def slo_rules(
    slo_id: str,
    sloth: Annotated[bool, typer.Option("--sloth", help="a Sloth spec instead of rules")] = False,
) -> None:
    """Prometheus recording and burn-rate alerting rules for an SLO (page windows that cannot
    fire at its objective retuned), or its Sloth spec."""
    found = {slo.id: slo for slo in open_store().slos.all()}
    if slo_id not in found:
        raise LookupError(f"there is no SLO '{slo_id}' (followthrough slo list)")
    slo = found[slo_id]
    if sloth:
        typer.echo(sloth_spec(slo, proposed_windows(slo)), nl=False)
    else:
        typer.echo(proposed_change(slo), nl=False)


# --- Recurring themes ---------------------------------------------------------------------------


@theme_app.command("list")
@friendly_errors
def theme_list(
    tag: Annotated[str | None, typer.Option(help="only this contributing-factor tag")] = None,
    as_json: AsJson = False,
) -> None:
    """Contributing factors that came back: when each reached the council, and its postmortems."""
    themes = open_store().themes.all(tag)
    if as_json:
        emit([theme.model_dump(mode="json") for theme in themes])
        return
    for theme in themes:
        typer.echo(theme_detail(theme))


# --- Council freezes ---------------------------------------------------------------------------


@freeze_app.command("check")
def freeze_check(
    service: str,
    as_json: AsJson = False,
) -> None:
    """Exit 0 when the service is not frozen, 1 when the council froze its releases or paused
    its feature work (each reason printed), 2 when it cannot tell (an unknown service, no
    database). For CI/CD gates: `followthrough freeze check checkout || exit 1`."""
    try:
        if problem := service_problem(service):
            raise LookupError(problem)
        active = open_store().decisions.freezes(service)
        if not active and service not in settings().loaded_policy.services:
            raise LookupError(f"service '{service}' is not in the policy's services")
    except Exception as err:  # whatever it is, a gate must not read it as "not frozen"
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    status = FreezeStatus(service=service, frozen=bool(active), freezes=active)
    if as_json:
        emit(status.model_dump(mode="json"))
    elif not active:
        typer.echo(f"{service} is not frozen")
    for freeze in active if not as_json else []:
        what = freeze.kind.value.replace("_", " ")
        line = (
            f"{service} is frozen: {what} by {freeze.decided_by} on "
            f"{freeze.at:%Y-%m-%d %H:%M} UTC ({freeze.decision_id})"
        )
        if freeze.reason:
            line += f": {freeze.reason}"
        typer.echo(f"{line}; lifts when {freeze.lifts_when}")
    if active:
        raise typer.Exit(1)


# --- Reports -----------------------------------------------------------------------------------


def usage_error(option: str, problem: str) -> NoReturn:
    """Bad input on the command line: the problem, exit status 2 (a usage error), nothing done."""
    typer.echo(f"error: {option}: {problem}", err=True)
    raise typer.Exit(2)


def parse_moment(text: str, option: str, calendar: BusinessCalendar) -> datetime:
    """An ISO 8601 time with its zone, or a date: its start in the calendar's zone."""
    try:
        return calendar.midnight(date.fromisoformat(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        usage_error(
            option, f"'{text}' is not a date or a time like 2027-01-05 or 2027-01-05T09:00Z"
        )
    if moment.tzinfo is None:
        usage_error(
            option, f"'{text}' has no time zone; add one (e.g. {text}+00:00) or give a date"
        )
    return moment


@report_app.command("quarterly")
@friendly_errors
def report_quarterly(
    quarter: Annotated[str, typer.Option(help="the quarter, e.g. 2026Q4")],
    out: Annotated[Path, typer.Option(help="the folder to write both files to")] = Path("."),
    as_of: Annotated[
        str | None,
        typer.Option(
            help="as of when, ISO 8601 (a date: its start in the policy's time zone); default now",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The council's quarterly report: DIR/followthrough-QUARTER.html (self-contained: opens
    offline, can be emailed) and .md; progress on stderr, the two paths on stdout."""
    from followthrough.reporting.report import (  # Jinja: loaded when used
        quarter_period,
        quarterly_report,
    )

    config = settings()
    policy = config.loaded_policy
    moment = parse_moment(as_of, "--as-of", policy.calendar) if as_of else datetime.now(UTC)
    try:
        quarter_period(quarter, policy, moment)
    except ValueError as err:
        usage_error("--quarter", str(err))
    store = open_store()
    with Progress() as progress:
        report = quarterly_report(
            store, policy, quarter, moment, progress, public_url=config.public_url
        )
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / report.file_name("html"), out / report.file_name("md")]
    paths[0].write_text(report.html, encoding="utf-8")
    paths[1].write_text(report.markdown, encoding="utf-8")
    for path in paths:
        typer.echo(str(path))


# --- API tokens --------------------------------------------------------------------------------


@token_app.command("create")
@friendly_errors
def token_create(
    person: Annotated[str, typer.Option("--for", help="the person, as named in the policy")],
    name: Annotated[str, typer.Option(help="what it is for, e.g. the script or machine")] = "api",
    scope: Annotated[
        TokenScope, typer.Option(help="read: GET only; act: everything the person may do")
    ] = TokenScope.ACT,
    expires_in: Annotated[
        str,
        typer.Option(
            "--expires-in",
            help=f"days (90 or 90d) or weeks (12w), at most {MAX_TOKEN_DAYS} days",
        ),
    ] = f"{DEFAULT_TOKEN_DAYS}d",
) -> None:
    """Create a personal API token; it is shown once, and only its hash is kept."""
    from followthrough.api.auth import create_token  # FastAPI: loaded only when needed

    try:
        days = expires_in_days(expires_in)
    except ValueError as err:
        usage_error("--expires-in", str(err).removeprefix("expires_in: "))
    config = settings()
    store = open_store()
    config.use_directory(store)  # someone the identity provider provisioned may have one too
    now = datetime.now(UTC)
    token, made = create_token(
        store, config.loaded_policy, person, name, now, scope=scope, days=days, by=administrator()
    )
    typer.echo(token)
    typer.echo(
        f"# for {person}, scope {made.scope.value}, expires {when(made.expires_at)}: send it as "
        "'Authorization: Bearer <token>'; it is not shown again",
        err=True,
    )


@token_app.command("list")
@friendly_errors
def token_list(
    person: Annotated[str | None, typer.Option("--for", help="only this person's")] = None,
    as_json: AsJson = False,
) -> None:
    """Tokens by id, person, name, scope and expiry (never the token itself)."""
    tokens = open_store().tokens.all(person)
    if as_json:
        emit([t.model_dump(mode="json") for t in tokens])
        return
    now = datetime.now(UTC)
    for t in tokens:
        state = (
            f"revoked {when(t.revoked_at)}" if t.revoked_at else f"last used {when(t.last_used_at)}"
        )
        expires = f"expires {when(t.expires_at)}" if t.expires_at else "no expiry"
        status = "" if t.status(now) == "live" or t.revoked_at else f" ({t.status(now)})"
        typer.echo(
            f"{t.id}  {t.person:<12} {t.name:<16} {t.scope.value:<4}  created "
            f"{when(t.created_at)}  {expires}{status}  {state}"
        )


@token_app.command("revoke")
@friendly_errors
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (from `token list`); it stops working at once."""
    revoked = open_store().tokens.revoke(token_id, datetime.now(UTC), by=administrator())
    if revoked is None:
        raise LookupError(f"no token with id '{token_id}'")
    typer.echo(f"token {revoked.id} of {revoked.person} revoked")


# --- the audit log -------------------------------------------------------------------------------


@audit_app.command("list")
@friendly_errors
def audit_list(
    after: Annotated[
        str, typer.Option(help="the cursor a previous page ended with: older entries")
    ] = "",
    limit: Annotated[
        int, typer.Option(min=1, max=AUDIT_PAGE_MOST, help="entries per page")
    ] = AUDIT_PAGE_SIZE,
    as_json: AsJson = False,
) -> None:
    """Administrative actions, newest first: tokens, SLO imports, policy changes, items closed."""
    try:
        start = read_audit_cursor(after) if after else None
    except ValueError as err:
        usage_error("--after", str(err).removeprefix("cursor: "))
    entries = open_store().audit.page(limit + 1, start)
    following = audit_cursor(entries[limit - 1]) if len(entries) > limit else None
    entries = entries[:limit]
    if as_json:
        emit({"entries": [e.model_dump(mode="json") for e in entries], "next": following})
        return
    for e in entries:
        detail = f"  {e.detail}" if e.detail else ""
        typer.echo(f"{when(e.at)}  {e.actor:<12} {e.kind.value:<18} {e.target}{detail}")
    if following:
        typer.echo(f"# older: followthrough audit list --after {following}", err=True)


def main(argv: list[str] | None = None) -> NoReturn:
    """The console entry point.

    It leaves with os._exit: the Temporal client's Rust threads can abort a normal interpreter
    shutdown ("PyGILState_Release ... finalizing", temporalio/sdk-python#300), which would turn a
    clean refusal into a crash for short-lived commands.
    """
    try:
        app(argv)  # standalone mode: always ends in SystemExit, usage errors already printed
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
