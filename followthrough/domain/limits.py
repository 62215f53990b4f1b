"""What crosses the edge is bounded: every limit in one place, with its number.

The API, the dashboard, the CLI, webhooks and chat all refuse input past these limits with an
error naming the field, before anything reaches Temporal. A workflow must never be able to receive
something that makes its tasks fail forever: Temporal refuses any payload over 2 MB, so every
update's serialized input and every workflow's state stay far below that (the budgets below), and
long text is bounded rather than trusted.

The README's "Security and limits" section lists these numbers; keep the two in step.
"""

from __future__ import annotations

from datetime import date

# Temporal's own hard limit on one payload (an update's input, an activity's input or result).
TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024

# --- the HTTP edge (followthrough/api/edge.py, runtime's uvicorn settings) ----------------------

# One request body, any route: a webhook's incident payload is a few KiB and the largest person's
# request (a draft) stays far below Temporal's payload limit; refused on Content-Length, or while
# streaming, before the rest is read.
REQUEST_BODY_BYTES = 1024 * 1024
# A body must arrive within this many seconds of the request's start (408 after): a client sending
# a byte every few seconds would otherwise hold a connection and its buffer indefinitely.
REQUEST_BODY_SECONDS = 30
# Open connections uvicorn serves at once (503 past it): with REQUEST_BODY_BYTES each, bodies in
# flight stay under ~100 MiB, so the worker sharing `up`'s process is never starved of memory.
CONCURRENT_CONNECTIONS = 100
# uvicorn closes an idle keep-alive connection after this many seconds.
KEEP_ALIVE_SECONDS = 5
# The request line and headers (h11's incomplete event): a browser sends a few KiB.
REQUEST_HEAD_BYTES = 16 * 1024
# Failed attempts (sign-ins, API tokens, forged one-click links) one client address may make in
# FAILURE_WINDOW_SECONDS before it is refused with 429 until the window passes: generous for a
# person mistyping, useless for guessing a 256-bit token.
FAILED_ATTEMPTS = 10
FAILURE_WINDOW_SECONDS = 300
# Client addresses remembered for that count; past it the oldest is forgotten, so a flood of
# addresses cannot grow the server's memory.
CLIENTS_REMEMBERED = 10_000
# A dashboard session ends at sign-out or this many hours after sign-in, whichever comes first.
SESSION_HOURS = 12
# A message shown once on the next page after a dashboard action (a workflow's refusal or result).
FLASH_CHARS = 2_000
# A personal API token lives 90 days unless its maker says otherwise, and never past a year: a
# forgotten token is the leak that lasts. Its name is one short line.
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 365
TOKEN_NAME_CHARS = 64
# Tokens one list shows (a person's, or everyone's to an administrator): the newest so many.
TOKENS_LISTED = 1_000
# One entry of the administrative audit log says at most this beyond its kind and target; a page
# of it holds at most AUDIT_PAGE_MOST entries.
AUDIT_DETAIL_CHARS = 500
AUDIT_PAGE_MOST = 200

# --- what people and vendors send: sizes, counts, dates, numbers (followthrough/domain/bounds.py)

# One update's serialized input (a draft is the largest): an eighth of Temporal's limit, so the
# postmortem's record activity, which carries the draft beside the incident and the reviews, fits.
UPDATE_BUDGET_BYTES = 256 * 1024
# The incident as started: its summary is the only long part.
INCIDENT_BUDGET_BYTES = 128 * 1024
# A postmortem's or an action item's whole state, which every record activity carries: half of
# Temporal's limit, leaving room for the audit event beside it and for the JSON envelope. An action
# that would grow the state past it is refused (409), so no later step can fail on its size.
STATE_BUDGET_BYTES = 1024 * 1024

# A title is one line that fits an email subject and a table row.
TITLE_CHARS = 200
# A person, a team, a service, a tag, an SLO id: names from the policy are far shorter.
NAME_CHARS = 128
# Long prose (impact, summary, an item's description): some ten pages.
LONG_TEXT_CHARS = 20_000
# A paragraph: a timeline entry, a contributing factor, a detection gap, a recovery step, any text
# inside an acceptance criterion (PromQL is at most 4000, criteria.py).
PARAGRAPH_CHARS = 4_000
# A comment, a reason, evidence: what the API's bodies already allow.
NOTE_CHARS = 10_000
URL_CHARS = 2_000

# How many of each a draft may list: far more than any real postmortem has.
TIMELINE_ENTRIES = 200
LIST_ENTRIES = 50  # contributing factors, detection gaps, recovery steps, SLOs, services
TAGS_PER_FACTOR = 20
ACTION_ITEMS = 30
# Nested JSON inside an acceptance criterion (json_equals may be any value).
CRITERION_DEPTH = 10

# How often an item's history may grow by a person's action: each bounds a list in its state.
DONE_CLAIMS_PER_ITEM = 20  # each rejection or failed check reopens it for another claim
EXTENSION_REQUESTS_PER_ITEM = 20  # denied ones count too; approvals are also policy.max_extensions
REASSIGNMENTS_PER_ITEM = 20
REVIEWS_PER_POSTMORTEM = 100  # approvals and change requests over every draft version

# --- long-lived workflows (workflows/action_item.py, workflows/postmortem.py) ------------------

# Every step, wait and handler adds to a workflow's history; Temporal suggests continuing as new
# at 4,096 events or 4 MiB and fails the workflow at 51,200 events or 50 MiB. An action item (its
# ladder, checks and re-checks) and a postmortem (its drafting and reviews) continue as new at
# their first safe point past either figure below, or when Temporal suggests it, whichever first.
HISTORY_EVENTS_BEFORE_CONTINUING = 2_000
HISTORY_BYTES_BEFORE_CONTINUING = 2 * 1024 * 1024
# The fewest events a start may ask for (tests ask for few): a run does some work before it hands
# over, never continuing as new at its first safe point again and again.
HISTORY_EVENTS_LEAST = 100

# Dates people and vendors give are within this window (inclusive), so date arithmetic (ladders,
# business days, time zones) can never leave Python's calendar, and pages never show year 1.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)
# An incident's times at the edge (webhooks, `incident resolved`): not from the future beyond
# clock skew, and not older than this: a postmortem is for an incident people still remember.
FUTURE_SKEW_HOURS = 24
INCIDENT_MAX_AGE_DAYS = 5 * 365
# An action item's due date, and an extension's, at most this far ahead: a follow-up, not a roadmap.
DUE_AHEAD_DAYS = 3 * 365

# Numbers in drafts and criteria are finite and within this magnitude (JSON allows 1e308; a
# threshold or a byte count is never near 1e15).
NUMBER_MAGNITUDE = 1e15
# slo_impact: incident traffic over average traffic, and the budget left when it began (an SLO may
# already be overspent, but not a hundred times over).
TRAFFIC_WEIGHT_MAX = 1000.0
BUDGET_REMAINING_MIN = -100.0
# An SLO burn as the reports read it from the record (metrics.SloBurn): a thousand error budgets
# is far past any real incident; an older record's infinity or 1e308 is read as this.
BURN_MAX = 1000.0
# A draft's users_affected: every person on Earth, with room; more is a typo.
USERS_AFFECTED_MAX = 10_000_000_000
# Open action items one reliability backlog ranks (it scores them all to rank them): far above any
# real organisation's open follow-ups, low enough that a page stays a fraction of a second.
BACKLOG_ITEMS = 5_000
BACKLOG_PAGE = 200  # rows one page of /api/backlog or /backlog shows at most

# --- operations (followthrough/temporal/operations.py) -----------------------------------

# Running workflows one stuck-work sweep (or one view of the operations page) describes: a
# DescribeWorkflowExecution each, so a namespace of thousands cannot make a sweep take minutes.
# Those Temporal itself flags (TemporalReportedProblems) are described first; the page says when
# more were running than this.
STUCK_WORK_DESCRIBED_PER_SWEEP = 200

# --- severities the policy does not map (webhooks/base.py) ------------------------------------

# Distinct unmapped severity values kept on one incident (an Alertmanager group may carry one per
# alert): each is shown on its postmortem and mailed to the operators once, so a group of
# thousands of alerts with made-up values cannot grow the incident or flood anyone's inbox.
UNMAPPED_SEVERITIES_PER_INCIDENT = 5

# --- alert events (webhooks/alertmanager.py, storage/alerts.py) ---------------------------------

# Alerts kept from one Alertmanager or Grafana notification: a group can hold thousands (its
# max_alerts is unlimited by default); past this many the rest are counted and logged, not kept.
ALERTS_PER_DELIVERY = 200
# Refused alerts of one notification whose reasons the answer names (the rest are counted).
ALERTS_REFUSED_NAMED = 5
# Alert events one pruning run forgets (one statement): retention catches up over many runs.
ALERTS_PRUNED_PER_RUN = 500
# Alert events one month's alert-quality review reads: far above any sane month's alerts, so the
# review page cannot be made to load a year of noise at once; the review says when it was cut.
ALERTS_PER_REVIEW = 50_000

# --- outbound requests: acceptance-criterion checks (followthrough/checks/) ----------------------

# Criteria one draft submission probes before it reaches the workflow (Prometheus parses each
# query; http_check URLs are resolved against the policy's allow-list): a draft of 30 items is
# not 30 requests. The rest are judged when their checks run.
PREFLIGHT_PROBES = 5
# All of one submission's probes together, in seconds: a slow or silent host costs the author at
# most this long, and then the draft goes on unprobed (the workflow's own rules still apply).
PREFLIGHT_SECONDS = 10.0
# The part of a check's answer that is kept as evidence: enough to see what came back (a status
# line and a little body), never a page of whatever the URL serves.
EVIDENCE_EXCERPT_CHARS = 300

# --- signing in through an identity provider (followthrough/integrations/oidc.py) ----------------

# Each answer from the provider (discovery, its keys, the token response) is read up to this many
# bytes and refused past it; a provider's metadata is a few KiB, an ID token rarely 8 KiB.
OIDC_RESPONSE_BYTES = 256 * 1024
# An ID token itself, before it is parsed.
OIDC_ID_TOKEN_CHARS = 16 * 1024
# Keys in the provider's JWKS: providers publish two or three (the current and the next).
OIDC_KEYS = 50
# A key id the JWKS does not have refetches it at most once in this many seconds (rotation), so
# tokens naming made-up key ids cannot make us hammer the provider.
OIDC_JWKS_REFETCH_SECONDS = 60
# The provider's metadata is read again after this many seconds.
OIDC_DISCOVERY_SECONDS = 3600
# A failed read of the metadata is not tried again for this many seconds: every visitor of the
# sign-in page would otherwise make us ask a provider that is down.
OIDC_DISCOVERY_RETRY_SECONDS = 10
# Clock skew allowed on an ID token's exp, iat and nbf.
OIDC_LEEWAY_SECONDS = 60
# The callback's parameters: providers' codes and our states are far shorter.
OIDC_CODE_CHARS = 2_048
OIDC_STATE_CHARS = 128
OIDC_ERROR_CHARS = 500
# A sign-in started at the provider must come back within this many minutes.
OIDC_SIGN_IN_MINUTES = 10
# Groups in an ID token (Entra ID sends at most 200 before switching to an overage claim).
OIDC_GROUPS = 500
OIDC_GROUP_CHARS = 256
# --- the identity provider's SCIM requests (followthrough/api/scim.py) -------------------------

# Any one string (a userName, displayName, externalId, email), one line.
SCIM_TEXT_CHARS = 256
# Any one list in a request (a PATCH's operations, the members it adds), and a body's nesting.
SCIM_LIST_ENTRIES = 1000
SCIM_DEPTH = 6
# A list's page: a larger `count` is answered with fewer (RFC 7644 3.4.2.4).
SCIM_PAGE = 200
# A group's members, however many requests built it.
SCIM_GROUP_MEMBERS = 5000
